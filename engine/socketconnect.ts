/**
 * WskSocketConnect: one address, or every port of a list, each optionally retried until a
 * deadline while the port refuses.
 *
 * @module
 */

import {
  IPPROTO_TCP,
  NT_SUCCESS,
  SOCK_STREAM,
  type SockAddr,
  STATUS_CONNECTION_REFUSED,
  STATUS_CONNECTION_RESET,
  type WskClientConnectionDispatch,
  type WskCompletion,
  type WskIrp,
  type WskSocketCompletion,
} from "../provider/mod.ts";
import { type CallContext, pauseFor, RETRY_PAUSE_MAX, RETRY_PAUSE_MIN } from "./context.ts";

/** Ports of a list checked at once. */
export const PORT_LIST_PARALLEL = 16;

/** What one WskSocketConnect (with its retries) gave. */
export interface SocketConnectOutcome {
  readonly made: WskSocketCompletion;
  /** From the first attempt to the last one's completion. */
  readonly elapsedMs: number;
  /** Attempts made (1 without a deadline). */
  readonly attempts: number;
}

/**
 * One WskSocketConnect from `local` to `remote`, timed and not yet reported. With `untilMs`, a
 * refused (or reset) attempt is tried again, pausing 50 ms doubling to 200 ms, until that many
 * milliseconds have passed since the first.
 */
export async function socketConnect(
  run: CallContext,
  local: SockAddr,
  remote: SockAddr,
  irp: WskIrp = run.irp(),
  untilMs?: number,
  dispatch: WskClientConnectionDispatch | null = null,
): Promise<SocketConnectOutcome> {
  const d = run.npi.Dispatch;
  // What the call needs is loaded before its clock starts.
  await run.prepare({ connect: { local, abortive: true } });
  const start = performance.now();
  const deadline = start + (untilMs ?? 0);
  let pause = RETRY_PAUSE_MIN;
  for (let attempts = 1;; attempts++) {
    const made = await d.WskSocketConnect(
      run.npi.Client,
      SOCK_STREAM,
      IPPROTO_TCP,
      local,
      remote,
      0,
      undefined,
      dispatch,
      { ...irp, abortive: true },
    );
    const refused = made.status === STATUS_CONNECTION_REFUSED ||
      made.status === STATUS_CONNECTION_RESET;
    if (untilMs === undefined || !refused || performance.now() >= deadline || run.signal.aborted) {
      return { made, elapsedMs: performance.now() - start, attempts };
    }
    await pauseFor(Math.min(pause, deadline - performance.now()), run.signal);
    pause = Math.min(pause * 2, RETRY_PAUSE_MAX);
  }
}

/** What one port of a list gave: the connect and, when it connected, the close. */
interface PortOutcome extends SocketConnectOutcome {
  readonly closed: WskCompletion | null;
}

/**
 * Checks every port of a list: WskSocketConnect (retried until `untilMs` when given), then at
 * once WskCloseSocket, which closes the connection without sending data (an abortive close:
 * RST with --allow-ffi, else FIN; only a failed close gets a line). Up to
 * {@linkcode PORT_LIST_PARALLEL} ports are tried at once; the lines come in the order of the
 * list. Returns the last failed completion, or the last one when all connected.
 */
export async function checkPorts(
  run: CallContext,
  local: SockAddr,
  remote: SockAddr,
  ports: readonly number[],
  irp: WskIrp = run.irp(),
  untilMs?: number,
): Promise<WskCompletion> {
  const outcomes = ports.map(() => Promise.withResolvers<PortOutcome>());
  let next = 0;
  const worker = async () => {
    while (next < ports.length) {
      const i = next++;
      const target = { ...remote, port: ports[i]! };
      const got = await socketConnect(run, local, target, irp, untilMs);
      const socket = got.made.socket;
      const closed = socket ? await socket.Dispatch.WskCloseSocket(socket) : null;
      outcomes[i]!.resolve({ ...got, closed });
    }
  };
  const workers = Array.from({ length: Math.min(PORT_LIST_PARALLEL, ports.length) }, worker);
  let worst: WskCompletion | null = null;
  for (let i = 0; i < ports.length; i++) {
    const { made, elapsedMs, attempts, closed } = await outcomes[i]!.promise;
    const target = { ...remote, port: ports[i]! };
    // As the socket was when it connected: the close since then gets no line unless it failed.
    const described = made.socket
      ? {
        id: made.socket.id,
        localAddress: made.socket.localAddress,
        remoteAddress: made.socket.remoteAddress,
      }
      : { id: 0, localAddress: local, remoteAddress: target };
    run.report(
      "WskSocketConnect",
      described,
      made,
      elapsedMs,
      untilMs === undefined ? {} : { calls: attempts },
    );
    if (!NT_SUCCESS(made.status)) worst = made;
    if (closed && !NT_SUCCESS(closed.status)) {
      run.report("WskCloseSocket", described, closed, 0);
      worst ??= closed;
    }
  }
  await Promise.all(workers);
  return worst ?? { status: 0, information: ports.length };
}

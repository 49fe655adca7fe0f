/**
 * `accept --mode forward --to HOST:PORT`: each accepted connection (the client side) is relayed
 * to a connection of its own to the target (the target side), as socat's
 * `TCP-LISTEN:… TCP:HOST:PORT` does. Bytes go both ways through two {@linkcode Relay}s; a FIN
 * on one side becomes a graceful WskDisconnect on the other, a failure on one side (a reset, a
 * failed send, the idle timeout) an abortive one on the other.
 *
 * @module
 */

import {
  formatSockAddr,
  NT_SUCCESS,
  type NTSTATUS,
  type SockAddr,
  STATUS_CANCELLED,
  STATUS_CONNECTION_REFUSED,
  STATUS_CONNECTION_RESET,
  STATUS_IO_TIMEOUT,
  wildcard,
  type WskCompletion,
} from "../../provider/mod.ts";
import { socketConnect } from "../socketconnect.ts";
import { RECEIVE_MAX } from "../pump.ts";
import { Connection } from "./connections.ts";
import { Relay } from "./relay.ts";
import {
  cancelExpected,
  disconnectAbortively,
  sendFin,
  type Server,
  stoppedCompletion,
} from "./server.ts";

/**
 * How the target side of a forwarded connection ended: as a connection does, or, when the
 * connect failed, `refused`, `reset` (reset during the connect), `timeout` or `unreachable`.
 */
export type TargetEnd = Connection["end"] | "refused" | "unreachable";

/** The target end of a connect that failed with `status`. */
function connectEnd(status: NTSTATUS): TargetEnd {
  if (status === STATUS_CONNECTION_REFUSED) return "refused";
  if (status === STATUS_CONNECTION_RESET) return "reset";
  if (status === STATUS_IO_TIMEOUT) return "timeout";
  return "unreachable";
}

/** What a forwarded connection's Summary adds: the target side's socket and how it ended. */
export interface ForwardOutcome {
  /** The target side's socket id (none when it could not be made). */
  readonly target?: number;
  readonly targetEnd: TargetEnd;
}

/**
 * Checks every second whether bytes moved either way within `ms`; when none did, `expire` is
 * called once. `touch()` records a move; `stop()` ends the checks.
 */
class IdleWatch {
  #last = performance.now();
  readonly #timer: ReturnType<typeof setInterval>;

  constructor(ms: number, expire: () => void) {
    this.#timer = setInterval(() => {
      if (performance.now() - this.#last < ms) return;
      this.stop();
      expire();
    }, Math.min(1000, Math.max(10, ms / 4)));
  }

  touch(): void {
    this.#last = performance.now();
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

/**
 * Relays one accepted connection to `target` (see the module). Lines: WskSocketConnect for the
 * target side, then per direction one WskReceive line (the side read) and one WskSend line (the
 * side written), the WskDisconnect lines that pass a FIN or a failure on, and the target's
 * WskCloseSocket; the caller closes the client side and writes the Summary, with what this
 * returns.
 *
 * Neither direction's receive is bounded on its own (one side may be silent for as long as the
 * other streams); instead the relay as a whole gives up when no byte moved either way for
 * --timeout: both pending receives are then bounded at once and end with STATUS_IO_TIMEOUT.
 * A target that cannot be reached resets the client (where the backing can; else closes it),
 * and its status (STATUS_CONNECTION_REFUSED) ends the client's Summary.
 */
export async function serveForward(
  server: Server,
  client: Connection,
  target: SockAddr,
): Promise<ForwardOutcome> {
  const { run } = server;
  const made = await socketConnect(run, wildcard(target.family, 0), target);
  const targetSocket = made.made.socket ?? null;
  run.report(
    "WskSocketConnect",
    targetSocket ?? { id: 0, localAddress: null, remoteAddress: target },
    made.made,
    made.elapsedMs,
    {},
    server.stop.aborted ? STATUS_CANCELLED : undefined,
  );
  if (targetSocket === null) {
    client.fail({
      ...made.made,
      message: `The target ${formatSockAddr(target)} could not be reached` +
        (made.made.message ? `: ${made.made.message}` : ""),
    }, "local-close");
    await disconnectAbortively(server, client);
    return { targetEnd: connectEnd(made.made.status) };
  }
  const far = new Connection(targetSocket);
  // A failure on one side ends both directions: the other pump's receive is called off.
  const failed = new AbortController();
  const expected = () =>
    failed.signal.aborted && !server.stop.aborted ? STATUS_CANCELLED : cancelExpected(server);
  let idled = false;
  const watch = new IdleWatch(run.timeout, () => {
    idled = true;
    for (const relay of relays) relay.pump.bound(0);
  });
  const options = { bufferSize: RECEIVE_MAX, timeout: null, signal: failed.signal, expected };
  const relays = [
    new Relay(run, client.socket, targetSocket, options, () => watch.touch()),
    new Relay(run, targetSocket, client.socket, options, () => watch.touch()),
  ] as const;
  /** Runs one direction; at its end passes a FIN on, or a failure as an abort. */
  const direction = async (relay: Relay, from: Connection, to: Connection) => {
    const got = await relay.run();
    if (got.fin && NT_SUCCESS(got.status) && got.sinkFailure === null) {
      const done = await sendFin(server, to);
      if (done !== null && !NT_SUCCESS(done.status)) await passOn(done, to, from);
      return;
    }
    if (failed.signal.aborted) return;
    // The receive failed on `from`, or the send on `to`: that side ended so; the other one is
    // aborted (a reset passes on as a reset).
    if (got.sinkFailure !== null) await passOn(got.sinkFailure, to, from);
    else if (idled && got.status === STATUS_IO_TIMEOUT) {
      await passOn(
        {
          ...got.completion,
          message: `No data moved either way for ${run.timeout} ms`,
        },
        from,
        to,
      );
    } else await passOn(got.completion, from, to);
  };
  /** `side` failed with `completion`: the relay stops, and `other` is aborted. */
  const passOn = async (completion: WskCompletion, side: Connection, other: Connection) => {
    if (failed.signal.aborted) return;
    failed.abort();
    if (server.stop.aborted) {
      // Not a side's failure: wsk ends both.
      side.fail(stoppedCompletion(), "local-close");
      other.fail(stoppedCompletion(), "local-close");
      await disconnectAbortively(server, other);
      return;
    }
    side.fail(completion);
    const why = completion.status === STATUS_CONNECTION_RESET ? "reset the connection" : "failed";
    other.fail({
      ...completion,
      message: `The ${side === client ? "client" : "target"} side ${why}` +
        (completion.message ? `: ${completion.message}` : ""),
    }, "local-close");
    await disconnectAbortively(server, other);
  };
  try {
    await Promise.all([
      direction(relays[0], client, far),
      direction(relays[1], far, client),
    ]);
  } finally {
    watch.stop();
  }
  await run.close(targetSocket);
  return { target: targetSocket.id, targetEnd: far.end };
}

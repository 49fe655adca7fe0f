/** `wsk socketconnect`: WskSocketConnect in one call, to one port or a list of ports. @module */

import {
  IPPROTO_TCP,
  NT_SUCCESS,
  SOCK_STREAM,
  type SockAddr,
  wildcard,
  type WskCompletion,
  type WskSocketCompletion,
} from "../provider/mod.ts";
import type { CliContext } from "../cli/command.ts";
import { runAction, wskCommand } from "../cli/command.ts";
import { MAX_PORT_LIST, parseLocal, parsePortList } from "../syntax/values.ts";
import type { Run } from "../engine/context.ts";

/** Ports of a list checked at once. */
const PARALLEL = 16;

/** One WskSocketConnect from `local` to `remote`, timed and not yet reported. */
async function socketConnect(
  run: Run,
  local: SockAddr,
  remote: SockAddr,
): Promise<{ made: WskSocketCompletion; elapsedMs: number }> {
  const d = run.npi.Dispatch;
  await run.prepare({ connect: { local } });
  const start = performance.now();
  const made = await d.WskSocketConnect(
    run.npi.Client,
    SOCK_STREAM,
    IPPROTO_TCP,
    local,
    remote,
    0,
    undefined,
    null,
    run.irp(),
  );
  return { made, elapsedMs: performance.now() - start };
}

/** What one port of a list gave: the connect and, when it connected, the close. */
interface PortOutcome {
  readonly made: WskSocketCompletion;
  readonly elapsedMs: number;
  readonly closed: WskCompletion | null;
}

/**
 * Checks every port of a list: WskSocketConnect, then at once WskCloseSocket, which closes the
 * connection without sending data (an abortive close: RST with --allow-ffi, else FIN; only a
 * failed close gets a line). Up
 * to PARALLEL ports are tried at once; the lines come in the order of the list.
 */
async function checkPorts(
  run: Run,
  local: SockAddr,
  remote: SockAddr,
  ports: readonly number[],
): Promise<void> {
  const outcomes = ports.map(() => Promise.withResolvers<PortOutcome>());
  let next = 0;
  const worker = async () => {
    while (next < ports.length) {
      const i = next++;
      const { made, elapsedMs } = await socketConnect(run, local, { ...remote, port: ports[i]! });
      const closed = made.socket ? await made.socket.Dispatch.WskCloseSocket(made.socket) : null;
      outcomes[i]!.resolve({ made, elapsedMs, closed });
    }
  };
  const workers = Array.from({ length: Math.min(PARALLEL, ports.length) }, worker);
  for (let i = 0; i < ports.length; i++) {
    const { made, elapsedMs, closed } = await outcomes[i]!.promise;
    const target = { ...remote, port: ports[i]! };
    // As the socket was when it connected: the close since then (an abort: RST with
    // --allow-ffi, else FIN) gets no line of its own unless it failed.
    const described = made.socket
      ? {
        id: made.socket.id,
        localAddress: made.socket.localAddress,
        remoteAddress: made.socket.remoteAddress,
      }
      : { id: 0, localAddress: local, remoteAddress: target };
    run.report("WskSocketConnect", described, made, elapsedMs);
    if (closed && !NT_SUCCESS(closed.status)) run.report("WskCloseSocket", described, closed, 0);
  }
  await Promise.all(workers);
}

/** Builds the `socketconnect` command. */
export function socketconnectCommand(ctx: CliContext) {
  return wskCommand(
    "socketconnect",
    "Create, bind and connect in one call, then disconnect gracefully and close; given a " +
      "port list, check each port with one line (zero I/O).",
    "WskSocketConnect, WskDisconnect, WskReceive (until the peer's FIN), WskCloseSocket",
    [
      "wsk socketconnect 127.0.0.1:8080",
      "wsk socketconnect [::1]:8080 --bind [::1]:0",
      "wsk socketconnect 127.0.0.1:8000-8010",
      "wsk socketconnect localhost:22,80,443 --timeout 2000",
    ],
  )
    .argument(
      "<remote>",
      `HOST:PORT or [IPV6]:PORT; or a port list HOST:P1-P2 / HOST:P1,P2,P3 (ranges allowed, ` +
        `at most ${MAX_PORT_LIST} ports): one WskSocketConnect line per port, closed at once ` +
        "without data; exit 0 only when every port connected",
      parsePortList,
    )
    .option("--bind <local>", "local address (default: wildcard, port 0)", parseLocal)
    // Handled before parsing (main.ts routes the command to the session agent); listed for help.
    .option("--session", "make the socket in the session agent and keep it (see wsk session)")
    .action(async (list, options, command) => {
      await runAction(ctx, command, options, async (run) => {
        const remote = await run.resolve(list.endpoint);
        if (remote === null) return;
        const local = options.bind
          ? await run.resolve(options.bind, remote.family)
          : wildcard(remote.family, 0);
        if (local === null) return;
        if (list.isList) {
          await checkPorts(run, local, remote, list.ports);
          return;
        }
        const { made, elapsedMs } = await socketConnect(run, local, remote);
        run.report(
          "WskSocketConnect",
          made.socket ?? { id: 0, localAddress: local, remoteAddress: remote },
          made,
          elapsedMs,
        );
        if (made.socket) await run.finish(made.socket);
      });
    });
}

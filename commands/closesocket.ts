/** `wsk closesocket`: WskCloseSocket with a receive pending. @module */

import { STATUS_CANCELLED, wskBuf } from "../provider/mod.ts";
import type { CliContext } from "../cli/command.ts";
import { runAction, wskCommand } from "../cli/command.ts";
import { parseLocal, parseRemote } from "../syntax/values.ts";

/** Builds the `closesocket` command. */
export function closesocketCommand(ctx: CliContext) {
  return wskCommand(
    "closesocket",
    "Connect, post a WskReceive, and close the socket under it: the receive completes with " +
      "STATUS_CANCELLED (expected, exit 0) and the connection is reset.",
    "WskSocket, WskBind, WskConnect, WskReceive, WskCloseSocket",
    ["wsk closesocket 127.0.0.1:8080"],
  )
    .argument("<remote>", "HOST:PORT or [IPV6]:PORT", parseRemote)
    .option("--bind <local>", "local address to bind (default: wildcard, port 0)", parseLocal)
    .action(async (remote, options, command) => {
      await runAction(ctx, command, options, async (run) => {
        const socket = await run.connected(remote, options.bind, { abortive: true });
        if (!socket) return;
        const d = socket.Dispatch;
        const buffer = new Uint8Array(64 * 1024);
        const start = performance.now();
        const pending = d.WskReceive(socket, wskBuf(buffer), 0, run.irp());
        const described = {
          id: socket.id,
          localAddress: socket.localAddress,
          remoteAddress: socket.remoteAddress,
        };
        await run.close(socket);
        const received = await pending;
        // Expected: a cancellation. If data beat the close, the receive succeeded instead and
        // its bytes are shown rather than lost.
        run.report("WskReceive", described, received, performance.now() - start, {
          data: buffer.subarray(0, received.information),
        }, STATUS_CANCELLED);
      });
    });
}

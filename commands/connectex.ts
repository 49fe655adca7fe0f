/** `wsk connectex`: WskConnectEx with first data. @module */

import { NT_SUCCESS, wildcard, wskBuf } from "../provider/mod.ts";
import type { CliContext } from "../cli/command.ts";
import { runAction, wskCommand } from "../cli/command.ts";
import { parseFirstData, parseLocal, parseRemote } from "../syntax/values.ts";

/** Builds the `connectex` command. */
export function connectexCommand(ctx: CliContext) {
  return wskCommand(
    "connectex",
    "Connect to REMOTE sending --data right after the handshake, then disconnect and close.",
    "WskSocket, WskBind, WskConnectEx, WskDisconnect, WskReceive (until the peer's FIN), " +
      "WskCloseSocket",
    ['wsk connectex 127.0.0.1:6379 --data "PING\\r\\n"'],
  )
    .argument("<remote>", "HOST:PORT or [IPV6]:PORT", parseRemote)
    .requiredOption(
      "--data <text>",
      "first data, up to 65535 bytes (escapes: \\r \\n \\t \\0 \\\\ \\xNN)",
      parseFirstData,
    )
    .option("--bind <local>", "local address to bind (default: wildcard, port 0)", parseLocal)
    .action(async (remoteEndpoint, options, command) => {
      await runAction(ctx, command, options, async (run) => {
        const remote = await run.resolve(remoteEndpoint);
        if (remote === null) return;
        const bound = options.bind ? await run.resolve(options.bind, remote.family) : null;
        if (options.bind && bound === null) return;
        const socket = await run.socket(remote.family);
        if (!socket) return;
        const d = socket.Dispatch;
        const local = bound ?? wildcard(remote.family, 0);
        const b = await run.call("WskBind", socket, () => d.WskBind(socket, local, 0, run.irp()));
        if (NT_SUCCESS(b.status)) {
          const c = await run.call(
            "WskConnectEx",
            socket,
            () => d.WskConnectEx(socket, remote, wskBuf(options.data), 0, run.irp()),
          );
          if (NT_SUCCESS(c.status)) {
            await run.finish(socket);
            return;
          }
        }
        await run.close(socket);
      });
    });
}

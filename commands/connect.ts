/** `wsk connect`: WskConnect on a fresh socket. @module */

import type { CliContext } from "./_command.ts";
import { runAction, wskCommand } from "./_command.ts";
import { parseLocal, parseRemote } from "./_parse.ts";

/** Builds the `connect` command. */
export function connectCommand(ctx: CliContext) {
  return wskCommand(
    "connect",
    "Connect to REMOTE, then disconnect gracefully and close.",
    "WskSocket, WskBind, WskConnect, WskDisconnect, WskReceive (until the peer's FIN), " +
      "WskCloseSocket",
    ["wsk connect 127.0.0.1:8080", "wsk connect [::1]:8080 --bind [::1]:0 --json"],
  )
    .argument("<remote>", "HOST:PORT or [IPV6]:PORT", parseRemote)
    .option("--bind <local>", "local address to bind (default: wildcard, port 0)", parseLocal)
    .action(async (remote, options, command) => {
      await runAction(ctx, command, options, async (run) => {
        const socket = await run.connected(remote, options.bind);
        if (socket) await run.finish(socket);
      });
    });
}

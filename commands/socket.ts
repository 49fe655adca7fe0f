/** `wsk socket`: WskSocket, optionally bound. @module */

import type { AddressFamily } from "../provider/mod.ts";
import type { CliContext } from "../cli/command.ts";
import { runAction, wskCommand } from "../cli/command.ts";
import { parseFamily, parseLocal } from "../syntax/values.ts";

import { createAndBind } from "../engine/create.ts";
/** Builds the `socket` command. */
export function socketCommand(ctx: CliContext) {
  return wskCommand(
    "socket",
    "Create a socket (connection, or listening with --listen); bind it with --bind.",
    "WskSocket, WskBind and WskGetLocalAddress (with --bind), WskCloseSocket",
    ["wsk socket", "wsk socket --family inet6 --listen --bind [::1]:0"],
  )
    .option("--family <family>", "inet or inet6", parseFamily, 2 as AddressFamily)
    .option("--listen", "a listening socket (WSK_FLAG_LISTEN_SOCKET)")
    .option("--bind <local>", "bind to this local address", parseLocal)
    // Handled before parsing (main.ts routes the command to the session agent); listed for help.
    .option("--session", "make the socket in the session agent and keep it (see wsk session)")
    .action(async (options, command) => {
      await runAction(ctx, command, options, async (run) => {
        await createAndBind(run, options.family, options.listen === true, options.bind);
      });
    });
}

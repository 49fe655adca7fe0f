/** `wsk bind`: WskBind and the address the kernel gave. @module */

import type { CliContext } from "../cli/command.ts";
import { runAction, wskCommand } from "../cli/command.ts";
import { parseLocal } from "../syntax/values.ts";
import { createAndBind } from "../engine/create.ts";

/** Builds the `bind` command. */
export function bindCommand(ctx: CliContext) {
  return wskCommand(
    "bind",
    "Bind a new socket to LOCAL and show the local address (the kernel's port for :0).",
    "WskSocket, WskBind, WskGetLocalAddress, WskCloseSocket",
    ["wsk bind 127.0.0.1:0", "wsk bind [::1]:0 --listen --json"],
  )
    .argument("<local>", "IP:PORT, [IPV6]:PORT or :PORT (wildcard)", parseLocal)
    .option("--listen", "bind a listening socket (binding it starts listening)")
    .action(async (local, options, command) => {
      await runAction(ctx, command, options, async (run) => {
        await createAndBind(run, 2, options.listen === true, local);
      });
    });
}

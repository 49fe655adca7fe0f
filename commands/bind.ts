/** `wsk bind`: WskBind and the address the kernel gave. @module */

import type { CliContext } from "../cli/command.ts";
import { verbCommand } from "../cli/verb.ts";
import type { VerbDecl } from "../steps/verb.ts";
import { type Endpoint, parseLocal } from "../syntax/values.ts";

/** The `bind` verb. */
export const bind: VerbDecl = {
  name: "bind",
  summary: "Bind a new socket to LOCAL and show the local address (the kernel's port for :0).",
  calls: "WskSocket, WskBind, WskGetLocalAddress, WskCloseSocket",
  examples: ["wsk bind 127.0.0.1:0", "wsk bind [::1]:0 --listen --json", "wsk bind @1 127.0.0.1:0"],
  target: "none",
  args: [{ name: "<local>", help: "IP:PORT, [IPV6]:PORT or :PORT (wildcard)", parse: parseLocal }],
  options: [
    {
      flags: "--listen",
      help: "when the socket is new: a listening one (binding starts listening)",
    },
  ],
  make: ({ args, options }) => ({
    verb: "bind",
    local: args[0] as Endpoint,
    listen: options.listen === true,
  }),
  after: () => [{ verb: "getlocaladdress" }],
  handle: true,
  script: true,
};

/** Builds the `bind` command. */
export const command = (ctx: CliContext) => verbCommand(ctx, bind);

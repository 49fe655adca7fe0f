/** `wsk socket`: WskSocket, optionally bound. @module */

import type { AddressFamily } from "../provider/mod.ts";
import type { CliContext } from "../cli/command.ts";
import { verbCommand } from "../cli/verb.ts";
import type { Step } from "../steps/step.ts";
import { bindOf, type VerbDecl } from "../steps/verb.ts";
import { type Endpoint, parseFamily, parseLocal } from "../syntax/values.ts";

/** The `socket` verb. */
export const socket: VerbDecl = {
  name: "socket",
  summary: "Create a socket (connection, or listening with --listen); bind it with --bind.",
  calls: "WskSocket, WskBind and WskGetLocalAddress (with --bind), WskCloseSocket",
  examples: [
    "wsk socket",
    "wsk socket --family inet6 --listen --bind [::1]:0",
    "wsk socket --session",
  ],
  target: "none",
  options: [
    {
      flags: "--family <family>",
      help: "inet or inet6",
      parse: parseFamily,
      values: ["inet", "inet6"],
    },
    { flags: "--listen", help: "a listening socket (WSK_FLAG_LISTEN_SOCKET)" },
    { flags: "--bind <local>", help: "bind to this local address", parse: parseLocal },
  ],
  make({ options }) {
    const bind = options.bind as Endpoint | undefined;
    // A literal to bind decides the family unless --family says otherwise.
    const family = (options.family as AddressFamily | undefined) ??
      (bind?.kind === "literal" ? bind.address.family : 2);
    return { verb: "socket", family, listen: options.listen === true, ...bindOf(options) };
  },
  // The command line shows the address the kernel gave (its port for :0).
  after: (own: Step) => own.verb === "socket" && own.bind ? [{ verb: "getlocaladdress" }] : [],
  session: true,
  handle: false,
  script: true,
};

/** Builds the `socket` command. */
export const command = (ctx: CliContext) => verbCommand(ctx, socket);

/** `wsk getlocaladdress`: the local address of a connected socket. @module */

import type { CliContext } from "../cli/command.ts";
import { verbCommand } from "../cli/verb.ts";
import type { VerbDecl } from "../steps/verb.ts";

/** The `getlocaladdress` verb. */
export const getlocaladdress: VerbDecl = {
  name: "getlocaladdress",
  summary: "Connect to REMOTE and ask for the local address the kernel uses.",
  calls:
    "WskSocket, WskBind, WskConnect, WskGetLocalAddress, WskDisconnect, WskReceive, WskCloseSocket",
  examples: ["wsk getlocaladdress 127.0.0.1:8080", "wsk getlocaladdress [::1]:8080 --json"],
  target: "remote",
  options: [],
  make: () => ({ verb: "getlocaladdress" }),
  handle: true,
  script: true,
};

/** Builds the `getlocaladdress` command. */
export const command = (ctx: CliContext) => verbCommand(ctx, getlocaladdress);

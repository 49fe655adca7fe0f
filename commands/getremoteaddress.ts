/** `wsk getremoteaddress`: the remote address of a connected socket. @module */

import type { CliContext } from "../cli/command.ts";
import { verbCommand } from "../cli/verb.ts";
import type { VerbDecl } from "../steps/verb.ts";

/** The `getremoteaddress` verb. */
export const getremoteaddress: VerbDecl = {
  name: "getremoteaddress",
  summary: "Connect to REMOTE and ask for the remote address the kernel uses.",
  calls:
    "WskSocket, WskBind, WskConnect, WskGetRemoteAddress, WskDisconnect, WskReceive, WskCloseSocket",
  examples: ["wsk getremoteaddress 127.0.0.1:8080", "wsk getremoteaddress [::1]:8080 --json"],
  target: "remote",
  options: [],
  make: () => ({ verb: "getremoteaddress" }),
  handle: true,
  script: true,
};

/** Builds the `getremoteaddress` command. */
export const command = (ctx: CliContext) => verbCommand(ctx, getremoteaddress);

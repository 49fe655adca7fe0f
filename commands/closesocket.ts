/** `wsk closesocket`: WskCloseSocket, by default with a receive pending. @module */

import type { CliContext } from "../cli/command.ts";
import { verbCommand } from "../cli/verb.ts";
import type { VerbDecl } from "../steps/verb.ts";

/** The `closesocket` verb. */
export const closesocket: VerbDecl = {
  name: "closesocket",
  summary: "Connect, post a WskReceive, and close the socket under it: the receive completes " +
    "with STATUS_CANCELLED (expected, exit 0) and the connection is reset.",
  calls: "WskSocket, WskBind, WskConnect, WskReceive, WskCloseSocket",
  examples: ["wsk closesocket 127.0.0.1:8080", "wsk closesocket @1 --no-pending-receive"],
  target: "remote",
  options: [
    {
      flags: "--pending-receive",
      help: "post a WskReceive first and close under it (the command line's default)",
    },
    { flags: "--no-pending-receive", help: "close with nothing pending (the script's default)" },
  ],
  make: ({ options, entry }) => ({
    verb: "closesocket",
    pendingReceive: (options.pendingReceive as boolean | undefined) ?? entry === "cli",
  }),
  handle: true,
  script: true,
};

/** Builds the `closesocket` command. */
export const command = (ctx: CliContext) => verbCommand(ctx, closesocket);

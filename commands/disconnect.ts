/** `wsk disconnect`: graceful (with final data) or abortive WskDisconnect. @module */

import { InvalidArgumentError } from "@commander-js/extra-typings";
import type { CliContext } from "../cli/command.ts";
import { verbCommand } from "../cli/verb.ts";
import type { VerbDecl } from "../steps/verb.ts";
import { parseData } from "../syntax/values.ts";

/** The `disconnect` verb. */
export const disconnect: VerbDecl = {
  name: "disconnect",
  summary: "Connect, then disconnect: gracefully (FIN, after DATA) or with --abortive (RST).",
  calls: "WskSocket, WskBind, WskConnect, WskDisconnect, WskReceive (graceful: until the peer's " +
    "FIN), WskCloseSocket",
  examples: [
    'wsk disconnect 127.0.0.1:8080 --data "bye\\n"',
    "wsk disconnect 127.0.0.1:8080 --abortive",
  ],
  target: "remote",
  args: [{ name: "[data]", help: "final data sent before the FIN", parse: parseData }],
  options: [
    { flags: "--data <text>", help: "final data sent before the FIN", parse: parseData },
    {
      flags: "--abortive",
      help: "reset the connection (WSK_FLAG_ABORTIVE) instead of FIN",
      conflicts: ["data"],
    },
  ],
  make({ args, options }) {
    const data = (args[0] ?? options.data) as Uint8Array | undefined;
    if (data && options.abortive) {
      throw new InvalidArgumentError("--abortive takes no data (an RST carries none)");
    }
    return { verb: "disconnect", abortive: options.abortive === true, ...(data ? { data } : {}) };
  },
  abortive: (own) => own.verb === "disconnect" && own.abortive,
  handle: true,
  script: true,
};

/** Builds the `disconnect` command. */
export const command = (ctx: CliContext) => verbCommand(ctx, disconnect);

/** `wsk connectex`: WskConnectEx with first data. @module */

import { InvalidArgumentError } from "@commander-js/extra-typings";
import type { CliContext } from "../cli/command.ts";
import { verbCommand } from "../cli/verb.ts";
import { bindOf, CONNECT_OPTIONS, REMOTE_ARG, retryOf, type VerbDecl } from "../steps/verb.ts";
import { type Endpoint, parseFirstData } from "../syntax/values.ts";

const FIRST_DATA_HELP = "first data, up to 65535 bytes (escapes: \\r \\n \\t \\0 \\\\ \\xNN)";

/** The `connectex` verb. */
export const connectex: VerbDecl = {
  name: "connectex",
  summary: "Connect to REMOTE sending DATA right after the handshake, then disconnect and close.",
  calls: "WskSocket, WskBind, WskConnectEx, WskDisconnect, WskReceive (until the peer's FIN), " +
    "WskCloseSocket",
  examples: ['wsk connectex 127.0.0.1:6379 --data "PING\\r\\n"', "wsk connectex ::1 6379 hi"],
  target: "none",
  args: [REMOTE_ARG, { name: "[data]", help: FIRST_DATA_HELP, parse: parseFirstData }],
  options: [
    { flags: "--data <text>", help: FIRST_DATA_HELP, parse: parseFirstData },
    ...CONNECT_OPTIONS,
  ],
  make({ args, options }) {
    const data = (args[1] ?? options.data) as Uint8Array | undefined;
    if (!data) {
      throw new InvalidArgumentError(
        "required option '--data <text>' not specified (or give the data as an argument)",
      );
    }
    if (args[1] !== undefined && options.data !== undefined) {
      throw new InvalidArgumentError("give the data once: as an argument or with --data");
    }
    return {
      verb: "connectex",
      remote: args[0] as Endpoint,
      data,
      ...bindOf(options),
      ...retryOf(options),
    };
  },
  handle: true,
  script: true,
};

/** Builds the `connectex` command. */
export const command = (ctx: CliContext) => verbCommand(ctx, connectex);

/** `wsk connect`: WskConnect on a fresh socket. @module */

import { InvalidArgumentError } from "@commander-js/extra-typings";
import type { CliContext } from "../cli/command.ts";
import { verbCommand } from "../cli/verb.ts";
import {
  bindOf,
  CONNECT_OPTIONS,
  REMOTE_ARG,
  retryOf,
  TLS_OPTIONS,
  tlsOf,
  type VerbDecl,
} from "../steps/verb.ts";
import type { Endpoint } from "../syntax/values.ts";

/** The `connect` verb. */
export const connect: VerbDecl = {
  name: "connect",
  summary: "Connect to REMOTE, then disconnect gracefully and close; with --retry-until, wait " +
    "for a server to come up.",
  calls: "WskSocket, WskBind, WskConnect, WskDisconnect, WskReceive (until the peer's FIN), " +
    "WskCloseSocket",
  examples: [
    "wsk connect 127.0.0.1:8080",
    "wsk connect 127.0.0.1 8080 --retry-until 30s",
    "wsk connect [::1]:8080 --bind [::1]:0 --json",
    "wsk connect example.org:443 --tls --alpn h2,http/1.1",
  ],
  target: "none",
  args: [REMOTE_ARG],
  options: [...CONNECT_OPTIONS, ...TLS_OPTIONS],
  make({ args, options, entry }) {
    if (options.retryUntil !== undefined && options.status !== undefined) {
      throw new InvalidArgumentError("--retry-until cannot be used with --status");
    }
    return {
      verb: "connect",
      remote: args[0] as Endpoint,
      ...bindOf(options),
      ...retryOf(options),
      ...tlsOf(options),
      // The command line keeps the fast backing: a plain connect never aborts on purpose.
      ...(entry === "cli" ? { abortive: false } : {}),
    };
  },
  handle: true,
  script: true,
};

/** Builds the `connect` command. */
export const command = (ctx: CliContext) => verbCommand(ctx, connect);

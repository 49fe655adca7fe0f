/** `wsk connect`: WskConnect on a fresh socket. @module */

import type { CliContext } from "../cli/command.ts";
import { runAction, wskCommand } from "../cli/command.ts";
import { parseLocal, parseRemote, parseRetryUntil } from "../syntax/values.ts";

/** Builds the `connect` command. */
export function connectCommand(ctx: CliContext) {
  return wskCommand(
    "connect",
    "Connect to REMOTE, then disconnect gracefully and close; with --retry-until, wait for a " +
      "server to come up.",
    "WskSocket, WskBind, WskConnect, WskDisconnect, WskReceive (until the peer's FIN), " +
      "WskCloseSocket",
    [
      "wsk connect 127.0.0.1:8080",
      "wsk connect [::1]:8080 --bind [::1]:0 --json",
      "wsk connect 127.0.0.1:8080 --retry-until 30000",
    ],
  )
    .argument("<remote>", "HOST:PORT or [IPV6]:PORT", parseRemote)
    .option("--bind <local>", "local address to bind (default: wildcard, port 0)", parseLocal)
    .option(
      "--retry-until <ms>",
      "retry a refused (or reset) connect with a new socket until MS milliseconds (or a " +
        "duration such as 5s) have passed, pausing 50-200 ms; one WskConnect line with " +
        "calls=ATTEMPTS",
      parseRetryUntil,
    )
    .action(async (remote, options, command) => {
      await runAction(ctx, command, options, async (run) => {
        const socket = options.retryUntil === undefined
          ? await run.connected(remote, options.bind)
          : await run.connectedRetrying(remote, options.bind, options.retryUntil);
        if (socket) await run.finish(socket);
      });
    });
}

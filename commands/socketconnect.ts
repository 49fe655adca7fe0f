/** `wsk socketconnect`: WskSocketConnect in one call. @module */

import { IPPROTO_TCP, SOCK_STREAM, wildcard } from "../provider/mod.ts";
import type { CliContext } from "./_command.ts";
import { runAction, wskCommand } from "./_command.ts";
import { parseLocal, parseRemote } from "./_parse.ts";

/** Builds the `socketconnect` command. */
export function socketconnectCommand(ctx: CliContext) {
  return wskCommand(
    "socketconnect",
    "Create, bind and connect in one call, then disconnect gracefully and close.",
    "WskSocketConnect, WskDisconnect, WskReceive (until the peer's FIN), WskCloseSocket",
    ["wsk socketconnect 127.0.0.1:8080", "wsk socketconnect [::1]:8080 --bind [::1]:0"],
  )
    .argument("<remote>", "HOST:PORT or [IPV6]:PORT", parseRemote)
    .option("--bind <local>", "local address (default: wildcard, port 0)", parseLocal)
    .action(async (remoteEndpoint, options, command) => {
      await runAction(ctx, command, options, async (run) => {
        const remote = await run.resolve(remoteEndpoint);
        if (remote === null) return;
        const local = options.bind
          ? await run.resolve(options.bind, remote.family)
          : wildcard(remote.family, 0);
        if (local === null) return;
        const d = run.npi.Dispatch;
        const start = performance.now();
        const made = await d.WskSocketConnect(
          run.npi.Client,
          SOCK_STREAM,
          IPPROTO_TCP,
          local,
          remote,
          0,
          undefined,
          null,
          run.irp(),
        );
        run.report(
          "WskSocketConnect",
          made.socket ?? { id: 0, localAddress: local, remoteAddress: remote },
          made,
          performance.now() - start,
        );
        if (made.socket) await run.finish(made.socket);
      });
    });
}

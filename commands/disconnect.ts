/** `wsk disconnect`: graceful (with final data) or abortive WskDisconnect. @module */

import { WSK_FLAG_ABORTIVE, wskBuf } from "../provider/mod.ts";
import { Option } from "@commander-js/extra-typings";
import type { CliContext } from "../cli/command.ts";
import { runAction, wskCommand } from "../cli/command.ts";
import { parseData, parseLocal, parseRemote } from "../syntax/values.ts";
import { pump } from "../engine/pump.ts";

/** Builds the `disconnect` command. */
export function disconnectCommand(ctx: CliContext) {
  return wskCommand(
    "disconnect",
    "Connect, then disconnect: gracefully (FIN, after --data) or with --abortive (RST).",
    "WskSocket, WskBind, WskConnect, WskDisconnect, WskReceive (graceful: until the peer's " +
      "FIN), WskCloseSocket",
    ['wsk disconnect 127.0.0.1:8080 --data "bye\\n"', "wsk disconnect 127.0.0.1:8080 --abortive"],
  )
    .argument("<remote>", "HOST:PORT or [IPV6]:PORT", parseRemote)
    .option("--data <text>", "final data sent before the FIN", parseData)
    .addOption(
      new Option("--abortive", "reset the connection (WSK_FLAG_ABORTIVE) instead of FIN")
        .conflicts("data"),
    )
    .option("--bind <local>", "local address to bind (default: wildcard, port 0)", parseLocal)
    .action(async (remote, options, command) => {
      await runAction(ctx, command, options, async (run) => {
        const abortive = options.abortive === true;
        const socket = await run.connected(remote, options.bind, { abortive });
        if (!socket) return;
        const d = socket.Dispatch;
        const buffer = options.data ? wskBuf(options.data) : null;
        await run.call(
          "WskDisconnect",
          socket,
          () => d.WskDisconnect(socket, buffer, abortive ? WSK_FLAG_ABORTIVE : 0, run.irp()),
        );
        if (socket.state === "LFIN") await pump(run, socket, { show: true });
        await run.close(socket);
      });
    });
}

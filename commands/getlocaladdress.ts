/** `wsk getlocaladdress` and `wsk getremoteaddress`. @module */

import type { CliContext } from "../cli/command.ts";
import { runAction, wskCommand } from "../cli/command.ts";
import { parseLocal, parseRemote } from "../syntax/values.ts";

/** Builds `getlocaladdress` or `getremoteaddress`: the query on a freshly connected socket. */
export function addressQueryCommand(ctx: CliContext, which: "local" | "remote") {
  const call = which === "local" ? "WskGetLocalAddress" : "WskGetRemoteAddress";
  return wskCommand(
    `get${which}address`,
    `Connect to REMOTE and ask for the ${which} address the kernel uses.`,
    `WskSocket, WskBind, WskConnect, ${call}, WskDisconnect, WskReceive, WskCloseSocket`,
    [`wsk get${which}address 127.0.0.1:8080`, `wsk get${which}address [::1]:8080 --json`],
  )
    .argument("<remote>", "HOST:PORT or [IPV6]:PORT", parseRemote)
    .option("--bind <local>", "local address to bind (default: wildcard, port 0)", parseLocal)
    .action(async (remote, options, command) => {
      await runAction(ctx, command, options, async (run) => {
        const socket = await run.connected(remote, options.bind);
        if (!socket) return;
        const d = socket.Dispatch;
        const start = performance.now();
        const got = which === "local"
          ? await d.WskGetLocalAddress(socket, run.irp())
          : await d.WskGetRemoteAddress(socket, run.irp());
        // The line carries the address the call returned, not the model's cached view.
        run.report(
          call,
          {
            id: socket.id,
            localAddress: which === "local" ? got.address ?? null : socket.localAddress,
            remoteAddress: which === "remote" ? got.address ?? null : socket.remoteAddress,
          },
          got,
          performance.now() - start,
        );
        await run.finish(socket);
      });
    });
}

/** Builds the `getlocaladdress` command. */
export function getlocaladdressCommand(ctx: CliContext) {
  return addressQueryCommand(ctx, "local");
}

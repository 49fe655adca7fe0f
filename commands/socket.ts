/** `wsk socket`: WskSocket, optionally bound. @module */

import {
  type AddressFamily,
  IPPROTO_TCP,
  NT_SUCCESS,
  SOCK_STREAM,
  WSK_FLAG_CONNECTION_SOCKET,
  WSK_FLAG_LISTEN_SOCKET,
  WskListenSocket,
} from "../provider/mod.ts";
import type { CliContext } from "./_command.ts";
import { runAction, wskCommand } from "./_command.ts";
import { type Endpoint, parseFamily, parseLocal } from "./_parse.ts";
import type { Run } from "./_run.ts";

/**
 * WskSocket (connection or listening), then WskBind and WskGetLocalAddress when `bind` is
 * given, then WskCloseSocket. Shared by `socket` and `bind`.
 */
export async function createAndBind(
  run: Run,
  family: AddressFamily,
  listen: boolean,
  bind: Endpoint | undefined,
): Promise<void> {
  const local = bind ? await run.resolve(bind, family) : undefined;
  if (local === null) return;
  const d = run.npi.Dispatch;
  const flags = listen ? WSK_FLAG_LISTEN_SOCKET : WSK_FLAG_CONNECTION_SOCKET;
  const made = await run.call(
    "WskSocket",
    (c) => c.socket ?? c.listenSocket ?? null,
    () =>
      d.WskSocket(
        run.npi.Client,
        local?.family ?? family,
        SOCK_STREAM,
        IPPROTO_TCP,
        flags,
        undefined,
        null,
        run.irp(),
      ),
  );
  const socket = made.socket ?? made.listenSocket;
  if (!socket) return;
  if (local) {
    const bound = await run.call(
      "WskBind",
      socket,
      () =>
        socket instanceof WskListenSocket
          ? socket.Dispatch.WskBind(socket, local, 0, run.irp())
          : socket.Dispatch.WskBind(socket, local, 0, run.irp()),
    );
    if (NT_SUCCESS(bound.status)) {
      const start = performance.now();
      const got = socket instanceof WskListenSocket
        ? await socket.Dispatch.WskGetLocalAddress(socket, run.irp())
        : await socket.Dispatch.WskGetLocalAddress(socket, run.irp());
      // The line shows the address the call returned (the kernel's port for :0).
      run.report(
        "WskGetLocalAddress",
        {
          id: socket.id,
          localAddress: got.address ?? null,
        },
        got,
        performance.now() - start,
      );
    }
  }
  await run.close(socket);
}

/** Builds the `socket` command. */
export function socketCommand(ctx: CliContext) {
  return wskCommand(
    "socket",
    "Create a socket (connection, or listening with --listen); bind it with --bind.",
    "WskSocket, WskBind and WskGetLocalAddress (with --bind), WskCloseSocket",
    ["wsk socket", "wsk socket --family inet6 --listen --bind [::1]:0"],
  )
    .option("--family <family>", "inet or inet6", parseFamily, 2 as AddressFamily)
    .option("--listen", "a listening socket (WSK_FLAG_LISTEN_SOCKET)")
    .option("--bind <local>", "bind to this local address", parseLocal)
    // Handled before parsing (main.ts routes the command to the session agent); listed for help.
    .option("--session", "make the socket in the session agent and keep it (see wsk session)")
    .action(async (options, command) => {
      await runAction(ctx, command, options, async (run) => {
        await createAndBind(run, options.family, options.listen === true, options.bind);
      });
    });
}

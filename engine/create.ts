/** WskSocket, optionally bound (WskBind, WskGetLocalAddress), then closed. @module */

import {
  type AddressFamily,
  IPPROTO_TCP,
  NT_SUCCESS,
  SOCK_STREAM,
  WSK_FLAG_CONNECTION_SOCKET,
  WSK_FLAG_LISTEN_SOCKET,
  WskListenSocket,
} from "../provider/mod.ts";
import { type Endpoint } from "../syntax/values.ts";
import type { CallContext } from "./context.ts";

/**
 * WskSocket (connection or listening), then WskBind and WskGetLocalAddress when `bind` is
 * given, then WskCloseSocket. Shared by `socket` and `bind`.
 */
export async function createAndBind(
  run: CallContext,
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

/**
 * `wsk demo`: the embedded default. An echo listener in this process, and clients that walk
 * every dispatch function against it, one status line per call.
 *
 * @module
 */

import {
  IPPROTO_TCP,
  NPI_WSK_INTERFACE_ID,
  NT_SUCCESS,
  parseSockAddr,
  SIO_WSK_QUERY_IDEAL_SEND_BACKLOG,
  SO_KEEPALIVE,
  SO_WSK_EVENT_CALLBACK,
  SOCK_STREAM,
  SOL_SOCKET,
  STATUS_CANCELLED,
  STATUS_CONNECTION_RESET,
  STATUS_NOT_SUPPORTED,
  STATUS_PENDING,
  TCP_NODELAY,
  ulong,
  WSK_EVENT_RECEIVE,
  WSK_FLAG_ABORTIVE,
  WSK_FLAG_WAITALL,
  wskBuf,
  type WskConnectionSocket,
  type WskDataIndication,
  WskGetOption,
  WskIoctl,
  WskSetOption,
} from "../provider/mod.ts";
import type { CliContext } from "../cli/command.ts";
import { runAction, wskCommand } from "../cli/command.ts";
import { pump } from "../engine/pump.ts";
import type { Run } from "../engine/context.ts";
import { echo } from "../engine/accept/modes.ts";

const text = new TextEncoder();

/** Client A: the explicit route, options, data both ways, events and WskRelease, FIN. */
async function explicitRoute(run: Run, server: string): Promise<void> {
  const kept: WskDataIndication[] = [];
  const socket = await run.socket(2, {}, {
    WskReceiveEvent(_context, _flags, indication, bytesIndicated) {
      if (indication) kept.push(indication);
      run.report(
        "WskReceiveEvent",
        socket,
        { status: STATUS_PENDING, information: bytesIndicated },
        0,
      );
      return STATUS_PENDING;
    },
  });
  if (!socket) return;
  const s: WskConnectionSocket = socket;
  const d = s.Dispatch;
  const option = (name: string, value: number) => ({ option: name, value });
  await run.call(
    "WskControlSocket",
    s,
    () => d.WskControlSocket(s, WskSetOption, SO_KEEPALIVE, SOL_SOCKET, ulong(1), null, run.irp()),
    option("SO_KEEPALIVE", 1),
  );
  await run.call("WskBind", s, () => d.WskBind(s, parseSockAddr("127.0.0.1:0"), 0, run.irp()));
  await run.call("WskGetLocalAddress", s, () => d.WskGetLocalAddress(s, run.irp()));
  await run.call("WskConnect", s, () => d.WskConnect(s, parseSockAddr(server), 0, run.irp()));
  if (s.state !== "ESTAB") return await run.close(s);
  await run.call("WskGetLocalAddress", s, () => d.WskGetLocalAddress(s, run.irp()));
  await run.call("WskGetRemoteAddress", s, () => d.WskGetRemoteAddress(s, run.irp()));
  await run.call(
    "WskControlSocket",
    s,
    () => d.WskControlSocket(s, WskSetOption, TCP_NODELAY, IPPROTO_TCP, ulong(1), null, run.irp()),
    option("TCP_NODELAY", 1),
  );
  const out = new Uint8Array(8);
  const got = await d.WskControlSocket(
    s,
    WskGetOption,
    TCP_NODELAY,
    IPPROTO_TCP,
    null,
    out,
    run.irp(),
  );
  run.report("WskControlSocket", s, got, 0, option("TCP_NODELAY", out[0]!));
  const backlog = await d.WskControlSocket(
    s,
    WskIoctl,
    SIO_WSK_QUERY_IDEAL_SEND_BACKLOG,
    0,
    null,
    out,
    run.irp(),
  );
  run.report(
    "WskControlSocket",
    s,
    backlog,
    0,
    option("SIO_WSK_QUERY_IDEAL_SEND_BACKLOG", new DataView(out.buffer).getUint32(0, true)),
  );
  const hello = text.encode("hello, wsk");
  await run.send(s, hello);
  const reply = new Uint8Array(hello.length);
  const echoed = await run.call(
    "WskReceive",
    s,
    () => d.WskReceive(s, wskBuf(reply), WSK_FLAG_WAITALL, run.irp()),
  );
  if (NT_SUCCESS(echoed.status) && new TextDecoder().decode(reply) !== "hello, wsk") {
    run.reporter.fail();
  }
  await run.call("WskSendEx", s, () => d.WskSendEx(s), {}, STATUS_NOT_SUPPORTED);
  await run.call("WskReceiveEx", s, () => d.WskReceiveEx(s), {}, STATUS_NOT_SUPPORTED);
  await run.call(
    "WskControlSocket",
    s,
    () =>
      d.WskControlSocket(s, WskSetOption, SO_WSK_EVENT_CALLBACK, SOL_SOCKET, {
        NpiId: NPI_WSK_INTERFACE_ID,
        EventMask: WSK_EVENT_RECEIVE,
      }),
    option("SO_WSK_EVENT_CALLBACK", WSK_EVENT_RECEIVE),
  );
  await run.send(s, text.encode("event"));
  for (let i = 0; i < 100 && kept.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  for (const list of kept) await run.call("WskRelease", s, () => d.WskRelease(s, list));
  await run.call(
    "WskDisconnect",
    s,
    () => d.WskDisconnect(s, wskBuf(text.encode("bye")), 0, run.irp()),
  );
  await pump(run, s, { show: true });
  await run.close(s);
}

/** Client B: WskConnectEx with first data, then an abortive disconnect (RST). */
async function connectExAndAbort(run: Run, server: string): Promise<void> {
  const s = await run.socket(2, { abortive: true });
  if (!s) return;
  const d = s.Dispatch;
  await run.call("WskBind", s, () => d.WskBind(s, parseSockAddr("0.0.0.0:0"), 0, run.irp()));
  await run.call(
    "WskConnectEx",
    s,
    () => d.WskConnectEx(s, parseSockAddr(server), wskBuf(text.encode("first data")), 0, run.irp()),
  );
  if (s.state === "ESTAB") {
    await pump(run, s, { limit: 10, waitAll: true, show: true });
    await run.call(
      "WskDisconnect",
      s,
      () => d.WskDisconnect(s, null, WSK_FLAG_ABORTIVE, run.irp()),
    );
  }
  await run.close(s);
}

/** Client C: WskSocketConnect, then WskCloseSocket under a pending WskReceive. */
async function closeWithPending(run: Run, server: string): Promise<void> {
  const d = run.npi.Dispatch;
  const made = await run.call(
    "WskSocketConnect",
    (c) => c.socket ?? null,
    () =>
      d.WskSocketConnect(
        run.npi.Client,
        SOCK_STREAM,
        IPPROTO_TCP,
        parseSockAddr("0.0.0.0:0"),
        parseSockAddr(server),
        0,
        undefined,
        null,
        run.irp(),
      ),
  );
  const s = made.socket;
  if (!s) return;
  const pending = s.Dispatch.WskReceive(s, wskBuf(new Uint8Array(16)), 0, run.irp());
  const described = { id: s.id, localAddress: s.localAddress, remoteAddress: s.remoteAddress };
  await run.close(s);
  run.report("WskReceive", described, await pending, 0, {}, STATUS_CANCELLED);
}

/** Builds the `demo` command. */
export function demoCommand(ctx: CliContext) {
  return wskCommand(
    "demo",
    "Start an echo listener on 127.0.0.1:0 in this process and walk every dispatch function " +
      "against it, printing each status line.",
    "all of them: WskSocket, WskSocketConnect, WskBind, WskConnect, WskConnectEx, " +
      "WskGetLocalAddress, WskGetRemoteAddress, WskControlSocket, WskSend, WskReceive, " +
      "WskSendEx, WskReceiveEx, WskRelease, WskDisconnect, WskAccept, WskCloseSocket",
    ["wsk demo", "wsk demo --json"],
  ).action(async (options, command) => {
    await runAction(ctx, command, options, async (run) => {
      const listener = await run.listen(parseSockAddr("127.0.0.1:0"));
      if (!listener) return;
      const l = listener.Dispatch;
      const local = await run.call(
        "WskGetLocalAddress",
        listener,
        () => l.WskGetLocalAddress(listener, run.irp()),
      );
      if (!local.address) return await run.close(listener);
      const server = `127.0.0.1:${local.address.port}`;
      // The server side: accept three connections and echo each, as echosrv does. The second
      // client resets its connection on purpose, so a reset there is expected.
      const serving = (async () => {
        const handlers: Promise<void>[] = [];
        for (let i = 0; i < 3; i++) {
          const accepted = await run.call(
            "WskAccept",
            (c) => c.socket ?? listener,
            () => l.WskAccept(listener, 0, undefined, null, run.irp()),
          );
          if (!accepted.socket) break;
          handlers.push(echo(run, accepted.socket, i === 1 ? STATUS_CONNECTION_RESET : undefined));
        }
        await Promise.all(handlers);
      })();
      await explicitRoute(run, server);
      await connectExAndAbort(run, server);
      await closeWithPending(run, server);
      await serving;
      await run.close(listener);
    });
  });
}

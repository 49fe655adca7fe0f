/** `wsk release`: keep receive indications, then return them with WskRelease. @module */

import {
  NPI_WSK_INTERFACE_ID,
  SO_WSK_EVENT_CALLBACK,
  SOL_SOCKET,
  STATUS_CONNECTION_RESET,
  STATUS_IO_TIMEOUT,
  STATUS_PENDING,
  STATUS_SUCCESS,
  WSK_EVENT_DISCONNECT,
  WSK_EVENT_RECEIVE,
  WSK_FLAG_ABORTIVE,
  type WskClientConnectionDispatch,
  type WskConnectionSocket,
  type WskDataIndication,
  WskSetOption,
} from "../provider/mod.ts";
import type { CliContext } from "../cli/command.ts";
import { runAction, wskCommand } from "../cli/command.ts";
import { parseData, parseLocal, parseRemote } from "../syntax/values.ts";
import { joinBytes } from "../engine/context.ts";

/** The bytes of an indication list, in order. */
function indicationBytes(list: WskDataIndication | null): Uint8Array {
  const parts: Uint8Array[] = [];
  let total = 0;
  for (let item = list; item !== null; item = item.Next) {
    const mdl = item.Buffer.Mdl;
    if (mdl) {
      parts.push(mdl.bytes.subarray(item.Buffer.Offset, item.Buffer.Offset + item.Buffer.Length));
    }
    total += item.Buffer.Length;
  }
  return joinBytes(parts, total);
}

/** Builds the `release` command. */
export function command(ctx: CliContext) {
  return wskCommand(
    "release",
    "Connect with WskReceiveEvent enabled, keep every indication (STATUS_PENDING), send " +
      "--data, half-close, wait for the peer's FIN, then hand each list back with WskRelease.",
    "WskSocket, WskBind, WskConnect, WskControlSocket (SO_WSK_EVENT_CALLBACK), WskSend, " +
      "WskDisconnect, WskRelease, WskCloseSocket; events WskReceiveEvent, WskDisconnectEvent",
    ['wsk release 127.0.0.1:7 --data "hello\\n"'],
  )
    .argument("<remote>", "HOST:PORT or [IPV6]:PORT", parseRemote)
    .option("--data <text>", "data to send once events are on", parseData)
    .option("--bind <local>", "local address to bind (default: wildcard, port 0)", parseLocal)
    .action(async (remote, options, command) => {
      await runAction(ctx, command, options, async (run) => {
        const held: WskDataIndication[] = [];
        let socket: WskConnectionSocket | null = null;
        let peerGone: () => void = () => {};
        const gone = new Promise<void>((resolve) => peerGone = resolve);
        const dispatch: WskClientConnectionDispatch = {
          WskReceiveEvent(_context, _flags, indication, bytesIndicated) {
            if (indication === null) return STATUS_SUCCESS;
            held.push(indication);
            run.report(
              "WskReceiveEvent",
              socket,
              { status: STATUS_PENDING, information: bytesIndicated },
              0,
              {
                data: indicationBytes(indication),
              },
            );
            return STATUS_PENDING;
          },
          WskDisconnectEvent(_context, flags) {
            // The callback itself returns STATUS_SUCCESS; the line reports what happened, and a
            // reset fails the run like any other reset.
            const abortive = (flags & WSK_FLAG_ABORTIVE) !== 0;
            run.report(
              "WskDisconnectEvent",
              socket,
              {
                status: abortive ? STATUS_CONNECTION_RESET : STATUS_SUCCESS,
                information: 0,
                ...(abortive ? { message: "The peer reset the connection" } : {}),
              },
              0,
              { value: abortive ? "abortive" : "graceful" },
            );
            peerGone();
            return STATUS_SUCCESS;
          },
        };
        socket = await run.connected(remote, options.bind, {}, dispatch);
        if (!socket) return;
        const s = socket;
        const d = s.Dispatch;
        await run.call("WskControlSocket", s, () =>
          // Enabling events takes no IRP (WSK's rule), so no deadline applies here.
          d.WskControlSocket(s, WskSetOption, SO_WSK_EVENT_CALLBACK, SOL_SOCKET, {
            NpiId: NPI_WSK_INTERFACE_ID,
            EventMask: WSK_EVENT_RECEIVE | WSK_EVENT_DISCONNECT,
          }), { option: "SO_WSK_EVENT_CALLBACK", value: "WSK_EVENT_RECEIVE|WSK_EVENT_DISCONNECT" });
        if (options.data) await run.send(s, options.data);
        await run.call("WskDisconnect", s, () => d.WskDisconnect(s, null, 0, run.irp()));
        let timer: ReturnType<typeof setTimeout> | undefined;
        const waited = await Promise.race([
          gone.then(() => true),
          new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(false), run.timeout)),
        ]);
        clearTimeout(timer);
        if (!waited) {
          run.report("WskDisconnectEvent", s, {
            status: STATUS_IO_TIMEOUT,
            information: 0,
            message: `No FIN from the peer within ${run.timeout} ms`,
          }, run.timeout);
        }
        for (const list of held) {
          const bytes = indicationBytes(list);
          await run.call("WskRelease", s, () => d.WskRelease(s, list), {
            information: bytes.length,
          });
        }
        await run.close(s);
      });
    });
}

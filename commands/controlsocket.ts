/** `wsk controlsocket`: WskControlSocket set, get and IOCTL. @module */

import { NT_SUCCESS, ulong, WskGetOption, WskIoctl, WskSetOption } from "../provider/mod.ts";
import type { CliContext } from "./_command.ts";
import { runAction, wskCommand } from "./_command.ts";
import {
  collect,
  OPTION_NAMES,
  type OptionSetting,
  type OptionSpec,
  parseLocal,
  parseOptionName,
  parseOptionSetting,
  parseRemote,
} from "./_parse.ts";
import { UsageError } from "./_usage.ts";

function readValue(output: Uint8Array, size: number): number {
  const view = new DataView(output.buffer, output.byteOffset, output.byteLength);
  return size === 8 ? Number(view.getBigUint64(0, true)) : view.getUint32(0, true);
}

/** Builds the `controlsocket` command. */
export function controlsocketCommand(ctx: CliContext) {
  return wskCommand(
    "controlsocket",
    `Connect, then set and read socket options or issue IOCTLs. Names: ${OPTION_NAMES.join(", ")}`,
    "WskSocket, WskBind, WskConnect, WskControlSocket, WskDisconnect, WskReceive, WskCloseSocket",
    [
      "wsk controlsocket 127.0.0.1:8080 --set TCP_NODELAY=1 --get TCP_NODELAY",
      "wsk controlsocket 127.0.0.1:8080 --get SIO_WSK_QUERY_RECEIVE_BACKLOG --json",
    ],
  )
    .argument("<remote>", "HOST:PORT or [IPV6]:PORT", parseRemote)
    .option("--set <name=value>", "WskSetOption (repeatable)", collect(parseOptionSetting))
    .option(
      "--get <name>",
      "WskGetOption, or WskIoctl for SIO_* names (repeatable)",
      collect(parseOptionName),
    )
    .option("--bind <local>", "local address to bind (default: wildcard, port 0)", parseLocal)
    .action(async (remote, options, command) => {
      const sets: OptionSetting[] = options.set ?? [];
      const gets: OptionSpec[] = options.get ?? [];
      if (sets.length === 0 && gets.length === 0) {
        throw new UsageError("Nothing to do: give at least one --set NAME=VALUE or --get NAME");
      }
      await runAction(ctx, command, options, async (run) => {
        const socket = await run.connected(remote, options.bind);
        if (!socket) return;
        const d = socket.Dispatch;
        for (const { spec, value } of sets) {
          await run.call(
            "WskControlSocket",
            socket,
            () =>
              d.WskControlSocket(
                socket,
                WskSetOption,
                spec.code,
                spec.level,
                ulong(value),
                null,
                run.irp(),
              ),
            {
              option: spec.name,
              value,
            },
          );
        }
        for (const spec of gets) {
          const output = new Uint8Array(spec.size);
          const type = spec.kind === "ioctl" ? WskIoctl : WskGetOption;
          const start = performance.now();
          const got = await d.WskControlSocket(
            socket,
            type,
            spec.code,
            spec.level,
            null,
            output,
            run.irp(),
          );
          run.report("WskControlSocket", socket, got, performance.now() - start, {
            option: spec.name,
            ...(NT_SUCCESS(got.status) ? { value: readValue(output, spec.size) } : {}),
          });
        }
        await run.finish(socket);
      });
    });
}

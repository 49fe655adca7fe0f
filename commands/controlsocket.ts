/** `wsk controlsocket`: WskControlSocket set, get and IOCTL. @module */

import type { CliContext } from "../cli/command.ts";
import { runAction, wskCommand } from "../cli/command.ts";
import {
  collect,
  OPTION_NAMES,
  type OptionSetting,
  type OptionSpec,
  parseLocal,
  parseOptionName,
  parseOptionSetting,
  parseRemote,
} from "../syntax/values.ts";
import { UsageError } from "../syntax/usage.ts";

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
        for (const setting of sets) await run.setOption(socket, setting);
        for (const spec of gets) await run.getOption(socket, spec);
        await run.finish(socket);
      });
    });
}

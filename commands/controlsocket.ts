/** `wsk controlsocket`: WskControlSocket set, get and IOCTL. @module */

import { InvalidArgumentError } from "@commander-js/extra-typings";
import type { CliContext } from "../cli/command.ts";
import { verbCommand } from "../cli/verb.ts";
import type { VerbDecl } from "../steps/verb.ts";
import {
  collect,
  OPTION_NAMES,
  type OptionSetting,
  type OptionSpec,
  parseOptionName,
  parseOptionSetting,
} from "../syntax/values.ts";

/** The `controlsocket` verb. */
export const controlsocket: VerbDecl = {
  name: "controlsocket",
  summary: "Connect, then set and read socket options or issue IOCTLs. Names: " +
    OPTION_NAMES.join(", "),
  calls: "WskSocket, WskBind, WskConnect, WskControlSocket, WskDisconnect, WskReceive, " +
    "WskCloseSocket",
  examples: [
    "wsk controlsocket 127.0.0.1:8080 --set TCP_NODELAY=1 --get TCP_NODELAY",
    "wsk controlsocket 127.0.0.1:8080 --get SIO_WSK_QUERY_RECEIVE_BACKLOG --json",
  ],
  target: "remote",
  options: [
    {
      flags: "--set <name=value>",
      help: "WskSetOption (repeatable)",
      parse: collect(parseOptionSetting),
      values: OPTION_NAMES.map((name) => `${name}=`),
    },
    {
      flags: "--get <name>",
      help: "WskGetOption, or WskIoctl for SIO_* names (repeatable)",
      parse: collect(parseOptionName),
      values: OPTION_NAMES,
    },
  ],
  make({ options }) {
    const set = (options.set ?? []) as OptionSetting[];
    const get = (options.get ?? []) as OptionSpec[];
    if (set.length === 0 && get.length === 0) {
      throw new InvalidArgumentError(
        "Nothing to do: give at least one --set NAME=VALUE or --get NAME",
      );
    }
    return { verb: "controlsocket", set, get };
  },
  abortive: () => false,
  handle: true,
  script: true,
};

/** Builds the `controlsocket` command. */
export const command = (ctx: CliContext) => verbCommand(ctx, controlsocket);

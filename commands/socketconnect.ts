/** `wsk socketconnect`: WskSocketConnect in one call, to one port or a list of ports. @module */

import type { CliContext } from "../cli/command.ts";
import { verbCommand } from "../cli/verb.ts";
import { InvalidArgumentError } from "@commander-js/extra-typings";
import {
  bindOf,
  CONNECT_OPTIONS,
  retryOf,
  TLS_OPTIONS,
  tlsOf,
  type VerbDecl,
} from "../steps/verb.ts";
import { MAX_PORT_LIST, parsePortList, type PortList } from "../syntax/values.ts";

/** The `socketconnect` verb. */
export const socketconnect: VerbDecl = {
  name: "socketconnect",
  summary: "Create, bind and connect in one call, then disconnect gracefully and close; given a " +
    "port list, check each port with one line (zero I/O).",
  calls: "WskSocketConnect, WskDisconnect, WskReceive (until the peer's FIN), WskCloseSocket",
  examples: [
    "wsk socketconnect 127.0.0.1:8080",
    "wsk socketconnect 127.0.0.1:8000-8010",
    "wsk socketconnect localhost:22,80,443 --timeout 2s",
    "wsk socketconnect 127.0.0.1:6390,6401 --retry-until 30s",
  ],
  target: "none",
  args: [{
    name: "<remote>",
    help: "HOST:PORT (or HOST PORT), or a port list HOST:P1-P2 / HOST:P1,P2,P3 (at most " +
      `${MAX_PORT_LIST} ports): one WskSocketConnect line per port, closed at once without ` +
      "data; exit 0 only when every port connected",
    parse: parsePortList,
    address: true,
  }],
  options: [...CONNECT_OPTIONS, ...TLS_OPTIONS],
  make({ args, options }) {
    const list = args[0] as PortList;
    const tls = tlsOf(options);
    if (list.isList && tls.tls) {
      throw new InvalidArgumentError("--tls cannot be used with a port list");
    }
    return {
      verb: "socketconnect",
      remote: list.endpoint,
      ...(list.isList ? { ports: list.ports } : {}),
      ...bindOf(options),
      ...retryOf(options),
      ...tls,
    };
  },
  session: true,
  handle: false,
  script: true,
};

/** Builds the `socketconnect` command. */
export const command = (ctx: CliContext) => verbCommand(ctx, socketconnect);

/** `wsk send`: WskSend of data, a file, standard input or a byte pattern. @module */

import { InvalidArgumentError } from "@commander-js/extra-typings";
import type { CliContext } from "../cli/command.ts";
import { verbCommand } from "../cli/verb.ts";
import { TRACE_OPTIONS, tracedOf, type VerbDecl } from "../steps/verb.ts";
import { parseData, parseSize } from "../syntax/values.ts";

/** The `send` verb. */
export const send: VerbDecl = {
  name: "send",
  summary: "Connect and send DATA, --file, standard input or --pattern; with --receive, print " +
    "what comes back while sending, then half-close and print the rest until the peer's FIN.",
  calls: "WskSocket, WskBind, WskConnect, WskSend, WskDisconnect, WskReceive (until the peer's " +
    "FIN), WskCloseSocket",
  examples: [
    "wsk send 127.0.0.1 8080 'GET / HTTP/1.0\\r\\n\\r\\n' --receive",
    "head -c 1M /dev/urandom | wsk send 127.0.0.1:9000",
    "wsk send 127.0.0.1:9000 --pattern 1G",
    'wsk send 127.0.0.1:6379 --data "PING\\r\\n" --receive --json | jq .',
  ],
  target: "remote",
  args: [{
    name: "[data]",
    help: "the text to send (escapes: \\r \\n \\t \\xNN)",
    parse: parseData,
  }],
  options: [
    {
      flags: "--data <text>",
      help: "send this text (escapes: \\r \\n \\t \\xNN)",
      parse: parseData,
      conflicts: ["file", "pattern"],
    },
    {
      flags: "--file <path>",
      help: "send this file (- for standard input)",
      conflicts: ["pattern"],
    },
    {
      flags: "--pattern <size>",
      help: "send SIZE bytes of the deterministic verification pattern (suffixes K, M, G: " +
        "KiB, MiB, GiB); check it with receive --verify-pattern or accept --mode verify",
      parse: parseSize,
    },
    { flags: "--nodelay", help: "send with WSK_FLAG_NODELAY" },
    {
      flags: "--receive",
      help: "write what the peer sends to stdout while sending (full duplex; with --json in " +
        "WskReceive records); after the input, half-close and wait for the peer's FIN",
    },
    ...TRACE_OPTIONS,
  ],
  make({ args, options, entry }) {
    const data = (args[0] ?? options.data) as Uint8Array | undefined;
    if (args[0] !== undefined && (options.data ?? options.file ?? options.pattern) !== undefined) {
      throw new InvalidArgumentError(
        "give the data once: as an argument, --data, --file or --pattern",
      );
    }
    if (
      entry === "script" && data === undefined && options.pattern === undefined &&
      options.file === undefined
    ) {
      throw new InvalidArgumentError(
        "send needs data (an argument or --data), --file or --pattern",
      );
    }
    return {
      verb: "send",
      ...(data === undefined ? {} : { data }),
      ...(options.file === undefined ? {} : { file: options.file as string }),
      ...(options.pattern === undefined ? {} : { pattern: options.pattern as number }),
      nodelay: options.nodelay === true,
      receive: options.receive === true,
      ...tracedOf(options),
    };
  },
  // A send cut short must abort with an RST, never end with a FIN that makes a truncated stream
  // look complete; with --receive the reply's speed wins and the fast backing is kept.
  abortive: (own) => !(own.verb === "send" && own.receive),
  handle: true,
  script: true,
};

/** Builds the `send` command. */
export const command = (ctx: CliContext) => verbCommand(ctx, send);

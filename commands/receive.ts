/** `wsk receive`: WskReceive until N bytes or the peer's FIN. @module */

import { InvalidArgumentError } from "@commander-js/extra-typings";
import type { CliContext } from "../cli/command.ts";
import { verbCommand } from "../cli/verb.ts";
import { parseRegex, TRACE_OPTIONS, tracedOf, type VerbDecl } from "../steps/verb.ts";
import { parseByteCount, parseData, parseSize } from "../syntax/values.ts";

/** The `receive` verb. */
export const receive: VerbDecl = {
  name: "receive",
  summary: "Connect and receive until --bytes N or the peer's FIN, writing the data to --output, " +
    "checking it (--expect, --until, --verify-pattern) or draining it (--drain).",
  calls: "WskSocket, WskBind, WskConnect, WskReceive, WskDisconnect, WskCloseSocket",
  examples: [
    "wsk receive 127.0.0.1:8080 --output reply.bin",
    "wsk receive 127.0.0.1:8080 --bytes 5 --waitall --output -",
    "wsk receive 127.0.0.1 8080 --expect '+PONG'",
    "wsk receive 127.0.0.1:9000 --verify-pattern 1G",
    "wsk receive @1 --output -",
  ],
  target: "remote",
  options: [
    { flags: "--bytes <n>", help: "stop after N bytes", parse: parseByteCount },
    { flags: "--waitall", help: "receive with WSK_FLAG_WAITALL (fill each buffer)" },
    {
      flags: "--drain",
      help: "one WskReceive with WSK_FLAG_DRAIN: discard until the peer's FIN",
      conflicts: ["waitall", "bytes", "output", "verifyPattern", "until"],
    },
    { flags: "--until <text>", help: "receive until this text has arrived", parse: parseData },
    {
      flags: "--expect <text>",
      help: "the data must contain this text (exit 3 if not)",
      parse: parseData,
    },
    {
      flags: "--expect-re <regex>",
      help: "the data must match this regular expression (exit 3 if not)",
      parse: parseRegex,
    },
    {
      flags: "--verify-pattern [size]",
      help: "check the data against the send --pattern bytes (SIZE: the exact total, suffixes K, " +
        "M, G); a mismatch, too few or too many bytes is STATUS_DATA_ERROR; the data is " +
        "written only with an explicit --output",
      parse: parseSize,
      conflicts: ["until", "expect", "expectRe"],
    },
    {
      flags: "--output <file>",
      help:
        "where the data goes: - for stdout (the command line's default without --json; lines then " +
        "go to stderr); a " +
        "file is written beside FILE and renamed over it only once data arrived; without " +
        "--output, --json puts it in per-chunk WskReceive records, and a script step or a handle " +
        "shows it in its WskReceive line",
    },
    { flags: "--append", help: "add the data at the end of --output FILE instead of replacing it" },
    ...TRACE_OPTIONS,
  ],
  make({ options, entry, given }) {
    const verify = options.verifyPattern as number | true | undefined;
    if (typeof verify === "number" && options.bytes !== undefined) {
      throw new InvalidArgumentError(
        `Cannot use "--bytes ${options.bytes}" with "--verify-pattern ${verify}": the pattern's ` +
          "size is the total",
      );
    }
    const matching = options.until ?? options.expect ?? options.expectRe;
    // The command line writes the data to stdout unless it checks it or prints JSON.
    const output = (options.output as string | undefined) ??
      (entry === "cli" && verify === undefined && matching === undefined &&
          options.json !== true && options.drain !== true
        ? "-"
        : undefined);
    if (options.append && (output === undefined || output === "-")) {
      throw new InvalidArgumentError('Cannot use "--append" without "--output FILE"');
    }
    if (given("output") && matching !== undefined) {
      throw new InvalidArgumentError(
        "Cannot use --output with --until, --expect or --expect-re: those keep the data to look in",
      );
    }
    return {
      verb: "receive",
      ...(options.bytes === undefined ? {} : { bytes: options.bytes as number }),
      waitAll: options.waitall === true,
      drain: options.drain === true,
      ...(options.until === undefined ? {} : { until: options.until as Uint8Array }),
      ...(options.expect === undefined ? {} : { expect: options.expect as Uint8Array }),
      ...(options.expectRe === undefined ? {} : { expectRe: options.expectRe as RegExp }),
      ...(verify === undefined ? {} : { verifyPattern: verify }),
      ...(output === undefined ? {} : { output }),
      append: options.append === true,
      ...tracedOf(options),
    };
  },
  // The fast reading backing: bulk reads are what receive is for.
  abortive: () => false,
  // A bulk TLS read: Deno.startTls reads it about twice as fast as node:tls (docs/tls.md).
  fastTls: true,
  handle: true,
  script: true,
};

/** Builds the `receive` command. */
export const command = (ctx: CliContext) => verbCommand(ctx, receive);

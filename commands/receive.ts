/** `wsk receive`: WskReceive until N bytes or the peer's FIN. @module */

import { Option } from "@commander-js/extra-typings";
import { NT_SUCCESS, STATUS_DATA_ERROR } from "../provider/mod.ts";
import type { CliContext } from "../cli/command.ts";
import { runAction, wskCommand } from "../cli/command.ts";
import { parseByteCount, parseLocal, parseRemote, parseSize } from "../syntax/values.ts";
import { OutputFile, payloadRecords } from "../engine/output.ts";
import { PatternVerifier } from "../engine/pattern.ts";
import { Progress, progressFlag } from "../report/progress.ts";
import { pump } from "../engine/pump.ts";
import { HexTrace } from "../report/trace.ts";
import { UsageError } from "../syntax/usage.ts";

/** Builds the `receive` command. */
export function receiveCommand(ctx: CliContext) {
  return wskCommand(
    "receive",
    "Connect and receive until --bytes N or the peer's FIN, writing the data to --output, or " +
      "checking it against the pattern of send --pattern.",
    "WskSocket, WskBind, WskConnect, WskReceive, WskDisconnect, WskCloseSocket",
    [
      "wsk receive 127.0.0.1:8080 --output reply.bin",
      "wsk receive 127.0.0.1:8080 --bytes 5 --waitall --output -",
      "wsk receive 127.0.0.1:8080 --drain",
      "wsk receive 127.0.0.1:9000 --verify-pattern 1G",
    ],
  )
    .argument("<remote>", "HOST:PORT or [IPV6]:PORT", parseRemote)
    .option("--bytes <n>", "stop after N bytes", parseByteCount)
    .option("--waitall", "receive with WSK_FLAG_WAITALL (fill each buffer)")
    .addOption(
      new Option("--drain", "one WskReceive with WSK_FLAG_DRAIN: discard until the peer's FIN")
        .conflicts(["waitall", "bytes", "output", "verifyPattern"]),
    )
    .addOption(
      new Option(
        "--verify-pattern [size]",
        "check the data against the send --pattern bytes (SIZE: the exact total, suffixes K, " +
          "M, G); a mismatch, too few or too many bytes is STATUS_DATA_ERROR and exit 1; the " +
          "data is written only with an explicit --output",
      ).argParser(parseSize),
    )
    .option(
      "--output <file>",
      "where the data goes (- for stdout, the default; with --json the default puts it in the " +
        "WskReceive records); a file is written beside FILE and renamed over it only once " +
        "data arrived",
      "-",
    )
    .option("--append", "add the data at the end of --output FILE instead of replacing it")
    .option("--bind <local>", "local address to bind (default: wildcard, port 0)", parseLocal)
    .option("--hex", "hex dump every chunk received (<) to stderr")
    .option(
      "--progress",
      "show bytes, rate and elapsed time on stderr (default: on a terminal, over 1 MiB)",
    )
    .option("--no-progress", "never show progress")
    .action(async (remote, options, command) => {
      const flag = progressFlag(command, options);
      const verifying = options.verifyPattern !== undefined;
      const expected = typeof options.verifyPattern === "number"
        ? options.verifyPattern
        : undefined;
      if (expected !== undefined && options.bytes !== undefined) {
        throw new UsageError(
          `Cannot use "--bytes ${options.bytes}" with "--verify-pattern ${expected}": the ` +
            "pattern's size is the total",
        );
      }
      // Verifying writes the data nowhere unless --output was given on the command line.
      const writing = !verifying || command.getOptionValueSource("output") === "cli";
      // --json without --output: the data travels in WskReceive records on stdout.
      const inRecords = writing && options.json === true && !options.drain &&
        command.getOptionValueSource("output") !== "cli";
      const toStdout = writing && options.output === "-" && !options.drain && !inRecords;
      if (options.append && (options.output === "-" || !writing)) {
        throw new UsageError('Cannot use "--append" without "--output FILE"');
      }
      // Opened before any socket: a path that cannot be written is a usage error.
      const file = writing && options.output !== "-"
        ? await OutputFile.open(options.output, options.append === true)
        : null;
      let keep = false;
      try {
        await runAction(ctx, command, options, async (run) => {
          if (options.hex) run.hex = new HexTrace((line) => run.reporter.note(line));
          // The deno backing (the fast one for bulk reads). A connection whose data could not
          // be delivered gets WskCloseSocket, the abortive close, never the graceful disconnect
          // that would make it look complete.
          const socket = await run.connected(remote, options.bind);
          if (!socket) return;
          let ok = true;
          if (options.drain) {
            const drained = await run.drain(socket);
            ok = NT_SUCCESS(drained.status);
          } else {
            const sink = file
              ? (bytes: Uint8Array) => file.write(bytes)
              : inRecords
              ? payloadRecords(run, socket)
              : toStdout
              ? (bytes: Uint8Array) => ctx.writePayload(bytes)
              : () => Promise.resolve();
            const total = expected ?? options.bytes ?? null;
            const got = await pump(run, socket, {
              ...(options.bytes === undefined ? {} : { limit: options.bytes }),
              waitAll: options.waitall === true,
              sink,
              idle: true,
              ...(verifying ? { verify: new PatternVerifier(expected) } : {}),
              progress: await Progress.for("received", total, flag, options.json === true),
            });
            keep = got.delivered > 0 && !got.writeFailed;
            // A stream that ended short has had its FIN: it still ends gracefully.
            ok = NT_SUCCESS(got.status) ||
              (got.status === STATUS_DATA_ERROR && socket.state === "RFIN");
          }
          if (ok) await run.finish(socket);
          else await run.close(socket);
        }, (reporter) => {
          if (toStdout) reporter.payloadOnStdout = true;
        });
      } finally {
        await file?.close(keep);
      }
    });
}

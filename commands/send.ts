/** `wsk send`: WskSend of --data, a file, standard input or a byte pattern. @module */

import { Option } from "@commander-js/extra-typings";
import { NT_SUCCESS, WSK_FLAG_NODELAY } from "../provider/mod.ts";
import type { WskCompletion } from "../provider/mod.ts";
import type { CliContext } from "../cli/command.ts";
import { runAction, wskCommand } from "../cli/command.ts";
import { parseData, parseLocal, parseRemote, parseSize } from "../syntax/values.ts";
import { Progress, progressFlag } from "../report/progress.ts";
import { HexTrace } from "../report/trace.ts";
import { UsageError } from "../syntax/usage.ts";
import { DuplexReceive } from "../engine/pump.ts";
import { payloadRecords } from "../engine/output.ts";

import { type ByteSource, closeQuietly, sendPattern, sendStream } from "../engine/send.ts";
/** Builds the `send` command. */
export function sendCommand(ctx: CliContext) {
  return wskCommand(
    "send",
    "Connect and send --data, --file, standard input or --pattern; with --receive, print what " +
      "comes back while sending, then half-close and print the rest until the peer's FIN.",
    "WskSocket, WskBind, WskConnect, WskSend, WskDisconnect, WskReceive (until the peer's " +
      "FIN), WskCloseSocket",
    [
      'wsk send 127.0.0.1:8080 --data "GET / HTTP/1.0\\r\\n\\r\\n" --receive',
      "head -c 1M /dev/urandom | wsk send 127.0.0.1:9000",
      "wsk send 127.0.0.1:9000 --pattern 1G",
      'wsk send 127.0.0.1:6379 --data "PING\\r\\n" --receive --hex',
    ],
  )
    .argument("<remote>", "HOST:PORT or [IPV6]:PORT", parseRemote)
    .addOption(
      new Option("--data <text>", "send this text (escapes: \\r \\n \\t \\xNN)").argParser(
        parseData,
      ).conflicts(["file", "pattern"]),
    )
    .addOption(
      new Option("--file <path>", "send this file (- for standard input)").conflicts("pattern"),
    )
    .addOption(
      new Option(
        "--pattern <size>",
        "send SIZE bytes of the deterministic verification pattern (suffixes K, M, G: KiB, " +
          "MiB, GiB); check it with receive --verify-pattern or accept --mode verify",
      ).argParser(parseSize),
    )
    .option("--nodelay", "send with WSK_FLAG_NODELAY")
    .option(
      "--receive",
      "write what the peer sends to stdout while sending (full duplex; with --json in " +
        "WskReceive records); after the input, half-close and wait for the peer's FIN",
    )
    .option("--bind <local>", "local address to bind (default: wildcard, port 0)", parseLocal)
    .option("--hex", "hex dump every chunk sent (>) and received (<) to stderr")
    .option(
      "--progress",
      "show bytes, rate and elapsed time on stderr (default: on a terminal, over 1 MiB)",
    )
    .option("--no-progress", "never show progress")
    .action(async (remote, options, command) => {
      const flag = progressFlag(command, options);
      // Open the source before any socket, so an unreadable file is a usage error (exit 2).
      let source: ByteSource | null = null;
      let size: number | null = null;
      if (options.data === undefined && options.pattern === undefined) {
        if (options.file === undefined || options.file === "-") source = ctx.stdin();
        else {
          try {
            const file = await Deno.open(options.file, { read: true });
            const info = await file.stat();
            if (info.isDirectory) {
              file.close();
              throw new Error("it is a directory");
            }
            if (info.isFile) size = info.size;
            source = file;
          } catch (error) {
            throw new UsageError(
              `Cannot read file "${options.file}": ${
                error instanceof Error ? error.message : error
              }`,
            );
          }
        }
      }
      await runAction(ctx, command, options, async (run) => {
        const flags = options.nodelay ? WSK_FLAG_NODELAY : 0;
        if (options.hex) run.hex = new HexTrace((line) => run.reporter.note(line));
        // A backing that can reset: a send cut short by --timeout must abort the connection
        // with an RST, never end it with a FIN that makes a truncated stream look complete.
        // Without --allow-ffi that is node's, whose writes are as fast as Deno's but whose reads
        // cost a copy (0.8× here): with --receive the reply's speed wins, the deno backing is
        // kept, and a cut stream ends with a FIN that its lines report (peer_saw=FIN).
        const socket = await run.connected(remote, options.bind, { abortive: !options.receive });
        if (!socket) {
          if (source) closeQuietly(source);
          return;
        }
        const json = options.json === true;
        // Ctrl-C or SIGTERM ends an input that is still open (a terminal, a pipe): the read
        // pending on it would otherwise hold the process until the input ends.
        let inputStopped = false;
        const stopInput = () => {
          inputStopped = true;
          if (source) closeQuietly(source);
        };
        // A read that fails because the input was stopped here is the input's end, not an error.
        const input: ByteSource | null = source && {
          read: (into) =>
            source.read(into).catch((error) => inputStopped ? null : Promise.reject(error)),
          close: () => source.close(),
        };
        run.signal.addEventListener("abort", stopInput, { once: true });
        // --receive is full duplex: what the peer sends is written out from the moment the
        // socket is connected, while the input is still sent; a failure there stops the input.
        // With --json the reply travels in WskReceive records on stdout.
        const reader = options.receive
          ? new DuplexReceive(
            run,
            socket,
            json ? payloadRecords(run, socket) : (bytes) => ctx.writePayload(bytes),
            {
              failure: stopInput,
              close: () => run.close(socket),
            },
          )
          : null;
        let sent: WskCompletion;
        if (options.data !== undefined) sent = await run.send(socket, options.data, flags);
        else if (options.pattern !== undefined) {
          const progress = await Progress.for("sent", options.pattern, flag, json);
          sent = await sendPattern(run, socket, options.pattern, flags, progress);
        } else {
          const progress = await Progress.for("sent", size, flag, json);
          try {
            sent = await sendStream(run, socket, input!, flags, progress);
          } catch (error) {
            // The input failed part-way (a read error): close the socket as after a failed
            // send, so the peer never sees a FIN for a cut stream and the open connection does
            // not keep the process alive after the error line.
            await run.close(socket);
            await reader?.end();
            throw error;
          } finally {
            closeQuietly(source!);
            run.signal.removeEventListener("abort", stopInput);
          }
        }
        if (reader) {
          const open = socket.state === "ESTAB" || socket.state === "RFIN";
          let finished = false;
          if (NT_SUCCESS(sent.status) && open) {
            const d = socket.Dispatch;
            const fin = await run.call(
              "WskDisconnect",
              socket,
              () => d.WskDisconnect(socket, null, 0, run.irp()),
            );
            finished = NT_SUCCESS(fin.status);
          }
          // Without our FIN (a failed send) there is nothing to wait for: closing aborts the
          // connection and ends the pending receive.
          await reader.finish(
            finished || socket.state === "LFIN",
            run.timeout,
            () => run.close(socket),
          );
          await run.close(socket);
        } else if (NT_SUCCESS(sent.status)) await run.finish(socket);
        else await run.close(socket);
      }, (reporter) => {
        if (options.receive && options.json !== true) reporter.payloadOnStdout = true;
      });
    });
}

/** `wsk send`: WskSend of --data, a file or standard input. @module */

import { Option } from "@commander-js/extra-typings";
import {
  NT_SUCCESS,
  STATUS_SUCCESS,
  WSK_FLAG_NODELAY,
  wskBuf,
  type WskCompletion,
} from "../provider/mod.ts";
import type { CliContext } from "./_command.ts";
import { runAction, wskCommand } from "./_command.ts";
import { parseData, parseLocal, parseRemote } from "./_parse.ts";
import { UsageError } from "./_usage.ts";
import type { Run } from "./_run.ts";
import type { WskConnectionSocket } from "../provider/mod.ts";

/** Chunk size for streamed sends. */
const SEND_CHUNK = 256 * 1024;

/**
 * Streams `source` through WskSend, one call per chunk, reported as one WskSend line with the
 * number of calls. Stops at the first failure.
 */
export async function sendStream(
  run: Run,
  socket: WskConnectionSocket,
  source: ReadableStream<Uint8Array>,
  flags: number,
): Promise<WskCompletion> {
  const d = socket.Dispatch;
  const start = performance.now();
  let total = 0;
  let calls = 0;
  let last: WskCompletion = { status: STATUS_SUCCESS, information: 0 };
  const reader = source.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      for (let offset = 0; offset < value.length; offset += SEND_CHUNK) {
        const chunk = value.subarray(offset, offset + SEND_CHUNK);
        last = await d.WskSend(socket, wskBuf(chunk), flags, run.irp());
        calls++;
        if (!NT_SUCCESS(last.status)) break;
        total += last.information;
      }
      if (!NT_SUCCESS(last.status)) break;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  run.report("WskSend", socket, last, performance.now() - start, {
    information: total,
    calls,
  });
  return NT_SUCCESS(last.status) ? { status: last.status, information: total } : last;
}

/** Builds the `send` command. */
export function sendCommand(ctx: CliContext) {
  return wskCommand(
    "send",
    "Connect and send --data, --file or standard input; with --receive, half-close and " +
      "print the reply.",
    "WskSocket, WskBind, WskConnect, WskSend, WskDisconnect, WskReceive (until the peer's " +
      "FIN), WskCloseSocket",
    [
      'wsk send 127.0.0.1:8080 --data "GET / HTTP/1.0\\r\\n\\r\\n" --receive',
      "head -c 1M /dev/urandom | wsk send 127.0.0.1:9000",
    ],
  )
    .argument("<remote>", "HOST:PORT or [IPV6]:PORT", parseRemote)
    .addOption(
      new Option("--data <text>", "send this text (escapes: \\r \\n \\t \\xNN)").argParser(
        parseData,
      ).conflicts("file"),
    )
    .option("--file <path>", "send this file (- for standard input)")
    .option("--nodelay", "send with WSK_FLAG_NODELAY")
    .option("--receive", "after sending, half-close and write the reply to stdout")
    .option("--bind <local>", "local address to bind (default: wildcard, port 0)", parseLocal)
    .action(async (remote, options, command) => {
      // Open the source before any socket, so an unreadable file is a usage error (exit 2).
      let source: ReadableStream<Uint8Array> | null = null;
      if (options.data === undefined) {
        if (options.file === undefined || options.file === "-") source = ctx.stdin();
        else {
          try {
            const file = await Deno.open(options.file, { read: true });
            if ((await file.stat()).isDirectory) {
              file.close();
              throw new Error("it is a directory");
            }
            source = file.readable;
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
        // A backing that can reset: a send cut short by --timeout must abort the connection
        // with an RST, never end it with a FIN that makes a truncated stream look complete.
        const socket = await run.connected(remote, options.bind, { abortive: true });
        if (!socket) {
          await source?.cancel().catch(() => {});
          return;
        }
        const sent = options.data !== undefined
          ? await run.call(
            "WskSend",
            socket,
            () => socket.Dispatch.WskSend(socket, wskBuf(options.data!), flags, run.irp()),
          )
          : await sendStream(run, socket, source!, flags);
        if (options.receive && NT_SUCCESS(sent.status)) {
          const d = socket.Dispatch;
          await run.call(
            "WskDisconnect",
            socket,
            () => d.WskDisconnect(socket, null, 0, run.irp()),
          );
          if (socket.state === "LFIN") {
            await run.receiveLoop(socket, { sink: (bytes) => ctx.writePayload(bytes), idle: true });
          }
          await run.close(socket);
        } else if (NT_SUCCESS(sent.status)) await run.finish(socket);
        else await run.close(socket);
      }, (reporter) => {
        if (options.receive) reporter.payloadOnStdout = true;
      });
    });
}

/** `wsk receive`: WskReceive until N bytes or the peer's FIN. @module */

import { Option } from "@commander-js/extra-typings";
import { NT_SUCCESS, WSK_FLAG_DRAIN } from "../provider/mod.ts";
import type { CliContext } from "./_command.ts";
import { runAction, wskCommand } from "./_command.ts";
import { parseByteCount, parseLocal, parseRemote } from "./_parse.ts";
import { UsageError } from "./_usage.ts";

/** Builds the `receive` command. */
export function receiveCommand(ctx: CliContext) {
  return wskCommand(
    "receive",
    "Connect and receive until --bytes N or the peer's FIN, writing the data to --output.",
    "WskSocket, WskBind, WskConnect, WskReceive, WskDisconnect, WskCloseSocket",
    [
      "wsk receive 127.0.0.1:8080 --output reply.bin",
      "wsk receive 127.0.0.1:8080 --bytes 5 --waitall --output -",
      "wsk receive 127.0.0.1:8080 --drain",
    ],
  )
    .argument("<remote>", "HOST:PORT or [IPV6]:PORT", parseRemote)
    .option("--bytes <n>", "stop after N bytes", parseByteCount)
    .option("--waitall", "receive with WSK_FLAG_WAITALL (fill each buffer)")
    .addOption(
      new Option("--drain", "one WskReceive with WSK_FLAG_DRAIN: discard until the peer's FIN")
        .conflicts(["waitall", "bytes", "output"]),
    )
    .option("--output <file>", "where the data goes (- for stdout, the default)", "-")
    .option("--bind <local>", "local address to bind (default: wildcard, port 0)", parseLocal)
    .action(async (remote, options, command) => {
      let file: Deno.FsFile | null = null;
      const toStdout = options.output === "-" && !options.drain;
      if (options.output !== "-") {
        try {
          file = await Deno.open(options.output, { write: true, create: true, truncate: true });
        } catch (error) {
          throw new UsageError(
            `Cannot write file "${options.output}": ${
              error instanceof Error ? error.message : error
            }`,
          );
        }
      }
      try {
        await runAction(ctx, command, options, async (run) => {
          const socket = await run.connected(remote, options.bind);
          if (!socket) return;
          const d = socket.Dispatch;
          let ok = true;
          if (options.drain) {
            const drained = await run.call(
              "WskReceive",
              socket,
              () =>
                d.WskReceive(
                  socket,
                  { Mdl: null, Offset: 0, Length: 0 },
                  WSK_FLAG_DRAIN,
                  run.irp(),
                ),
            );
            ok = NT_SUCCESS(drained.status);
          } else {
            const sink = file
              ? async (bytes: Uint8Array) => {
                for (let o = 0; o < bytes.length;) o += await file!.write(bytes.subarray(o));
              }
              : (bytes: Uint8Array) => ctx.writePayload(bytes);
            const got = await run.receiveLoop(socket, {
              ...(options.bytes === undefined ? {} : { limit: options.bytes }),
              waitAll: options.waitall === true,
              sink,
              idle: true,
            });
            ok = NT_SUCCESS(got.status);
          }
          if (ok) await run.finish(socket);
          else await run.close(socket);
        }, (reporter) => {
          if (toStdout) reporter.payloadOnStdout = true;
        });
      } finally {
        file?.close();
      }
    });
}

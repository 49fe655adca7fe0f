/** `wsk accept`: a listening socket serving connections in one of several modes. @module */

import { Option } from "@commander-js/extra-typings";
import {
  NT_SUCCESS,
  type NTSTATUS,
  wskBuf,
  type WskCompletion,
  type WskConnectionSocket,
} from "../provider/mod.ts";
import type { CliContext } from "./_command.ts";
import { runAction, wskCommand } from "./_command.ts";
import { parseCount, parseData, parseLocal } from "./_parse.ts";
import type { Run } from "./_run.ts";

/** What `accept` does with each connection. */
export type AcceptMode = "echo" | "discard" | "print" | "reply";

/**
 * The echo of Microsoft's echosrv sample: receive, send the same bytes back, until a 0-byte
 * receive (the peer's FIN); then a graceful disconnect and close. Any failure closes at once.
 * Reported as one WskReceive and one WskSend line with call counts.
 */
export async function echo(
  run: Run,
  socket: WskConnectionSocket,
  expected?: NTSTATUS,
): Promise<void> {
  const d = socket.Dispatch;
  const buffer = new Uint8Array(64 * 1024);
  const start = performance.now();
  let received = 0;
  let sent = 0;
  let receives = 0;
  let sends = 0;
  let failed: { call: string; completion: WskCompletion } | null = null;
  for (;;) {
    const got = await d.WskReceive(socket, wskBuf(buffer), 0, run.irp());
    receives++;
    if (!NT_SUCCESS(got.status)) {
      failed = { call: "WskReceive", completion: got };
      break;
    }
    if (got.information === 0) break;
    received += got.information;
    const put = await d.WskSend(socket, wskBuf(buffer.subarray(0, got.information)), 0, run.irp());
    sends++;
    if (!NT_SUCCESS(put.status)) {
      failed = { call: "WskSend", completion: put };
      break;
    }
    sent += put.information;
  }
  const elapsed = performance.now() - start;
  const ok = { status: 0, information: 0 };
  run.report(
    "WskReceive",
    socket,
    failed?.call === "WskReceive" ? failed.completion : ok,
    elapsed,
    {
      information: received,
      calls: receives,
    },
    expected,
  );
  run.report("WskSend", socket, failed?.call === "WskSend" ? failed.completion : ok, elapsed, {
    information: sent,
    calls: sends,
  }, expected);
  if (failed === null) {
    await run.call("WskDisconnect", socket, () => d.WskDisconnect(socket, null, 0, run.irp()));
  }
  await run.close(socket);
}

async function serve(
  run: Run,
  ctx: CliContext,
  socket: WskConnectionSocket,
  mode: AcceptMode,
  reply: Uint8Array,
): Promise<void> {
  switch (mode) {
    case "echo":
      return await echo(run, socket);
    case "reply": {
      const sent = await run.send(socket, reply);
      if (NT_SUCCESS(sent.status)) await run.finish(socket);
      else await run.close(socket);
      return;
    }
    case "discard":
    case "print": {
      const got = await run.receiveLoop(socket, {
        idle: true,
        ...(mode === "print"
          ? { sink: (bytes: Uint8Array) => ctx.writePayload(bytes) }
          : { sink: () => Promise.resolve() }),
      });
      if (NT_SUCCESS(got.status)) await run.finish(socket);
      else await run.close(socket);
      return;
    }
  }
}

/** Builds the `accept` command. */
export function acceptCommand(ctx: CliContext) {
  return wskCommand(
    "accept",
    "Listen on LOCAL (default 127.0.0.1:0) and serve --count connections concurrently.",
    "WskSocket, WskBind, WskAccept, then per connection WskReceive/WskSend (by mode), " +
      "WskDisconnect, WskCloseSocket",
    [
      "wsk accept --mode echo --count 10",
      'wsk accept [::1]:8080 --mode reply --reply "HTTP/1.0 200 OK\\r\\n\\r\\nhello"',
      "wsk accept 127.0.0.1:9000 --mode print > received.bin",
    ],
  )
    .argument("[local]", "IP:PORT or [IPV6]:PORT to listen on", parseLocal)
    .option("--count <n>", "connections to accept before exiting", parseCount, 1)
    .addOption(
      new Option("--mode <mode>", "what to do with each connection")
        .choices(["echo", "discard", "print", "reply"] as const)
        .default("echo" as const),
    )
    .option("--reply <text>", "the reply for --mode reply (escapes: \\r \\n \\t \\xNN)", parseData)
    .action(async (localEndpoint, options, command) => {
      await runAction(ctx, command, options, async (run) => {
        const local = localEndpoint
          ? await run.resolve(localEndpoint)
          : { family: 2 as const, address: "127.0.0.1", port: 0 };
        if (local === null) return;
        const listener = await run.listen(local);
        if (!listener) return;
        const l = listener.Dispatch;
        const handlers: Promise<void>[] = [];
        const reply = options.reply ?? new Uint8Array(0);
        for (let i = 0; i < options.count; i++) {
          // Waiting for a connection is unbounded unless --timeout was given.
          const accepted = await run.call(
            "WskAccept",
            (c) => c.socket ?? listener,
            () =>
              l.WskAccept(
                listener,
                0,
                undefined,
                null,
                run.irp(run.timeoutGiven ? run.timeout : null),
              ),
          );
          if (!accepted.socket) break;
          handlers.push(serve(run, ctx, accepted.socket, options.mode, reply));
        }
        await Promise.all(handlers);
        await run.close(listener);
      }, (reporter) => {
        if (options.mode === "print") reporter.payloadOnStdout = true;
      });
    });
}

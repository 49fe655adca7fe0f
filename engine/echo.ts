/** The echo of Microsoft's echosrv sample, on the one pump: what accept --mode echo and the demo serve. @module */

import {
  NT_SUCCESS,
  type NTSTATUS,
  STATUS_SUCCESS,
  wskBuf,
  type WskCompletion,
  type WskConnectionSocket,
} from "../provider/mod.ts";
import type { Run } from "./context.ts";
import { pump } from "./pump.ts";

/** Largest echo buffer: each receive is sent back before the next, so it bounds the round. */
const ECHO_MAX = 256 * 1024;

/**
 * The echo of Microsoft's echosrv sample on the shared pump: receive, send the same bytes back,
 * until a 0-byte receive (the peer's FIN). Reported as one WskReceive and one WskSend line with
 * call counts. Returns the failed call's completion, or null.
 */
export async function echoLoop(
  run: Run,
  socket: WskConnectionSocket,
  expected: () => NTSTATUS | undefined,
): Promise<WskCompletion | null> {
  const d = socket.Dispatch;
  let sent = 0;
  let sends = 0;
  const got = await pump(run, socket, {
    bufferSize: ECHO_MAX,
    idle: true,
    // Each chunk is sent back before the next receive (the pump reuses its buffer).
    sink: async (bytes) => {
      const put = await d.WskSend(socket, wskBuf(bytes), 0, run.irp());
      sends++;
      if (NT_SUCCESS(put.status)) sent += put.information;
      return put;
    },
    expected,
  });
  run.report(
    "WskSend",
    socket,
    got.sinkFailure ?? { status: STATUS_SUCCESS, information: 0 },
    got.elapsedMs,
    { information: sent, calls: sends },
    expected(),
  );
  return got.sinkFailure ?? (NT_SUCCESS(got.status) ? null : got.completion);
}

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
  const failed = await echoLoop(run, socket, () => expected);
  if (failed === null) {
    await run.call("WskDisconnect", socket, () => d.WskDisconnect(socket, null, 0, run.irp()));
  }
  await run.close(socket);
}

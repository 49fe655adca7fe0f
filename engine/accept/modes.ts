/**
 * What `accept` does with a connection's bytes, where a mode needs more than a receive loop:
 * the echo of Microsoft's echosrv sample (also the `demo` server) and the printing of payload
 * to standard output, which never holds the server up.
 *
 * @module
 */

import {
  NT_SUCCESS,
  type NTSTATUS,
  STATUS_IO_TIMEOUT,
  type WskCompletion,
  type WskConnectionSocket,
} from "../../provider/mod.ts";
import type { CallContext } from "../context.ts";
import { Relay } from "./relay.ts";
import { payloadRecords } from "../output.ts";
import type { Connection } from "./connections.ts";
import { NO_FLAGS, type Server, stoppedCompletion } from "./server.ts";

/**
 * Largest echo buffer, a quarter of the pump's RECEIVE_MAX (1 MiB). Each chunk is sent back
 * before the next receive, so the buffer bounds one round and the bytes an echo holds per
 * connection; a --keep-open echo server may hold many connections, and an echo peer reads
 * its reply before it sends more, so a larger buffer would seldom fill.
 */
const ECHO_MAX = 256 * 1024;

/**
 * The echo of Microsoft's echosrv sample on the shared pump: receive, send the same bytes back,
 * until a 0-byte receive (the peer's FIN). Reported as one WskReceive and one WskSend line with
 * call counts. Returns the failed call's completion, or null.
 */
export async function echoLoop(
  run: CallContext,
  socket: WskConnectionSocket,
  expected: () => NTSTATUS | undefined,
): Promise<WskCompletion | null> {
  const got = await new Relay(run, socket, socket, { bufferSize: ECHO_MAX, idle: true, expected })
    .run();
  return got.sinkFailure ?? (NT_SUCCESS(got.status) ? null : got.completion);
}

/**
 * The echo of Microsoft's echosrv sample: receive, send the same bytes back, until a 0-byte
 * receive (the peer's FIN); then a graceful disconnect and close. Any failure closes at once.
 * Reported as one WskReceive and one WskSend line with call counts.
 */
export async function echo(
  run: CallContext,
  socket: WskConnectionSocket,
  expected?: NTSTATUS,
): Promise<void> {
  const d = socket.Dispatch;
  const failed = await echoLoop(run, socket, () => expected);
  if (failed === null) {
    await run.call(
      "WskDisconnect",
      socket,
      () => d.WskDisconnect(socket, null, NO_FLAGS, run.irp()),
    );
  }
  await run.close(socket);
}

/**
 * How a payload write ended: `written`, or abandoned because the server was `stopped` or
 * standard output took nothing for `ms` (`stalled`). Rejects with the write's own error.
 */
function raceWrite(
  writing: Promise<void>,
  stop: AbortSignal,
  ms: number,
): Promise<"written" | "stopped" | "stalled"> {
  return new Promise((resolve, reject) => {
    const settle = (outcome: "written" | "stopped" | "stalled") => {
      clearTimeout(timer);
      stop.removeEventListener("abort", onStop);
      resolve(outcome);
    };
    const onStop = () => settle("stopped");
    const timer = setTimeout(() => settle("stalled"), ms);
    stop.addEventListener("abort", onStop, { once: true });
    // A write that fails after it was abandoned changes nothing (this promise is settled): its
    // bytes were already counted as dropped.
    writing.then(() => settle("written"), (error) => {
      clearTimeout(timer);
      stop.removeEventListener("abort", onStop);
      reject(error);
    });
  });
}

/** Each connection's payload records with --json (numbered per connection). */
const payloadSinks = new WeakMap<Connection, (bytes: Uint8Array, ms: number) => Promise<void>>();

/** The payload-record sink of `connection` (--mode print --json), made on first use. */
function recordsOf(server: Server, connection: Connection, call: string) {
  let sink = payloadSinks.get(connection);
  if (sink === undefined) {
    sink = payloadRecords(server.run, connection.socket, call);
    payloadSinks.set(connection, sink);
  }
  return sink;
}

/**
 * Writes received payload to standard output (--mode print): raw, or with --json in WskReceive
 * (WskReceiveEvent) records, one per chunk, so stdout stays JSON Lines. The write races the server's stop
 * and --timeout: once the server was stopped, or when standard output took nothing for that
 * long, the write is abandoned and this chunk and every later one of the connection are dropped,
 * counted in its Summary, and the connection fails (STATUS_CANCELLED, or STATUS_IO_TIMEOUT for
 * a stall). A write blocked in the kernel cannot be called off; it ends when the reader reads or
 * goes away, and until then it keeps the process (a second SIGINT or SIGTERM ends it).
 * Returns false when the bytes were dropped; throws what the write threw (standard output was
 * closed, a disk is full), which ends this connection with the write's status (the receive
 * loop's line and the Summary say it) and never the server.
 */
export async function printPayload(
  server: Server,
  connection: Connection,
  bytes: Uint8Array,
  call = "WskReceive",
  elapsedMs = 0,
): Promise<boolean> {
  let abandoned = false;
  if (connection.dropped === 0 && !server.stop.aborted) {
    const { run } = server;
    const outcome = await raceWrite(
      run.reporter.json
        ? recordsOf(server, connection, call)(bytes, elapsedMs)
        : server.writePayload(bytes),
      server.stop,
      run.timeout,
    );
    if (outcome === "written") return true;
    abandoned = true;
    if (outcome === "stalled") {
      connection.fail({
        status: STATUS_IO_TIMEOUT,
        information: 0,
        message: `Standard output took no data for ${run.timeout} ms`,
      }, "timeout");
    }
  }
  if (server.stop.aborted) connection.fail(stoppedCompletion(), "local-close");
  connection.drop(bytes.length, abandoned);
  return false;
}

/** Sending: streams of chunks, the pattern, an input read ahead, one WskSend line. @module */

import { NT_SUCCESS, STATUS_SUCCESS, wskBuf } from "../provider/mod.ts";
import type { NTSTATUS, WskCompletion, WskConnectionSocket } from "../provider/mod.ts";
import { PATTERN_BLOCK, patternView } from "./pattern.ts";
import { Progress } from "../report/progress.ts";
import type { CallContext } from "./context.ts";

/**
 * Chunk size for streamed sends (a read of a pipe returns less, one of a file this much). 1 MiB,
 * as the pattern's: node:tls sent 256 KiB writes at 348-367 MB/s, 64 KiB and 1 MiB ones at
 * 424-575, and plain TCP is no slower with it (measured by hand: docs/tls.md).
 */
const SEND_CHUNK = 1024 * 1024;

/**
 * Sends every chunk `chunks` yields, one WskSend each, reported as one WskSend line with the
 * number of calls; stops at the first failure. A chunk may be a buffer the source reuses: it is
 * sent (and the send completed) before the next one is asked for.
 */
async function sendChunks(
  run: CallContext,
  socket: WskConnectionSocket,
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  flags: number,
  progress: Progress | null,
  timeout: number = run.timeout,
  expected?: NTSTATUS,
): Promise<WskCompletion> {
  const d = socket.Dispatch;
  const start = performance.now();
  let total = 0;
  let calls = 0;
  let last: WskCompletion = { status: STATUS_SUCCESS, information: 0 };
  try {
    for await (const chunk of chunks) {
      last = await d.WskSend(socket, wskBuf(chunk), flags, run.irp(timeout));
      calls++;
      run.hex?.dump(">", socket.id, chunk.subarray(0, last.information));
      progress?.add(last.information);
      if (!NT_SUCCESS(last.status)) break;
      total += last.information;
    }
  } finally {
    progress?.stop();
  }
  run.report("WskSend", socket, last, performance.now() - start, {
    information: total,
    calls,
  }, expected);
  return NT_SUCCESS(last.status) ? { status: last.status, information: total } : last;
}

/** Where `send` streams from: standard input or a file (`Deno.stdin` and `Deno.FsFile` are). */
export interface ByteSource {
  /** Reads into `into`; the count read, or null at the end. */
  read(into: Uint8Array): Promise<number | null>;
  /** Closes the source; a read still pending then ends. */
  close(): void;
}

/** Closes `source` unless it already is. */
export function closeQuietly(source: ByteSource): void {
  try {
    source.close();
  } catch {
    // Already closed.
  }
}

/**
 * The chunks of `source`, read ahead into two reused buffers: while the caller sends one chunk,
 * the next read is already under way into the other buffer, so reading the input and writing
 * the socket overlap and no chunk is allocated. A chunk stays valid until the next one is asked
 * for. Whatever a read returns is yielded at once (an interactive line is not held back to fill
 * a buffer). Stopping early closes the source, which ends the read still pending.
 */
async function* readAhead(source: ByteSource): AsyncGenerator<Uint8Array> {
  let current = new Uint8Array(SEND_CHUNK);
  let spare = new Uint8Array(SEND_CHUNK);
  let pending: Promise<number | null> | null = source.read(current);
  try {
    for (;;) {
      const count = await pending;
      pending = null;
      if (count === null) return;
      const chunk = current.subarray(0, count);
      [current, spare] = [spare, current];
      pending = source.read(current);
      if (count > 0) yield chunk;
    }
  } finally {
    if (pending !== null) {
      pending.catch(() => {});
      closeQuietly(source);
    }
  }
}

/**
 * `total` bytes of the pattern (see `engine/pattern.ts`) in 1 MiB chunks, each a view of the pattern
 * table itself: nothing is filled or copied, and memory stays bounded whatever the total.
 */
function* patternChunks(total: number): Generator<Uint8Array> {
  for (let offset = 0; offset < total; offset += PATTERN_BLOCK) {
    yield patternView(offset, Math.min(PATTERN_BLOCK, total - offset));
  }
}

/**
 * Streams `source` through WskSend, one call per chunk, reported as one WskSend line with the
 * number of calls. Stops at the first failure.
 */
export function sendStream(
  run: CallContext,
  socket: WskConnectionSocket,
  source: ByteSource,
  flags: number,
  progress: Progress | null = null,
): Promise<WskCompletion> {
  return sendChunks(run, socket, readAhead(source), flags, progress);
}

/**
 * Sends `total` bytes of the verification pattern through WskSend (one reported line with the
 * number of calls), from one reused buffer.
 */
export function sendPattern(
  run: CallContext,
  socket: WskConnectionSocket,
  total: number,
  flags: number,
  progress: Progress | null = null,
  timeout: number = run.timeout,
  expected?: NTSTATUS,
): Promise<WskCompletion> {
  return sendChunks(run, socket, patternChunks(total), flags, progress, timeout, expected);
}

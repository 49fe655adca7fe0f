/**
 * The one receive pump. Every command that reads a connection until a bound (`receive`,
 * `send --receive`, each `accept` mode, `run` receive steps, the session agent, `demo`, the drain
 * after a graceful disconnect) reads it here: WskReceive calls into a buffer that grows from
 * 4 KiB to 1 MiB, each chunk handed to a sink, a pattern verifier, a preview or a matcher, and the
 * whole loop reported as one aggregated WskReceive line with `calls`.
 *
 * The pump can run beside a sender (full duplex): {@linkcode ReceivePump.bound} bounds it by the
 * idle timeout only once the sending side is done. {@linkcode ReadAhead} reads a connection into
 * a bounded buffer while a script's send step runs, so a peer that echoes is never blocked by
 * nobody reading.
 *
 * @module
 */

import {
  hostErrorCode,
  NT_SUCCESS,
  type NTSTATUS,
  type SockAddr,
  STATUS_BUFFER_OVERFLOW,
  STATUS_CANCELLED,
  STATUS_DATA_ERROR,
  STATUS_DISK_FULL,
  STATUS_IO_DEVICE_ERROR,
  STATUS_IO_TIMEOUT,
  STATUS_PIPE_BROKEN,
  STATUS_SUCCESS,
  STATUS_UNSUCCESSFUL,
  WSK_FLAG_WAITALL,
  type WskCompletion,
  type WskConnectionSocket,
  type WskIrp,
} from "../provider/mod.ts";
import type { PatternVerifier } from "./pattern.ts";
import type { Progress } from "../report/progress.ts";
import type { CallRecord } from "../report/reporter.ts";
import type { HexTrace } from "../report/trace.ts";

/** Largest receive buffer of the pump (bulk transfers read up to this much per call). */
export const RECEIVE_MAX = 1024 * 1024;

/** First size of the pump's buffer. */
export const RECEIVE_MIN = 4 * 1024;

/** Most bytes a data preview (`data=` on the line) keeps. */
export const PREVIEW_MAX = 4096;

/**
 * Most bytes {@linkcode ReadAhead} holds for a connection while a send step runs. Past it the
 * pump stops reading, TCP pushes back, and a peer that only sends while it is read from blocks:
 * the send step then ends with its own deadline's status.
 */
export const READ_AHEAD_MAX = 64 * 1024 * 1024;

/**
 * A receive buffer: it starts at {@linkcode RECEIVE_MIN} and doubles each time a receive fills
 * it, up to a maximum. An idle or chatty connection holds 4 KiB, so thousands of them stay cheap,
 * while a bulk transfer reaches 1 MiB per call after a few receives.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { GrowingBuffer } from "./pump.ts";
 *
 * const buffer = new GrowingBuffer(64 * 1024);
 * assert.equal(buffer.bytes.length, 4 * 1024);
 * buffer.received(100); // not full: stays
 * assert.equal(buffer.bytes.length, 4 * 1024);
 * buffer.received(4 * 1024);
 * buffer.received(8 * 1024);
 * buffer.received(16 * 1024);
 * buffer.received(32 * 1024);
 * buffer.received(64 * 1024); // at the maximum: stays
 * assert.equal(buffer.bytes.length, 64 * 1024);
 * ```
 */
export class GrowingBuffer {
  #bytes: Uint8Array;
  readonly #max: number;

  constructor(max: number = RECEIVE_MAX) {
    this.#max = Math.max(1, max);
    this.#bytes = new Uint8Array(Math.min(RECEIVE_MIN, this.#max));
  }

  /** The buffer for the next receive; a new one after it grew. */
  get bytes(): Uint8Array {
    return this.#bytes;
  }

  /** Records that a receive returned `count` bytes; a full buffer doubles for the next one. */
  received(count: number): void {
    if (count >= this.#bytes.length && this.#bytes.length < this.#max) {
      this.#bytes = new Uint8Array(Math.min(this.#max, this.#bytes.length * 2));
    }
  }
}

/** Concatenates chunks, up to `total` bytes. */
export function joinBytes(chunks: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk.subarray(0, total - offset), offset);
    offset += Math.min(chunk.length, total - offset);
    if (offset >= total) break;
  }
  return out;
}

/** A growable byte buffer for what a matching receive has taken so far. */
export class Received {
  #bytes = new Uint8Array(4096);
  #length = 0;

  get bytes(): Uint8Array {
    return this.#bytes.subarray(0, this.#length);
  }

  get length(): number {
    return this.#length;
  }

  push(chunk: Uint8Array): void {
    if (this.#length + chunk.length > this.#bytes.length) {
      const grown = new Uint8Array(Math.max(this.#bytes.length * 2, this.#length + chunk.length));
      grown.set(this.bytes);
      this.#bytes = grown;
    }
    this.#bytes.set(chunk, this.#length);
    this.#length += chunk.length;
  }
}

/** What the pump needs of a run: IRPs, the line it reports, and `--hex`. */
export interface PumpHost {
  /** Aborted by Ctrl-C (or a server's stop). */
  readonly signal: AbortSignal;
  /** The run's per-call bound, in milliseconds. */
  readonly timeout: number;
  readonly hex: HexTrace | null;
  report(
    call: string,
    socket: Pick<WskConnectionSocket, "id" | "localAddress"> & {
      readonly remoteAddress?: SockAddr | null;
    },
    completion: WskCompletion,
    elapsedMs: number,
    extra?: Partial<CallRecord>,
    expected?: NTSTATUS,
  ): void;
}

/**
 * What a sink says about a chunk: nothing (taken), `false` (stop here, a decision of the
 * caller's), or a failed completion of its own (an echo's WskSend), which ends the loop and is
 * returned as {@linkcode PumpResult.sinkFailure} for the caller to report. A sink that throws
 * (a write error on a file or standard output) ends the loop with the write's status on the
 * WskReceive line (see {@linkcode writeFailure}).
 */
export type SinkResult = void | boolean | WskCompletion;

/** Options of {@linkcode ReceivePump}. */
export interface PumpOptions {
  /** Stop after this many bytes (counting `carried`). */
  readonly limit?: number;
  /** Receive with WSK_FLAG_WAITALL. */
  readonly waitAll?: boolean;
  /** Largest buffer (default {@linkcode RECEIVE_MAX}). */
  readonly bufferSize?: number;
  /**
   * The bound in milliseconds: per call with `idle`, else for the whole loop; default the run's
   * --timeout. `null`: no bound until {@linkcode ReceivePump.bound} is called.
   */
  readonly timeout?: number | null;
  /** Bound each call by the timeout (an idle timeout) instead of the whole loop. */
  readonly idle?: boolean;
  /**
   * Where the data goes, chunk by chunk; a chunk is valid only until the sink resolves.
   * `elapsedMs`: how long the WskReceive that brought it took (0 for carried bytes).
   */
  readonly sink?: (bytes: Uint8Array, elapsedMs: number) => Promise<SinkResult>;
  /** Put up to 4 KiB of what arrived in the line's `data`. */
  readonly show?: boolean;
  /**
   * Check the stream against the pattern: the loop stops at the first mismatch, and a mismatch
   * (or a stream that ends short) is reported as STATUS_DATA_ERROR with the verifier's message.
   */
  readonly verify?: PatternVerifier;
  /**
   * Keep every byte (at most `matchMax`) and stop as soon as this says where the data the call
   * takes ends (`null`: not yet). The line's `data` is what was taken; bytes past the end are
   * returned as {@linkcode PumpResult.rest}.
   */
  readonly match?: (received: Received) => number | null;
  /** Most bytes a `match` keeps before it gives up with STATUS_BUFFER_OVERFLOW. */
  readonly matchMax?: number;
  /** Bytes taken earlier (a read-ahead, a matching step's rest): handled first, as received. */
  readonly carried?: Uint8Array;
  /** Count the bytes on a progress display (stopped before the line is reported). */
  readonly progress?: Progress | null;
  /** A status the caller expects the loop to end with (not counted as a failure). */
  readonly expected?: NTSTATUS | ((result: PumpResult) => NTSTATUS | undefined);
  /** Whether the pump reports its WskReceive line at its end (default true; else call `line`). */
  readonly report?: boolean;
  /** Also cancel the pump's calls when this aborts (besides the run's signal). */
  readonly signal?: AbortSignal;
}

/** How a pump ended. */
export interface PumpResult {
  /** The line's status: the failed call's, STATUS_DATA_ERROR, a write error's, or success. */
  readonly status: NTSTATUS;
  /** The completion the line reports. */
  readonly completion: WskCompletion;
  /** Bytes received (with the carried ones). */
  readonly total: number;
  /** Bytes the sink took. */
  readonly delivered: number;
  /** WskReceive calls issued. */
  readonly calls: number;
  /** The peer's FIN was reached. */
  readonly fin: boolean;
  /** The sink stopped the loop with `false`. */
  readonly stopped: boolean;
  /** A failed completion the sink returned (for the caller to report). */
  readonly sinkFailure: WskCompletion | null;
  /** A sink's write failed: the line carries its status. */
  readonly writeFailed: boolean;
  /** With `match`: what the call took, and the bytes received past it. */
  readonly taken?: Uint8Array;
  readonly rest?: Uint8Array;
  /** Milliseconds from the start of the loop to its end. */
  readonly elapsedMs: number;
  /** Reports the loop's WskReceive line (done by the pump itself unless `report` is false). */
  readonly line: () => void;
}

/**
 * The NTSTATUS of a failed local write (a sink's file or standard output): ENOSPC is
 * STATUS_DISK_FULL, EPIPE (the reader went away) STATUS_PIPE_BROKEN, EIO STATUS_IO_DEVICE_ERROR,
 * anything else STATUS_UNSUCCESSFUL, each with the host's message.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeFailure } from "./pump.ts";
 * import { STATUS_PIPE_BROKEN } from "../provider/mod.ts";
 *
 * const failure = writeFailure(new Deno.errors.BrokenPipe("Broken pipe (os error 32)"));
 * assert.equal(failure.status, STATUS_PIPE_BROKEN);
 * ```
 */
export function writeFailure(error: unknown): WskCompletion {
  const code = hostErrorCode(error) ?? "";
  const text = error instanceof Error ? error.message.split("\n")[0]! : String(error);
  let status: NTSTATUS = STATUS_UNSUCCESSFUL;
  if (error instanceof Deno.errors.BrokenPipe || code === "EPIPE") status = STATUS_PIPE_BROKEN;
  else if (code === "ENOSPC" || /os error 28\b/.test(text)) status = STATUS_DISK_FULL;
  else if (code === "EIO" || /os error 5\b/.test(text)) status = STATUS_IO_DEVICE_ERROR;
  return { status, information: 0, message: text, cause: error };
}

/**
 * One receive loop on one connection. `run()` receives until the peer's FIN, the limit, a
 * failure, a mismatch, a match or the sink's stop, and (unless told not to) reports it as one
 * WskReceive line with `calls`, `information` = the bytes received, and `data` when asked.
 */
export class ReceivePump {
  readonly #host: PumpHost;
  readonly #socket: WskConnectionSocket;
  readonly #options: PumpOptions;
  #timeout: number | null;
  /** Cancels a call issued without a bound, so it can be issued again with one. */
  #unbounded: AbortController | null = null;
  #rebound = false;
  /** Why a call bounded by {@linkcode ReceivePump.bound} timed out, when its caller said. */
  #boundWhy: string | undefined;

  constructor(host: PumpHost, socket: WskConnectionSocket, options: PumpOptions = {}) {
    this.#host = host;
    this.#socket = socket;
    this.#options = options;
    this.#timeout = options.timeout === undefined ? host.timeout : options.timeout;
  }

  /**
   * Bounds the pump from now on: each call (the pump is then idle-bounded) waits at most
   * `timeout` ms. A call already waiting without a bound is called off and issued again.
   * `why` replaces the message of a call that then times out (a bound of 0 ms set by a
   * watchdog would otherwise read "Timed out after 0 ms").
   */
  bound(timeout: number, why?: string): void {
    this.#timeout = timeout;
    this.#boundWhy = why;
    if (this.#unbounded !== null) {
      this.#rebound = true;
      this.#unbounded.abort();
    }
  }

  #irp(deadline: number): WskIrp {
    const host = this.#host;
    const extra = this.#options.signal;
    if (this.#timeout === null) {
      this.#unbounded = new AbortController();
      const signals = [host.signal, this.#unbounded.signal, ...(extra ? [extra] : [])];
      return { signal: AbortSignal.any(signals) };
    }
    this.#unbounded = null;
    const signal = extra ? AbortSignal.any([host.signal, extra]) : host.signal;
    const idle = this.#options.idle || this.#options.timeout === null;
    const timeout = idle ? this.#timeout : Math.max(0, deadline - performance.now());
    return { signal, timeout };
  }

  /** Runs the loop to its end; see the class. */
  async run(): Promise<PumpResult> {
    const options = this.#options;
    const socket = this.#socket;
    const host = this.#host;
    const d = socket.Dispatch;
    const limit = options.limit ?? Infinity;
    const buffer = new GrowingBuffer(Math.min(options.bufferSize ?? RECEIVE_MAX, limit));
    const flags = options.waitAll ? WSK_FLAG_WAITALL : 0;
    const preview: Uint8Array[] = [];
    let previewBytes = 0;
    const received = options.match ? new Received() : null;
    const matchMax = options.matchMax ?? Infinity;
    let end: number | null = null;
    let total = 0;
    let delivered = 0;
    let calls = 0;
    let fin = false;
    let stopped = false;
    let sinkFailure: WskCompletion | null = null;
    let writeFailed = false;
    let last: WskCompletion = { status: STATUS_SUCCESS, information: 0 };
    const start = performance.now();
    const deadline = start + (this.#timeout ?? 0);

    /** Hands one chunk on; false when the loop must end. */
    const take = async (bytes: Uint8Array, callMs = 0): Promise<boolean> => {
      total += bytes.length;
      options.progress?.add(bytes.length);
      if (options.verify) {
        options.verify.push(bytes);
        // A wrong byte or an overrun ends the check: nothing later can make it pass.
        if (options.verify.mismatch) return false;
      }
      if (options.show && previewBytes < PREVIEW_MAX) {
        preview.push(bytes.slice(0, PREVIEW_MAX - previewBytes));
        previewBytes += Math.min(bytes.length, PREVIEW_MAX - previewBytes);
      }
      if (received) {
        received.push(bytes);
        end = options.match!(received);
        if (end !== null) return false;
      }
      if (options.sink) {
        let result: SinkResult;
        try {
          result = await options.sink(bytes, callMs);
        } catch (error) {
          const failure = writeFailure(error);
          last = {
            ...failure,
            message: `Writing the received data failed after ${delivered} of ${total} bytes: ` +
              failure.message,
          };
          writeFailed = true;
          return false;
        }
        if (result === false) {
          stopped = true;
          return false;
        }
        if (typeof result === "object" && !NT_SUCCESS(result.status)) {
          sinkFailure = result;
          return false;
        }
        delivered += bytes.length;
      }
      return true;
    };

    let going = true;
    if (options.carried && options.carried.length > 0) going = await take(options.carried);
    if (received && going) {
      end = options.match!(received);
      going = end === null;
    }
    while (going && total < limit) {
      if (received && received.length >= matchMax) {
        last = {
          status: STATUS_BUFFER_OVERFLOW,
          information: 0,
          message: `Stopped after ${matchMax} bytes without reaching the step's bound; ` +
            "use --bytes, or --verify-pattern for bulk data",
        };
        break;
      }
      const length = Math.min(buffer.bytes.length, limit - total);
      const callStart = performance.now();
      last = await d.WskReceive(
        socket,
        { Mdl: { Next: null, bytes: buffer.bytes }, Offset: 0, Length: length },
        flags,
        this.#irp(deadline),
      );
      if (this.#rebound && last.status === STATUS_CANCELLED && !host.signal.aborted) {
        // Called off only to be issued again with the bound: not a call of the loop's.
        this.#rebound = false;
        continue;
      }
      this.#rebound = false;
      if (last.status === STATUS_IO_TIMEOUT && this.#boundWhy !== undefined) {
        last = { ...last, message: this.#boundWhy };
      }
      calls++;
      if (!NT_SUCCESS(last.status)) break;
      if (last.information === 0) {
        fin = true;
        break;
      }
      const bytes = buffer.bytes.subarray(0, last.information);
      host.hex?.dump("<", socket.id, bytes);
      going = await take(bytes, performance.now() - callStart);
      buffer.received(bytes.length);
    }
    this.#unbounded = null;
    options.progress?.stop();
    if (options.verify && NT_SUCCESS(last.status) && !writeFailed && !stopped) {
      const mismatch = options.verify.finish();
      if (mismatch) {
        last = { status: STATUS_DATA_ERROR, information: total, message: mismatch.message };
      }
    }
    let taken: Uint8Array | undefined;
    let rest: Uint8Array | undefined;
    if (received) {
      const stop: number | null = end;
      taken = stop === null ? received.bytes : received.bytes.subarray(0, stop);
      if (stop !== null && stop < received.length) rest = received.bytes.slice(stop);
    }
    const information = taken?.length ?? total;
    const completion: WskCompletion = NT_SUCCESS(last.status)
      ? { status: last.status, information }
      : { ...last, information };
    const expectedOf = (result: PumpResult) =>
      typeof options.expected === "function" ? options.expected(result) : options.expected;
    const data = taken ??
      (options.show && previewBytes > 0 ? joinBytes(preview, previewBytes) : undefined);
    const elapsedMs = performance.now() - start;
    const result: PumpResult = {
      status: completion.status,
      completion,
      total,
      delivered,
      calls,
      fin,
      stopped,
      sinkFailure,
      writeFailed,
      ...(taken ? { taken } : {}),
      ...(rest ? { rest } : {}),
      elapsedMs,
      line: () =>
        host.report(
          "WskReceive",
          socket,
          completion,
          elapsedMs,
          { calls, information, ...(data ? { data } : {}) },
          expectedOf(result),
        ),
    };
    if (options.report !== false) result.line();
    return result;
  }
}

/** Runs one {@linkcode ReceivePump} to its end. */
export function pump(
  host: PumpHost,
  socket: WskConnectionSocket,
  options: PumpOptions = {},
): Promise<PumpResult> {
  return new ReceivePump(host, socket, options).run();
}

/**
 * The receiving half of a full-duplex exchange (`send --receive`): the pump runs from the
 * moment the socket is connected, with no bound while the sending side runs, so a reply is
 * delivered as it arrives. A failure (the peer's reset, a sink that cannot write) is reported
 * at once and `onFailure` is called (to stop the sending side); a failed write also aborts the
 * connection through `close`, never ending it as if all went well. A loop that ends well is
 * reported by {@linkcode DuplexReceive.finish} or {@linkcode DuplexReceive.end}.
 */
export class DuplexReceive {
  readonly #pump: ReceivePump;
  readonly #done: Promise<PumpResult>;
  /** A loop that ended well, not reported yet. */
  #ended: PumpResult | null = null;

  constructor(
    host: PumpHost,
    socket: WskConnectionSocket,
    sink: (bytes: Uint8Array, elapsedMs: number) => Promise<void>,
    on: { readonly failure: () => void; readonly close: () => Promise<void> },
  ) {
    this.#pump = new ReceivePump(host, socket, { sink, timeout: null, report: false });
    this.#done = this.#pump.run().then(async (got) => {
      if (!NT_SUCCESS(got.status)) {
        got.line();
        on.failure();
        if (got.writeFailed) await on.close();
      } else this.#ended = got;
      return got;
    });
  }

  /**
   * The sending side is done. `finOut`: our FIN went out, so the rest is received with each
   * call bounded by `timeout`; otherwise there is nothing to wait for, and `close` (an abort)
   * ends the pending receive. Then the loop's line, if not reported yet.
   */
  async finish(finOut: boolean, timeout: number, close: () => Promise<void>): Promise<void> {
    if (finOut) this.#pump.bound(timeout);
    else await close();
    await this.end();
  }

  /** Waits for the loop's end (the socket was closed) and reports it if not reported yet. */
  async end(): Promise<void> {
    await this.#done;
    this.#ended?.line();
    this.#ended = null;
  }
}

/**
 * Reads a connection ahead, without a line, while something else (a script's send step) runs:
 * WskReceive calls with no bound until {@linkcode ReadAhead.stop}, keeping at most
 * {@linkcode READ_AHEAD_MAX} bytes. It stops at the peer's FIN or a failure without keeping
 * them: the next receive sees the same end. What it kept is handed to the next receive.
 */
export class ReadAhead {
  readonly #chunks: Uint8Array[] = [];
  #bytes = 0;
  readonly #cancel = new AbortController();
  readonly #done: Promise<PumpResult>;

  constructor(host: PumpHost, socket: WskConnectionSocket, cap: number = READ_AHEAD_MAX) {
    // The one pump, unbounded and silent: a FIN or a failure ends it and is left for the next
    // receive to see (a receive after either completes the same way again).
    this.#done = pump(host, socket, {
      limit: cap,
      timeout: null,
      report: false,
      signal: this.#cancel.signal,
      sink: (bytes) => {
        // The pump reuses its buffer: keep a copy.
        this.#chunks.push(bytes.slice());
        this.#bytes += bytes.length;
        return Promise.resolve();
      },
    });
  }

  /** Calls off the pending receive and gives what was read (empty when nothing). */
  async stop(): Promise<Uint8Array> {
    this.#cancel.abort();
    await this.#done;
    return this.#chunks.length === 1 ? this.#chunks[0]! : joinBytes(this.#chunks, this.#bytes);
  }
}

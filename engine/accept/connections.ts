/**
 * `accept`'s connection bookkeeping: one served connection ({@linkcode Connection}: its first
 * failure, the bytes it dropped, its Summary line) and the handlers in flight
 * ({@linkcode Handlers}), which the listener waits for and cleans up after.
 *
 * @module
 */

import {
  type NTSTATUS,
  STATUS_CONNECTION_RESET,
  STATUS_IO_TIMEOUT,
  STATUS_SUCCESS,
  type WskCompletion,
  type WskConnectionSocket,
  type WskListenSocket,
} from "../../provider/mod.ts";
import type { CallContext } from "../context.ts";
import type { CallRecord } from "../../report/reporter.ts";

/**
 * How a connection ended, as its summary line says: `graceful` (FIN both ways), `reset` (the
 * peer reset it), `timeout` (no data or FIN within --timeout), `local-close` (wsk closed or reset
 * it: a failed verification, a refused peer, a failed call, or the server was stopped).
 */
export type ConnectionEnd = "graceful" | "reset" | "timeout" | "local-close";

/** How a failure status ended a connection. */
function endOf(status: NTSTATUS): ConnectionEnd {
  if (status === STATUS_CONNECTION_RESET) return "reset";
  if (status === STATUS_IO_TIMEOUT) return "timeout";
  return "local-close";
}

/** One served connection: its socket, when it started, its first failure, the bytes dropped. */
export class Connection {
  readonly socket: WskConnectionSocket;
  readonly start: number = performance.now();
  #failure: { completion: WskCompletion; end: ConnectionEnd; expected?: NTSTATUS } | null = null;
  #dropped = 0;
  #abandoned = false;

  constructor(socket: WskConnectionSocket) {
    this.socket = socket;
  }

  /** Records a failure; the first one decides the summary. */
  fail(completion: WskCompletion, end: ConnectionEnd = endOf(completion.status)): void {
    this.#failure ??= { completion, end };
  }

  /** Records a failure the run sets out to produce (a refused peer, a stopped server). */
  failExpected(completion: WskCompletion, end: ConnectionEnd): void {
    this.#failure ??= { completion, end, expected: completion.status };
  }

  get failed(): boolean {
    return this.#failure !== null;
  }

  /** How the connection ended so far: its first failure's end, else `graceful`. */
  get end(): ConnectionEnd {
    return this.#failure?.end ?? "graceful";
  }

  /** Received bytes that were not printed (the server stopped, or standard output stalled). */
  get dropped(): number {
    return this.#dropped;
  }

  /**
   * Counts received bytes that are dropped rather than printed. `abandoned`: they were in a
   * write that was given up on, which may have put part of them out before it blocked.
   */
  drop(bytes: number, abandoned = false): void {
    this.#dropped += bytes;
    this.#abandoned ||= abandoned;
  }

  /**
   * The summary line: status, bytes both ways, duration and how the connection ended; `extra`
   * adds a mode's fields (the exit code of `--mode exec`, the target side of `--mode forward`).
   */
  summarize(run: CallContext, expected?: NTSTATUS, extra: Partial<CallRecord> = {}): void {
    const received = this.socket.bytesReceived;
    const sent = this.socket.bytesSent;
    const failure = this.#failure;
    const end = failure?.end ?? "graceful";
    const completion = failure?.completion ?? { status: STATUS_SUCCESS, information: 0 };
    const dropped = this.#dropped > 0
      ? `${this.#abandoned ? "up to " : ""}${this.#dropped} received bytes were dropped: ` +
        "standard output had not taken them"
      : undefined;
    const message = [completion.message, dropped].filter((part) => part !== undefined).join("; ");
    run.report(
      "Summary",
      this.socket,
      { ...completion, information: received + sent, ...(message === "" ? {} : { message }) },
      performance.now() - this.start,
      { information: received + sent, value: end, received, sent, ...extra },
      failure?.expected ?? expected,
    );
  }
}

/**
 * The connection handlers in flight and the sockets they serve. A failed handler (a write
 * error, a peer's reset) ends its connection with a status and its Summary; a handler that
 * throws is a defect, and stops the server: the first error is kept for main to report,
 * and the sockets handlers left open are closed at the end. A handler leaves the set when it
 * settles, so a --keep-open server holds only the connections it is serving.
 */
export class Handlers {
  readonly #running = new Set<Promise<void>>();
  readonly #sockets = new Set<WskConnectionSocket>();
  readonly #stop: () => void;
  #error: { readonly error: unknown } | null = null;

  constructor(stop: () => void) {
    this.#stop = stop;
  }

  /** Tracks `work`, the handler of `socket`, until it settles. */
  add(socket: WskConnectionSocket, work: Promise<void>): void {
    this.#sockets.add(socket);
    const tracked: Promise<void> = work.catch((error) => this.fail(error)).finally(() => {
      this.#running.delete(tracked);
      if (socket.state === "CLOSED") this.#sockets.delete(socket);
    });
    this.#running.add(tracked);
  }

  /** Keeps the first error (rethrown by rethrow()) and stops the server. */
  fail(error: unknown): void {
    this.#error ??= { error };
    this.#stop();
  }

  /** Waits until every handler settled, those started meanwhile included. */
  async settle(): Promise<void> {
    while (this.#running.size > 0) await Promise.allSettled([...this.#running]);
  }

  /** Closes (reported) every served socket its handler left open. */
  async closeLeftOpen(run: CallContext): Promise<void> {
    for (const socket of this.#sockets) await run.close(socket);
    this.#sockets.clear();
  }

  /** Throws the first error a handler threw, if any. */
  rethrow(): void {
    if (this.#error !== null) throw this.#error.error;
  }
}

/**
 * Runs `accept`, the loop that hands connections to `handlers`; then, however it ended, waits
 * for every handler, closes the sockets they left open and the listener (all reported), and
 * throws the first error a handler (or the loop) threw, for main to report.
 */
export async function serveUntilDone(
  run: CallContext,
  listener: WskListenSocket,
  handlers: Handlers,
  accept: () => Promise<void>,
): Promise<void> {
  try {
    await accept();
  } catch (error) {
    handlers.fail(error);
  } finally {
    await handlers.settle();
    await handlers.closeLeftOpen(run);
    await run.close(listener);
  }
  handlers.rethrow();
}

/**
 * Internal helpers that play the IRP's part: one completion per call, cancellation through an
 * AbortSignal, and deadlines.
 *
 * @module
 */

import { addDeadline, cancelDeadline, type Deadline } from "./_deadline.ts";
import {
  type NTSTATUS,
  STATUS_CANCELLED,
  STATUS_INVALID_HANDLE,
  STATUS_INVALID_PARAMETER,
  STATUS_IO_TIMEOUT,
  STATUS_SUCCESS,
} from "./status.ts";
import type { WskCompletion, WskIrp } from "./types.ts";
import { statusFromError } from "./_errors.ts";

/** A successful completion. */
export function success(information = 0): WskCompletion {
  return { status: STATUS_SUCCESS, information };
}

/** A failed completion; `information` is always 0. */
export function failure(status: NTSTATUS, message: string, cause?: unknown): WskCompletion {
  return cause === undefined
    ? { status, information: 0, message }
    : { status, information: 0, message, cause };
}

/** Turns a host error into a failed completion, with `what` naming the action that failed. */
export function hostFailure(error: unknown, what: string): WskCompletion {
  const mapped = statusFromError(error);
  return failure(mapped.status, `${what}: ${mapped.message}`, mapped.cause);
}

/** The longest deadline a timer can hold (2^31 - 1 ms, about 24.8 days). */
export const MAX_TIMEOUT = 2_147_483_647;

/** Checks the IRP stand-in; returns a failed completion when it is malformed. */
export function checkIrp(irp: WskIrp | undefined): WskCompletion | null {
  if (irp === undefined) return null;
  if (typeof irp !== "object" || irp === null) {
    return failure(STATUS_INVALID_PARAMETER, "The IRP argument is not an object");
  }
  if (irp.signal !== undefined && !(irp.signal instanceof AbortSignal)) {
    return failure(STATUS_INVALID_PARAMETER, "The IRP signal is not an AbortSignal");
  }
  const t = irp.timeout;
  if (
    t !== undefined && (typeof t !== "number" || !Number.isFinite(t) || t < 0 || t > MAX_TIMEOUT)
  ) {
    return failure(
      STATUS_INVALID_PARAMETER,
      `Invalid timeout "${String(t)}": expected 0 to ${MAX_TIMEOUT} ms`,
    );
  }
  return null;
}

/** What an abort does to a pending call. */
interface Cancellable {
  cancel(status: NTSTATUS, message: string): boolean;
}

/** Pending calls by their IRP's signal. */
const pendingBySignal = new WeakMap<AbortSignal, Set<Cancellable>>();

/**
 * The set of pending calls on `signal`. The first call on a signal gives it one abort listener,
 * which cancels every call pending at the time; later calls only join the set. (A listener
 * added and removed per call made the receive loops' heap several times larger.)
 */
function pendingOn(signal: AbortSignal): Set<Cancellable> {
  let calls = pendingBySignal.get(signal);
  if (calls === undefined) {
    const pending = new Set<Cancellable>();
    signal.addEventListener("abort", () => {
      for (const call of [...pending]) call.cancel(STATUS_CANCELLED, "Cancelled");
    }, { once: true });
    pendingBySignal.set(signal, pending);
    calls = pending;
  }
  return calls;
}

/**
 * One pending call. It completes exactly once: the first of `complete` and a cancellation
 * (signal or deadline) wins, and later attempts are ignored.
 */
export class PendingCall<T extends WskCompletion = WskCompletion> {
  readonly promise: Promise<T>;

  #resolve!: (completion: T) => void;
  #done = false;
  #cancelled = false;
  #controller: AbortController | null = null;
  #deadline: Deadline | undefined;
  #timeout = 0;
  #irpSignal: AbortSignal | undefined;
  /** The pending calls of this call's signal, while this call is among them. */
  #watched: Set<Cancellable> | null = null;
  #onCancel: ((status: NTSTATUS) => void) | null = null;
  #mayCancel: (() => boolean) | undefined;

  /**
   * `mayCancel`, when given, is asked at cancellation time: false means the call can no longer
   * be called off (a send already writing on a host socket that cannot reset), so it runs on.
   */
  constructor(irp: WskIrp | undefined, mayCancel?: () => boolean) {
    this.promise = new Promise((resolve) => this.#resolve = resolve);
    this.#irpSignal = irp?.signal;
    if (this.#irpSignal?.aborted) {
      // Nothing has started, so the call is always called off: `mayCancel` is not asked (it
      // reads its caller's state, which may not exist yet while this constructor runs).
      this.cancel(STATUS_CANCELLED, "Cancelled before the call started");
      return;
    }
    this.#mayCancel = mayCancel;
    if (this.#irpSignal !== undefined) {
      this.#watched = pendingOn(this.#irpSignal);
      this.#watched.add(this);
    }
    if (irp?.timeout !== undefined) {
      const ms = irp.timeout;
      this.#timeout = ms;
      this.#deadline = addDeadline(
        ms,
        () => this.cancel(STATUS_IO_TIMEOUT, `Timed out after ${Math.round(ms)} ms`),
      );
    }
  }

  /**
   * Aborted when the call is cancelled or times out; for host APIs that take a signal. Made on
   * first use, so calls that never need one (most sends and receives) do not pay for it.
   */
  get signal(): AbortSignal {
    this.#controller ??= new AbortController();
    if (this.#done && !this.#controller.signal.aborted && this.#cancelled) this.#controller.abort();
    return this.#controller.signal;
  }

  /** True once the call has completed (either way). */
  get done(): boolean {
    return this.#done;
  }

  /** True when the call can end early: its IRP has a signal or a deadline. */
  get cancellable(): boolean {
    return this.#irpSignal !== undefined || this.#deadline !== undefined;
  }

  /** Registers what to undo when the call is cancelled (called at most once). */
  onCancel(handler: (status: NTSTATUS) => void): void {
    this.#onCancel = handler;
  }

  /** Completes the call, unless it already completed. Returns whether this call won. */
  complete(completion: T): boolean {
    if (this.#done) return false;
    this.#done = true;
    if (this.#deadline !== undefined) cancelDeadline(this.#timeout, this.#deadline);
    this.#watched?.delete(this);
    this.#watched = null;
    this.#resolve(completion);
    return true;
  }

  /** Cancels the call with `status` (STATUS_CANCELLED or STATUS_IO_TIMEOUT). */
  cancel(status: NTSTATUS, message: string): boolean {
    if (this.#mayCancel !== undefined && !this.#done && !this.#mayCancel()) return false;
    // Every extra field of a completion type is optional, so a bare failure fits T.
    if (!this.complete(failure(status, message) as T)) return false;
    this.#cancelled = true;
    this.#controller?.abort();
    const handler = this.#onCancel;
    this.#onCancel = null;
    handler?.(status);
    return true;
  }
}

/**
 * Runs a dispatch call's body so that nothing escapes as an exception: a value the checks did
 * not foresee (a Symbol where a number belongs, a half-built MDL) that makes the body throw
 * completes with STATUS_INVALID_PARAMETER, the error kept as `cause`.
 */
export function guard<T extends WskCompletion>(body: () => Promise<T>): Promise<T | WskCompletion> {
  const refuse = (error: unknown) =>
    failure(
      STATUS_INVALID_PARAMETER,
      `Bad argument: ${error instanceof Error ? error.message : String(error)}`,
      error,
    );
  try {
    return body().catch(refuse);
  } catch (error) {
    return Promise.resolve(refuse(error));
  }
}

/** The front of a socket table's members: see {@linkcode socketGuard}. */
export type SocketGuard<S> = <T extends WskCompletion>(
  socket: unknown,
  body: (socket: S) => Promise<T>,
) => Promise<T | WskCompletion>;

/**
 * The front every member of a socket's dispatch table shares: a value `isSocket` rejects
 * completes with STATUS_INVALID_HANDLE and `refusal` as the message; a socket runs `body` under
 * {@linkcode guard}.
 */
export function socketGuard<S>(
  isSocket: (value: unknown) => value is S,
  refusal: string,
): SocketGuard<S> {
  return (socket, body) =>
    isSocket(socket)
      ? guard(() => body(socket))
      : Promise.resolve(failure(STATUS_INVALID_HANDLE, refusal));
}

/**
 * A dispatch function that never throws: `body` run under {@linkcode guard}, for the members of
 * the client-level table.
 */
export function guarded<A extends unknown[], T extends WskCompletion>(
  body: (...args: A) => Promise<T>,
): (...args: A) => Promise<T | WskCompletion> {
  return (...args) => guard(() => body(...args));
}

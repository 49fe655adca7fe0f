// The one place where errors thrown by the host (Deno.connect/listen, Deno conns, node:net,
// AbortSignal) become NTSTATUS values. It is private to provider/: dispatch functions catch, call
// statusFromError(), and complete with the status; nothing outside provider/ imports this file.
//
// The mapping is the model's choice, written down in wsk-semantics.md Appendix B; deno-notes.md §5
// lists what the host really throws. Matching goes from the most specific evidence to the least:
// the Deno error class, then the DOMException name, then a node-style `code` string, then the
// built-in argument error classes, then the one message that identifies a DNS failure.

import {
  type NTSTATUS,
  STATUS_ACCESS_DENIED,
  STATUS_ADDRESS_ALREADY_EXISTS,
  STATUS_CANCELLED,
  STATUS_CONNECTION_ABORTED,
  STATUS_CONNECTION_REFUSED,
  STATUS_CONNECTION_RESET,
  STATUS_HOST_DOWN,
  STATUS_HOST_UNREACHABLE,
  STATUS_INSUFFICIENT_RESOURCES,
  STATUS_INVALID_ADDRESS,
  STATUS_INVALID_DEVICE_STATE,
  STATUS_INVALID_HANDLE,
  STATUS_INVALID_PARAMETER,
  STATUS_IO_TIMEOUT,
  STATUS_NETWORK_UNREACHABLE,
  STATUS_NO_MATCH,
  STATUS_NOT_FOUND,
  STATUS_NOT_SUPPORTED,
  STATUS_UNSUCCESSFUL,
} from "./status.ts";

/**
 * A host error translated into the model's terms.
 *
 * @example Reading a failure
 * ```ts
 * import { type HostFailure, statusFromError } from "./_errors.ts";
 * import { STATUS_IO_TIMEOUT } from "./status.ts";
 * import assert from "node:assert/strict";
 *
 * const failure: HostFailure = statusFromError(new Deno.errors.TimedOut("too slow"));
 * assert.equal(failure.status, STATUS_IO_TIMEOUT);
 * assert.equal(failure.message, "too slow");
 * ```
 */
export interface HostFailure {
  /** The NTSTATUS the model completes the call with. */
  status: NTSTATUS;
  /** A one-line text for people: the first line of the host error's message. */
  message: string;
  /** The value that was thrown, unchanged, so `--verbose` output can show all of it. */
  cause: unknown;
}

// Any constructor whose instances are errors; `never[]` lets every Deno.errors class fit.
type ErrorClass = new (...args: never[]) => Error;

// Deno's own error classes, tried with instanceof in this order. Deno 2.9 has no InvalidInput
// class (an EINVAL from the runtime arrives as InvalidData, a TypeError or a `code`). The classes
// left out (AlreadyExists, WouldBlock, Busy, UnexpectedEof, WriteZero, Http and the file-system
// ones) have no socket meaning and fall through to the catch-all.
const DENO_ERROR_STATUSES: ReadonlyArray<readonly [ErrorClass, NTSTATUS]> = [
  [Deno.errors.ConnectionRefused, STATUS_CONNECTION_REFUSED],
  [Deno.errors.ConnectionReset, STATUS_CONNECTION_RESET],
  [Deno.errors.ConnectionAborted, STATUS_CONNECTION_ABORTED],
  [Deno.errors.TimedOut, STATUS_IO_TIMEOUT],
  [Deno.errors.AddrInUse, STATUS_ADDRESS_ALREADY_EXISTS],
  [Deno.errors.AddrNotAvailable, STATUS_INVALID_ADDRESS],
  [Deno.errors.NetworkUnreachable, STATUS_NETWORK_UNREACHABLE],
  [Deno.errors.PermissionDenied, STATUS_ACCESS_DENIED],
  // A missing --allow-net is the closest thing the host has to an access check.
  [Deno.errors.NotCapable, STATUS_ACCESS_DENIED],
  // Wrong-state calls: Appendix B picks STATUS_INVALID_DEVICE_STATE for both, rather than
  // STATUS_CONNECTION_DISCONNECTED or STATUS_PIPE_DISCONNECTED.
  [Deno.errors.NotConnected, STATUS_INVALID_DEVICE_STATE],
  [Deno.errors.BrokenPipe, STATUS_INVALID_DEVICE_STATE],
  // The host resource is gone: the socket was closed under the call.
  [Deno.errors.BadResource, STATUS_INVALID_HANDLE],
  // A pending read or write whose conn was closed locally: the IRP was cancelled.
  [Deno.errors.Interrupted, STATUS_CANCELLED],
  [Deno.errors.InvalidData, STATUS_INVALID_PARAMETER],
  [Deno.errors.NotSupported, STATUS_NOT_SUPPORTED],
  [Deno.errors.NotFound, STATUS_NOT_FOUND],
];

// `code` strings, as node:net (and Deno, alongside its classes) attach them.
const CODE_STATUSES: ReadonlyMap<string, NTSTATUS> = new Map([
  ["ECONNREFUSED", STATUS_CONNECTION_REFUSED],
  ["ECONNRESET", STATUS_CONNECTION_RESET],
  ["ECONNABORTED", STATUS_CONNECTION_ABORTED],
  ["ETIMEDOUT", STATUS_IO_TIMEOUT],
  ["EHOSTUNREACH", STATUS_HOST_UNREACHABLE],
  ["EHOSTDOWN", STATUS_HOST_DOWN],
  ["ENETUNREACH", STATUS_NETWORK_UNREACHABLE],
  ["EADDRINUSE", STATUS_ADDRESS_ALREADY_EXISTS],
  ["EADDRNOTAVAIL", STATUS_INVALID_ADDRESS],
  ["EACCES", STATUS_ACCESS_DENIED],
  ["EPERM", STATUS_ACCESS_DENIED],
  ["ENOTCONN", STATUS_INVALID_DEVICE_STATE],
  ["EPIPE", STATUS_INVALID_DEVICE_STATE],
  ["EINTR", STATUS_CANCELLED],
  ["EINVAL", STATUS_INVALID_PARAMETER],
  ["EOPNOTSUPP", STATUS_NOT_SUPPORTED],
  ["ENOTSUP", STATUS_NOT_SUPPORTED],
  // Out of descriptors, buffers or memory: a resource shortage, not a network answer.
  ["EMFILE", STATUS_INSUFFICIENT_RESOURCES],
  ["ENFILE", STATUS_INSUFFICIENT_RESOURCES],
  ["ENOBUFS", STATUS_INSUFFICIENT_RESOURCES],
  ["ENOMEM", STATUS_INSUFFICIENT_RESOURCES],
  // getaddrinfo failures from node:net lookups all mean "the name did not resolve".
  ["ENOTFOUND", STATUS_NO_MATCH],
  ["EAI_NONAME", STATUS_NO_MATCH],
  ["EAI_AGAIN", STATUS_NO_MATCH],
  ["EAI_FAIL", STATUS_NO_MATCH],
  // node's own codes (not errno names).
  ["ABORT_ERR", STATUS_CANCELLED],
  ["ERR_SOCKET_CLOSED", STATUS_INVALID_HANDLE],
  ["ERR_SOCKET_CONNECTION_TIMEOUT", STATUS_IO_TIMEOUT],
]);

// Deno.connect reports a failed name lookup as a plain Error with no code; the text is the only
// sign (deno-notes.md §5).
const DNS_FAILURE_REGEXP = /failed to lookup address information/;

/**
 * Translates whatever a host call threw into the NTSTATUS the model reports.
 *
 * Checks are made in this order, and the first match wins:
 *
 * 1. Deno error classes (`instanceof Deno.errors.ConnectionRefused` and so on);
 * 2. `DOMException` names: `TimeoutError` → `STATUS_IO_TIMEOUT` (an `AbortSignal.timeout()`
 *    deadline), `AbortError` → `STATUS_CANCELLED`;
 * 3. a node-style `code` string such as `"ECONNRESET"` or `"ERR_SOCKET_CLOSED"`;
 * 4. `RangeError`, `TypeError` and `URIError` (the host rejected an argument) →
 *    `STATUS_INVALID_PARAMETER`;
 * 5. an `Error` whose message says `failed to lookup address information` → `STATUS_NO_MATCH`.
 *
 * Anything else, including values that are not errors at all, completes with the single catch-all
 * `STATUS_UNSUCCESSFUL` (0xC0000001). The function never throws.
 *
 * @param error The value caught from a host call.
 * @returns The status, a one-line message, and the original value as `cause`.
 *
 * @example A refused connect and an unknown value
 * ```ts
 * import { statusFromError } from "./_errors.ts";
 * import { STATUS_CONNECTION_REFUSED, STATUS_UNSUCCESSFUL } from "./status.ts";
 * import assert from "node:assert/strict";
 *
 * const refused = new Deno.errors.ConnectionRefused("Connection refused (os error 111)");
 * assert.deepEqual(statusFromError(refused), {
 *   status: STATUS_CONNECTION_REFUSED,
 *   message: "Connection refused (os error 111)",
 *   cause: refused,
 * });
 *
 * assert.deepEqual(statusFromError(42), { status: STATUS_UNSUCCESSFUL, message: "42", cause: 42 });
 * ```
 */
export function statusFromError(error: unknown): HostFailure {
  return { status: classify(error), message: describe(error), cause: error };
}

/**
 * Gives the error's `code` string when it has one, for `--verbose` output. For socket errors this
 * is the POSIX errno name (`"ECONNREFUSED"`, `"EMFILE"`); node:net may also give its own codes
 * (`"ERR_SOCKET_CLOSED"`). Numeric codes, such as a `DOMException`'s legacy `code`, are ignored.
 *
 * @param error The value caught from a host call.
 * @returns The code, or `undefined` if there is no string `code`.
 *
 * @example Codes from Deno and node-style errors
 * ```ts
 * import { hostErrorCode } from "./_errors.ts";
 * import assert from "node:assert/strict";
 *
 * const reset = Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
 * assert.equal(hostErrorCode(reset), "ECONNRESET");
 * assert.equal(hostErrorCode(new DOMException("late", "TimeoutError")), undefined);
 * assert.equal(hostErrorCode("not an error"), undefined);
 * ```
 */
export function hostErrorCode(error: unknown): string | undefined {
  const code = readProperty(error, "code");
  return typeof code === "string" && code !== "" ? code : undefined;
}

function classify(error: unknown): NTSTATUS {
  for (const [errorClass, status] of DENO_ERROR_STATUSES) {
    if (error instanceof errorClass) return status;
  }
  if (error instanceof DOMException) {
    if (error.name === "TimeoutError") return STATUS_IO_TIMEOUT;
    if (error.name === "AbortError") return STATUS_CANCELLED;
  }
  const code = hostErrorCode(error);
  const byCode = code === undefined ? undefined : CODE_STATUSES.get(code);
  if (byCode !== undefined) return byCode;
  if (error instanceof RangeError || error instanceof TypeError || error instanceof URIError) {
    return STATUS_INVALID_PARAMETER;
  }
  if (error instanceof Error && DNS_FAILURE_REGEXP.test(error.message)) return STATUS_NO_MATCH;
  return STATUS_UNSUCCESSFUL;
}

// The first line of the message keeps status lines to one line; the full text stays in `cause`.
function describe(error: unknown): string {
  const message = readProperty(error, "message");
  if (typeof message === "string" && message !== "") return firstLine(message);
  if (error instanceof Error) return error.name;
  let text: string;
  try {
    text = String(error);
  } catch {
    // An object without a usable toString (for example one with a null prototype).
    text = Object.prototype.toString.call(error);
  }
  return text === "" ? "(no message)" : firstLine(text);
}

function firstLine(text: string): string {
  const end = text.indexOf("\n");
  return end === -1 ? text : text.slice(0, end);
}

// Reading a property of an unknown thrown value must not throw in turn: a getter may.
function readProperty(value: unknown, key: string): unknown {
  if ((typeof value !== "object" && typeof value !== "function") || value === null) {
    return undefined;
  }
  try {
    return (value as Record<string, unknown>)[key];
  } catch {
    return undefined;
  }
}

// NTSTATUS values used by the WSK connection-socket model, with the ntdef.h classification
// helpers and the text forms used in status lines (name, and "0x" + 8 upper-case hex digits).
//
// The values are copied from ntstatus.h via wsk-semantics.md §6. Every constant below also
// appears once in the private VALUES_BY_NAME table further down, which is the single source of
// the name <-> value maps.

/**
 * A Windows NTSTATUS code, held as an unsigned 32-bit number (for example `0xC0000236`).
 *
 * The top two bits give the severity: `00` success, `01` informational, `10` warning and
 * `11` error. Functions in this module also accept the signed 32-bit form (`status | 0`).
 *
 * @example Checking a completion
 * ```ts
 * import { type NTSTATUS, NT_SUCCESS, STATUS_PENDING } from "./status.ts";
 * import assert from "node:assert/strict";
 *
 * const status: NTSTATUS = STATUS_PENDING;
 * assert.ok(NT_SUCCESS(status));
 * ```
 */
export type NTSTATUS = number;

/**
 * The request completed.
 */
export const STATUS_SUCCESS: NTSTATUS = 0x00000000;

/**
 * A kernel wait ran out of time. Despite the name it is a success-class code and never a socket
 * result; use {@linkcode STATUS_IO_TIMEOUT} for network timeouts.
 */
export const STATUS_TIMEOUT: NTSTATUS = 0x00000102;

/**
 * The request was accepted and will complete later through its IRP. A `WskReceiveEvent` callback
 * also returns it to keep the indicated data.
 */
export const STATUS_PENDING: NTSTATUS = 0x00000103;

/**
 * Informational AFD/TDI code for a partial message receive. WSK does not use it; it is here for
 * mapping only.
 */
export const STATUS_RECEIVE_PARTIAL: NTSTATUS = 0x4000000F;

/**
 * Informational: disabling an event callback (`SO_WSK_EVENT_CALLBACK`) finishes only after
 * callbacks already running have returned.
 */
export const STATUS_EVENT_PENDING: NTSTATUS = 0x40000013;

/**
 * Warning: the data or output did not fit. It is not `NT_SUCCESS`. `WskConnectEx` returns it for
 * more than 65,535 bytes of initial data.
 */
export const STATUS_BUFFER_OVERFLOW: NTSTATUS = 0x80000005;

/**
 * Generic failure. The model uses it as its single catch-all for host errors it cannot classify.
 */
export const STATUS_UNSUCCESSFUL: NTSTATUS = 0xC0000001;

/**
 * The function is not implemented (seen only in Wine stubs).
 */
export const STATUS_NOT_IMPLEMENTED: NTSTATUS = 0xC0000002;

/**
 * The handle or object is not valid. The model returns it for calls on a socket that is already
 * closed.
 */
export const STATUS_INVALID_HANDLE: NTSTATUS = 0xC0000008;

/**
 * An argument is invalid, for example unknown `WskConnectEx` flags or a bad `WskRelease` list.
 */
export const STATUS_INVALID_PARAMETER: NTSTATUS = 0xC000000D;

/**
 * The request is not valid for this device. WSK does not document it.
 */
export const STATUS_INVALID_DEVICE_REQUEST: NTSTATUS = 0xC0000010;

/**
 * Returned by a client's IRP completion routine to stop the I/O manager from finishing the IRP.
 */
export const STATUS_MORE_PROCESSING_REQUIRED: NTSTATUS = 0xC0000016;

/**
 * An allocation failed (used by Wine).
 */
export const STATUS_NO_MEMORY: NTSTATUS = 0xC0000017;

/**
 * Access or sharing was refused, as for a bind that conflicts with another socket's address.
 */
export const STATUS_ACCESS_DENIED: NTSTATUS = 0xC0000022;

/**
 * Error-class "buffer too small". WSK does not document it; the model may use it.
 */
export const STATUS_BUFFER_TOO_SMALL: NTSTATUS = 0xC0000023;

/**
 * The data is wrong: a data-verification failure. The model never returns it from a dispatch
 * call; the CLI reports it when received bytes do not match the expected pattern (the first
 * mismatching offset, or too few or too many bytes).
 */
export const STATUS_DATA_ERROR: NTSTATUS = 0xC000003E;

/**
 * The object named was not found: what a Windows process start fails with for a missing program
 * (CreateProcess's ERROR_FILE_NOT_FOUND). wsk reports it when `accept --mode exec` cannot find
 * the command it was given.
 */
export const STATUS_OBJECT_NAME_NOT_FOUND: NTSTATUS = 0xC0000034;

/**
 * Memory or another resource ran out, such as an IRP allocation or the process's file descriptors.
 */
export const STATUS_INSUFFICIENT_RESOURCES: NTSTATUS = 0xC000009A;

/**
 * The disk (or other device) the data was being written to is full: a local write failed with
 * ENOSPC. wsk reports it on the WskReceive line whose sink (`--output FILE`, standard output)
 * could not take the data.
 */
export const STATUS_DISK_FULL: NTSTATUS = 0xC000007F;

/**
 * The reader of a pipe went away: a local write failed with EPIPE (`wsk receive … | head -c 10`).
 */
export const STATUS_PIPE_BROKEN: NTSTATUS = 0xC000014B;

/**
 * A local device reported an I/O error (EIO) while data was written to it.
 */
export const STATUS_IO_DEVICE_ERROR: NTSTATUS = 0xC0000185;

/**
 * The WSK subsystem is not up yet, or the client has already been deregistered.
 */
export const STATUS_DEVICE_NOT_READY: NTSTATUS = 0xC00000A3;

/**
 * The sending side is shut down. AFD reports it for a send after shutdown; WSK does not document
 * it.
 */
export const STATUS_PIPE_DISCONNECTED: NTSTATUS = 0xC00000B0;

/**
 * A network operation, such as a connect, ran out of time.
 */
export const STATUS_IO_TIMEOUT: NTSTATUS = 0xC00000B5;

/**
 * The socket no longer works and should be closed. Any socket call can return it.
 */
export const STATUS_FILE_FORCED_CLOSED: NTSTATUS = 0xC00000B6;

/**
 * The transport does not support the flag or operation, for example an unsupported `WskSend` flag.
 */
export const STATUS_NOT_SUPPORTED: NTSTATUS = 0xC00000BB;

/**
 * Nothing listens at the remote end (a TDI-era code; Winsock reports it as `WSAECONNREFUSED`).
 */
export const STATUS_REMOTE_NOT_LISTENING: NTSTATUS = 0xC00000BC;

/**
 * The network path was not found. Kept for mapping only.
 */
export const STATUS_BAD_NETWORK_PATH: NTSTATUS = 0xC00000BE;

/**
 * The network is busy. Kept for mapping only.
 */
export const STATUS_NETWORK_BUSY: NTSTATUS = 0xC00000BF;

/**
 * A share or host name was not found (an SMB-style code that WSK does not document).
 */
export const STATUS_BAD_NETWORK_NAME: NTSTATUS = 0xC00000CC;

/**
 * A `WskAcceptEvent` callback refused the incoming connection, or a request could not complete
 * inline.
 */
export const STATUS_REQUEST_NOT_ACCEPTED: NTSTATUS = 0xC00000D0;

/**
 * The IRP was cancelled, by `IoCancelIrp` or by closing the socket under it.
 */
export const STATUS_CANCELLED: NTSTATUS = 0xC0000120;

/**
 * The handle is already closed (an alternative code for a closed socket).
 */
export const STATUS_FILE_CLOSED: NTSTATUS = 0xC0000128;

/**
 * The local side tore the connection down (Winsock: `WSAECONNABORTED`). Kept for mapping only.
 */
export const STATUS_LOCAL_DISCONNECT: NTSTATUS = 0xC000013B;

/**
 * The remote side tore the connection down (Winsock: `WSAECONNRESET`). Kept for mapping only.
 */
export const STATUS_REMOTE_DISCONNECT: NTSTATUS = 0xC000013C;

/**
 * The connection is not valid (Winsock: `WSAENOTCONN`). Kept for mapping only.
 */
export const STATUS_INVALID_CONNECTION: NTSTATUS = 0xC0000140;

/**
 * The address is not valid here, such as a local address no interface owns (Winsock:
 * `WSAEADDRNOTAVAIL`).
 */
export const STATUS_INVALID_ADDRESS: NTSTATUS = 0xC0000141;

/**
 * The socket is in the wrong state for the request, as for `WskGetRemoteAddress` before connect.
 * The model's default for calls made in the wrong state.
 */
export const STATUS_INVALID_DEVICE_STATE: NTSTATUS = 0xC0000184;

/**
 * The buffer size is wrong (Winsock: `WSAEMSGSIZE`). Kept for mapping only.
 */
export const STATUS_INVALID_BUFFER_SIZE: NTSTATUS = 0xC0000206;

/**
 * Part of an address is malformed. Kept for mapping only.
 */
export const STATUS_INVALID_ADDRESS_COMPONENT: NTSTATUS = 0xC0000207;

/**
 * No free port or address is left (Winsock: `WSAEADDRINUSE`). Kept for mapping only.
 */
export const STATUS_TOO_MANY_ADDRESSES: NTSTATUS = 0xC0000209;

/**
 * The local address is already in use. WSK documents it for bind conflicts.
 */
export const STATUS_ADDRESS_ALREADY_EXISTS: NTSTATUS = 0xC000020A;

/**
 * The address object is closed. Kept for mapping only.
 */
export const STATUS_ADDRESS_CLOSED: NTSTATUS = 0xC000020B;

/**
 * The connection is gone (Winsock: `WSAECONNRESET`). Kept for mapping only.
 */
export const STATUS_CONNECTION_DISCONNECTED: NTSTATUS = 0xC000020C;

/**
 * The peer reset the connection, so a send or receive failed.
 */
export const STATUS_CONNECTION_RESET: NTSTATUS = 0xC000020D;

/**
 * Returned by a `WskReceiveEvent` callback that does not take the indicated data.
 */
export const STATUS_DATA_NOT_ACCEPTED: NTSTATUS = 0xC000021B;

/**
 * Something looked up was not found (Wine reports `WSAHOST_NOT_FOUND` with it).
 */
export const STATUS_NOT_FOUND: NTSTATUS = 0xC0000225;

/**
 * The peer refused the connection: nothing listens on that port.
 */
export const STATUS_CONNECTION_REFUSED: NTSTATUS = 0xC0000236;

/**
 * The peer closed gracefully (a TDI code). WSK reports a FIN as a zero-byte receive instead.
 */
export const STATUS_GRACEFUL_DISCONNECT: NTSTATUS = 0xC0000237;

/**
 * The endpoint already has an address (Wine's code for `WSAEADDRINUSE`).
 */
export const STATUS_ADDRESS_ALREADY_ASSOCIATED: NTSTATUS = 0xC0000238;

/**
 * The endpoint has no address yet. Kept for mapping only.
 */
export const STATUS_ADDRESS_NOT_ASSOCIATED: NTSTATUS = 0xC0000239;

/**
 * The operation names a connection that does not exist. Kept for mapping only.
 */
export const STATUS_CONNECTION_INVALID: NTSTATUS = 0xC000023A;

/**
 * The socket is already connected; a candidate answer to a second connect.
 */
export const STATUS_CONNECTION_ACTIVE: NTSTATUS = 0xC000023B;

/**
 * No route leads to the destination network.
 */
export const STATUS_NETWORK_UNREACHABLE: NTSTATUS = 0xC000023C;

/**
 * The destination host cannot be reached.
 */
export const STATUS_HOST_UNREACHABLE: NTSTATUS = 0xC000023D;

/**
 * The protocol is unreachable. Kept for mapping only.
 */
export const STATUS_PROTOCOL_UNREACHABLE: NTSTATUS = 0xC000023E;

/**
 * An ICMP port-unreachable came back (Winsock: `WSAECONNRESET`). Kept for mapping only.
 */
export const STATUS_PORT_UNREACHABLE: NTSTATUS = 0xC000023F;

/**
 * The request was aborted (Winsock: `WSAEINTR`). Kept for mapping only.
 */
export const STATUS_REQUEST_ABORTED: NTSTATUS = 0xC0000240;

/**
 * The local side aborted the connection, as after an abortive disconnect.
 */
export const STATUS_CONNECTION_ABORTED: NTSTATUS = 0xC0000241;

/**
 * A connection limit was reached. Kept for mapping only.
 */
export const STATUS_CONNECTION_COUNT_LIMIT: NTSTATUS = 0xC0000246;

/**
 * A name could not be resolved (`WskGetAddressInfo`, `WskGetNameInfo`, and the model's resolver).
 */
export const STATUS_NO_MATCH: NTSTATUS = 0xC0000272;

/**
 * The requested WSK version is not supported by `WskCaptureProviderNPI`.
 */
export const STATUS_NOINTERFACE: NTSTATUS = 0xC00002B9;

/**
 * The destination host is down. Kept for mapping only.
 */
export const STATUS_HOST_DOWN: NTSTATUS = 0xC0000350;

// SECURITY_STATUS values a Windows kernel client gets from Schannel (through the SSPI calls of
// ksecdd, InitializeSecurityContext/AcceptSecurityContext) when a TLS handshake fails. They are
// HRESULT-style codes of FACILITY_SECURITY (0x9), copied from winerror.h; the model completes its
// TlsHandshake with them as a failure status (see docs/tls.md for which host error gives which).

/**
 * The function requested is not supported (winerror.h `SEC_E_UNSUPPORTED_FUNCTION`). The model
 * gives it for a TLS upgrade the host cannot make (a server upgrade on a deno-backed socket).
 */
export const SEC_E_UNSUPPORTED_FUNCTION: NTSTATUS = 0x80090302;

/**
 * The Local Security Authority cannot be contacted (winerror.h `SEC_E_INTERNAL_ERROR`): the
 * model's catch-all for a handshake failure it cannot classify.
 */
export const SEC_E_INTERNAL_ERROR: NTSTATUS = 0x80090304;

/**
 * The supplied message is incomplete (winerror.h `SEC_E_INCOMPLETE_MESSAGE`): the peer closed the
 * connection in the middle of the handshake.
 */
export const SEC_E_INCOMPLETE_MESSAGE: NTSTATUS = 0x80090318;

/**
 * The target principal name is incorrect (winerror.h `SEC_E_WRONG_PRINCIPAL`): the server's
 * certificate does not name the host the client asked for.
 */
export const SEC_E_WRONG_PRINCIPAL: NTSTATUS = 0x80090322;

/**
 * The certificate chain was issued by an authority that is not trusted (winerror.h
 * `SEC_E_UNTRUSTED_ROOT`).
 */
export const SEC_E_UNTRUSTED_ROOT: NTSTATUS = 0x80090325;

/**
 * The message received was unexpected or badly formatted (winerror.h `SEC_E_ILLEGAL_MESSAGE`): a
 * peer that does not speak TLS, or a fatal alert from the peer.
 */
export const SEC_E_ILLEGAL_MESSAGE: NTSTATUS = 0x80090326;

/**
 * An unknown error occurred while processing the certificate (winerror.h `SEC_E_CERT_UNKNOWN`):
 * a certificate the host refused for another reason (bad usage, bad signature, not yet valid).
 */
export const SEC_E_CERT_UNKNOWN: NTSTATUS = 0x80090327;

/**
 * The received certificate has expired (winerror.h `SEC_E_CERT_EXPIRED`).
 */
export const SEC_E_CERT_EXPIRED: NTSTATUS = 0x80090328;

/**
 * The client and server cannot communicate, because they do not possess a common algorithm
 * (winerror.h `SEC_E_ALGORITHM_MISMATCH`): no common protocol version or cipher suite.
 */
export const SEC_E_ALGORITHM_MISMATCH: NTSTATUS = 0x80090331;

/**
 * The application protocol negotiation failed (winerror.h
 * `SEC_E_APPLICATION_PROTOCOL_MISMATCH`): no ALPN protocol in common.
 */
export const SEC_E_APPLICATION_PROTOCOL_MISMATCH: NTSTATUS = 0x80090367;

// The one table of names. Shorthand properties take each key from the constant's own identifier,
// so a name is never spelled twice and a typo is a compile error.
const VALUES_BY_NAME: ReadonlyMap<string, NTSTATUS> = new Map(Object.entries({
  STATUS_SUCCESS,
  STATUS_TIMEOUT,
  STATUS_PENDING,
  STATUS_RECEIVE_PARTIAL,
  STATUS_EVENT_PENDING,
  STATUS_BUFFER_OVERFLOW,
  STATUS_UNSUCCESSFUL,
  STATUS_NOT_IMPLEMENTED,
  STATUS_INVALID_HANDLE,
  STATUS_INVALID_PARAMETER,
  STATUS_INVALID_DEVICE_REQUEST,
  STATUS_MORE_PROCESSING_REQUIRED,
  STATUS_NO_MEMORY,
  STATUS_ACCESS_DENIED,
  STATUS_BUFFER_TOO_SMALL,
  STATUS_DATA_ERROR,
  STATUS_OBJECT_NAME_NOT_FOUND,
  STATUS_INSUFFICIENT_RESOURCES,
  STATUS_DISK_FULL,
  STATUS_PIPE_BROKEN,
  STATUS_IO_DEVICE_ERROR,
  STATUS_DEVICE_NOT_READY,
  STATUS_PIPE_DISCONNECTED,
  STATUS_IO_TIMEOUT,
  STATUS_FILE_FORCED_CLOSED,
  STATUS_NOT_SUPPORTED,
  STATUS_REMOTE_NOT_LISTENING,
  STATUS_BAD_NETWORK_PATH,
  STATUS_NETWORK_BUSY,
  STATUS_BAD_NETWORK_NAME,
  STATUS_REQUEST_NOT_ACCEPTED,
  STATUS_CANCELLED,
  STATUS_FILE_CLOSED,
  STATUS_LOCAL_DISCONNECT,
  STATUS_REMOTE_DISCONNECT,
  STATUS_INVALID_CONNECTION,
  STATUS_INVALID_ADDRESS,
  STATUS_INVALID_DEVICE_STATE,
  STATUS_INVALID_BUFFER_SIZE,
  STATUS_INVALID_ADDRESS_COMPONENT,
  STATUS_TOO_MANY_ADDRESSES,
  STATUS_ADDRESS_ALREADY_EXISTS,
  STATUS_ADDRESS_CLOSED,
  STATUS_CONNECTION_DISCONNECTED,
  STATUS_CONNECTION_RESET,
  STATUS_DATA_NOT_ACCEPTED,
  STATUS_NOT_FOUND,
  STATUS_CONNECTION_REFUSED,
  STATUS_GRACEFUL_DISCONNECT,
  STATUS_ADDRESS_ALREADY_ASSOCIATED,
  STATUS_ADDRESS_NOT_ASSOCIATED,
  STATUS_CONNECTION_INVALID,
  STATUS_CONNECTION_ACTIVE,
  STATUS_NETWORK_UNREACHABLE,
  STATUS_HOST_UNREACHABLE,
  STATUS_PROTOCOL_UNREACHABLE,
  STATUS_PORT_UNREACHABLE,
  STATUS_REQUEST_ABORTED,
  STATUS_CONNECTION_ABORTED,
  STATUS_CONNECTION_COUNT_LIMIT,
  STATUS_NO_MATCH,
  STATUS_NOINTERFACE,
  STATUS_HOST_DOWN,
  SEC_E_UNSUPPORTED_FUNCTION,
  SEC_E_INTERNAL_ERROR,
  SEC_E_INCOMPLETE_MESSAGE,
  SEC_E_WRONG_PRINCIPAL,
  SEC_E_UNTRUSTED_ROOT,
  SEC_E_ILLEGAL_MESSAGE,
  SEC_E_CERT_UNKNOWN,
  SEC_E_CERT_EXPIRED,
  SEC_E_ALGORITHM_MISMATCH,
  SEC_E_APPLICATION_PROTOCOL_MISMATCH,
}));

/**
 * Every NTSTATUS this module defines, from value to name (`0xC0000236` →
 * `"STATUS_CONNECTION_REFUSED"`). Values not in the map have no name here; see
 * {@linkcode ntStatusName} for the fallback text.
 *
 * @example Looking up a name
 * ```ts
 * import { NTSTATUS_NAMES } from "./status.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(NTSTATUS_NAMES.get(0xC0000236), "STATUS_CONNECTION_REFUSED");
 * assert.equal(NTSTATUS_NAMES.get(0xC0FFEE00), undefined);
 * ```
 */
export const NTSTATUS_NAMES: ReadonlyMap<NTSTATUS, string> = new Map(
  Array.from(VALUES_BY_NAME, ([name, value]) => [value, name]),
);

const HEX_STATUS_REGEXP = /^0x([0-9a-f]{1,8})$/i;
const FALLBACK_NAME_REGEXP = /^NTSTATUS_0x([0-9a-f]{8})$/i;
const STATUS_PREFIX = "STATUS_";

/**
 * Tells whether a status counts as success, as the ntdef.h `NT_SUCCESS` macro does: the value,
 * read as a signed 32-bit integer, is not negative. Success and informational codes pass;
 * warnings and errors do not.
 *
 * @param status The status to classify.
 * @returns `true` for success-class and informational statuses.
 *
 * @example Pending is a success, a buffer overflow warning is not
 * ```ts
 * import {
 *   NT_SUCCESS,
 *   STATUS_BUFFER_OVERFLOW,
 *   STATUS_PENDING,
 *   STATUS_SUCCESS,
 * } from "./status.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(NT_SUCCESS(STATUS_SUCCESS));
 * assert.ok(NT_SUCCESS(STATUS_PENDING));
 * assert.equal(NT_SUCCESS(STATUS_BUFFER_OVERFLOW), false);
 * ```
 */
export function NT_SUCCESS(status: NTSTATUS): boolean {
  return (status | 0) >= 0;
}

/**
 * Tells whether a status has informational severity (top two bits `01`), as the ntdef.h
 * `NT_INFORMATION` macro does.
 *
 * @param status The status to classify.
 * @returns `true` when the severity bits are `01`.
 *
 * @example Classifying an informational status
 * ```ts
 * import { NT_INFORMATION, STATUS_EVENT_PENDING, STATUS_SUCCESS } from "./status.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(NT_INFORMATION(STATUS_EVENT_PENDING));
 * assert.equal(NT_INFORMATION(STATUS_SUCCESS), false);
 * ```
 */
export function NT_INFORMATION(status: NTSTATUS): boolean {
  return status >>> 30 === 1;
}

/**
 * Tells whether a status has warning severity (top two bits `10`), as the ntdef.h
 * `NT_WARNING` macro does.
 *
 * @param status The status to classify.
 * @returns `true` when the severity bits are `10`.
 *
 * @example Classifying a warning
 * ```ts
 * import { NT_WARNING, STATUS_BUFFER_OVERFLOW, STATUS_CANCELLED } from "./status.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(NT_WARNING(STATUS_BUFFER_OVERFLOW));
 * assert.equal(NT_WARNING(STATUS_CANCELLED), false);
 * ```
 */
export function NT_WARNING(status: NTSTATUS): boolean {
  return status >>> 30 === 2;
}

/**
 * Tells whether a status has error severity (top two bits `11`), as the ntdef.h `NT_ERROR`
 * macro does.
 *
 * @param status The status to classify.
 * @returns `true` when the severity bits are `11`.
 *
 * @example Classifying an error
 * ```ts
 * import { NT_ERROR, STATUS_BUFFER_OVERFLOW, STATUS_CONNECTION_REFUSED } from "./status.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(NT_ERROR(STATUS_CONNECTION_REFUSED));
 * assert.equal(NT_ERROR(STATUS_BUFFER_OVERFLOW), false);
 * ```
 */
export function NT_ERROR(status: NTSTATUS): boolean {
  return status >>> 30 === 3;
}

/**
 * Formats a status the way status lines print it: `"0x"` followed by exactly eight upper-case
 * hex digits. A signed 32-bit input is shown as its unsigned value.
 *
 * @param status The status to format.
 * @returns The text, such as `"0xC0000236"`.
 * @throws {RangeError} If `status` is not an integer in the signed or unsigned 32-bit range.
 *
 * @example Formatting values
 * ```ts
 * import { formatNtStatus, STATUS_CONNECTION_REFUSED, STATUS_SUCCESS } from "./status.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatNtStatus(STATUS_CONNECTION_REFUSED), "0xC0000236");
 * assert.equal(formatNtStatus(STATUS_SUCCESS), "0x00000000");
 * assert.equal(formatNtStatus(STATUS_CONNECTION_REFUSED | 0), "0xC0000236");
 * ```
 */
export function formatNtStatus(status: NTSTATUS): string {
  return "0x" + toUint32(status).toString(16).toUpperCase().padStart(8, "0");
}

/**
 * Gives the name of a status, such as `"STATUS_CONNECTION_REFUSED"`.
 *
 * A value this module does not define is named `"NTSTATUS_"` followed by its
 * {@linkcode formatNtStatus} text, for example `"NTSTATUS_0xC0FFEE00"`, so every status has a
 * printable, grep-able name. {@linkcode ntStatusFromName} reads that form back.
 *
 * @param status The status to name.
 * @returns The constant's name, or the fallback text for unknown values.
 * @throws {RangeError} If `status` is not an integer in the signed or unsigned 32-bit range.
 *
 * @example Known and unknown values
 * ```ts
 * import { ntStatusName, STATUS_IO_TIMEOUT } from "./status.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(ntStatusName(STATUS_IO_TIMEOUT), "STATUS_IO_TIMEOUT");
 * assert.equal(ntStatusName(0xC0FFEE00), "NTSTATUS_0xC0FFEE00");
 * ```
 */
export function ntStatusName(status: NTSTATUS): string {
  const value = toUint32(status);
  return NTSTATUS_NAMES.get(value) ?? "NTSTATUS_" + formatNtStatus(value);
}

/**
 * Reads a status from text. Accepted forms:
 *
 * - a name, with or without the `STATUS_` prefix, in any letter case:
 *   `"STATUS_CONNECTION_REFUSED"`, `"connection_refused"`;
 * - hex text of one to eight digits after `0x`: `"0xC0000236"` (any value, named or not);
 * - the fallback name {@linkcode ntStatusName} gives unknown values: `"NTSTATUS_0xC0FFEE00"`.
 *
 * Surrounding white space is not accepted.
 *
 * @param name The text to read.
 * @returns The status, or `undefined` if the text is none of the forms above.
 *
 * @example Names and hex text
 * ```ts
 * import { ntStatusFromName, STATUS_CONNECTION_REFUSED } from "./status.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(ntStatusFromName("STATUS_CONNECTION_REFUSED"), STATUS_CONNECTION_REFUSED);
 * assert.equal(ntStatusFromName("connection_refused"), STATUS_CONNECTION_REFUSED);
 * assert.equal(ntStatusFromName("0xc0000236"), STATUS_CONNECTION_REFUSED);
 * assert.equal(ntStatusFromName("STATUS_NO_SUCH_THING"), undefined);
 * assert.equal(ntStatusFromName("SEC_E_UNTRUSTED_ROOT"), 0x80090325);
 * ```
 */
export function ntStatusFromName(name: string): NTSTATUS | undefined {
  const hex = HEX_STATUS_REGEXP.exec(name) ?? FALLBACK_NAME_REGEXP.exec(name);
  if (hex !== null) return parseInt(hex[1]!, 16);
  const upper = name.toUpperCase();
  return VALUES_BY_NAME.get(upper) ??
    VALUES_BY_NAME.get(upper.startsWith(STATUS_PREFIX) ? upper : STATUS_PREFIX + upper);
}

// Accepts both the unsigned form and the signed form that `| 0` arithmetic produces, and refuses
// anything else rather than letting `>>> 0` quietly wrap it into some other status.
function toUint32(status: NTSTATUS): number {
  if (!Number.isInteger(status) || status < -0x80000000 || status > 0xFFFFFFFF) {
    throw new RangeError(
      `Cannot use NTSTATUS "${status}": expected a 32-bit integer`,
    );
  }
  return status >>> 0;
}

/**
 * Constants, buffers, completion records and callback tables shared by every WSK socket category.
 *
 * Names and numeric values follow `wsk.h`; the TypeScript shapes are ours. A call that the C API
 * completes through an IRP resolves here to a {@linkcode WskCompletion}: `status` is
 * `Irp->IoStatus.Status` and `information` is `Irp->IoStatus.Information`.
 *
 * @module
 */

import type { NTSTATUS } from "./status.ts";
import type { SockAddr } from "./address.ts";

// ---------------------------------------------------------------------------------------------
// Socket categories (WskSocket Flags)

/** Basic socket: only WskControlSocket and WskCloseSocket. */
export const WSK_FLAG_BASIC_SOCKET = 0x00000000;
/** Listening socket: WSK_PROVIDER_LISTEN_DISPATCH. */
export const WSK_FLAG_LISTEN_SOCKET = 0x00000001;
/** Connection-oriented socket: WSK_PROVIDER_CONNECTION_DISPATCH. */
export const WSK_FLAG_CONNECTION_SOCKET = 0x00000002;
/** Datagram socket (not modelled: WskSocket completes with STATUS_NOT_SUPPORTED). */
export const WSK_FLAG_DATAGRAM_SOCKET = 0x00000004;
/** Stream socket, Windows 10 1703+ (not modelled: STATUS_NOT_SUPPORTED). */
export const WSK_FLAG_STREAM_SOCKET = 0x00000008;

// ---------------------------------------------------------------------------------------------
// Per-call flags. The flag spaces are per function, so some numbers repeat.

/** WskSend: send now, do not let Nagle hold the data back. */
export const WSK_FLAG_NODELAY = 0x00000002;
/** WskSend: urgent data. Header-only; the model completes it with STATUS_NOT_SUPPORTED. */
export const WSK_FLAG_OOB = 0x00000001;
/** WskReceive: complete only when the buffer is full, the peer closes, or on abort/cancel. */
export const WSK_FLAG_WAITALL = 0x00000002;
/** WskReceive: discard everything until the peer closes, an abort, or cancellation. */
export const WSK_FLAG_DRAIN = 0x00000004;
/** WskDisconnect and WskDisconnectEvent: abortive (RST) rather than graceful (FIN). */
export const WSK_FLAG_ABORTIVE = 0x00000001;
/** WskReceiveEvent flag: release kept indications as soon as possible. */
export const WSK_FLAG_RELEASE_ASAP = 0x00000002;
/** WskReceiveEvent flag: the indicated data ends a message (TCP: PSH seen). */
export const WSK_FLAG_ENTIRE_MESSAGE = 0x00000004;
/** Event flag: the callback runs at DISPATCH_LEVEL (never set by this model). */
export const WSK_FLAG_AT_DISPATCH_LEVEL = 0x00000008;

// ---------------------------------------------------------------------------------------------
// Event masks for SO_WSK_EVENT_CALLBACK

/** Enables WskSendBacklogEvent. */
export const WSK_EVENT_SEND_BACKLOG = 0x00000010;
/** Enables WskReceiveEvent. */
export const WSK_EVENT_RECEIVE = 0x00000040;
/** Enables WskDisconnectEvent. */
export const WSK_EVENT_DISCONNECT = 0x00000080;
/** Enables WskAcceptEvent on a listening socket. */
export const WSK_EVENT_ACCEPT = 0x00000200;
/** OR-ed with one event flag to disable that event. */
export const WSK_EVENT_DISABLE = 0x80000000;

// ---------------------------------------------------------------------------------------------
// WskControlSocket

/** WSK_CONTROL_SOCKET_TYPE: set an option. */
export const WskSetOption = 0;
/** WSK_CONTROL_SOCKET_TYPE: read an option. */
export const WskGetOption = 1;
/** WSK_CONTROL_SOCKET_TYPE: issue an IOCTL. */
export const WskIoctl = 2;
/** The three control request types. */
export type WskControlSocketType = typeof WskSetOption | typeof WskGetOption | typeof WskIoctl;

/** Level of WSK and socket options. */
export const SOL_SOCKET = 0xffff;
/** Level of TCP options (the protocol number). */
export const IPPROTO_TCP = 6;
/** Level of IPv6 options (the protocol number). */
export const IPPROTO_IPV6 = 41;
/** Socket type of a TCP socket. */
export const SOCK_STREAM = 1;
/** Socket type of a UDP socket (not modelled). */
export const SOCK_DGRAM = 2;

/** Base of WSK's own SOL_SOCKET options. */
export const WSK_SO_BASE = 0x4000;
/** Allow the local address to be shared (before bind). */
export const SO_REUSEADDR = 0x0004;
/** Refuse any sharing of the local address (before bind). `~SO_REUSEADDR` as a u32. */
export const SO_EXCLUSIVEADDRUSE = 0xfffffffb;
/** TCP keep-alive probes on or off. */
export const SO_KEEPALIVE = 0x0008;
/** Send buffer size (pass-through, not documented for WSK). */
export const SO_SNDBUF = 0x1001;
/** Receive buffer size. */
export const SO_RCVBUF = 0x1002;
/** Conditional accept on a listening socket (before bind). */
export const SO_CONDITIONAL_ACCEPT = 0x3002;
/** Datagram broadcast; not valid on connection sockets. */
export const SO_BROADCAST = 0x0020;
/** Security descriptor for address sharing. */
export const SO_WSK_SECURITY: number = WSK_SO_BASE + 1;
/** Enable or disable event callbacks; the input is a {@linkcode WskEventCallbackControl}. */
export const SO_WSK_EVENT_CALLBACK: number = WSK_SO_BASE + 2;
/** Nagle's algorithm off (1) or on (0). */
export const TCP_NODELAY = 0x0001;
/** Keep-alive idle time in seconds (Winsock TCP_KEEPALIVE / TCP_KEEPIDLE). */
export const TCP_KEEPIDLE = 3;
/** Maximum retransmission time. */
export const TCP_MAXRT = 5;
/** TCP Fast Open for WskConnectEx. */
export const TCP_FASTOPEN = 15;
/** Keep-alive probe count. */
export const TCP_KEEPCNT = 16;
/** Keep-alive probe interval. */
export const TCP_KEEPINTVL = 17;
/** Dual-stack switch on an AF_INET6 socket (before bind). */
export const IPV6_V6ONLY = 27;

/** IOCTL: bytes received and not yet read by the client. Output: SIZE_T. */
export const SIO_WSK_QUERY_RECEIVE_BACKLOG = 0x4f000004;
/** IOCTL: how many bytes of send data should be outstanding. Output: SIZE_T. */
export const SIO_WSK_QUERY_IDEAL_SEND_BACKLOG = 0x4f000003;
/** IOCTL: TCP silent mode (Windows 8+). */
export const SIO_WSK_SET_TCP_SILENT_MODE = 0x2f000007;
/** IOCTL: list of local addresses. */
export const SIO_ADDRESS_LIST_QUERY = 0x48000016;
/** IOCTL: wait for a change of the local address list. */
export const SIO_ADDRESS_LIST_CHANGE = 0x28000017;
/** IOCTL: sort a list of addresses. */
export const SIO_ADDRESS_LIST_SORT = 0xc8000019;
/** IOCTL: register an extension interface. */
export const SIO_WSK_REGISTER_EXTENSION = 0xcf000002;
/** IOCTL: inspect id of a conditionally accepted socket. */
export const SIO_WSK_QUERY_INSPECT_ID = 0x4f000005;
/** Winsock FIONREAD (not documented for WSK). */
export const FIONREAD = 0x4004667f;
/** Winsock keep-alive values (not documented for WSK). */
export const SIO_KEEPALIVE_VALS = 0x98000004;

/** `MAKE_WSK_VERSION(1, 0)`. */
export const WSK_VERSION_1_0 = 0x0100;

/** The NPI id that SO_WSK_EVENT_CALLBACK expects (`NPI_WSK_INTERFACE_ID`). */
export const NPI_WSK_INTERFACE_ID = "2227E803-8D8B-11D4-ABAD-009027D4F8E7";

/**
 * Encodes an option value as the ULONG WskControlSocket expects (4 bytes, little-endian).
 *
 * @example Turn TCP_NODELAY on
 * ```ts
 * import assert from "node:assert/strict";
 * import { ulong } from "./types.ts";
 *
 * assert.deepEqual(ulong(1), new Uint8Array([1, 0, 0, 0]));
 * ```
 */
export function ulong(value: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value >>> 0, true);
  return bytes;
}

/** Input of SO_WSK_EVENT_CALLBACK. */
export interface WskEventCallbackControl {
  /** Must be {@linkcode NPI_WSK_INTERFACE_ID}. */
  readonly NpiId: string;
  /** WSK_EVENT_* flags, or one flag OR-ed with {@linkcode WSK_EVENT_DISABLE}. */
  readonly EventMask: number;
}

// ---------------------------------------------------------------------------------------------
// Buffers

/** One memory descriptor in a chain. `bytes` plays the part of the locked pages. */
export interface Mdl {
  /** The next MDL of the chain, or null. */
  readonly Next: Mdl | null;
  /** The memory this MDL describes. */
  readonly bytes: Uint8Array;
}

/** WSK_BUF: `Length` bytes starting `Offset` bytes into the first MDL of a chain. */
export interface WskBuf {
  /** First MDL, or null when `Length` is 0. */
  readonly Mdl: Mdl | null;
  /** Offset into the first MDL; must fall inside it. */
  readonly Offset: number;
  /** Bytes to send, or the most to receive. */
  readonly Length: number;
}

/**
 * Builds a WSK_BUF that covers the whole of one or more byte arrays, chained in order.
 *
 * @example Describe one buffer
 * ```ts
 * import assert from "node:assert/strict";
 * import { wskBuf } from "./types.ts";
 *
 * const buf = wskBuf(new TextEncoder().encode("hello"));
 * assert.equal(buf.Length, 5);
 * assert.equal(buf.Offset, 0);
 * ```
 */
export function wskBuf(...parts: Uint8Array[]): WskBuf {
  let mdl: Mdl | null = null;
  let length = 0;
  for (let i = parts.length - 1; i >= 0; i--) {
    const bytes = parts[i]!;
    mdl = { Next: mdl, bytes };
    length += bytes.length;
  }
  return { Mdl: mdl, Offset: 0, Length: length };
}

/** One element of a list of indicated data handed to WskReceiveEvent. */
export interface WskDataIndication {
  /** The next indication, or null. */
  readonly Next: WskDataIndication | null;
  /** The indicated bytes (owned by the provider unless the callback kept them). */
  readonly Buffer: WskBuf;
}

// ---------------------------------------------------------------------------------------------
// Completion and cancellation

/**
 * What the model gives where the kernel would use an IRP: a way to cancel the call
 * (`signal`, the part of `IoCancelIrp`) and an optional deadline in milliseconds.
 *
 * A call cancelled through `signal` completes with STATUS_CANCELLED; one that runs out of time
 * completes with STATUS_IO_TIMEOUT. Either way `information` is 0.
 */
export interface WskIrp {
  /** Aborting it cancels the pending call. */
  readonly signal?: AbortSignal;
  /** Deadline for the call in milliseconds; unbounded when absent. */
  readonly timeout?: number;
}

/** The outcome of a dispatch call: `IoStatus.Status` and `IoStatus.Information`. */
export interface WskCompletion {
  /** The NTSTATUS the call completed with. */
  readonly status: NTSTATUS;
  /** Bytes transferred (send, receive, ConnectEx, control output), otherwise 0. */
  readonly information: number;
  /** A short explanation when the status is not a success. */
  readonly message?: string;
  /** The host error behind a failure, when there was one. */
  readonly cause?: unknown;
}

/** A completion that also carries an address (WskGetLocalAddress, WskGetRemoteAddress). */
export interface WskAddressCompletion extends WskCompletion {
  /** The address, on success. */
  readonly address?: SockAddr;
}

// ---------------------------------------------------------------------------------------------
// Client callback tables

/** What a WskReceiveEvent callback may return: a status, or a status with a partial accept. */
export type WskReceiveEventResult = NTSTATUS | {
  readonly status: NTSTATUS;
  readonly bytesAccepted: number;
};

/**
 * WSK_CLIENT_CONNECTION_DISPATCH: the client's callbacks for a connection socket. Every member
 * may be absent when that event is never enabled.
 */
export interface WskClientConnectionDispatch {
  /**
   * Data arrived while no receive was pending. `indication` is null when the socket died.
   * Return STATUS_SUCCESS (all taken, or `{ status, bytesAccepted }` for part), STATUS_PENDING to
   * keep the list until WskRelease, or STATUS_DATA_NOT_ACCEPTED to leave it to WskReceive.
   */
  readonly WskReceiveEvent?: (
    socketContext: unknown,
    flags: number,
    indication: WskDataIndication | null,
    bytesIndicated: number,
  ) => WskReceiveEventResult;
  /** The peer closed: `flags` has WSK_FLAG_ABORTIVE for a reset. Must return STATUS_SUCCESS. */
  readonly WskDisconnectEvent?: (socketContext: unknown, flags: number) => NTSTATUS;
  /** A new ideal send backlog, in bytes. Must return STATUS_SUCCESS. */
  readonly WskSendBacklogEvent?: (socketContext: unknown, idealBacklogSize: number) => NTSTATUS;
}

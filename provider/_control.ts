/**
 * Internal helpers for WskControlSocket: reading and writing option values, checking the
 * SO_WSK_EVENT_CALLBACK input, and the list of options the model knows but cannot honour.
 *
 * @module
 */

import { STATUS_BUFFER_TOO_SMALL, STATUS_INVALID_PARAMETER } from "./status.ts";
import {
  FIONREAD,
  IPPROTO_IPV6,
  IPPROTO_TCP,
  IPV6_V6ONLY,
  NPI_WSK_INTERFACE_ID,
  SIO_ADDRESS_LIST_CHANGE,
  SIO_ADDRESS_LIST_QUERY,
  SIO_ADDRESS_LIST_SORT,
  SIO_KEEPALIVE_VALS,
  SIO_WSK_QUERY_INSPECT_ID,
  SIO_WSK_REGISTER_EXTENSION,
  SIO_WSK_SET_TCP_SILENT_MODE,
  SO_BROADCAST,
  SO_CONDITIONAL_ACCEPT,
  SO_EXCLUSIVEADDRUSE,
  SO_RCVBUF,
  SO_REUSEADDR,
  SO_SNDBUF,
  SO_WSK_SECURITY,
  SOL_SOCKET,
  TCP_FASTOPEN,
  TCP_KEEPCNT,
  TCP_KEEPIDLE,
  TCP_KEEPINTVL,
  TCP_MAXRT,
  WSK_EVENT_DISABLE,
  type WskCompletion,
  type WskControlSocketType,
  type WskEventCallbackControl,
  type WskIrp,
} from "./types.ts";
import { failure, type SocketGuard } from "./_irp.ts";

/** Input accepted by WskControlSocket: raw bytes, or the event-callback control structure. */
export type ControlInput = Uint8Array | WskEventCallbackControl | null | undefined;

/**
 * The two members every provider table of a socket of type `S` begins with: C's
 * WSK_PROVIDER_BASIC_DISPATCH, flattened into the connection and listen tables as their unnamed
 * `Basic` struct. Each table's own documentation says what they do for its sockets.
 */
export interface WskSocketBasicDispatch<S> {
  /** Sets or gets an option, or issues an IOCTL. */
  WskControlSocket(
    socket: S,
    requestType: WskControlSocketType,
    controlCode: number,
    level: number,
    input?: ControlInput,
    output?: Uint8Array | null,
    irp?: WskIrp,
  ): Promise<WskCompletion>;
  /** Closes the socket. */
  WskCloseSocket(socket: S, irp?: WskIrp): Promise<WskCompletion>;
}

/**
 * The two basic members of a socket table: each checks its socket argument with `guard`, then
 * runs the socket's own `control` (WskControlSocket, arguments after the socket) or `close`.
 */
export function basicMembers<S>(
  guard: SocketGuard<S>,
  control: (
    socket: S,
    ...args: Parameters<WskSocketBasicDispatch<S>["WskControlSocket"]> extends
      [unknown, ...infer Rest] ? Rest : never
  ) => WskCompletion,
  close: (socket: S) => Promise<WskCompletion>,
): WskSocketBasicDispatch<S> {
  return {
    WskControlSocket(socket, ...args) {
      return guard(socket, (s) => Promise.resolve(control(s, ...args)));
    },
    WskCloseSocket(socket, _irp) {
      return guard(socket, close);
    },
  };
}

/** Reads a ULONG (4 bytes, little-endian) option value. */
export function readUlong(input: ControlInput): number | WskCompletion {
  if (!(input instanceof Uint8Array) || input.length !== 4) {
    return failure(STATUS_INVALID_PARAMETER, "The option value must be a 4-byte ULONG");
  }
  return new DataView(input.buffer, input.byteOffset, 4).getUint32(0, true);
}

/** Writes an unsigned value of `size` bytes (4 = ULONG, 8 = SIZE_T), little-endian. */
export function writeUnsigned(
  output: Uint8Array | null | undefined,
  value: number,
  size: 4 | 8,
): number | WskCompletion {
  if (!(output instanceof Uint8Array)) {
    return failure(STATUS_INVALID_PARAMETER, "This request needs an output buffer");
  }
  if (output.length < size) {
    return failure(STATUS_BUFFER_TOO_SMALL, `The output buffer needs ${size} bytes`);
  }
  const view = new DataView(output.buffer, output.byteOffset, size);
  if (size === 4) view.setUint32(0, value, true);
  else view.setBigUint64(0, BigInt(value), true);
  return size;
}

/** A checked SO_WSK_EVENT_CALLBACK request. */
export interface EventRequest {
  /** The events named (without the disable bit). */
  readonly events: number;
  /** True when disabling. */
  readonly disable: boolean;
}

/** Checks an SO_WSK_EVENT_CALLBACK input against the events `allowed` on this socket. */
export function parseEventRequest(
  input: ControlInput,
  allowed: number,
): EventRequest | WskCompletion {
  if (input === null || input === undefined || input instanceof Uint8Array) {
    return failure(
      STATUS_INVALID_PARAMETER,
      "SO_WSK_EVENT_CALLBACK needs a WSK_EVENT_CALLBACK_CONTROL",
    );
  }
  if (String(input.NpiId).toUpperCase() !== NPI_WSK_INTERFACE_ID) {
    return failure(STATUS_INVALID_PARAMETER, "The NpiId is not NPI_WSK_INTERFACE_ID");
  }
  const mask = input.EventMask >>> 0;
  const disable = (mask & WSK_EVENT_DISABLE) !== 0;
  const events = mask & ~WSK_EVENT_DISABLE;
  if (events === 0 || (events & ~allowed) !== 0) {
    return failure(
      STATUS_INVALID_PARAMETER,
      `Event mask 0x${mask.toString(16)} names events this socket does not have`,
    );
  }
  if (disable && (events & (events - 1)) !== 0) {
    return failure(STATUS_INVALID_PARAMETER, "Events are disabled one per call");
  }
  return { events, disable };
}

/** Options and IOCTLs WSK documents that the host cannot honour, keyed by `level:code`. */
const UNSUPPORTED_OPTIONS = new Map<string, string>([
  [`${SOL_SOCKET}:${SO_REUSEADDR}`, "SO_REUSEADDR (the host always sets it and cannot clear it)"],
  [`${SOL_SOCKET}:${SO_EXCLUSIVEADDRUSE}`, "SO_EXCLUSIVEADDRUSE (no exclusive binds on this host)"],
  [`${SOL_SOCKET}:${SO_RCVBUF}`, "SO_RCVBUF (Deno has no buffer-size API)"],
  [`${SOL_SOCKET}:${SO_SNDBUF}`, "SO_SNDBUF (Deno has no buffer-size API)"],
  [`${SOL_SOCKET}:${SO_CONDITIONAL_ACCEPT}`, "SO_CONDITIONAL_ACCEPT (no SYN-time accept hook)"],
  [`${SOL_SOCKET}:${SO_BROADCAST}`, "SO_BROADCAST (datagram sockets only)"],
  [`${SOL_SOCKET}:${SO_WSK_SECURITY}`, "SO_WSK_SECURITY (no security descriptors here)"],
  [`${IPPROTO_TCP}:${TCP_FASTOPEN}`, "TCP_FASTOPEN (WskConnectEx sends after the handshake)"],
  [`${IPPROTO_TCP}:${TCP_KEEPIDLE}`, "TCP_KEEPIDLE (no keep-alive timing API)"],
  [`${IPPROTO_TCP}:${TCP_MAXRT}`, "TCP_MAXRT (no retransmission-time API)"],
  [`${IPPROTO_TCP}:${TCP_KEEPCNT}`, "TCP_KEEPCNT (no keep-alive timing API)"],
  [`${IPPROTO_TCP}:${TCP_KEEPINTVL}`, "TCP_KEEPINTVL (no keep-alive timing API)"],
  [`${IPPROTO_IPV6}:${IPV6_V6ONLY}`, "IPV6_V6ONLY (Deno listeners cannot change it)"],
]);

/** IOCTLs WSK documents that the host cannot honour. */
const UNSUPPORTED_IOCTLS = new Map<number, string>([
  [SIO_WSK_SET_TCP_SILENT_MODE, "SIO_WSK_SET_TCP_SILENT_MODE (not on loopback, no host API)"],
  [SIO_ADDRESS_LIST_QUERY, "SIO_ADDRESS_LIST_QUERY (no interface list API)"],
  [SIO_ADDRESS_LIST_CHANGE, "SIO_ADDRESS_LIST_CHANGE (no interface change notification)"],
  [SIO_ADDRESS_LIST_SORT, "SIO_ADDRESS_LIST_SORT (no host API)"],
  [SIO_WSK_REGISTER_EXTENSION, "SIO_WSK_REGISTER_EXTENSION (no extension interfaces)"],
  [SIO_WSK_QUERY_INSPECT_ID, "SIO_WSK_QUERY_INSPECT_ID (no conditional accept)"],
  [FIONREAD, "FIONREAD (use SIO_WSK_QUERY_RECEIVE_BACKLOG)"],
  [SIO_KEEPALIVE_VALS, "SIO_KEEPALIVE_VALS (no keep-alive timing API)"],
]);

/** Describes a documented option the model cannot honour, or undefined. */
export function unsupportedOption(level: number, code: number): string | undefined {
  return UNSUPPORTED_OPTIONS.get(`${level}:${code >>> 0}`);
}

/** Describes a documented IOCTL the model cannot honour, or undefined. */
export function unsupportedIoctl(code: number): string | undefined {
  return UNSUPPORTED_IOCTLS.get(code >>> 0);
}

/** True when `value` is a completion rather than a parsed value. */
export function isCompletion(value: unknown): value is WskCompletion {
  return typeof value === "object" && value !== null && "status" in value;
}

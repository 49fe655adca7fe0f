/**
 * A pure RST on a `Deno.TcpConn`, through libc. Deno gives a TcpConn no linger control and no
 * file descriptor, and its `close()` shuts the write side first, so the peer always reads a FIN.
 * With `--allow-ffi` granted this module finds the connection's descriptor by its address pair
 * (getsockname/getpeername over the open descriptors) and calls `connect()` on it with family
 * `AF_UNSPEC`: Linux then disconnects the socket with an RST at once (`tcp_disconnect`), wakes
 * any read or write blocked on it, and leaves it unconnected, so the later `close()` sends
 * nothing more. Deno still owns the descriptor and closes it as usual: nothing is closed here.
 *
 * Without the permission (or off Linux) nothing is loaded and every call answers false: the
 * caller falls back to a plain close (the peer sees FIN), and says so.
 *
 * @module
 */

import { AF_INET, encodeSockAddr, type SockAddr } from "./address.ts";

/** The libc calls this needs. */
interface Libc {
  getsockname(fd: number, addr: Deno.PointerValue, len: Deno.PointerValue): number;
  getpeername(fd: number, addr: Deno.PointerValue, len: Deno.PointerValue): number;
  connect(fd: number, addr: Deno.PointerValue, len: number): number;
  fcntl(fd: number, command: number): number;
}

/** Buffers the calls write into, made once: pointers keep each call on FFI's fast path. */
const raw = new Uint8Array(128);
const length = new Uint32Array(1);
const unspec = new Uint8Array(16);

/** Linux address family numbers, as the kernel writes them in a `sockaddr`. */
const LINUX_AF_UNSPEC = 0;
const LINUX_AF_INET = 2;
const LINUX_AF_INET6 = 10;
/** `fcntl` command that reads a descriptor's flags: -1 means the descriptor is not open. */
const F_GETFD = 1;

/**
 * Descriptors are handed out lowest first, so open ones sit in a dense run from 0 with small
 * holes. After this many closed descriptors in a row, the scan has passed the last open one.
 */
const SCAN_GAP = 1024;
/** Never scan past this descriptor. */
const SCAN_MAX = 1 << 20;

let libc: Libc | null | undefined;

/** Loads libc once, when the process may use FFI; null when it may not (or cannot). */
function loadLibc(): Libc | null {
  if (libc !== undefined) return libc;
  libc = null;
  try {
    if (Deno.build.os !== "linux") return null;
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return null;
    const lib = Deno.dlopen(
      "libc.so.6",
      {
        getsockname: { parameters: ["i32", "pointer", "pointer"], result: "i32" },
        getpeername: { parameters: ["i32", "pointer", "pointer"], result: "i32" },
        connect: { parameters: ["i32", "pointer", "u32"], result: "i32" },
        fcntl: { parameters: ["i32", "i32"], result: "i32" },
      } as const,
    );
    libc = lib.symbols;
  } catch {
    libc = null;
  }
  return libc;
}

/**
 * Whether this process can send a pure RST on a Deno-backed connection: Linux, and
 * `--allow-ffi` granted.
 *
 * @example
 * ```ts
 * import { canResetDenoConnections } from "./_rst.ts";
 *
 * const how = canResetDenoConnections() ? "RST" : "FIN";
 * console.assert(how === "RST" || how === "FIN");
 * ```
 */
export function canResetDenoConnections(): boolean {
  return loadLibc() !== null;
}

/** The port and address bytes of an endpoint, in the kernel's layout for comparison. */
interface Wanted {
  readonly family: number;
  readonly port: number;
  readonly address: Uint8Array;
}

function wanted(addr: SockAddr): Wanted {
  const bytes = encodeSockAddr(addr);
  return addr.family === AF_INET
    ? { family: LINUX_AF_INET, port: bytes[2]! << 8 | bytes[3]!, address: bytes.subarray(4, 8) }
    : { family: LINUX_AF_INET6, port: bytes[2]! << 8 | bytes[3]!, address: bytes.subarray(8, 24) };
}

/** Whether a `sockaddr` the kernel wrote names `want`. */
function matches(raw: Uint8Array, want: Wanted): boolean {
  const family = raw[0]! | raw[1]! << 8;
  if (family !== want.family || (raw[2]! << 8 | raw[3]!) !== want.port) return false;
  const at = family === LINUX_AF_INET ? 4 : 8;
  for (let i = 0; i < want.address.length; i++) {
    if (raw[at + i] !== want.address[i]) return false;
  }
  return true;
}

/**
 * Finds the descriptor of the TCP connection from `local` to `remote` and resets it (a pure
 * RST; blocked reads and writes on it fail at once). Returns false when FFI is not available
 * or no such connection is open; the caller then closes the connection the ordinary way.
 *
 * @example Reset a connection (with --allow-ffi)
 * ```ts ignore
 * import { resetConnection } from "./_rst.ts";
 * import { sockAddrFromNetAddr } from "./address.ts";
 *
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port: 8080 });
 * const reset = resetConnection(
 *   sockAddrFromNetAddr(conn.localAddr),
 *   sockAddrFromNetAddr(conn.remoteAddr),
 * );
 * conn.close(); // after a reset this sends nothing more
 * ```
 */
export function resetConnection(local: SockAddr, remote: SockAddr): boolean {
  const c = loadLibc();
  if (c === null) return false;
  const mine = wanted(local);
  const theirs = wanted(remote);
  const rawAt = Deno.UnsafePointer.of(raw);
  const lengthAt = Deno.UnsafePointer.of(length);
  let gap = 0;
  for (let fd = 0; fd < SCAN_MAX && gap < SCAN_GAP; fd++) {
    length[0] = raw.length;
    if (c.getsockname(fd, rawAt, lengthAt) !== 0) {
      // Not a socket: a closed descriptor counts towards the end of the scan, an open file not.
      gap = c.fcntl(fd, F_GETFD) === -1 ? gap + 1 : 0;
      continue;
    }
    gap = 0;
    if (!matches(raw, mine)) continue;
    length[0] = raw.length;
    if (c.getpeername(fd, rawAt, lengthAt) !== 0 || !matches(raw, theirs)) continue;
    unspec[0] = LINUX_AF_UNSPEC;
    return c.connect(fd, Deno.UnsafePointer.of(unspec), unspec.length) === 0;
  }
  return false;
}

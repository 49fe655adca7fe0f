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

/** Whether this process may use FFI here (Linux, `--allow-ffi` granted); asked once. */
let allowed: boolean | undefined;
let libc: Libc | null = null;

/**
 * libc's calls, when the process may use FFI; null when it may not, or when loading failed (for
 * example with every descriptor in use: that is tried again on the next call).
 */
function loadLibc(): Libc | null {
  if (libc !== null) return libc;
  allowed ??= Deno.build.os === "linux" &&
    Deno.permissions.querySync({ name: "ffi" }).state === "granted";
  if (!allowed) return null;
  try {
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
    return null;
  }
  return libc;
}

/**
 * Whether this process can send a pure RST on a Deno-backed connection: Linux, and
 * `--allow-ffi` granted.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { canResetDenoConnections } from "./_rst.ts";
 *
 * // True only on Linux with --allow-ffi granted.
 * const abortsSend = canResetDenoConnections() ? "RST" : "FIN";
 * assert.ok(abortsSend === "RST" || abortsSend === "FIN");
 * ```
 */
export function canResetDenoConnections(): boolean {
  return loadLibc() !== null;
}

/** An endpoint as text: family, port and address bytes (the kernel's `sockaddr` fields). */
function endpointKey(family: number, port: number, address: Uint8Array): string {
  let hex = "";
  for (const byte of address) hex += byte.toString(16).padStart(2, "0");
  return `${family}/${port}/${hex}`;
}

/** The key of one of our endpoints, in the kernel's terms. */
function keyOf(addr: SockAddr): string {
  const bytes = encodeSockAddr(addr);
  const port = bytes[2]! << 8 | bytes[3]!;
  return addr.family === AF_INET
    ? endpointKey(LINUX_AF_INET, port, bytes.subarray(4, 8))
    : endpointKey(LINUX_AF_INET6, port, bytes.subarray(8, 24));
}

/** The key of the IPv4 or IPv6 `sockaddr` the kernel wrote into `raw`; null for others. */
function rawKey(): string | null {
  const family = raw[0]! | raw[1]! << 8;
  const port = raw[2]! << 8 | raw[3]!;
  if (family === LINUX_AF_INET) return endpointKey(family, port, raw.subarray(4, 8));
  if (family === LINUX_AF_INET6) return endpointKey(family, port, raw.subarray(8, 24));
  return null;
}

/** The local address of `fd` as a key: null when it is no socket, "" when no IP socket. */
function localOf(c: Libc, fd: number): string | null {
  length[0] = raw.length;
  if (c.getsockname(fd, Deno.UnsafePointer.of(raw), Deno.UnsafePointer.of(length)) !== 0) {
    return null;
  }
  return rawKey() ?? "";
}

/** The remote address of `fd` as a key; null when it has none (not connected). */
function remoteOf(c: Libc, fd: number): string | null {
  length[0] = raw.length;
  if (c.getpeername(fd, Deno.UnsafePointer.of(raw), Deno.UnsafePointer.of(length)) !== 0) {
    return null;
  }
  return rawKey();
}

/**
 * Descriptors of connections a scan came across, by address pair. Each FFI call costs
 * microseconds, so a scan of thousands of descriptors takes milliseconds; the connections a
 * scan learns on the way (every one sharing the local address asked for: the other accepted
 * connections of the same listener) are found here next time, after a check that the
 * descriptor still is that connection (it may have been closed and reused since).
 */
const known = new Map<string, number>();

/** Walks the open descriptors for the connection `local`>`remote`; its descriptor, if open. */
function scan(c: Libc, local: string, remote: string): number | undefined {
  known.clear();
  let gap = 0;
  for (let fd = 0; fd < SCAN_MAX && gap < SCAN_GAP; fd++) {
    const mine = localOf(c, fd);
    if (mine === null) {
      // Not a socket: a closed descriptor counts towards the end of the scan, an open file not.
      gap = c.fcntl(fd, F_GETFD) === -1 ? gap + 1 : 0;
      continue;
    }
    gap = 0;
    if (mine !== local) continue;
    const theirs = remoteOf(c, fd);
    if (theirs !== null) known.set(`${mine}>${theirs}`, fd);
  }
  return known.get(`${local}>${remote}`);
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
  const mine = keyOf(local);
  const theirs = keyOf(remote);
  let fd = known.get(`${mine}>${theirs}`);
  if (fd === undefined || localOf(c, fd) !== mine || remoteOf(c, fd) !== theirs) {
    fd = scan(c, mine, theirs);
  }
  if (fd === undefined) return false;
  known.delete(`${mine}>${theirs}`);
  unspec[0] = LINUX_AF_UNSPEC;
  return c.connect(fd, Deno.UnsafePointer.of(unspec), unspec.length) === 0;
}

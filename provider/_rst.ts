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
  poll(fds: Deno.PointerValue, count: bigint, timeout: number): number;
  getrlimit(resource: number, limit: Deno.PointerValue): number;
}

/** Buffers the calls write into, made once (with their pointers, made at first use). */
const raw = new Uint8Array(128);
const length = new Uint32Array(1);
const unspec = new Uint8Array(16);
const limits = new BigUint64Array(2);
/** How many descriptors one poll() call checks. */
const POLL_CHUNK = 4096;
/** `struct pollfd` x POLL_CHUNK: int fd, short events, short revents. */
const pollFds = new DataView(new ArrayBuffer(POLL_CHUNK * 8));
let pointers:
  | { raw: Deno.PointerValue; length: Deno.PointerValue; pollFds: Deno.PointerValue }
  | null = null;

/** Linux address family numbers, as the kernel writes them in a `sockaddr`. */
const LINUX_AF_UNSPEC = 0;
const LINUX_AF_INET = 2;
const LINUX_AF_INET6 = 10;
/** `getrlimit` resource of the descriptor limit (Linux, x86_64 and arm64). */
const RLIMIT_NOFILE = 7;
/** `poll` answer for a descriptor that is not open. */
const POLLNVAL = 0x20;
/** Never scan past this descriptor, whatever the limit says. */
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
        poll: { parameters: ["pointer", "u64", "i32"], result: "i32" },
        getrlimit: { parameters: ["i32", "pointer"], result: "i32" },
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
  const at = pointersOf();
  length[0] = raw.length;
  if (c.getsockname(fd, at.raw, at.length) !== 0) return null;
  return rawKey() ?? "";
}

/** The remote address of `fd` as a key; null when it has none (not connected). */
function remoteOf(c: Libc, fd: number): string | null {
  const at = pointersOf();
  length[0] = raw.length;
  if (c.getpeername(fd, at.raw, at.length) !== 0) return null;
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

/** The pointers of the buffers above. */
function pointersOf(): NonNullable<typeof pointers> {
  pointers ??= {
    raw: Deno.UnsafePointer.of(raw),
    length: Deno.UnsafePointer.of(length),
    pollFds: Deno.UnsafePointer.of(pollFds),
  };
  return pointers;
}

/** How many descriptors the process may have: every open one is below this. */
function descriptorLimit(c: Libc): number {
  if (c.getrlimit(RLIMIT_NOFILE, Deno.UnsafePointer.of(limits)) !== 0) return SCAN_MAX;
  return Number(limits[0]! < BigInt(SCAN_MAX) ? limits[0]! : BigInt(SCAN_MAX));
}

/**
 * Walks every open descriptor for the connection `local`>`remote` and returns its descriptor.
 * poll() with no events tells open descriptors from closed ones, 4,096 at a call, so only open
 * ones cost an FFI call each (getsockname; getpeername when the local address matches).
 */
function scan(c: Libc, local: string, remote: string): number | undefined {
  known.clear();
  const limit = descriptorLimit(c);
  const at = pointersOf();
  for (let base = 0; base < limit; base += POLL_CHUNK) {
    const count = Math.min(POLL_CHUNK, limit - base);
    for (let i = 0; i < count; i++) {
      pollFds.setInt32(i * 8, base + i, true);
      pollFds.setInt32(i * 8 + 4, 0, true); // events and revents: 0
    }
    if (c.poll(at.pollFds, BigInt(count), 0) < 0) return undefined;
    for (let i = 0; i < count; i++) {
      if ((pollFds.getInt16(i * 8 + 6, true) & POLLNVAL) !== 0) continue;
      const fd = base + i;
      const mine = localOf(c, fd);
      if (mine !== local) continue;
      const theirs = remoteOf(c, fd);
      if (theirs !== null) known.set(`${mine}>${theirs}`, fd);
    }
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

/**
 * The host sockets under the model. A connection socket is backed either by a `Deno.TcpConn`
 * (fast reads straight into the caller's buffer; no source-address bind, no RST) or by a
 * `node:net` Socket (binds a local address and port, sends a real RST; its reads go through
 * Node-style chunks, so they cost one copy). Both look the same to the model through
 * {@linkcode ConnectionBacking}. A listening socket is backed by `Deno.listen` (its accepted
 * sockets are deno-backed) or by a `node:net` Server (its accepted sockets are node-backed, so
 * they can be reset); both look the same through {@linkcode ListenerBacking}.
 *
 * Everything here throws host errors; the model turns them into statuses.
 *
 * @module
 */

import type { Server as NodeServer, Socket as NodeSocket } from "node:net";
import {
  AF_INET6,
  formatSockAddr,
  type SockAddr,
  sockAddr,
  sockAddrFromNetAddr,
} from "./address.ts";
import { canResetDenoConnections, resetConnection } from "./_rst.ts";
import { statusFromError } from "./_errors.ts";
import { SEC_E_UNSUPPORTED_FUNCTION, STATUS_INSUFFICIENT_RESOURCES } from "./status.ts";
import { startTlsDeno, startTlsNode, TlsFailure } from "./_tls.ts";
import type { TlsInfo, TlsOptions } from "./tls.ts";

/** Which host API backs a socket. */
export type BackingKind = "deno" | "node";

/** Which host API a socket asks for; `"auto"` lets {@linkcode chooseBacking} decide. */
export type BackingPreference = "auto" | BackingKind;

/**
 * The backing a socket gets: the one it asks for, or under `"auto"` node when the socket must
 * bind a specific address or port (`specific`) or may reset (`abortive`) without `--allow-ffi`,
 * else deno (faster reads). Connection and listening sockets both choose here.
 */
export function chooseBacking(
  preference: BackingPreference | undefined,
  needs: { readonly specific?: boolean; readonly abortive?: boolean },
): BackingKind {
  if (preference !== undefined && preference !== "auto") return preference;
  if (needs.specific === true) return "node";
  return needs.abortive === true && !canResetDenoConnections() ? "node" : "deno";
}

/** node:net, imported once, on first use: it costs startup time most commands never need. */
let nodeNet: Promise<typeof import("node:net")> | null = null;

function loadNodeNet(): Promise<typeof import("node:net")> {
  nodeNet ??= import("node:net");
  return nodeNet;
}

/**
 * Loads the host code a `kind` backing needs beyond what every process has: node:net for
 * node, and libc for resets where `--allow-ffi` is granted. Loaded once; never rejects.
 */
export async function loadBacking(kind: BackingKind): Promise<void> {
  canResetDenoConnections();
  if (kind === "node") await loadNodeNet();
}

/** The host connection under a model connection socket. */
export interface ConnectionBacking {
  /** Which host API this is. */
  readonly kind: BackingKind;
  /** The kernel's local address. */
  readonly localAddress: SockAddr;
  /** The kernel's remote address. */
  readonly remoteAddress: SockAddr;
  /** Reads into `into`; null at the peer's FIN. */
  read(into: Uint8Array): Promise<number | null>;
  /** Writes some of `from`; returns how much. */
  write(from: Uint8Array): Promise<number>;
  /** Sends FIN after everything written so far. */
  closeWrite(): Promise<void>;
  /**
   * Sends RST and releases the socket; false (and nothing done) when it cannot send a pure RST
   * here: a deno-backed socket can only with `--allow-ffi` (see `_rst.ts`).
   */
  reset(): boolean;
  /** Releases the socket (FIN unless already shut, as the kernel decides). */
  close(): void;
  /** TCP_NODELAY. */
  setNoDelay(on: boolean): void;
  /** SO_KEEPALIVE. */
  setKeepAlive(on: boolean): void;
  /**
   * Runs a TLS handshake on the connection; from then on reads and writes carry plaintext
   * through it. Throws TlsFailure or the host's error (the connection is then closed).
   */
  startTls(options: TlsOptions): Promise<TlsInfo>;
}

/** Where to connect, and optionally from which local address. */
export interface ConnectRequest {
  readonly remote: SockAddr;
  readonly local?: SockAddr;
  readonly signal: AbortSignal;
}

/** Connects with `Deno.connect` (no local bind possible). */
export async function connectDeno(request: ConnectRequest): Promise<ConnectionBacking> {
  const conn = await Deno.connect({
    hostname: request.remote.address,
    port: request.remote.port,
    signal: request.signal,
  });
  return new DenoBacking(conn);
}

/** Wraps an accepted or connected `Deno.TcpConn`. */
export function denoBacking(conn: Deno.TcpConn): ConnectionBacking {
  return new DenoBacking(conn);
}

class DenoBacking implements ConnectionBacking {
  readonly kind = "deno";
  readonly localAddress: SockAddr;
  readonly remoteAddress: SockAddr;
  #conn: Deno.TcpConn | Deno.TlsConn;
  #tcp: Deno.TcpConn;
  /** After a TLS handshake: what reads the TLS connection ahead of the model. */
  #tls: TlsReader | null = null;

  constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
    this.#tcp = conn;
    this.localAddress = sockAddrFromNetAddr(conn.localAddr);
    this.remoteAddress = sockAddrFromNetAddr(conn.remoteAddr);
  }

  read(into: Uint8Array): Promise<number | null> {
    return this.#tls === null ? this.#conn.read(into) : this.#tls.read(into);
  }

  write(from: Uint8Array): Promise<number> {
    return this.#conn.write(from);
  }

  closeWrite(): Promise<void> {
    return this.#conn.closeWrite();
  }

  reset(): boolean {
    // Through libc when --allow-ffi is granted; otherwise the caller closes (FIN).
    if (!resetConnection(this.localAddress, this.remoteAddress)) return false;
    this.close();
    return true;
  }

  close(): void {
    this.#tls?.close();
    try {
      this.#conn.close();
    } catch {
      // Already closed: nothing left to release.
    }
  }

  setNoDelay(on: boolean): void {
    // After a TLS upgrade the TCP resource belongs to the TLS connection: nothing to set.
    if (this.#conn === this.#tcp) this.#tcp.setNoDelay(on);
  }

  setKeepAlive(on: boolean): void {
    if (this.#conn === this.#tcp) this.#tcp.setKeepAlive(on);
  }

  async startTls(options: TlsOptions): Promise<TlsInfo> {
    if (options.role !== "client" || this.#conn !== this.#tcp) {
      throw new TlsFailure(
        SEC_E_UNSUPPORTED_FUNCTION,
        "The deno backing can only start TLS once, as a client; use backing node",
      );
    }
    try {
      const { conn, info } = await startTlsDeno(this.#tcp, options);
      this.#conn = conn;
      this.#tls = new TlsReader(conn);
      return info;
    } catch (error) {
      this.close();
      throw error;
    }
  }
}

/**
 * How much a {@linkcode TlsReader} asks for per read: one TLS record's plaintext at most, which
 * is what a read returns anyway. Measured (256 MiB from a python3 ssl source): reads of 16 KiB
 * into a new buffer each took 0.58 to 0.96 s; reads of 64 KiB, 1.35 to 1.38 s, and 64 KiB views
 * of a shared 4 MiB buffer 0.74 to 1.14 s. A buffer whose bytes were all taken is read into again
 * (no allocation per record): the bench's TLS receive went from 372–385 to 390–466 MB/s.
 */
const TLS_READ = 16 * 1024;
/** How much a {@linkcode TlsReader} holds before it stops reading (TCP then pushes back). */
const TLS_HIGH_WATER = 1 << 20;

/**
 * Moves queued bytes into `into`, from the first chunk on, as many as fit; a chunk taken in
 * part stays queued as its rest. Returns how many bytes were moved.
 */
function takeChunks(chunks: Uint8Array[], into: Uint8Array, spent?: Uint8Array[]): number {
  let n = 0;
  while (n < into.length && chunks.length > 0) {
    const head = chunks[0]!;
    const take = Math.min(head.length, into.length - n);
    into.set(take === head.length ? head : head.subarray(0, take), n);
    n += take;
    if (take === head.length) {
      chunks.shift();
      if (spent && head.byteOffset === 0 && head.buffer.byteLength === TLS_READ) {
        spent.push(new Uint8Array(head.buffer));
      }
    } else chunks[0] = head.subarray(take);
  }
  return n;
}

/** rustls's error for a TCP FIN that came without a TLS close_notify. */
function isEofWithoutCloseNotify(error: unknown): boolean {
  return error instanceof Deno.errors.UnexpectedEof ||
    (error instanceof Error && /without sending TLS close_notify/.test(error.message));
}

/**
 * Reads a `Deno.TlsConn` ahead of the model. A read of a TLS connection returns at most one
 * record's plaintext (16 KiB; 8 KiB from socat), so a bulk receive read directly made 16,000
 * to 32,000 calls per 256 MiB, each with its own WskReceive and write of the output. This reads
 * on while the model is busy, 16 KiB at a time, and a read of the model takes everything queued
 * that fits, in one copy. It stops at 1 MiB queued and reads on once the model has taken some.
 */
class TlsReader {
  readonly #conn: Deno.TlsConn;
  #chunks: Uint8Array[] = [];
  /** Buffers whose bytes were all taken, for the next reads (no allocation per record). */
  #spent: Uint8Array[] = [];
  #queued = 0;
  #reading = false;
  #ended = false;
  #closed = false;
  #error: unknown = null;
  #wake: (() => void) | null = null;

  constructor(conn: Deno.TlsConn) {
    this.#conn = conn;
  }

  /** Starts the reading loop unless it runs, or is done, or enough is queued. */
  #fill(): void {
    if (this.#reading || this.#ended || this.#closed || this.#error !== null) return;
    if (this.#queued >= TLS_HIGH_WATER) return;
    this.#reading = true;
    void this.#loop();
  }

  async #loop(): Promise<void> {
    try {
      while (this.#queued < TLS_HIGH_WATER && !this.#closed) {
        const buffer = this.#spent.pop() ?? new Uint8Array(TLS_READ);
        const n = await this.#conn.read(buffer);
        if (n === null) {
          this.#ended = true;
          break;
        }
        this.#chunks.push(n === buffer.length ? buffer : buffer.subarray(0, n));
        this.#queued += n;
        this.#notify();
      }
    } catch (error) {
      // The peer's FIN without a close_notify first is its FIN to the model, as node:tls
      // reports it and as a kernel client sees the TCP stream end; rustls calls it an error.
      if (isEofWithoutCloseNotify(error)) this.#ended = true;
      else this.#error = error;
    } finally {
      this.#reading = false;
      this.#notify();
    }
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  async read(into: Uint8Array): Promise<number | null> {
    this.#fill();
    while (this.#chunks.length === 0) {
      if (this.#closed) throw new Deno.errors.Interrupted("operation canceled");
      if (this.#error !== null) throw this.#error;
      if (this.#ended) return null;
      if (into.length === 0) return 0;
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
    const n = takeChunks(this.#chunks, into, this.#spent);
    this.#queued -= n;
    this.#fill();
    return n;
  }

  /** Wakes a waiting read, which then fails as a read of a closed connection does. */
  close(): void {
    this.#closed = true;
    this.#notify();
  }
}

/**
 * Throws Deno's NotCapable when this process may not use `address` on the network (as Deno's own
 * calls do), so the caller's status mapping sees the usual error.
 */
function requireNet(address: SockAddr): void {
  const host = address.family === AF_INET6
    ? `[${address.address}]:${address.port}`
    : `${address.address}:${address.port}`;
  if (Deno.permissions.querySync({ name: "net", host }).state !== "granted") {
    throw new Deno.errors.NotCapable(
      `Requires net access to "${host}", run again with the --allow-net flag`,
    );
  }
}

/** Connects with `node:net`, binding the local address first when one is given. */
export async function connectNode(request: ConnectRequest): Promise<ConnectionBacking> {
  const net = await loadNodeNet();
  request.signal.throwIfAborted();
  const { remote, local } = request;
  // node:net checks the net permission of both ends in a later tick and throws there, out of
  // reach of any handler (an uncaught error ends the process): check first, so a denied end is
  // a failed connect like Deno.connect's.
  for (const end of local ? [local, remote] : [remote]) requireNet(end);
  const socket = new net.Socket({ allowHalfOpen: true });
  return await new Promise<ConnectionBacking>((resolve, reject) => {
    function onAbort() {
      cleanup();
      socket.destroy();
      reject(request.signal.reason);
    }
    function onError(error: Error) {
      cleanup();
      socket.destroy();
      reject(error);
    }
    function onConnect() {
      cleanup();
      resolve(new NodeBacking(socket));
    }
    function cleanup() {
      request.signal.removeEventListener("abort", onAbort);
      socket.off("error", onError);
      socket.off("connect", onConnect);
    }
    request.signal.addEventListener("abort", onAbort, { once: true });
    socket.once("error", onError);
    socket.once("connect", onConnect);
    socket.connect({
      host: remote.address,
      port: remote.port,
      family: remote.family === AF_INET6 ? 6 : 4,
      ...(local ? { localAddress: local.address, localPort: local.port } : {}),
    });
  });
}

/** How much a node-backed socket buffers before it pauses the host socket. */
const NODE_HIGH_WATER = 1 << 20;

/** The host listener under a model listening socket. */
export interface ListenerBacking {
  /** Which host API this is; the sockets it accepts have the same backing. */
  readonly kind: BackingKind;
  /** The address it listens on, with the kernel's port. */
  readonly localAddress: SockAddr;
  /** The next connection; rejects once the listener is closed or failed. */
  accept(): Promise<ConnectionBacking>;
  /** Stops listening; connections accepted by the host and not yet taken are closed. */
  close(): void;
}

/** Where and how to listen. */
export interface ListenRequest {
  readonly local: SockAddr;
  /** The kernel's accept backlog; the host's default when absent. */
  readonly backlog?: number;
}

/** Listens with `Deno.listen` (throws host errors at once). */
export function listenDeno(request: ListenRequest): ListenerBacking {
  const listener = Deno.listen({
    hostname: request.local.address,
    port: request.local.port,
    ...(request.backlog === undefined ? {} : { tcpBacklog: request.backlog }),
  });
  return new DenoListener(listener);
}

class DenoListener implements ListenerBacking {
  readonly kind = "deno";
  readonly localAddress: SockAddr;
  #listener: Deno.TcpListener;

  constructor(listener: Deno.TcpListener) {
    this.#listener = listener;
    this.localAddress = sockAddrFromNetAddr(listener.addr);
  }

  async accept(): Promise<ConnectionBacking> {
    for (;;) {
      try {
        return new DenoBacking(await this.#listener.accept());
      } catch (error) {
        // A connection reset while it waited in the backlog fails its own accept (ENOTCONN
        // from getpeername, or ECONNABORTED): it is gone, and the listener goes on.
        if (!isGoneBeforeAccept(error)) throw error;
      }
    }
  }

  close(): void {
    try {
      this.#listener.close();
    } catch {
      // Already closed.
    }
  }
}

/**
 * Whether a host error is a resource shortage (EMFILE, ENFILE, ENOBUFS, ENOMEM: the one table
 * of `_errors.ts` maps them to STATUS_INSUFFICIENT_RESOURCES): the call may succeed later.
 */
function isResourceShortage(error: unknown): boolean {
  return statusFromError(error).status === STATUS_INSUFFICIENT_RESOURCES;
}

/** Whether an accept failed only because that one connection was reset in the backlog. */
function isGoneBeforeAccept(error: unknown): boolean {
  return error instanceof Deno.errors.NotConnected ||
    error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.ConnectionAborted;
}

/**
 * Connections a node-backed listener holds (accepted by the host, not yet taken by the model)
 * before it resets further ones: `node:net` accepts as fast as connections arrive and cannot be
 * told to leave them in the kernel's backlog, so this bound stands in for the backlog.
 */
const NODE_ACCEPT_QUEUE = 1024;

/**
 * Listens with `node:net` (`allowHalfOpen`, `pauseOnConnect`: no byte is read from an accepted
 * socket before the model reads). Rejects with `Deno.errors.NotCapable` when the process may not
 * listen there: node:net would otherwise throw that outside any promise.
 */
export async function listenNode(request: ListenRequest): Promise<ListenerBacking> {
  const { local } = request;
  const host = formatSockAddr(local);
  if (Deno.permissions.querySync({ name: "net", host }).state !== "granted") {
    throw new Deno.errors.NotCapable(`Requires net access to "${host}"`);
  }
  const net = await loadNodeNet();
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
  await new Promise<void>((resolve, reject) => {
    function onError(error: Error) {
      server.off("listening", onListening);
      reject(error);
    }
    function onListening() {
      server.off("error", onError);
      resolve();
    }
    server.once("error", onError);
    server.once("listening", onListening);
    server.listen({
      host: local.address,
      port: local.port,
      ...(request.backlog === undefined ? {} : { backlog: request.backlog }),
    });
  });
  return new NodeListener(server, request.backlog ?? 511);
}

/** How long a waiting accept on a node-backed listener waits before it checks for a stall. */
const NODE_STALL_CHECK_MS = 20;
/** The longest wait between stall checks when no descriptor probe is allowed. */
const NODE_STALL_CHECK_MAX_MS = 1000;

/** The part of Deno's node:net server handle (its TCPWrap) used to re-arm accepting. */
interface ListenHandle {
  listen?: (backlog: number) => number;
}

/** A `node:net` Server as a {@linkcode ListenerBacking}. */
class NodeListener implements ListenerBacking {
  readonly kind = "node";
  readonly localAddress: SockAddr;
  #server: NodeServer;
  #queue: NodeBacking[] = [];
  #waiters: { resolve: (b: ConnectionBacking) => void; reject: (e: unknown) => void }[] = [];
  #error: unknown = null;
  #closed = false;
  readonly #backlog: number;
  /** The probe's address (the listener's, port 0), or null when the process may not listen there. */
  readonly #probe: { hostname: string; port: 0 } | null;
  #checkTimer: ReturnType<typeof setTimeout> | undefined;
  #checkMs = NODE_STALL_CHECK_MS;

  constructor(server: NodeServer, backlog: number) {
    this.#server = server;
    this.#backlog = backlog;
    const address = server.address();
    if (address === null || typeof address === "string") {
      throw new TypeError("A node:net TCP server has no address");
    }
    this.localAddress = sockAddr(address.address, address.port);
    const probe = formatSockAddr({ ...this.localAddress, port: 0 });
    this.#probe = Deno.permissions.querySync({ name: "net", host: probe }).state === "granted"
      ? { hostname: address.address, port: 0 }
      : null;
    server.on("connection", (socket: NodeSocket) => {
      if (socket.remoteAddress === undefined || socket.remotePort === undefined) {
        // Reset before node could ask for its address: that connection is gone already.
        socket.on("error", () => {});
        socket.destroy();
        return;
      }
      // The backing attaches its error listener at once: a held socket may be reset meanwhile.
      const backing = new NodeBacking(socket);
      const waiter = this.#waiters.shift();
      if (waiter !== undefined) waiter.resolve(backing);
      else if (this.#closed || this.#queue.length >= NODE_ACCEPT_QUEUE) backing.reset();
      else this.#queue.push(backing);
    });
    server.on("error", (error: Error) => {
      // A resource shortage (node reports a failed accept this way) fails the waiting accepts
      // only: the listener itself is fine and accepts again once descriptors are free.
      if (!isResourceShortage(error)) this.#error ??= error;
      for (const waiter of this.#waiters.splice(0)) waiter.reject(error);
    });
  }

  accept(): Promise<ConnectionBacking> {
    const held = this.#queue.shift();
    if (held !== undefined) return Promise.resolve(held);
    if (this.#closed) {
      return Promise.reject(new Deno.errors.BadResource("Listener has been closed"));
    }
    if (this.#error !== null) return Promise.reject(this.#error);
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
      this.#watch();
    });
  }

  /**
   * Deno's node:net drops an accept that fails for lack of descriptors (EMFILE): no 'error' is
   * emitted and the listener is not polled again (libs/core/uv_compat/tcp.rs, poll_tcp_handle),
   * so it would stop accepting for good with connections waiting in the kernel's backlog. A
   * waiting accept therefore re-arms the host listener at once (listen again on its handle:
   * Deno then polls it anew, and node accepts what waits if a descriptor is free), and when no
   * connection came within 20 ms, checks: a probe socket (the listener's address, port 0) that
   * fails with EMFILE means the listener is stalled, and the waiting accepts fail with that
   * error, for the model to report and retry after its pause; a probe that succeeds means
   * descriptors are free, so the listener is re-armed once more and trusted from then on.
   * Without permission for the probe, the listener is re-armed every 20 ms, doubling to 1 s,
   * while an accept waits (it recovers, but no failure is reported).
   */
  #watch(): void {
    this.#rearm();
    if (this.#checkTimer !== undefined) return;
    this.#checkMs = NODE_STALL_CHECK_MS;
    this.#checkTimer = setTimeout(() => this.#check(), this.#checkMs);
  }

  #check(): void {
    this.#checkTimer = undefined;
    if (this.#closed || this.#waiters.length === 0) return;
    if (this.#probe !== null) {
      let exhausted: unknown = null;
      try {
        Deno.listen(this.#probe).close();
      } catch (error) {
        if (isResourceShortage(error)) exhausted = error;
      }
      if (exhausted !== null) {
        for (const waiter of this.#waiters.splice(0)) waiter.reject(exhausted);
        return;
      }
      this.#rearm();
      return;
    }
    this.#rearm();
    this.#checkMs = Math.min(this.#checkMs * 2, NODE_STALL_CHECK_MAX_MS);
    this.#checkTimer = setTimeout(() => this.#check(), this.#checkMs);
  }

  /** Has Deno poll the host listener again (a no-op on one that is not stalled). */
  #rearm(): void {
    const handle = (this.#server as unknown as { _handle?: ListenHandle | null })._handle;
    if (typeof handle?.listen === "function") handle.listen(this.#backlog);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#checkTimer);
    this.#checkTimer = undefined;
    this.#server.close();
    for (const backing of this.#queue.splice(0)) backing.close();
    const closed = new Deno.errors.BadResource("Listener has been closed");
    for (const waiter of this.#waiters.splice(0)) waiter.reject(closed);
  }
}

class NodeBacking implements ConnectionBacking {
  readonly kind = "node";
  readonly localAddress: SockAddr;
  readonly remoteAddress: SockAddr;
  /** What reads and writes go through: the TCP socket, or the TLS socket over it. */
  #socket: NodeSocket;
  /** The TCP socket (resets and socket options go to it). */
  #raw: NodeSocket;
  /** Whether TLS runs over the TCP socket (then reading is never paused: see #pause). */
  #tls = false;
  /** Paused by the high-water mark. */
  #held = false;
  #chunks: Uint8Array[] = [];
  #queued = 0;
  #ended = false;
  #error: unknown = null;
  #closed = false;
  #wake: (() => void) | null = null;
  readonly #handlers = {
    data: (chunk: Uint8Array) => {
      this.#chunks.push(chunk);
      this.#queued += chunk.length;
      if (this.#queued >= NODE_HIGH_WATER) this.#pause();
      this.#notify();
    },
    end: () => {
      this.#ended = true;
      this.#notify();
    },
    error: (error: Error) => {
      this.#error ??= error;
      this.#notify();
    },
  };

  constructor(socket: NodeSocket) {
    this.#socket = socket;
    this.#raw = socket;
    this.localAddress = sockAddr(socket.localAddress ?? "0.0.0.0", socket.localPort ?? 0);
    this.remoteAddress = sockAddr(socket.remoteAddress ?? "0.0.0.0", socket.remotePort ?? 0);
    this.#listen(socket, true);
  }

  /** Attaches (or detaches) the reading handlers; "close" counts as the end. */
  #listen(socket: NodeSocket, on: boolean): void {
    const h = this.#handlers;
    const method = on ? "on" : "off";
    socket[method]("data", h.data);
    socket[method]("end", h.end);
    socket[method]("error", h.error);
    socket[method]("close", h.end);
  }

  async startTls(options: TlsOptions): Promise<TlsInfo> {
    if (this.#socket !== this.#raw || this.#chunks.length > 0 || this.#ended) {
      throw new TlsFailure(
        SEC_E_UNSUPPORTED_FUNCTION,
        "TLS can start only once, on an open connection with no unread bytes",
      );
    }
    const raw = this.#raw;
    this.#listen(raw, false);
    raw.pause();
    // Errors of the TCP socket while TLS owns it are the TLS socket's to report.
    const swallow = () => {};
    raw.on("error", swallow);
    try {
      const { socket, info } = await startTlsNode(raw, options);
      this.#socket = socket as unknown as NodeSocket;
      this.#tls = true;
      this.#listen(this.#socket, true);
      return info;
    } catch (error) {
      this.#closed = true;
      raw.destroy();
      throw error;
    }
  }

  /** Whether reading is paused (by the model's high-water mark, or on connect). */
  #paused(): boolean {
    return this.#held || this.#socket.isPaused();
  }

  /**
   * Pauses reading at the high-water mark. Not on a TLS socket: Deno's node:tls never emits
   * 'end' for a TLS socket that was paused and resumed (measured: every 64 MiB receive from
   * `socat OPENSSL-LISTEN` then timed out waiting for the FIN), and pausing the TCP socket
   * under it stalls it for good; so a TLS socket buffers what a slow reader has not taken.
   */
  #pause(): void {
    if (this.#tls) return;
    this.#held = true;
    this.#socket.pause();
  }

  #resume(): void {
    this.#held = false;
    this.#socket.resume();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  async read(into: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#closed) throw new Deno.errors.Interrupted("operation canceled");
      if (this.#error !== null) throw this.#error;
      if (this.#ended) return null;
      if (into.length === 0) return 0;
      // Nothing is queued: a socket paused on connect (or by the high-water mark) reads again.
      if (this.#paused()) this.#resume();
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
    const n = takeChunks(this.#chunks, into);
    this.#queued -= n;
    if (this.#queued < NODE_HIGH_WATER / 2 && this.#paused()) this.#resume();
    return n;
  }

  write(from: Uint8Array): Promise<number> {
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("Bad resource ID"));
    // After a reset the stream is destroyed; report the reset, not the destroyed stream.
    if (this.#error !== null) return Promise.reject(this.#error);
    return new Promise((resolve, reject) => {
      this.#socket.write(from, (error) => {
        if (!error) resolve(from.length);
        else reject(this.#error ?? error);
      });
    });
  }

  closeWrite(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.#error !== null) {
        reject(this.#error);
        return;
      }
      this.#socket.end(() => resolve());
    });
  }

  reset(): boolean {
    this.#closed = true;
    this.#raw.resetAndDestroy();
    if (this.#socket !== this.#raw) this.#socket.destroy();
    this.#notify();
    return true;
  }

  close(): void {
    this.#closed = true;
    this.#socket.destroy();
    if (this.#socket !== this.#raw) this.#raw.destroy();
    this.#notify();
  }

  setNoDelay(on: boolean): void {
    this.#raw.setNoDelay(on);
  }

  setKeepAlive(on: boolean): void {
    this.#raw.setKeepAlive(on);
  }
}

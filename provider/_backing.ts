/**
 * The host sockets under the model. A connection socket is backed either by a `Deno.TcpConn`
 * (fast reads straight into the caller's buffer; no source-address bind, no RST) or by a
 * `node:net` Socket (binds a local address and port, sends a real RST; its reads go through
 * Node-style chunks, so they cost one copy). Both look the same to the model through
 * {@linkcode ConnectionBacking}.
 *
 * Everything here throws host errors; the model turns them into statuses.
 *
 * @module
 */

import type { Socket as NodeSocket } from "node:net";
import { AF_INET6, type SockAddr, sockAddr, sockAddrFromNetAddr } from "./address.ts";

/** Which host API backs a socket. */
export type BackingKind = "deno" | "node";

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
  /** Sends RST and releases the socket; false when this backing cannot send a pure RST. */
  reset(): boolean;
  /** Releases the socket (FIN unless already shut, as the kernel decides). */
  close(): void;
  /** TCP_NODELAY. */
  setNoDelay(on: boolean): void;
  /** SO_KEEPALIVE. */
  setKeepAlive(on: boolean): void;
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
  #conn: Deno.TcpConn;

  constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
    this.localAddress = sockAddrFromNetAddr(conn.localAddr);
    this.remoteAddress = sockAddrFromNetAddr(conn.remoteAddr);
  }

  read(into: Uint8Array): Promise<number | null> {
    return this.#conn.read(into);
  }

  write(from: Uint8Array): Promise<number> {
    return this.#conn.write(from);
  }

  closeWrite(): Promise<void> {
    return this.#conn.closeWrite();
  }

  reset(): boolean {
    return false;
  }

  close(): void {
    try {
      this.#conn.close();
    } catch {
      // Already closed: nothing left to release.
    }
  }

  setNoDelay(on: boolean): void {
    this.#conn.setNoDelay(on);
  }

  setKeepAlive(on: boolean): void {
    this.#conn.setKeepAlive(on);
  }
}

/** Connects with `node:net`, binding the local address first when one is given. */
export async function connectNode(request: ConnectRequest): Promise<ConnectionBacking> {
  // Loaded on demand: node:net costs startup time that most calls never need.
  const net = await import("node:net");
  request.signal.throwIfAborted();
  const { remote, local } = request;
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

class NodeBacking implements ConnectionBacking {
  readonly kind = "node";
  readonly localAddress: SockAddr;
  readonly remoteAddress: SockAddr;
  #socket: NodeSocket;
  #chunks: Uint8Array[] = [];
  #queued = 0;
  #ended = false;
  #error: unknown = null;
  #closed = false;
  #wake: (() => void) | null = null;

  constructor(socket: NodeSocket) {
    this.#socket = socket;
    this.localAddress = sockAddr(socket.localAddress ?? "0.0.0.0", socket.localPort ?? 0);
    this.remoteAddress = sockAddr(socket.remoteAddress ?? "0.0.0.0", socket.remotePort ?? 0);
    socket.on("data", (chunk: Uint8Array) => {
      this.#chunks.push(chunk);
      this.#queued += chunk.length;
      if (this.#queued >= NODE_HIGH_WATER) socket.pause();
      this.#notify();
    });
    socket.on("end", () => {
      this.#ended = true;
      this.#notify();
    });
    socket.on("error", (error: Error) => {
      this.#error ??= error;
      this.#notify();
    });
    socket.on("close", () => {
      this.#ended = true;
      this.#notify();
    });
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
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
    let n = 0;
    while (n < into.length && this.#chunks.length > 0) {
      const head = this.#chunks[0]!;
      const take = Math.min(head.length, into.length - n);
      into.set(take === head.length ? head : head.subarray(0, take), n);
      n += take;
      if (take === head.length) this.#chunks.shift();
      else this.#chunks[0] = head.subarray(take);
    }
    this.#queued -= n;
    if (this.#queued < NODE_HIGH_WATER / 2 && this.#socket.isPaused()) this.#socket.resume();
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
    this.#socket.resetAndDestroy();
    this.#notify();
    return true;
  }

  close(): void {
    this.#closed = true;
    this.#socket.destroy();
    this.#notify();
  }

  setNoDelay(on: boolean): void {
    this.#socket.setNoDelay(on);
  }

  setKeepAlive(on: boolean): void {
    this.#socket.setKeepAlive(on);
  }
}

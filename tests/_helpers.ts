/**
 * Shared test helpers: loopback peers and sockets in known states. Every helper closes what it
 * opens through the returned disposables, so tests can use `await using`.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  AF_INET,
  AF_INET6,
  type AddressFamily,
  formatNtStatus,
  IPPROTO_TCP,
  ntStatusName,
  SOCK_STREAM,
  sockAddr,
  WSK_FLAG_CONNECTION_SOCKET,
  WskCaptureProviderNPI,
  type WskClientConnectionDispatch,
  type WskCompletion,
  type WskConnectionSocket,
  type WskSocketOptions,
  wildcard,
} from "../provider/mod.ts";

export const npi = WskCaptureProviderNPI();

/** Asserts a completion's status by name, showing both names on failure. */
export function assertStatus(completion: WskCompletion, expected: number, note = ""): void {
  assert.equal(
    ntStatusName(completion.status),
    ntStatusName(expected),
    `${note} expected ${ntStatusName(expected)} (${formatNtStatus(expected)}), got ` +
      `${ntStatusName(completion.status)}: ${completion.message ?? ""}`,
  );
}

/** The loopback host of a family. */
export function loopbackHost(family: AddressFamily): string {
  return family === AF_INET6 ? "::1" : "127.0.0.1";
}

/** A Deno listener on loopback port 0, closed on dispose. */
export function listenLoopback(family: AddressFamily = AF_INET): Deno.TcpListener & {
  port: number;
} {
  const listener = Deno.listen({ hostname: loopbackHost(family), port: 0 });
  return Object.assign(listener, { port: listener.addr.port });
}

/** A port on loopback that nothing listens on (bound, noted, released). */
export function closedPort(family: AddressFamily = AF_INET): number {
  const listener = Deno.listen({ hostname: loopbackHost(family), port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/** A fresh unbound connection socket. */
export async function newSocket(
  family: AddressFamily = AF_INET,
  options: WskSocketOptions = {},
  dispatch: WskClientConnectionDispatch | null = null,
  context: unknown = undefined,
): Promise<WskConnectionSocket> {
  const made = await npi.Dispatch.WskSocket(
    npi.Client,
    family,
    SOCK_STREAM,
    IPPROTO_TCP,
    WSK_FLAG_CONNECTION_SOCKET,
    context,
    dispatch,
    options,
  );
  assert.ok(made.socket, `WskSocket failed: ${made.message}`);
  return made.socket;
}

/** A connected WSK socket and the Deno peer it is connected to. */
export interface ConnectedPair extends AsyncDisposable {
  readonly socket: WskConnectionSocket;
  readonly peer: Deno.TcpConn;
  readonly listener: Deno.TcpListener;
}

/** Connects a new WSK socket (wildcard bind) to a Deno listener on loopback. */
export async function connectedPair(
  family: AddressFamily = AF_INET,
  options: WskSocketOptions = {},
  dispatch: WskClientConnectionDispatch | null = null,
  context: unknown = undefined,
): Promise<ConnectedPair> {
  const listener = listenLoopback(family);
  const socket = await newSocket(family, options, dispatch, context);
  const d = socket.Dispatch;
  // A wildcard bind lets either backing serve the socket.
  assertStatus(await d.WskBind(socket, wildcard(family)), 0);
  const connecting = d.WskConnect(socket, sockAddr(loopbackHost(family), listener.port), 0, {
    timeout: 5000,
  });
  const peer = await listener.accept();
  assertStatus(await connecting, 0, "connect");
  return {
    socket,
    peer,
    listener,
    async [Symbol.asyncDispose]() {
      if (socket.state !== "CLOSED") await d.WskCloseSocket(socket);
      try {
        peer.close();
      } catch {
        // The test closed it already.
      }
      try {
        listener.close();
      } catch {
        // As above.
      }
    },
  };
}

/** Reads from a Deno conn until EOF (or a reset, which is reported). */
export async function readAll(
  conn: Deno.Conn,
): Promise<{ bytes: Uint8Array; error: unknown }> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const buf = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
      total += n;
    }
  } catch (error) {
    return { bytes: concat(chunks, total), error };
  }
  return { bytes: concat(chunks, total), error: null };
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/** UTF-8 helpers. */
export const text = {
  encode: (s: string): Uint8Array => new TextEncoder().encode(s),
  decode: (b: Uint8Array): string => new TextDecoder().decode(b),
};

export { AF_INET, AF_INET6 };

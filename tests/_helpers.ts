/**
 * Shared test helpers: loopback peers and sockets in known states. Every helper closes what it
 * opens through the returned disposables, so tests can use `await using`.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  type AddressFamily,
  AF_INET,
  AF_INET6,
  formatNtStatus,
  IPPROTO_TCP,
  NPI_WSK_INTERFACE_ID,
  ntStatusName,
  SO_WSK_EVENT_CALLBACK,
  SOCK_STREAM,
  sockAddr,
  SOL_SOCKET,
  wildcard,
  WSK_FLAG_CONNECTION_SOCKET,
  wskBuf,
  WskCaptureProviderNPI,
  type WskClient,
  type WskClientConnectionDispatch,
  type WskClientDispatch,
  type WskCompletion,
  type WskConnectionSocket,
  type WskCreateOptions,
  type WskIrp,
  type WskListenSocket,
  type WskProviderNpi,
  WskSetOption,
  type WskSocketCompletion,
  type WskSocketOptions,
} from "../provider/mod.ts";

import { type ProcessResult, runProcess, sleep, text, within } from "./_child.ts";

export { sleep, text, within };

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

/** The arguments of one WskSocket call; each one left out takes its default in wskSocket(). */
export interface WskSocketArgs {
  readonly client?: WskClient;
  readonly family?: AddressFamily;
  readonly type?: number;
  readonly protocol?: number;
  readonly flags?: number;
  readonly context?: unknown;
  readonly dispatch?: WskClientDispatch | null;
  readonly options?: WskCreateOptions;
}

/**
 * Calls WskSocket on `from` with AF_INET, SOCK_STREAM, IPPROTO_TCP and
 * WSK_FLAG_CONNECTION_SOCKET unless `args` names another value. A key given as `undefined` passes
 * `undefined` (tests of bad arguments rely on that), and any value may be a deliberately wrong one.
 */
export function wskSocket(
  args: WskSocketArgs = {},
  from: WskProviderNpi = npi,
): Promise<WskSocketCompletion> {
  const a = {
    client: from.Client,
    family: AF_INET,
    type: SOCK_STREAM,
    protocol: IPPROTO_TCP,
    flags: WSK_FLAG_CONNECTION_SOCKET,
    ...args,
  };
  return from.Dispatch.WskSocket(
    a.client,
    a.family,
    a.type,
    a.protocol,
    a.flags,
    a.context,
    a.dispatch,
    a.options,
  );
}

/** A fresh unbound connection socket. */
export async function newSocket(
  family: AddressFamily = AF_INET,
  options: WskSocketOptions = {},
  dispatch: WskClientConnectionDispatch | null = null,
  context: unknown = undefined,
): Promise<WskConnectionSocket> {
  const made = await wskSocket({ family, context, dispatch, options });
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
  const buf = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
  } catch (error) {
    return { bytes: concatBytes(chunks), error };
  }
  return { bytes: concatBytes(chunks), error: null };
}

/** The parts, joined into one new array. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Lower-case hex of bytes (a string counts as its UTF-8), as python reports received bytes. */
export function hex(data: string | Uint8Array): string {
  const bytes = typeof data === "string" ? text.encode(data) : data;
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Lower-case hex of the SHA-256 digest of `bytes`, as python's hashlib prints it. */
export async function sha256(bytes: Uint8Array): Promise<string> {
  return hex(
    new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>)),
  );
}

export { AF_INET, AF_INET6 };

/** What a spawned CLI run produced. */
export type CliResult = ProcessResult;

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** The permissions `deno task wsk` gives the CLI (the session client needs env, uid and run). */
export const CLI_PERMISSIONS: readonly string[] = [
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env=WSK_SESSION_DIR,XDG_RUNTIME_DIR,WSK_SESSION_IDLE",
  "--allow-sys=uid",
  "--allow-run",
];

/** The opt-in permission that lets a deno-backed socket send a real RST (provider/_rst.ts). */
export const FFI = "--allow-ffi";

/** The environment every spawned CLI gets on top of the test's. */
export const CLI_ENV: Readonly<Record<string, string>> = {
  NO_COLOR: "1",
  DENO_NO_UPDATE_CHECK: "1",
};

/** The argv that runs the CLI the way `deno task wsk` does, plus `extra` permissions. */
export function cliCommand(args: string[], extra: readonly string[] = []): string[] {
  return ["run", ...CLI_PERMISSIONS, ...extra, MAIN, ...args];
}

/**
 * Spawns the CLI (`deno run main.ts …`) with NO_COLOR=1 and returns its exit code and output.
 * `stdin` is written and closed; `timeoutMs` kills a run that hangs (the test then fails on
 * the exit code, 143 or similar).
 */
export function runCli(
  args: string[],
  options: {
    stdin?: Uint8Array | string;
    timeoutMs?: number;
    env?: Record<string, string>;
    /** The working directory of the run (relative paths in `args` resolve against it). */
    cwd?: string;
    /** Extra permissions, e.g. {@linkcode FFI}. */
    permissions?: readonly string[];
    /** A launcher and its arguments, with the deno command line following them. */
    via?: readonly string[];
  } = {},
): Promise<CliResult> {
  const { permissions, env, ...rest } = options;
  return runProcess(Deno.execPath(), cliCommand(args, permissions), {
    ...rest,
    env: { ...CLI_ENV, ...env },
  });
}

/** Parses the `key=value` fields of a human status line (quoted values unescaped). */
export function parseLine(line: string): Record<string, string> {
  const fields: Record<string, string> = {};
  const [call, status, hex] = line.split(" ", 3);
  fields.call = call ?? "";
  fields.status = status ?? "";
  fields.ntstatus = hex ?? "";
  const re = /(\w+)=("(?:[^"\\]|\\.)*"|\S+)/g;
  for (const match of line.matchAll(re)) {
    const value = match[2]!;
    fields[match[1]!] = value.startsWith('"') ? JSON.parse(value) : value;
  }
  return fields;
}

// ---------------------------------------------------------------------------------------------
// Bounded waits

/** Polls `condition` every 5 ms for at most `ms`; fails the test with `what` on the deadline. */
export async function waitFor(condition: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await sleep(5);
  }
}

/**
 * Reads exactly `length` bytes from a Deno conn; fails on EOF first or after `ms`. `pauseMs`
 * sleeps between reads (a slow reader).
 */
export async function readExactly(
  conn: Deno.Conn,
  length: number,
  ms = 10_000,
  pauseMs = 0,
): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let filled = 0;
  const deadline = Date.now() + ms;
  while (filled < length) {
    const left = deadline - Date.now();
    assert.ok(left > 0, `readExactly: only ${filled} of ${length} bytes within ${ms} ms`);
    const n = await within(
      conn.read(out.subarray(filled, Math.min(length, filled + 65536))),
      left,
      "peer read",
    );
    assert.notEqual(n, null, `readExactly: EOF after ${filled} of ${length} bytes`);
    filled += n!;
    if (pauseMs > 0) await sleep(pauseMs);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// WSK calls

/** A ULONG option value: 4 bytes, little-endian. */
export function ulong(value: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value, true);
  return bytes;
}

/** Reads a little-endian ULONG from the start of `bytes`. */
export function readUlong(bytes: Uint8Array): number {
  return new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
}

/** Sets SO_WSK_EVENT_CALLBACK with `mask` on a connection or listening socket. */
export function enableEvents(
  socket: WskConnectionSocket | WskListenSocket,
  mask: number,
  irp?: WskIrp,
): Promise<WskCompletion> {
  return socket.Dispatch.WskControlSocket(
    socket as never,
    WskSetOption,
    SO_WSK_EVENT_CALLBACK,
    SOL_SOCKET,
    { NpiId: NPI_WSK_INTERFACE_ID, EventMask: mask },
    null,
    irp,
  );
}

/**
 * Starts `call` with an IRP (5 s timeout) whose signal aborts after `ms`; the call's completion.
 */
export async function cancelAfter<T>(ms: number, call: (irp: WskIrp) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const pending = call({ signal: controller.signal, timeout: 5000 });
  await sleep(ms);
  controller.abort();
  return await pending;
}

/** One WskReceive into a fresh buffer of `length` bytes; the completion and a copy of the bytes. */
export async function receive(
  socket: WskConnectionSocket,
  length: number,
  flags = 0,
  timeout = 5000,
): Promise<{ completion: WskCompletion; bytes: Uint8Array }> {
  const buffer = new Uint8Array(length);
  const completion = await socket.Dispatch.WskReceive(socket, wskBuf(buffer), flags, { timeout });
  return { completion, bytes: buffer.slice(0, completion.information) };
}

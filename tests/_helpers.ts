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
  ntStatusName,
  SOCK_STREAM,
  sockAddr,
  wildcard,
  WSK_FLAG_CONNECTION_SOCKET,
  WskCaptureProviderNPI,
  type WskClientConnectionDispatch,
  type WskCompletion,
  type WskConnectionSocket,
  type WskSocketOptions,
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

/** What a spawned CLI run produced. */
export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly stdoutBytes: Uint8Array;
}

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** The argv that runs the CLI the way `deno task wsk` does. */
export function cliCommand(args: string[]): string[] {
  return ["run", "--allow-net", "--allow-read", "--allow-write", MAIN, ...args];
}

/**
 * Spawns the CLI (`deno run main.ts …`) with NO_COLOR=1 and returns its exit code and output.
 * `stdin` is written and closed; `timeoutMs` kills a run that hangs (the test then fails on
 * the exit code, 143 or similar).
 */
export async function runCli(
  args: string[],
  options: { stdin?: Uint8Array | string; timeoutMs?: number; env?: Record<string, string> } = {},
): Promise<CliResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args: cliCommand(args),
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1", ...options.env },
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }, options.timeoutMs ?? 30_000);
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    const bytes = typeof options.stdin === "string" ? text.encode(options.stdin) : options.stdin;
    try {
      await writer.write(bytes);
      await writer.close();
    } catch {
      // The CLI may exit before reading all of its input (usage errors).
    }
  }
  const out = await child.output();
  clearTimeout(timer);
  return {
    code: out.code,
    stdout: text.decode(out.stdout),
    stderr: text.decode(out.stderr),
    stdoutBytes: out.stdout,
  };
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

/**
 * Helpers shared by the CLI tests in this folder: bounded waits, a background stream reader,
 * python3 peers that listen on loopback port 0 and report what they saw, and assertions on the
 * CLI's human status lines and JSON Lines.
 *
 * @module
 */

import assert from "node:assert/strict";
import { cliCommand, parseLine, runCli, text, within } from "../_helpers.ts";

export { within };

// ---------------------------------------------------------------------------------------------
// Waiting and reading

/** Reads a stream to its end in the background; lines can be awaited with a bound. */
export class Collector {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #chunks: Uint8Array[] = [];
  #length = 0;
  #finished = false;
  #waiters = new Set<() => void>();
  readonly done: Promise<void>;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
    this.done = this.#pump();
  }

  async #pump(): Promise<void> {
    try {
      for (;;) {
        const { value, done } = await this.#reader.read();
        if (done) break;
        this.#chunks.push(value);
        this.#length += value.length;
        for (const wake of [...this.#waiters]) wake();
      }
    } catch {
      // Cancelled.
    } finally {
      this.#finished = true;
      for (const wake of [...this.#waiters]) wake();
    }
  }

  bytes(): Uint8Array {
    const out = new Uint8Array(this.#length);
    let offset = 0;
    for (const chunk of this.#chunks) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
    return out;
  }

  text(): string {
    return text.decode(this.bytes());
  }

  /** Complete lines so far. */
  lines(): string[] {
    const all = this.text().split("\n");
    all.pop();
    return all;
  }

  /** Resolves with the first defined result of `find`, checked whenever data arrives. */
  waitFor<T>(find: () => T | undefined, ms: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const finish = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      const check = () => {
        let found: T | undefined;
        try {
          found = find();
        } catch (error) {
          finish();
          reject(error);
          return;
        }
        if (found !== undefined) {
          finish();
          resolve(found);
        } else if (this.#finished) {
          finish();
          reject(new Error(`${what}: the stream ended first; got ${JSON.stringify(this.text())}`));
        }
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`${what}: not within ${ms} ms; got ${JSON.stringify(this.text())}`));
      }, ms);
      this.#waiters.add(check);
      check();
    });
  }

  async cancel(): Promise<void> {
    if (!this.#finished) await this.#reader.cancel().catch(() => {});
    await this.done;
  }
}

// ---------------------------------------------------------------------------------------------
// python3 peers

/**
 * The CLI as a long-running child (with `permissions` beyond the `wsk` task's, e.g. FFI); its
 * output is collected as it comes, and `await using` kills it if it is still running.
 */
export class CliChild implements AsyncDisposable {
  readonly stdout: Collector;
  readonly stderr: Collector;
  readonly #child: Deno.ChildProcess;
  #exited = false;

  /**
   * `permissions`: added to the `wsk` task's. `via`: a launcher and its arguments, with the
   * deno command line following them (e.g. `sh -c 'ulimit -n 64 && exec "$0" "$@"'`).
   */
  constructor(
    args: string[],
    permissions: readonly string[] = [],
    via: readonly string[] = [],
  ) {
    const [program, ...rest] = [...via, Deno.execPath(), ...cliCommand(args, permissions)];
    this.#child = new Deno.Command(program!, {
      args: rest,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    }).spawn();
    this.#child.status.then(() => this.#exited = true);
    this.stdout = new Collector(this.#child.stdout);
    this.stderr = new Collector(this.#child.stderr);
  }

  /** The `local=` of the WskBind line on `stream` (human lines). */
  bindLocal(stream: "stdout" | "stderr"): Promise<string> {
    const collector = this[stream];
    return collector.waitFor(
      () => collector.lines().map(parseLine).find((line) => line.call === "WskBind")?.local,
      15_000,
      `the WskBind line on ${stream} (stderr: ${this.stderr.text()})`,
    );
  }

  /** The parsed human line of `call` on `socket`, once it was printed on stdout. */
  lineOf(call: string, socket: string): Promise<Record<string, string>> {
    return this.stdout.waitFor(
      () =>
        this.stdout.lines().map(parseLine).find((line) =>
          line.call === call && line.socket === socket
        ),
      15_000,
      `the ${call} line of socket ${socket}`,
    );
  }

  /** Sends `signal` to the child. */
  kill(signal: Deno.Signal): void {
    this.#child.kill(signal);
  }

  /** The exit code, once the child exited by itself within `ms`. */
  async exitCode(ms = 15_000): Promise<number> {
    const status = await within(this.#child.status, ms, "the CLI child's exit");
    await this.stdout.done;
    await this.stderr.done;
    return status.code;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.#exited) {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // Exited meanwhile.
      }
    }
    await this.#child.status;
    await this.stdout.cancel();
    await this.stderr.cancel();
  }
}

/**
 * A python3 program that listens on `host` port 0, prints that port first (a bare number or
 * `{"port": N}`) and then one JSON report per line. With `holdStdin` its stdin stays open until
 * dispose, which closes it and gives python 5 s to exit; otherwise dispose kills it at once.
 */
export class PythonListener<Report> implements AsyncDisposable {
  readonly host: string;
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array> | null;
  readonly #out: Collector;
  readonly #err: Collector;
  #port = 0;

  private constructor(script: string, host: string, args: readonly string[], holdStdin: boolean) {
    this.host = host;
    this.#child = new Deno.Command("python3", {
      args: ["-u", "-c", script, ...args],
      stdin: holdStdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#stdin = holdStdin ? this.#child.stdin.getWriter() : null;
    this.#out = new Collector(this.#child.stdout);
    this.#err = new Collector(this.#child.stderr);
  }

  /** Starts `script` with `args` and waits for the port it bound on `host`. */
  static async start<Report>(
    script: string,
    host: string,
    args: readonly string[],
    { holdStdin = false }: { holdStdin?: boolean } = {},
  ): Promise<PythonListener<Report>> {
    const python = new PythonListener<Report>(script, host, args, holdStdin);
    try {
      const first: unknown = JSON.parse(await python.#line(0, 10_000, "port"));
      const port = typeof first === "number" ? first : (first as { port?: unknown }).port;
      assert.equal(typeof port, "number", `no port in python's first line: ${first}`);
      python.#port = port as number;
    } catch (error) {
      await python[Symbol.asyncDispose]();
      throw error;
    }
    return python;
  }

  /** The port python listens on. */
  get port(): number {
    return this.#port;
  }

  /** The listening address as the CLI prints it: `127.0.0.1:N` or `[::1]:N`. */
  get address(): string {
    return this.host.includes(":") ? `[${this.host}]:${this.#port}` : `${this.host}:${this.#port}`;
  }

  /** The report of the connection (waits for python to print it). */
  async report(ms = 15_000): Promise<Report> {
    return JSON.parse(await this.#line(1, ms, "report")) as Report;
  }

  async #line(index: number, ms: number, what: string): Promise<string> {
    try {
      return await this.#out.waitFor(() => this.#out.lines()[index], ms, `python peer ${what}`);
    } catch (error) {
      throw new Error(`${error}; python stderr: ${this.#err.text()}`, { cause: error });
    }
  }

  #kill(): void {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // It exited already.
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#stdin) {
      await this.#stdin.close().catch(() => {});
      await within(this.#child.status, 5000, "python peer exit").catch(() => this.#kill());
    } else {
      this.#kill();
    }
    await this.#child.status;
    await this.#out.cancel();
    await this.#err.cancel();
  }
}

/**
 * The python3 peer of the connection commands. argv: MODE FAMILY HOST. Modes:
 *   drain       read until EOF (or a reset), then close gracefully
 *   reset       reset the connection (SO_LINGER 0 close) right after accept
 *   resetafter  read until EOF, then reset instead of sending a FIN
 *   hold        read until EOF, report, then keep the connection open until stdin closes
 *   echo        echo everything until EOF, then half-close and close
 * The first stdout line is {"port": N}; the second is the report of the one connection.
 */
const PEER_SCRIPT = `
import json, socket, struct, sys
mode, family_name, host = sys.argv[1], sys.argv[2], sys.argv[3]
family = socket.AF_INET6 if family_name == "6" else socket.AF_INET
srv = socket.socket(family, socket.SOCK_STREAM)
srv.bind((host, 0))
srv.listen(1)
srv.settimeout(20)
print(json.dumps({"port": srv.getsockname()[1]}), flush=True)
conn, addr = srv.accept()
srv.close()
conn.settimeout(20)
out = {"peer": [addr[0], addr[1]]}

def recv_until_end(echo):
    data = b""
    try:
        while chunk := conn.recv(65536):
            if echo:
                conn.sendall(chunk)
            data += chunk
    except ConnectionResetError:
        return data, "reset"
    except socket.timeout:
        return data, "timeout"
    return data, "eof"

def rst():
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()

if mode == "reset":
    rst()
    out["end"] = "sent-reset"
else:
    data, end = recv_until_end(mode == "echo")
    out["data"] = data.hex()
    out["end"] = end
    if mode == "hold":
        print(json.dumps(out), flush=True)
        sys.stdin.read()
        conn.close()
        sys.exit(0)
    if mode == "resetafter":
        rst()
    else:
        if end == "eof":
            conn.shutdown(socket.SHUT_WR)
        conn.close()
print(json.dumps(out), flush=True)
`;

export type PeerMode = "drain" | "reset" | "resetafter" | "hold" | "echo";

/** What the python peer saw of its one connection. */
export interface PeerReport {
  /** The client's address as accept() returned it. */
  readonly peer: [string, number];
  /** The bytes received, in hex. */
  readonly data?: string;
  /** How the stream ended: a FIN, a reset, python's own timeout, or the reset it sent. */
  readonly end: "eof" | "reset" | "timeout" | "sent-reset";
}

/** A python3 peer of the connection commands. */
export type Peer = PythonListener<PeerReport>;

/** Starts a peer in `mode` on 127.0.0.1 (or ::1) and waits for the port it bound. */
export function startPeer(mode: PeerMode, family: 4 | 6 = 4): Promise<Peer> {
  const host = family === 6 ? "::1" : "127.0.0.1";
  return PythonListener.start<PeerReport>(PEER_SCRIPT, host, [mode, String(family), host], {
    holdStdin: true,
  });
}

/** What a run of the CLI against a peer gave: the result, the report, both endpoints. */
export interface PeerRun {
  readonly result: Awaited<ReturnType<typeof runCli>>;
  readonly seen: PeerReport;
  /** The CLI's address as the peer saw it. */
  readonly local: string;
  /** The peer's listening address. */
  readonly remote: string;
}

/** Runs `wsk COMMAND PEER-ADDRESS ...flags`, then waits for the peer's report of the connection. */
export async function runAgainst(
  peer: Peer,
  command: string,
  ...flags: string[]
): Promise<PeerRun> {
  const result = await runCli([command, peer.address, ...flags]);
  const seen = await peer.report();
  return { result, seen, local: endpoint(seen.peer), remote: peer.address };
}

/** Formats a python address pair the way the CLI prints addresses. */
export function endpoint([host, port]: [string, number]): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The port of an `IP:PORT` or `[IPV6]:PORT` endpoint. */
export function portOf(address: string): number {
  const match = /:(\d+)$/.exec(address);
  assert.ok(match, `no port in ${address}`);
  return Number(match[1]);
}

/** Lower-case hex of bytes (a string counts as its UTF-8), as python reports received bytes. */
export function hex(data: string | Uint8Array): string {
  const bytes = typeof data === "string" ? text.encode(data) : data;
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** `size` random bytes. */
export function randomBytes(size: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(size);
  for (let offset = 0; offset < size; offset += 65536) {
    crypto.getRandomValues(out.subarray(offset, offset + 65536));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Status lines, loosely: every line parses, with checks by call name and status

/** Every WSK dispatch function, in the order of the dispatch tables. */
export const DISPATCH_CALLS: readonly string[] = [
  "WskSocket",
  "WskSocketConnect",
  "WskBind",
  "WskConnect",
  "WskConnectEx",
  "WskGetLocalAddress",
  "WskGetRemoteAddress",
  "WskControlSocket",
  "WskSend",
  "WskReceive",
  "WskSendEx",
  "WskReceiveEx",
  "WskRelease",
  "WskDisconnect",
  "WskAccept",
  "WskCloseSocket",
];

/** An NTSTATUS as the CLI prints it. */
export const HEX_STATUS = /^0x[0-9A-F]{8}$/;

/** Any elapsed time the reporter prints. */
export const TIME = /^\d+(\.\d+)?ms$/;

/** Any non-empty message. */
export const SOME = /\S/;

/** Every line of `output` as a parsed status line; fails on anything that is not one. */
export function statusLines(output: string): Record<string, string>[] {
  const lines = output.split("\n");
  assert.equal(lines.pop(), "", `output must end with a newline: ${JSON.stringify(output)}`);
  return lines.map((line) => {
    const fields = parseLine(line);
    assert.match(fields.call!, /^Wsk[A-Za-z]+$/, `not a status line: ${line}`);
    assert.match(fields.status!, /^STATUS_[A-Z_]+$/, `not a status line: ${line}`);
    assert.match(fields.ntstatus!, HEX_STATUS, `not a status line: ${line}`);
    assert.match(fields.time ?? "", TIME, `no time in: ${line}`);
    return fields;
  });
}

/** The call names of parsed lines. */
export function callsOf(lines: Record<string, string>[]): string[] {
  return lines.map((line) => line.call!);
}

/** Asserts every line completed with STATUS_SUCCESS. */
export function assertAllSucceeded(lines: Record<string, string>[]): void {
  for (const line of lines) {
    assert.equal(line.status, "STATUS_SUCCESS", `${line.call}: ${JSON.stringify(line)}`);
    assert.equal(line.ntstatus, "0x00000000");
  }
}

// ---------------------------------------------------------------------------------------------
// Status lines, exactly. A human line is parsed with parseLine and compared field by field:
// the set of fields must be exactly the expected one, values equal or matching a RegExp
// placeholder. JSON Lines are compared whole, with elapsed_ms checked and dropped.

export type Expected = Readonly<Record<string, string | RegExp>>;

/** The human lines of stdout, parsed. */
export function humanLines(stdout: string): Record<string, string>[] {
  assert.ok(stdout.endsWith("\n"), `stdout does not end with a newline: ${JSON.stringify(stdout)}`);
  return stdout.slice(0, -1).split("\n").map(parseLine);
}

/** Asserts a parsed line has exactly the expected fields. */
export function assertFields(
  actual: Record<string, string>,
  expected: Expected,
  where: string,
): void {
  assert.deepEqual(
    Object.keys(actual).sort(),
    Object.keys(expected).sort(),
    `${where}: fields of ${JSON.stringify(actual)}`,
  );
  for (const [key, want] of Object.entries(expected)) {
    const got = actual[key]!;
    if (want instanceof RegExp) assert.match(got, want, `${where}: ${key}`);
    else assert.equal(got, want, `${where}: ${key}`);
  }
}

/** Asserts the parsed lines are exactly `expected`, in order. */
export function assertLines(
  stdout: string,
  expected: readonly Expected[],
): Record<string, string>[] {
  const lines = humanLines(stdout);
  assert.deepEqual(
    lines.map((l) => l.call),
    expected.map((e) => e.call),
    `calls in order; stdout:\n${stdout}`,
  );
  lines.forEach((line, i) => assertFields(line, expected[i]!, `line ${i + 1} (${line.call})`));
  return lines;
}

/** A successful call on socket 1. */
export function ok(call: string, fields: Expected = {}): Expected {
  return {
    call,
    status: "STATUS_SUCCESS",
    ntstatus: "0x00000000",
    socket: "1",
    bytes: "0",
    time: TIME,
    ...fields,
  };
}

/** A failed call on socket 1, with its message. */
export function failed(
  call: string,
  status: string,
  ntstatus: string,
  fields: Expected = {},
): Expected {
  return { call, status, ntstatus, socket: "1", bytes: "0", time: TIME, message: SOME, ...fields };
}

/** WskSocket, WskBind to `bind`, WskConnect from `local` to `remote`. */
export function connectedPrefix(local: string, remote: string, bind = "0.0.0.0:0"): Expected[] {
  return [ok("WskSocket"), ok("WskBind", { local: bind }), ok("WskConnect", { local, remote })];
}

/** The graceful end of a connected socket: WskDisconnect, WskReceive until FIN, WskCloseSocket. */
export function gracefulEnd(local: string, remote: string): Expected[] {
  return [
    ok("WskDisconnect", { local, remote }),
    ok("WskReceive", { local, remote, calls: "1" }),
    ok("WskCloseSocket", { local, remote }),
  ];
}

/**
 * A connect whose WskDisconnect (with `disconnect` fields) is followed by a failed drain, then
 * WskCloseSocket (with `close` fields: a close before the peer's FIN says what the peer saw).
 */
export function failedDrain(
  local: string,
  remote: string,
  status: string,
  ntstatus: string,
  disconnect: Expected = {},
  close: Expected = {},
): Expected[] {
  return [
    ...connectedPrefix(local, remote),
    ok("WskDisconnect", { local, remote, ...disconnect }),
    failed("WskReceive", status, ntstatus, { local, remote, calls: "1" }),
    ok("WskCloseSocket", { local, remote, ...close }),
  ];
}

/**
 * What a CLI run without --allow-ffi shows when it closes a deno-backed connection the peer has
 * not finished: no RST is possible there, so the peer saw (only) our FIN.
 */
export const PEER_SAW_FIN: Expected = { "peer_saw": "FIN" };

/** A run whose `call` (from the wildcard bind) `remote` refused, with `fields` on that line. */
export function refusedRun(remote: string, call = "WskConnect", fields: Expected = {}): Expected[] {
  const local = "0.0.0.0:0";
  return [
    ok("WskSocket"),
    ok("WskBind", { local }),
    failed(call, "STATUS_CONNECTION_REFUSED", "0xC0000236", { local, remote, ...fields }),
    ok("WskCloseSocket", { local, remote }),
  ];
}

/** The JSON Lines of stdout, with elapsed_ms checked and then dropped for comparison. */
export function jsonLines(stdout: string): Record<string, unknown>[] {
  assert.ok(stdout.endsWith("\n"), `stdout does not end with a newline: ${JSON.stringify(stdout)}`);
  return stdout.slice(0, -1).split("\n").map((line) => {
    const object = JSON.parse(line) as Record<string, unknown>;
    assert.equal(typeof object.elapsed_ms, "number", `elapsed_ms in ${line}`);
    assert.ok((object.elapsed_ms as number) >= 0, `elapsed_ms in ${line}`);
    delete object.elapsed_ms;
    if ("message" in object) {
      assert.equal(typeof object.message, "string", `message in ${line}`);
      assert.ok((object.message as string).length > 0, `message in ${line}`);
      object.message = "<message>";
    }
    return object;
  });
}

/** A JSON success record on socket 1 (elapsed_ms dropped). */
export function okJson(
  call: string,
  fields: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    call,
    status: "STATUS_SUCCESS",
    ntstatus: "0x00000000",
    information: 0,
    socket: 1,
    ...fields,
  };
}

/** A JSON failure record on socket 1 with its message (elapsed_ms dropped). */
export function failedJson(
  call: string,
  status: string,
  ntstatus: string,
  fields: Record<string, unknown> = {},
): Record<string, unknown> {
  return { call, status, ntstatus, information: 0, socket: 1, ...fields, message: "<message>" };
}

/** connectedPrefix() as JSON records. */
export function connectedPrefixJson(
  local: string,
  remote: string,
  bind = "0.0.0.0:0",
): Record<string, unknown>[] {
  return [
    okJson("WskSocket"),
    okJson("WskBind", { local: bind }),
    okJson("WskConnect", { local, remote }),
  ];
}

/** gracefulEnd() as JSON records. */
export function gracefulEndJson(local: string, remote: string): Record<string, unknown>[] {
  return [
    okJson("WskDisconnect", { local, remote }),
    okJson("WskReceive", { local, remote, calls: 1 }),
    okJson("WskCloseSocket", { local, remote }),
  ];
}

/**
 * Helpers shared by the CLI tests in this folder: the CLI as a long-running child, the python3
 * peer of the connection commands (on ../_python.ts), and assertions on the CLI's human status
 * lines and JSON Lines.
 *
 * @module
 */

import assert from "node:assert/strict";
import { CLI_ENV, cliCommand, parseLine, runCli } from "../_helpers.ts";
import { Child, type ChildOptions } from "../_child.ts";
import { PY_ONE_CONNECTION, PythonPeer } from "../_python.ts";

// ---------------------------------------------------------------------------------------------
// The CLI as a child, and python3 peers

/**
 * The CLI as a long-running child (with `permissions` beyond the `wsk` task's, e.g. FFI); its
 * output is collected as it comes, and `await using` kills it if it is still running.
 */
export class CliChild extends Child {
  /**
   * `permissions`: added to the `wsk` task's. `via`: a launcher and its arguments, with the
   * deno command line following them (e.g. `sh -c 'ulimit -n 64 && exec "$0" "$@"'`).
   * `options`: how stdin and stdout are connected (see {@linkcode ChildOptions}; e.g. a held
   * stdout that nobody reads until closeStdout()) and environment variables beyond CLI_ENV.
   */
  constructor(
    args: string[],
    permissions: readonly string[] = [],
    via: readonly string[] = [],
    options: Pick<ChildOptions, "stdin" | "stdout" | "env"> = {},
  ) {
    super(Deno.execPath(), cliCommand(args, permissions), {
      ...options,
      via,
      env: { ...CLI_ENV, ...options.env },
    });
  }

  /** The first parsed line on `stream` that `find` accepts, once it was printed. */
  lineWhere(
    stream: "stdout" | "stderr",
    find: (line: Record<string, string>) => boolean,
    what: string,
    ms = 15_000,
  ): Promise<Record<string, string>> {
    const collector = this[stream];
    return collector.waitFor(() => collector.lines().map(parseLine).find(find), ms, what);
  }

  /** The `local=` of the WskBind line on `stream` (human lines). */
  async bindLocal(stream: "stdout" | "stderr"): Promise<string> {
    const bind = await this.lineWhere(
      stream,
      (line) => line.call === "WskBind" && line.local !== undefined,
      `the WskBind line on ${stream} (stderr: ${this.stderr.text()})`,
    );
    return bind.local!;
  }

  /** The parsed human line of `call` on `socket`, once it was printed on stdout. */
  lineOf(call: string, socket: string): Promise<Record<string, string>> {
    return this.lineWhere(
      "stdout",
      (line) => line.call === call && line.socket === socket,
      `the ${call} line of socket ${socket}`,
    );
  }
}

/**
 * The python3 peer of the connection commands. argv: HOST MODE. Modes:
 *   drain       read until EOF (or a reset), then close gracefully
 *   reset       reset the connection (SO_LINGER 0 close) right after accept
 *   resetafter  read until EOF, then reset instead of sending a FIN
 *   hold        read until EOF, report, then keep the connection open until stdin closes
 *   echo        echo everything until EOF, then half-close and close
 * The first stdout line is the port; the second is the report of the one connection.
 */
const PEER_SCRIPT = PY_ONE_CONNECTION + String.raw`
mode = args[0]
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
export type Peer = PythonPeer<PeerReport>;

/** Starts a peer in `mode` on 127.0.0.1 (or ::1) and waits for the port it bound. */
export function startPeer(mode: PeerMode, family: 4 | 6 = 4): Promise<Peer> {
  const host = family === 6 ? "::1" : "127.0.0.1";
  return PythonPeer.start<PeerReport>(PEER_SCRIPT, [host, mode], { stdin: true });
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

/**
 * Asserts a run that connected and ended gracefully with nothing sent: exit 0, nothing on
 * stderr, the connect prefix and the graceful end on stdout, and a peer that got no data and a
 * FIN.
 */
export function assertGracefulRun({ result, seen, local, remote }: PeerRun): void {
  assert.equal(result.stderr, "");
  assertLines(result.stdout, [...connectedPrefix(local, remote), ...gracefulEnd(local, remote)]);
  assert.equal(result.code, 0);
  assert.deepEqual({ data: seen.data, end: seen.end }, { data: "", end: "eof" });
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

/**
 * Every line of `output` as a parsed status line (its call name matching `calls`); fails on
 * anything that is not one.
 */
export function statusLines(
  output: string,
  calls: RegExp = /^Wsk[A-Za-z]+$/,
): Record<string, string>[] {
  const lines = output.split("\n");
  assert.equal(lines.pop(), "", `output must end with a newline: ${JSON.stringify(output)}`);
  return lines.map((line) => {
    const fields = parseLine(line);
    assert.match(fields.call!, calls, `not a status line: ${line}`);
    assert.match(fields.status!, /^STATUS_[A-Z_]+$/, `not a status line: ${line}`);
    assert.match(fields.ntstatus!, HEX_STATUS, `not a status line: ${line}`);
    assert.match(fields.time ?? "", TIME, `no time in: ${line}`);
    return fields;
  });
}

/**
 * Runs `wsk ...args` and asserts a usage error before any socket: exit 2, nothing on stdout,
 * and exactly `stderr` on stderr.
 */
export async function assertUsageFails(args: string[], stderr: string): Promise<void> {
  const result = await runCli(args);
  assert.equal(result.stderr, stderr, args.join(" "));
  assert.equal(result.stdout, "", `no socket was opened: ${args.join(" ")}`);
  assert.equal(result.code, 2, args.join(" "));
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

/** WskSocket, WskBind to `bind`, WskConnect from `local` to `remote` (each exact or a pattern). */
export function connectedPrefix(
  local: string | RegExp,
  remote: string | RegExp,
  bind = "0.0.0.0:0",
): Expected[] {
  return [ok("WskSocket"), ok("WskBind", { local: bind }), ok("WskConnect", { local, remote })];
}

/** The graceful end of a connected socket: WskDisconnect, WskReceive until FIN, WskCloseSocket. */
export function gracefulEnd(local: string | RegExp, remote: string | RegExp): Expected[] {
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

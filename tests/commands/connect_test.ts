/**
 * End-to-end tests of the commands that get a socket and a connection: `connect`, `connectex`,
 * `socketconnect`, `getlocaladdress`, `getremoteaddress`, `bind` and `socket`. Each test spawns
 * the CLI against a python3 peer on loopback that prints the port it bound and then what it saw
 * (the client's address, the bytes, and whether the stream ended with a FIN or a reset), and
 * asserts stdout, stderr and the exit code together.
 *
 * @module
 */

import assert from "node:assert/strict";
import { closedPort, parseLine, runCli } from "../_helpers.ts";

// ---------------------------------------------------------------------------------------------
// python3 peer. Modes:
//   drain       read until EOF (or a reset), then close gracefully
//   reset       reset the connection (SO_LINGER 0 close) right after accept
//   resetafter  read until EOF, then reset instead of sending a FIN
//   hold        read until EOF, report, then keep the connection open until stdin closes
//   echo        echo everything until EOF, then half-close and close
// The first stdout line is {"port": N}; the second is the report of the one connection.

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
    while True:
        try:
            chunk = conn.recv(65536)
        except ConnectionResetError:
            return data, "reset"
        except socket.timeout:
            return data, "timeout"
        if not chunk:
            return data, "eof"
        if echo:
            conn.sendall(chunk)
        data += chunk

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

type PeerMode = "drain" | "reset" | "resetafter" | "hold" | "echo";

/** What the python peer saw of its one connection. */
interface PeerReport {
  /** The client's address as accept() returned it. */
  readonly peer: [string, number];
  /** The bytes received, in hex. */
  readonly data?: string;
  /** How the stream ended: a FIN, a reset, python's own timeout, or the reset it sent. */
  readonly end: "eof" | "reset" | "timeout" | "sent-reset";
}

/** Resolves `promise` or rejects after `ms` (the timer is always cleared). */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A python3 peer listening on loopback port 0, stopped on dispose. */
class PythonPeer implements AsyncDisposable {
  readonly family: 4 | 6;
  #child: Deno.ChildProcess;
  #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #lines: string[] = [];
  #wake: (() => void) | null = null;
  #ended = false;
  #stderr = "";
  #pumps: Promise<unknown>;
  #port = 0;

  private constructor(child: Deno.ChildProcess, family: 4 | 6) {
    this.#child = child;
    this.family = family;
    this.#stdin = child.stdin.getWriter();
    this.#pumps = Promise.all([this.#readOut(child.stdout), this.#readErr(child.stderr)]);
  }

  /** Starts a peer in `mode` on 127.0.0.1 (or ::1) and waits for the port it bound. */
  static async start(mode: PeerMode, family: 4 | 6 = 4): Promise<PythonPeer> {
    const child = new Deno.Command("python3", {
      args: ["-u", "-c", PEER_SCRIPT, mode, String(family), family === 6 ? "::1" : "127.0.0.1"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const peer = new PythonPeer(child, family);
    try {
      const first = JSON.parse(await peer.#nextLine(10_000)) as { port: number };
      assert.equal(typeof first.port, "number");
      peer.#port = first.port;
    } catch (error) {
      await peer[Symbol.asyncDispose]();
      throw error;
    }
    return peer;
  }

  /** The port python listens on. */
  get port(): number {
    return this.#port;
  }

  /** The listening address as the CLI prints it: `127.0.0.1:N` or `[::1]:N`. */
  get address(): string {
    return this.family === 6 ? `[::1]:${this.#port}` : `127.0.0.1:${this.#port}`;
  }

  /** The report of the connection (waits for python to print it). */
  async report(ms = 10_000): Promise<PeerReport> {
    return JSON.parse(await this.#nextLine(ms)) as PeerReport;
  }

  async #readOut(stream: ReadableStream<Uint8Array>): Promise<void> {
    let pending = "";
    for await (const piece of stream.pipeThrough(new TextDecoderStream())) {
      pending += piece;
      for (let i = pending.indexOf("\n"); i >= 0; i = pending.indexOf("\n")) {
        this.#lines.push(pending.slice(0, i));
        pending = pending.slice(i + 1);
      }
      this.#notify();
    }
    this.#ended = true;
    this.#notify();
  }

  async #readErr(stream: ReadableStream<Uint8Array>): Promise<void> {
    for await (const piece of stream.pipeThrough(new TextDecoderStream())) this.#stderr += piece;
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  async #nextLine(ms: number): Promise<string> {
    const deadline = Date.now() + ms;
    while (this.#lines.length === 0) {
      if (this.#ended) throw new Error(`python peer ended without a line; stderr: ${this.#stderr}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`python peer printed nothing within ${ms} ms`);
      try {
        await within(new Promise<void>((resolve) => this.#wake = resolve), left, "python peer");
      } catch (error) {
        this.#wake = null;
        throw error;
      }
    }
    return this.#lines.shift()!;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      await this.#stdin.close();
    } catch {
      // python is gone already.
    }
    try {
      await within(this.#child.status, 5000, "python peer exit");
    } catch {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // It exited in between.
      }
      await this.#child.status;
    }
    await this.#pumps;
  }
}

/** Formats a python address pair the way the CLI prints addresses. */
function endpoint([host, port]: [string, number]): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Hex of a UTF-8 string, as the python report carries received bytes. */
function hex(text: string): string {
  return Array.from(new TextEncoder().encode(text), (b) => b.toString(16).padStart(2, "0"))
    .join("");
}

// ---------------------------------------------------------------------------------------------
// Line assertions. A human line is parsed with parseLine and compared field by field: the set
// of fields must be exactly the expected one, values equal or matching a RegExp placeholder.

type Expected = Readonly<Record<string, string | RegExp>>;

/** Any elapsed time the reporter prints. */
const TIME = /^\d+(\.\d+)?ms$/;
/** Any non-empty message. */
const SOME = /\S/;

/** The human lines of stdout, parsed. */
function humanLines(stdout: string): Record<string, string>[] {
  assert.ok(stdout.endsWith("\n"), `stdout does not end with a newline: ${JSON.stringify(stdout)}`);
  return stdout.slice(0, -1).split("\n").map(parseLine);
}

function assertFields(actual: Record<string, string>, expected: Expected, where: string): void {
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
function assertLines(stdout: string, expected: readonly Expected[]): Record<string, string>[] {
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
function ok(call: string, fields: Expected = {}): Expected {
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
function failed(call: string, status: string, ntstatus: string, fields: Expected = {}): Expected {
  return { call, status, ntstatus, socket: "1", bytes: "0", time: TIME, message: SOME, ...fields };
}

/** The graceful end of a connected socket: WskDisconnect, WskReceive until FIN, WskCloseSocket. */
function gracefulEnd(local: string, remote: string): Expected[] {
  return [
    ok("WskDisconnect", { local, remote }),
    ok("WskReceive", { local, remote, calls: "1" }),
    ok("WskCloseSocket", { local, remote }),
  ];
}

/** The JSON Lines of stdout, with elapsed_ms checked and then dropped for comparison. */
function jsonLines(stdout: string): Record<string, unknown>[] {
  assert.ok(stdout.endsWith("\n"), `stdout does not end with a newline: ${JSON.stringify(stdout)}`);
  return stdout.slice(0, -1).split("\n").map((text) => {
    const object = JSON.parse(text) as Record<string, unknown>;
    assert.equal(typeof object.elapsed_ms, "number", `elapsed_ms in ${text}`);
    assert.ok((object.elapsed_ms as number) >= 0, `elapsed_ms in ${text}`);
    delete object.elapsed_ms;
    if ("message" in object) {
      assert.equal(typeof object.message, "string", `message in ${text}`);
      assert.ok((object.message as string).length > 0, `message in ${text}`);
      object.message = "<message>";
    }
    return object;
  });
}

/** A JSON success record on socket 1 (elapsed_ms dropped). */
function okJson(call: string, fields: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    call,
    status: "STATUS_SUCCESS",
    ntstatus: "0x00000000",
    information: 0,
    socket: 1,
    ...fields,
  };
}

// ---------------------------------------------------------------------------------------------
// connect

Deno.test("connect runs WskSocket, WskBind, WskConnect and a graceful end against a real peer and exits 0", async () => {
  await using peer = await PythonPeer.start("drain");
  const result = await runCli(["connect", peer.address]);
  const seen = await peer.report();
  const local = endpoint(seen.peer);
  assert.equal(result.stderr, "");
  assertLines(result.stdout, [
    ok("WskSocket"),
    ok("WskBind", { local: "0.0.0.0:0" }),
    ok("WskConnect", { local, remote: peer.address }),
    ...gracefulEnd(local, peer.address),
  ]);
  assert.equal(result.code, 0);
  assert.equal(seen.peer[0], "127.0.0.1");
  assert.deepEqual({ data: seen.data, end: seen.end }, { data: "", end: "eof" });
});

Deno.test("connect --json writes one JSON object per call with addresses the peer saw", async () => {
  await using peer = await PythonPeer.start("drain");
  const result = await runCli(["connect", peer.address, "--json"]);
  const seen = await peer.report();
  const local = endpoint(seen.peer);
  const remote = peer.address;
  assert.equal(result.stderr, "");
  assert.deepEqual(jsonLines(result.stdout), [
    okJson("WskSocket"),
    okJson("WskBind", { local: "0.0.0.0:0" }),
    okJson("WskConnect", { local, remote }),
    okJson("WskDisconnect", { local, remote }),
    okJson("WskReceive", { local, remote, calls: 1 }),
    okJson("WskCloseSocket", { local, remote }),
  ]);
  assert.equal(result.code, 0);
  assert.equal(seen.end, "eof");
});

Deno.test("connect completes with STATUS_CONNECTION_REFUSED and exits 1 when nothing listens", async () => {
  const remote = `127.0.0.1:${closedPort()}`;
  const result = await runCli(["connect", remote]);
  assert.equal(result.stderr, "");
  const lines = assertLines(result.stdout, [
    ok("WskSocket"),
    ok("WskBind", { local: "0.0.0.0:0" }),
    failed("WskConnect", "STATUS_CONNECTION_REFUSED", "0xC0000236", {
      local: "0.0.0.0:0",
      remote,
    }),
    ok("WskCloseSocket", { local: "0.0.0.0:0", remote }),
  ]);
  assert.ok(
    lines[2]!.message!.includes(remote),
    `message names the endpoint: ${lines[2]!.message}`,
  );
  assert.equal(result.code, 1);
});

Deno.test("connect --json reports the refused WskConnect with its message and exits 1", async () => {
  const remote = `127.0.0.1:${closedPort()}`;
  const result = await runCli(["connect", remote, "--json"]);
  assert.equal(result.stderr, "");
  assert.deepEqual(jsonLines(result.stdout), [
    okJson("WskSocket"),
    okJson("WskBind", { local: "0.0.0.0:0" }),
    {
      call: "WskConnect",
      status: "STATUS_CONNECTION_REFUSED",
      ntstatus: "0xC0000236",
      information: 0,
      socket: 1,
      local: "0.0.0.0:0",
      remote,
      message: "<message>",
    },
    okJson("WskCloseSocket", { local: "0.0.0.0:0", remote }),
  ]);
  assert.equal(result.code, 1);
});

Deno.test("connect --verbose adds the system error as cause= to the refused line", async () => {
  const remote = `127.0.0.1:${closedPort()}`;
  const result = await runCli(["connect", remote, "--verbose"]);
  assert.equal(result.stderr, "");
  assertLines(result.stdout, [
    ok("WskSocket"),
    ok("WskBind", { local: "0.0.0.0:0" }),
    failed("WskConnect", "STATUS_CONNECTION_REFUSED", "0xC0000236", {
      local: "0.0.0.0:0",
      remote,
      cause: /ECONNREFUSED|refused/i,
    }),
    ok("WskCloseSocket", { local: "0.0.0.0:0", remote }),
  ]);
  assert.equal(result.code, 1);
  // Without --verbose the same failure carries no cause.
  const quiet = await runCli(["connect", remote]);
  assert.equal(quiet.code, 1);
  assert.equal(humanLines(quiet.stdout)[2]!.cause, undefined);
});

Deno.test("connect reports STATUS_CONNECTION_RESET and exits 1 when the peer resets right after accept", async () => {
  await using peer = await PythonPeer.start("reset");
  const result = await runCli(["connect", peer.address]);
  const seen = await peer.report();
  assert.equal(seen.end, "sent-reset");
  assert.equal(result.stderr, "");
  const lines = humanLines(result.stdout);
  // The reset can beat the connect's own completion or arrive during the drain: either way
  // exactly one call says so, every other call succeeds, and the socket is still closed.
  const failures = lines.filter((l) => l.status !== "STATUS_SUCCESS");
  assert.equal(failures.length, 1, result.stdout);
  assert.ok(
    ["WskConnect", "WskDisconnect", "WskReceive"].includes(failures[0]!.call!),
    result.stdout,
  );
  assert.equal(failures[0]!.status, "STATUS_CONNECTION_RESET");
  assert.equal(failures[0]!.ntstatus, "0xC000020D");
  assert.match(failures[0]!.message ?? "", SOME);
  assert.deepEqual(lines.slice(0, 3).map((l) => l.call), ["WskSocket", "WskBind", "WskConnect"]);
  assert.equal(lines.at(-1)!.call, "WskCloseSocket");
  assert.equal(lines.at(-1)!.status, "STATUS_SUCCESS");
  assert.ok(lines.every((l) => l.socket === "1"), result.stdout);
  assert.ok(lines.slice(2).every((l) => l.remote === peer.address), result.stdout);
  assert.equal(result.code, 1);
});

Deno.test("connect reports the reset in WskReceive and exits 1 when the peer resets instead of its FIN", async () => {
  await using peer = await PythonPeer.start("resetafter");
  const result = await runCli(["connect", peer.address]);
  const seen = await peer.report();
  const local = endpoint(seen.peer);
  assert.equal(result.stderr, "");
  assertLines(result.stdout, [
    ok("WskSocket"),
    ok("WskBind", { local: "0.0.0.0:0" }),
    ok("WskConnect", { local, remote: peer.address }),
    ok("WskDisconnect", { local, remote: peer.address }),
    failed("WskReceive", "STATUS_CONNECTION_RESET", "0xC000020D", {
      local,
      remote: peer.address,
      calls: "1",
    }),
    ok("WskCloseSocket", { local, remote: peer.address }),
  ]);
  assert.equal(result.code, 1);
  // python got the CLI's FIN before it reset.
  assert.equal(seen.end, "eof");
});

Deno.test("connect ends within --timeout with STATUS_IO_TIMEOUT and exits 1 when the peer never closes", async () => {
  await using peer = await PythonPeer.start("hold");
  const start = performance.now();
  const result = await runCli(["connect", peer.address, "--timeout", "500"], { timeoutMs: 15_000 });
  const elapsed = performance.now() - start;
  const seen = await peer.report();
  const local = endpoint(seen.peer);
  assert.equal(result.stderr, "");
  const lines = assertLines(result.stdout, [
    ok("WskSocket"),
    ok("WskBind", { local: "0.0.0.0:0" }),
    ok("WskConnect", { local, remote: peer.address }),
    ok("WskDisconnect", { local, remote: peer.address }),
    failed("WskReceive", "STATUS_IO_TIMEOUT", "0xC00000B5", {
      local,
      remote: peer.address,
      calls: "1",
    }),
    ok("WskCloseSocket", { local, remote: peer.address }),
  ]);
  assert.equal(result.code, 1);
  assert.ok(elapsed < 5000, `the run took ${elapsed.toFixed(0)} ms`);
  // The receive waited for the bound, not less.
  const waited = Number(lines[4]!.time!.replace("ms", ""));
  assert.ok(waited >= 450 && waited < 5000, `WskReceive waited ${waited} ms`);
  // python saw the FIN of the graceful disconnect.
  assert.equal(seen.end, "eof");
});

Deno.test("connect reaches a python server on [::1] and prints bracketed IPv6 addresses", async () => {
  await using peer = await PythonPeer.start("drain", 6);
  const result = await runCli(["connect", peer.address]);
  const seen = await peer.report();
  assert.equal(seen.peer[0], "::1");
  const local = endpoint(seen.peer);
  assert.equal(result.stderr, "");
  assertLines(result.stdout, [
    ok("WskSocket"),
    ok("WskBind", { local: "[::]:0" }),
    ok("WskConnect", { local, remote: peer.address }),
    ...gracefulEnd(local, peer.address),
  ]);
  assert.equal(result.code, 0);
  assert.equal(seen.end, "eof");
});

Deno.test("connect --bind 127.0.0.1:PORT connects from that port, as the peer sees it", async () => {
  await using peer = await PythonPeer.start("drain");
  const port = closedPort();
  const bind = `127.0.0.1:${port}`;
  const result = await runCli(["connect", peer.address, "--bind", bind]);
  const seen = await peer.report();
  assert.deepEqual(seen.peer, ["127.0.0.1", port]);
  assert.equal(result.stderr, "");
  assertLines(result.stdout, [
    ok("WskSocket"),
    ok("WskBind", { local: bind }),
    ok("WskConnect", { local: bind, remote: peer.address }),
    ...gracefulEnd(bind, peer.address),
  ]);
  assert.equal(result.code, 0);
});

Deno.test("connect localhost:PORT resolves the name with WskGetAddressInfo first", async () => {
  await using peer = await PythonPeer.start("drain");
  const result = await runCli(["connect", `localhost:${peer.port}`]);
  const seen = await peer.report();
  const local = endpoint(seen.peer);
  assert.equal(result.stderr, "");
  assertLines(result.stdout, [
    {
      call: "WskGetAddressInfo",
      status: "STATUS_SUCCESS",
      ntstatus: "0x00000000",
      bytes: "0",
      time: TIME,
    },
    ok("WskSocket"),
    ok("WskBind", { local: "0.0.0.0:0" }),
    ok("WskConnect", { local, remote: peer.address }),
    ...gracefulEnd(local, peer.address),
  ]);
  assert.equal(result.code, 0);
});

// ---------------------------------------------------------------------------------------------
// connectex, socketconnect

Deno.test("connectex sends --data with the connect and the peer reads it before the FIN", async () => {
  await using peer = await PythonPeer.start("drain");
  const result = await runCli(["connectex", peer.address, "--data", "hi\\n"]);
  const seen = await peer.report();
  const local = endpoint(seen.peer);
  assert.equal(result.stderr, "");
  assertLines(result.stdout, [
    ok("WskSocket"),
    ok("WskBind", { local: "0.0.0.0:0" }),
    ok("WskConnectEx", { local, remote: peer.address, bytes: "3" }),
    ...gracefulEnd(local, peer.address),
  ]);
  assert.equal(result.code, 0);
  assert.deepEqual({ data: seen.data, end: seen.end }, { data: hex("hi\n"), end: "eof" });
});

Deno.test("connectex completes with STATUS_CONNECTION_REFUSED and exits 1 when nothing listens", async () => {
  const remote = `127.0.0.1:${closedPort()}`;
  const result = await runCli(["connectex", remote, "--data", "x"]);
  assert.equal(result.stderr, "");
  assertLines(result.stdout, [
    ok("WskSocket"),
    ok("WskBind", { local: "0.0.0.0:0" }),
    failed("WskConnectEx", "STATUS_CONNECTION_REFUSED", "0xC0000236", {
      local: "0.0.0.0:0",
      remote,
    }),
    ok("WskCloseSocket", { local: "0.0.0.0:0", remote }),
  ]);
  assert.equal(result.code, 1);
});

Deno.test("socketconnect creates, binds and connects in one WskSocketConnect line", async () => {
  await using peer = await PythonPeer.start("drain");
  const result = await runCli(["socketconnect", peer.address]);
  const seen = await peer.report();
  const local = endpoint(seen.peer);
  assert.equal(result.stderr, "");
  assertLines(result.stdout, [
    ok("WskSocketConnect", { local, remote: peer.address }),
    ...gracefulEnd(local, peer.address),
  ]);
  assert.equal(result.code, 0);
  assert.equal(seen.end, "eof");
});

Deno.test("socketconnect --bind [::1]:PORT connects from that IPv6 port, as the peer sees it", async () => {
  await using peer = await PythonPeer.start("drain", 6);
  const listener = Deno.listen({ hostname: "::1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const bind = `[::1]:${port}`;
  const result = await runCli(["socketconnect", peer.address, "--bind", bind]);
  const seen = await peer.report();
  assert.deepEqual(seen.peer, ["::1", port]);
  assert.equal(result.stderr, "");
  assertLines(result.stdout, [
    ok("WskSocketConnect", { local: bind, remote: peer.address }),
    ...gracefulEnd(bind, peer.address),
  ]);
  assert.equal(result.code, 0);
});

// ---------------------------------------------------------------------------------------------
// getlocaladdress, getremoteaddress

Deno.test("getlocaladdress prints the local address the peer saw", async () => {
  await using peer = await PythonPeer.start("drain");
  const result = await runCli(["getlocaladdress", peer.address, "--bind", "127.0.0.1:0"]);
  const seen = await peer.report();
  const local = endpoint(seen.peer);
  assert.equal(result.stderr, "");
  assertLines(result.stdout, [
    ok("WskSocket"),
    ok("WskBind", { local: "127.0.0.1:0" }),
    ok("WskConnect", { local, remote: peer.address }),
    ok("WskGetLocalAddress", { local, remote: peer.address }),
    ...gracefulEnd(local, peer.address),
  ]);
  assert.equal(result.code, 0);
});

Deno.test("getremoteaddress prints the peer's listening address on IPv6", async () => {
  await using peer = await PythonPeer.start("drain", 6);
  const result = await runCli(["getremoteaddress", peer.address]);
  const seen = await peer.report();
  const local = endpoint(seen.peer);
  assert.equal(result.stderr, "");
  assertLines(result.stdout, [
    ok("WskSocket"),
    ok("WskBind", { local: "[::]:0" }),
    ok("WskConnect", { local, remote: peer.address }),
    ok("WskGetRemoteAddress", { local, remote: peer.address }),
    ...gracefulEnd(local, peer.address),
  ]);
  assert.equal(result.code, 0);
});

Deno.test("getremoteaddress --json carries the remote address the peer listens on", async () => {
  await using peer = await PythonPeer.start("drain");
  const result = await runCli(["getremoteaddress", peer.address, "--json"]);
  const seen = await peer.report();
  const local = endpoint(seen.peer);
  const remote = peer.address;
  assert.equal(result.stderr, "");
  assert.deepEqual(jsonLines(result.stdout), [
    okJson("WskSocket"),
    okJson("WskBind", { local: "0.0.0.0:0" }),
    okJson("WskConnect", { local, remote }),
    okJson("WskGetRemoteAddress", { local, remote }),
    okJson("WskDisconnect", { local, remote }),
    okJson("WskReceive", { local, remote, calls: 1 }),
    okJson("WskCloseSocket", { local, remote }),
  ]);
  assert.equal(result.code, 0);
});

// ---------------------------------------------------------------------------------------------
// bind, socket

/** The port of an `IP:PORT` or `[IPV6]:PORT` text. */
function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(":") + 1));
}

Deno.test("bind 127.0.0.1:0 shows the kernel-chosen port in WskGetLocalAddress", async () => {
  const result = await runCli(["bind", "127.0.0.1:0"]);
  assert.equal(result.stderr, "");
  const lines = assertLines(result.stdout, [
    ok("WskSocket"),
    ok("WskBind", { local: "127.0.0.1:0" }),
    ok("WskGetLocalAddress", { local: /^127\.0\.0\.1:\d+$/ }),
    ok("WskCloseSocket", { local: /^127\.0\.0\.1:\d+$/ }),
  ]);
  const port = portOf(lines[2]!.local!);
  assert.ok(port > 0 && port <= 65535, `port ${port}`);
  assert.equal(lines[3]!.local, lines[2]!.local);
  assert.equal(result.code, 0);
});

Deno.test("bind --listen [::1]:0 shows the real port in WskBind and WskGetLocalAddress", async () => {
  const result = await runCli(["bind", "--listen", "[::1]:0"]);
  assert.equal(result.stderr, "");
  const bound = /^\[::1\]:\d+$/;
  const lines = assertLines(result.stdout, [
    ok("WskSocket"),
    ok("WskBind", { local: bound }),
    ok("WskGetLocalAddress", { local: bound }),
    ok("WskCloseSocket", { local: bound }),
  ]);
  const port = portOf(lines[2]!.local!);
  assert.ok(port > 0 && port <= 65535, `port ${port}`);
  assert.equal(lines[1]!.local, lines[2]!.local);
  assert.equal(result.code, 0);
});

Deno.test("bind --json reports the kernel-chosen port", async () => {
  const result = await runCli(["bind", "127.0.0.1:0", "--json"]);
  assert.equal(result.stderr, "");
  const lines = jsonLines(result.stdout);
  const local = lines[2]?.local;
  assert.equal(typeof local, "string");
  assert.match(local as string, /^127\.0\.0\.1:\d+$/);
  assert.ok(portOf(local as string) > 0);
  assert.deepEqual(lines, [
    okJson("WskSocket"),
    okJson("WskBind", { local: "127.0.0.1:0" }),
    okJson("WskGetLocalAddress", { local }),
    okJson("WskCloseSocket", { local }),
  ]);
  assert.equal(result.code, 0);
});

Deno.test("socket --family inet6 --listen --bind [::1]:0 binds a listening IPv6 socket", async () => {
  const result = await runCli(["socket", "--family", "inet6", "--listen", "--bind", "[::1]:0"]);
  assert.equal(result.stderr, "");
  const bound = /^\[::1\]:\d+$/;
  const lines = assertLines(result.stdout, [
    ok("WskSocket"),
    ok("WskBind", { local: bound }),
    ok("WskGetLocalAddress", { local: bound }),
    ok("WskCloseSocket", { local: bound }),
  ]);
  assert.ok(portOf(lines[2]!.local!) > 0);
  assert.equal(lines[1]!.local, lines[2]!.local);
  assert.equal(result.code, 0);
});

Deno.test("socket without options creates and closes a connection socket", async () => {
  const result = await runCli(["socket"]);
  assert.equal(result.stderr, "");
  assertLines(result.stdout, [ok("WskSocket"), ok("WskCloseSocket")]);
  assert.equal(result.code, 0);
});

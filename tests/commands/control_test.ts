/**
 * End-to-end tests of the commands that end or steer a connection: `disconnect`, `release`,
 * `controlsocket` and `closesocket`. Each test spawns the CLI against a python3 peer on loopback
 * that prints the port it bound and then what it saw (the client's address, the bytes, and
 * whether the stream ended with a FIN or a reset), and asserts stdout, stderr and the exit code
 * together.
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

/** The connected prefix every command here starts with: WskSocket, WskBind, WskConnect. */
function connectedPrefix(local: string, remote: string): Expected[] {
  return [
    ok("WskSocket"),
    ok("WskBind", { local: "0.0.0.0:0" }),
    ok("WskConnect", { local, remote }),
  ];
}

// ---------------------------------------------------------------------------------------------
// disconnect

Deno.test("disconnect without data sends a FIN, drains until the peer's FIN and exits 0", async () => {
  await using peer = await PythonPeer.start("drain");
  const result = await runCli(["disconnect", peer.address]);
  const seen = await peer.report();
  const local = endpoint(seen.peer);
  assert.equal(result.stderr, "");
  assertLines(result.stdout, [
    ...connectedPrefix(local, peer.address),
    ...gracefulEnd(local, peer.address),
  ]);
  assert.equal(result.code, 0);
  assert.deepEqual({ data: seen.data, end: seen.end }, { data: "", end: "eof" });
});

Deno.test('disconnect --data "bye\\n" delivers the final data, then a FIN', async () => {
  await using peer = await PythonPeer.start("drain");
  const result = await runCli(["disconnect", peer.address, "--data", "bye\\n"]);
  const seen = await peer.report();
  const local = endpoint(seen.peer);
  assert.equal(result.stderr, "");
  assertLines(result.stdout, [
    ...connectedPrefix(local, peer.address),
    ok("WskDisconnect", { local, remote: peer.address, bytes: "4" }),
    ok("WskReceive", { local, remote: peer.address, calls: "1" }),
    ok("WskCloseSocket", { local, remote: peer.address }),
  ]);
  assert.equal(result.code, 0);
  // python read exactly the final data and then end of stream, not a reset.
  assert.deepEqual({ data: seen.data, end: seen.end }, { data: hex("bye\n"), end: "eof" });
});

Deno.test("disconnect --abortive resets the connection, which the peer sees as ConnectionResetError", async () => {
  await using peer = await PythonPeer.start("drain");
  const result = await runCli(["disconnect", peer.address, "--abortive"]);
  const seen = await peer.report();
  const local = endpoint(seen.peer);
  assert.equal(result.stderr, "");
  // No drain after an abortive disconnect: there is no FIN to wait for.
  assertLines(result.stdout, [
    ...connectedPrefix(local, peer.address),
    ok("WskDisconnect", { local, remote: peer.address }),
    ok("WskCloseSocket", { local, remote: peer.address }),
  ]);
  assert.equal(result.code, 0);
  assert.deepEqual({ data: seen.data, end: seen.end }, { data: "", end: "reset" });
});

Deno.test("disconnect --json writes one JSON object per call, the final data counted in information", async () => {
  await using peer = await PythonPeer.start("drain");
  const result = await runCli(["disconnect", peer.address, "--data", "bye\\n", "--json"]);
  const seen = await peer.report();
  const local = endpoint(seen.peer);
  const remote = peer.address;
  assert.equal(result.stderr, "");
  assert.deepEqual(jsonLines(result.stdout), [
    okJson("WskSocket"),
    okJson("WskBind", { local: "0.0.0.0:0" }),
    okJson("WskConnect", { local, remote }),
    okJson("WskDisconnect", { local, remote, information: 4 }),
    okJson("WskReceive", { local, remote, calls: 1 }),
    okJson("WskCloseSocket", { local, remote }),
  ]);
  assert.equal(result.code, 0);
  assert.deepEqual({ data: seen.data, end: seen.end }, { data: hex("bye\n"), end: "eof" });
});

Deno.test("disconnect --json --abortive reports every call as a success and the peer sees a reset", async () => {
  await using peer = await PythonPeer.start("drain", 6);
  const result = await runCli(["disconnect", peer.address, "--abortive", "--json"]);
  const seen = await peer.report();
  const local = endpoint(seen.peer);
  const remote = peer.address;
  assert.equal(result.stderr, "");
  assert.deepEqual(jsonLines(result.stdout), [
    okJson("WskSocket"),
    okJson("WskBind", { local: "[::]:0" }),
    okJson("WskConnect", { local, remote }),
    okJson("WskDisconnect", { local, remote }),
    okJson("WskCloseSocket", { local, remote }),
  ]);
  assert.equal(result.code, 0);
  assert.equal(seen.end, "reset");
});

Deno.test("disconnect reports STATUS_CONNECTION_RESET in the drain and exits 1 when the peer answers the FIN with a reset", async () => {
  await using peer = await PythonPeer.start("resetafter");
  const result = await runCli(["disconnect", peer.address, "--data", "x"]);
  const seen = await peer.report();
  const local = endpoint(seen.peer);
  assert.equal(result.stderr, "");
  assertLines(result.stdout, [
    ...connectedPrefix(local, peer.address),
    ok("WskDisconnect", { local, remote: peer.address, bytes: "1" }),
    failed("WskReceive", "STATUS_CONNECTION_RESET", "0xC000020D", {
      local,
      remote: peer.address,
      calls: "1",
    }),
    ok("WskCloseSocket", { local, remote: peer.address }),
  ]);
  assert.equal(result.code, 1);
  assert.deepEqual({ data: seen.data, end: seen.end }, { data: hex("x"), end: "eof" });
});

Deno.test("disconnect ends within --timeout with STATUS_IO_TIMEOUT and exits 1 when the peer never sends its FIN", async () => {
  await using peer = await PythonPeer.start("hold");
  const start = performance.now();
  const result = await runCli(["disconnect", peer.address, "--timeout", "500"], {
    timeoutMs: 15_000,
  });
  const elapsed = performance.now() - start;
  const seen = await peer.report();
  const local = endpoint(seen.peer);
  assert.equal(result.stderr, "");
  assertLines(result.stdout, [
    ...connectedPrefix(local, peer.address),
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
  assert.equal(seen.end, "eof");
});

// ---------------------------------------------------------------------------------------------
// controlsocket

Deno.test("controlsocket --set TCP_NODELAY=1 --get TCP_NODELAY reads back value=1 and exits 0", async () => {
  await using peer = await PythonPeer.start("drain");
  const result = await runCli([
    "controlsocket",
    peer.address,
    "--set",
    "TCP_NODELAY=1",
    "--get",
    "TCP_NODELAY",
  ]);
  const seen = await peer.report();
  const local = endpoint(seen.peer);
  const remote = peer.address;
  assert.equal(result.stderr, "");
  assertLines(result.stdout, [
    ...connectedPrefix(local, remote),
    ok("WskControlSocket", { local, remote, option: "TCP_NODELAY", value: "1" }),
    ok("WskControlSocket", { local, remote, option: "TCP_NODELAY", value: "1", bytes: "4" }),
    ...gracefulEnd(local, remote),
  ]);
  assert.equal(result.code, 0);
  assert.equal(seen.end, "eof");
});

Deno.test("controlsocket --get SO_RCVBUF completes with STATUS_NOT_SUPPORTED, still closes gracefully, and exits 1", async () => {
  await using peer = await PythonPeer.start("drain");
  const result = await runCli(["controlsocket", peer.address, "--get", "SO_RCVBUF"]);
  const seen = await peer.report();
  const local = endpoint(seen.peer);
  const remote = peer.address;
  assert.equal(result.stderr, "");
  assertLines(result.stdout, [
    ...connectedPrefix(local, remote),
    failed("WskControlSocket", "STATUS_NOT_SUPPORTED", "0xC00000BB", {
      local,
      remote,
      option: "SO_RCVBUF",
    }),
    ...gracefulEnd(local, remote),
  ]);
  assert.equal(result.code, 1);
  assert.equal(seen.end, "eof");
});

Deno.test("controlsocket --json writes option and value, and a message on the unsupported get", async () => {
  await using peer = await PythonPeer.start("drain");
  const result = await runCli([
    "controlsocket",
    peer.address,
    "--set",
    "TCP_NODELAY=1",
    "--get",
    "TCP_NODELAY",
    "--get",
    "SO_RCVBUF",
    "--json",
  ]);
  const seen = await peer.report();
  const local = endpoint(seen.peer);
  const remote = peer.address;
  assert.equal(result.stderr, "");
  assert.deepEqual(jsonLines(result.stdout), [
    okJson("WskSocket"),
    okJson("WskBind", { local: "0.0.0.0:0" }),
    okJson("WskConnect", { local, remote }),
    okJson("WskControlSocket", { local, remote, option: "TCP_NODELAY", value: 1 }),
    okJson("WskControlSocket", {
      local,
      remote,
      option: "TCP_NODELAY",
      value: 1,
      information: 4,
    }),
    {
      call: "WskControlSocket",
      status: "STATUS_NOT_SUPPORTED",
      ntstatus: "0xC00000BB",
      information: 0,
      socket: 1,
      local,
      remote,
      option: "SO_RCVBUF",
      message: "<message>",
    },
    okJson("WskDisconnect", { local, remote }),
    okJson("WskReceive", { local, remote, calls: 1 }),
    okJson("WskCloseSocket", { local, remote }),
  ]);
  assert.equal(result.code, 1);
  assert.equal(seen.end, "eof");
});

// ---------------------------------------------------------------------------------------------
// release

/**
 * Checks the shape of a `release` run: the fixed prefix, then WskDisconnect and the
 * WskReceiveEvent lines in either order (the echo may overtake the disconnect's completion),
 * then WskDisconnectEvent, one WskRelease per kept indication, WskCloseSocket. Returns the
 * WskReceiveEvent lines.
 */
function assertReleaseRun(
  stdout: string,
  local: string,
  remote: string,
  sent: number,
): Record<string, string>[] {
  const lines = humanLines(stdout);
  const prefix: Expected[] = [
    ...connectedPrefix(local, remote),
    ok("WskControlSocket", {
      local,
      remote,
      option: "SO_WSK_EVENT_CALLBACK",
      value: "WSK_EVENT_RECEIVE|WSK_EVENT_DISCONNECT",
    }),
    ok("WskSend", { local, remote, bytes: String(sent) }),
  ];
  prefix.forEach((e, i) => assertFields(lines[i] ?? {}, e, `line ${i + 1}; stdout:\n${stdout}`));
  const gone = lines.findIndex((l) => l.call === "WskDisconnectEvent");
  assert.ok(gone > prefix.length, `no WskDisconnectEvent after the send; stdout:\n${stdout}`);
  const middle = lines.slice(prefix.length, gone);
  const disconnects = middle.filter((l) => l.call === "WskDisconnect");
  assert.equal(disconnects.length, 1, stdout);
  assertFields(disconnects[0]!, ok("WskDisconnect", { local, remote }), "WskDisconnect");
  const events = middle.filter((l) => l.call === "WskReceiveEvent");
  assert.equal(events.length + 1, middle.length, `unexpected lines; stdout:\n${stdout}`);
  assert.ok(events.length >= 1, stdout);
  for (const event of events) {
    assert.match(event.bytes!, /^[1-9]\d*$/);
    assertFields(event, {
      call: "WskReceiveEvent",
      status: "STATUS_PENDING",
      ntstatus: "0x00000103",
      socket: "1",
      local,
      remote,
      bytes: event.bytes!,
      time: TIME,
      data: SOME,
    }, "WskReceiveEvent");
    assert.equal(new TextEncoder().encode(event.data).length, Number(event.bytes));
  }
  assertFields(
    lines[gone]!,
    ok("WskDisconnectEvent", { local, remote, value: "graceful" }),
    "WskDisconnectEvent",
  );
  const tail = lines.slice(gone + 1);
  assert.equal(tail.length, events.length + 1, `one WskRelease per indication; stdout:\n${stdout}`);
  events.forEach((event, i) => {
    assertFields(tail[i]!, ok("WskRelease", { local, remote, bytes: event.bytes! }), "WskRelease");
  });
  assertFields(tail.at(-1)!, ok("WskCloseSocket", { local, remote }), "WskCloseSocket");
  return events;
}

Deno.test('release --data "hello" keeps the echoed indications and returns each with WskRelease', async () => {
  await using peer = await PythonPeer.start("echo");
  const result = await runCli(["release", peer.address, "--data", "hello"]);
  const seen = await peer.report();
  const local = endpoint(seen.peer);
  assert.equal(result.stderr, "");
  const events = assertReleaseRun(result.stdout, local, peer.address, 5);
  assert.equal(events.map((e) => e.data).join(""), "hello");
  assert.equal(result.code, 0);
  assert.deepEqual({ data: seen.data, end: seen.end }, { data: hex("hello"), end: "eof" });
});

Deno.test("release --json carries the indicated data and one WskRelease per indication", async () => {
  await using peer = await PythonPeer.start("echo", 6);
  const result = await runCli(["release", peer.address, "--data", "hello", "--json"]);
  const seen = await peer.report();
  const local = endpoint(seen.peer);
  const remote = peer.address;
  assert.equal(result.stderr, "");
  const lines = jsonLines(result.stdout);
  const events = lines.filter((l) => l.call === "WskReceiveEvent");
  assert.ok(events.length >= 1, result.stdout);
  for (const event of events) {
    assert.deepEqual(event, {
      call: "WskReceiveEvent",
      status: "STATUS_PENDING",
      ntstatus: "0x00000103",
      information: (event.data as string).length,
      socket: 1,
      local,
      remote,
      data: event.data,
    });
  }
  assert.equal(events.map((e) => e.data).join(""), "hello");
  const releases = lines.filter((l) => l.call === "WskRelease");
  assert.deepEqual(
    releases,
    events.map((e) => okJson("WskRelease", { local, remote, information: e.information })),
  );
  assert.deepEqual(lines.at(-1), okJson("WskCloseSocket", { local, remote }));
  assert.equal(result.code, 0);
  assert.equal(seen.end, "eof");
});

Deno.test("release ends within --timeout with a STATUS_IO_TIMEOUT WskDisconnectEvent and exits 1 when the peer never sends its FIN", async () => {
  await using peer = await PythonPeer.start("hold");
  const start = performance.now();
  const result = await runCli(["release", peer.address, "--data", "hi", "--timeout", "500"], {
    timeoutMs: 15_000,
  });
  const elapsed = performance.now() - start;
  const seen = await peer.report();
  const local = endpoint(seen.peer);
  const remote = peer.address;
  assert.equal(result.stderr, "");
  assertLines(result.stdout, [
    ...connectedPrefix(local, remote),
    ok("WskControlSocket", {
      local,
      remote,
      option: "SO_WSK_EVENT_CALLBACK",
      value: "WSK_EVENT_RECEIVE|WSK_EVENT_DISCONNECT",
    }),
    ok("WskSend", { local, remote, bytes: "2" }),
    ok("WskDisconnect", { local, remote }),
    failed("WskDisconnectEvent", "STATUS_IO_TIMEOUT", "0xC00000B5", { local, remote }),
    ok("WskCloseSocket", { local, remote }),
  ]);
  assert.equal(result.code, 1);
  assert.ok(elapsed < 5000, `the run took ${elapsed.toFixed(0)} ms`);
  assert.deepEqual({ data: seen.data, end: seen.end }, { data: hex("hi"), end: "eof" });
});

// ---------------------------------------------------------------------------------------------
// closesocket

Deno.test("closesocket cancels the pending WskReceive (STATUS_CANCELLED), exits 0, and the peer sees a reset", async () => {
  await using peer = await PythonPeer.start("drain");
  const result = await runCli(["closesocket", peer.address]);
  const seen = await peer.report();
  const local = endpoint(seen.peer);
  const remote = peer.address;
  assert.equal(result.stderr, "");
  assertLines(result.stdout, [
    ...connectedPrefix(local, remote),
    ok("WskCloseSocket", { local, remote }),
    failed("WskReceive", "STATUS_CANCELLED", "0xC0000120", { local, remote }),
  ]);
  assert.equal(result.code, 0);
  assert.deepEqual({ data: seen.data, end: seen.end }, { data: "", end: "reset" });
});

Deno.test("closesocket --json reports the cancelled receive after the close with its message", async () => {
  await using peer = await PythonPeer.start("drain", 6);
  const result = await runCli(["closesocket", peer.address, "--json"]);
  const seen = await peer.report();
  const local = endpoint(seen.peer);
  const remote = peer.address;
  assert.equal(result.stderr, "");
  assert.deepEqual(jsonLines(result.stdout), [
    okJson("WskSocket"),
    okJson("WskBind", { local: "[::]:0" }),
    okJson("WskConnect", { local, remote }),
    okJson("WskCloseSocket", { local, remote }),
    {
      call: "WskReceive",
      status: "STATUS_CANCELLED",
      ntstatus: "0xC0000120",
      information: 0,
      socket: 1,
      local,
      remote,
      message: "<message>",
    },
  ]);
  assert.equal(result.code, 0);
  assert.equal(seen.end, "reset");
});

Deno.test("closesocket completes with STATUS_CONNECTION_REFUSED and exits 1 when nothing listens", async () => {
  const remote = `127.0.0.1:${closedPort()}`;
  const result = await runCli(["closesocket", remote]);
  assert.equal(result.stderr, "");
  assertLines(result.stdout, [
    ok("WskSocket"),
    ok("WskBind", { local: "0.0.0.0:0" }),
    failed("WskConnect", "STATUS_CONNECTION_REFUSED", "0xC0000236", {
      local: "0.0.0.0:0",
      remote,
    }),
    ok("WskCloseSocket", { local: "0.0.0.0:0", remote }),
  ]);
  assert.equal(result.code, 1);
});

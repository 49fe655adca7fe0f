// `wsk accept` and `wsk demo` end to end. accept runs as a spawned child: the test reads its
// output until the WskBind line, takes the port it really bound (it binds port 0), drives Deno
// clients against it and checks every line the child printed against what the clients did.

import assert from "node:assert/strict";
import { cliCommand, parseLine, readAll, runCli, text } from "../_helpers.ts";
import {
  assertAllSucceeded,
  callsOf,
  Collector,
  DISPATCH_CALLS,
  HEX_STATUS,
  portOf,
  randomBytes,
  statusLines,
  within,
} from "./_peer.ts";

// ---------------------------------------------------------------------------------------------
// Helpers local to this file

/** The CLI as a long-running child; `await using` kills it if it is still running. */
class CliChild implements AsyncDisposable {
  readonly stdout: Collector;
  readonly stderr: Collector;
  readonly #child: Deno.ChildProcess;
  #exited = false;

  constructor(args: string[]) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: cliCommand(args),
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

  /** The exit code, once the child exited by itself within `ms`. */
  async exitCode(ms = 15_000): Promise<number> {
    const status = await within(this.#child.status, ms, "the accept child's exit");
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

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let offset = 0; offset < bytes.length;) offset += await conn.write(bytes.subarray(offset));
}

/** What one client did: its address as the server sees it, what it sent and got back. */
interface ClientRun {
  readonly local: string;
  readonly sent: Uint8Array;
  readonly got: Uint8Array;
}

/** Connects, sends `payload` (while reading), half-closes and reads until EOF. */
async function client(hostname: string, port: number, payload: Uint8Array): Promise<ClientRun> {
  const conn = await Deno.connect({ hostname, port });
  try {
    const reading = readAll(conn);
    await writeAll(conn, payload);
    await conn.closeWrite();
    const { bytes, error } = await reading;
    assert.equal(error, null, `client ${conn.localAddr.port} saw ${error}`);
    const local = hostname.includes(":")
      ? `[${hostname}]:${conn.localAddr.port}`
      : `${hostname}:${conn.localAddr.port}`;
    return { local, sent: payload, got: bytes };
  } finally {
    conn.close();
  }
}

/**
 * Checks the lines of one accepted connection: WskAccept, then `calls` in order, all on the
 * accepted socket with the listener's local address and the client's remote one.
 */
function connectionLines(
  lines: Record<string, string>[],
  listenerLocal: string,
  clientLocal: string,
  calls: string[],
): Record<string, string>[] {
  const accepts = lines.filter((line) => line.call === "WskAccept" && line.remote === clientLocal);
  assert.equal(accepts.length, 1, `one WskAccept for ${clientLocal}`);
  const accept = accepts[0]!;
  assert.equal(accept.local, listenerLocal);
  const own = lines.filter((line) => line.socket === accept.socket);
  assert.deepEqual(callsOf(own), ["WskAccept", ...calls], `calls of ${clientLocal}`);
  for (const line of own) {
    assert.equal(line.local, listenerLocal, `${line.call} local`);
    assert.equal(line.remote, clientLocal, `${line.call} remote`);
  }
  return own;
}

/** The calls on the connection of a client that sends, reads the echo and half-closes. */
const ECHO_CONNECTION = ["WskReceive", "WskSend", "WskDisconnect", "WskCloseSocket"];

/** The calls on the connection of a client whose bytes are taken and not answered. */
const SINK_CONNECTION = ["WskReceive", "WskDisconnect", "WskCloseSocket"];

/**
 * Checks the status lines of an accept run that served one client: all succeeded, the listener's
 * calls around the one connection's `calls`. Returns the connection's lines.
 */
function assertOneClientRun(
  output: string,
  listenerLocal: string,
  clientLocal: string,
  calls: string[],
): Record<string, string>[] {
  const lines = statusLines(output);
  assertAllSucceeded(lines);
  assert.deepEqual(callsOf(lines), [
    "WskSocket",
    "WskBind",
    "WskAccept",
    ...calls,
    "WskCloseSocket",
  ]);
  return connectionLines(lines, listenerLocal, clientLocal, calls);
}

// ---------------------------------------------------------------------------------------------
// accept

Deno.test("accept --count 50 --mode echo echoes 50 concurrent clients and reports each connection", async () => {
  const count = 50;
  await using cli = new CliChild(["accept", "--count", String(count), "--mode", "echo"]);
  const listenerLocal = await cli.bindLocal("stdout");
  assert.match(listenerLocal, /^127\.0\.0\.1:\d+$/, "the default LOCAL is 127.0.0.1:0");
  const port = portOf(listenerLocal);
  assert.notEqual(port, 0, "the WskBind line shows the real port");
  const runs = await within(
    Promise.all(Array.from({ length: count }, (_, i) => {
      const payload = new Uint8Array([
        ...text.encode(`client ${i}\n`),
        ...randomBytes(i * 4099),
      ]);
      return client("127.0.0.1", port, payload);
    })),
    30_000,
    "50 echo clients",
  );
  for (const run of runs) {
    assert.equal(run.got.length, run.sent.length, `${run.local} length`);
    assert.deepEqual(run.got, run.sent, `${run.local} got its own bytes back`);
  }
  assert.equal(await cli.exitCode(), 0, cli.stderr.text());
  assert.equal(cli.stderr.text(), "");
  const lines = statusLines(cli.stdout.text());
  assertAllSucceeded(lines);
  assert.deepEqual(callsOf(lines.slice(0, 2)), ["WskSocket", "WskBind"]);
  const listener = lines[1]!.socket;
  assert.equal(lines.at(-1)!.call, "WskCloseSocket");
  assert.equal(lines.at(-1)!.socket, listener);
  assert.equal(lines.length, 2 + count * 5 + 1);
  assert.equal(lines.filter((line) => line.call === "WskAccept").length, count);
  for (const run of runs) {
    const own = connectionLines(lines, listenerLocal, run.local, ECHO_CONNECTION);
    assert.notEqual(own[0]!.socket, listener);
    assert.equal(own[1]!.bytes, String(run.sent.length), `${run.local} WskReceive bytes`);
    assert.equal(own[2]!.bytes, String(run.sent.length), `${run.local} WskSend bytes`);
  }
});

Deno.test("accept --mode discard counts the bytes received and sends nothing back", async () => {
  await using cli = new CliChild(["accept", "--mode", "discard"]);
  const listenerLocal = await cli.bindLocal("stdout");
  const run = await within(
    client("127.0.0.1", portOf(listenerLocal), randomBytes(1024 * 1024 + 3)),
    15_000,
    "discard client",
  );
  assert.equal(run.got.length, 0, "nothing comes back");
  assert.equal(await cli.exitCode(), 0, cli.stderr.text());
  assert.equal(cli.stderr.text(), "");
  const own = assertOneClientRun(cli.stdout.text(), listenerLocal, run.local, SINK_CONNECTION);
  assert.equal(own[1]!.bytes, String(run.sent.length));
});

Deno.test("accept --mode print writes the payload byte-exact to stdout and status lines to stderr", async () => {
  await using cli = new CliChild(["accept", "--mode", "print"]);
  const listenerLocal = await cli.bindLocal("stderr");
  const payload = new Uint8Array([
    ...Array.from({ length: 256 }, (_, i) => i),
    ...randomBytes(300_000),
  ]);
  const run = await within(
    client("127.0.0.1", portOf(listenerLocal), payload),
    15_000,
    "print client",
  );
  assert.equal(run.got.length, 0);
  assert.equal(await cli.exitCode(), 0, cli.stderr.text());
  assert.deepEqual(cli.stdout.bytes(), payload);
  const own = assertOneClientRun(cli.stderr.text(), listenerLocal, run.local, SINK_CONNECTION);
  assert.equal(own[1]!.bytes, String(payload.length));
  assert.equal(own[1]!.data, undefined, "printed payload is not repeated in the status line");
});

Deno.test("accept --mode reply sends the --reply bytes then a FIN", async () => {
  await using cli = new CliChild([
    "accept",
    "--mode",
    "reply",
    "--reply",
    String.raw`HTTP/1.0 200 OK\r\n\r\nhi`,
  ]);
  const listenerLocal = await cli.bindLocal("stdout");
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: portOf(listenerLocal) });
  const clientLocal = `127.0.0.1:${conn.localAddr.port}`;
  let got;
  try {
    got = await within(readAll(conn), 15_000, "the reply and EOF");
  } finally {
    conn.close();
  }
  assert.equal(got.error, null);
  assert.equal(text.decode(got.bytes), "HTTP/1.0 200 OK\r\n\r\nhi");
  assert.equal(await cli.exitCode(), 0, cli.stderr.text());
  assert.equal(cli.stderr.text(), "");
  const own = assertOneClientRun(cli.stdout.text(), listenerLocal, clientLocal, [
    "WskSend",
    "WskDisconnect",
    "WskReceive",
    "WskCloseSocket",
  ]);
  assert.equal(own[1]!.bytes, "21");
  assert.equal(own[3]!.bytes, "0");
});

Deno.test("accept [::1]:0 listens on IPv6 loopback and shows bracketed addresses", async () => {
  await using cli = new CliChild(["accept", "[::1]:0", "--mode", "echo"]);
  const listenerLocal = await cli.bindLocal("stdout");
  assert.match(listenerLocal, /^\[::1\]:\d+$/);
  const port = portOf(listenerLocal);
  assert.notEqual(port, 0);
  const run = await within(client("::1", port, text.encode("hello over v6")), 15_000, "v6 client");
  assert.equal(text.decode(run.got), "hello over v6");
  assert.equal(await cli.exitCode(), 0, cli.stderr.text());
  assert.equal(cli.stderr.text(), "");
  const lines = statusLines(cli.stdout.text());
  assertAllSucceeded(lines);
  const own = connectionLines(lines, listenerLocal, run.local, ECHO_CONNECTION);
  assert.match(own[0]!.remote!, /^\[::1\]:\d+$/);
  assert.equal(own[1]!.bytes, "13");
  assert.equal(own[2]!.bytes, "13");
});

Deno.test("accept --timeout 300 completes WskAccept with STATUS_IO_TIMEOUT and exits 1 when no client comes", async () => {
  const start = performance.now();
  const result = await runCli(["accept", "--timeout", "300"], { timeoutMs: 15_000 });
  const wall = performance.now() - start;
  assert.equal(result.stderr, "");
  const lines = statusLines(result.stdout);
  assert.deepEqual(callsOf(lines), ["WskSocket", "WskBind", "WskAccept", "WskCloseSocket"]);
  const accept = lines[2]!;
  assert.equal(accept.status, "STATUS_IO_TIMEOUT");
  assert.equal(accept.ntstatus, "0xC00000B5");
  assert.equal(accept.local, lines[1]!.local);
  assert.equal(accept.remote, undefined);
  const waited = Number(accept.time!.replace(/ms$/, ""));
  assert.ok(waited >= 250 && waited < 2000, `WskAccept waited ${waited} ms`);
  assert.equal(result.code, 1);
  assert.ok(wall < 5000, `the run took ${wall} ms`);
});

Deno.test("accept --json writes JSON Lines whose WskBind local has the real port", async () => {
  await using cli = new CliChild(["accept", "--json", "--mode", "echo"]);
  const bind = await cli.stdout.waitFor(
    () =>
      cli.stdout.lines().map((line) => JSON.parse(line)).find((object) =>
        object.call === "WskBind"
      ),
    15_000,
    "the WskBind JSON line",
  );
  assert.match(bind.local, /^127\.0\.0\.1:\d+$/);
  const port = portOf(bind.local);
  assert.notEqual(port, 0);
  const run = await within(client("127.0.0.1", port, text.encode("json echo")), 15_000, "client");
  assert.equal(text.decode(run.got), "json echo");
  assert.equal(await cli.exitCode(), 0, cli.stderr.text());
  assert.equal(cli.stderr.text(), "");
  const objects = cli.stdout.lines().map((line) => JSON.parse(line));
  assert.deepEqual(objects.map((object) => object.call), [
    "WskSocket",
    "WskBind",
    "WskAccept",
    "WskReceive",
    "WskSend",
    "WskDisconnect",
    "WskCloseSocket",
    "WskCloseSocket",
  ]);
  for (const object of objects) {
    assert.equal(object.status, "STATUS_SUCCESS");
    assert.equal(object.ntstatus, "0x00000000");
    assert.equal(typeof object.information, "number");
    assert.equal(typeof object.socket, "number");
  }
  const accept = objects[2];
  assert.equal(accept.local, bind.local);
  assert.equal(accept.remote, run.local);
  assert.notEqual(accept.socket, bind.socket);
  for (const object of objects.slice(3, 7)) {
    assert.equal(object.socket, accept.socket);
    assert.equal(object.local, bind.local);
    assert.equal(object.remote, run.local);
  }
  assert.equal(objects[3].information, 9);
  assert.equal(objects[4].information, 9);
  assert.equal(objects[7].socket, bind.socket);
});

// ---------------------------------------------------------------------------------------------
// demo

Deno.test("demo walks every dispatch function, one parseable status line each, and exits 0", async () => {
  const result = await runCli(["demo"]);
  assert.equal(result.stderr, "");
  assert.equal(result.code, 0);
  const lines = statusLines(result.stdout);
  const calls = new Set(callsOf(lines));
  for (const call of DISPATCH_CALLS) assert.ok(calls.has(call), `demo shows ${call}`);
  // The listener the demo binds is the one every WskAccept reports on.
  const bind = lines.find((line) => line.call === "WskBind")!;
  assert.match(bind.local!, /^127\.0\.0\.1:[1-9]\d*$/);
  for (const accept of lines.filter((line) => line.call === "WskAccept")) {
    assert.equal(accept.local, bind.local);
    assert.equal(accept.status, "STATUS_SUCCESS");
  }
});

Deno.test("demo --json writes only JSON Lines with a call, a status and an 0x-hex ntstatus", async () => {
  const result = await runCli(["demo", "--json"]);
  assert.equal(result.stderr, "");
  assert.equal(result.code, 0);
  const lines = result.stdout.split("\n");
  assert.equal(lines.pop(), "");
  assert.ok(lines.length >= DISPATCH_CALLS.length);
  const calls = new Set<string>();
  for (const line of lines) {
    const object = JSON.parse(line);
    assert.match(object.call, /^Wsk[A-Za-z]+$/, line);
    assert.match(object.status, /^STATUS_[A-Z_]+$/, line);
    assert.match(object.ntstatus, HEX_STATUS, line);
    assert.equal(typeof object.information, "number", line);
    assert.equal(typeof object.elapsed_ms, "number", line);
    calls.add(object.call);
  }
  for (const call of DISPATCH_CALLS) assert.ok(calls.has(call), `demo --json shows ${call}`);
});

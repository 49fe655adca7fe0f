// `wsk accept` and `wsk demo` end to end. accept runs as a spawned child: the test reads its
// output until the WskBind line, takes the port it really bound (it binds port 0), drives Deno
// and python3 clients against it and checks every line the child printed against what the
// clients did and saw (their bytes, a FIN or a reset).

import assert from "node:assert/strict";
import { fillPattern, patternByte } from "../../engine/pattern.ts";
import { parseCidr, refusalOf } from "../../engine/cidr.ts";
import { FFI, hex, readAll, runCli, sleep, text, within } from "../_helpers.ts";
import { type ClientHow, type ClientReport, PythonPeer } from "../_python.ts";
import {
  assertAllSucceeded,
  assertUsageFails,
  callsOf,
  CliChild,
  DISPATCH_CALLS,
  HEX_STATUS,
  portOf,
  randomBytes,
  statusLines,
} from "./_peer.ts";

// ---------------------------------------------------------------------------------------------
// Helpers local to this file

/**
 * The CLI as a child whose standard output nobody reads: a pipe that fills up, as in
 * `wsk accept --mode print | sleep 20`, until closeStdout() closes it (its writes then fail
 * with EPIPE, as after `| head -c 10`). Status lines (on stderr in print mode) are collected.
 */
function heldStdoutChild(args: string[]): CliChild {
  return new CliChild(args, [], [], { stdout: "held" });
}

/**
 * Connects a Deno client to `port` and starts writing `size` random bytes without half-closing.
 * The write's promise settles with its error, if any (the server may close the connection).
 */
async function floodClient(
  port: number,
  size: number,
): Promise<{ conn: Deno.TcpConn; local: string; writing: Promise<unknown> }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const writing = writeAll(conn, randomBytes(size)).then(() => null, (error) => error);
  return { conn, local: `127.0.0.1:${conn.localAddr.port}`, writing };
}

/**
 * The dropped byte count a Summary message names, checked against the message's grammar. A
 * write abandoned while blocked may have put part of its bytes out, hence "up to".
 */
function droppedIn(message: string | undefined, cause: string): number {
  const match = new RegExp(
    `^${cause}; up to (\\d+) received bytes were dropped: standard output had not taken them$`,
  ).exec(message ?? "");
  assert.ok(match, `the Summary message: ${message}`);
  return Number(match[1]);
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

/** How a pattern client's connection ended, as the client saw it. */
interface PatternRun {
  readonly local: string;
  /** "eof": the server's FIN; "reset": a reset while writing or reading. */
  readonly end: "eof" | "reset";
}

/**
 * Sends `size` bytes of the pattern (engine/pattern.ts), with the byte at `corrupt` flipped,
 * half-closes and reads until EOF or a reset.
 */
async function patternClient(port: number, size: number, corrupt = -1): Promise<PatternRun> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const local = `127.0.0.1:${conn.localAddr.port}`;
  try {
    const chunk = new Uint8Array(256 * 1024);
    for (let offset = 0; offset < size;) {
      const n = Math.min(chunk.length, size - offset);
      const part = chunk.subarray(0, n);
      fillPattern(part, offset);
      if (corrupt >= offset && corrupt < offset + n) part[corrupt - offset]! ^= 0xff;
      await writeAll(conn, part);
      offset += n;
    }
    await conn.closeWrite();
    const { bytes, error } = await readAll(conn);
    assert.equal(bytes.length, 0, "the verifier sends nothing");
    if (error === null) return { local, end: "eof" };
    assert.ok(error instanceof Deno.errors.ConnectionReset, `client saw ${error}`);
    return { local, end: "reset" };
  } catch (error) {
    // The server's reset can also fail a write (EPIPE or ECONNRESET).
    const reset = error instanceof Deno.errors.ConnectionReset ||
      error instanceof Deno.errors.BrokenPipe;
    if (!reset) throw error;
    return { local, end: "reset" };
  } finally {
    conn.close();
  }
}

/**
 * Starts the python client and waits until it is ready (bound, its start-up over) before the
 * server it will reach is known: a python3 that is slow to start (a pyenv shim takes 0.3–0.5 s)
 * then adds nothing to the time between the server's first call and the connection. Its
 * `address` is its own, as the server will see it.
 */
function startPythonClient(
  payload: string,
  how: ClientHow,
  source = "127.0.0.1",
): Promise<PythonPeer<ClientReport>> {
  return PythonPeer.client(source, "127.0.0.1", null, hex(payload), how);
}

/**
 * Connects a ready client to `port` and runs it to the end; its report. With "reset",
 * `beforeReset(local)` runs once the payload was sent, and the reset follows it.
 */
async function runPythonClient(
  python: PythonPeer<ClientReport>,
  port: number,
  how: ClientHow,
  payload = "",
  beforeReset: (local: string) => Promise<void> = () => Promise.resolve(),
): Promise<ClientReport> {
  await python.writeLine(String(port));
  if (how === "reset") {
    assert.deepEqual(await python.json(), { sent: text.encode(payload).length });
    await beforeReset(python.address);
    await python.writeLine("go");
  }
  return await python.json<ClientReport>();
}

/**
 * Runs the python client to its end; its address as the server sees it and its report. With
 * "reset", `beforeReset(local)` runs once the payload was sent, and the reset follows it.
 */
async function pythonClient(
  port: number,
  payload: string,
  how: ClientHow,
  source = "127.0.0.1",
  beforeReset: (local: string) => Promise<void> = () => Promise.resolve(),
): Promise<{ local: string; seen: ClientReport }> {
  await using python = await startPythonClient(payload, how, source);
  const seen = await runPythonClient(python, port, how, payload, beforeReset);
  return { local: python.address, seen };
}

/** Every line of accept's output, parsed: WSK calls and events, and Summary lines. */
function acceptLines(output: string): Record<string, string>[] {
  return statusLines(output, /^(Wsk[A-Za-z]+|Summary)$/);
}

/** The expected end of one connection's Summary line. */
interface SummaryExpected {
  readonly status?: string;
  readonly ntstatus?: string;
  readonly end: string;
  readonly received: number;
  readonly sent: number;
  readonly message?: string;
}

/** Asserts a Summary line: its status, how the connection ended and the bytes both ways. */
function assertSummary(line: Record<string, string>, expected: SummaryExpected): void {
  assert.equal(line.call, "Summary");
  assert.equal(line.status, expected.status ?? "STATUS_SUCCESS", JSON.stringify(line));
  assert.equal(line.ntstatus, expected.ntstatus ?? "0x00000000");
  assert.equal(line.value, expected.end, `how it ended: ${JSON.stringify(line)}`);
  assert.equal(line.received, String(expected.received), "received=");
  assert.equal(line.sent, String(expected.sent), "sent=");
  assert.equal(line.bytes, String(expected.received + expected.sent), "bytes= is both ways");
  assert.equal(line.message, expected.message);
}

/**
 * Checks the lines of one connection: its accept line (WskAccept, or WskAcceptEvent), then
 * `calls` in order and the Summary, all on the accepted socket with the listener's local address
 * and the client's remote one. Returns the connection's lines.
 */
function connectionLines(
  lines: Record<string, string>[],
  listenerLocal: string,
  clientLocal: string,
  calls: string[],
  accept = "WskAccept",
): Record<string, string>[] {
  const accepts = lines.filter((line) => line.call === accept && line.remote === clientLocal);
  assert.equal(accepts.length, 1, `one ${accept} for ${clientLocal}`);
  const first = accepts[0]!;
  assert.equal(first.local, listenerLocal);
  const own = lines.filter((line) => line.socket === first.socket);
  assert.deepEqual(callsOf(own), [accept, ...calls, "Summary"], `calls of ${clientLocal}`);
  for (const line of own) {
    assert.equal(line.local, listenerLocal, `${line.call} local`);
    assert.equal(line.remote, clientLocal, `${line.call} remote`);
  }
  return own;
}

/** The calls on the connection of a client that sends, reads the echo and half-closes. */
const ECHO_CONNECTION = ["WskReceive", "WskSend", "WskDisconnect", "WskCloseSocket"];

/** The calls of one echoed connection with --events, after its WskAcceptEvent. */
const EVENT_ECHO_CONNECTION = [
  "WskReceiveEvent",
  "WskSend",
  "WskRelease",
  "WskDisconnectEvent",
  "WskDisconnect",
  "WskCloseSocket",
];

/** The calls on the connection of a client whose bytes are taken and not answered. */
const SINK_CONNECTION = ["WskReceive", "WskDisconnect", "WskCloseSocket"];

/** The same through events: the receive line is the aggregate of the WskReceiveEvent calls. */
const EVENT_SINK_CONNECTION = [
  "WskReceiveEvent",
  "WskDisconnectEvent",
  "WskDisconnect",
  "WskCloseSocket",
];

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
  const lines = acceptLines(output);
  assertAllSucceeded(lines);
  assert.deepEqual(callsOf(lines), [
    "WskSocket",
    "WskBind",
    "WskAccept",
    ...calls,
    "Summary",
    "WskCloseSocket",
  ]);
  return connectionLines(lines, listenerLocal, clientLocal, calls);
}

// ---------------------------------------------------------------------------------------------
// accept: modes

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
  const lines = acceptLines(cli.stdout.text());
  assertAllSucceeded(lines);
  assert.deepEqual(callsOf(lines.slice(0, 2)), ["WskSocket", "WskBind"]);
  const listener = lines[1]!.socket;
  assert.equal(lines.at(-1)!.call, "WskCloseSocket");
  assert.equal(lines.at(-1)!.socket, listener);
  assert.equal(lines.length, 2 + count * 6 + 1);
  assert.equal(lines.filter((line) => line.call === "WskAccept").length, count);
  for (const run of runs) {
    const own = connectionLines(lines, listenerLocal, run.local, ECHO_CONNECTION);
    assert.notEqual(own[0]!.socket, listener);
    assert.equal(own[1]!.bytes, String(run.sent.length), `${run.local} WskReceive bytes`);
    assert.equal(own[2]!.bytes, String(run.sent.length), `${run.local} WskSend bytes`);
    assertSummary(own[5]!, {
      end: "graceful",
      received: run.sent.length,
      sent: run.sent.length,
    });
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
  assertSummary(own[4]!, { end: "graceful", received: run.sent.length, sent: 0 });
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
  assertSummary(own[4]!, { end: "graceful", received: payload.length, sent: 0 });
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
  assertSummary(own[5]!, { end: "graceful", received: 0, sent: 21 });
});

/** A reply file kept in the repository: the tests may read but not write files. */
const REPLY_FILE = new URL("./accept_reply.http", import.meta.url).pathname;

Deno.test("accept --reply-file sends the file's bytes (and implies --mode reply); what the client sent is shown", async () => {
  const reply = await Deno.readFile(REPLY_FILE);
  assert.ok(reply.includes(0x0d), "the fixture has CRLF line ends");
  await using cli = new CliChild(["accept", "--reply-file", REPLY_FILE]);
  const listenerLocal = await cli.bindLocal("stdout");
  const { local, seen } = await pythonClient(
    portOf(listenerLocal),
    "GET / HTTP/1.0\r\n\r\n",
    "close",
  );
  assert.equal(seen.end, "eof");
  assert.deepEqual(Uint8Array.from(seen.data.match(/../g)!.map((h) => parseInt(h, 16))), reply);
  assert.equal(await cli.exitCode(), 0, cli.stderr.text());
  assert.equal(cli.stderr.text(), "");
  const own = assertOneClientRun(cli.stdout.text(), listenerLocal, local, [
    "WskSend",
    "WskDisconnect",
    "WskReceive",
    "WskCloseSocket",
  ]);
  assert.equal(own[1]!.bytes, String(reply.length));
  assert.equal(own[3]!.bytes, "18");
  assert.equal(own[3]!.data, "GET / HTTP/1.0\r\n\r\n", "the drained request is shown");
  assertSummary(own[5]!, { end: "graceful", received: 18, sent: reply.length });
});

Deno.test("accept --reply-file that cannot be read is a usage error before any socket opens", async () => {
  const missing = new URL("./no_such_reply_file", import.meta.url).pathname;
  const folder = new URL(".", import.meta.url).pathname.replace(/\/$/, "");
  for (const [path, reason] of [[missing, "No such file"], [folder, "it is a directory"]]) {
    const result = await runCli(["accept", "--reply-file", path!]);
    assert.equal(result.code, 2, result.stderr);
    assert.equal(result.stdout, "", "no socket was opened");
    const lines = result.stderr.split("\n");
    assert.equal(lines.length, 2, result.stderr);
    assert.ok(
      lines[0]!.startsWith(`error: Cannot read reply file "${path}": `),
      result.stderr,
    );
    assert.ok(lines[0]!.includes(reason!), result.stderr);
  }
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
  const lines = acceptLines(cli.stdout.text());
  assertAllSucceeded(lines);
  const own = connectionLines(lines, listenerLocal, run.local, ECHO_CONNECTION);
  assert.match(own[0]!.remote!, /^\[::1\]:\d+$/);
  assert.equal(own[1]!.bytes, "13");
  assert.equal(own[2]!.bytes, "13");
  assertSummary(own[5]!, { end: "graceful", received: 13, sent: 13 });
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

Deno.test("accept --json writes JSON Lines whose WskBind local has the real port, and a Summary object", async () => {
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
    "Summary",
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
  for (const object of objects.slice(3, 8)) {
    assert.equal(object.socket, accept.socket);
    assert.equal(object.local, bind.local);
    assert.equal(object.remote, run.local);
  }
  assert.equal(objects[3].information, 9);
  assert.equal(objects[4].information, 9);
  const { elapsed_ms: elapsed, ...summary } = objects[7];
  assert.equal(typeof elapsed, "number");
  assert.deepEqual(summary, {
    call: "Summary",
    status: "STATUS_SUCCESS",
    ntstatus: "0x00000000",
    information: 18,
    socket: accept.socket,
    local: bind.local,
    remote: run.local,
    value: "graceful",
    received: 9,
    sent: 9,
  });
  assert.equal(objects[8].socket, bind.socket);
});

// ---------------------------------------------------------------------------------------------
// accept: summary lines for connections that do not end gracefully

Deno.test("accept: a peer that resets gets a Summary with STATUS_CONNECTION_RESET and value=reset (exit 1)", async () => {
  await using cli = new CliChild(["accept", "--mode", "discard"]);
  const listenerLocal = await cli.bindLocal("stdout");
  // The reset comes once the connection was accepted and its bytes had time to arrive.
  const { local, seen } = await pythonClient(
    portOf(listenerLocal),
    "before reset",
    "reset",
    "127.0.0.1",
    async (local) => {
      await cli.lineWhere(
        "stdout",
        (line) => line.call === "WskAccept" && line.remote === local,
        "the WskAccept line",
      );
      await sleep(100);
    },
  );
  assert.equal(seen.end, "sent-reset");
  assert.equal(await cli.exitCode(), 1, cli.stderr.text());
  assert.equal(cli.stderr.text(), "");
  const lines = acceptLines(cli.stdout.text());
  const own = connectionLines(lines, listenerLocal, local, ["WskReceive", "WskCloseSocket"]);
  assert.equal(own[1]!.status, "STATUS_CONNECTION_RESET");
  assert.equal(own[1]!.bytes, "12", "the bytes before the reset");
  assertSummary(own[3]!, {
    status: "STATUS_CONNECTION_RESET",
    ntstatus: "0xC000020D",
    end: "reset",
    received: 12,
    sent: 0,
    message: own[1]!.message!,
  });
});

Deno.test("accept --timeout 1000: a silent peer gets WskReceive STATUS_IO_TIMEOUT and a Summary with value=timeout", async () => {
  // --timeout also bounds the wait for the connection: the client is started (and ready)
  // before the server, so only a line on its stdin stands between the WskBind line and it.
  await using python = await startPythonClient("", "hold");
  await using cli = new CliChild(["accept", "--mode", "echo", "--timeout", "1000"]);
  const listenerLocal = await cli.bindLocal("stdout");
  const seen = await runPythonClient(python, portOf(listenerLocal), "hold");
  const local = python.address;
  // The server gave up on the connection: a FIN (deno backing) after nothing came back.
  assert.deepEqual(seen, { data: "", end: "eof" });
  assert.equal(await cli.exitCode(), 1, cli.stderr.text());
  const lines = acceptLines(cli.stdout.text());
  const own = connectionLines(lines, listenerLocal, local, [
    "WskReceive",
    "WskSend",
    "WskCloseSocket",
  ]);
  assert.equal(own[1]!.status, "STATUS_IO_TIMEOUT");
  assert.equal(own[1]!.calls, "1");
  const waited = Number(own[1]!.time!.replace(/ms$/, ""));
  assert.ok(waited >= 950 && waited < 5000, `the receive waited ${waited} ms`);
  assertSummary(own[4]!, {
    status: "STATUS_IO_TIMEOUT",
    ntstatus: "0xC00000B5",
    end: "timeout",
    received: 0,
    sent: 0,
    message: own[1]!.message!,
  });
});

// ---------------------------------------------------------------------------------------------
// accept --mode verify

Deno.test("accept --mode verify: a correct 3 MB pattern stream passes (exit 0, graceful Summary)", async () => {
  await using cli = new CliChild(["accept", "--mode", "verify"]);
  const listenerLocal = await cli.bindLocal("stdout");
  const size = 3_000_000;
  const run = await within(patternClient(portOf(listenerLocal), size), 15_000, "pattern client");
  assert.equal(run.end, "eof");
  assert.equal(await cli.exitCode(), 0, cli.stderr.text());
  assert.equal(cli.stderr.text(), "");
  const own = assertOneClientRun(cli.stdout.text(), listenerLocal, run.local, SINK_CONNECTION);
  assert.equal(own[1]!.bytes, String(size));
  assertSummary(own[4]!, { end: "graceful", received: size, sent: 0 });
});

for (
  const { how, backing, permissions, reset } of [
    // The default deno backing without --allow-ffi can only close with a FIN (what the sender
    // sees then depends on its timing); node-backed sockets, or deno ones with --allow-ffi, reset.
    { how: "deno backing: closed, peer_saw=FIN", backing: [], permissions: [], reset: false },
    { how: "--backing node: reset", backing: ["--backing", "node"], permissions: [], reset: true },
    { how: "deno backing, --allow-ffi: reset", backing: [], permissions: [FFI], reset: true },
  ]
) {
  Deno.test(`accept --mode verify catches a corrupted byte at its offset: STATUS_DATA_ERROR, exit 1 (${how})`, async () => {
    const size = 3_000_000;
    const corrupt = 2_345_678;
    await using cli = new CliChild(["accept", "--mode", "verify", ...backing], permissions);
    const listenerLocal = await cli.bindLocal("stdout");
    const run = await within(
      patternClient(portOf(listenerLocal), size, corrupt),
      15_000,
      "pattern client",
    );
    if (reset) assert.equal(run.end, "reset", "the verifier resets the sender");
    assert.equal(await cli.exitCode(), 1, cli.stderr.text());
    assert.equal(cli.stderr.text(), "");
    const lines = acceptLines(cli.stdout.text());
    const own = connectionLines(
      lines,
      listenerLocal,
      run.local,
      ["WskReceive", "WskDisconnect", "WskCloseSocket"],
    );
    const want = patternByte(corrupt);
    const hex = (byte: number) => "0x" + byte.toString(16).toUpperCase().padStart(2, "0");
    const message = `first mismatch at offset ${corrupt}: expected ${hex(want)}, got ${
      hex(want ^ 0xff)
    }`;
    assert.equal(own[1]!.status, "STATUS_DATA_ERROR");
    assert.equal(own[1]!.ntstatus, "0xC000003E");
    assert.equal(own[1]!.message, message);
    const received = Number(own[1]!.bytes);
    assert.ok(received > corrupt && received <= size, `received ${received}`);
    assert.equal(own[2]!.value, "abortive");
    assert.equal(own[2]!.peer_saw, reset ? "RST" : "FIN");
    assert.equal(own.at(-1)!.peer_saw, reset ? "RST" : "FIN");
    assertSummary(own.at(-1)!, {
      status: "STATUS_DATA_ERROR",
      ntstatus: "0xC000003E",
      end: "local-close",
      received: Number(own.at(-1)!.received),
      sent: 0,
      message,
    });
    assert.ok(Number(own.at(-1)!.received) >= received, "the Summary counts every byte read");
  });
}

for (
  const { what, size, expected, message } of [
    { what: "too few", size: 999, expected: "1000", message: "too few bytes: 999 of 1000" },
    { what: "too many", size: 1001, expected: "1000", message: "too many bytes: more than 1000" },
  ]
) {
  Deno.test(`accept --mode verify --verify-bytes ${expected} catches ${what} bytes (${size}) with STATUS_DATA_ERROR`, async () => {
    await using cli = new CliChild(["accept", "--mode", "verify", "--verify-bytes", expected]);
    const listenerLocal = await cli.bindLocal("stdout");
    const run = await within(patternClient(portOf(listenerLocal), size), 15_000, "client");
    assert.equal(await cli.exitCode(), 1, cli.stderr.text());
    const lines = acceptLines(cli.stdout.text());
    // A failed verification aborts: the default deno backing (no --allow-ffi) closes, a FIN.
    const own = connectionLines(lines, listenerLocal, run.local, [
      "WskReceive",
      "WskDisconnect",
      "WskCloseSocket",
    ]);
    assert.equal(own[1]!.status, "STATUS_DATA_ERROR");
    assert.equal(own[1]!.message, message);
    assert.equal(own[1]!.bytes, String(size));
    assert.equal(own[2]!.value, "abortive");
    assert.equal(own[2]!.peer_saw, "FIN");
    assertSummary(own[4]!, {
      status: "STATUS_DATA_ERROR",
      ntstatus: "0xC000003E",
      end: "local-close",
      received: size,
      sent: 0,
      message,
    });
  });
}

Deno.test("accept --verify-bytes 64K (which implies --mode verify) passes exactly 65536 pattern bytes", async () => {
  await using cli = new CliChild(["accept", "--verify-bytes", "64K"]);
  const listenerLocal = await cli.bindLocal("stdout");
  const run = await within(patternClient(portOf(listenerLocal), 65536), 15_000, "client");
  assert.equal(run.end, "eof");
  assert.equal(await cli.exitCode(), 0, cli.stderr.text());
  const own = assertOneClientRun(cli.stdout.text(), listenerLocal, run.local, SINK_CONNECTION);
  assertSummary(own[4]!, { end: "graceful", received: 65536, sent: 0 });
});

// ---------------------------------------------------------------------------------------------
// accept --allow / --deny

Deno.test("accept --deny: a denied peer is reset and reported as not accepted; it does not count toward --count", async () => {
  // All of 127.0.0.0/8 is loopback on Linux: python binds 127.0.0.2 as its source address.
  await using cli = new CliChild(["accept", "--count", "1", "--deny", "127.0.0.2/32"]);
  const listenerLocal = await cli.bindLocal("stdout");
  const port = portOf(listenerLocal);
  const denied = await pythonClient(port, "let me in", "close", "127.0.0.2");
  assert.deepEqual(denied.seen, { data: "", end: "reset" });
  const deniedSummary = await cli.lineOf(
    "Summary",
    acceptLines(cli.stdout.text()).find((line) => line.remote === denied.local)!.socket!,
  );
  assert.equal(deniedSummary.status, "STATUS_REQUEST_NOT_ACCEPTED");
  const allowed = await pythonClient(port, "hello", "close");
  assert.deepEqual(allowed.seen, { data: "68656c6c6f", end: "eof" });
  assert.equal(await cli.exitCode(), 0, cli.stderr.text());
  assert.equal(cli.stderr.text(), "");
  const lines = acceptLines(cli.stdout.text());
  const refused = connectionLines(lines, listenerLocal, denied.local, [
    "WskDisconnect",
    "WskCloseSocket",
  ]);
  assert.equal(refused[0]!.status, "STATUS_SUCCESS", "the WskAccept itself completed");
  assert.equal(refused[1]!.value, "abortive");
  assertSummary(refused[3]!, {
    status: "STATUS_REQUEST_NOT_ACCEPTED",
    ntstatus: "0xC00000D0",
    end: "local-close",
    received: 0,
    sent: 0,
    message: "127.0.0.2 is refused by --deny 127.0.0.2/32",
  });
  const served = connectionLines(lines, listenerLocal, allowed.local, ECHO_CONNECTION);
  assertSummary(served[5]!, { end: "graceful", received: 5, sent: 5 });
  assert.equal(lines.filter((line) => line.call === "WskAccept").length, 2);
});

Deno.test("accept --events --allow: a peer outside the network gets WskAcceptEvent STATUS_REQUEST_NOT_ACCEPTED and a reset", async () => {
  await using cli = new CliChild([
    "accept",
    "--events",
    "--allow",
    "127.0.0.1",
    "--allow",
    "::1/128",
  ]);
  const listenerLocal = await cli.bindLocal("stdout");
  const port = portOf(listenerLocal);
  const denied = await pythonClient(port, "x", "close", "127.0.0.3");
  assert.deepEqual(denied.seen, { data: "", end: "reset" });
  const allowed = await pythonClient(port, "hey", "close");
  assert.deepEqual(allowed.seen, { data: "686579", end: "eof" });
  assert.equal(await cli.exitCode(), 0, cli.stderr.text());
  assert.equal(cli.stderr.text(), "");
  const lines = acceptLines(cli.stdout.text());
  const refused = connectionLines(lines, listenerLocal, denied.local, [], "WskAcceptEvent");
  assert.equal(refused[0]!.status, "STATUS_REQUEST_NOT_ACCEPTED");
  assert.equal(refused[0]!.message, "127.0.0.3 matches no --allow network");
  assertSummary(refused[1]!, {
    status: "STATUS_REQUEST_NOT_ACCEPTED",
    ntstatus: "0xC00000D0",
    end: "local-close",
    received: 0,
    sent: 0,
    message: "127.0.0.3 matches no --allow network",
  });
  const served = connectionLines(
    lines,
    listenerLocal,
    allowed.local,
    EVENT_ECHO_CONNECTION,
    "WskAcceptEvent",
  );
  assertAllSucceeded(served);
  assertSummary(served[7]!, { end: "graceful", received: 3, sent: 3 });
});

Deno.test("parseCidr() and refusalOf() accept strict IPv4 and IPv6 networks and match peers", () => {
  const table: { allow: string[]; deny: string[]; peer: string; refused: string | null }[] = [
    { allow: [], deny: [], peer: "10.1.2.3", refused: null },
    { allow: ["10.0.0.0/8"], deny: [], peer: "10.1.2.3", refused: null },
    {
      allow: ["10.0.0.0/8"],
      deny: [],
      peer: "11.1.2.3",
      refused: "11.1.2.3 matches no --allow network",
    },
    {
      allow: ["10.0.0.0/8"],
      deny: ["10.1.0.0/16"],
      peer: "10.1.2.3",
      refused: "10.1.2.3 is refused by --deny 10.1.0.0/16",
    },
    { allow: ["0.0.0.0/0"], deny: [], peer: "::ffff:192.0.2.7", refused: null },
    { allow: ["2001:db8::/32"], deny: [], peer: "2001:db8::1", refused: null },
    {
      allow: ["2001:db8::/32"],
      deny: [],
      peer: "127.0.0.1",
      refused: "127.0.0.1 matches no --allow network",
    },
    { allow: [], deny: ["::1"], peer: "::1", refused: "::1 is refused by --deny ::1" },
    { allow: [], deny: ["::1"], peer: "127.0.0.1", refused: null },
  ];
  for (const { allow, deny, peer, refused } of table) {
    assert.equal(
      refusalOf(peer, allow.map(parseCidr), deny.map(parseCidr)),
      refused,
      `${peer} with allow ${allow} deny ${deny}`,
    );
  }
});

for (
  const { value, reason } of [
    { value: "10.0.0.0/33", reason: "the prefix must be an integer from 0 to 32" },
    { value: "::/129", reason: "the prefix must be an integer from 0 to 128" },
    { value: "10.0.0.0/08", reason: "the prefix must be an integer from 0 to 32" },
    { value: "10.0.0.0/", reason: "the prefix must be an integer from 0 to 32" },
    { value: "10.0.0.1/8", reason: "host bits are set (the network is 10.0.0.0/8)" },
    { value: "2001:db8::1/32", reason: "host bits are set (the network is 2001:db8::/32)" },
    { value: "999.1.1.1/8", reason: `"999.1.1.1" is not an IPv4 or IPv6 address` },
    { value: "10.1/16", reason: `"10.1" is not an IPv4 or IPv6 address` },
    { value: "localhost", reason: `"localhost" is not an IPv4 or IPv6 address` },
    { value: "fe80::1%2/64", reason: "a zone (%) is not allowed" },
    { value: "10.0.0.0/8/8", reason: "expected ADDRESS/PREFIX" },
  ]
) {
  Deno.test(`accept --deny "${value}" is a usage error: ${reason}`, async () => {
    await assertUsageFails(
      ["accept", "--deny", value],
      `error: option '--deny <cidr>' argument '${value}' is invalid. ` +
        `Cannot parse CIDR "${value}": ${reason}\n`,
    );
  });
}

Deno.test("accept: conflicting options are usage errors before any socket opens", async () => {
  const cases = [
    {
      args: ["--keep-open", "--count", "2"],
      stderr: "error: option '--keep-open' cannot be used with option '--count <n>'\n",
    },
    {
      args: ["--mode", "echo", "--reply", "x"],
      stderr: 'error: Cannot use --reply or --reply-file with --mode "echo"\n',
    },
    {
      args: ["--mode", "discard", "--verify-bytes", "5"],
      stderr: 'error: Cannot use --verify-bytes with --mode "discard"\n',
    },
    {
      args: ["--backing", "deno", "--deny", "10.0.0.0/8"],
      stderr: 'error: Cannot use --allow or --deny with --backing "deno" without --allow-ffi: ' +
        "refused peers must be reset\n",
    },
    {
      args: ["--verify-bytes", "1.5M"],
      stderr: "error: option '--verify-bytes <size>' argument '1.5M' is invalid. Cannot parse " +
        'size "1.5M": expected a byte count such as 4096, 64K, 8M or 1G\n',
    },
    {
      args: ["--reply", "x", "--reply-file", REPLY_FILE],
      stderr: "error: option '--reply-file <file>' cannot be used with option '--reply <text>'\n",
    },
  ];
  for (const { args, stderr } of cases) await assertUsageFails(["accept", ...args], stderr);
});

// ---------------------------------------------------------------------------------------------
// accept --events

Deno.test("accept --events --count 3 echoes concurrent clients through WskAcceptEvent and WskReceiveEvent", async () => {
  await using cli = new CliChild(["accept", "--events", "--count", "3"]);
  const listenerLocal = await cli.bindLocal("stdout");
  const port = portOf(listenerLocal);
  const runs = await within(
    Promise.all([0, 1, 2].map((i) => client("127.0.0.1", port, randomBytes(100_000 * i + 7)))),
    15_000,
    "event echo clients",
  );
  for (const run of runs) assert.deepEqual(run.got, run.sent, `${run.local} got its bytes back`);
  assert.equal(await cli.exitCode(), 0, cli.stderr.text());
  assert.equal(cli.stderr.text(), "");
  const lines = acceptLines(cli.stdout.text());
  assertAllSucceeded(lines);
  assert.deepEqual(callsOf(lines.slice(0, 3)), ["WskSocket", "WskBind", "WskControlSocket"]);
  assert.equal(lines[2]!.option, "SO_WSK_EVENT_CALLBACK");
  assert.equal(lines[2]!.value, "WSK_EVENT_ACCEPT|WSK_EVENT_RECEIVE|WSK_EVENT_DISCONNECT");
  assert.equal(lines.at(-1)!.call, "WskCloseSocket");
  assert.equal(lines.at(-1)!.socket, lines[1]!.socket);
  assert.equal(lines.length, 3 + 3 * 8 + 1);
  for (const run of runs) {
    const own = connectionLines(
      lines,
      listenerLocal,
      run.local,
      EVENT_ECHO_CONNECTION,
      "WskAcceptEvent",
    );
    const size = String(run.sent.length);
    assert.equal(own[1]!.bytes, size, "indicated");
    assert.ok(Number(own[1]!.calls) >= 1);
    assert.equal(own[2]!.bytes, size, "echoed");
    assert.equal(own[3]!.bytes, size, "released");
    assert.equal(own[3]!.calls, own[1]!.calls, "every kept indication was released");
    assert.equal(own[4]!.value, "graceful");
    assertSummary(own[7]!, { end: "graceful", received: run.sent.length, sent: run.sent.length });
  }
});

Deno.test("accept --events --mode discard takes the bytes through WskReceiveEvent", async () => {
  await using cli = new CliChild(["accept", "--events", "--mode", "discard"]);
  const listenerLocal = await cli.bindLocal("stdout");
  const run = await within(
    client("127.0.0.1", portOf(listenerLocal), randomBytes(2_000_003)),
    15_000,
    "client",
  );
  assert.equal(run.got.length, 0);
  assert.equal(await cli.exitCode(), 0, cli.stderr.text());
  const lines = acceptLines(cli.stdout.text());
  assertAllSucceeded(lines);
  const own = connectionLines(
    lines,
    listenerLocal,
    run.local,
    EVENT_SINK_CONNECTION,
    "WskAcceptEvent",
  );
  assert.equal(own[1]!.bytes, "2000003");
  assertSummary(own[5]!, { end: "graceful", received: 2_000_003, sent: 0 });
});

Deno.test("accept --events --mode print writes the payload byte-exact to stdout", async () => {
  await using cli = new CliChild(["accept", "--events", "--mode", "print"]);
  const listenerLocal = await cli.bindLocal("stderr");
  const payload = randomBytes(1_500_000);
  const run = await within(client("127.0.0.1", portOf(listenerLocal), payload), 15_000, "client");
  assert.equal(run.got.length, 0);
  assert.equal(await cli.exitCode(), 0, cli.stderr.text());
  assert.deepEqual(cli.stdout.bytes(), payload);
  const lines = acceptLines(cli.stderr.text());
  assertAllSucceeded(lines);
  const own = connectionLines(lines, listenerLocal, run.local, [
    "WskReceiveEvent",
    "WskRelease",
    "WskDisconnectEvent",
    "WskDisconnect",
    "WskCloseSocket",
  ], "WskAcceptEvent");
  assert.equal(own[1]!.bytes, String(payload.length));
  assert.equal(own[2]!.bytes, String(payload.length), "every indication kept, then released");
  assertSummary(own[6]!, { end: "graceful", received: payload.length, sent: 0 });
});

Deno.test("accept --events --mode verify passes a correct stream and catches a corrupted byte", async () => {
  const size = 2_500_000;
  const corrupt = 1_999_999;
  await using cli = new CliChild(["accept", "--events", "--mode", "verify", "--count", "2"]);
  const listenerLocal = await cli.bindLocal("stdout");
  const port = portOf(listenerLocal);
  const good = await within(patternClient(port, size), 15_000, "good client");
  assert.equal(good.end, "eof");
  const bad = await within(patternClient(port, size, corrupt), 15_000, "bad client");
  assert.equal(await cli.exitCode(), 1, cli.stderr.text());
  const lines = acceptLines(cli.stdout.text());
  const passed = connectionLines(
    lines,
    listenerLocal,
    good.local,
    EVENT_SINK_CONNECTION,
    "WskAcceptEvent",
  );
  assertAllSucceeded(passed);
  assertSummary(passed[5]!, { end: "graceful", received: size, sent: 0 });
  const failed = connectionLines(lines, listenerLocal, bad.local, [
    "WskReceiveEvent",
    "WskDisconnect",
    "WskCloseSocket",
  ], "WskAcceptEvent");
  assert.equal(failed[1]!.status, "STATUS_DATA_ERROR");
  assert.match(failed[1]!.message!, new RegExp(`^first mismatch at offset ${corrupt}: `));
  assert.equal(failed[2]!.value, "abortive");
  assert.equal(failed[2]!.peer_saw, "FIN");
  assert.equal(failed[4]!.status, "STATUS_DATA_ERROR");
  assert.equal(failed[4]!.value, "local-close");
  assert.equal(failed[4]!.message, failed[1]!.message);
});

Deno.test("accept --events --timeout 400 ends with WskAcceptEvent STATUS_IO_TIMEOUT when no client comes (exit 1)", async () => {
  const result = await runCli(["accept", "--events", "--timeout", "400"], { timeoutMs: 15_000 });
  assert.equal(result.stderr, "");
  assert.equal(result.code, 1);
  const lines = acceptLines(result.stdout);
  assert.deepEqual(callsOf(lines), [
    "WskSocket",
    "WskBind",
    "WskControlSocket",
    "WskAcceptEvent",
    "WskCloseSocket",
  ]);
  assert.equal(lines[3]!.status, "STATUS_IO_TIMEOUT");
  assert.equal(lines[3]!.message, "No connection within 400 ms");
  assert.equal(lines[3]!.socket, lines[1]!.socket);
});

// ---------------------------------------------------------------------------------------------
// accept --keep-open

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  for (const events of [false, true]) {
    const how = events ? " --events" : "";
    Deno.test(`accept --keep-open${how} serves sequential clients until ${signal}, then exits 0`, async () => {
      await using cli = new CliChild(["accept", "--keep-open", ...(events ? ["--events"] : [])]);
      const listenerLocal = await cli.bindLocal("stdout");
      const port = portOf(listenerLocal);
      const runs: ClientRun[] = [];
      for (let i = 0; i < 4; i++) {
        runs.push(await within(client("127.0.0.1", port, text.encode(`n${i}`)), 15_000, "client"));
      }
      // Every connection is reported before the signal comes.
      for (const run of runs) {
        assert.deepEqual(run.got, run.sent);
        await cli.lineWhere(
          "stdout",
          (line) => line.call === "Summary" && line.remote === run.local,
          `the Summary of ${run.local}`,
        );
      }
      cli.kill(signal);
      assert.equal(await cli.exitCode(), 0, cli.stderr.text());
      assert.equal(cli.stderr.text(), "");
      const lines = acceptLines(cli.stdout.text());
      const accept = events ? "WskAcceptEvent" : "WskAccept";
      for (const run of runs) {
        const own = connectionLines(
          lines,
          listenerLocal,
          run.local,
          events ? EVENT_ECHO_CONNECTION : ECHO_CONNECTION,
          accept,
        );
        assertAllSucceeded(own);
      }
      // The wait for a fifth connection was cancelled, as planned; then the listener closed.
      const [last, close] = lines.slice(-2);
      assert.equal(last!.call, accept);
      assert.equal(last!.status, "STATUS_CANCELLED");
      assert.equal(last!.socket, lines[1]!.socket);
      assert.equal(last!.remote, undefined);
      assert.equal(close!.call, "WskCloseSocket");
      assert.equal(close!.socket, lines[1]!.socket);
      assert.equal(lines.filter((line) => line.call === "Summary").length, 4);
    });
  }
}

Deno.test("accept --keep-open --timeout 500 ends by itself once no connection came for 500 ms (exit 0)", async () => {
  await using cli = new CliChild([
    "accept",
    "--keep-open",
    "--timeout",
    "500",
    "--mode",
    "discard",
  ]);
  const listenerLocal = await cli.bindLocal("stdout");
  const port = portOf(listenerLocal);
  const first = await within(client("127.0.0.1", port, text.encode("a")), 15_000, "client");
  const second = await within(client("127.0.0.1", port, text.encode("bb")), 15_000, "client");
  const start = performance.now();
  assert.equal(await cli.exitCode(), 0, cli.stderr.text());
  assert.ok(performance.now() - start < 5000);
  const lines = acceptLines(cli.stdout.text());
  connectionLines(lines, listenerLocal, first.local, SINK_CONNECTION);
  connectionLines(lines, listenerLocal, second.local, SINK_CONNECTION);
  const last = lines.at(-2)!;
  assert.equal(last.call, "WskAccept");
  assert.equal(last.status, "STATUS_IO_TIMEOUT", "the planned end, not a failure");
  assert.equal(lines.at(-1)!.call, "WskCloseSocket");
});

Deno.test("accept --keep-open: a connection still open at SIGTERM is closed, its Summary says local-close (exit 0)", async () => {
  await using cli = new CliChild(["accept", "--keep-open", "--mode", "discard"]);
  const listenerLocal = await cli.bindLocal("stdout");
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: portOf(listenerLocal) });
  try {
    await writeAll(conn, text.encode("partial"));
    const accept = await cli.lineWhere(
      "stdout",
      (line) => line.call === "WskAccept" && line.remote === `127.0.0.1:${conn.localAddr.port}`,
      "the WskAccept line",
    );
    await sleep(100);
    cli.kill("SIGTERM");
    assert.equal(await cli.exitCode(), 0, cli.stderr.text());
    const lines = acceptLines(cli.stdout.text());
    const own = connectionLines(lines, listenerLocal, accept.remote!, [
      "WskReceive",
      "WskCloseSocket",
    ]);
    assert.equal(own[1]!.status, "STATUS_CANCELLED");
    assert.equal(own[1]!.bytes, "7");
    assertSummary(own[3]!, {
      status: "STATUS_CANCELLED",
      ntstatus: "0xC0000120",
      end: "local-close",
      received: 7,
      sent: 0,
      message: own[1]!.message!,
    });
  } finally {
    conn.close();
  }
});

// ---------------------------------------------------------------------------------------------
// accept --mode print: standard output that is closed or full

for (const events of [false, true]) {
  const how = events ? " --events" : "";
  Deno.test(`accept --count 2${how} --mode print: a closed standard output ends each connection with STATUS_PIPE_BROKEN in its Summary, and the server goes on to serve the next one`, async () => {
    await using cli = heldStdoutChild([
      "accept",
      "--count",
      "2",
      "--mode",
      "print",
      ...(events ? ["--events"] : []),
    ]);
    await cli.closeStdout();
    const listenerLocal = await cli.bindLocal("stderr");
    for (let client = 1; client <= 2; client++) {
      const flood = await floodClient(portOf(listenerLocal), 1_000_000);
      try {
        const summary = await cli.lineWhere(
          "stderr",
          (line) => line.call === "Summary" && line.remote === flood.local,
          `the Summary of client ${client}`,
        );
        assert.equal(summary.status, "STATUS_PIPE_BROKEN", JSON.stringify(summary));
        assert.equal(summary.ntstatus, "0xC000014B");
        assert.equal(summary.value, "local-close");
        // The client's connection ended (a reset, or a FIN, as its bytes were left unread).
        await within(readAll(flood.conn), 5000, "the end of the client's connection");
        await within(flood.writing, 5000, "the client's write");
      } finally {
        flood.conn.close();
      }
    }
    const status = await cli.status();
    // Every line is a status line (no error line, no stack), ending with the listener's close.
    const lines = acceptLines(cli.stderr.text());
    assert.equal(status.code, 1, cli.stderr.text());
    const summaries = lines.filter((line) => line.call === "Summary");
    assert.equal(summaries.length, 2);
    const receives = lines.filter((line) =>
      line.call === (events ? "WskReceiveEvent" : "WskReceive")
    );
    assert.deepEqual(receives.map((line) => line.status), [
      "STATUS_PIPE_BROKEN",
      "STATUS_PIPE_BROKEN",
    ]);
    assert.equal(lines.at(-1)!.call, "WskCloseSocket");
    assert.equal(lines.at(-1)!.socket, lines[1]!.socket, "the listener is closed last");
  });
}

for (const events of [false, true]) {
  for (const [first, second] of [["SIGINT", "SIGTERM"], ["SIGTERM", "SIGINT"]] as const) {
    const how = events ? " --events" : "";
    Deno.test(`accept --keep-open${how} --mode print: ${first} while standard output is full closes the listener and the connection, the Summary counts the dropped bytes, and ${second} ends the process`, async () => {
      await using cli = heldStdoutChild([
        "accept",
        "--keep-open",
        "--mode",
        "print",
        ...(events ? ["--events"] : []),
      ]);
      const listenerLocal = await cli.bindLocal("stderr");
      const port = portOf(listenerLocal);
      const flood = await floodClient(port, 2_000_000);
      try {
        const accept = events ? "WskAcceptEvent" : "WskAccept";
        await cli.lineWhere(
          "stderr",
          (line) => line.call === accept && line.remote === flood.local,
          "the accept line",
        );
        // The pipe (64 KiB) fills at once; then a payload write waits for a reader.
        await sleep(300);
        cli.kill(first);
        const listener = acceptLines(cli.stderr.text())[1]!.socket!;
        await cli.lineWhere(
          "stderr",
          (line) => line.call === "WskCloseSocket" && line.socket === listener,
          "the listener's WskCloseSocket after the signal",
        );
        const lines = acceptLines(cli.stderr.text());
        const own = connectionLines(
          lines,
          listenerLocal,
          flood.local,
          events
            ? ["WskReceiveEvent", "WskRelease", "WskCloseSocket"]
            : ["WskReceive", "WskCloseSocket"],
          accept,
        );
        const summary = own.at(-1)!;
        assert.equal(summary.status, "STATUS_CANCELLED");
        assert.equal(summary.value, "local-close");
        const dropped = droppedIn(summary.message, "The server was stopped");
        assert.ok(dropped > 0 && dropped <= Number(summary.received), `dropped ${dropped}`);
        // Both sockets are gone: the port refuses, and the client's connection ended.
        await assert.rejects(
          () => Deno.connect({ hostname: "127.0.0.1", port }),
          Deno.errors.ConnectionRefused,
        );
        await within(readAll(flood.conn), 5000, "the end of the client's connection");
        await within(flood.writing, 5000, "the client's write");
        // Only the abandoned write, blocked in the kernel, keeps the process; a second signal
        // ends it the default way. The action returns a few microtasks after the close line, and
        // only then does the SIGINT listener every command holds while it runs (runAction) go:
        // a signal sent within that instant would still be taken by it.
        await sleep(200);
        assert.ok(cli.running, "the blocked write keeps the process until a second signal");
        cli.kill(second);
        const status = await cli.status(5000);
        assert.equal(status.signal, second, `exit code ${status.code}`);
      } finally {
        flood.conn.close();
      }
    });
  }
}

Deno.test("accept --mode print --timeout 1500: standard output that takes nothing for 1500 ms fails the connection with STATUS_IO_TIMEOUT and drops the rest", async () => {
  await using cli = heldStdoutChild(["accept", "--mode", "print", "--timeout", "1500"]);
  const listenerLocal = await cli.bindLocal("stderr");
  const flood = await floodClient(portOf(listenerLocal), 2_000_000);
  try {
    const listener = acceptLines(cli.stderr.text())[1]!.socket!;
    await cli.lineWhere(
      "stderr",
      (line) => line.call === "WskCloseSocket" && line.socket === listener,
      "the listener's WskCloseSocket",
    );
    assert.ok(cli.running, "the abandoned write is still blocked");
    await cli.closeStdout();
    const status = await cli.status(5000);
    assert.equal(status.code, 1, cli.stderr.text());
    const lines = acceptLines(cli.stderr.text());
    assert.equal(lines.length, 2 + 4 + 1);
    const own = connectionLines(lines, listenerLocal, flood.local, [
      "WskReceive",
      "WskCloseSocket",
    ]);
    assert.equal(own[1]!.status, "STATUS_SUCCESS", "every receive worked");
    const summary = own[3]!;
    assert.equal(summary.status, "STATUS_IO_TIMEOUT");
    assert.equal(summary.value, "timeout");
    assert.equal(summary.received, own[1]!.bytes);
    const dropped = droppedIn(summary.message, "Standard output took no data for 1500 ms");
    assert.ok(dropped > 0 && dropped <= Number(summary.received), `dropped ${dropped}`);
    await within(readAll(flood.conn), 5000, "the end of the client's connection");
    await within(flood.writing, 5000, "the client's write");
  } finally {
    flood.conn.close();
  }
});

// ---------------------------------------------------------------------------------------------
// demo

/** The demo's acts, in order, as its headings name them. */
const DEMO_ACTS = ["server", "client", "events", "errors"];

/** Splits demo's human output into its `# act: …` headings, its status lines and its verdict. */
function demoParts(stdout: string): { acts: string[]; lines: string; verdict: string } {
  const all = stdout.split("\n");
  assert.equal(all.pop(), "");
  const verdict = all.pop()!;
  const headings = all.filter((line) => line.startsWith("# "));
  for (const heading of headings) assert.match(heading, /^# [a-z]+: \S.*$/, heading);
  return {
    acts: headings.map((heading) => heading.slice(2, heading.indexOf(":"))),
    lines: all.filter((line) => !line.startsWith("# ")).map((line) => `${line}\n`).join(""),
    verdict,
  };
}

Deno.test("demo walks every dispatch function under a heading per act, one parseable status line each, and ends with its verdict (exit 0)", async () => {
  const result = await runCli(["demo"]);
  assert.equal(result.stderr, "");
  assert.equal(result.code, 0);
  const parts = demoParts(result.stdout);
  assert.deepEqual(parts.acts, DEMO_ACTS);
  assert.ok(result.stdout.startsWith("# server: "), "the first line is the server's heading");
  const lines = statusLines(parts.lines);
  assert.equal(parts.verdict, `# ${lines.length} calls, all as expected`);
  const calls = new Set(callsOf(lines));
  for (const call of DISPATCH_CALLS) assert.ok(calls.has(call), `demo shows ${call}`);
  // The listener the demo binds is the one every WskAccept reports on.
  const bind = lines.find((line) => line.call === "WskBind")!;
  assert.match(bind.local!, /^127\.0\.0\.1:[1-9]\d*$/);
  for (const accept of lines.filter((line) => line.call === "WskAccept")) {
    assert.equal(accept.local, bind.local);
    assert.equal(accept.status, "STATUS_SUCCESS");
  }
  // Every failure shown is one the errors act sets out to show.
  const failures = lines.filter((line) => line.status !== "STATUS_SUCCESS");
  assert.deepEqual(failures.map((line) => [line.call, line.status]).sort(), [
    ["WskReceive", "STATUS_CANCELLED"],
    ["WskReceive", "STATUS_CONNECTION_RESET"],
    ["WskReceiveEvent", "STATUS_PENDING"],
    ["WskReceiveEx", "STATUS_NOT_SUPPORTED"],
    ["WskSendEx", "STATUS_NOT_SUPPORTED"],
  ]);
});

Deno.test("demo --json writes only JSON Lines: a {demo, shows} object per act, one per call, and a last {verdict} object", async () => {
  const result = await runCli(["demo", "--json"]);
  assert.equal(result.stderr, "");
  assert.equal(result.code, 0);
  const lines = result.stdout.split("\n");
  assert.equal(lines.pop(), "");
  const objects = lines.map((line) => JSON.parse(line));
  const acts = objects.filter((object) => "demo" in object);
  assert.deepEqual(acts.map((act) => act.demo), DEMO_ACTS);
  for (const act of acts) {
    assert.deepEqual(Object.keys(act), ["demo", "shows"]);
    assert.match(act.shows, /\S/);
  }
  assert.deepEqual(objects[0], acts[0]);
  const records = objects.filter((object) => "call" in object);
  const calls = new Set<string>();
  for (const object of records) {
    const line = JSON.stringify(object);
    assert.match(object.call, /^Wsk[A-Za-z]+$/, line);
    assert.match(object.status, /^STATUS_[A-Z_]+$/, line);
    assert.match(object.ntstatus, HEX_STATUS, line);
    assert.equal(typeof object.information, "number", line);
    assert.equal(typeof object.elapsed_ms, "number", line);
    calls.add(object.call);
  }
  for (const call of DISPATCH_CALLS) assert.ok(calls.has(call), `demo --json shows ${call}`);
  assert.equal(acts.length + records.length + 1, objects.length, "nothing else is written");
  assert.deepEqual(objects.at(-1), {
    verdict: `${records.length} calls, all as expected`,
    calls: records.length,
    passed: true,
    problems: [],
  });
});

/** demo run with no permission at all: its WskBind is refused. */
async function demoWithoutNet(json: boolean): Promise<{ code: number; out: string; err: string }> {
  const main = new URL("../../main.ts", import.meta.url).pathname;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", main, "demo", ...(json ? ["--json"] : [])],
    stdin: "null",
    env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
  }).output();
  return {
    code: output.code,
    out: new TextDecoder().decode(output.stdout),
    err: new TextDecoder().decode(output.stderr),
  };
}

Deno.test("demo's verdict comes from its records: without net access the refused WskBind is named and it exits 1", async () => {
  const human = await demoWithoutNet(false);
  assert.equal(human.err, "");
  assert.equal(human.code, 1);
  const parts = demoParts(human.out);
  assert.deepEqual(parts.acts, ["server"]);
  const lines = statusLines(parts.lines);
  assert.deepEqual(callsOf(lines), ["WskSocket", "WskBind", "WskCloseSocket"]);
  assert.equal(lines[1]!.status, "STATUS_ACCESS_DENIED");
  assert.equal(
    parts.verdict,
    "# 3 calls, 1 not as expected: WskBind STATUS_ACCESS_DENIED (server)",
  );
  const json = await demoWithoutNet(true);
  assert.equal(json.err, "");
  assert.equal(json.code, 1);
  const objects = json.out.trimEnd().split("\n").map((line) => JSON.parse(line));
  assert.deepEqual(objects.at(-1), {
    verdict: "3 calls, 1 not as expected: WskBind STATUS_ACCESS_DENIED (server)",
    calls: 3,
    passed: false,
    problems: ["WskBind STATUS_ACCESS_DENIED (server)"],
  });
});

// `wsk send` and `wsk receive` end to end: the spawned CLI against python3 peers on loopback.
// Every peer binds port 0 and prints the port it got, then one JSON line describing what it
// saw (its peer address, the bytes and SHA-256 of what it received and sent). Scratch files are
// made and removed by python too, so these tests need no --allow-write of their own.

import assert from "node:assert/strict";
import { closedPort, hex, runCli, sha256, text, within } from "../_helpers.ts";
import { runProcess } from "../_child.ts";
import { PY_ONE_CONNECTION, PythonPeer } from "../_python.ts";
import { assertAllSucceeded, callsOf, CliChild, randomBytes, statusLines } from "./_peer.ts";

// ---------------------------------------------------------------------------------------------
// Helpers local to this file

const MiB = 1024 * 1024;

/** What a python peer reports when its connection is over. */
interface PeerReport {
  /** The CLI's address as the peer saw it. */
  readonly peer: string;
  readonly peerPort: number;
  readonly received: number;
  readonly receivedSha256: string;
  /** Base64 of the first 64 KiB received. */
  readonly receivedHead: string;
  readonly sent?: number;
  readonly sentSha256?: string;
  /** The CLI reset the connection. */
  readonly reset?: boolean;
}

/**
 * The python3 peer. argv: HOST MODE ARG. PY_ONE_CONNECTION on HOST; it serves that connection,
 * then prints a JSON report. Modes:
 * - sink: read until EOF.
 * - reply HEX: read until EOF, send HEX, close.
 * - source HEX: send HEX, half-close, read until EOF.
 * - random N: send N random bytes, half-close, read until EOF.
 * - chunks HEX,HEX…: send each part 200 ms apart, half-close, read until EOF.
 * - reset: wait 300 ms (the CLI's connect is complete), then close with SO_LINGER 0: a reset.
 * - silent: send nothing, read until EOF.
 */
const PEER = PY_ONE_CONNECTION + String.raw`
import base64, hashlib
mode, arg = args[0], args[1]
out = {"peer": addr[0], "peerPort": addr[1]}
def read_all():
    h, n, head = hashlib.sha256(), 0, b""
    while True:
        try:
            b = conn.recv(65536)
        except ConnectionResetError:
            out["reset"] = True
            break
        if not b:
            break
        h.update(b)
        n += len(b)
        head += b[:65536 - len(head)]
    out.update(received=n, receivedSha256=h.hexdigest(),
               receivedHead=base64.b64encode(head).decode())
def send(data):
    conn.sendall(data)
    out["sent"] = out.get("sent", 0) + len(data)
    out["sentSha256"] = hashlib.sha256(data).hexdigest()
if mode == "sink" or mode == "silent":
    read_all()
elif mode == "reply":
    read_all()
    send(bytes.fromhex(arg))
elif mode in ("source", "random", "chunks"):
    if mode == "source":
        send(bytes.fromhex(arg))
    elif mode == "random":
        send(os.urandom(int(arg)))
    else:
        for i, part in enumerate(arg.split(",")):
            if i:
                time.sleep(0.2)
            conn.sendall(bytes.fromhex(part))
    conn.shutdown(socket.SHUT_WR)
    read_all()
elif mode == "reset":
    time.sleep(0.3)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
conn.close()
print(json.dumps(out), flush=True)
`;

/** A python3 peer running PEER; `await using` kills it if it is still running. */
type Peer = PythonPeer<PeerReport>;

const Peer = {
  /** Starts a peer in `mode` with `arg` on 127.0.0.1 and waits for the port it bound. */
  start(mode: string, arg = ""): Promise<Peer> {
    return PythonPeer.start<PeerReport>(PEER, ["127.0.0.1", mode, arg]);
  },
};

/** Runs a short python program with arguments and returns its stdout (fails on exit ≠ 0). */
async function python(program: string, ...args: string[]): Promise<string> {
  const out = await runProcess("python3", ["-c", program, ...args]);
  assert.equal(out.code, 0, out.stderr);
  return out.stdout.trim();
}

/** A scratch directory made and removed by python. */
async function scratchDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await python("import tempfile; print(tempfile.mkdtemp(prefix='wsk-data-test-'))");
  return {
    path,
    async [Symbol.asyncDispose]() {
      await python("import shutil, sys; shutil.rmtree(sys.argv[1])", path);
    },
  };
}

/** Writes `size` random bytes to `path` with python and returns python's SHA-256 of them. */
function writeRandomFile(path: string, size: number): Promise<string> {
  return python(
    "import hashlib, os, sys\n" +
      "data = os.urandom(int(sys.argv[2]))\n" +
      "open(sys.argv[1], 'wb').write(data)\n" +
      "print(hashlib.sha256(data).hexdigest())",
    path,
    String(size),
  );
}

function fromBase64(b64: string): Uint8Array {
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

/** The only line for `call`. */
function lineOf(lines: Record<string, string>[], call: string): Record<string, string> {
  const found = lines.filter((line) => line.call === call);
  assert.equal(found.length, 1, `expected one ${call} line in ${JSON.stringify(lines)}`);
  return found[0]!;
}

/** Checks the connect line against what the peer saw. */
function assertEndpoints(
  lines: Record<string, string>[],
  peer: Peer,
  report: PeerReport,
): void {
  const connect = lineOf(lines, "WskConnect");
  assert.equal(connect.remote, `127.0.0.1:${peer.port}`);
  assert.equal(connect.local, `${report.peer}:${report.peerPort}`);
  // Every later line of the connection shows the same endpoints.
  for (const line of lines.slice(lines.indexOf(connect))) {
    assert.equal(line.socket, connect.socket);
    assert.equal(line.local, connect.local, `${line.call} local`);
    assert.equal(line.remote, connect.remote, `${line.call} remote`);
  }
}

/** The calls that make a connected socket. */
const CONNECT_CHAIN = ["WskSocket", "WskBind", "WskConnect"];

/** The calls of a send or receive whose peer closes after the CLI's FIN. */
const SEND_CHAIN = [...CONNECT_CHAIN, "WskSend", "WskDisconnect", "WskReceive", "WskCloseSocket"];

// ---------------------------------------------------------------------------------------------
// send

Deno.test("send delivers --data with \\r \\n \\t \\\\ and \\xNN escapes byte-exact to the peer", async () => {
  await using peer = await Peer.start("sink");
  const result = await runCli([
    "send",
    `127.0.0.1:${peer.port}`,
    "--data",
    String.raw`GET / HTTP/1.0\r\n\x00\xff\t\\x\r\n`,
  ]);
  const report = await peer.report();
  const expected = new Uint8Array([
    ...text.encode("GET / HTTP/1.0\r\n"),
    0x00,
    0xff,
    0x09,
    0x5c,
    0x78,
    0x0d,
    0x0a,
  ]);
  assert.deepEqual(fromBase64(report.receivedHead), expected);
  assert.equal(report.received, expected.length);
  assert.equal(result.stderr, "");
  assert.equal(result.code, 0);
  const lines = statusLines(result.stdout);
  assert.deepEqual(callsOf(lines), SEND_CHAIN);
  assertAllSucceeded(lines);
  assert.equal(lineOf(lines, "WskSend").bytes, String(expected.length));
  assert.equal(lineOf(lines, "WskReceive").bytes, "0");
  assertEndpoints(lines, peer, report);
});

Deno.test("send streams a multi-megabyte --file, `--file -` and piped stdin byte-exact", async () => {
  await using dir = await scratchDir();
  const size = 3 * MiB + 12_345;
  const path = `${dir.path}/random.bin`;
  const written = await writeRandomFile(path, size);
  const fileBytes = await Deno.readFile(path);
  assert.equal(await sha256(fileBytes), written);
  const piped = randomBytes(size + 1);
  const cases: { args: string[]; stdin?: Uint8Array; bytes: Uint8Array<ArrayBuffer> }[] = [
    { args: ["--file", path], bytes: fileBytes },
    { args: ["--file", "-"], stdin: piped, bytes: piped },
    { args: [], stdin: piped, bytes: piped },
  ];
  for (const { args, stdin, bytes } of cases) {
    await using peer = await Peer.start("sink");
    const result = await runCli(
      ["send", `127.0.0.1:${peer.port}`, ...args],
      stdin ? { stdin } : {},
    );
    const report = await peer.report();
    const note = `send ${args.join(" ") || "(stdin)"}`;
    assert.equal(report.received, bytes.length, note);
    assert.equal(report.receivedSha256, await sha256(bytes), note);
    assert.equal(result.stderr, "", note);
    assert.equal(result.code, 0, note);
    const lines = statusLines(result.stdout);
    assert.deepEqual(callsOf(lines), SEND_CHAIN, note);
    assertAllSucceeded(lines);
    const send = lineOf(lines, "WskSend");
    assert.equal(send.bytes, String(bytes.length), note);
    assert.ok(
      Number(send.calls) >= Math.ceil(bytes.length / MiB),
      `${note}: ${send.calls}`,
    );
    assertEndpoints(lines, peer, report);
  }
});

Deno.test("send --receive half-closes, puts the reply byte-exact on stdout and every status line on stderr", async () => {
  const reply = new Uint8Array([
    ...text.encode("HTTP/1.0 200 OK\r\n\r\n"),
    ...Array.from({ length: 256 }, (_, i) => i),
  ]);
  await using peer = await Peer.start("reply", hex(reply));
  const result = await runCli([
    "send",
    `127.0.0.1:${peer.port}`,
    "--data",
    String.raw`GET / HTTP/1.0\r\n\r\n`,
    "--receive",
  ]);
  const report = await peer.report();
  assert.equal(text.decode(fromBase64(report.receivedHead)), "GET / HTTP/1.0\r\n\r\n");
  assert.equal(report.sent, reply.length);
  assert.deepEqual(result.stdoutBytes, reply);
  assert.equal(result.code, 0, result.stderr);
  const lines = statusLines(result.stderr);
  assert.deepEqual(callsOf(lines), SEND_CHAIN);
  assertAllSucceeded(lines);
  assert.equal(lineOf(lines, "WskSend").bytes, "18");
  assert.equal(lineOf(lines, "WskReceive").bytes, String(reply.length));
  assertEndpoints(lines, peer, report);
});

/** Asserts a usage failure: exit 2, nothing on stdout, one `error:` line naming `quoted`. */
function assertUsageError(
  result: { code: number; stdout: string; stderr: string },
  quoted: string,
) {
  assert.equal(result.stdout, "", "no status line: nothing was opened");
  const lines = result.stderr.split("\n");
  assert.equal(lines.pop(), "");
  assert.equal(lines.length, 1, result.stderr);
  assert.match(lines[0]!, /^error: /);
  assert.ok(lines[0]!.includes(`"${quoted}"`), `the message quotes ${quoted}: ${lines[0]}`);
  assert.equal(result.code, 2);
}

Deno.test("send exits 2 quoting the path and opens no socket when --file does not exist", async () => {
  await using dir = await scratchDir();
  const path = `${dir.path}/missing.bin`;
  await using peer = await Peer.start("sink");
  assertUsageError(await runCli(["send", `127.0.0.1:${peer.port}`, "--file", path]), path);
});

Deno.test("send exits 2 quoting the path and opens no socket when --file is a directory", async () => {
  await using dir = await scratchDir();
  await using peer = await Peer.start("sink");
  assertUsageError(await runCli(["send", `127.0.0.1:${peer.port}`, "--file", dir.path]), dir.path);
});

Deno.test("send exits 2 with one error line when --data and --file are both given", async () => {
  const result = await runCli([
    "send",
    `127.0.0.1:${closedPort()}`,
    "--data",
    "x",
    "--file",
    "/dev/null",
  ]);
  assert.equal(result.stdout, "");
  const lines = result.stderr.split("\n");
  assert.equal(lines.pop(), "");
  assert.equal(lines.length, 1, result.stderr);
  assert.match(lines[0]!, /^error: .*--data.*--file/);
  assert.equal(result.code, 2);
});

Deno.test("send exits 1 when refused, 0 when delivered and 2 on a usage error", async () => {
  const port = closedPort();
  const refused = await runCli(["send", `127.0.0.1:${port}`, "--data", "x"]);
  assert.equal(refused.stderr, "");
  const refusedLines = statusLines(refused.stdout);
  assert.deepEqual(callsOf(refusedLines), [...CONNECT_CHAIN, "WskCloseSocket"]);
  const connect = lineOf(refusedLines, "WskConnect");
  assert.equal(connect.status, "STATUS_CONNECTION_REFUSED");
  assert.equal(connect.ntstatus, "0xC0000236");
  assert.equal(connect.remote, `127.0.0.1:${port}`);
  assert.equal(refused.code, 1);

  await using peer = await Peer.start("sink");
  const delivered = await runCli(["send", `127.0.0.1:${peer.port}`, "--data", "x"]);
  assert.equal((await peer.report()).received, 1);
  assert.equal(delivered.stderr, "");
  const deliveredLines = statusLines(delivered.stdout);
  assert.deepEqual(callsOf(deliveredLines), SEND_CHAIN);
  assertAllSucceeded(deliveredLines);
  assert.equal(delivered.code, 0);

  const usage = await runCli(["send", "127.0.0.1", "--data", "x"]);
  assert.equal(usage.stdout, "");
  assert.match(usage.stderr, /^error: [^\n]*"127\.0\.0\.1"[^\n]*\n$/);
  assert.equal(usage.code, 2);
});

// ---------------------------------------------------------------------------------------------
// receive

/** The calls of a receive whose peer closes first: the CLI answers its FIN. */
const RECEIVE_CHAIN = [...CONNECT_CHAIN, "WskReceive", "WskDisconnect", "WskCloseSocket"];

/**
 * Checks a receive that failed in its WskReceive with `status` (nothing on stdout, the status
 * lines on stderr, no WskDisconnect) and returns the lines and that WskReceive line.
 */
function assertFailedReceive(
  result: { stdout: string; stderr: string },
  status: string,
  ntstatus: string,
): { lines: Record<string, string>[]; receive: Record<string, string> } {
  assert.equal(result.stdout, "");
  const lines = statusLines(result.stderr);
  assert.deepEqual(callsOf(lines), [...CONNECT_CHAIN, "WskReceive", "WskCloseSocket"]);
  const receive = lineOf(lines, "WskReceive");
  assert.equal(receive.status, status);
  assert.equal(receive.ntstatus, ntstatus);
  return { lines, receive };
}

Deno.test("receive --output FILE writes a multi-megabyte transfer byte-exact with status lines on stdout", async () => {
  await using dir = await scratchDir();
  const size = 4 * MiB + 777;
  const path = `${dir.path}/received.bin`;
  await using peer = await Peer.start("random", String(size));
  const result = await runCli(["receive", `127.0.0.1:${peer.port}`, "--output", path]);
  const report = await peer.report();
  assert.equal(report.sent, size);
  const bytes = await Deno.readFile(path);
  assert.equal(bytes.length, size);
  assert.equal(await sha256(bytes), report.sentSha256);
  assert.equal(result.stderr, "");
  assert.equal(result.code, 0);
  const lines = statusLines(result.stdout);
  assert.deepEqual(callsOf(lines), RECEIVE_CHAIN);
  assertAllSucceeded(lines);
  assert.equal(lineOf(lines, "WskReceive").bytes, String(size));
  assert.equal(report.received, 0);
  assert.equal(report.reset, undefined, "the peer sees a FIN, not a reset");
  assertEndpoints(lines, peer, report);
});

Deno.test("receive --output - (the default) puts the payload on stdout and status lines on stderr", async () => {
  const payload = new Uint8Array([...Array.from({ length: 256 }, (_, i) => i), 0x0d, 0x0a]);
  for (const args of [[], ["--output", "-"]]) {
    await using peer = await Peer.start("source", hex(payload));
    const result = await runCli(["receive", `127.0.0.1:${peer.port}`, ...args]);
    const report = await peer.report();
    assert.deepEqual(result.stdoutBytes, payload);
    assert.equal(result.code, 0, result.stderr);
    const lines = statusLines(result.stderr);
    assert.deepEqual(callsOf(lines), RECEIVE_CHAIN);
    assertAllSucceeded(lines);
    assert.equal(lineOf(lines, "WskReceive").bytes, String(payload.length));
    assertEndpoints(lines, peer, report);
  }
});

Deno.test("receive --bytes 5 --waitall stops at 5 bytes and drains the rest on close", async () => {
  await using peer = await Peer.start(
    "chunks",
    `${hex(text.encode("hel"))},${hex(text.encode("lo world"))}`,
  );
  const result = await runCli(["receive", `127.0.0.1:${peer.port}`, "--bytes", "5", "--waitall"]);
  const report = await peer.report();
  assert.equal(result.stdout, "hello");
  assert.equal(result.code, 0, result.stderr);
  const lines = statusLines(result.stderr);
  assert.deepEqual(callsOf(lines), [
    ...CONNECT_CHAIN,
    "WskReceive",
    "WskDisconnect",
    "WskReceive",
    "WskCloseSocket",
  ]);
  assertAllSucceeded(lines);
  const [first, drained] = lines.filter((line) => line.call === "WskReceive");
  assert.equal(first!.bytes, "5");
  assert.equal(first!.calls, "1", "WSK_FLAG_WAITALL fills the 5 bytes in one call");
  assert.equal(drained!.bytes, "6");
  assert.equal(drained!.data, " world");
  assert.equal(report.received, 0);
  assertEndpoints(lines, peer, report);
});

Deno.test("receive --drain completes with STATUS_SUCCESS bytes=0 after the server closes", async () => {
  await using peer = await Peer.start("random", String(MiB));
  const result = await runCli(["receive", `127.0.0.1:${peer.port}`, "--drain"]);
  const report = await peer.report();
  assert.equal(report.sent, MiB);
  assert.equal(result.stderr, "");
  assert.equal(result.code, 0);
  const lines = statusLines(result.stdout);
  assert.deepEqual(callsOf(lines), RECEIVE_CHAIN);
  assertAllSucceeded(lines);
  assert.equal(lineOf(lines, "WskReceive").bytes, "0");
  assertEndpoints(lines, peer, report);
});

Deno.test("receive completes with STATUS_CONNECTION_RESET and exits 1 when the peer resets", async () => {
  await using peer = await Peer.start("reset");
  const result = await runCli(["receive", `127.0.0.1:${peer.port}`]);
  const report = await peer.report();
  const { lines, receive } = assertFailedReceive(
    result,
    "STATUS_CONNECTION_RESET",
    "0xC000020D",
  );
  assert.equal(receive.bytes, "0");
  assert.ok(receive.message, "a failure line carries a message");
  assert.equal(result.code, 1);
  assertEndpoints(lines, peer, report);
});

Deno.test("receive --timeout 500 completes with STATUS_IO_TIMEOUT and exits 1 well under 5 s", async () => {
  await using peer = await Peer.start("silent");
  const start = performance.now();
  const result = await runCli(["receive", `127.0.0.1:${peer.port}`, "--timeout", "500"], {
    timeoutMs: 15_000,
  });
  const wall = performance.now() - start;
  const report = await peer.report();
  const { lines, receive } = assertFailedReceive(result, "STATUS_IO_TIMEOUT", "0xC00000B5");
  const waited = Number(receive.time!.replace(/ms$/, ""));
  assert.ok(waited >= 450 && waited < 2000, `the receive waited ${waited} ms`);
  assert.equal(result.code, 1);
  assert.ok(wall < 5000, `the run took ${wall} ms`);
  assertEndpoints(lines, peer, report);
});

/** Starts one of the peers below (PY_ONE_CONNECTION, then what it does) on 127.0.0.1. */
function onePeer<Report>(script: string): Promise<PythonPeer<Report>> {
  return PythonPeer.start<Report>(script, ["127.0.0.1"]);
}

/**
 * Spawns `wsk send 127.0.0.1:PORT`, directly or through `via` (a launcher and its arguments,
 * wsk's argv following them); killed (if still running) on dispose.
 */
function spawnSend(
  port: number,
  { via = [], stdin = "null", env = {}, args = [] }: {
    via?: string[];
    stdin?: "piped" | "null";
    env?: Record<string, string>;
    args?: string[];
  } = {},
): CliChild {
  return new CliChild(["send", `127.0.0.1:${port}`, ...args], [], via, { stdin, env });
}

/**
 * Records the first chunk as soon as it arrives (while the sender's input is still open), then
 * everything up to EOF.
 */
const FIRST_CHUNK_PEER = PY_ONE_CONNECTION + `
first = conn.recv(65536)
print(json.dumps({"first": first.decode()}), flush=True)
rest = b""
while chunk := conn.recv(65536):
    rest += chunk
print(json.dumps({"rest": rest.decode()}), flush=True)
conn.close()
`;

Deno.test("send from standard input sends what arrives at once, not when a buffer fills", async () => {
  await using peer = await onePeer<{ first?: string; rest?: string }>(FIRST_CHUNK_PEER);
  await using child = spawnSend(peer.port, { stdin: "piped" });
  await child.write("first line\n");
  // The peer sees the line while wsk's input is still open: nothing waits for more input.
  assert.deepEqual(await peer.report(10_000), { first: "first line\n" });
  await child.write("second line\n");
  await child.closeStdin();
  assert.equal(await child.exitCode(15_000), 0, child.stderr.text());
  const lines = statusLines(child.stdout.text());
  assertAllSucceeded(lines);
  assert.equal(lines.find((line) => line.call === "WskSend")?.bytes, "23");
});

/** Reads until the connection ends and reports how: a FIN or a reset. */
const END_PEER = PY_ONE_CONNECTION + `
end = "timeout"
try:
    while conn.recv(65536):
        pass
    end = "fin"
except ConnectionResetError:
    end = "reset"
except socket.timeout:
    pass
print(json.dumps({"end": end}), flush=True)
conn.close()
`;

Deno.test("send exits 1 after a read error on its input and resets the connection", async () => {
  await using peer = await onePeer<{ end?: string }>(END_PEER);
  // Standard input is a directory, so the first read fails (EISDIR). python only sets that up
  // and then becomes wsk (exec), keeping the argv an array.
  const becomeWsk = "import os, sys; fd = os.open('/', os.O_RDONLY); os.dup2(fd, 0); " +
    "os.execv(sys.argv[1], sys.argv[1:])";
  await using child = spawnSend(peer.port, { via: ["python3", "-c", becomeWsk] });
  // Before the fix the open connection kept the process alive after the error line.
  const code = await child.exitCode(15_000);
  const stderr = child.stderr.text();
  assert.equal(code, 1, stderr);
  assert.match(stderr, /^error: .*os error 21\)\n$/);
  const lines = statusLines(child.stdout.text());
  assert.deepEqual(lines.map((line) => [line.call, line.status]), [
    ["WskSocket", "STATUS_SUCCESS"],
    ["WskBind", "STATUS_SUCCESS"],
    ["WskConnect", "STATUS_SUCCESS"],
    ["WskCloseSocket", "STATUS_SUCCESS"],
  ]);
  // The stream was cut short: the peer must not see a FIN that would make it look complete.
  assert.deepEqual(await peer.report(10_000), { end: "reset" });
});

/** Takes the first chunk, then resets the connection (SO_LINGER 0). */
const RESET_AFTER_FIRST_PEER = PY_ONE_CONNECTION + `
first = conn.recv(65536)
conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
conn.close()
print(json.dumps({"first": first.decode()}), flush=True)
`;

Deno.test("send that fails part-way exits promptly although its input pipe stays open", async () => {
  await using peer = await onePeer<{ first?: string }>(RESET_AFTER_FIRST_PEER);
  // A shell pipe, as users have it: a line, then a second line once the peer has reset (its
  // WskSend fails while the next read of standard input is pending), then the input stays open
  // for 8 s. wsk must close its input, which ends that read, rather than wait for more. The
  // group prints wsk's exit code as soon as wsk ends (the shell itself waits for the sleep).
  // The second line waits for a file the test makes after the peer's report, not for a fixed
  // time: deno's start-up on a loaded machine may take longer than any such time.
  const go = await Deno.makeTempFile({ prefix: "wsk-send-go-" });
  await Deno.remove(go);
  const script = '(printf "first\\n"; i=0; while [ ! -e "$GO" ] && [ $i -lt 600 ]; do ' +
    'sleep 0.05; i=$((i+1)); done; printf "second\\n"; sleep 8) | { "$@"; echo "exit=$?" >&2; }';
  await using child = spawnSend(peer.port, {
    via: ["bash", "-c", script, "bash"],
    env: { GO: go },
  });
  const stderr = child.stderr;
  try {
    assert.deepEqual(await peer.report(30_000), { first: "first\n" });
    const start = performance.now();
    await Deno.writeTextFile(go, "");
    const exit = await stderr.waitFor(
      () => stderr.lines().find((line) => line.startsWith("exit=")),
      7_000,
      "wsk send to exit while its input is still open",
    );
    assert.equal(exit, "exit=1", stderr.text());
    assert.ok(performance.now() - start < 7_500, "wsk waited for the end of its input");
    await child.stdout.done;
    const lines = statusLines(child.stdout.text());
    const send = lines.find((line) => line.call === "WskSend");
    assert.match(send?.status ?? "", /STATUS_CONNECTION_(RESET|ABORTED)/, JSON.stringify(lines));
  } finally {
    await Deno.remove(go).catch(() => {});
  }
});

// ---------------------------------------------------------------------------------------------
// send --receive is full duplex

/** Echoes everything until EOF, then half-closes and reports the byte count. */
const ECHO_PEER = PY_ONE_CONNECTION + `
n = 0
while chunk := conn.recv(65536):
    conn.sendall(chunk)
    n += len(chunk)
conn.shutdown(socket.SHUT_WR)
print(json.dumps({"echoed": n}), flush=True)
conn.close()
`;

Deno.test("send --receive streams a 16 MiB echo byte-exact to stdout while it sends", async () => {
  await using peer = await onePeer<{ echoed: number }>(ECHO_PEER);
  await using child = spawnSend(peer.port, { stdin: "piped", args: ["--receive"] });
  const { stdout, stderr } = child;
  const input = randomBytes(16 * MiB);
  // Written while stdout is read: an echo that waits for the whole input would block both.
  await within(child.write(input), 30_000, "writing 16 MiB to wsk");
  await child.closeStdin();
  const status = await child.status(30_000, "wsk send --receive exit");
  assert.deepEqual(await peer.report(), { echoed: input.length });
  assert.equal(status.code, 0, stderr.text());
  const got = new Uint8Array(stdout.bytes());
  assert.equal(got.length, input.length);
  assert.equal(await sha256(got), await sha256(input));
  const lines = statusLines(stderr.text());
  assert.deepEqual(callsOf(lines), SEND_CHAIN);
  assertAllSucceeded(lines);
  assert.equal(lineOf(lines, "WskSend").bytes, String(input.length));
  assert.equal(lineOf(lines, "WskReceive").bytes, String(input.length));
});

Deno.test("send --receive prints a line's reply before the next input line is sent", async () => {
  await using peer = await onePeer<{ echoed: number }>(ECHO_PEER);
  await using child = spawnSend(peer.port, { stdin: "piped", args: ["--receive"] });
  const { stdout, stderr } = child;
  await child.write("PING 1\r\n");
  // The reply shows while the input is still open.
  await stdout.waitFor(
    () => stdout.text() === "PING 1\r\n" ? true : undefined,
    10_000,
    "the reply to line 1",
  );
  await child.write("PING 2\r\n");
  await child.closeStdin();
  const status = await child.status(15_000, "wsk send --receive exit");
  assert.equal(status.code, 0, stderr.text());
  assert.equal(stdout.text(), "PING 1\r\nPING 2\r\n");
  assert.deepEqual(await peer.report(), { echoed: 16 });
  assert.deepEqual(callsOf(statusLines(stderr.text())), SEND_CHAIN);
});

// ---------------------------------------------------------------------------------------------
// receive: nothing lost, nothing overwritten

/** Writes `content` to `path` (python writes, so the test needs no --allow-write of its own). */
function writeText(path: string, content: string): Promise<string> {
  return python("import sys; open(sys.argv[1], 'w').write(sys.argv[2])", path, content);
}

/** The names in a directory. */
async function namesIn(path: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(path)) names.push(entry.name);
  return names.sort();
}

Deno.test("receive --output FILE leaves an existing FILE untouched (and no temporary file) when the connect is refused", async () => {
  await using dir = await scratchDir();
  const path = `${dir.path}/keep.txt`;
  await writeText(path, "keep me");
  const result = await runCli(["receive", `127.0.0.1:${closedPort()}`, "--output", path]);
  assert.equal(result.code, 1, result.stderr);
  const lines = statusLines(result.stdout);
  assert.equal(lineOf(lines, "WskConnect").status, "STATUS_CONNECTION_REFUSED");
  assert.equal(await Deno.readTextFile(path), "keep me");
  assert.deepEqual(await namesIn(dir.path), ["keep.txt"]);
});

Deno.test("receive --output FILE replaces FILE once data arrived; --append adds to it", async () => {
  await using dir = await scratchDir();
  const path = `${dir.path}/out.txt`;
  await writeText(path, "old ");
  for (const [args, expected] of [[[], "new"], [["--append"], "newnew"]] as const) {
    await using peer = await Peer.start("source", hex(text.encode("new")));
    const result = await runCli(["receive", `127.0.0.1:${peer.port}`, "--output", path, ...args]);
    await peer.report();
    assert.equal(result.code, 0, result.stderr);
    assert.equal(await Deno.readTextFile(path), expected);
    assert.deepEqual(await namesIn(dir.path), ["out.txt"]);
  }
});

Deno.test("receive into a full disk (stdout is /dev/full) is WskReceive STATUS_DISK_FULL and exit 1, not an internal error", async () => {
  await using peer = await Peer.start("random", String(MiB));
  // Deno lets a program open a device only with --allow-all, so the device is its stdout, as in
  // `wsk receive … > /dev/full`. The peer is not asked for its report: wsk aborts the
  // connection, which may fail the peer's send.
  const out = await runCli(["receive", `127.0.0.1:${peer.port}`], {
    via: ["sh", "-c", 'exec "$@" > /dev/full', "sh"],
  });
  const stderr = out.stderr;
  assert.equal(out.code, 1, stderr);
  const lines = statusLines(stderr);
  assert.equal(lines.length, stderr.trimEnd().split("\n").length, "only status lines");
  assert.deepEqual(callsOf(lines), [...CONNECT_CHAIN, "WskReceive", "WskCloseSocket"]);
  const receive = lineOf(lines, "WskReceive");
  assert.equal(receive.status, "STATUS_DISK_FULL");
  assert.equal(receive.ntstatus, "0xC000007F");
  assert.match(receive.message!, /No space left on device/);
});

Deno.test("receive into a closed stdout still prints WskReceive STATUS_PIPE_BROKEN and WskCloseSocket on stderr, exit 1", async () => {
  await using peer = await Peer.start("random", String(4 * MiB));
  await using child = new CliChild(["receive", `127.0.0.1:${peer.port}`], [], [], {
    stdout: "held",
  });
  // As `| head -c 10`: take a few bytes, then close the pipe.
  const reader = child.heldStdout().getReader();
  await within(reader.read(), 15_000, "the first payload bytes");
  await reader.cancel();
  const { stderr } = child;
  const status = await child.status(15_000, "wsk receive exit");
  assert.equal(status.code, 1, stderr.text());
  const lines = statusLines(stderr.text());
  // Aborted, not ended with a FIN as if the data had been delivered.
  assert.deepEqual(callsOf(lines), [...CONNECT_CHAIN, "WskReceive", "WskCloseSocket"]);
  const receive = lineOf(lines, "WskReceive");
  assert.equal(receive.status, "STATUS_PIPE_BROKEN");
  assert.equal(receive.ntstatus, "0xC000014B");
  assert.match(receive.message!, /failed after \d+ of \d+ bytes/);
  assert.equal(lineOf(lines, "WskCloseSocket").status, "STATUS_SUCCESS");
  assert.ok(!stderr.text().includes("error:"), stderr.text());
});

Deno.test("receive --output FILE stopped by SIGTERM (as `timeout` does) prints its closing lines and leaves no temporary file", async () => {
  await using dir = await scratchDir();
  const path = `${dir.path}/keep.txt`;
  await writeText(path, "keep me");
  // The peer sends nothing: the receive waits until the signal.
  await using peer = await Peer.start("silent");
  await using cli = new CliChild(["receive", `127.0.0.1:${peer.port}`, "--output", path]);
  await cli.stdout.waitFor(
    () => cli.stdout.lines().find((line) => line.startsWith("WskConnect ")),
    15_000,
    "the WskConnect line",
  );
  cli.kill("SIGTERM");
  assert.equal(await cli.exitCode(), 1, cli.stderr.text());
  const stdout = cli.stdout;
  const lines = statusLines(stdout.text());
  assert.deepEqual(callsOf(lines), [...CONNECT_CHAIN, "WskReceive", "WskCloseSocket"]);
  assert.equal(lineOf(lines, "WskReceive").status, "STATUS_CANCELLED");
  assert.equal(await Deno.readTextFile(path), "keep me");
  assert.deepEqual(await namesIn(dir.path), ["keep.txt"]);
});

Deno.test("send --receive reports the peer's reset at once and exits while its input is still open", async () => {
  await using peer = await Peer.start("reset");
  await using child = spawnSend(peer.port, { stdin: "piped", args: ["--receive"] });
  const { stderr } = child;
  // The input stays open (an interactive user who typed nothing): before the fix the reset was
  // reported only once the input ended.
  const status = await child.status(10_000, "wsk send exit with its input open");
  assert.equal(status.code, 1, stderr.text());
  const lines = statusLines(stderr.text());
  assert.deepEqual(callsOf(lines), [...CONNECT_CHAIN, "WskReceive", "WskSend", "WskCloseSocket"]);
  assert.equal(lineOf(lines, "WskReceive").status, "STATUS_CONNECTION_RESET");
  assert.equal(lineOf(lines, "WskSend").bytes, "0");
  assert.ok(!stderr.text().includes("error:"), stderr.text());
});

Deno.test("send from an open standard input stopped by SIGTERM ends its input and aborts the connection (exit 1)", async () => {
  await using peer = await Peer.start("sink");
  await using child = spawnSend(peer.port, { stdin: "piped" });
  const { stdout, stderr } = child;
  // Nothing is written: the input is open and empty, so no send is under way at the signal.
  await stdout.waitFor(
    () => stdout.lines().find((line) => line.startsWith("WskConnect ")),
    15_000,
    "the WskConnect line",
  );
  child.kill("SIGTERM");
  // Before the fix the read pending on the open input held the process after the signal.
  const status = await child.status(10_000, "wsk send exit with its input open");
  assert.equal(status.code, 1, `signal ${status.signal}; ${stderr.text()}`);
  assert.equal(stderr.text(), "");
  const lines = statusLines(stdout.text());
  assert.deepEqual(callsOf(lines), [
    ...CONNECT_CHAIN,
    "WskSend",
    "WskDisconnect",
    "WskCloseSocket",
  ]);
  assert.equal(lineOf(lines, "WskSend").status, "STATUS_SUCCESS");
  assert.equal(lineOf(lines, "WskDisconnect").status, "STATUS_CANCELLED");
  // Cut off, so aborted: never a FIN that would make the stream look complete.
  assert.equal((await peer.report()).reset, true);
});

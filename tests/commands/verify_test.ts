// Data verification: the pattern of engine/pattern.ts (unit tests), `send --pattern` and
// `receive --verify-pattern` end to end against python3 peers that compute the same pattern.

import assert from "node:assert/strict";
import { fillPattern, PATTERN_BLOCK, patternByte, PatternVerifier } from "../../engine/pattern.ts";
import { parseSize } from "../../syntax/values.ts";
import { runCli } from "../_helpers.ts";
import { PY_ONE_CONNECTION, PythonPeer } from "../_python.ts";
import {
  assertLines,
  assertUsageFails,
  connectedPrefix,
  failed,
  gracefulEnd,
  ok,
  TIME,
} from "./_peer.ts";

const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// The pattern

// Computed with the formula in python (the same program the peers below use), not with
// engine/pattern.ts, so a change to the formula cannot pass unnoticed.
const KNOWN: ReadonlyArray<{ offset: number; byte: number }> = [
  { offset: 0, byte: 0x7f },
  { offset: 1, byte: 0x8b },
  { offset: 2, byte: 0xec },
  { offset: 3, byte: 0x5d },
  { offset: 1048575, byte: 0x47 },
  { offset: 1048576, byte: 0x3c },
  { offset: 1048577, byte: 0xda },
  { offset: 1048579, byte: 0x2c },
  { offset: 2 ** 32 + 5, byte: 0x78 },
  { offset: 2 ** 40 + 123, byte: 0x9a },
];

Deno.test("patternByte() gives the documented formula's bytes", () => {
  for (const { offset, byte } of KNOWN) assert.equal(patternByte(offset), byte, String(offset));
});

Deno.test("patternByte() refuses offsets that are negative or not safe integers", () => {
  for (const offset of [-1, 1.5, NaN, 2 ** 53]) {
    assert.throws(() => patternByte(offset), RangeError, String(offset));
  }
});

Deno.test("fillPattern() agrees with patternByte() across block boundaries and odd offsets", () => {
  const cases = [
    { offset: 0, length: 4096 },
    { offset: 12345, length: 777 },
    { offset: PATTERN_BLOCK - 100, length: 300 },
    { offset: 3 * PATTERN_BLOCK - 1, length: PATTERN_BLOCK + 2 },
    { offset: 2 ** 32 - 50, length: 100 },
  ];
  for (const { offset, length } of cases) {
    const bytes = new Uint8Array(length);
    fillPattern(bytes, offset);
    for (let i = 0; i < length; i++) {
      if (bytes[i] !== patternByte(offset + i)) {
        assert.fail(`offset ${offset + i}: ${bytes[i]} !== ${patternByte(offset + i)}`);
      }
    }
  }
});

Deno.test("fillPattern() writes only into the view it is given", () => {
  const whole = new Uint8Array(64).fill(0xee);
  fillPattern(whole.subarray(8, 56), 100);
  assert.deepEqual([...whole.subarray(0, 8)], new Array(8).fill(0xee));
  assert.deepEqual([...whole.subarray(56)], new Array(8).fill(0xee));
  assert.equal(whole[8], patternByte(100));
});

Deno.test("the pattern does not repeat: shifted runs and other blocks differ at once", () => {
  const base = new Uint8Array(256);
  fillPattern(base, 0);
  const other = new Uint8Array(256);
  for (const shift of [1, 2, 3, 4, 16, 256, 4096, 65536, PATTERN_BLOCK, 2 * PATTERN_BLOCK]) {
    fillPattern(other, shift);
    let same = 0;
    for (let i = 0; i < base.length; i++) if (base[i] === other[i]) same++;
    // Random bytes agree about once in 256; a periodic pattern would agree everywhere.
    assert.ok(same < 16, `shift ${shift}: ${same} of 256 bytes equal`);
  }
});

Deno.test("PatternVerifier passes a correct stream pushed in uneven chunks", () => {
  const total = 2 * PATTERN_BLOCK + 12345;
  const bytes = new Uint8Array(total);
  fillPattern(bytes, 0);
  const verifier = new PatternVerifier(total);
  let size = 1;
  for (let at = 0; at < total; at += size) {
    size = (size * 7 + 3) % 200_003 + 1;
    verifier.push(bytes.subarray(at, Math.min(total, at + size)));
  }
  assert.equal(verifier.mismatch, null);
  assert.equal(verifier.finish(), null);
  assert.equal(verifier.total, total);
});

Deno.test("PatternVerifier names the first wrong byte with its offset, expected and actual", () => {
  const total = 4 * MiB;
  const bytes = new Uint8Array(total);
  fillPattern(bytes, 0);
  const expected = bytes[1048579]!;
  bytes[1048579] = expected ^ 0x5a;
  bytes[3 * MiB] = bytes[3 * MiB]! ^ 1; // a later error must not replace the first
  const verifier = new PatternVerifier(total);
  verifier.push(bytes.subarray(0, 1048000));
  assert.equal(verifier.mismatch, null);
  verifier.push(bytes.subarray(1048000));
  const hex = (b: number) => "0x" + b.toString(16).toUpperCase().padStart(2, "0");
  const want = {
    kind: "byte",
    offset: 1048579,
    expected,
    actual: expected ^ 0x5a,
    message: `first mismatch at offset 1048579: expected ${hex(expected)}, got ${
      hex(expected ^ 0x5a)
    }`,
  };
  assert.deepEqual(verifier.mismatch, want);
  assert.deepEqual(verifier.finish(), want);
  assert.equal(verifier.total, total);
});

Deno.test("PatternVerifier reports a short stream only at finish()", () => {
  const bytes = new Uint8Array(1000);
  fillPattern(bytes, 0);
  const verifier = new PatternVerifier(4096);
  verifier.push(bytes);
  assert.equal(verifier.mismatch, null);
  assert.deepEqual(verifier.finish(), {
    kind: "short",
    offset: 1000,
    message: "too few bytes: 1000 of 4096",
  });
});

Deno.test("PatternVerifier reports a long stream as soon as it passes the total", () => {
  const bytes = new Uint8Array(5000);
  fillPattern(bytes, 0);
  const verifier = new PatternVerifier(4096);
  verifier.push(bytes.subarray(0, 4096));
  assert.equal(verifier.mismatch, null);
  verifier.push(bytes.subarray(4096, 4097));
  const want = { kind: "long", offset: 4096, message: "too many bytes: more than 4096" };
  assert.deepEqual(verifier.mismatch, want);
  verifier.push(bytes.subarray(4097));
  assert.deepEqual(verifier.finish(), want);
  assert.equal(verifier.total, 5000);
});

Deno.test("PatternVerifier prefers a wrong byte within the total over the overrun", () => {
  const bytes = new Uint8Array(5000);
  fillPattern(bytes, 0);
  bytes[10] = bytes[10]! ^ 0xff;
  const verifier = new PatternVerifier(4096);
  verifier.push(bytes);
  assert.equal(verifier.finish()?.kind, "byte");
  assert.equal(verifier.finish()?.offset, 10);
});

Deno.test("PatternVerifier without a total accepts any length of correct bytes", () => {
  for (const length of [0, 1, 4097]) {
    const bytes = new Uint8Array(length);
    fillPattern(bytes, 0);
    const verifier = new PatternVerifier();
    verifier.push(bytes);
    assert.equal(verifier.finish(), null, String(length));
  }
});

Deno.test("PatternVerifier catches a zero byte where the pattern has a zero-free run", () => {
  // An all-zero stream (a buffer that was never filled) fails at the first non-zero byte.
  const verifier = new PatternVerifier(100);
  verifier.push(new Uint8Array(100));
  const first = Array.from({ length: 100 }, (_, i) => patternByte(i)).findIndex((b) => b !== 0);
  assert.equal(verifier.finish()?.offset, first);
  assert.equal(verifier.finish()?.actual, 0);
});

// ---------------------------------------------------------------------------------------------
// Sizes

Deno.test("parseSize() reads integers with K, M and G as KiB, MiB and GiB", () => {
  const cases = [
    { input: "0", expected: 0 },
    { input: "4096", expected: 4096 },
    { input: "1K", expected: 1024 },
    { input: "64K", expected: 65536 },
    { input: "8M", expected: 8 * MiB },
    { input: "1G", expected: 1024 * MiB },
    { input: "8388607G", expected: 8388607 * 1024 * MiB },
  ];
  for (const { input, expected } of cases) assert.equal(parseSize(input), expected, input);
});

Deno.test("parseSize() refuses anything but digits and one upper-case suffix", () => {
  for (const input of ["", "1.5G", "1GB", "1g", "1KiB", "-1", " 1", "1 ", "01", "G", "0x10"]) {
    assert.throws(
      () => parseSize(input),
      (error: Error) =>
        error.message ===
          `Cannot parse size "${input}": expected a byte count such as 4096, 64K, 8M or 1G`,
      JSON.stringify(input),
    );
  }
  assert.throws(() => parseSize("8388608G"), /Cannot parse size "8388608G": too large/);
});

// ---------------------------------------------------------------------------------------------
// The same pattern in python, restated from the formula in engine/pattern.ts

const PYTHON_PATTERN = String.raw`
B = 1 << 20
def mix32(x):
    x &= 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    x ^= x >> 16
    return x
T = bytes(mix32(i) & 0xFF for i in range(B))
T2 = T + T
def run_at(offset, n):
    """The pattern bytes offset .. offset + n, all within one block."""
    start = (mix32((offset >> 20) + 0x9E3779B9) + (offset & (B - 1))) & (B - 1)
    return T2[start:start + n]
def pattern(offset, n):
    out = bytearray()
    while n > 0:
        k = min(n, B - (offset & (B - 1)))
        out += run_at(offset, k)
        offset += k
        n -= k
    return bytes(out)
`;

/**
 * argv: HOST TOTAL FLIP. PY_ONE_CONNECTION on HOST, then it sends TOTAL pattern bytes to
 * its one client with the byte at FLIP (if >= 0) inverted, half-closes, reads until EOF, then
 * prints {"sent": N, "end": "eof"|"reset"}.
 */
const PATTERN_SOURCE = PYTHON_PATTERN + PY_ONE_CONNECTION + String.raw`
total, flip = int(args[0]), int(args[1])
sent, end = 0, "eof"
try:
    while sent < total:
        chunk = bytearray(pattern(sent, min(B, total - sent)))
        if sent <= flip < sent + len(chunk):
            chunk[flip - sent] ^= 0xFF
        conn.sendall(chunk)
        sent += len(chunk)
    conn.shutdown(socket.SHUT_WR)
    while conn.recv(65536):
        pass
except OSError:  # reset, broken pipe, or ENOTCONN after the CLI reset the connection
    end = "reset"
conn.close()
print(json.dumps({"sent": sent, "end": end}), flush=True)
`;

/**
 * argv: HOST. PY_ONE_CONNECTION on HOST, then it reads its one client to EOF checking
 * every byte against the pattern, then prints {"received": N, "mismatch": OFFSET or null}.
 */
const PATTERN_SINK = PYTHON_PATTERN + PY_ONE_CONNECTION + String.raw`
received, mismatch = 0, None
while True:
    data = conn.recv(1 << 20)
    if not data:
        break
    if mismatch is None and data != pattern(received, len(data)):
        want = pattern(received, len(data))
        mismatch = received + next(i for i in range(len(data)) if data[i] != want[i])
    received += len(data)
conn.close()
print(json.dumps({"received": received, "mismatch": mismatch}), flush=True)
`;

interface SourceReport {
  readonly sent: number;
  readonly end: "eof" | "reset";
}

interface SinkReport {
  readonly received: number;
  readonly mismatch: number | null;
}

function patternSource(total: number, flip = -1): Promise<PythonPeer<SourceReport>> {
  return PythonPeer.start<SourceReport>(PATTERN_SOURCE, ["127.0.0.1", String(total), String(flip)]);
}

/** Starts a PATTERN_SINK on 127.0.0.1. */
function patternSink(): Promise<PythonPeer<SinkReport>> {
  return PythonPeer.start<SinkReport>(PATTERN_SINK, ["127.0.0.1"]);
}

/** Any address on 127.0.0.1. */
const LOOPBACK = /^127\.0\.0\.1:\d+$/;

const hexByte = (b: number) => "0x" + b.toString(16).toUpperCase().padStart(2, "0");

/** The lines of a receive whose stream ended (FIN) and was reported with `receive` fields. */
function receivedToEnd(receive: ReturnType<typeof ok>): ReturnType<typeof ok>[] {
  const [local, remote] = [LOOPBACK, LOOPBACK];
  return [
    ...connectedPrefix(local, remote),
    { ...receive, local, remote },
    ok("WskDisconnect", { local, remote }),
    ok("WskCloseSocket", { local, remote }),
  ];
}

/** The lines of a receive cut short by a mismatch: the socket is closed (reset) at once. */
function stoppedEarly(receive: ReturnType<typeof ok>): ReturnType<typeof ok>[] {
  const [local, remote] = [LOOPBACK, LOOPBACK];
  return [
    ...connectedPrefix(local, remote),
    { ...receive, local, remote },
    // Closed before the stream's end: without --allow-ffi the deno backing can only close (FIN).
    ok("WskCloseSocket", { local, remote, peer_saw: "FIN" }),
  ];
}

// ---------------------------------------------------------------------------------------------
// receive --verify-pattern

Deno.test("receive --verify-pattern passes a correct 64 MiB pattern and writes no data", async () => {
  await using peer = await patternSource(64 * MiB);
  const result = await runCli(["receive", peer.address, "--verify-pattern", "64M"], {
    timeoutMs: 60_000,
  });
  assert.deepEqual(await peer.report(), { sent: 64 * MiB, end: "eof" });
  assert.equal(result.stderr, "");
  assert.equal(result.code, 0);
  assertLines(
    result.stdout,
    receivedToEnd(ok("WskReceive", { bytes: String(64 * MiB), calls: /^\d+$/ })),
  );
});

Deno.test("receive --verify-pattern names the offset of a corrupted byte, STATUS_DATA_ERROR, exit 1", async () => {
  for (const flip of [0, 1048579, 5 * MiB + 77]) {
    await using peer = await patternSource(8 * MiB, flip);
    const result = await runCli(["receive", peer.address, "--verify-pattern", "8M"]);
    await peer.report();
    const want = patternByte(flip);
    assert.equal(result.stderr, "");
    assert.equal(result.code, 1, result.stdout);
    const lines = assertLines(
      result.stdout,
      stoppedEarly(
        failed("WskReceive", "STATUS_DATA_ERROR", "0xC000003E", {
          bytes: /^\d+$/,
          calls: /^\d+$/,
          message: `first mismatch at offset ${flip}: expected ${hexByte(want)}, got ${
            hexByte(want ^ 0xff)
          }`,
        }),
      ),
    );
    // It stopped at the chunk that held the bad byte, not at the end of the stream.
    const got = Number(lines[3]!.bytes);
    assert.ok(got > flip && got < 8 * MiB, `bytes=${got} for a flip at ${flip}`);
  }
});

Deno.test("receive --verify-pattern reports a short stream as too few bytes, exit 1", async () => {
  await using peer = await patternSource(1000);
  const result = await runCli(["receive", peer.address, "--verify-pattern", "4096"]);
  assert.deepEqual(await peer.report(), { sent: 1000, end: "eof" });
  assert.equal(result.stderr, "");
  assert.equal(result.code, 1);
  assertLines(
    result.stdout,
    receivedToEnd(
      failed("WskReceive", "STATUS_DATA_ERROR", "0xC000003E", {
        bytes: "1000",
        calls: /^\d+$/,
        message: "too few bytes: 1000 of 4096",
      }),
    ),
  );
});

Deno.test("receive --verify-pattern reports a long stream as too many bytes, exit 1", async () => {
  await using peer = await patternSource(5000);
  const result = await runCli(["receive", peer.address, "--verify-pattern", "4096", "--json"]);
  await peer.report();
  assert.equal(result.stderr, "");
  assert.equal(result.code, 1);
  const records = result.stdout.trim().split("\n").map((line) => JSON.parse(line));
  const receive = records.find((r) => r.call === "WskReceive");
  assert.equal(receive.status, "STATUS_DATA_ERROR");
  assert.equal(receive.ntstatus, "0xC000003E");
  assert.equal(receive.message, "too many bytes: more than 4096");
  assert.ok(receive.information > 4096);
  assert.deepEqual(records.map((r) => r.call), [
    "WskSocket",
    "WskBind",
    "WskConnect",
    "WskReceive",
    "WskCloseSocket",
  ]);
});

Deno.test("receive --verify-pattern without a size checks whatever length arrives", async () => {
  await using peer = await patternSource(3 * MiB + 5);
  const result = await runCli(["receive", peer.address, "--verify-pattern"]);
  await peer.report();
  assert.equal(result.code, 0, result.stdout + result.stderr);
  assertLines(
    result.stdout,
    receivedToEnd(ok("WskReceive", { bytes: String(3 * MiB + 5), calls: /^\d+$/ })),
  );
});

Deno.test("receive --verify-pattern --output - still writes the data it checked", async () => {
  await using peer = await patternSource(70_000);
  const result = await runCli(["receive", peer.address, "--verify-pattern", "--output", "-"]);
  await peer.report();
  assert.equal(result.code, 0, result.stderr);
  const expected = new Uint8Array(70_000);
  fillPattern(expected, 0);
  assert.deepEqual(result.stdoutBytes, expected);
  assertLines(result.stderr, receivedToEnd(ok("WskReceive", { bytes: "70000", calls: /^\d+$/ })));
});

Deno.test("receive --verify-pattern refuses --drain and a second total, before any socket", async () => {
  const cases = [
    {
      args: ["--verify-pattern", "--drain"],
      stderr: "error: option '--drain' cannot be used with option '--verify-pattern [size]'\n",
    },
    {
      args: ["--verify-pattern", "1G", "--bytes", "5"],
      stderr: 'error: Cannot use "--bytes 5" with "--verify-pattern 1073741824": the pattern\'s ' +
        "size is the total\n",
    },
    {
      args: ["--verify-pattern", "1.5G"],
      stderr: "error: option '--verify-pattern [size]' argument '1.5G' is invalid. Cannot parse " +
        'size "1.5G": expected a byte count such as 4096, 64K, 8M or 1G\n',
    },
  ];
  for (const { args, stderr } of cases) {
    await assertUsageFails(["receive", "127.0.0.1:1", ...args], stderr);
  }
});

// ---------------------------------------------------------------------------------------------
// send --pattern

Deno.test("send --pattern 8M delivers the pattern a python receiver checks byte for byte", async () => {
  await using peer = await patternSink();
  const result = await runCli(["send", peer.address, "--pattern", "8M"]);
  assert.deepEqual(await peer.report(), { received: 8 * MiB, mismatch: null });
  assert.equal(result.stderr, "");
  assert.equal(result.code, 0);
  const [local, remote] = [LOOPBACK, peer.address];
  assertLines(result.stdout, [
    ...connectedPrefix(local, remote),
    ok("WskSend", { local, remote, bytes: String(8 * MiB), calls: "8" }),
    ...gracefulEnd(local, remote),
  ]);
});

Deno.test("send --pattern of a size that is not a whole block ends exactly there", async () => {
  await using peer = await patternSink();
  const result = await runCli(["send", peer.address, "--pattern", "1000001"]);
  assert.deepEqual(await peer.report(), { received: 1000001, mismatch: null });
  assert.equal(result.code, 0, result.stdout + result.stderr);
  const send = result.stdout.split("\n").find((line) => line.startsWith("WskSend "));
  assert.match(send ?? "", / bytes=1000001 calls=1 time=/);
  assert.match(send!.split("time=")[1]!.split(" ")[0]!, TIME);
});

Deno.test("send --pattern conflicts with --data and --file, before any socket", async () => {
  const cases = [
    {
      args: ["--pattern", "1K", "--data", "x"],
      stderr: "error: option '--data <text>' cannot be used with option '--pattern <size>'\n",
    },
    {
      args: ["--pattern", "1K", "--file", "-"],
      stderr: "error: option '--file <path>' cannot be used with option '--pattern <size>'\n",
    },
    {
      args: ["--pattern", "1KB"],
      stderr: "error: option '--pattern <size>' argument '1KB' is invalid. Cannot parse size " +
        '"1KB": expected a byte count such as 4096, 64K, 8M or 1G\n',
    },
  ];
  for (const { args, stderr } of cases) {
    await assertUsageFails(["send", "127.0.0.1:1", ...args], stderr);
  }
});

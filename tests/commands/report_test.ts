/**
 * Unit tests of report/reporter.ts (the line grammar, JSON fields, routing and colour) and
 * in-process tests of `main()` for help, version and usage exit codes.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  type CallRecord,
  describeCause,
  escapeBytes,
  formatElapsed,
  formatHuman,
  formatJson,
  Reporter,
  type ReportOptions,
  type TextSink,
  writerSink,
} from "../../report/reporter.ts";
import type { CliContext } from "../../cli/command.ts";
import { main, VERSION } from "../../main.ts";
import {
  formatNtStatus,
  type NTSTATUS,
  sockAddr,
  STATUS_BUFFER_OVERFLOW,
  STATUS_CANCELLED,
  STATUS_CONNECTION_REFUSED,
  STATUS_CONNECTION_RESET,
  STATUS_PENDING,
  STATUS_SUCCESS,
} from "../../provider/mod.ts";
import { parseLine } from "../_helpers.ts";

const HUMAN: ReportOptions = { json: false, verbose: false, color: false };
const VERBOSE: ReportOptions = { json: false, verbose: true, color: false };
const COLOR: ReportOptions = { json: false, verbose: false, color: true };
const JSON_LINES: ReportOptions = { json: true, verbose: false, color: false };
const JSON_VERBOSE: ReportOptions = { json: true, verbose: true, color: false };

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

/** A host error as node-style code paths throw it. */
const RESET_CAUSE = Object.assign(new Error("boom"), { code: "ECONNRESET" });

/** The ESC-introduced SGR sequences the reporter may add. */
// deno-lint-ignore no-control-regex
const SGR_REGEXP = /\x1b\[[0-9;]*m/g;

/** WskConnect from 127.0.0.1:50000 to 127.0.0.1:8080, a success. */
const CONNECTED_V4: CallRecord = {
  call: "WskConnect",
  status: STATUS_SUCCESS,
  information: 0,
  socket: 1,
  local: sockAddr("127.0.0.1", 50000),
  remote: sockAddr("127.0.0.1", 8080),
  elapsedMs: 1.5,
};

/** WskConnect refused by [::1]:9, with its message. */
const REFUSED_V6: CallRecord = {
  call: "WskConnect",
  status: STATUS_CONNECTION_REFUSED,
  information: 0,
  socket: 2,
  local: sockAddr("::1", 40000),
  remote: sockAddr("::1", 9),
  elapsedMs: 0.25,
  message: "Connect to [::1]:9: Connection refused",
};

/** WskReceive reset by the peer, with its message and the host error behind it. */
const RESET: CallRecord = {
  call: "WskReceive",
  status: STATUS_CONNECTION_RESET,
  information: 0,
  socket: 1,
  elapsedMs: 1,
  message: "reset",
  cause: RESET_CAUSE,
};

/** A successful WskReceive on socket 1 that took 1 ms and got `data`. */
function received(data: Uint8Array, information = data.length): CallRecord {
  return { call: "WskReceive", status: STATUS_SUCCESS, information, socket: 1, elapsedMs: 1, data };
}

const RESET_LINE = "WskReceive STATUS_CONNECTION_RESET 0xC000020D socket=1 bytes=0 time=1.000ms " +
  'message="reset"';

const HUMAN_CASES: readonly {
  readonly name: string;
  readonly record: CallRecord;
  readonly options?: ReportOptions;
  readonly expected: string;
}[] = [
  {
    name: "a success with IPv4 endpoints",
    record: CONNECTED_V4,
    expected: "WskConnect STATUS_SUCCESS 0x00000000 socket=1 local=127.0.0.1:50000 " +
      "remote=127.0.0.1:8080 bytes=0 time=1.500ms",
  },
  {
    name: "a failure with bracketed IPv6 endpoints and its message",
    record: REFUSED_V6,
    expected: "WskConnect STATUS_CONNECTION_REFUSED 0xC0000236 socket=2 local=[::1]:40000 " +
      'remote=[::1]:9 bytes=0 time=0.250ms message="Connect to [::1]:9: Connection refused"',
  },
  {
    name: "a success whose message is not shown",
    record: {
      call: "WskSend",
      status: STATUS_SUCCESS,
      information: 5,
      socket: 1,
      elapsedMs: 2,
      message: "should not appear",
    },
    expected: "WskSend STATUS_SUCCESS 0x00000000 socket=1 bytes=5 time=2.000ms",
  },
  {
    name: "a line with no socket and null endpoints",
    record: {
      call: "WskGetAddressInfo",
      status: 0xC0000225,
      information: 0,
      local: null,
      remote: null,
      elapsedMs: 3.25,
      message: 'Resolve "nowhere": not found',
    },
    expected: "WskGetAddressInfo STATUS_NOT_FOUND 0xC0000225 bytes=0 time=3.250ms " +
      'message="Resolve \\"nowhere\\": not found"',
  },
  {
    name: "the calls field of an aggregated loop",
    record: {
      call: "WskSend",
      status: STATUS_SUCCESS,
      information: 1048576,
      socket: 4,
      calls: 4,
      elapsedMs: 1234.4,
    },
    expected: "WskSend STATUS_SUCCESS 0x00000000 socket=4 bytes=1048576 calls=4 time=1234ms",
  },
  {
    name: "the option and value fields of WskControlSocket",
    record: {
      call: "WskControlSocket",
      status: STATUS_SUCCESS,
      information: 0,
      socket: 3,
      option: "TCP_NODELAY",
      value: 1,
      elapsedMs: 12.34,
    },
    expected:
      "WskControlSocket STATUS_SUCCESS 0x00000000 socket=3 bytes=0 option=TCP_NODELAY value=1 " +
      "time=12.3ms",
  },
  {
    name: "a text value",
    record: {
      call: "WskDisconnectEvent",
      status: STATUS_SUCCESS,
      information: 0,
      socket: 1,
      value: "graceful",
      elapsedMs: 0,
    },
    expected: "WskDisconnectEvent STATUS_SUCCESS 0x00000000 socket=1 bytes=0 value=graceful " +
      "time=0.000ms",
  },
  {
    name: "data with quotes, backslashes, control and binary bytes escaped",
    record: received(new Uint8Array([...bytes('a"b\\c\n\r\t'), 0x00, 0x1b, 0x7f, 0xff])),
    expected: "WskReceive STATUS_SUCCESS 0x00000000 socket=1 bytes=12 time=1.000ms " +
      'data="a\\"b\\\\c\\n\\r\\t\\u0000\\u001b\\u007f\\u00ff"',
  },
  {
    name: "multi-byte UTF-8 shown as one escape per byte",
    record: received(bytes("é")),
    expected:
      'WskReceive STATUS_SUCCESS 0x00000000 socket=1 bytes=2 time=1.000ms data="\\u00c3\\u00a9"',
  },
  {
    name: "empty data left out",
    record: received(new Uint8Array(0)),
    expected: "WskReceive STATUS_SUCCESS 0x00000000 socket=1 bytes=0 time=1.000ms",
  },
  {
    name: "long data cut after 256 bytes with the rest counted",
    record: received(bytes("x".repeat(300))),
    expected: "WskReceive STATUS_SUCCESS 0x00000000 socket=1 bytes=300 time=1.000ms " +
      `data="${"x".repeat(256)}...(+44 bytes)"`,
  },
  {
    name: "a message with quotes and a newline kept on one line",
    record: {
      call: "WskReceive",
      status: STATUS_CONNECTION_RESET,
      information: 0,
      socket: 1,
      elapsedMs: 1,
      message: 'peer said "no"\nthen left',
    },
    expected: "WskReceive STATUS_CONNECTION_RESET 0xC000020D socket=1 bytes=0 time=1.000ms " +
      'message="peer said \\"no\\"\\nthen left"',
  },
  {
    name: "the cause left out without --verbose",
    record: RESET,
    expected: RESET_LINE,
  },
  {
    name: "the cause shown with --verbose",
    record: RESET,
    options: VERBOSE,
    expected: `${RESET_LINE} cause="ECONNRESET Error: boom"`,
  },
  {
    name: "a status without a name, named by its hex value",
    record: { call: "WskSend", status: 0xC0FFEE00, information: 0, socket: 1, elapsedMs: 1 },
    expected: "WskSend NTSTATUS_0xC0FFEE00 0xC0FFEE00 socket=1 bytes=0 time=1.000ms",
  },
  {
    name: "STATUS_PENDING, a success status whose message is not shown",
    record: {
      call: "WskReceiveEvent",
      status: STATUS_PENDING,
      information: 5,
      socket: 1,
      elapsedMs: 0,
      message: "held",
    },
    expected: "WskReceiveEvent STATUS_PENDING 0x00000103 socket=1 bytes=5 time=0.000ms",
  },
];

for (const { name, record, options, expected } of HUMAN_CASES) {
  Deno.test(`formatHuman() writes ${name}`, () => {
    const line = formatHuman(record, options ?? HUMAN);
    assert.equal(line, expected);
    assert.ok(!line.includes("\n"), "a status line is one line");
    const fields = parseLine(line);
    assert.equal(fields.call, record.call);
    assert.equal(fields.ntstatus, formatNtStatus(record.status));
    assert.equal(fields.bytes, String(record.information));
    if (record.message !== undefined && fields.message !== undefined) {
      assert.equal(fields.message, record.message);
    }
  });
}

Deno.test("formatHuman() data parses back to one code unit per byte", () => {
  const data = new Uint8Array([0x00, 0x22, 0x5c, 0x0a, 0x41, 0x80, 0xff]);
  const line = formatHuman(received(data), HUMAN);
  const shown = parseLine(line).data;
  assert.ok(shown !== undefined, line);
  assert.deepEqual([...shown].map((c) => c.charCodeAt(0)), [...data]);
});

/** What formatJson() writes for a successful WskReceive of `received()`, plus `fields`. */
function receivedJson(
  information: number,
  fields: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    call: "WskReceive",
    status: "STATUS_SUCCESS",
    ntstatus: "0x00000000",
    information,
    socket: 1,
    elapsed_ms: 1,
    ...fields,
  };
}

/** What formatJson() writes for RESET, without its cause. */
const RESET_JSON = {
  call: "WskReceive",
  status: "STATUS_CONNECTION_RESET",
  ntstatus: "0xC000020D",
  information: 0,
  socket: 1,
  "elapsed_ms": 1,
  message: "reset",
};

const JSON_CASES: readonly {
  readonly name: string;
  readonly record: CallRecord;
  readonly options?: ReportOptions;
  readonly expected: Record<string, unknown>;
}[] = [
  {
    name: "a success with IPv4 endpoints and no message field",
    record: { ...CONNECTED_V4, message: "not on success" },
    expected: {
      call: "WskConnect",
      status: "STATUS_SUCCESS",
      ntstatus: "0x00000000",
      information: 0,
      socket: 1,
      local: "127.0.0.1:50000",
      remote: "127.0.0.1:8080",
      elapsed_ms: 1.5,
    },
  },
  {
    name: "a failure with bracketed IPv6 endpoints and its message",
    record: REFUSED_V6,
    expected: {
      call: "WskConnect",
      status: "STATUS_CONNECTION_REFUSED",
      ntstatus: "0xC0000236",
      information: 0,
      socket: 2,
      local: "[::1]:40000",
      remote: "[::1]:9",
      elapsed_ms: 0.25,
      message: "Connect to [::1]:9: Connection refused",
    },
  },
  {
    name: "calls, option and value",
    record: {
      call: "WskControlSocket",
      status: STATUS_SUCCESS,
      information: 0,
      socket: 3,
      calls: 2,
      option: "SO_RCVBUF",
      value: 131072,
      elapsedMs: 0.123456,
    },
    expected: {
      call: "WskControlSocket",
      status: "STATUS_SUCCESS",
      ntstatus: "0x00000000",
      information: 0,
      socket: 3,
      calls: 2,
      option: "SO_RCVBUF",
      value: 131072,
      elapsed_ms: 0.123,
    },
  },
  {
    name: "valid UTF-8 payload as data, with quotes and non-ASCII intact",
    record: received(bytes('héllo "✓"\n\\'), 18),
    expected: receivedJson(18, { data: 'héllo "✓"\n\\' }),
  },
  {
    name: "invalid UTF-8 payload as base64 and no data field",
    record: received(new Uint8Array([0xff, 0xfe, 0x00, 0x80])),
    expected: receivedJson(4, { base64: "//4AgA==" }),
  },
  {
    name: "a truncated UTF-8 sequence as base64",
    record: received(new Uint8Array([0x61, 0xe2])),
    expected: receivedJson(2, { base64: "YeI=" }),
  },
  {
    name: "empty payload with neither data nor base64",
    record: received(new Uint8Array(0)),
    expected: receivedJson(0),
  },
  {
    name: "a failure without cause when not verbose",
    record: RESET,
    expected: RESET_JSON,
  },
  {
    name: "a failure with its cause when verbose",
    record: RESET,
    options: JSON_VERBOSE,
    expected: { ...RESET_JSON, cause: "ECONNRESET Error: boom" },
  },
  {
    name: "a line without socket or endpoints, plus extra fields",
    record: {
      call: "WskGetAddressInfo",
      status: STATUS_SUCCESS,
      information: 0,
      local: null,
      remote: null,
      elapsedMs: 2,
      extra: { step: 3, line: "connect", expected: true },
    },
    expected: {
      call: "WskGetAddressInfo",
      status: "STATUS_SUCCESS",
      ntstatus: "0x00000000",
      information: 0,
      elapsed_ms: 2,
      step: 3,
      line: "connect",
      expected: true,
    },
  },
  {
    name: "a warning status with its message (warnings are not successes)",
    record: {
      call: "WskReceive",
      status: STATUS_BUFFER_OVERFLOW,
      information: 0,
      socket: 1,
      elapsedMs: 1,
      message: "too small",
    },
    expected: {
      call: "WskReceive",
      status: "STATUS_BUFFER_OVERFLOW",
      ntstatus: "0x80000005",
      information: 0,
      socket: 1,
      elapsed_ms: 1,
      message: "too small",
    },
  },
];

for (const { name, record, options, expected } of JSON_CASES) {
  Deno.test(`formatJson() writes ${name}`, () => {
    const line = formatJson(record, options ?? JSON_LINES);
    assert.ok(!line.includes("\n"), "a JSON line is one line");
    assert.deepEqual(JSON.parse(line), expected);
  });
}

Deno.test("formatJson() base64 of a large invalid-UTF-8 payload decodes to the same bytes", () => {
  const data = new Uint8Array(100_000);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + 0x80) & 0xff;
  const object = JSON.parse(formatJson(received(data), JSON_LINES));
  assert.equal(object.data, undefined);
  const decoded = Uint8Array.from(atob(object.base64), (c) => c.charCodeAt(0));
  assert.deepEqual(decoded, data);
});

Deno.test("formatJson() names an unknown status by its hex value", () => {
  const object = JSON.parse(formatJson({
    call: "WskSend",
    status: 0xC0FFEE00,
    information: 0,
    elapsedMs: 0,
  }, JSON_LINES));
  assert.equal(object.status, "NTSTATUS_0xC0FFEE00");
  assert.equal(object.ntstatus, "0xC0FFEE00");
});

const NTSTATUS_CASES: readonly { readonly status: NTSTATUS; readonly hex: string }[] = [
  { status: STATUS_SUCCESS, hex: "0x00000000" },
  { status: 1, hex: "0x00000001" },
  { status: STATUS_PENDING, hex: "0x00000103" },
  { status: STATUS_BUFFER_OVERFLOW, hex: "0x80000005" },
  { status: STATUS_CANCELLED, hex: "0xC0000120" },
  { status: STATUS_CONNECTION_RESET, hex: "0xC000020D" },
  { status: STATUS_CONNECTION_REFUSED, hex: "0xC0000236" },
  { status: STATUS_CONNECTION_REFUSED | 0, hex: "0xC0000236" },
  { status: 0xabcdef, hex: "0x00ABCDEF" },
  { status: 0xFFFFFFFF, hex: "0xFFFFFFFF" },
  { status: -1, hex: "0xFFFFFFFF" },
];

for (const { status, hex } of NTSTATUS_CASES) {
  Deno.test(`formatNtStatus(${status}) is "${hex}" in both line formats`, () => {
    assert.match(hex, /^0x[0-9A-F]{8}$/);
    assert.equal(formatNtStatus(status), hex);
    const record: CallRecord = { call: "WskSend", status, information: 0, elapsedMs: 0 };
    assert.equal(parseLine(formatHuman(record, HUMAN)).ntstatus, hex);
    assert.equal(JSON.parse(formatJson(record, JSON_LINES)).ntstatus, hex);
  });
}

const ELAPSED_CASES: readonly { readonly ms: number; readonly text: string }[] = [
  { ms: 0, text: "0.000" },
  { ms: 0.0004, text: "0.000" },
  { ms: 0.25, text: "0.250" },
  { ms: 9.9994, text: "9.999" },
  { ms: 12.34, text: "12.3" },
  { ms: 999.94, text: "999.9" },
  { ms: 1234.4, text: "1234" },
];

for (const { ms, text } of ELAPSED_CASES) {
  Deno.test(`formatElapsed(${ms}) is "${text}"`, () => {
    assert.equal(formatElapsed(ms), text);
  });
}

Deno.test("escapeBytes() output is a JSON string body, and the limit counts what was cut", () => {
  const data = new Uint8Array(256);
  for (let i = 0; i < 256; i++) data[i] = i;
  const escaped = escapeBytes(data);
  const decoded: string = JSON.parse(`"${escaped}"`);
  assert.deepEqual([...decoded].map((c) => c.charCodeAt(0)), [...data]);
  assert.equal(escapeBytes(bytes("abcdef"), 4), "abcd...(+2 bytes)");
  assert.equal(escapeBytes(bytes("abcd"), 4), "abcd");
});

Deno.test("describeCause() gives the code once, then the error", () => {
  assert.equal(describeCause(undefined), "");
  assert.equal(describeCause(RESET_CAUSE), "ECONNRESET Error: boom");
  const named = Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
  assert.equal(describeCause(named), "Error: read ECONNRESET");
  assert.equal(describeCause(new TypeError("bad")), "TypeError: bad");
  assert.equal(describeCause("plain text"), "plain text");
});

const COLOR_CASES: readonly { readonly record: CallRecord; readonly sgr: number }[] = [
  {
    record: {
      call: "WskConnect",
      status: STATUS_SUCCESS,
      information: 0,
      socket: 1,
      local: sockAddr("127.0.0.1", 50000),
      remote: sockAddr("::1", 8080),
      elapsedMs: 1,
    },
    sgr: 32,
  },
  {
    record: {
      call: "WskConnect",
      status: STATUS_CONNECTION_REFUSED,
      information: 0,
      socket: 1,
      remote: sockAddr("127.0.0.1", 9),
      elapsedMs: 1,
      message: "refused",
    },
    sgr: 31,
  },
  {
    record: {
      call: "WskReceive",
      status: STATUS_SUCCESS,
      information: 3,
      socket: 1,
      elapsedMs: 1,
      data: bytes("\x1b[1m"),
    },
    sgr: 32,
  },
];

for (const { record, sgr } of COLOR_CASES) {
  Deno.test(
    `formatHuman() colours ${record.call} ${sgr === 32 ? "success" : "failure"} only when asked, ` +
      "and the line parses the same once the colour is stripped",
    () => {
      const plain = formatHuman(record, HUMAN);
      const painted = formatHuman(record, COLOR);
      assert.ok(!plain.includes("\x1b"), "no escape in a plain line (payload is escaped too)");
      const tokens = painted.split(" ");
      assert.equal(tokens[1], `\x1b[${sgr}m${parseLine(plain).status}\x1b[39m`);
      assert.equal(painted.replace(SGR_REGEXP, ""), plain);
      assert.deepEqual(parseLine(painted.replace(SGR_REGEXP, "")), parseLine(plain));
      // JSON never carries colour, whatever the option says.
      const json = formatJson(record, { json: true, verbose: false, color: true });
      assert.ok(!json.includes("\x1b"));
    },
  );
}

/** A sink that keeps its lines. */
function captureSink(): TextSink & { readonly lines: string[] } {
  const lines: string[] = [];
  return { lines, line: (text: string) => void lines.push(text) };
}

const OK_RECORD: CallRecord = {
  call: "WskSend",
  status: STATUS_SUCCESS,
  information: 5,
  socket: 1,
  elapsedMs: 1,
};

Deno.test("Reporter writes status lines to stdout and notes to stderr", () => {
  const out = captureSink();
  const err = captureSink();
  const reporter = new Reporter(out, err, HUMAN);
  reporter.record(OK_RECORD);
  reporter.note("listening");
  assert.deepEqual(out.lines, [formatHuman(OK_RECORD, HUMAN)]);
  assert.deepEqual(err.lines, ["listening"]);
  assert.equal(reporter.lines, 1);
  assert.equal(reporter.json, false);
});

Deno.test("Reporter moves status lines to stderr when payload goes to stdout", () => {
  const out = captureSink();
  const err = captureSink();
  const reporter = new Reporter(out, err, JSON_LINES);
  reporter.payloadOnStdout = true;
  reporter.record(OK_RECORD);
  reporter.record({ ...OK_RECORD, status: STATUS_CONNECTION_RESET, message: "reset" });
  reporter.note("a note");
  assert.deepEqual(out.lines, []);
  assert.equal(err.lines.length, 3);
  assert.equal(JSON.parse(err.lines[0]!).status, "STATUS_SUCCESS");
  assert.equal(JSON.parse(err.lines[1]!).status, "STATUS_CONNECTION_RESET");
  assert.equal(err.lines[2], "a note");
  assert.equal(reporter.lines, 2);
  assert.equal(reporter.json, true);
});

Deno.test("Reporter goes back to stdout when payloadOnStdout is turned off", () => {
  const out = captureSink();
  const err = captureSink();
  const reporter = new Reporter(out, err, HUMAN);
  reporter.payloadOnStdout = true;
  reporter.payloadOnStdout = false;
  reporter.record(OK_RECORD);
  assert.equal(out.lines.length, 1);
  assert.deepEqual(err.lines, []);
});

const FAILED_CASES: readonly {
  readonly name: string;
  readonly statuses: readonly NTSTATUS[];
  readonly expected?: NTSTATUS;
  readonly failed: boolean;
}[] = [
  { name: "successes only", statuses: [STATUS_SUCCESS, STATUS_SUCCESS], failed: false },
  { name: "STATUS_PENDING (a success status)", statuses: [STATUS_PENDING], failed: false },
  { name: "an unexpected refusal", statuses: [STATUS_CONNECTION_REFUSED], failed: true },
  { name: "a warning status", statuses: [STATUS_BUFFER_OVERFLOW], failed: true },
  {
    name: "the expected cancellation",
    statuses: [STATUS_SUCCESS, STATUS_CANCELLED],
    expected: STATUS_CANCELLED,
    failed: false,
  },
  {
    name: "a reset where a cancellation was expected",
    statuses: [STATUS_CONNECTION_RESET],
    expected: STATUS_CANCELLED,
    failed: true,
  },
  {
    name: "a failure followed by a success (it stays failed)",
    statuses: [STATUS_CONNECTION_RESET, STATUS_SUCCESS],
    failed: true,
  },
];

for (const { name, statuses, expected, failed } of FAILED_CASES) {
  Deno.test(`Reporter.failed is ${failed} after ${name}`, () => {
    const reporter = new Reporter(captureSink(), captureSink(), HUMAN);
    for (const status of statuses) reporter.record({ ...OK_RECORD, status }, expected);
    assert.equal(reporter.failed, failed);
    assert.equal(reporter.lines, statuses.length);
  });
}

Deno.test("Reporter.fail() marks the run failed without writing a line", () => {
  const out = captureSink();
  const err = captureSink();
  const reporter = new Reporter(out, err, HUMAN);
  reporter.record(OK_RECORD);
  assert.equal(reporter.failed, false);
  reporter.fail();
  assert.equal(reporter.failed, true);
  assert.equal(out.lines.length, 1);
  assert.deepEqual(err.lines, []);
});

Deno.test("writerSink() writes the whole line and its newline through short writes", () => {
  const written: number[] = [];
  const sink = writerSink({
    writeSync(p: Uint8Array): number {
      const n = Math.min(3, p.length);
      written.push(...p.subarray(0, n));
      return n;
    },
  });
  sink.line("héllo ✓");
  sink.line("");
  assert.equal(new TextDecoder().decode(new Uint8Array(written)), "héllo ✓\n\n");
});

/** A CliContext that keeps what main() writes. */
function fakeContext(): CliContext & { readonly out: string[]; readonly err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    stdout: { line: (text: string) => void out.push(...text.split("\n")) },
    stderr: { line: (text: string) => void err.push(...text.split("\n")) },
    writePayload: () => Promise.resolve(),
    stdin: () => ({ read: () => Promise.resolve(null), close: () => {} }),
    color: false,
    exitCode: 0,
  };
}

Deno.test("main() --help returns 0 with the usage on stdout", async () => {
  const ctx = fakeContext();
  assert.equal(await main(["--help"], ctx), 0);
  assert.deepEqual(ctx.err, []);
  assert.match(ctx.out[0] ?? "", /^Usage: wsk /);
  assert.ok(ctx.out.includes("Commands:"), ctx.out.join("\n"));
});

Deno.test("main() connect --help returns 0 with dispatch calls and examples on stdout", async () => {
  const ctx = fakeContext();
  assert.equal(await main(["connect", "--help"], ctx), 0);
  assert.deepEqual(ctx.err, []);
  assert.match(ctx.out[0] ?? "", /^Usage: wsk connect /);
  assert.ok(ctx.out.some((line) => /^Dispatch calls: .*\bWskConnect\b/.test(line)));
  const examples = ctx.out.indexOf("Examples:");
  assert.ok(examples > 0, ctx.out.join("\n"));
  assert.equal(ctx.out[examples + 1], "  $ wsk connect 127.0.0.1:8080");
});

for (const flag of ["-V", "--version"]) {
  Deno.test(`main() ${flag} returns 0 with the version alone on stdout`, async () => {
    const ctx = fakeContext();
    assert.equal(await main([flag], ctx), 0);
    assert.deepEqual(ctx.out, [VERSION]);
    assert.deepEqual(ctx.err, []);
  });
}

Deno.test("main() returns 2 for an unknown command with one error line on stderr", async () => {
  const ctx = fakeContext();
  assert.equal(await main(["bogus"], ctx), 2);
  assert.deepEqual(ctx.out, []);
  assert.deepEqual(ctx.err, ["error: unknown command 'bogus'"]);
});

Deno.test("main() returns 2 for a usage error the action finds, before any call", async () => {
  const ctx = fakeContext();
  assert.equal(await main(["controlsocket", "127.0.0.1:9"], ctx), 2);
  assert.deepEqual(ctx.out, []);
  assert.deepEqual(ctx.err, [
    "error: Nothing to do: give at least one --set NAME=VALUE or --get NAME",
  ]);
  assert.equal(ctx.exitCode, 0);
});

Deno.test("main() returns 2 for a numeric-looking host and writes no status line", async () => {
  const ctx = fakeContext();
  assert.equal(await main(["connect", "999.1.1.1:80", "--timeout", "1"], ctx), 2);
  assert.deepEqual(ctx.out, []);
  assert.equal(ctx.err.length, 1);
  assert.match(ctx.err[0]!, /^error: .*"999\.1\.1\.1:80": not a valid IPv4 or IPv6 literal$/);
});

Deno.test("main() returns 2 without arguments, the usage going to stderr", async () => {
  const ctx = fakeContext();
  assert.equal(await main([], ctx), 2);
  assert.deepEqual(ctx.out, []);
  assert.match(ctx.err[0] ?? "", /^Usage: wsk /);
});

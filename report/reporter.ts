/**
 * All status output of the CLI: one line per dispatch call (or event), human or JSON Lines.
 *
 * The human line grammar, stable for scripts:
 *
 * ```text
 * <Call> <STATUS_NAME> 0x<8 HEX> socket=<id> [local=<addr>] [remote=<addr>] bytes=<n> [calls=<n>]
 *   [value=<v>] [received=<n> sent=<n>] [exit=<n>] [target=<id> target_end=<end>]
 *   [peer_saw=RST|FIN] [protocol=<v> alpn=<p> subject="<s>" expires=<iso>]
 *   time=<ms>ms [data="<escaped>"] [message="<text>"] [cause="<text>"]
 * ```
 *
 * The bracketed TLS fields come on a successful `TlsHandshake` line; a field the host cannot
 * tell is `-` (null in JSON), and a peer with no certificate has `subject=""`.
 *
 * (on one line). Addresses are `127.0.0.1:80` or `[::1]:80`. Quoted values use JSON string
 * escapes. Payload bytes that go to an output stream never pass through here.
 *
 * @module
 */

import {
  formatNtStatus,
  formatSockAddr,
  hostErrorCode,
  NT_SUCCESS,
  type NTSTATUS,
  ntStatusName,
  type SockAddr,
  type Teardown,
  type TlsInfo,
} from "../provider/mod.ts";

/** One reported call. */
export interface CallRecord {
  /** The WSK call or event name, e.g. "WskConnect" or "WskReceiveEvent". */
  readonly call: string;
  /** Its completion status. */
  readonly status: NTSTATUS;
  /** `IoStatus.Information`: bytes for data calls (a total when `calls` > 1). */
  readonly information: number;
  /** The socket id within this run. */
  readonly socket?: number;
  /** The session handle of the socket (`@3`), when a session agent holds it. */
  readonly handle?: string;
  /** Local endpoint, when known. */
  readonly local?: SockAddr | null;
  /** Remote endpoint, when known. */
  readonly remote?: SockAddr | null;
  /** Wall time the call (or the calls) took, in milliseconds. */
  readonly elapsedMs: number;
  /** How many calls this line stands for, when a loop issued several. */
  readonly calls?: number;
  /** Bytes received and sent over a connection's life (its Summary line). */
  readonly received?: number;
  readonly sent?: number;
  /** The exit code of the command an `accept --mode exec` connection ran (its Summary line). */
  readonly exit?: number;
  /** The socket id of the target side of an `accept --mode forward` connection (Summary). */
  readonly target?: number;
  /** How the target side of a forwarded connection ended (Summary), as `value` for the client. */
  readonly targetEnd?: string;
  /** What the peer saw when our side aborted the connection: a real RST, or only a FIN. */
  readonly peerSaw?: Teardown;
  /** An option value read or written by WskControlSocket. */
  readonly value?: string | number;
  /** The option or IOCTL name for WskControlSocket. */
  readonly option?: string;
  /** Received payload to show (not payload that went to an output stream). */
  readonly data?: Uint8Array;
  /**
   * The record carries received payload itself (`--json` without `--output`): it is written
   * even with `--quiet`, and a closed standard output fails it instead of being ignored.
   */
  readonly payload?: boolean;
  /** Failure explanation. */
  readonly message?: string;
  /** The host error behind a failure (shown with --verbose). */
  readonly cause?: unknown;
  /** What a TLS handshake agreed on (its TlsHandshake line). */
  readonly tls?: TlsInfo;
  /** Extra fields for JSON only (e.g. step and line in scripts). */
  readonly extra?: Readonly<Record<string, string | number | boolean>>;
}

/** How records are written. */
export interface ReportOptions {
  /** JSON Lines instead of human lines. */
  readonly json: boolean;
  /** Include the host error behind failures. */
  readonly verbose: boolean;
  /** Colour the status name (only ever true on a TTY without NO_COLOR). */
  readonly color: boolean;
  /**
   * `--quiet`: write only what went wrong (records that count as failures, failed
   * expectations); payload records and notes are written as usual.
   */
  readonly quiet?: boolean;
}

/** Longest payload shown inline in a human line before it is cut. */
const DATA_PREVIEW = 256;

/** Formats the milliseconds of a call: 3 significant decimals under 10 ms. */
export function formatElapsed(ms: number): string {
  return ms < 10 ? ms.toFixed(3) : ms < 1000 ? ms.toFixed(1) : ms.toFixed(0);
}

/**
 * Escapes bytes for a human line so the quoted value is a valid JSON string: printable ASCII
 * as is, `\n` `\r` `\t` `\"` `\\`, and every other byte as `\u00NN` (one per byte).
 */
export function escapeBytes(bytes: Uint8Array, limit = DATA_PREVIEW): string {
  const shown = bytes.length > limit ? bytes.subarray(0, limit) : bytes;
  let out = "";
  for (const byte of shown) {
    if (byte === 0x22) out += '\\"';
    else if (byte === 0x5c) out += "\\\\";
    else if (byte === 0x0a) out += "\\n";
    else if (byte === 0x0d) out += "\\r";
    else if (byte === 0x09) out += "\\t";
    else if (byte >= 0x20 && byte < 0x7f) out += String.fromCharCode(byte);
    else out += "\\u00" + byte.toString(16).padStart(2, "0");
  }
  return bytes.length > limit ? `${out}...(+${bytes.length - limit} bytes)` : out;
}

/** A short text for a host error: its code and message. */
export function describeCause(cause: unknown): string {
  if (cause === undefined || cause === null) return "";
  const code = hostErrorCode(cause);
  const message = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
  return code && !message.includes(code) ? `${code} ${message}` : message;
}

/** The control code points: C0, DEL and C1 (U+0080–U+009F, which some terminals obey). */
// deno-lint-ignore no-control-regex -- matching control characters is the point
const CONTROL = /[\x00-\x1f\x7f-\x9f]/g;

const SHORT_ESCAPES: Readonly<Record<string, string>> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/**
 * Escapes every control code point of `text` so no line wsk prints can move the cursor, ring
 * the bell or start a terminal escape sequence, and a line stays one line. This is the one
 * escaping of text in the CLI's output: free text (error lines, notes, help) takes the `x`
 * form, `\n` `\r` `\t` and `\xNN` otherwise (as `--data` writes bytes); JSON text takes
 * the `u` form, `\u00NN`, which keeps it valid JSON meaning the same string (JSON.stringify
 * escapes C0 but leaves DEL and C1 raw).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { escapeControls } from "./reporter.ts";
 *
 * assert.equal(escapeControls("a\x1b[2J\x07\x00\n"), "a\\x1b[2J\\x07\\x00\\n");
 * assert.equal(escapeControls('"\x7f\u009b"', "u"), '"\\u007f\\u009b"');
 * ```
 */
export function escapeControls(text: string, form: "x" | "u" = "x"): string {
  return text.replace(CONTROL, (c) => {
    const hex = c.charCodeAt(0).toString(16).padStart(2, "0");
    return form === "u" ? `\\u00${hex}` : SHORT_ESCAPES[c] ?? `\\x${hex}`;
  });
}

/** A JSON value as one line safe for a terminal (see {@linkcode escapeControls}). */
function jsonText(value: unknown): string {
  return escapeControls(JSON.stringify(value), "u");
}

/** A quoted field value of a human line: a JSON string with every control escaped. */
function quote(text: string): string {
  return jsonText(text);
}

/** An `error: …` line with its message escaped (see {@linkcode escapeControls}). */
export function formatErrorLine(message: string): string {
  return `error: ${escapeControls(message)}`;
}

/**
 * The output settings for commander (help, version, its own errors): every text it writes is
 * escaped line by line, and an error is one short line (commander's "(Did you mean …?)" joined
 * to it, a long quoted argument cut to its start).
 * No colour: commander would read the environment to decide.
 */
export function commanderOutput(out: TextSink, err: TextSink) {
  const lines = (text: string) =>
    text.replace(/\n$/, "").split("\n").map((line) => escapeControls(line)).join("\n");
  return {
    writeOut: (text: string) => out.line(lines(text)),
    writeErr: (text: string) => err.line(lines(text)),
    outputError: (text: string) =>
      err.line(
        escapeControls(
          text.replace(/\n$/, "")
            .replace(/\n\(Did you mean (.*)\)$/, " (did you mean $1)")
            // Commander quotes a bad argument whole: a long one is cut to its start.
            .replace(/'([^']{65,})'/g, (_, value: string) =>
              `'${value.slice(0, 64)}...(+${value.length - 64} characters)'`),
        ),
      ),
    getOutHasColors: () => false,
    getErrHasColors: () => false,
  };
}

/**
 * Formats one record as a human line.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatHuman } from "./reporter.ts";
 * import { sockAddr } from "../provider/mod.ts";
 *
 * const line = formatHuman({
 *   call: "WskConnect", status: 0xC0000236, information: 0, socket: 1,
 *   remote: sockAddr("::1", 9), elapsedMs: 0.25,
 * }, { json: false, verbose: false, color: false });
 * assert.equal(
 *   line,
 *   "WskConnect STATUS_CONNECTION_REFUSED 0xC0000236 socket=1 remote=[::1]:9 bytes=0 time=0.250ms",
 * );
 * ```
 */
export function formatHuman(record: CallRecord, options: ReportOptions): string {
  const name = ntStatusName(record.status);
  const painted = options.color
    ? `\x1b[${NT_SUCCESS(record.status) ? 32 : 31}m${name}\x1b[39m`
    : name;
  const parts = [record.call, painted, formatNtStatus(record.status)];
  if (record.socket !== undefined) parts.push(`socket=${record.socket}`);
  if (record.handle !== undefined) parts.push(`handle=${record.handle}`);
  if (record.local) parts.push(`local=${formatSockAddr(record.local)}`);
  if (record.remote) parts.push(`remote=${formatSockAddr(record.remote)}`);
  parts.push(`bytes=${record.information}`);
  if (record.calls !== undefined) parts.push(`calls=${record.calls}`);
  if (record.option !== undefined) parts.push(`option=${record.option}`);
  if (record.value !== undefined) parts.push(`value=${record.value}`);
  if (record.received !== undefined) parts.push(`received=${record.received}`);
  if (record.sent !== undefined) parts.push(`sent=${record.sent}`);
  if (record.exit !== undefined) parts.push(`exit=${record.exit}`);
  if (record.target !== undefined) parts.push(`target=${record.target}`);
  if (record.targetEnd !== undefined) parts.push(`target_end=${record.targetEnd}`);
  if (record.peerSaw !== undefined) parts.push(`peer_saw=${record.peerSaw}`);
  if (record.tls) {
    const { protocol, alpn, subject, expires } = record.tls;
    parts.push(
      `protocol=${protocol ?? "-"}`,
      `alpn=${alpn ?? "-"}`,
      `subject=${subject === null ? "-" : quote(subject)}`,
      `expires=${expires ?? "-"}`,
    );
  }
  parts.push(`time=${formatElapsed(record.elapsedMs)}ms`);
  if (record.data !== undefined && record.data.length > 0) {
    parts.push(`data="${escapeBytes(record.data)}"`);
  }
  if (!NT_SUCCESS(record.status) && record.message) parts.push(`message=${quote(record.message)}`);
  if (options.verbose && record.cause !== undefined) {
    parts.push(`cause=${quote(describeCause(record.cause))}`);
  }
  return parts.join(" ");
}

/** Decodes payload that is valid UTF-8 as is, a leading byte order mark included. */
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Formats one record as a JSON Lines object (no trailing newline). Payload bytes go in `data`
 * when they are valid UTF-8 (the text decodes back to the same bytes, a byte order mark
 * included), and in `base64` otherwise: one rule for every record, so a reader rebuilds the
 * bytes from either field.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatJson } from "./reporter.ts";
 *
 * const line = formatJson({
 *   call: "WskReceive", status: 0, information: 2, socket: 3, elapsedMs: 1,
 *   data: new Uint8Array([0x68, 0x69]),
 * }, { json: true, verbose: false, color: false });
 * assert.deepEqual(JSON.parse(line), {
 *   call: "WskReceive", status: "STATUS_SUCCESS", ntstatus: "0x00000000", information: 2,
 *   socket: 3, elapsed_ms: 1, data: "hi",
 * });
 * ```
 */
export function formatJson(record: CallRecord, options: ReportOptions): string {
  const object: Record<string, unknown> = {
    call: record.call,
    status: ntStatusName(record.status),
    ntstatus: formatNtStatus(record.status),
    information: record.information,
  };
  if (record.socket !== undefined) object.socket = record.socket;
  if (record.handle !== undefined) object.handle = record.handle;
  if (record.local) object.local = formatSockAddr(record.local);
  if (record.remote) object.remote = formatSockAddr(record.remote);
  if (record.calls !== undefined) object.calls = record.calls;
  if (record.option !== undefined) object.option = record.option;
  if (record.value !== undefined) object.value = record.value;
  if (record.received !== undefined) object.received = record.received;
  if (record.sent !== undefined) object.sent = record.sent;
  if (record.exit !== undefined) object.exit = record.exit;
  if (record.target !== undefined) object.target = record.target;
  if (record.targetEnd !== undefined) object.target_end = record.targetEnd;
  if (record.peerSaw !== undefined) object.peer_saw = record.peerSaw;
  if (record.tls) {
    object.protocol = record.tls.protocol;
    object.alpn = record.tls.alpn;
    object.subject = record.tls.subject;
    object.expires = record.tls.expires;
  }
  object.elapsed_ms = Number(record.elapsedMs.toFixed(3));
  if (record.data !== undefined && record.data.length > 0) {
    try {
      object.data = strictUtf8.decode(record.data);
    } catch {
      object.base64 = record.data.toBase64();
    }
  }
  if (!NT_SUCCESS(record.status) && record.message) object.message = record.message;
  if (options.verbose && record.cause !== undefined) object.cause = describeCause(record.cause);
  if (record.extra) Object.assign(object, record.extra);
  return jsonText(object);
}

/** The outcome of one expectation in a dispatch script. */
export interface ExpectationRecord {
  /** Whether the expectation held. */
  readonly passed: boolean;
  /** 1-based step and line of the script. */
  readonly step: number;
  readonly line: number;
  /** The step's verb, e.g. "receive". */
  readonly verb: string;
  /** What was expected, as written (a text, a /regex/, a status name). */
  readonly expected: string;
  /** What happened instead (a status name, or an excerpt of the received data). */
  readonly actual?: string;
}

/**
 * Formats an expectation line. Human: `Expect PASSED|FAILED step=N line=N verb=V expected="…"
 * [actual="…"]`; JSON: the same fields with `call: "Expect"` and `result`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatExpectation } from "./reporter.ts";
 *
 * const failed = { passed: false, step: 3, line: 4, verb: "receive", expected: "200", actual: "404" };
 * assert.equal(
 *   formatExpectation(failed, false),
 *   'Expect FAILED step=3 line=4 verb=receive expected="200" actual="404"',
 * );
 * ```
 */
export function formatExpectation(record: ExpectationRecord, json: boolean): string {
  const result = record.passed ? "PASSED" : "FAILED";
  if (json) {
    return jsonText({
      call: "Expect",
      result,
      step: record.step,
      line: record.line,
      verb: record.verb,
      expected: record.expected,
      ...(record.actual === undefined ? {} : { actual: record.actual }),
    });
  }
  const actual = record.actual === undefined ? "" : ` actual=${quote(record.actual)}`;
  return `Expect ${result} step=${record.step} line=${record.line} verb=${record.verb} ` +
    `expected=${quote(record.expected)}${actual}`;
}

/** Where text goes; tests give their own. */
export interface TextSink {
  /** Writes one complete line (the newline is added). */
  line(text: string): void;
  /** True once the reader went away and lines are no longer written. */
  readonly closed?: boolean;
}

/** Wraps a Deno writer as a line sink (synchronous writes keep line order across streams). */
export function writerSink(writer: { writeSync(p: Uint8Array): number }): TextSink {
  const encoder = new TextEncoder();
  let closed = false;
  return {
    get closed(): boolean {
      return closed;
    },
    line(text: string): void {
      if (closed) return;
      const bytes = encoder.encode(text + "\n");
      try {
        let offset = 0;
        while (offset < bytes.length) offset += writer.writeSync(bytes.subarray(offset));
      } catch (error) {
        // The reader went away (`wsk … | head -3`): stop writing status lines, as nc does.
        if (!(error instanceof Deno.errors.BrokenPipe)) throw error;
        closed = true;
      }
    },
  };
}

/**
 * Writes records and remembers whether any call failed unexpectedly. One Reporter per run.
 */
export class Reporter {
  #out: TextSink;
  #err: TextSink;
  #options: ReportOptions;
  #statusToErr = false;
  #failed = false;
  #lines = 0;

  constructor(out: TextSink, err: TextSink, options: ReportOptions) {
    this.#out = out;
    this.#err = err;
    this.#options = options;
  }

  /** True when status lines must leave stdout free for payload (`--output -`). */
  set payloadOnStdout(value: boolean) {
    this.#statusToErr = value;
  }

  /** Whether JSON Lines are written. */
  get json(): boolean {
    return this.#options.json;
  }

  /** Whether any call completed with an unexpected failure. */
  get failed(): boolean {
    return this.#failed;
  }

  /** How many records were written. */
  get lines(): number {
    return this.#lines;
  }

  /**
   * Writes a record. A failure status counts against the exit code unless it is `expected`
   * (e.g. the STATUS_CANCELLED that `closesocket` sets out to show). With `--quiet` only a
   * record that counts as a failure is written, and a payload record.
   */
  record(record: CallRecord, expected?: NTSTATUS): void {
    const failure = !NT_SUCCESS(record.status) && record.status !== expected;
    if (failure) this.#failed = true;
    if (this.#options.quiet && !failure && !record.payload) return;
    const text = this.#options.json
      ? formatJson(record, this.#options)
      : formatHuman(record, this.#options);
    const sink = this.#statusToErr ? this.#err : this.#out;
    sink.line(text);
    this.#lines++;
    // Payload that could not be written is lost data: the caller's write fails (the receive
    // then ends with STATUS_PIPE_BROKEN), where a status line is simply no longer shown.
    if (record.payload && sink.closed) {
      this.#err.line(
        formatErrorLine("standard output was closed before all received data was written"),
      );
      throw new Deno.errors.BrokenPipe("standard output was closed");
    }
  }

  /** Writes an expectation's outcome on the status stream (with `--quiet`, only a failed one). */
  expectation(record: ExpectationRecord): void {
    if (this.#options.quiet && record.passed) return;
    const text = formatExpectation(record, this.#options.json);
    (this.#statusToErr ? this.#err : this.#out).line(text);
    this.#lines++;
  }

  /** Marks the run failed without a record (e.g. a failed expectation is reported elsewhere). */
  fail(): void {
    this.#failed = true;
  }

  /** A free-form note on stderr (never on stdout, so JSON output stays clean). */
  note(text: string): void {
    this.#err.line(escapeControls(text));
  }
}

// ---------------------------------------------------------------------------------------------
// The session agent (`wsk session …`)

/** One socket a session agent holds, as `wsk session list` shows it. */
export interface SessionSocketRecord {
  /** The handle commands name it by, e.g. `@3` (the agent's socket id). */
  readonly handle: string;
  /** A connection socket or a listening one. */
  readonly kind: "connection" | "listen";
  /** Its state in the model's state machine. */
  readonly state: string;
  readonly local: SockAddr | null;
  readonly remote: SockAddr | null;
  /** Bytes handed to TCP so far. */
  readonly sent: number;
  /** Bytes read from TCP so far (taken by commands or still buffered). */
  readonly received: number;
  /** Bytes received that no command has taken yet. */
  readonly buffered: number;
  /** Commands on this handle not finished yet: the one running and those queued behind it. */
  readonly pending: number;
}

/**
 * Formats one `session list` entry: human `@3 connection ESTAB local=… remote=… sent=N
 * received=N buffered=N pending=N`, or a JSON object with the same fields.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatSessionSocket } from "./reporter.ts";
 * import { sockAddr } from "../provider/mod.ts";
 *
 * const entry = {
 *   handle: "@2", kind: "connection" as const, state: "ESTAB",
 *   local: sockAddr("127.0.0.1", 40000), remote: sockAddr("127.0.0.1", 8080),
 *   sent: 5, received: 12, buffered: 7, pending: 0,
 * };
 * assert.equal(
 *   formatSessionSocket(entry, false),
 *   "@2 connection ESTAB local=127.0.0.1:40000 remote=127.0.0.1:8080 sent=5 received=12 " +
 *     "buffered=7 pending=0",
 * );
 * ```
 */
export function formatSessionSocket(entry: SessionSocketRecord, json: boolean): string {
  const local = entry.local ? formatSockAddr(entry.local) : null;
  const remote = entry.remote ? formatSockAddr(entry.remote) : null;
  if (json) {
    return jsonText({
      handle: entry.handle,
      kind: entry.kind,
      state: entry.state,
      local,
      remote,
      sent: entry.sent,
      received: entry.received,
      buffered: entry.buffered,
      pending: entry.pending,
    });
  }
  const parts = [entry.handle, entry.kind, entry.state];
  if (local) parts.push(`local=${local}`);
  if (remote) parts.push(`remote=${remote}`);
  parts.push(
    `sent=${entry.sent}`,
    `received=${entry.received}`,
    `buffered=${entry.buffered}`,
    `pending=${entry.pending}`,
  );
  return parts.join(" ");
}

/** What `wsk session start|stop|status` says about the agent. */
export interface SessionAgentRecord {
  /** What happened or how it is: the agent was started, was already running, was stopped. */
  readonly agent: "started" | "running" | "stopped" | "not running";
  /** The private directory that holds its socket. */
  readonly dir: string;
  readonly pid?: number;
  /** Sockets it holds (for `stop`: the sockets it closed). */
  readonly sockets?: number;
  /** How long it waits without a command before it exits, in milliseconds. */
  readonly idleMs?: number;
}

/**
 * Formats an agent line: human `agent running pid=N sockets=N idle=Nms dir="…"`, or JSON.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatSessionAgent } from "./reporter.ts";
 *
 * const line = formatSessionAgent({ agent: "stopped", dir: "/tmp/wsk-0", pid: 42, sockets: 1 }, false);
 * assert.equal(line, 'agent stopped pid=42 sockets=1 dir="/tmp/wsk-0"');
 * ```
 */
export function formatSessionAgent(record: SessionAgentRecord, json: boolean): string {
  if (json) return jsonText(record);
  const parts = ["agent", record.agent];
  if (record.pid !== undefined) parts.push(`pid=${record.pid}`);
  if (record.sockets !== undefined) parts.push(`sockets=${record.sockets}`);
  if (record.idleMs !== undefined) parts.push(`idle=${record.idleMs}ms`);
  parts.push(`dir=${quote(record.dir)}`);
  return parts.join(" ");
}

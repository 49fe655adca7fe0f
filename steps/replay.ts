/**
 * Record to replay: a log of dispatch calls (the JSON Lines of `--json` or `wsk run --record`)
 * turned into the script of the same calls, and the check that a run of that script answered as
 * the log did (the same statuses, the same received bytes, per socket as one stream).
 *
 * The script is ordinary script text: `wsk run` and `wsk replay` run it with the one step
 * executor. Each step carries `--status` with its call's recorded status; received bytes are
 * compared by {@linkcode ReplayCheck} as they arrive.
 *
 * @module
 */

import {
  NT_SUCCESS,
  type NTSTATUS,
  ntStatusFromName,
  ntStatusName,
  STATUS_CANCELLED,
  STATUS_IO_TIMEOUT,
} from "../provider/mod.ts";
import type { CallRecord, ExpectationRecord, ReportTap } from "../report/reporter.ts";
import { UsageError } from "../syntax/usage.ts";
import { parseLocal, parseRemote } from "../syntax/values.ts";
import type { Outcome } from "./executor.ts";
import type { Step } from "./step.ts";

/** One record of a log, the fields replay reads. */
export interface LogRecord {
  /** 1-based number of the record among the log's non-blank lines. */
  readonly number: number;
  readonly call: string;
  readonly status: NTSTATUS;
  readonly information: number;
  readonly socket?: number;
  readonly local?: string;
  readonly remote?: string;
  /** The payload: what a WskReceive received, what a WskSend or WskConnectEx sent. */
  readonly data?: Uint8Array;
  /** A `--json` chunk record of a receive (its loop's total follows without data). */
  readonly chunk?: number;
  /** How many calls a loop's record stands for. */
  readonly calls?: number;
  /** `unread`: bytes taken past a step's stop point that no later step read. */
  readonly value?: string | number;
  /** Our side aborted the connection. */
  readonly abortive: boolean;
  /** How long the call took (`elapsed_ms`): a call that timed out, its bound. */
  readonly elapsedMs?: number;
}

/** Most bytes of log read (a log of calls; bulk payload is not replayed). */
export const MAX_LOG = 64 << 20;

/** A malformed log: which record, and what is wrong with it. */
function malformed(number: number, why: string): UsageError {
  return new UsageError(`record ${number}: ${why}`);
}

/**
 * Reads a log: one JSON object per non-blank line, as `--json` prints them. Objects that are not
 * dispatch calls (`Expect`, `Summary`) are kept for numbering and skipped by the derivation.
 * Throws UsageError naming the first record that cannot be read.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseLog } from "./replay.ts";
 *
 * const [record] = parseLog('{"call":"WskSend","status":"STATUS_SUCCESS","information":2,"data":"hi"}');
 * assert.deepEqual(record!.data, new TextEncoder().encode("hi"));
 * assert.throws(() => parseLog("{}\nnot json"), /record 1: /);
 * ```
 */
export function parseLog(text: string): LogRecord[] {
  const records: LogRecord[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    const number = records.length + 1;
    let object: unknown;
    try {
      object = JSON.parse(line);
    } catch {
      throw malformed(number, "not a JSON object (a log is the JSON Lines of --json or --record)");
    }
    if (object === null || typeof object !== "object" || Array.isArray(object)) {
      throw malformed(number, "not a JSON object");
    }
    records.push(readRecord(number, object as Record<string, unknown>));
  }
  if (records.length === 0) throw new UsageError("the log has no records");
  return records;
}

/** One object of the log, checked field by field. */
function readRecord(number: number, o: Record<string, unknown>): LogRecord {
  const field = <T>(name: string, type: "string" | "number"): T | undefined => {
    const value = o[name];
    if (value === undefined) return undefined;
    const matches = type === "string" ? typeof value === "string" : typeof value === "number";
    if (!matches) throw malformed(number, `"${name}" is not a ${type}`);
    return value as T;
  };
  const call = field<string>("call", "string");
  if (call === undefined) throw malformed(number, 'no "call"');
  const statusText = field<string>("ntstatus", "string") ?? field<string>("status", "string");
  const status = statusText === undefined ? STATUS_NONE : ntStatusFromName(statusText);
  if (status === undefined) throw malformed(number, `unknown status "${statusText}"`);
  if (status === STATUS_NONE && call.startsWith("Wsk")) throw malformed(number, 'no "status"');
  const information = field<number>("information", "number") ?? 0;
  const socket = field<number>("socket", "number");
  const local = field<string>("local", "string");
  const remote = field<string>("remote", "string");
  const chunk = field<number>("chunk", "number");
  const calls = field<number>("calls", "number");
  const elapsedMs = field<number>("elapsed_ms", "number");
  const value = o.value;
  const text = field<string>("data", "string");
  const base64 = field<string>("base64", "string");
  let data: Uint8Array | undefined;
  if (text !== undefined) data = new TextEncoder().encode(text);
  else if (base64 !== undefined) {
    try {
      data = Uint8Array.fromBase64(base64);
    } catch {
      throw malformed(number, '"base64" is not base64');
    }
  }
  return {
    number,
    call,
    status,
    information,
    abortive: o.peer_saw !== undefined,
    ...(socket === undefined ? {} : { socket }),
    ...(local === undefined ? {} : { local }),
    ...(remote === undefined ? {} : { remote }),
    ...(chunk === undefined ? {} : { chunk }),
    ...(calls === undefined ? {} : { calls }),
    ...(elapsedMs === undefined ? {} : { elapsedMs }),
    ...(typeof value === "string" || typeof value === "number" ? { value } : {}),
    ...(data === undefined ? {} : { data }),
  };
}

/** The status of a record that has none (not a dispatch call). */
const STATUS_NONE = -1;

/** Where a derived step came from. */
export interface Origin {
  /** The log record of the step's own call. */
  readonly record: number;
  readonly call: string;
  /** The status the log has for it. */
  readonly status: NTSTATUS;
  /** The log's socket id of the step. */
  readonly socket: number | undefined;
}

/** What received bytes the log holds on one socket: one stream, and which record brought which. */
export interface ExpectedStream {
  readonly bytes: Uint8Array;
  /** The record of each piece: its first byte's offset in the stream, in order. */
  readonly pieces: readonly { readonly offset: number; readonly record: number }[];
}

/** A log turned into a script. */
export interface Derived {
  /** The script text, one step per line, each with a `# record N` comment. */
  readonly script: string;
  /** Per step (index = step number - 1): the record it replays. */
  readonly origins: readonly Origin[];
  /** Per log socket id: the bytes received on it. */
  readonly streams: ReadonlyMap<number, ExpectedStream>;
  /** How many records the log has. */
  readonly records: number;
}

/**
 * Quotes bytes as one script word: single quotes (nothing in them is special to the word
 * splitter), and the data escapes `\\` `\r` `\n` `\t` `\xNN` for everything that is not
 * printable ASCII or would end the quote.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { scriptData } from "./replay.ts";
 *
 * assert.equal(scriptData(new TextEncoder().encode("it's\r\n\\")), "'it\\x27s\\r\\n\\\\'");
 * ```
 */
export function scriptData(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) {
    if (byte === 0x5c) out += "\\\\";
    else if (byte === 0x0d) out += "\\r";
    else if (byte === 0x0a) out += "\\n";
    else if (byte === 0x09) out += "\\t";
    else if (byte >= 0x20 && byte < 0x7f && byte !== 0x27) out += String.fromCharCode(byte);
    else out += "\\x" + byte.toString(16).padStart(2, "0");
  }
  return `'${out}'`;
}

/** A wildcard local address with port 0: what a connect binds without `--bind`. */
const EPHEMERAL_REGEXP = /^(0\.0\.0\.0|\[::\]):0$/;

/**
 * Turns a log into the script of the same calls. `to`: the remote every connecting step goes to
 * instead of the logged one. Throws UsageError naming a record that cannot be replayed (a send
 * or receive whose bytes the log does not hold).
 */
export function deriveScript(records: readonly LogRecord[], to?: string): Derived {
  const lines: string[] = [];
  const origins: Origin[] = [];
  const streams = new Map<
    number,
    { chunks: Uint8Array[]; length: number; pieces: ExpectedStream["pieces"][number][] }
  >();
  /** Sockets made by a WskSocket not yet connected: the explicit `--bind`, if any. */
  const pending = new Map<number, string | null>();
  /** Sockets the script has made and not closed. */
  const live = new Set<number>();
  /** Sockets on which our side sent its FIN (a later receive reads to the peer's FIN). */
  const finished = new Set<number>();
  /** Bytes and count of `--json` chunk records not yet matched by their loop's total. */
  const chunked = new Map<number, { bytes: number; count: number }>();
  const sockets = new Set(records.flatMap((r) => r.socket === undefined ? [] : [r.socket]));
  const named = sockets.size > 1;
  const lastReceive = new Map<number, number>();
  for (const r of records) {
    if (r.call === "WskReceive" && r.socket !== undefined && isStep(r)) {
      lastReceive.set(r.socket, r.number);
    }
  }
  // Bytes that came through event callbacks are in no WskReceive: a replay, which receives
  // with WskReceive, could not check them, so such a log is refused rather than half-checked.
  const event = records.find((r) => r.call === "WskReceiveEvent");
  if (event !== undefined) {
    throw malformed(
      event.number,
      "WskReceiveEvent: bytes received through event callbacks (release, accept --events) " +
        "cannot be replayed; replay receives with WskReceive",
    );
  }
  let unnamed = 0;
  const nameOf = (socket: number | undefined) =>
    socket === undefined || socket === 0 ? `none${++unnamed}` : `s${socket}`;
  const emit = (r: LogRecord, words: string[]) => {
    if (named && !words.includes("--socket")) words.push("--socket", nameOf(r.socket));
    // Success is what a step expects anyway; another status is the step's negative test.
    if (!NT_SUCCESS(r.status)) words.push("--status", ntStatusName(r.status));
    // A call that timed out gave up after the bound it had: the step gets it again, so the
    // replay waits as long as the log did, not the replay's --timeout.
    if (r.status === STATUS_IO_TIMEOUT && r.elapsedMs !== undefined && r.elapsedMs >= 0) {
      words.push("--timeout", `${Math.max(1, Math.round(r.elapsedMs))}ms`);
    }
    lines.push(`${words.join(" ")}  # record ${r.number}`);
    origins.push({ record: r.number, call: r.call, status: r.status, socket: r.socket });
  };
  const needLive = (r: LogRecord): number => {
    if (r.socket === undefined || !live.has(r.socket)) {
      throw malformed(
        r.number,
        `${r.call} on socket ${r.socket ?? "(none)"}, which no replayed connect made`,
      );
    }
    return r.socket;
  };
  const remoteOf = (r: LogRecord): string => {
    const remote = to ?? r.remote;
    if (remote === undefined) throw malformed(r.number, `${r.call} without "remote"`);
    return checked(r, remote, parseRemote);
  };
  for (const r of records) {
    if (r.call === "WskReceive" && r.data !== undefined && r.data.length > 0) {
      if (r.socket === undefined) throw malformed(r.number, "WskReceive without its socket");
      const stream = streams.get(r.socket) ?? { chunks: [], length: 0, pieces: [] };
      stream.pieces.push({ offset: stream.length, record: r.number });
      stream.chunks.push(r.data);
      stream.length += r.data.length;
      streams.set(r.socket, stream);
    }
    switch (r.call) {
      case "WskSocket":
        if (r.socket !== undefined && NT_SUCCESS(r.status)) pending.set(r.socket, null);
        break;
      case "WskBind":
        if (r.socket !== undefined && pending.has(r.socket) && r.local !== undefined) {
          pending.set(
            r.socket,
            EPHEMERAL_REGEXP.test(r.local) ? null : checked(r, r.local, parseLocal),
          );
        }
        break;
      case "WskConnect":
      case "WskConnectEx": {
        const words = [r.call === "WskConnect" ? "connect" : "connectex", remoteOf(r)];
        if (r.call === "WskConnectEx") {
          if (r.data === undefined && r.information > 0) {
            throw malformed(r.number, "WskConnectEx without the data it sent");
          }
          words.push(scriptData(r.data ?? new Uint8Array()));
        }
        const bind = r.socket === undefined ? null : pending.get(r.socket) ?? null;
        if (bind !== null) words.push("--bind", bind);
        if (r.socket !== undefined) {
          pending.delete(r.socket);
          live.add(r.socket);
        }
        emit(r, words);
        break;
      }
      case "WskSocketConnect": {
        const words = ["socketconnect", remoteOf(r)];
        if (named || r.socket === undefined || r.socket === 0) {
          words.push("--socket", nameOf(r.socket));
        }
        if (r.socket !== undefined && r.socket !== 0) live.add(r.socket);
        emit(r, words);
        break;
      }
      case "WskSend": {
        needLive(r);
        if (r.data === undefined && r.information > 0) {
          throw malformed(
            r.number,
            "WskSend without the data it sent (sent from a file, standard input or --pattern)",
          );
        }
        emit(r, ["send", scriptData(r.data ?? new Uint8Array())]);
        break;
      }
      case "WskReceive": {
        if (r.chunk !== undefined) {
          if (r.socket !== undefined) {
            const sum = chunked.get(r.socket) ?? { bytes: 0, count: 0 };
            chunked.set(r.socket, { bytes: sum.bytes + r.information, count: sum.count + 1 });
          }
          break;
        }
        if (!isStep(r)) break;
        const socket = needLive(r);
        const counted = chunked.get(socket) ?? { bytes: 0, count: 0 };
        chunked.delete(socket);
        if (r.information > 0 && r.data === undefined && counted.bytes !== r.information) {
          throw malformed(
            r.number,
            `WskReceive of ${r.information} bytes without its data (it went to an output)`,
          );
        }
        const words = ["receive"];
        // A receive that read to the peer's FIN: a failure, the FIN itself (0 bytes), a loop
        // of --json pieces with one call more than pieces (the 0-byte FIN), or the last receive
        // after our FIN. Any other reads exactly its bytes.
        const toFin = !NT_SUCCESS(r.status) || r.information === 0 ||
          (counted.count > 0 && (r.calls ?? 0) > counted.count) ||
          (finished.has(socket) && lastReceive.get(socket) === r.number);
        if (!toFin) words.push("--bytes", String(r.information));
        emit(r, words);
        break;
      }
      case "WskDisconnect": {
        const socket = needLive(r);
        if (!r.abortive) finished.add(socket);
        if (r.data === undefined && r.information > 0) {
          throw malformed(r.number, "WskDisconnect without the data it sent");
        }
        const words = ["disconnect"];
        if (r.data !== undefined && r.data.length > 0) words.push(scriptData(r.data));
        emit(r, r.abortive ? [...words, "--abortive"] : words);
        break;
      }
      case "WskGetLocalAddress":
      case "WskGetRemoteAddress":
        if (r.socket !== undefined && live.has(r.socket)) emit(r, [r.call.slice(3).toLowerCase()]);
        break;
      case "TlsHandshake":
        // The handshake of a --tls connect or a starttls step: the same upgrade, checked against
        // the system roots and the name the connect typed (the log holds no --ca file).
        needLive(r);
        emit(r, ["starttls"]);
        break;
      case "WskCloseSocket":
        if (r.socket !== undefined && live.has(r.socket)) {
          live.delete(r.socket);
          emit(r, ["closesocket"]);
        }
        if (r.socket !== undefined) pending.delete(r.socket);
        break;
      default:
        // Not replayed: name resolution (the connect step resolves again), socket options,
        // listening and accepting, Summary and Expect lines.
        break;
    }
  }
  if (origins.length === 0) throw new UsageError("the log has no call replay can make");
  const done = new Map<number, ExpectedStream>();
  for (const [socket, stream] of streams) {
    const bytes = new Uint8Array(stream.length);
    let offset = 0;
    for (const chunk of stream.chunks) {
      bytes.set(chunk, offset);
      offset += chunk.length;
    }
    done.set(socket, { bytes, pieces: stream.pieces });
  }
  return { script: lines.join("\n") + "\n", origins, streams: done, records: records.length };
}

/** An address of a record, checked to be one (it becomes a word of the script). */
function checked(r: LogRecord, address: string, parse: (text: string) => unknown): string {
  try {
    parse(address);
  } catch (error) {
    throw malformed(r.number, error instanceof Error ? error.message : String(error));
  }
  return address;
}

/**
 * Whether a WskReceive record stands for a receive step: not bytes an earlier step left
 * unread, not the receive a closesocket cancelled.
 */
function isStep(r: LogRecord): boolean {
  return r.chunk === undefined && r.value !== "unread" && r.status !== STATUS_CANCELLED;
}

/** The first place a replay answered differently from its log. */
export type Divergence =
  & { readonly record: number; readonly call: string; readonly socket: number | undefined }
  & (
    | { readonly kind: "status"; readonly expected: string; readonly actual: string }
    | {
      readonly kind: "bytes";
      /** Offset of the first differing byte in the socket's received stream. */
      readonly offset: number;
      /** Bytes from `offset` on: what the log has, what came (either may be empty: an end). */
      readonly expected: Uint8Array;
      readonly actual: Uint8Array;
    }
  );

/** Bytes of context shown on each side of a byte divergence. */
const CONTEXT = 16;

/**
 * Compares a replay with its log while it runs: tap it on the reporter, pass
 * {@linkcode ReplayCheck.after} to the executor, and call {@linkcode ReplayCheck.finish} at the
 * end. The first difference is kept in {@linkcode ReplayCheck.divergence}.
 */
export class ReplayCheck implements ReportTap {
  readonly #derived: Derived;
  /** The replay's socket ids → the log's. */
  readonly #sockets = new Map<number, number>();
  /** Per log socket: how many bytes the replay received so far. */
  readonly #received = new Map<number, number>();
  #divergence: Divergence | null = null;
  #total = 0;

  constructor(derived: Derived) {
    this.#derived = derived;
  }

  /** The first difference found, if any. */
  get divergence(): Divergence | null {
    return this.#divergence;
  }

  /** Bytes received in the replay, all sockets together. */
  get received(): number {
    return this.#total;
  }

  record(record: CallRecord): void {
    const step = record.extra?.step;
    const origin = typeof step === "number" ? this.#derived.origins[step - 1] : undefined;
    if (origin?.socket !== undefined && record.socket !== undefined && record.socket !== 0) {
      this.#sockets.set(record.socket, origin.socket);
    }
    if (origin && record.call === origin.call && record.status !== origin.status) {
      this.#status(origin, ntStatusName(origin.status), ntStatusName(record.status));
    }
    if (record.call !== "WskReceive" || !record.data || record.data.length === 0) return;
    const socket = record.socket === undefined ? undefined : this.#sockets.get(record.socket);
    this.#total += record.data.length;
    if (socket === undefined || this.#divergence) return;
    const at = this.#received.get(socket) ?? 0;
    this.#received.set(socket, at + record.data.length);
    const expected = this.#derived.streams.get(socket)?.bytes ?? new Uint8Array();
    for (let i = 0; i < record.data.length; i++) {
      if (at + i >= expected.length || expected[at + i] !== record.data[i]) {
        this.#bytes(socket, at + i, record.data.subarray(i, i + CONTEXT));
        return;
      }
    }
  }

  expectation(record: ExpectationRecord): void {
    if (record.passed || this.#divergence) return;
    const origin = this.#derived.origins[record.step - 1];
    if (origin) this.#status(origin, record.expected, record.actual ?? "");
  }

  #status(origin: Origin, expected: string, actual: string): void {
    if (this.#divergence) return;
    const { record, call, socket } = origin;
    this.#divergence = { kind: "status", record, call, socket, expected, actual };
  }

  /** After a step that went on: stop at a difference found in what it received. */
  after(_step: Step): Outcome {
    return this.#divergence ? "expectation" : "next";
  }

  /** After the run: a stream that ended short of the log's is a difference too. */
  finish(): void {
    if (this.#divergence) return;
    for (const [socket, stream] of this.#derived.streams) {
      const got = this.#received.get(socket) ?? 0;
      if (got < stream.bytes.length) {
        this.#bytes(socket, got, new Uint8Array());
        return;
      }
    }
  }

  #bytes(socket: number, offset: number, actual: Uint8Array): void {
    const stream = this.#derived.streams.get(socket);
    const pieces = stream?.pieces ?? [];
    const piece = pieces.findLast((p) => p.offset <= offset) ?? pieces[0];
    this.#divergence = {
      kind: "bytes",
      record: piece?.record ?? 0,
      call: "WskReceive",
      socket,
      offset,
      expected: stream?.bytes.subarray(offset, offset + CONTEXT) ?? new Uint8Array(),
      actual,
    };
  }
}

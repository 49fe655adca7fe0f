/**
 * What the session client (`client.ts`) and the session agent (`agent.ts`) share: where the
 * agent's Unix socket lives and how that place is checked, and the JSON Lines that go over it
 * (one request line, one response line, per connection).
 *
 * @module
 */

import type { NTSTATUS } from "../provider/mod.ts";
import type {
  CallRecord,
  ExpectationRecord,
  SessionAgentRecord,
  SessionSocketRecord,
} from "../report/reporter.ts";
import { describeCause } from "../report/reporter.ts";

/** The name of the agent's socket inside the session directory. */
export const SOCKET_NAME = "agent.sock";
/** The lock the one agent of a directory holds for its whole life. */
export const LOCK_NAME = "agent.lock";
/** Where the agent notes its own faults (it has no terminal). */
export const LOG_NAME = "agent.log";
/** Longest request or response line, in bytes. */
export const MAX_LINE = 64 << 20;
/** Default time the agent waits without a command before it exits: 10 minutes. */
export const DEFAULT_IDLE_MS = 10 * 60 * 1000;

/** A session problem the user must hear about in one line: exit 1 (or 2 when `usage`). */
export class SessionError extends Error {
  override name = "SessionError";
  /** True when the command line itself was wrong (exit 2). */
  readonly usage: boolean;
  /** True when the agent was stopping or ended before it answered: nothing it made survives. */
  readonly agentGone: boolean;

  constructor(message: string, usage = false, agentGone = false) {
    super(message);
    this.usage = usage;
    this.agentGone = agentGone;
  }
}

/** A request to the agent. */
export type Request =
  | { readonly op: "ping" | "status" | "list" | "stop" }
  | {
    readonly op: "step";
    /** The socket id the handle names, or null for steps that make sockets. */
    readonly handle: number | null;
    /** The parsed steps, as {@linkcode encodeSteps} made them fit for JSON. */
    readonly steps: unknown;
  };

/** A CallRecord as it travels: payload in base64, the host error as text. */
export type WireRecord = Omit<CallRecord, "data" | "sentData" | "cause"> & {
  readonly data?: string;
  readonly sentData?: string;
  readonly cause?: string;
};

/** One thing a step reported, in order. */
export type WireItem =
  | { readonly kind: "call"; readonly record: WireRecord; readonly expected?: NTSTATUS }
  | { readonly kind: "expect"; readonly record: ExpectationRecord }
  | { readonly kind: "note"; readonly text: string }
  /** Payload for the command's standard output (or its --output file), in order. */
  | { readonly kind: "payload"; readonly base64: string };

/** The agent's answer. */
export type Response =
  | {
    readonly ok: false;
    readonly usage: boolean;
    readonly message: string;
    /** The agent is stopping: it did nothing, and a fresh agent may be started. */
    readonly stopping?: true;
  }
  | {
    readonly ok: true;
    /** ping, status and stop: the agent itself. */
    readonly agent?: SessionAgentRecord;
    /** list: every socket it holds. */
    readonly sockets?: readonly SessionSocketRecord[];
    /** step: what the step reported, and how it ended. */
    readonly items?: readonly WireItem[];
    readonly outcome?: "next" | "expectation" | "failure";
  };

/** Encodes bytes as base64. */
function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** Decodes base64 into bytes. */
export function decodeBase64(text: string): Uint8Array {
  return fromBase64(text);
}

/** Encodes bytes as base64. */
export function encodeBase64(bytes: Uint8Array): string {
  return toBase64(bytes);
}

/**
 * Parsed steps made fit for JSON: bytes as `{"$bytes": base64}`, a regular expression as
 * `{"$re": source, "flags": …}`. {@linkcode decodeSteps} undoes it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeSteps, encodeSteps } from "./wire.ts";
 *
 * const steps = [{ verb: "send", data: new Uint8Array([1, 2]), until: /a.b/s }];
 * const back = decodeSteps(JSON.parse(JSON.stringify(encodeSteps(steps))));
 * assert.deepEqual(back, steps);
 * ```
 */
export function encodeSteps(steps: readonly unknown[]): unknown {
  return JSON.parse(JSON.stringify(steps, function (key, value) {
    const raw = (this as Record<string, unknown>)[key];
    if (raw instanceof Uint8Array) return { $bytes: toBase64(raw) };
    if (raw instanceof RegExp) return { $re: raw.source, flags: raw.flags };
    return value;
  }));
}

/** The steps {@linkcode encodeSteps} encoded. */
export function decodeSteps<T>(encoded: unknown): T[] {
  const revive = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(revive);
    if (value === null || typeof value !== "object") return value;
    const record = value as Record<string, unknown>;
    if (typeof record.$bytes === "string") return fromBase64(record.$bytes);
    if (typeof record.$re === "string") return new RegExp(record.$re, String(record.flags ?? ""));
    return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, revive(v)]));
  };
  if (!Array.isArray(encoded)) throw new SessionError("Cannot read the steps: not a list", true);
  return revive(encoded) as T[];
}

function fromBase64(text: string): Uint8Array {
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/**
 * A CallRecord made fit for JSON: payload as base64, the host error as its description.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fromWire, toWire } from "./wire.ts";
 *
 * const record = { call: "WskReceive", status: 0, information: 2, elapsedMs: 1, data: new Uint8Array([104, 105]) };
 * const back = fromWire(JSON.parse(JSON.stringify(toWire(record))));
 * assert.deepEqual(back.data, new Uint8Array([104, 105]));
 * ```
 */
export function toWire(record: CallRecord): WireRecord {
  const { data, sentData, cause, ...rest } = record;
  return {
    ...rest,
    ...(data === undefined ? {} : { data: toBase64(data) }),
    ...(sentData === undefined ? {} : { sentData: toBase64(sentData) }),
    ...(cause === undefined ? {} : { cause: describeCause(cause) }),
  };
}

/** The CallRecord a {@linkcode WireRecord} stands for (the cause stays text). */
export function fromWire(record: WireRecord): CallRecord {
  const { data, sentData, ...rest } = record;
  return {
    ...rest,
    ...(data === undefined ? {} : { data: fromBase64(data) }),
    ...(sentData === undefined ? {} : { sentData: fromBase64(sentData) }),
  };
}

/**
 * The session directory: `$WSK_SESSION_DIR`, else `$XDG_RUNTIME_DIR/wsk`, else `/tmp/wsk-UID`.
 * `env` reads one variable.
 */
export function sessionDir(env: (name: string) => string | undefined, uid: number): string {
  const explicit = env("WSK_SESSION_DIR");
  if (explicit) return explicit;
  const runtime = env("XDG_RUNTIME_DIR");
  if (runtime) return `${runtime.replace(/\/+$/, "")}/wsk`;
  return `/tmp/wsk-${uid}`;
}

function octal(mode: number): string {
  return "0" + (mode & 0o777).toString(8).padStart(3, "0");
}

/** `lstat`, or null when nothing is there; any other failure is a SessionError about `what`. */
async function lstatOrNull(path: string, what: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    // A permission the process lacks is the caller's to explain.
    if (error instanceof Deno.errors.NotCapable) throw error;
    throw new SessionError(`Cannot check ${what} "${path}": ${message(error)}`);
  }
}

/**
 * Checks that `dir` is a private directory of this user: a real directory (no symbolic link),
 * owned by `uid`, mode 0700. With `create`, a missing one is made (0700); without, a missing
 * one is fine (no agent can be there). Throws SessionError.
 */
export async function checkPrivateDir(dir: string, uid: number, create: boolean): Promise<void> {
  let info = await lstatOrNull(dir, "session directory");
  if (info === null && create) {
    try {
      await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
      // The umask may have taken bits away; 0700 is what the check below wants.
      await Deno.chmod(dir, 0o700);
    } catch (error) {
      throw new SessionError(`Cannot create session directory "${dir}": ${message(error)}`);
    }
    info = await lstatOrNull(dir, "session directory");
  }
  if (info === null) {
    if (create) throw new SessionError(`Cannot find session directory "${dir}"`);
    return;
  }
  const refuse = (why: string) => new SessionError(`Refusing session directory "${dir}": ${why}`);
  if (info.isSymlink) throw refuse("it is a symbolic link");
  if (!info.isDirectory) throw refuse("it is not a directory");
  if (info.uid !== uid) throw refuse(`it belongs to uid ${info.uid}, not to uid ${uid}`);
  if (info.mode !== null && (info.mode & 0o777) !== 0o700) {
    throw refuse(`its mode is ${octal(info.mode)}; it must be 0700`);
  }
}

/**
 * Checks the agent's socket file: absent (false), or a socket owned by `uid` that no one else
 * may use (true). A symbolic link, another owner, another file type or group/other permission
 * bits are refused with a SessionError.
 */
export async function checkSocketFile(path: string, uid: number): Promise<boolean> {
  const info = await lstatOrNull(path, "session socket");
  if (info === null) return false;
  const refuse = (why: string) => new SessionError(`Refusing session socket "${path}": ${why}`);
  if (info.isSymlink) throw refuse("it is a symbolic link");
  if (!info.isSocket) throw refuse("it is not a socket");
  if (info.uid !== uid) throw refuse(`it belongs to uid ${info.uid}, not to uid ${uid}`);
  if (info.mode !== null && (info.mode & 0o077) !== 0) {
    throw refuse(`its mode is ${octal(info.mode)}; it must be 0600`);
  }
  return true;
}

/** This process's user id; sessions need one (Unix only). */
export function currentUid(): number {
  const uid = Deno.uid();
  if (uid === null) throw new SessionError("Cannot use a session here: it needs a Unix user id");
  return uid;
}

/** The message of an error, or its text. */
export function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Reads `conn` line by line (without the newlines), keeping what follows a line for the next
 * one. A line is at most {@linkcode MAX_LINE} bytes.
 */
export class LineReader {
  readonly #conn: Deno.Conn;
  #pending: Uint8Array = new Uint8Array(0);
  readonly #buffer = new Uint8Array(64 * 1024);

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /** The next line, or null when the stream ends (or breaks) first or `signal` aborts. */
  async next(signal: AbortSignal): Promise<string | null> {
    const aborted = new Promise<null>((resolve) => {
      if (signal.aborted) resolve(null);
      signal.addEventListener("abort", () => resolve(null), { once: true });
    });
    for (;;) {
      const end = this.#pending.indexOf(0x0a);
      if (end !== -1) {
        const line = new TextDecoder().decode(this.#pending.subarray(0, end));
        this.#pending = this.#pending.slice(end + 1);
        return line;
      }
      if (this.#pending.length > MAX_LINE) return null;
      let n: number | null;
      try {
        n = await Promise.race([this.#conn.read(this.#buffer), aborted]);
      } catch {
        return null;
      }
      if (n === null) return null;
      const joined = new Uint8Array(this.#pending.length + n);
      joined.set(this.#pending);
      joined.set(this.#buffer.subarray(0, n), this.#pending.length);
      this.#pending = joined;
    }
  }
}

/**
 * Reads one line (without its newline) from `conn`, at most {@linkcode MAX_LINE} bytes and at
 * most until `signal` aborts. Null when the stream ends (or breaks) before a whole line.
 */
export function readLine(conn: Deno.Conn, signal: AbortSignal): Promise<string | null> {
  return new LineReader(conn).next(signal);
}

/** What the agent writes every {@linkcode HEARTBEAT_MS} while a step runs: still working. */
export const HEARTBEAT = { alive: true } as const;

/** How often the agent says a step is still running. */
export const HEARTBEAT_MS = 2000;

/**
 * Writes `value` as one JSON line. With `stallMs`, a write that makes no progress for that long
 * fails with a SessionError (the caller then closes `conn`, which ends the write).
 */
export async function writeLine(conn: Deno.Conn, value: unknown, stallMs?: number): Promise<void> {
  const bytes = new TextEncoder().encode(JSON.stringify(value) + "\n");
  for (let offset = 0; offset < bytes.length;) {
    const write = conn.write(bytes.subarray(offset));
    if (stallMs === undefined) {
      offset += await write;
      continue;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stalled = new Promise<null>((resolve) =>
      timer = setTimeout(() => resolve(null), stallMs)
    );
    try {
      const n = await Promise.race([write, stalled]);
      if (n === null) {
        throw new SessionError(`The reader took nothing for ${stallMs} ms (${offset} bytes sent)`);
      }
      offset += n;
    } finally {
      clearTimeout(timer);
    }
  }
}

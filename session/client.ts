/**
 * The session client: finds (and checks) the agent's private directory, connects to the agent,
 * starts it on demand, sends one request and prints the answer with the command's own
 * {@linkcode Reporter}, so a command on a handle prints exactly what it would in-process.
 *
 * @module
 */

import type { CliContext } from "../steps/io.ts";
import type { Step } from "../steps/step.ts";
import { parseHandleWords, type VerbDecl } from "../steps/verb.ts";
import { readPem } from "../steps/pem.ts";
import { UsageError } from "../syntax/usage.ts";
import { OutputFile } from "../engine/output.ts";
import { type ByteSource, closeQuietly } from "../engine/send.ts";
import { joinBytes } from "../engine/pump.ts";
import {
  formatErrorLine,
  formatSessionAgent,
  formatSessionSocket,
  Reporter,
} from "../report/reporter.ts";
import { DEFAULT_TIMEOUT } from "../engine/context.ts";
import {
  checkPrivateDir,
  checkSocketFile,
  currentUid,
  decodeBase64,
  DEFAULT_IDLE_MS,
  encodeSteps,
  fromWire,
  HEARTBEAT,
  LineReader,
  message,
  type Request,
  type Response,
  sessionDir,
  SessionError,
  SOCKET_NAME,
  writeLine,
} from "./wire.ts";

/** How long a start on demand waits for the new agent to answer. */
export const START_WAIT_MS = 5000;
/** The longest idle time a timer can wait (setTimeout takes a signed 32-bit delay). */
const MAX_IDLE_MS = 2_147_483_647;
/** How long requests other than steps wait for their answer. */
const ANSWER_WAIT_MS = 10_000;
/** The handle syntax: @ and a socket number. */
const HANDLE_REGEXP = /^@([1-9][0-9]{0,9})$/;

/** Where the agent of this user lives. */
interface Place {
  readonly dir: string;
  readonly path: string;
  readonly uid: number;
}

function readEnv(name: string): string | undefined {
  return Deno.env.get(name);
}

/** The session directory and socket path, the directory checked (and made, with `create`). */
async function place(create: boolean): Promise<Place> {
  const uid = currentUid();
  const dir = sessionDir(readEnv, uid);
  if (dir.includes(",")) {
    throw new SessionError(`Cannot use session directory "${dir}": its name has a comma`);
  }
  await checkPrivateDir(dir, uid, create);
  return { dir, path: `${dir}/${SOCKET_NAME}`, uid };
}

/**
 * The idle time for an agent started now: `--idle`, else `$WSK_SESSION_IDLE`, else 10 minutes.
 */
function idleMs(given: number | undefined): number {
  if (given !== undefined) return given;
  const text = readEnv("WSK_SESSION_IDLE");
  if (text === undefined || text === "") return DEFAULT_IDLE_MS;
  if (!/^[0-9]{1,10}$/.test(text) || Number(text) < 1 || Number(text) > MAX_IDLE_MS) {
    throw new SessionError(
      `Cannot parse WSK_SESSION_IDLE "${text}": expected milliseconds from 1 to ${MAX_IDLE_MS}`,
      true,
    );
  }
  return Number(text);
}

/** A connection to the agent, or null when none answers (no socket file, or a stale one). */
async function dial(where: Place): Promise<Deno.UnixConn | null> {
  if (!(await checkSocketFile(where.path, where.uid))) return null;
  try {
    return await Deno.connect({ transport: "unix", path: where.path });
  } catch (error) {
    // A socket file nobody listens on is what a killed agent leaves: a new agent replaces it.
    if (error instanceof Deno.errors.ConnectionRefused || error instanceof Deno.errors.NotFound) {
      return null;
    }
    throw new SessionError(
      `Cannot connect to the session agent at "${where.path}": ${message(error)}`,
    );
  }
}

/**
 * Spawns a detached agent for `where` and waits (bounded) until it answers. An agent that ends
 * at once found the lock still held by one that is stopping: it is spawned again (bounded).
 */
async function start(where: Place, idle: number): Promise<Deno.UnixConn> {
  const deadline = Date.now() + START_WAIT_MS;
  /** The exit code of the last agent that ended, or null while it runs. */
  let code: number | null = null;
  for (let spawns = 0; spawns < 5 && Date.now() < deadline; spawns++) {
    code = null;
    spawnAgent(where, idle).then((status) => code = status.code, () => code = -1);
    while (code === null && Date.now() < deadline) {
      const conn = await dial(where);
      if (conn) return conn;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const conn = await dial(where);
    if (conn) return conn;
    // An agent that failed (rather than found another one in charge) fails again.
    if (code !== null && code !== 0) break;
  }
  if (code !== null && code !== 0) {
    throw new SessionError(
      `Cannot start the session agent: it exited with code ${code} (see "${where.dir}/agent.log")`,
    );
  }
  throw new SessionError(
    `Cannot start the session agent: no answer on "${where.path}" within ${START_WAIT_MS} ms`,
  );
}

/** Spawns one detached agent; resolves when it ends (the CLI does not wait for that). */
function spawnAgent(where: Place, idle: number): Promise<Deno.CommandStatus> {
  const main = new URL("../main.ts", import.meta.url);
  const args = [
    "run",
    "--allow-net",
    `--allow-read=${where.dir}`,
    `--allow-write=${where.dir}`,
    "--allow-sys=uid",
    main.href,
    "session",
    "agent",
    "--dir",
    where.dir,
    "--idle",
    String(idle),
  ];
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args,
      // Its own session, no terminal: Ctrl-C in the shell does not reach it.
      detached: true,
      stdin: "null",
      stdout: "null",
      stderr: "null",
      env: { DENO_NO_UPDATE_CHECK: "1" },
      // deno.json (the import map) is found from the working directory.
      ...(main.protocol === "file:" ? { cwd: new URL(".", main).pathname } : {}),
    }).spawn();
    child.unref();
    return child.status;
  } catch (error) {
    throw new SessionError(`Cannot start the session agent: ${message(error)}`);
  }
}

/** Tries of a socket-making command whose agent was stopping (bounded: about 1 s). */
const CREATE_ATTEMPTS = 10;

/** Pause between those tries, in milliseconds. */
const CREATE_RETRY_PAUSE_MS = 100;

/**
 * Sends `request` on `conn` and waits for the answer, at most `waitMs` without a line from the
 * agent (it sends one every HEARTBEAT_MS while it works); closes `conn`.
 */
async function exchange(conn: Deno.Conn, request: Request, waitMs: number): Promise<Response> {
  const reader = new LineReader(conn);
  try {
    await writeLine(conn, request);
    // The agent says it is alive every HEARTBEAT_MS while a step runs, so the wait is for
    // silence, not for the whole step: a long step is waited for as long as it runs.
    for (;;) {
      const timeout = new AbortController();
      const timer = setTimeout(() => timeout.abort(), waitMs);
      let line: string | null;
      try {
        line = await reader.next(timeout.signal);
      } finally {
        clearTimeout(timer);
      }
      if (line === null) {
        throw new SessionError(
          timeout.signal.aborted
            ? `No answer from the session agent within ${waitMs} ms`
            : "The session agent ended before it answered (it was stopped or killed); " +
              "its sockets are gone",
          false,
          !timeout.signal.aborted,
        );
      }
      const value = JSON.parse(line) as Response | typeof HEARTBEAT;
      if ("alive" in value) continue;
      return value;
    }
  } catch (error) {
    if (error instanceof SessionError) throw error;
    throw new SessionError(`Cannot talk to the session agent: ${message(error)}`);
  } finally {
    try {
      conn.close();
    } catch {
      // Closed already.
    }
  }
}

/** Throws the agent's refusal as a SessionError (usage refusals exit 2). */
function answered(response: Response): Response & { ok: true } {
  if (!response.ok) {
    throw new SessionError(response.message, response.usage, response.stopping === true);
  }
  return response;
}

/**
 * Prints a failure as one line and returns the exit code: a SessionError (1, or 2 for usage), a
 * missing permission, a closed standard output, anything else as an internal error (1). Nothing
 * is rethrown: a handle command does not pass through main's own handler.
 */
function failure(ctx: CliContext, error: unknown): number {
  try {
    if (error instanceof SessionError) {
      ctx.stderr.line(formatErrorLine(error.message));
      return error.usage ? 2 : 1;
    }
    if (error instanceof Deno.errors.NotCapable) {
      ctx.stderr.line(formatErrorLine(`Cannot use the session agent: ${error.message}`));
    } else if (error instanceof Deno.errors.BrokenPipe) {
      ctx.stderr.line(
        formatErrorLine("standard output was closed before all received data was written"),
      );
    } else ctx.stderr.line(formatErrorLine(`internal error: ${message(error)}`));
  } catch {
    // Standard error is gone too: the exit code still says it.
  }
  return 1;
}

/** Most bytes a handle command reads from a file or standard input to send. */
const MAX_HANDLE_INPUT = 32 << 20;

/** Flags of a command run on the agent. */
export interface SessionFlags {
  readonly json: boolean;
  readonly verbose: boolean;
  /** `-q`: only failures are printed. */
  readonly quiet?: boolean;
  /** The per-call bound the steps use (for how long silence from the agent is tolerated). */
  readonly timeout: number;
}

/**
 * Runs a command on a session handle, `VERB @N WORDS…`: the verb's declaration parses the
 * words (exactly as in a script, with the handle in place of `--socket`), and the parsed step
 * goes to the agent. Returns the exit code.
 */
export async function runHandleCommand(
  verb: VerbDecl | null,
  args: readonly string[],
  ctx: CliContext,
): Promise<number> {
  const name = args[0] ?? "";
  const match = HANDLE_REGEXP.exec(args[1] ?? "");
  const usage = (text: string) => {
    ctx.stderr.line(formatErrorLine(text));
    return 2;
  };
  if (!match) {
    return usage(`Cannot parse handle "${args[1]}": expected @ and a socket number, e.g. @1`);
  }
  const handle = Number(match[1]);
  if (verb === null || !verb.handle) {
    return usage(`Cannot use handle "@${handle}" with "${name}": it takes no handle`);
  }
  let step: Step;
  let options: Record<string, unknown>;
  try {
    ({ step, options } = parseHandleWords(verb, args.slice(2), args.join(" ")));
  } catch (error) {
    if (error instanceof UsageError) return usage(error.message);
    throw error;
  }
  return await runSessionSteps(ctx, handle, [step], {
    json: options.json === true,
    verbose: options.verbose === true,
    quiet: options.quiet === true,
    timeout: (options.timeout as number | undefined) ?? DEFAULT_TIMEOUT,
  });
}

/** Reads all of `source` (at most {@linkcode MAX_HANDLE_INPUT} bytes). */
async function readAll(source: ByteSource, what: string): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const chunk = new Uint8Array(64 * 1024);
      const count = await source.read(chunk);
      if (count === null) break;
      total += count;
      if (total > MAX_HANDLE_INPUT) {
        throw new UsageError(
          `Cannot send ${what} on a handle: it is longer than ${MAX_HANDLE_INPUT} bytes`,
        );
      }
      chunks.push(chunk.subarray(0, count));
    }
  } finally {
    closeQuietly(source);
  }
  return joinBytes(chunks, total);
}

/**
 * What this side does for the agent's steps: a `send` with no data gets its file's or standard
 * input's bytes (the agent reads no files of yours), and a `receive --output FILE` writes here
 * (the agent sends the payload back). Returns the steps as sent and the output opened.
 */
async function localSide(
  ctx: CliContext,
  steps: readonly Step[],
): Promise<{ steps: Step[]; output: OutputFile | null; raw: boolean }> {
  let output: OutputFile | null = null;
  let raw = false;
  const sent: Step[] = [];
  for (const step of steps) {
    if (step.verb === "send" && step.data === undefined && step.pattern === undefined) {
      const file = step.file;
      let source: ByteSource;
      if (file === undefined || file === "-") source = ctx.stdin();
      else {
        try {
          source = await Deno.open(file, { read: true });
        } catch (error) {
          throw new UsageError(`Cannot read file "${file}": ${message(error)}`);
        }
      }
      const data = await readAll(
        source,
        file === undefined || file === "-" ? "standard input" : `"${file}"`,
      );
      const { file: _, ...rest } = step;
      sent.push({ ...rest, data });
      raw ||= step.receive;
    } else if (step.verb === "receive" && step.output !== undefined) {
      if (step.output !== "-") output = await OutputFile.open(step.output, step.append);
      raw ||= step.output === "-";
      sent.push({ ...step, output: "-", append: false });
    } else if ("tls" in step && step.tls !== undefined && step.tls.ca.length > 0) {
      // The agent reads no files of yours: the CA certificates travel with the step.
      const pems = await Promise.all(step.tls.ca.map(readPem));
      sent.push({ ...step, tls: { ...step.tls, pems } } as Step);
    } else {
      if (step.verb === "send") raw ||= step.receive;
      sent.push(step);
    }
  }
  return { steps: sent, output, raw };
}

/**
 * Runs parsed steps on the session agent: on the socket `handle` names, or (handle null) steps
 * that make sockets, which become handles. Prints what the agent's steps reported and returns
 * the exit code: 0, 1 (a call failed, or the agent is unreachable), 2 (usage, an unknown
 * handle), 3 (a failed `--status` or expectation).
 */
export async function runSessionSteps(
  ctx: CliContext,
  handle: number | null,
  steps: readonly Step[],
  flags: SessionFlags,
): Promise<number> {
  let output: OutputFile | null = null;
  let delivered = false;
  try {
    const local = await localSide(ctx, steps);
    output = local.output;
    const where = await place(handle === null);
    // The longest silence to accept: the agent sends a heartbeat while the step runs.
    const waitMs = flags.timeout * 4 + 10_000;
    const request: Request = { op: "step", handle, steps: encodeSteps(local.steps) };
    let response: Response & { ok: true };
    for (let attempt = 1;; attempt++) {
      let conn = await dial(where);
      if (conn === null) {
        if (handle !== null) {
          throw new SessionError(
            `Cannot find handle "@${handle}": no session agent is running in "${where.dir}"`,
            true,
          );
        }
        conn = await start(where, idleMs(undefined));
      }
      try {
        response = answered(await exchange(conn, request, waitMs));
        break;
      } catch (error) {
        // An agent that was stopping (its idle time ran out as the command came) keeps nothing
        // it made, so a command that makes a socket tries again, with a fresh agent once the
        // old one has gone. A command on a handle cannot: its socket went with the agent.
        const retry = handle === null && error instanceof SessionError && error.agentGone &&
          attempt < CREATE_ATTEMPTS;
        if (!retry) throw error;
        await new Promise((resolve) => setTimeout(resolve, CREATE_RETRY_PAUSE_MS));
      }
    }
    const reporter = new Reporter(ctx.stdout, ctx.stderr, {
      json: flags.json,
      verbose: flags.verbose,
      color: ctx.color && !flags.json,
      quiet: flags.quiet === true,
    });
    if (local.raw && output === null) reporter.payloadOnStdout = true;
    for (const item of response.items ?? []) {
      if (item.kind === "call") reporter.record(fromWire(item.record), item.expected);
      else if (item.kind === "expect") reporter.expectation(item.record);
      else if (item.kind === "payload") {
        const bytes = decodeBase64(item.base64);
        if (output) await output.write(bytes);
        else await ctx.writePayload(bytes);
        delivered ||= bytes.length > 0;
      } else reporter.note(item.text);
    }
    if (response.outcome === "expectation") return 3;
    return response.outcome === "failure" || reporter.failed ? 1 : 0;
  } catch (error) {
    if (error instanceof UsageError) {
      ctx.stderr.line(formatErrorLine(error.message));
      return 2;
    }
    return failure(ctx, error);
  } finally {
    await output?.close(delivered).catch(() => {});
  }
}

/** Options of the `session` subcommands. */
export interface SessionOptions {
  readonly json: boolean;
  /** `start --idle`. */
  readonly idleMs?: number;
}

/**
 * `wsk session start|stop|status|list`. `start` starts an agent unless one runs; the others
 * never start one. Returns the exit code.
 */
export async function sessionAction(
  action: "start" | "stop" | "status" | "list",
  options: SessionOptions,
  ctx: CliContext,
): Promise<number> {
  try {
    const where = await place(action === "start");
    let conn = await dial(where);
    if (conn === null) {
      if (action === "list") return 0;
      if (action !== "start") {
        // A killed agent's socket file: nobody answers on it, so it goes.
        if (action === "stop" && await checkSocketFile(where.path, where.uid)) {
          await Deno.remove(where.path).catch(() => {});
        }
        ctx.stdout.line(formatSessionAgent({ agent: "not running", dir: where.dir }, options.json));
        return 0;
      }
      conn = await start(where, idleMs(options.idleMs));
      const response = answered(await exchange(conn, { op: "status" }, ANSWER_WAIT_MS));
      ctx.stdout.line(formatSessionAgent({ ...response.agent!, agent: "started" }, options.json));
      return 0;
    }
    const op = action === "start" ? "status" : action;
    const response = answered(await exchange(conn, { op }, ANSWER_WAIT_MS));
    if (action === "list") {
      for (const entry of response.sockets ?? []) {
        ctx.stdout.line(formatSessionSocket(entry, options.json));
      }
    } else ctx.stdout.line(formatSessionAgent(response.agent!, options.json));
    return 0;
  } catch (error) {
    return failure(ctx, error);
  }
}

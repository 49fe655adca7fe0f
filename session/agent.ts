/**
 * The session agent: a per-user process that holds sockets between commands. It listens only on
 * a Unix socket in a private directory, and answers one JSON request per connection. A command
 * on a handle (`wsk send @3 --data hi`) becomes one dispatch-script step, run by the same
 * {@linkcode StepExecutor} as `wsk run` on the socket the handle names; the records the step
 * produced go back to the command, which prints them.
 *
 * Every connected socket gets WskDisconnectEvent enabled (one WskControlSocket the agent makes
 * itself): the provider then reads ahead into its own buffer, up to 1 MiB per socket, so data
 * that arrives between commands is kept and the next `receive` takes it first. Beyond the bound
 * the provider stops reading and TCP flow control holds the peer back; nothing is dropped.
 *
 * @module
 */

import {
  NPI_WSK_INTERFACE_ID,
  NT_SUCCESS,
  type NTSTATUS,
  SIO_WSK_QUERY_RECEIVE_BACKLOG,
  SO_WSK_EVENT_CALLBACK,
  SOL_SOCKET,
  STATUS_SUCCESS,
  WSK_EVENT_DISCONNECT,
  type WskClientConnectionDispatch,
  WskIoctl,
  WskListenSocket,
  WskSetOption,
} from "../provider/mod.ts";
import {
  type CallRecord,
  type ExpectationRecord,
  Reporter,
  type SessionAgentRecord,
  type SessionSocketRecord,
  type TextSink,
} from "../report/reporter.ts";
import { CallContext, DEFAULT_TIMEOUT } from "../engine/context.ts";
import type { Step } from "../steps/step.ts";
import { onFirstSignal, STOP_SIGNALS } from "../engine/interrupt.ts";
import { UsageError } from "../syntax/usage.ts";
import {
  type AnySocket,
  type Outcome,
  type RunnerState,
  StepError,
  StepExecutor,
} from "../steps/executor.ts";
import {
  checkPrivateDir,
  checkSocketFile,
  currentUid,
  decodeSteps,
  encodeBase64,
  HEARTBEAT,
  HEARTBEAT_MS,
  LOCK_NAME,
  LOG_NAME,
  message,
  readLine,
  type Request,
  type Response,
  SessionError,
  SOCKET_NAME,
  toWire,
  type WireItem,
  writeLine,
} from "./wire.ts";

/** The verbs whose steps make a socket in the agent without a handle (`--session`, `--hold`). */
const CREATES: ReadonlySet<string> = new Set(["socket", "socketconnect"]);

/** How long the agent waits for a request line once a client has connected. */
const REQUEST_WAIT_MS = 5000;
/** How long `stop` waits for running steps to end once their calls are cancelled. */
const STOP_WAIT_MS = 5000;
/** How long an answer may make no progress into a client that does not read it. */
const ANSWER_STALL_MS = 5000;
/** The agent's log stops growing past this size. */
const LOG_LIMIT = 1 << 20;

/** Connection states in which a socket can have events enabled and data read ahead. */
const CONNECTED = new Set(["ESTAB", "LFIN", "RFIN", "BOTHFIN"]);

/**
 * The event callbacks every session socket gets. The agent wants what enabling
 * WskDisconnectEvent implies (the provider reads ahead); the state itself it reads from the
 * socket, so the callback only acknowledges.
 */
const AGENT_DISPATCH: WskClientConnectionDispatch = {
  WskDisconnectEvent: () => STATUS_SUCCESS,
};

/** Options of {@linkcode runAgent}. */
export interface AgentOptions {
  /** The private directory for the socket, lock and log. */
  readonly dir: string;
  /** Exit after this many milliseconds without a command. */
  readonly idleMs: number;
}

/** A line sink that drops everything (the agent's reporter keeps records, not text). */
const DISCARD: TextSink = { line: () => {} };

/** A reporter that keeps what a step reported, in order, for the command that asked. */
class RecordingReporter extends Reporter {
  readonly items: WireItem[] = [];

  constructor() {
    super(DISCARD, DISCARD, { json: false, verbose: true, color: false });
  }

  override record(record: CallRecord, expected?: NTSTATUS): void {
    super.record(record, expected);
    // Every socket in the agent is (or was) a handle: its id with an @.
    const tagged = record.socket === undefined
      ? record
      : { ...record, handle: `@${record.socket}` };
    this.items.push({
      kind: "call",
      record: toWire(tagged),
      ...(expected === undefined ? {} : { expected }),
    });
  }

  override expectation(record: ExpectationRecord): void {
    super.expectation(record);
    this.items.push({ kind: "expect", record });
  }

  override note(text: string): void {
    this.items.push({ kind: "note", text });
  }
}

/** A socket the agent holds. */
interface Held {
  /** The socket id, which the handle names (`@id`). */
  readonly id: number;
  /** Its name among the runner's sockets. */
  readonly name: string;
  readonly socket: AnySocket;
  /** The end of the queue of commands on this handle (they run one at a time). */
  chain: Promise<unknown>;
  /** Commands on this handle not finished yet. */
  pending: number;
  /** Whether WskDisconnectEvent is on (the provider reads ahead). */
  reading: boolean;
}

function usage(text: string): Response {
  return { ok: false, usage: true, message: text };
}

/** Runs the agent until `stop`, a signal or the idle time; resolves to the exit code. */
export async function runAgent(options: AgentOptions): Promise<number> {
  const agent = new SessionAgent(options);
  try {
    return await agent.run();
  } catch (error) {
    // It has no terminal: the client points at the log when the agent ends at once.
    agent.log(`Cannot serve: ${message(error)}`);
    throw error;
  }
}

/** The agent's server: the listener, the held sockets, the idle timer. */
class SessionAgent {
  readonly #dir: string;
  readonly #idleMs: number;
  readonly #path: string;
  readonly #uid = currentUid();
  readonly #state: RunnerState = {
    sockets: new Map(),
    carry: new Map(),
    dispatch: AGENT_DISPATCH,
  };
  readonly #held = new Map<number, Held>();
  /** Signals of the steps running now, aborted by `stop`. */
  readonly #running = new Set<AbortController>();
  /** The commands being executed now (on a handle or making one), awaited by `stop`. */
  readonly #executing = new Set<Promise<void>>();
  /** Set once `stop` has closed every socket: a socket made later is closed at once. */
  #closedAll = false;
  #listener: Deno.Listener | null = null;
  #active = 0;
  #fresh = 0;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  #stopping: Promise<number> | null = null;
  #stopped = Promise.withResolvers<void>();

  constructor(options: AgentOptions) {
    this.#dir = options.dir;
    this.#idleMs = options.idleMs;
    this.#path = `${options.dir}/${SOCKET_NAME}`;
  }

  /** Listens, serves, and cleans up; 0 also when another agent already serves the directory. */
  async run(): Promise<number> {
    await checkPrivateDir(this.#dir, this.#uid, true);
    const lockPath = `${this.#dir}/${LOCK_NAME}`;
    const lock = await Deno.open(lockPath, {
      read: true,
      write: true,
      create: true,
      mode: 0o600,
    });
    try {
      // One agent per directory: the lock is held for life and freed by the kernel on death.
      if (!(await lock.tryLock(true))) return 0;
      // A stopping agent unlinks the lock file once it has let go of the directory. A lock on
      // the file it unlinked (opened just before) guards nothing: leave the directory to the
      // agent that locks the file now there (the client starts another if none does).
      if (!(await sameFile(lock, lockPath))) return 0;
      // Holding the lock, any socket file left is stale (its agent died): replace it.
      if (await checkSocketFile(this.#path, this.#uid)) await Deno.remove(this.#path);
      // Listen under a private name, restrict it, then publish it: the socket is never
      // reachable by its public name with looser permissions.
      const staging = `${this.#path}.${Deno.pid}`;
      await Deno.remove(staging).catch(() => {});
      const listener = Deno.listen({ transport: "unix", path: staging });
      this.#listener = listener;
      await Deno.chmod(staging, 0o600);
      await Deno.rename(staging, this.#path);
      // SIGHUP too: the terminal that started the agent may close. A second signal ends it.
      const stopListening = onFirstSignal(() => void this.#stop(), [...STOP_SIGNALS, "SIGHUP"]);
      const onRejection = (event: PromiseRejectionEvent) => {
        // One socket's fault must not end the agent and every other socket with it.
        event.preventDefault();
        this.#log(`unhandled rejection: ${message(event.reason)}`);
      };
      globalThis.addEventListener("unhandledrejection", onRejection);
      this.#touch();
      try {
        await this.#accept(listener);
        await this.#stopped.promise;
      } finally {
        stopListening();
        globalThis.removeEventListener("unhandledrejection", onRejection);
        clearTimeout(this.#idleTimer);
      }
      return 0;
    } finally {
      lock.close();
    }
  }

  /** Accepts until the listener closes; each connection is served on its own. */
  async #accept(listener: Deno.Listener): Promise<void> {
    for (let failures = 0; failures < 1000;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (this.#stopping) return;
        // Out of descriptors, say: note it, wait a little, go on (bounded).
        failures++;
        this.#log(`accept: ${message(error)}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      void this.#serve(conn);
    }
    await this.#stop();
  }

  /** (Re)arms the idle timer when nothing is being served. */
  #touch(): void {
    clearTimeout(this.#idleTimer);
    if (this.#stopping || this.#active > 0) return;
    this.#idleTimer = setTimeout(() => void this.#stop(), this.#idleMs);
  }

  /** Reads one request, answers it, closes the connection. Faults become error answers. */
  async #serve(conn: Deno.Conn): Promise<void> {
    this.#active++;
    this.#touch();
    const gone = new AbortController();
    let heartbeat: ReturnType<typeof setInterval> | undefined;
    try {
      const wait = new AbortController();
      const timer = setTimeout(() => wait.abort(), REQUEST_WAIT_MS);
      const line = await readLine(conn, wait.signal);
      clearTimeout(timer);
      if (line === null) return;
      // The client sends nothing more: the end of its stream means it went away (Ctrl-C, a
      // timeout), and the calls made for it are cancelled.
      conn.read(new Uint8Array(1)).then(() => gone.abort(), () => gone.abort());
      let response: Response;
      // While the answer is being worked out, say so every HEARTBEAT_MS, so the client waits
      // for as long as the step runs (and no longer once the agent is gone).
      let beating: Promise<void> = Promise.resolve();
      heartbeat = setInterval(() => {
        beating = beating.then(() => writeLine(conn, HEARTBEAT, ANSWER_STALL_MS)).catch(() => {});
      }, HEARTBEAT_MS);
      try {
        response = await this.#answer(JSON.parse(line) as Request, gone.signal);
      } catch (error) {
        if (error instanceof UsageError || error instanceof SessionError) {
          response = usage(error.message);
        } else {
          this.#log(`fault: ${error instanceof Error ? error.stack : error}`);
          response = {
            ok: false,
            usage: false,
            message: `Internal error in the session agent: ${message(error)}`,
          };
        }
      }
      clearInterval(heartbeat);
      await beating;
      // Bounded: a client that stopped reading (suspended, say) must not keep the agent busy,
      // and so alive, for ever.
      await writeLine(conn, response, ANSWER_STALL_MS).catch((error) => {
        this.#log(`answer not delivered: ${message(error)}`);
      });
    } catch (error) {
      this.#log(`serve: ${message(error)}`);
    } finally {
      clearInterval(heartbeat);
      try {
        conn.close();
      } catch {
        // Closed already.
      }
      this.#active--;
      this.#touch();
    }
  }

  async #answer(request: Request, gone: AbortSignal): Promise<Response> {
    switch (request.op) {
      case "ping":
      case "status":
        return { ok: true, agent: this.#record("running") };
      case "list": {
        const sockets: SessionSocketRecord[] = [];
        for (const held of [...this.#held.values()].sort((a, b) => a.id - b.id)) {
          sockets.push(await this.#entry(held));
        }
        return { ok: true, sockets };
      }
      case "stop": {
        const closed = await this.#stop();
        return { ok: true, agent: { ...this.#record("stopped"), sockets: closed } };
      }
      case "step":
        return await this.#step(request, gone);
      default:
        return usage(`Unknown request "${String((request as { op: unknown }).op)}"`);
    }
  }

  #record(agent: SessionAgentRecord["agent"]): SessionAgentRecord {
    return {
      agent,
      dir: this.#dir,
      pid: Deno.pid,
      sockets: this.#held.size,
      idleMs: this.#idleMs,
    };
  }

  /** What `list` shows of one socket; the buffered count comes from the provider's backlog. */
  async #entry(held: Held): Promise<SessionSocketRecord> {
    const socket = held.socket;
    const base = {
      handle: `@${held.id}`,
      state: socket.state,
      local: socket.localAddress,
      pending: held.pending,
    };
    if (socket instanceof WskListenSocket) {
      return { ...base, kind: "listen", remote: null, sent: 0, received: 0, buffered: 0 };
    }
    const buffered = (this.#state.carry.get(socket)?.length ?? 0) + await this.#backlog(socket);
    return {
      ...base,
      kind: "connection",
      remote: socket.remoteAddress,
      sent: socket.bytesSent,
      received: socket.bytesReceived,
      buffered,
    };
  }

  /**
   * Runs a command's parsed steps: on the socket its handle names (on that handle's queue), or,
   * with no handle, steps that make sockets (`socket --session`, `socketconnect --session`,
   * `accept LOCAL --hold`), each of which becomes a handle. The steps' socket names are the
   * client's; here each gets the held socket's name or a fresh one.
   */
  async #step(request: Request & { op: "step" }, gone: AbortSignal): Promise<Response> {
    if (this.#stopping) {
      return { ok: false, usage: false, message: "The session agent is stopping", stopping: true };
    }
    const { handle } = request;
    const given = decodeSteps<Step>(request.steps);
    if (given.length === 0) return usage("Nothing to do: no steps");
    let held: Held | undefined;
    if (handle !== null) {
      held = this.#held.get(handle);
      if (!held) {
        return usage(
          `Cannot find handle "@${handle}": the session agent holds no such socket ` +
            "(see wsk session list)",
        );
      }
    } else if (!CREATES.has(given[0]!.verb)) {
      return usage(
        `Cannot use "${given[0]!.verb}" with --session: only socket, socketconnect and accept ` +
          "--hold make one",
      );
    }
    /** The client's socket names, mapped to the runner's. */
    const names = new Map<string, string>();
    /** Every runner name a socket made by this command may have; each becomes a handle. */
    const made: string[] = [];
    const nameOf = (client: string): string => {
      let name = names.get(client);
      if (name === undefined) {
        // On a handle, the command's own socket is the handle's; anything else is new.
        if (held && client === "main" && !(given[0]!.verb === "accept")) name = held.name;
        else {
          name = `n${++this.#fresh}`;
          made.push(name);
        }
        names.set(client, name);
      }
      return name;
    };
    let steps: Step[];
    try {
      steps = given.map((step) => {
        const renamed = { ...step, socket: nameOf(step.socket) } as Step;
        if (step.verb !== "accept") return renamed;
        // `accept @L`: the handle is the listener; `accept LOCAL --hold`: the steps made it.
        const listener = held && handle !== null ? held.name : names.get(step.listener);
        if (listener === undefined) throw new UsageError("accept needs a listening socket");
        return { ...renamed, listener } as Step;
      });
    } catch (error) {
      if (error instanceof UsageError) return usage(error.message);
      throw error;
    }
    if (!held) return await this.#execute(steps, null, made, gone);
    const target = held;
    target.pending++;
    const result = target.chain.then(() => this.#execute(steps, target, made, gone));
    target.chain = result.catch(() => {});
    try {
      return await result;
    } finally {
      target.pending--;
    }
  }

  /** Runs the steps with a fresh CallContext whose reporter keeps the records; registers new sockets. */
  async #execute(
    steps: Step[],
    held: Held | null,
    fresh: readonly string[],
    gone: AbortSignal,
  ): Promise<Response> {
    // The client left while the command waited its turn: nothing is done for it.
    if (gone.aborted) return { ok: false, usage: false, message: "The command went away" };
    if (this.#stopping) {
      return { ok: false, usage: false, message: "The session agent is stopping", stopping: true };
    }
    const done = Promise.withResolvers<void>();
    this.#executing.add(done.promise);
    try {
      return await this.#executeSteps(steps, held, fresh, gone);
    } finally {
      this.#executing.delete(done.promise);
      done.resolve();
    }
  }

  async #executeSteps(
    steps: Step[],
    held: Held | null,
    fresh: readonly string[],
    gone: AbortSignal,
  ): Promise<Response> {
    const controller = new AbortController();
    const onGone = () => controller.abort();
    gone.addEventListener("abort", onGone);
    this.#running.add(controller);
    const reporter = new RecordingReporter();
    const run = new CallContext(reporter, DEFAULT_TIMEOUT, false, controller.signal);
    const runner = new StepExecutor(run, this.#state, {
      // Payload goes back to the command, which writes it where it was asked to.
      stdout: (bytes) => {
        reporter.items.push({ kind: "payload", base64: encodeBase64(bytes) });
        return Promise.resolve();
      },
      stdin: () => {
        throw new StepError("the session agent has no standard input");
      },
      json: true,
      payloadOnStdout: () => {},
    });
    let outcome: Outcome = "next";
    try {
      await run.prepare();
      for (const step of steps) {
        // WskCloseSocket discards what the provider read ahead: move it where the step's
        // closesocket shows it (a `value=unread` line), as it shows bytes a receive left.
        if (step.verb === "closesocket" && held) await this.#takeReadAhead(held.socket);
        outcome = await runner.step(step);
        if (outcome !== "next") break;
      }
    } catch (error) {
      if (error instanceof StepError) {
        // The runner's names are internal: say the handle instead.
        return usage(error.message.replace(/"h(\d+)"/g, '"@$1"'));
      }
      throw error;
    } finally {
      gone.removeEventListener("abort", onGone);
      this.#running.delete(controller);
      this.#settle(held, fresh);
    }
    for (const one of this.#held.values()) {
      if (this.#stopping) break;
      await this.#readAhead(one);
    }
    return { ok: true, items: reporter.items, outcome };
  }

  /** After a step: a socket made under a `fresh` name becomes a handle; a closed one is dropped. */
  #settle(held: Held | null, fresh: readonly string[]): void {
    const sockets = this.#state.sockets;
    if (this.#closedAll) {
      // A step that outlasted the stop's wait: what it made is closed now, not left open.
      for (const socket of sockets.values()) void closeQuietly(socket);
      sockets.clear();
      this.#state.carry.clear();
      return;
    }
    for (const runnerName of fresh) {
      const made = sockets.get(runnerName);
      if (!made) continue;
      sockets.delete(runnerName);
      const name = `h${made.id}`;
      sockets.set(name, made);
      this.#held.set(made.id, {
        id: made.id,
        name,
        socket: made,
        chain: Promise.resolve(),
        pending: 0,
        reading: false,
      });
    }
    if (held && !sockets.has(held.name)) this.#held.delete(held.id);
  }

  /**
   * Takes what the provider read ahead on `socket` (each WskReceive completes at once from that
   * buffer) and appends it to the runner's carry, which a closesocket step reports as unread.
   * The agent's own calls, not shown, like the WskControlSocket that enabled the read-ahead.
   */
  async #takeReadAhead(socket: AnySocket): Promise<void> {
    if (socket instanceof WskListenSocket) return;
    // Bounded: each round empties the buffer as it was; new data may land between rounds.
    for (let round = 0; round < 16 && CONNECTED.has(socket.state); round++) {
      const backlog = await this.#backlog(socket);
      if (backlog === 0) return;
      const buffer = new Uint8Array(backlog);
      const got = await socket.Dispatch.WskReceive(
        socket,
        { Mdl: { Next: null, bytes: buffer }, Offset: 0, Length: backlog },
        0,
        { timeout: STOP_WAIT_MS },
      );
      if (!NT_SUCCESS(got.status) || got.information === 0) return;
      const taken = buffer.subarray(0, got.information);
      const carried = this.#state.carry.get(socket);
      if (carried === undefined) this.#state.carry.set(socket, taken);
      else {
        const joined = new Uint8Array(carried.length + taken.length);
        joined.set(carried);
        joined.set(taken, carried.length);
        this.#state.carry.set(socket, joined);
      }
    }
  }

  /** Bytes the provider has read ahead on a connected socket (0 when it cannot say). */
  async #backlog(socket: AnySocket): Promise<number> {
    if (socket instanceof WskListenSocket || !CONNECTED.has(socket.state)) return 0;
    const out = new Uint8Array(8);
    const got = await socket.Dispatch.WskControlSocket(
      socket,
      WskIoctl,
      SIO_WSK_QUERY_RECEIVE_BACKLOG,
      0,
      null,
      out,
    );
    return NT_SUCCESS(got.status) ? Number(new DataView(out.buffer).getBigUint64(0, true)) : 0;
  }

  /** Enables WskDisconnectEvent once a socket is connected, so the provider reads ahead. */
  async #readAhead(held: Held): Promise<void> {
    const socket = held.socket;
    if (held.reading || socket instanceof WskListenSocket || !CONNECTED.has(socket.state)) return;
    held.reading = true;
    const enabled = await socket.Dispatch.WskControlSocket(
      socket,
      WskSetOption,
      SO_WSK_EVENT_CALLBACK,
      SOL_SOCKET,
      { NpiId: NPI_WSK_INTERFACE_ID, EventMask: WSK_EVENT_DISCONNECT },
      null,
    );
    if (!NT_SUCCESS(enabled.status)) {
      this.#log(`@${held.id}: read-ahead not enabled: ${enabled.message ?? enabled.status}`);
    }
  }

  /**
   * Stops once: no new connections, the socket file removed, running calls cancelled, every
   * held socket closed. Resolves to the number of sockets closed.
   */
  #stop(): Promise<number> {
    this.#stopping ??= (async () => {
      clearTimeout(this.#idleTimer);
      try {
        this.#listener?.close();
      } catch {
        // Closed already.
      }
      // Still holding the lock, the socket file is ours: no other agent can have published one.
      await Deno.remove(this.#path).catch(() => {});
      // Only now may a new agent take the directory (without waiting for the sockets to close).
      await Deno.remove(`${this.#dir}/${LOCK_NAME}`).catch(() => {});
      for (const controller of this.#running) controller.abort();
      // Steps on handles, and commands making a socket (which are on no handle's queue).
      const busy = Promise.all([
        ...[...this.#held.values()].map((one) => one.chain),
        ...this.#executing,
      ]);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        busy,
        new Promise((resolve) => timer = setTimeout(resolve, STOP_WAIT_MS)),
      ]);
      clearTimeout(timer);
      // Every socket held now: also those a step made while the stop waited for it.
      const count = this.#held.size;
      const sockets = new Set<AnySocket>([
        ...[...this.#held.values()].map((one) => one.socket),
        ...this.#state.sockets.values(),
      ]);
      for (const socket of sockets) {
        if (socket.state === "CLOSED") continue;
        const kept = (this.#state.carry.get(socket)?.length ?? 0) + await this.#backlog(socket);
        if (kept > 0) {
          this.#log(
            `socket ${socket.id}: closed by the stop with ${kept} bytes received, not taken`,
          );
        }
        await closeQuietly(socket);
      }
      this.#closedAll = true;
      this.#held.clear();
      this.#state.sockets.clear();
      this.#state.carry.clear();
      this.#stopped.resolve();
      return count;
    })();
    return this.#stopping;
  }

  /** Notes a fault in the agent's log (it has no terminal); never throws. */
  log(text: string): void {
    this.#log(text);
  }

  #log(text: string): void {
    const path = `${this.#dir}/${LOG_NAME}`;
    try {
      const size = Deno.lstatSync(path).size;
      if (size > LOG_LIMIT) return;
    } catch {
      // No log yet.
    }
    try {
      Deno.writeTextFileSync(path, `${new Date().toISOString()} ${text}\n`, {
        append: true,
        mode: 0o600,
      });
    } catch {
      // Nowhere to say it.
    }
  }
}

/** WskCloseSocket on either kind of socket; a fault is swallowed (the agent is ending). */
async function closeQuietly(socket: AnySocket): Promise<void> {
  try {
    if (socket.state === "CLOSED") return;
    if (socket instanceof WskListenSocket) await socket.Dispatch.WskCloseSocket(socket);
    else await socket.Dispatch.WskCloseSocket(socket);
  } catch {
    // Nothing more to do for it.
  }
}

/** Whether the open `file` is the file now at `path` (not one unlinked since it was opened). */
async function sameFile(file: Deno.FsFile, path: string): Promise<boolean> {
  const open = await file.stat();
  const named = await Deno.lstat(path).catch(() => null);
  return named !== null && named.ino === open.ino && named.dev === open.dev;
}

/**
 * The step executor: runs parsed steps (see `script.ts`) on named live sockets, each step its own
 * dispatch call, reported and judged. `wsk run` gives it a whole script; the session agent gives
 * it the steps of one command on a handle.
 *
 * @module
 */

import {
  type AddressFamily,
  AF_INET,
  IPPROTO_TCP,
  NT_SUCCESS,
  ntStatusName,
  SOCK_STREAM,
  type SockAddr,
  STATUS_CANCELLED,
  STATUS_DATA_ERROR,
  STATUS_IO_TIMEOUT,
  STATUS_SUCCESS,
  wildcard,
  WSK_FLAG_ABORTIVE,
  WSK_FLAG_LISTEN_SOCKET,
  WSK_FLAG_NODELAY,
  wskBuf,
  type WskClientConnectionDispatch,
  type WskCompletion,
  type WskConnectionSocket,
  type WskIrp,
  WskListenSocket,
  type WskSocketOptions,
} from "../provider/mod.ts";
import type { TlsStep } from "./step.ts";
import { readPem } from "./pem.ts";
import {
  DuplexReceive,
  joinBytes,
  pump,
  type PumpResult,
  ReadAhead,
  Received,
} from "../engine/pump.ts";
import type { CallContext } from "../engine/context.ts";
import type { Step } from "./step.ts";
import type { StepIO } from "./io.ts";

export type { StepIO } from "./io.ts";
import { checkPorts, socketConnect } from "../engine/socketconnect.ts";
import type { Endpoint } from "../syntax/values.ts";
import { PatternVerifier } from "../engine/pattern.ts";
import { type ByteSource, closeQuietly, sendPattern, sendStream } from "../engine/send.ts";
import { OutputFile, payloadRecords } from "../engine/output.ts";
import { Progress } from "../report/progress.ts";
import { HexTrace } from "../report/trace.ts";
import type { CallRecord } from "../report/reporter.ts";
import { UsageError } from "../syntax/usage.ts";

/** The files a step opens, opened before any socket exists (see StepExecutor.prepare). */
interface Opened {
  output?: OutputFile;
  input?: { source: ByteSource; size: number | null };
  /** The output got all its data: keep it. */
  keep?: boolean;
}

/** Buffer of the receive a closesocket posts before closing. */
const RECEIVE_BUFFER = 64 * 1024;

/** Most received bytes one receive step keeps for matching and for the next step. */
const MAX_MATCH = 16 << 20;

/** A socket a script step works on. */
export type AnySocket = WskConnectionSocket | WskListenSocket;

/**
 * The host each connection socket's connect named, for the server name a later `starttls`
 * checks by default (kept per process: a session agent's sockets outlive one runner).
 */
const hostNames = new WeakMap<WskConnectionSocket, string>();

/**
 * The step as its connect call is judged: with `--tls`, an expected SECURITY_STATUS (`--status
 * SEC_E_…`, FACILITY_SECURITY 0x8009) is the handshake's, so the connect itself must succeed.
 */
function connectPart<S extends Step & { tls?: TlsStep }>(step: S): S {
  if (!step.tls || step.status === undefined || step.status >>> 16 !== 0x8009) return step;
  const { status: _, ...rest } = step;
  return rest as S;
}

/** The host an endpoint names: the name typed, or the address literal. */
function hostOf(endpoint: Endpoint): string | undefined {
  if (endpoint.kind === "name") return endpoint.host;
  if (endpoint.kind === "literal") return endpoint.address.address;
  return undefined;
}

/** Why the script stopped early: a failed expectation (exit 3) or an unexpected status (1). */
export type Outcome = "next" | "expectation" | "failure";

/**
 * What a runner keeps between steps. `wsk run` gives each script its own; the session agent
 * shares one across the runners of many commands, so sockets outlive a command.
 */
export interface RunnerState {
  /** Live sockets by name. */
  readonly sockets: Map<string, AnySocket>;
  /** Bytes a receive step took past its stop point, kept for the next receive on the socket. */
  readonly carry: Map<AnySocket, Uint8Array>;
  /** The client dispatch (event callbacks) every new connection socket gets. */
  readonly dispatch: WskClientConnectionDispatch | null;
}

/** A fresh, empty {@linkcode RunnerState} with no event callbacks. */
export function newRunnerState(): RunnerState {
  return { sockets: new Map(), carry: new Map(), dispatch: null };
}

function indexOfBytes(haystack: Uint8Array, needle: Uint8Array, from = 0): number {
  if (needle.length === 0) return 0;
  const first = needle[0]!;
  for (let i = haystack.indexOf(first, from); i >= 0; i = haystack.indexOf(first, i + 1)) {
    if (i + needle.length > haystack.length) return -1;
    let j = 1;
    while (j < needle.length && haystack[i + j] === needle[j]) j++;
    if (j === needle.length) return i;
  }
  return -1;
}

/** Runs the steps of one script (or, in the session agent, of one command). */
export class StepExecutor {
  #run: CallContext;
  #sockets: Map<string, AnySocket>;
  #carry: Map<AnySocket, Uint8Array>;
  #dispatch: WskClientConnectionDispatch | null;
  readonly #io: StepIO | null;
  readonly #opened = new Map<Step, Opened>();
  /** CA certificates by path, read by prepare. */
  readonly #pems = new Map<string, string>();
  /** Sockets a later `starttls` step upgrades: their connect takes the node backing. */
  readonly #upgraded = new Set<string>();
  /** A command line's steps (see the constructor), not a script's or a handle's. */
  readonly #commandLine: boolean;
  /** Sockets whose failed step leaves the connection sound: they end gracefully all the same. */
  readonly #graceful = new Set<AnySocket>();

  /**
   * `commandLine`: the steps of one command line. Its send does not read ahead (the graceful
   * close that ends the command reads the reply instead), and `receive --verify-pattern SIZE`
   * reads to the peer's FIN, so a stream longer than SIZE fails. A script's receive stops at
   * SIZE and leaves the connection open for its next step.
   */
  constructor(
    run: CallContext,
    state: RunnerState = newRunnerState(),
    io: StepIO | null = null,
    commandLine = false,
  ) {
    this.#commandLine = commandLine;
    this.#run = run;
    this.#sockets = state.sockets;
    this.#carry = state.carry;
    this.#dispatch = state.dispatch;
    this.#io = io;
  }

  #needIO(): StepIO {
    if (this.#io === null) throw new StepError("this step needs standard input or output");
    return this.#io;
  }

  /**
   * Opens what the steps read and write (`send --file`, `receive --output FILE`) before any
   * socket exists, so a path that cannot be used is a usage error (exit 2). Throws UsageError.
   */
  async prepare(steps: readonly Step[]): Promise<void> {
    for (const step of steps) {
      if (step.verb === "starttls") this.#upgraded.add(step.socket);
      const tls = "tls" in step ? step.tls : undefined;
      for (const path of tls?.ca ?? []) {
        if (!this.#pems.has(path)) this.#pems.set(path, await readPem(path));
      }
      // Payload on standard output: every line goes to standard error, from the first one.
      const raw = (step.verb === "receive" && step.output === "-" && !step.drain) ||
        (step.verb === "send" && step.receive && !this.#inRecords(step));
      if (raw) this.#needIO().payloadOnStdout();
      if (step.verb === "receive" && step.output !== undefined && step.output !== "-") {
        const writing = step.verifyPattern === undefined || step.output !== undefined;
        if (writing) {
          this.#opened.set(step, { output: await OutputFile.open(step.output, step.append) });
        }
      } else if (step.verb === "send" && step.data === undefined && step.pattern === undefined) {
        this.#opened.set(step, { input: await openInput(step.file, this.#io) });
      }
    }
  }

  /** Closes what {@linkcode StepExecutor.prepare} opened; an output is kept if data arrived. */
  async release(): Promise<void> {
    for (const opened of this.#opened.values()) {
      if (opened.input) closeQuietly(opened.input.source);
      await opened.output?.close(opened.keep === true);
    }
    this.#opened.clear();
  }

  #irp(step: Step) {
    return this.#run.irp(step.timeout ?? this.#run.timeout);
  }

  #any(step: Step): AnySocket {
    const socket = this.#sockets.get(step.socket);
    if (!socket) throw new StepError(`socket "${step.socket}" does not exist (any more)`);
    return socket;
  }

  #connection(step: Step, name = step.socket): WskConnectionSocket {
    const socket = this.#sockets.get(name);
    if (!socket || socket instanceof WskListenSocket) {
      throw new StepError(`socket "${name}" is not a connection socket`);
    }
    return socket;
  }

  /** Judges the step's own call: its expected status, or success. */
  #judge(step: Step, completion: WskCompletion): Outcome {
    if (step.status !== undefined) {
      const passed = completion.status === step.status;
      this.#run.reporter.expectation({
        passed,
        step: step.step,
        line: step.line,
        verb: step.verb,
        expected: ntStatusName(step.status),
        ...(passed ? {} : { actual: ntStatusName(completion.status) }),
      });
      return passed ? "next" : "expectation";
    }
    return NT_SUCCESS(completion.status) ? "next" : "failure";
  }

  /**
   * Shows bytes an earlier receive took past its stop point that no later step read, as a
   * `WskReceive … calls=0 value=unread` line, so nothing received is dropped silently.
   */
  #flushUnread(socket: AnySocket): void {
    const unread = this.#carry.get(socket);
    this.#carry.delete(socket);
    if (!unread || socket instanceof WskListenSocket) return;
    this.#run.report(
      "WskReceive",
      socket,
      {
        status: STATUS_SUCCESS,
        information: unread.length,
      },
      0,
      { calls: 0, value: "unread", data: unread },
    );
  }

  /** Adds `bytes` after what is already carried for the next receive on `socket`. */
  #keep(socket: AnySocket, bytes: Uint8Array): void {
    const carried = this.#carry.get(socket);
    this.#carry.set(
      socket,
      carried ? joinBytes([carried, bytes], carried.length + bytes.length) : bytes,
    );
  }

  /** Issues the step's own dispatch call, reported and judged. */
  async #main<T extends WskCompletion>(
    step: Step,
    call: string,
    socket: AnySocket | null | ((c: T) => AnySocket | null),
    issue: () => Promise<T>,
    extra: Partial<CallRecord> = {},
  ): Promise<{ outcome: Outcome; completion: T }> {
    const completion = await this.#run.call(call, socket, issue, extra, step.status);
    return { outcome: this.#judge(step, completion), completion };
  }

  /** Creates a connection socket for `step` when it has none yet (reported). */
  async #ensureSocket(
    step: Step,
    family: AddressFamily = AF_INET,
    options: WskSocketOptions = { abortive: true },
  ): Promise<WskConnectionSocket | null> {
    const existing = this.#sockets.get(step.socket);
    if (existing) return this.#connection(step);
    const socket = await this.#run.socket(family, options, this.#dispatch);
    if (socket) this.#sockets.set(step.socket, socket);
    return socket;
  }

  /** A new listening socket for `step` (reported). */
  async #listenSocket(step: Step, family: AddressFamily): Promise<WskListenSocket | null> {
    const d = this.#run.npi.Dispatch;
    const made = await this.#run.call(
      "WskSocket",
      (c) => c.listenSocket ?? null,
      () =>
        d.WskSocket(
          this.#run.npi.Client,
          family,
          SOCK_STREAM,
          IPPROTO_TCP,
          WSK_FLAG_LISTEN_SOCKET,
          undefined,
          null,
          this.#irp(step),
        ),
    );
    if (made.listenSocket) this.#sockets.set(step.socket, made.listenSocket);
    return made.listenSocket ?? null;
  }

  /** WskBind of `socket` to `endpoint`: the step's own call, judged. */
  async #bind(step: Step, socket: AnySocket, endpoint: Endpoint): Promise<Outcome> {
    const local = await this.#run.resolve(endpoint, socket.family);
    if (local === null) return "failure";
    return await this.#bindAt(step, socket, local);
  }

  /** WskBind of `socket` to the address `local`: the step's own call, judged. */
  async #bindAt(step: Step, socket: AnySocket, local: SockAddr): Promise<Outcome> {
    return (await this.#main(
      step,
      "WskBind",
      socket,
      () =>
        socket instanceof WskListenSocket
          ? socket.Dispatch.WskBind(socket, local, 0, this.#irp(step))
          : socket.Dispatch.WskBind(socket, local, 0, this.#irp(step)),
    )).outcome;
  }

  async #bindIfNeeded(step: Step, socket: WskConnectionSocket, local: SockAddr): Promise<boolean> {
    if (socket.state !== "INIT") return true;
    const d = socket.Dispatch;
    const bound = await this.#run.call(
      "WskBind",
      socket,
      () => d.WskBind(socket, local, 0, this.#irp(step)),
    );
    return NT_SUCCESS(bound.status);
  }

  /**
   * Runs `steps` in order until one does not go on, then ends what is left open (gracefully
   * after a clean run, at once after a failure) and closes what {@linkcode prepare} opened.
   * `tag`: every line carries its step and script line (a script's lines do). `lenient`: a peer
   * that never sends its FIN at the end is shown but is no failure (a script's end is not a
   * step). `after`: judges each step that went on (a replay compares what was received so far);
   * "expectation" or "failure" stops the run there as a step's own outcome would.
   */
  async runSteps(
    steps: readonly Step[],
    tag: boolean,
    lenient: boolean,
    after?: (step: Step) => Outcome,
  ): Promise<Outcome> {
    const run = this.#run;
    let outcome: Outcome = "next";
    let at = 0;
    try {
      for (const step of steps) {
        at = step.line;
        if (tag) run.tags = { step: step.step, line: step.line };
        outcome = await this.step(step);
        if (outcome === "next" && after) outcome = after(step);
        if (outcome !== "next") break;
      }
    } catch (error) {
      if (!(error instanceof StepError)) {
        // A fault outside the calls (an input that failed to read): nothing ends gracefully.
        outcome = "failure";
        throw error;
      }
      run.reporter.note(tag ? `error: line ${at}: ${error.message}` : `error: ${error.message}`);
      outcome = "failure";
      run.reporter.fail();
    } finally {
      if (tag) run.tags = { step: "end", line: 0 };
      await this.cleanup(outcome === "next", lenient);
      if (tag) run.tags = null;
      await this.release();
    }
    return outcome;
  }

  /** Runs one step; returns how to go on. */
  async step(step: Step): Promise<Outcome> {
    const run = this.#run;
    switch (step.verb) {
      case "socket": {
        const d = run.npi.Dispatch;
        const { outcome, completion } = await this.#main(
          step,
          "WskSocket",
          (c) => c.socket ?? c.listenSocket ?? null,
          () =>
            d.WskSocket(
              run.npi.Client,
              step.family,
              1,
              6,
              step.listen ? 1 : 2,
              undefined,
              step.listen ? null : this.#dispatch,
              { ...this.#irp(step), abortive: true },
            ),
        );
        const made = completion.socket ?? completion.listenSocket;
        if (made) this.#sockets.set(step.socket, made);
        if (outcome !== "next" || !made || step.bind === undefined) return outcome;
        return await this.#bind(step, made, step.bind);
      }
      case "bind": {
        const existing = this.#sockets.get(step.socket);
        if (existing) return await this.#bind(step, existing, step.local);
        const local = await run.resolve(step.local, AF_INET);
        if (local === null) return "failure";
        const socket = step.listen
          ? await this.#listenSocket(step, local.family)
          : await this.#ensureSocket(step, local.family);
        if (!socket) return "failure";
        return await this.#bindAt(step, socket, local);
      }
      case "connect":
      case "connectex": {
        const first = step.verb === "connectex" ? step.data : null;
        const options: WskSocketOptions = {
          abortive: step.verb === "connectex" || step.abortive !== false,
          ...this.#tlsBacking(step),
        };
        if (step.retryUntil !== undefined) {
          // Fresh sockets until one connects or time is up: one line with calls=ATTEMPTS.
          if (this.#sockets.has(step.socket)) {
            throw new StepError(`--retry-until needs a new socket; "${step.socket}" exists`);
          }
          const made = await run.connectedRetrying(
            step.remote,
            step.bind,
            step.retryUntil,
            options,
            first,
            this.#dispatch,
            this.#irp(step),
          );
          if (!made) return "failure";
          this.#sockets.set(step.socket, made);
          return await this.#connected(step, made);
        }
        const remote = await run.resolve(step.remote);
        if (remote === null) return "failure";
        const socket = await this.#ensureSocket(step, remote.family, options);
        if (!socket) return "failure";
        const local = step.bind
          ? await run.resolve(step.bind, remote.family)
          : wildcard(remote.family);
        if (local === null || !(await this.#bindIfNeeded(step, socket, local))) return "failure";
        // The TLS library's set-up before the connect, as a TLS client sets up before it connects.
        if (step.tls) await socket.prepareTls();
        const d = socket.Dispatch;
        const { outcome, completion } = await this.#main(
          connectPart(step),
          first === null ? "WskConnect" : "WskConnectEx",
          socket,
          () =>
            first === null
              ? d.WskConnect(socket, remote, 0, this.#irp(step))
              : d.WskConnectEx(socket, remote, wskBuf(first), 0, this.#irp(step)),
          first === null ? { remote } : { remote, sentData: first },
        );
        // A connect that failed as expected (`--status`) has nothing to run TLS on.
        return outcome === "next" && NT_SUCCESS(completion.status)
          ? await this.#connected(step, socket)
          : outcome;
      }
      case "socketconnect": {
        const remote = await run.resolve(step.remote);
        if (remote === null) return "failure";
        const local = step.bind
          ? await run.resolve(step.bind, remote.family)
          : wildcard(remote.family);
        if (local === null) return "failure";
        if (step.ports) {
          const worst = await checkPorts(
            run,
            local,
            remote,
            step.ports,
            this.#irp(step),
            step.retryUntil,
          );
          return this.#judge(step, worst);
        }
        const { made, elapsedMs, attempts } = await socketConnect(
          run,
          local,
          remote,
          {
            ...this.#irp(step),
            ...this.#tlsBacking(step),
          } as WskIrp,
          step.retryUntil,
          this.#dispatch,
        );
        run.report(
          "WskSocketConnect",
          made.socket ?? { id: 0, localAddress: local, remoteAddress: remote },
          made,
          elapsedMs,
          { remote, ...(step.retryUntil === undefined ? {} : { calls: attempts }) },
          connectPart(step).status,
        );
        if (made.socket) this.#sockets.set(step.socket, made.socket);
        const judged = this.#judge(connectPart(step), made);
        return judged === "next" && made.socket ? await this.#connected(step, made.socket) : judged;
      }
      case "send":
        return await this.#traced(step, () => this.#send(step));
      case "receive":
        return await this.#traced(step, () => this.#receive(step));
      case "disconnect": {
        const socket = this.#connection(step);
        const buffer = step.data ? wskBuf(step.data) : null;
        const flags = step.abortive ? WSK_FLAG_ABORTIVE : 0;
        return (await this.#main(
          step,
          "WskDisconnect",
          socket,
          () => socket.Dispatch.WskDisconnect(socket, buffer, flags, this.#irp(step)),
          step.data ? { sentData: step.data } : {},
        )).outcome;
      }
      case "getlocaladdress":
      case "getremoteaddress": {
        const socket = this.#any(step);
        const local = step.verb === "getlocaladdress";
        const start = performance.now();
        const got = socket instanceof WskListenSocket
          ? await socket.Dispatch.WskGetLocalAddress(socket, this.#irp(step))
          : local
          ? await socket.Dispatch.WskGetLocalAddress(socket, this.#irp(step))
          : await socket.Dispatch.WskGetRemoteAddress(socket, this.#irp(step));
        run.report(
          local ? "WskGetLocalAddress" : "WskGetRemoteAddress",
          {
            id: socket.id,
            localAddress: local ? got.address ?? null : socket.localAddress,
            remoteAddress: socket instanceof WskListenSocket
              ? null
              : local
              ? socket.remoteAddress
              : got.address ?? null,
          },
          got,
          performance.now() - start,
          {},
          step.status,
        );
        return this.#judge(step, got);
      }
      case "controlsocket": {
        // Every option is set and read, even after one fails: each has its own line.
        const socket = this.#connection(step);
        const outcomes: Outcome[] = [];
        for (const setting of step.set) {
          const set = await run.setOption(socket, setting, this.#irp(step), step.status);
          outcomes.push(this.#judge(step, set));
        }
        for (const spec of step.get) {
          const got = await run.getOption(socket, spec, this.#irp(step), step.status);
          outcomes.push(this.#judge(step, got));
        }
        if (outcomes.includes("expectation")) return "expectation";
        if (!outcomes.includes("failure")) return "next";
        // A socket option the host lacks says nothing about the connection: it ends gracefully.
        this.#graceful.add(socket);
        return "failure";
      }
      case "closesocket": {
        const socket = this.#any(step);
        if (step.pendingReceive && !(socket instanceof WskListenSocket)) {
          this.#sockets.delete(step.socket);
          this.#flushUnread(socket);
          return await this.#closeUnderReceive(step, socket);
        }
        this.#sockets.delete(step.socket);
        this.#flushUnread(socket);
        return (await this.#main(
          step,
          "WskCloseSocket",
          socket,
          () =>
            socket instanceof WskListenSocket
              ? socket.Dispatch.WskCloseSocket(socket)
              : socket.Dispatch.WskCloseSocket(socket),
        )).outcome;
      }
      case "starttls": {
        const socket = this.#connection(step);
        return await this.#handshake(step, socket, step.tls, hostNames.get(socket));
      }
      case "accept": {
        const listener = this.#sockets.get(step.listener);
        if (!(listener instanceof WskListenSocket)) {
          throw new StepError(`socket "${step.listener}" is not a listening socket`);
        }
        const { outcome, completion } = await this.#main(
          step,
          "WskAccept",
          (c) => c.socket ?? listener,
          () =>
            listener.Dispatch.WskAccept(listener, 0, undefined, this.#dispatch, this.#irp(step)),
        );
        if (completion.socket) this.#sockets.set(step.socket, completion.socket);
        return outcome;
      }
    }
  }

  /**
   * After a step's connect: the host it named is kept (for a later starttls), and its `--tls`
   * handshake runs.
   */
  async #connected(
    step: Step & { remote: Endpoint; tls?: TlsStep },
    socket: WskConnectionSocket,
  ): Promise<Outcome> {
    const host = hostOf(step.remote);
    if (host !== undefined) hostNames.set(socket, host);
    if (!step.tls) return "next";
    return await this.#handshake(step, socket, step.tls, host);
  }

  /**
   * A TLS handshake on `socket` as a client: one TlsHandshake line, judged like the step's own
   * call (a `--status` names the SEC_E_ status it must fail with). The server name is the
   * step's `--servername`, else the host the connect named, else the peer's address.
   */
  async #handshake(
    step: Step,
    socket: WskConnectionSocket,
    tls: TlsStep,
    host: string | undefined,
  ): Promise<Outcome> {
    const servername = tls.servername ?? host ?? socket.remoteAddress?.address ?? "localhost";
    // Read by prepare, or by the command that sent the step to a session agent.
    const ca: string[] = [...tls.pems ?? []];
    for (const path of tls.pems ? [] : tls.ca) {
      let pem = this.#pems.get(path);
      if (pem === undefined) {
        try {
          pem = await readPem(path);
        } catch (error) {
          throw new StepError(error instanceof Error ? error.message : String(error));
        }
        this.#pems.set(path, pem);
      }
      ca.push(pem);
    }
    await socket.prepareTls();
    const { outcome } = await this.#main(
      step,
      "TlsHandshake",
      socket,
      () =>
        socket.startTls(
          { role: "client", servername, ca, ...(tls.alpn ? { alpn: tls.alpn } : {}) },
          this.#irp(step),
        ),
      {},
    );
    return outcome;
  }

  /**
   * A receive step. With no text to look for it is one loop of WskReceive calls until the peer's
   * FIN or `--bytes` (the shared pump, one line); `--drain` is one WSK_FLAG_DRAIN call;
   * `--verify-pattern` checks the pattern. With `--until`, `--expect` or `--expect-re` the step
   * keeps what it receives (at most 16 MiB) to look in it, stops as soon as its bound has
   * arrived, and keeps any bytes past that point for the next receive. Then `--status` is
   * judged, and the expectations when the status is the expected one.
   */
  /**
   * The backing of a connect whose socket runs TLS: node, whose node:tls tells the protocol
   * version (Deno.startTls does not); but a `receive` command's socket (`fastTls`, never reset)
   * keeps the deno backing it takes without TLS: Deno.startTls reads a bulk stream about twice
   * as fast as node:tls (docs/tls.md).
   */
  #tlsBacking(
    step: { readonly tls?: unknown; readonly socket: string; readonly fastTls?: boolean },
  ): { backing?: "node" } {
    const tls = step.tls !== undefined || this.#upgraded.has(step.socket);
    return tls && step.fastTls !== true ? { backing: "node" } : {};
  }

  /** Runs a send or receive step with its `--hex` trace on, if asked for. */
  async #traced(step: Step & { hex: boolean }, body: () => Promise<Outcome>): Promise<Outcome> {
    const run = this.#run;
    const before = run.hex;
    if (step.hex) run.hex = new HexTrace((line) => run.reporter.note(line));
    try {
      return await body();
    } finally {
      run.hex = before;
    }
  }

  /**
   * Whether received payload travels in WskReceive records on stdout: a command line with
   * `--json` and no `--output` (stdout then carries only JSON Lines).
   */
  #inRecords(step: Step): boolean {
    if (!this.#commandLine || this.#io?.json !== true) return false;
    if (step.verb === "send") return step.receive;
    // A check (--verify-pattern, --until, --expect…) or --drain writes the data nowhere.
    return step.verb === "receive" && step.output === undefined && !step.drain &&
      step.verifyPattern === undefined && step.until === undefined &&
      step.expect === undefined && step.expectRe === undefined;
  }

  /**
   * Where a step's payload goes: a file opened by prepare, standard output, per-chunk records,
   * or nowhere (the line shows it).
   */
  #payloadSink(
    step: Step & { verb: "receive" },
    socket: WskConnectionSocket,
  ): ((bytes: Uint8Array, elapsedMs: number) => Promise<void>) | null {
    const file = this.#opened.get(step)?.output;
    if (file) return (bytes) => file.write(bytes);
    if (this.#inRecords(step)) return payloadRecords(this.#run, socket);
    if (step.output !== "-") return null;
    const io = this.#needIO();
    io.payloadOnStdout();
    return (bytes) => io.stdout(bytes);
  }

  /**
   * A closesocket with a WskReceive pending: the receive is posted, the socket closed under
   * it; the receive completes with STATUS_CANCELLED, as expected (data that beat the close is
   * shown instead of lost).
   */
  async #closeUnderReceive(
    step: Step,
    socket: WskConnectionSocket,
  ): Promise<Outcome> {
    const run = this.#run;
    const d = socket.Dispatch;
    const buffer = new Uint8Array(RECEIVE_BUFFER);
    const start = performance.now();
    const pending = d.WskReceive(socket, wskBuf(buffer), 0, this.#irp(step));
    const described = {
      id: socket.id,
      localAddress: socket.localAddress,
      remoteAddress: socket.remoteAddress,
    };
    const closed = await this.#main(step, "WskCloseSocket", socket, () => d.WskCloseSocket(socket));
    const received = await pending;
    run.report("WskReceive", described, received, performance.now() - start, {
      data: buffer.subarray(0, received.information),
    }, STATUS_CANCELLED);
    return closed.outcome;
  }

  /** A send step: data, a file or standard input, or the pattern; `--receive` is full duplex. */
  async #send(step: Step & { verb: "send" }): Promise<Outcome> {
    const run = this.#run;
    const socket = this.#connection(step);
    const flags = step.nodelay ? WSK_FLAG_NODELAY : 0;
    const opened = this.#opened.get(step)?.input;
    const input = opened && stoppable(opened, run.signal);
    try {
      if (step.receive) return await this.#sendDuplex(step, socket, flags, input);
      return await this.#sendSimplex(step, socket, flags, input);
    } finally {
      input?.dispose();
    }
  }

  /** A send step without `--receive`. */
  async #sendSimplex(
    step: Step & { verb: "send" },
    socket: WskConnectionSocket,
    flags: number,
    input: Stoppable | undefined,
  ): Promise<Outcome> {
    const run = this.#run;
    const json = this.#io?.json ?? true;
    // While the step sends, what the peer sends back is read ahead (up to READ_AHEAD_MAX)
    // for the next receive: a peer that echoes is never blocked by nobody reading.
    const ahead = !this.#commandLine && (socket.state === "ESTAB" || socket.state === "LFIN")
      ? new ReadAhead(run, socket)
      : null;
    try {
      if (step.pattern !== undefined) {
        const progress = await Progress.for("sent", step.pattern, step.progress, json);
        return this.#judge(
          step,
          await sendPattern(run, socket, step.pattern, flags, progress, step.timeout, step.status),
        );
      }
      if (input) {
        const progress = await Progress.for("sent", input.size, step.progress, json);
        return this.#judge(step, await sendStream(run, socket, input.source, flags, progress));
      }
      const data = step.data!;
      const sent = await this.#main(
        step,
        "WskSend",
        socket,
        () => socket.Dispatch.WskSend(socket, wskBuf(data), flags, this.#irp(step)),
        { sentData: data },
      );
      run.hex?.dump(">", socket.id, data.subarray(0, sent.completion.information));
      return sent.outcome;
    } finally {
      const read = await ahead?.stop();
      if (read && read.length > 0) this.#keep(socket, read);
    }
  }

  /**
   * `send --receive`: what the peer sends is written to standard output from the start while
   * the input is sent; then our FIN, and the rest until the peer's FIN; then the socket is
   * closed. A failure on the receiving side stops the input.
   */
  async #sendDuplex(
    step: Step & { verb: "send" },
    socket: WskConnectionSocket,
    flags: number,
    input: Stoppable | undefined,
  ): Promise<Outcome> {
    const run = this.#run;
    const io = this.#needIO();
    const records = this.#inRecords(step);
    if (!records) io.payloadOnStdout();
    const write = records ? payloadRecords(run, socket) : (bytes: Uint8Array) => io.stdout(bytes);
    const source = input?.source ?? null;
    const stopInput = () => input?.stop();
    const carried = this.#carry.get(socket);
    this.#carry.delete(socket);
    if (carried) await write(carried, 0);
    const reader = new DuplexReceive(run, socket, write, {
      failure: stopInput,
      close: () => run.close(socket),
    });
    const json = io.json;
    let sent: WskCompletion;
    try {
      if (step.data !== undefined) {
        sent = await this.#run.call(
          "WskSend",
          socket,
          () => socket.Dispatch.WskSend(socket, wskBuf(step.data!), flags, this.#irp(step)),
          { sentData: step.data },
          step.status,
        );
        run.hex?.dump(">", socket.id, step.data.subarray(0, sent.information));
      } else if (step.pattern !== undefined) {
        const progress = await Progress.for("sent", step.pattern, step.progress, json);
        sent = await sendPattern(run, socket, step.pattern, flags, progress);
      } else {
        const progress = await Progress.for("sent", input!.size, step.progress, json);
        sent = await sendStream(run, socket, source!, flags, progress);
      }
    } catch (error) {
      // The input failed part-way (a read error): abort, so the peer never sees a FIN for a
      // cut stream and the open connection does not keep the process alive.
      await run.close(socket);
      await reader.end();
      throw error;
    }
    const open = socket.state === "ESTAB" || socket.state === "RFIN";
    let finished = false;
    if (NT_SUCCESS(sent.status) && open) {
      const d = socket.Dispatch;
      const fin = await run.call(
        "WskDisconnect",
        socket,
        () => d.WskDisconnect(socket, null, 0, this.#irp(step)),
      );
      finished = NT_SUCCESS(fin.status);
    }
    // Without our FIN (a failed send) there is nothing to wait for: closing aborts the
    // connection and ends the pending receive.
    await reader.finish(
      finished || socket.state === "LFIN",
      step.timeout ?? run.timeout,
      () => run.close(socket),
    );
    await run.close(socket);
    this.#sockets.delete(step.socket);
    return this.#judge(step, sent);
  }

  async #receive(step: Step & { verb: "receive" }): Promise<Outcome> {
    const run = this.#run;
    const socket = this.#connection(step);
    if (step.drain) {
      this.#flushUnread(socket);
      return this.#judge(step, await run.drain(socket, this.#irp(step), step.status));
    }
    const timeout = step.timeout ?? run.timeout;
    // Bytes taken earlier (read ahead during a send step, or past an earlier match) come first.
    const carried = this.#carry.get(socket);
    this.#carry.delete(socket);
    const common = {
      timeout,
      ...(carried ? { carried } : {}),
      ...(step.status === undefined ? {} : { expected: step.status }),
    };
    const sink = this.#payloadSink(step, socket);
    const json = this.#io?.json ?? true;
    if (step.verifyPattern !== undefined) {
      const size = step.verifyPattern === true ? undefined : step.verifyPattern;
      const got = await pump(run, socket, {
        ...common,
        verify: new PatternVerifier(size),
        idle: true,
        ...(size === undefined || this.#commandLine ? {} : { limit: size }),
        ...(sink ? { sink } : {}),
        progress: await Progress.for("received", size ?? null, step.progress, json),
      });
      this.#kept(step, got);
      // A stream that ended short has had its FIN: the connection still ends gracefully.
      if (got.status === STATUS_DATA_ERROR && socket.state === "RFIN") this.#graceful.add(socket);
      return this.#judge(step, got.completion);
    }
    if (!step.until && !step.expect && !step.expectRe) {
      // Nothing to look for: stream it (no buffering) to its destination, or show what came
      // in the line.
      const got = await pump(run, socket, {
        ...common,
        ...(sink ? { sink, idle: true } : { show: true }),
        waitAll: step.waitAll,
        ...(step.bytes === undefined ? {} : { limit: step.bytes }),
        progress: await Progress.for("received", step.bytes ?? null, step.progress, json),
      });
      this.#kept(step, got);
      return this.#judge(step, got.completion);
    }
    return await this.#receiveMatching(step, socket, timeout, carried);
  }

  /** Notes whether a step's output got data and every write went through (it is kept). */
  #kept(step: Step, got: PumpResult): void {
    const opened = this.#opened.get(step);
    if (opened) opened.keep = got.delivered > 0 && !got.writeFailed;
  }

  async #receiveMatching(
    step: Step & { verb: "receive" },
    socket: WskConnectionSocket,
    timeout: number,
    carried: Uint8Array | undefined,
  ): Promise<Outcome> {
    const run = this.#run;
    const stopText = step.until ?? (step.bytes === undefined ? step.expect : undefined);
    const stopRe = step.bytes === undefined && !step.until && !step.expect
      ? step.expectRe
      : undefined;
    const decoder = new TextDecoder();
    let searched = 0;
    /** Where the data this step takes ends (the rest is carried to the next receive). */
    const match = (received: Received): number | null => {
      if (step.bytes !== undefined && received.length >= step.bytes) return step.bytes;
      if (stopText) {
        // Only the new bytes (and the overlap a match could straddle) need looking at.
        const from = Math.max(0, searched - stopText.length + 1);
        searched = received.length;
        const at = indexOfBytes(received.bytes, stopText, from);
        if (at >= 0) return at + stopText.length;
      }
      if (stopRe && stopRe.test(decoder.decode(received.bytes))) return received.length;
      return null;
    };
    // Running out of time while waiting for the expected text fails the expectation (exit 3);
    // any other failure (a reset, say) is the call's own (exit 1).
    const timedOut = (got: PumpResult) =>
      got.status === STATUS_IO_TIMEOUT &&
      (step.expect !== undefined || step.expectRe !== undefined) && step.until === undefined &&
      step.bytes === undefined;
    const got = await pump(run, socket, {
      timeout,
      ...(carried ? { carried } : {}),
      match,
      matchMax: MAX_MATCH,
      bufferSize: 64 * 1024,
      waitAll: step.waitAll,
      ...(step.bytes === undefined ? {} : { limit: step.bytes }),
      expected: (result) => step.status ?? (timedOut(result) ? result.status : undefined),
    });
    if (got.rest) this.#carry.set(socket, got.rest);
    const taken = got.taken!;
    if (step.status !== undefined) {
      const judged = this.#judge(step, got.completion);
      return judged === "next" ? this.#expectations(step, taken) : judged;
    }
    if (!NT_SUCCESS(got.status) && !timedOut(got)) return "failure";
    return this.#expectations(step, taken);
  }

  #expectations(step: Step & { verb: "receive" }, data: Uint8Array): Outcome {
    const checks: { expected: string; passed: boolean }[] = [];
    if (step.expect) {
      checks.push({
        expected: new TextDecoder().decode(step.expect),
        passed: indexOfBytes(data, step.expect) >= 0,
      });
    }
    if (step.expectRe) {
      checks.push({
        expected: `/${step.expectRe.source}/`,
        passed: step.expectRe.test(new TextDecoder().decode(data)),
      });
    }
    let outcome: Outcome = "next";
    for (const check of checks) {
      this.#run.reporter.expectation({
        passed: check.passed,
        step: step.step,
        line: step.line,
        verb: step.verb,
        expected: check.expected,
        ...(check.passed ? {} : { actual: excerpt(data) }),
      });
      if (!check.passed) outcome = "expectation";
    }
    return outcome;
  }

  /**
   * Ends what the script left open. After a clean run, connections end gracefully (FIN, drain
   * until the peer's FIN, close); after a stop, they are closed at once.
   */
  async cleanup(clean: boolean, lenient = true): Promise<void> {
    for (const [name, socket] of this.#sockets) {
      this.#sockets.delete(name);
      this.#flushUnread(socket);
      if (socket.state === "CLOSED") continue;
      const graceful = clean || this.#graceful.delete(socket);
      if (graceful && !(socket instanceof WskListenSocket) && socket.state !== "INIT") {
        // In a script this is not a step: a peer that never sends its FIN is shown, but does not
        // fail it (`lenient`). A command line's own graceful close is its last call.
        await this.#run.finish(socket, lenient ? STATUS_IO_TIMEOUT : undefined);
      } else await this.#run.close(socket);
    }
  }
}

/** A step that cannot run as written (found while running, e.g. a socket of the wrong kind). */
export class StepError extends Error {
  override name = "StepError";
}

/** The received data as a short excerpt for an expectation line (the line quotes it). */
function excerpt(data: Uint8Array): string {
  const limit = 120;
  const text = new TextDecoder().decode(data.subarray(0, limit));
  return data.length > limit ? `${text}...(+${data.length - limit} bytes)` : text;
}

/**
 * Opens what a send step reads: standard input (no file, or `-`), or a file, whose size is
 * known. Throws UsageError for a file that cannot be read.
 */
async function openInput(
  file: string | undefined,
  io: StepIO | null,
): Promise<{ source: ByteSource; size: number | null }> {
  if (file === undefined || file === "-") {
    if (io === null) throw new UsageError("Cannot read standard input here");
    return { source: io.stdin(), size: null };
  }
  try {
    const opened = await Deno.open(file, { read: true });
    const info = await opened.stat();
    if (info.isDirectory) {
      opened.close();
      throw new Error("it is a directory");
    }
    return { source: opened, size: info.isFile ? info.size : null };
  } catch (error) {
    throw new UsageError(
      `Cannot read file "${file}": ${error instanceof Error ? error.message : error}`,
    );
  }
}

/** An input that Ctrl-C or SIGTERM can end while a read on it is pending. */
interface Stoppable {
  /** Reads as the input does; a read failing because the input was stopped is its end. */
  readonly source: ByteSource;
  readonly size: number | null;
  /** Ends the input now (a pending read ends). */
  stop(): void;
  /** Stops listening to the signal. */
  dispose(): void;
}

/**
 * Wraps an input so that `signal` ends it: an open terminal or pipe would otherwise hold the
 * process in its pending read until the input ends.
 */
function stoppable(
  input: { source: ByteSource; size: number | null },
  signal: AbortSignal,
): Stoppable {
  let stopped = false;
  const stop = () => {
    stopped = true;
    closeQuietly(input.source);
  };
  signal.addEventListener("abort", stop, { once: true });
  return {
    source: {
      read: (into) =>
        input.source.read(into).catch((error) => stopped ? null : Promise.reject(error)),
      close: () => input.source.close(),
    },
    size: input.size,
    stop,
    dispose: () => signal.removeEventListener("abort", stop),
  };
}

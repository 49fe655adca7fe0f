/**
 * `wsk accept`: a listening socket that serves connections in one of several modes, for real
 * servers in a test: a count or `--keep-open`, allow and deny lists, WskAccept IRPs or the
 * WskAcceptEvent/WskReceiveEvent callbacks, and one summary line per connection.
 *
 * @module
 */

import { parseName, type VerbDecl } from "../steps/verb.ts";
import { InvalidArgumentError } from "@commander-js/extra-typings";
import { Option } from "@commander-js/extra-typings";
import {
  AF_INET,
  canResetDenoConnections,
  NPI_WSK_INTERFACE_ID,
  NT_SUCCESS,
  type NTSTATUS,
  SO_WSK_EVENT_CALLBACK,
  type SockAddr,
  SOL_SOCKET,
  STATUS_CANCELLED,
  STATUS_CONNECTION_RESET,
  STATUS_DATA_ERROR,
  STATUS_INSUFFICIENT_RESOURCES,
  STATUS_IO_TIMEOUT,
  STATUS_PENDING,
  STATUS_REQUEST_NOT_ACCEPTED,
  STATUS_SUCCESS,
  WSK_EVENT_ACCEPT,
  WSK_EVENT_DISABLE,
  WSK_EVENT_DISCONNECT,
  WSK_EVENT_RECEIVE,
  WSK_FLAG_ABORTIVE,
  wskBuf,
  type WskClientConnectionDispatch,
  type WskClientListenDispatch,
  type WskCompletion,
  type WskConnectionSocket,
  type WskDataIndication,
  type WskListenSocket,
  WskSetOption,
} from "../provider/mod.ts";
import type { CliContext } from "../cli/command.ts";
import { runAction, wskCommand } from "../cli/command.ts";
import { collect, parseCount, parseData, parseLocal, parseSize } from "../syntax/values.ts";
import { type CidrRule, parseCidr, refusalOf } from "../engine/cidr.ts";
import { PatternVerifier } from "../engine/pattern.ts";
import { pump, writeFailure } from "../engine/pump.ts";
import { echoLoop } from "../engine/echo.ts";
import { payloadRecords } from "../engine/output.ts";
import { Run } from "../engine/context.ts";
import { UsageError } from "../syntax/usage.ts";

/** What `accept` does with each connection. */
export type AcceptMode = "echo" | "discard" | "print" | "reply" | "verify";

/**
 * How a connection ended, as its summary line says: `graceful` (FIN both ways), `reset` (the
 * peer reset it), `timeout` (no data or FIN within --timeout), `local-close` (wsk closed or reset
 * it: a failed verification, a refused peer, a failed call, or the server was stopped).
 */
export type ConnectionEnd = "graceful" | "reset" | "timeout" | "local-close";

// ---------------------------------------------------------------------------------------------
// One connection's bookkeeping and its summary line

/** How a failure status ended a connection. */
function endOf(status: NTSTATUS): ConnectionEnd {
  if (status === STATUS_CONNECTION_RESET) return "reset";
  if (status === STATUS_IO_TIMEOUT) return "timeout";
  return "local-close";
}

/** What a connection's calls complete with once the server was stopped. */
function stoppedCompletion(): WskCompletion {
  return { status: STATUS_CANCELLED, information: 0, message: "The server was stopped" };
}

/** One served connection: its socket, when it started, its first failure, the bytes dropped. */
class Connection {
  readonly socket: WskConnectionSocket;
  readonly start: number = performance.now();
  #failure: { completion: WskCompletion; end: ConnectionEnd; expected?: NTSTATUS } | null = null;
  #dropped = 0;
  #abandoned = false;

  constructor(socket: WskConnectionSocket) {
    this.socket = socket;
  }

  /** Records a failure; the first one decides the summary. */
  fail(completion: WskCompletion, end: ConnectionEnd = endOf(completion.status)): void {
    this.#failure ??= { completion, end };
  }

  /** Records a failure the run sets out to produce (a refused peer, a stopped server). */
  failExpected(completion: WskCompletion, end: ConnectionEnd): void {
    this.#failure ??= { completion, end, expected: completion.status };
  }

  get failed(): boolean {
    return this.#failure !== null;
  }

  /** Received bytes that were not printed (the server stopped, or standard output stalled). */
  get dropped(): number {
    return this.#dropped;
  }

  /**
   * Counts received bytes that are dropped rather than printed. `abandoned`: they were in a
   * write that was given up on, which may have put part of them out before it blocked.
   */
  drop(bytes: number, abandoned = false): void {
    this.#dropped += bytes;
    this.#abandoned ||= abandoned;
  }

  /** The summary line: status, bytes both ways, duration and how the connection ended. */
  summarize(run: Run, expected?: NTSTATUS): void {
    const received = this.socket.bytesReceived;
    const sent = this.socket.bytesSent;
    const failure = this.#failure;
    const end = failure?.end ?? "graceful";
    const completion = failure?.completion ?? { status: STATUS_SUCCESS, information: 0 };
    const dropped = this.#dropped > 0
      ? `${this.#abandoned ? "up to " : ""}${this.#dropped} received bytes were dropped: ` +
        "standard output had not taken them"
      : undefined;
    const message = [completion.message, dropped].filter((part) => part !== undefined).join("; ");
    run.report(
      "Summary",
      this.socket,
      { ...completion, information: received + sent, ...(message === "" ? {} : { message }) },
      performance.now() - this.start,
      { information: received + sent, value: end, received, sent },
      failure?.expected ?? expected,
    );
  }
}

/** Everything a connection handler needs: the run, the options, and the stop signal. */
interface Server {
  readonly run: Run;
  readonly ctx: CliContext;
  readonly mode: AcceptMode;
  readonly reply: Uint8Array;
  readonly verifyBytes: number | undefined;
  readonly keepOpen: boolean;
  /** Aborted by SIGINT or SIGTERM. */
  readonly stop: AbortSignal;
}

/** STATUS_CANCELLED is what a --keep-open server expects once it is told to stop. */
function cancelExpected(server: Server): NTSTATUS | undefined {
  return server.keepOpen && server.stop.aborted ? STATUS_CANCELLED : undefined;
}

/** The live connection states in which WskCloseSocket would abort (RST where it can). */
function isOpen(socket: WskConnectionSocket): boolean {
  return socket.state === "ESTAB" || socket.state === "LFIN" || socket.state === "RFIN";
}

// ---------------------------------------------------------------------------------------------
// WskAccept (IRP) handlers

/**
 * How a payload write ended: `written`, or abandoned because the server was `stopped` or
 * standard output took nothing for `ms` (`stalled`). Rejects with the write's own error.
 */
function raceWrite(
  writing: Promise<void>,
  stop: AbortSignal,
  ms: number,
): Promise<"written" | "stopped" | "stalled"> {
  return new Promise((resolve, reject) => {
    const settle = (outcome: "written" | "stopped" | "stalled") => {
      clearTimeout(timer);
      stop.removeEventListener("abort", onStop);
      resolve(outcome);
    };
    const onStop = () => settle("stopped");
    const timer = setTimeout(() => settle("stalled"), ms);
    stop.addEventListener("abort", onStop, { once: true });
    // A write that fails after it was abandoned changes nothing (this promise is settled): its
    // bytes were already counted as dropped.
    writing.then(() => settle("written"), (error) => {
      clearTimeout(timer);
      stop.removeEventListener("abort", onStop);
      reject(error);
    });
  });
}

/** Each connection's payload records with --json (numbered per connection). */
const payloadSinks = new WeakMap<Connection, (bytes: Uint8Array, ms: number) => Promise<void>>();

/** The payload-record sink of `connection` (--mode print --json), made on first use. */
function recordsOf(server: Server, connection: Connection, call: string) {
  let sink = payloadSinks.get(connection);
  if (sink === undefined) {
    sink = payloadRecords(server.run, connection.socket, call);
    payloadSinks.set(connection, sink);
  }
  return sink;
}

/**
 * Writes received payload to standard output (--mode print): raw, or with --json in WskReceive
 * (WskReceiveEvent) records, one per chunk, so stdout stays JSON Lines. The write races the server's stop
 * and --timeout: once the server was stopped, or when standard output took nothing for that
 * long, the write is abandoned and this chunk and every later one of the connection are dropped,
 * counted in its Summary, and the connection fails (STATUS_CANCELLED, or STATUS_IO_TIMEOUT for
 * a stall). A write blocked in the kernel cannot be called off; it ends when the reader reads or
 * goes away, and until then it keeps the process (a second SIGINT or SIGTERM ends it).
 * Returns false when the bytes were dropped; throws what the write threw (standard output was
 * closed, a disk is full), which ends this connection with the write's status (the receive
 * loop's line and the Summary say it) and never the server.
 */
async function printPayload(
  server: Server,
  connection: Connection,
  bytes: Uint8Array,
  call = "WskReceive",
  elapsedMs = 0,
): Promise<boolean> {
  let abandoned = false;
  if (connection.dropped === 0 && !server.stop.aborted) {
    const { run } = server;
    const outcome = await raceWrite(
      run.reporter.json
        ? recordsOf(server, connection, call)(bytes, elapsedMs)
        : server.ctx.writePayload(bytes),
      server.stop,
      run.timeout,
    );
    if (outcome === "written") return true;
    abandoned = true;
    if (outcome === "stalled") {
      connection.fail({
        status: STATUS_IO_TIMEOUT,
        information: 0,
        message: `Standard output took no data for ${run.timeout} ms`,
      }, "timeout");
    }
  }
  if (server.stop.aborted) connection.fail(stoppedCompletion(), "local-close");
  connection.drop(bytes.length, abandoned);
  return false;
}

/**
 * Receives until the peer's FIN through the shared pump, handing each chunk to `sink` (if any;
 * false from it ends the loop; a write error it throws ends the connection with the write's
 * status), as one WskReceive line with `calls`. Each call is bounded by --timeout (an idle
 * timeout). With a `verifier`, the first mismatch stops the loop and the line (and the
 * connection) gets STATUS_DATA_ERROR with the verifier's message, as `receive --verify-pattern`
 * reports it. Returns true when the FIN was reached and no mismatch was found.
 */
async function receiveToFin(
  server: Server,
  connection: Connection,
  options: {
    sink?: (bytes: Uint8Array, elapsedMs: number) => Promise<boolean>;
    show?: boolean;
    verifier?: PatternVerifier;
  } = {},
): Promise<boolean> {
  const { sink, show = false, verifier } = options;
  const got = await pump(server.run, connection.socket, {
    idle: true,
    show,
    ...(sink ? { sink } : {}),
    ...(verifier ? { verify: verifier } : {}),
    expected: () => cancelExpected(server),
  });
  if (got.status === STATUS_DATA_ERROR) connection.fail(got.completion, "local-close");
  else if (!NT_SUCCESS(got.status)) connection.fail(got.completion);
  return got.fin && NT_SUCCESS(got.status);
}

/** One reported call on a served connection; a failure is recorded on the connection. */
async function connectionCall(
  server: Server,
  connection: Connection,
  call: string,
  issue: () => Promise<WskCompletion>,
  extra: { value?: string } = {},
): Promise<WskCompletion> {
  // STATUS_CANCELLED comes only from the run's signal, that is once the server was stopped, which
  // a --keep-open server expects; so the expected status can be named before the call.
  const expected = server.keepOpen ? STATUS_CANCELLED : undefined;
  const completion = await server.run.call(call, connection.socket, issue, extra, expected);
  if (!NT_SUCCESS(completion.status)) connection.fail(completion);
  return completion;
}

/**
 * Ends a connection without losing data: a graceful WskDisconnect, then (if the peer has not
 * finished) receiving until its FIN, shown in the WskReceive line.
 *
 * Not `Run.finish`: besides waiting for the FIN with an idle timeout per receive (a slow peer
 * still finishing is not cut off) rather than one deadline for the whole drain, this records a
 * failure on the connection for its Summary, expects STATUS_CANCELLED once a --keep-open server
 * is stopped, and leaves WskCloseSocket to the caller.
 */
async function disconnectGracefully(server: Server, connection: Connection): Promise<void> {
  const socket = connection.socket;
  const d = socket.Dispatch;
  if (socket.state === "ESTAB" || socket.state === "RFIN") {
    const done = await connectionCall(
      server,
      connection,
      "WskDisconnect",
      () => d.WskDisconnect(socket, null, 0, server.run.irp()),
    );
    if (!NT_SUCCESS(done.status)) return;
  }
  if (socket.state === "LFIN") await receiveToFin(server, connection, { show: true });
}

/**
 * Aborts a live connection (WSK_FLAG_ABORTIVE): an RST where the backing can send one, else a
 * close that the line reports as `peer_saw=FIN`. WskCloseSocket follows.
 */
async function disconnectAbortively(server: Server, connection: Connection): Promise<void> {
  const socket = connection.socket;
  if (!isOpen(socket)) return;
  const d = socket.Dispatch;
  await connectionCall(
    server,
    connection,
    "WskDisconnect",
    () => d.WskDisconnect(socket, null, WSK_FLAG_ABORTIVE, server.run.irp()),
    { value: "abortive" },
  );
}

/** Serves one connection accepted by WskAccept, in the server's mode. */
async function serveIrp(server: Server, connection: Connection): Promise<void> {
  const { run } = server;
  const socket = connection.socket;
  switch (server.mode) {
    case "echo": {
      const failed = await echoLoop(run, socket, () => cancelExpected(server));
      if (failed !== null) connection.fail(failed);
      else await disconnectGracefully(server, connection);
      break;
    }
    case "reply": {
      const sent = await connectionCall(
        server,
        connection,
        "WskSend",
        () => socket.Dispatch.WskSend(socket, wskBuf(server.reply), 0, run.irp()),
      );
      if (NT_SUCCESS(sent.status)) await disconnectGracefully(server, connection);
      break;
    }
    case "discard":
    case "print": {
      const sink = server.mode === "print"
        ? (bytes: Uint8Array, ms: number) =>
          printPayload(server, connection, bytes, "WskReceive", ms)
        : undefined;
      const fin = await receiveToFin(server, connection, sink ? { sink } : {});
      if (fin) await disconnectGracefully(server, connection);
      break;
    }
    case "verify": {
      const verifier = new PatternVerifier(server.verifyBytes);
      const verified = await receiveToFin(server, connection, { verifier });
      if (verified) await disconnectGracefully(server, connection);
      else if (verifier.mismatch !== null) await disconnectAbortively(server, connection);
      break;
    }
  }
  await run.close(socket);
}

/** A refused peer: reset (where the backing can) and close, reported as not accepted. */
async function refuseIrp(server: Server, connection: Connection, reason: string): Promise<void> {
  await disconnectAbortively(server, connection);
  await server.run.close(connection.socket);
  connection.failExpected(
    { status: STATUS_REQUEST_NOT_ACCEPTED, information: 0, message: reason },
    "local-close",
  );
  connection.summarize(server.run);
}

// ---------------------------------------------------------------------------------------------
// WskAcceptEvent / WskReceiveEvent handlers

/** The byte ranges of an indication list, in order. */
function indicationParts(list: WskDataIndication | null): Uint8Array[] {
  const parts: Uint8Array[] = [];
  for (let item = list; item !== null; item = item.Next) {
    const { Mdl, Offset, Length } = item.Buffer;
    if (Mdl && Length > 0) parts.push(Mdl.bytes.subarray(Offset, Offset + Length));
  }
  return parts;
}

/** Totals for one aggregated line. */
interface Tally {
  calls: number;
  bytes: number;
  failure: WskCompletion | null;
}

function tally(): Tally {
  return { calls: 0, bytes: 0, failure: null };
}

/**
 * Why an event connection's stream ended: the peer's FIN or reset, a failed verification, the
 * printed payload was dropped (the server stopped, or standard output stalled), or a print
 * failed (`fault`).
 */
type StreamEnd = "fin" | "reset" | "mismatch" | "dropped" | "fault";

/**
 * A connection served through callbacks: WskReceiveEvent indicates data (kept with
 * STATUS_PENDING while an echo or a print still uses it, then returned with WskRelease) and
 * WskDisconnectEvent the peer's FIN or reset. No IRP bounds an event, so a timer stands in for
 * --timeout: no indication or FIN within it ends the connection.
 */
class EventConnection {
  readonly connection: Connection;
  readonly dispatch: WskClientConnectionDispatch;
  readonly #server: Server;
  readonly #verifier: PatternVerifier | null;
  readonly #indications = tally();
  readonly #sends = tally();
  readonly #releases = tally();
  /** Echoes and prints in progress; each leaves the set when it settles. */
  readonly #work = new Set<Promise<void>>();
  #printChain: Promise<void> = Promise.resolve();
  /** The first write error a print met (standard output was closed, a disk is full). */
  #fault: WskCompletion | null = null;
  #ended!: (why: StreamEnd) => void;
  readonly #endedPromise: Promise<StreamEnd>;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #idle!: () => void;
  readonly #idlePromise: Promise<"timeout">;
  /** Set once the end was decided: later indications are taken without a new deadline. */
  #decided = false;

  constructor(server: Server, socket: WskConnectionSocket) {
    this.#server = server;
    this.connection = new Connection(socket);
    this.#verifier = server.mode === "verify" ? new PatternVerifier(server.verifyBytes) : null;
    this.#endedPromise = new Promise((resolve) => this.#ended = resolve);
    this.#idlePromise = new Promise((resolve) => this.#idle = () => resolve("timeout"));
    this.dispatch = {
      WskReceiveEvent: (_context, _flags, list, indicated) => this.#onReceive(list, indicated),
      WskDisconnectEvent: (_context, flags) => {
        this.#ended((flags & WSK_FLAG_ABORTIVE) !== 0 ? "reset" : "fin");
        return STATUS_SUCCESS;
      },
    };
    this.#arm();
  }

  #arm(): void {
    clearTimeout(this.#timer);
    if (this.#decided) return;
    this.#timer = setTimeout(() => this.#idle(), this.#server.run.timeout);
  }

  #onReceive(list: WskDataIndication | null, indicated: number): NTSTATUS {
    // After the end was decided (a timeout, a stop, a mismatch) the connection is being closed:
    // what still arrives is taken and dropped (and counted when it was to be printed).
    if (list === null) return STATUS_SUCCESS;
    if (this.#decided) {
      if (this.#server.mode === "print") this.connection.drop(indicated);
      return STATUS_SUCCESS;
    }
    this.#arm();
    this.#indications.calls++;
    this.#indications.bytes += indicated;
    const parts = indicationParts(list);
    switch (this.#server.mode) {
      case "verify": {
        const verifier = this.#verifier!;
        for (const part of parts) verifier.push(part);
        if (verifier.mismatch !== null) this.#ended("mismatch");
        return STATUS_SUCCESS;
      }
      case "echo":
        this.#track(this.#echo(list, parts));
        return STATUS_PENDING;
      case "print":
        this.#printChain = this.#printChain.then(() => this.#print(list, parts));
        this.#track(this.#printChain);
        return STATUS_PENDING;
      default:
        return STATUS_SUCCESS;
    }
  }

  /** Keeps `work` in the set until it settles (serve() awaits what is left). */
  #track(work: Promise<void>): void {
    this.#work.add(work);
    const settled = () => this.#work.delete(work);
    work.then(settled, settled);
  }

  async #echo(list: WskDataIndication, parts: Uint8Array[]): Promise<void> {
    const socket = this.connection.socket;
    const d = socket.Dispatch;
    // Sends run in the order they are issued, so the echo keeps the stream's order.
    const sends = parts.map((part) => d.WskSend(socket, wskBuf(part), 0, this.#server.run.irp()));
    for (const sent of await Promise.all(sends)) {
      this.#sends.calls++;
      if (NT_SUCCESS(sent.status)) this.#sends.bytes += sent.information;
      else this.#sends.failure ??= sent;
    }
    await this.#release(list, parts);
  }

  async #print(list: WskDataIndication, parts: Uint8Array[]): Promise<void> {
    try {
      for (const part of parts) {
        if (this.#fault !== null) break;
        // Dropped (the server stopped, or standard output stalled): the stream ends here.
        const printed = await printPayload(this.#server, this.connection, part, "WskReceiveEvent");
        if (!printed) this.#ended("dropped");
      }
    } catch (error) {
      this.#fault ??= writeFailure(error);
      this.#ended("fault");
    }
    await this.#release(list, parts);
  }

  async #release(list: WskDataIndication, parts: Uint8Array[]): Promise<void> {
    const socket = this.connection.socket;
    const released = await socket.Dispatch.WskRelease(socket, list);
    this.#releases.calls++;
    this.#releases.bytes += parts.reduce((sum, part) => sum + part.length, 0);
    if (!NT_SUCCESS(released.status)) this.#releases.failure ??= released;
  }

  /** The first of the stream's end, the idle deadline and the server's stop. */
  async #end(): Promise<StreamEnd | "timeout" | "stop"> {
    const stop = this.#server.stop;
    let onStop = () => {};
    const stopped = new Promise<"stop">((resolve) => onStop = () => resolve("stop"));
    if (stop.aborted) onStop();
    stop.addEventListener("abort", onStop, { once: true });
    try {
      return await Promise.race([this.#endedPromise, this.#idlePromise, stopped]);
    } finally {
      stop.removeEventListener("abort", onStop);
    }
  }

  /** Waits for the end of the stream, then reports and closes the connection. */
  async serve(): Promise<void> {
    const server = this.#server;
    const { run } = server;
    const connection = this.connection;
    const socket = connection.socket;
    const d = socket.Dispatch;
    const start = performance.now();
    if (server.mode === "reply") {
      const sent = await connectionCall(
        server,
        connection,
        "WskSend",
        () => d.WskSend(socket, wskBuf(server.reply), 0, run.irp()),
      );
      if (NT_SUCCESS(sent.status)) {
        await connectionCall(
          server,
          connection,
          "WskDisconnect",
          () => d.WskDisconnect(socket, null, 0, run.irp()),
        );
      }
    }
    if (connection.failed) {
      // The reply could not be sent: close at once, as echosrv does on any failure.
      this.#decided = true;
      clearTimeout(this.#timer);
      await run.close(socket);
      return;
    }
    const why = await this.#end();
    this.#decided = true;
    clearTimeout(this.#timer);
    // Echoes and prints in progress finish (each send and each print is bounded by --timeout)
    // before the lines.
    await Promise.all([...this.#work]);
    const expected = cancelExpected(server);
    const verifier = this.#verifier;
    const mismatch = verifier === null
      ? null
      : verifier.mismatch ?? (why === "fin" ? verifier.finish() : null);
    // A print that failed (standard output closed, a disk full) ends this connection only.
    const indicated: WskCompletion = this.#fault !== null
      ? this.#fault
      : mismatch !== null
      ? { status: STATUS_DATA_ERROR, information: 0, message: mismatch.message }
      : why === "timeout"
      ? {
        status: STATUS_IO_TIMEOUT,
        information: 0,
        message: `No data or FIN from the peer within ${run.timeout} ms`,
      }
      : why === "stop"
      ? stoppedCompletion()
      : { status: STATUS_SUCCESS, information: 0 };
    if (this.#fault !== null || mismatch !== null) connection.fail(indicated, "local-close");
    if (why === "timeout") connection.fail(indicated, "timeout");
    if (why === "stop") connection.fail(indicated, "local-close");
    run.report("WskReceiveEvent", socket, indicated, performance.now() - start, {
      information: this.#indications.bytes,
      calls: this.#indications.calls,
    }, expected);
    this.#reportTally("WskSend", this.#sends, start, server.mode === "echo");
    this.#reportTally("WskRelease", this.#releases, start, this.#releases.calls > 0);
    if (why === "fin" || why === "reset") {
      const reset = why === "reset";
      const event: WskCompletion = reset
        ? {
          status: STATUS_CONNECTION_RESET,
          information: 0,
          message: "The peer reset the connection",
        }
        : { status: STATUS_SUCCESS, information: 0 };
      if (reset) connection.fail(event, "reset");
      run.report("WskDisconnectEvent", socket, event, 0, {
        value: reset ? "abortive" : "graceful",
      });
    }
    if (mismatch !== null || this.#fault !== null) {
      await disconnectAbortively(server, connection);
    } else if (why === "fin" && !connection.failed) {
      await disconnectGracefully(server, connection);
    }
    await run.close(socket);
  }

  #reportTally(call: string, counts: Tally, start: number, show: boolean): void {
    if (!show) return;
    if (counts.failure !== null) this.connection.fail(counts.failure);
    this.#server.run.report(
      call,
      this.connection.socket,
      counts.failure ?? { status: STATUS_SUCCESS, information: 0 },
      performance.now() - start,
      { information: counts.bytes, calls: counts.calls },
      cancelExpected(this.#server),
    );
  }
}

// ---------------------------------------------------------------------------------------------
// The listener

/** What the accept loop was told on the command line. */
interface AcceptPlan {
  readonly count: number | null;
  readonly allow: readonly CidrRule[];
  readonly deny: readonly CidrRule[];
}

/**
 * The connection handlers in flight and the sockets they serve. A failed handler (a write
 * error, a peer's reset) ends its connection with a status and its Summary; a handler that
 * throws is a defect, and stops the server: the first error is kept for main to report,
 * and the sockets handlers left open are closed at the end. A handler leaves the set when it
 * settles, so a --keep-open server holds only the connections it is serving.
 */
class Handlers {
  readonly #running = new Set<Promise<void>>();
  readonly #sockets = new Set<WskConnectionSocket>();
  readonly #stop: () => void;
  #error: { readonly error: unknown } | null = null;

  constructor(stop: () => void) {
    this.#stop = stop;
  }

  /** Tracks `work`, the handler of `socket`, until it settles. */
  add(socket: WskConnectionSocket, work: Promise<void>): void {
    this.#sockets.add(socket);
    const tracked: Promise<void> = work.catch((error) => this.fail(error)).finally(() => {
      this.#running.delete(tracked);
      if (socket.state === "CLOSED") this.#sockets.delete(socket);
    });
    this.#running.add(tracked);
  }

  /** Keeps the first error (rethrown by rethrow()) and stops the server. */
  fail(error: unknown): void {
    this.#error ??= { error };
    this.#stop();
  }

  /** Waits until every handler settled, those started meanwhile included. */
  async settle(): Promise<void> {
    while (this.#running.size > 0) await Promise.allSettled([...this.#running]);
  }

  /** Closes (reported) every served socket its handler left open. */
  async closeLeftOpen(run: Run): Promise<void> {
    for (const socket of this.#sockets) await run.close(socket);
    this.#sockets.clear();
  }

  /** Throws the first error a handler threw, if any. */
  rethrow(): void {
    if (this.#error !== null) throw this.#error.error;
  }
}

/**
 * Runs `accept`, the loop that hands connections to `handlers`; then, however it ended, waits
 * for every handler, closes the sockets they left open and the listener (all reported), and
 * throws the first error a handler (or the loop) threw, for main to report.
 */
async function serveUntilDone(
  run: Run,
  listener: WskListenSocket,
  handlers: Handlers,
  accept: () => Promise<void>,
): Promise<void> {
  try {
    await accept();
  } catch (error) {
    handlers.fail(error);
  } finally {
    await handlers.settle();
    await handlers.closeLeftOpen(run);
    await run.close(listener);
  }
  handlers.rethrow();
}

/**
 * WskAccept until --count connections were served (refused peers do not count) or it stops. A
 * WskAccept that fails with STATUS_INSUFFICIENT_RESOURCES (the process is out of file
 * descriptors) is reported and issued again: the provider paces the retries (10 ms doubling to
 * 1 s), and the connection waits in the kernel's backlog until a served one frees a descriptor.
 */
async function acceptWithIrps(
  server: Server,
  listener: WskListenSocket,
  plan: AcceptPlan,
  handlers: Handlers,
): Promise<void> {
  const { run } = server;
  const l = listener.Dispatch;
  let served = 0;
  while (plan.count === null || served < plan.count) {
    // Waiting for a connection is unbounded unless --timeout was given; with --keep-open, a
    // wait that times out (or is stopped) is the planned end. Not Run.call: whether a failure
    // was planned is known only once the call completed, and Run.call takes it beforehand.
    const start = performance.now();
    const accepted = await l.WskAccept(
      listener,
      0,
      undefined,
      null,
      run.irp(run.timeoutGiven ? run.timeout : null),
    );
    const planned = server.keepOpen &&
      (accepted.status === STATUS_IO_TIMEOUT || server.stop.aborted);
    run.report(
      "WskAccept",
      accepted.socket ?? listener,
      accepted,
      performance.now() - start,
      {},
      planned ? accepted.status : undefined,
    );
    if (accepted.status === STATUS_INSUFFICIENT_RESOURCES && !server.stop.aborted) continue;
    if (!accepted.socket) break;
    const connection = new Connection(accepted.socket);
    const refusal = refusalOf(accepted.remoteAddress!.address, plan.allow, plan.deny);
    if (refusal !== null) {
      handlers.add(accepted.socket, refuseIrp(server, connection, refusal));
      continue;
    }
    served++;
    handlers.add(
      accepted.socket,
      serveIrp(server, connection).then(() => connection.summarize(run, cancelExpected(server))),
    );
  }
}

/**
 * Accepts through WskAcceptEvent until --count connections were served, the server is stopped,
 * or (with --timeout) no connection came within the timeout.
 */
async function acceptWithEvents(
  server: Server,
  local: SockAddr,
  backing: "node" | "deno",
  plan: AcceptPlan,
  handlers: Handlers,
): Promise<void> {
  const { run } = server;
  let served = 0;
  let accepting = true;
  let done!: (why: "count" | "stop" | "timeout") => void;
  const finished = new Promise<"count" | "stop" | "timeout">((resolve) => done = resolve);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    clearTimeout(timer);
    if (run.timeoutGiven) timer = setTimeout(() => done("timeout"), run.timeout);
  };
  const onStop = () => done("stop");
  const dispatch: WskClientListenDispatch = {
    // No descriptor was free for a connection: the provider tries again after a pause.
    WskAcceptFailed(_context, completion) {
      if (l) run.report("WskAcceptEvent", l, completion, 0);
    },
    WskAcceptEvent(_context, _flags, localAddress, remoteAddress, socket) {
      if (socket === null) return STATUS_REQUEST_NOT_ACCEPTED;
      // Any connection restarts the wait, as a new WskAccept would.
      if (accepting) arm();
      const described = {
        id: socket.id,
        localAddress,
        remoteAddress,
      };
      const refusal = accepting
        ? refusalOf(remoteAddress.address, plan.allow, plan.deny)
        : "the server accepts no more connections";
      if (refusal !== null) {
        const connection = new Connection(socket);
        const refused = {
          status: STATUS_REQUEST_NOT_ACCEPTED,
          information: 0,
          message: refusal,
        };
        run.report("WskAcceptEvent", described, refused, 0, {}, STATUS_REQUEST_NOT_ACCEPTED);
        connection.failExpected(refused, "local-close");
        // The provider closes the socket once the callback returns (RST on a node backing).
        queueMicrotask(() => connection.summarize(run));
        return STATUS_REQUEST_NOT_ACCEPTED;
      }
      served++;
      run.report("WskAcceptEvent", described, { status: STATUS_SUCCESS, information: 0 }, 0);
      const handler = new EventConnection(server, socket);
      handlers.add(
        socket,
        handler.serve().then(() => handler.connection.summarize(run, cancelExpected(server))),
      );
      if (plan.count !== null && served >= plan.count) {
        accepting = false;
        done("count");
      }
      return { status: STATUS_SUCCESS, context: handler, dispatch: handler.dispatch };
    },
  };
  const l = await run.listen(local, backing, dispatch);
  if (!l) return;
  // Turn the accept event on, wait until the count, a stop or a timeout, turn it off, and say
  // how the wait ended.
  await serveUntilDone(run, l, handlers, async () => {
    const mask = WSK_EVENT_ACCEPT | WSK_EVENT_RECEIVE | WSK_EVENT_DISCONNECT;
    const enabled = await run.call(
      "WskControlSocket",
      l,
      () =>
        // Enabling events takes no IRP (WSK's rule).
        l.Dispatch.WskControlSocket(l, WskSetOption, SO_WSK_EVENT_CALLBACK, SOL_SOCKET, {
          NpiId: NPI_WSK_INTERFACE_ID,
          EventMask: mask,
        }),
      {
        option: "SO_WSK_EVENT_CALLBACK",
        value: "WSK_EVENT_ACCEPT|WSK_EVENT_RECEIVE|WSK_EVENT_DISCONNECT",
      },
    );
    if (NT_SUCCESS(enabled.status)) {
      arm();
      server.stop.addEventListener("abort", onStop, { once: true });
      if (server.stop.aborted) onStop();
      const start = performance.now();
      const why = await finished;
      clearTimeout(timer);
      server.stop.removeEventListener("abort", onStop);
      accepting = false;
      // Stop the callback; connections that come now wait in the backlog until the close.
      await l.Dispatch.WskControlSocket(l, WskSetOption, SO_WSK_EVENT_CALLBACK, SOL_SOCKET, {
        NpiId: NPI_WSK_INTERFACE_ID,
        EventMask: WSK_EVENT_DISABLE | WSK_EVENT_ACCEPT,
      });
      if (why !== "count") {
        const completion: WskCompletion = why === "timeout"
          ? {
            status: STATUS_IO_TIMEOUT,
            information: 0,
            message: `No connection within ${run.timeout} ms`,
          }
          : stoppedCompletion();
        run.report(
          "WskAcceptEvent",
          l,
          completion,
          performance.now() - start,
          { calls: served },
          server.keepOpen ? completion.status : undefined,
        );
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// The command

/** Reads the --reply-file before any socket opens; a usage error when it cannot. */
async function readReplyFile(path: string): Promise<Uint8Array> {
  try {
    if ((await Deno.stat(path)).isDirectory) throw new Error("it is a directory");
    return await Deno.readFile(path);
  } catch (error) {
    throw new UsageError(
      `Cannot read reply file "${path}": ${error instanceof Error ? error.message : error}`,
    );
  }
}

/** Builds the `accept` command. */
export function command(ctx: CliContext) {
  return wskCommand(
    "accept",
    "Listen on LOCAL (default 127.0.0.1:0) and serve --count connections (or --keep-open) " +
      "concurrently, each in --mode, each ending with a Summary line.",
    "WskSocket, WskBind, WskAccept, then per connection WskReceive/WskSend (by mode), " +
      "WskDisconnect, WskCloseSocket; with --events WskControlSocket (SO_WSK_EVENT_CALLBACK), " +
      "events WskAcceptEvent, WskReceiveEvent, WskDisconnectEvent, and WskRelease",
    [
      "wsk accept --mode echo --count 10",
      'wsk accept [::1]:8080 --mode reply --reply "HTTP/1.0 200 OK\\r\\n\\r\\nhello"',
      "wsk accept 127.0.0.1:9000 --mode print > received.bin",
      "wsk accept :9000 --keep-open --mode discard --allow 127.0.0.0/8 --deny 127.0.0.2",
      "wsk accept --mode verify --verify-bytes 1G --events",
    ],
  )
    .argument("[local]", "IP:PORT or [IPV6]:PORT to listen on", parseLocal)
    .option(
      "--hold",
      "session agent: one WskAccept on a new listening socket, and keep both sockets as " +
        "handles for later commands (wsk accept LOCAL --hold; see session)",
    )
    .addOption(
      new Option("--count <n>", "connections to serve before exiting (refused peers do not count)")
        .default(1)
        .argParser(parseCount),
    )
    .addOption(
      new Option(
        "--keep-open",
        "serve until SIGINT/SIGTERM, or until --timeout passes with no new connection",
      ).conflicts("count"),
    )
    .addOption(
      new Option("--mode <mode>", "what to do with each connection")
        .choices(["echo", "discard", "print", "reply", "verify"] as const)
        .default("echo" as const),
    )
    .addOption(
      new Option("--reply <text>", "the reply for --mode reply (escapes: \\r \\n \\t \\xNN)")
        .argParser(parseData),
    )
    .addOption(
      new Option("--reply-file <file>", "the reply for --mode reply, read from a file")
        .conflicts("reply"),
    )
    .addOption(
      new Option(
        "--verify-bytes <size>",
        "--mode verify: the exact size expected (4096, 64K, 8M, 1G)",
      )
        .argParser(parseSize),
    )
    .addOption(
      new Option("--allow <cidr>", "accept only peers in this network (repeatable)")
        .argParser(collect(parseCidr)),
    )
    .addOption(
      new Option("--deny <cidr>", "reset peers in this network (repeatable; wins over --allow)")
        .argParser(collect(parseCidr)),
    )
    .addOption(
      new Option(
        "--backing <kind>",
        "host sockets: node can always reset a connection (refused peers, failed " +
          "verifications), deno reads faster with flat memory and resets only with --allow-ffi " +
          "(default: node with --allow/--deny unless --allow-ffi is granted, else deno)",
      ).choices(["deno", "node"] as const),
    )
    .addOption(
      new Option(
        "--events",
        "accept through WskAcceptEvent and receive through WskReceiveEvent instead of IRPs",
      ),
    )
    .action(async (localEndpoint, options, command) => {
      if (options.hold) {
        // The session agent makes the listening socket, binds it and takes one connection;
        // both become handles.
        if (localEndpoint === undefined) {
          throw new UsageError(
            "accept --hold takes the local address first: wsk accept LOCAL --hold",
          );
        }
        const family = localEndpoint.kind === "literal" ? localEndpoint.address.family : 2;
        const at = { line: 1, text: ["accept", localEndpoint.text, "--hold"].join(" ") };
        const { runSessionSteps } = await import("../session/client.ts");
        ctx.exitCode = await runSessionSteps(ctx, null, [
          { ...at, step: 1, socket: "listener", verb: "socket", family, listen: true },
          { ...at, step: 2, socket: "listener", verb: "bind", local: localEndpoint, listen: true },
          { ...at, step: 3, socket: "main", verb: "accept", listener: "listener" },
        ], {
          json: options.json === true,
          verbose: options.verbose === true,
          timeout: options.timeout,
        });
        return;
      }
      const explicitMode = command.getOptionValueSource("mode") === "cli";
      let mode: AcceptMode = options.mode;
      const wantsReply = options.reply !== undefined || options.replyFile !== undefined;
      if (wantsReply && !explicitMode) mode = "reply";
      if (options.verifyBytes !== undefined && !explicitMode) mode = "verify";
      if (wantsReply && mode !== "reply") {
        throw new UsageError(`Cannot use --reply or --reply-file with --mode "${mode}"`);
      }
      if (options.verifyBytes !== undefined && mode !== "verify") {
        throw new UsageError(`Cannot use --verify-bytes with --mode "${mode}"`);
      }
      const reply = options.replyFile !== undefined
        ? await readReplyFile(options.replyFile)
        : options.reply ?? new Uint8Array(0);
      const plan: AcceptPlan = {
        count: options.keepOpen ? null : options.count,
        allow: options.allow ?? [],
        deny: options.deny ?? [],
      };
      // Refused peers are reset: node-backed accepted sockets always can, deno-backed ones only
      // with --allow-ffi. Everything else keeps the deno backing unless asked: it reads without a
      // copy, and its memory stays flat over long streams (node:net's grows with the bytes moved:
      // 235 MiB after 1 GiB, against 74 MiB); without --allow-ffi its aborts (a failed
      // verification, a deadline) close with a FIN, which the lines say (peer_saw=FIN).
      const filtering = plan.allow.length > 0 || plan.deny.length > 0;
      const denoResets = filtering && canResetDenoConnections();
      if (filtering && options.backing === "deno" && !denoResets) {
        throw new UsageError(
          'Cannot use --allow or --deny with --backing "deno" without --allow-ffi: refused ' +
            "peers must be reset",
        );
      }
      const backing = options.backing ?? (filtering && !denoResets ? "node" : "deno");
      await runAction(ctx, command, options, async (outer) => {
        const stopper = new AbortController();
        const signals: Deno.Signal[] = [];
        const unlisten = () => {
          for (const signal of signals.splice(0)) Deno.removeSignalListener(signal, onSignal);
        };
        // The first SIGINT or SIGTERM stops the server. Its listeners go at once, so a second
        // signal ends the process the default way, even while a write to a full pipe holds it.
        const onSignal = () => {
          stopper.abort();
          unlisten();
        };
        for (const signal of ["SIGINT", "SIGTERM"] as const) {
          try {
            Deno.addSignalListener(signal, onSignal);
            signals.push(signal);
          } catch {
            // No signal support here: the signal then ends the process.
          }
        }
        const handlers = new Handlers(() => stopper.abort());
        try {
          const run = new Run(
            outer.reporter,
            outer.timeout,
            outer.timeoutGiven,
            AbortSignal.any([outer.signal, stopper.signal]),
          );
          const server: Server = {
            run,
            ctx,
            mode,
            reply,
            verifyBytes: options.verifyBytes,
            keepOpen: options.keepOpen === true,
            stop: run.signal,
          };
          const local = localEndpoint
            ? await run.resolve(localEndpoint)
            : { family: AF_INET, address: "127.0.0.1", port: 0 } as const;
          if (local === null) return;
          if (options.events) {
            await acceptWithEvents(server, local, backing, plan, handlers);
            return;
          }
          const listener = await run.listen(local, backing, null);
          if (!listener) return;
          await serveUntilDone(
            run,
            listener,
            handlers,
            () => acceptWithIrps(server, listener, plan, handlers),
          );
        } finally {
          unlisten();
        }
      }, (reporter) => {
        if (mode === "print" && options.json !== true) reporter.payloadOnStdout = true;
      });
    });
}

/**
 * The `accept` verb as a step and on a handle: one WskAccept on a listening socket (a script's
 * `--listener NAME`, or the handle `@L`); the new connection gets the step's `--socket` name
 * (or a handle). The command line's `accept` is the server above.
 */
export const accept: VerbDecl = {
  name: "accept",
  summary: "Take one connection from a listening socket: WskAccept.",
  calls: "WskAccept",
  examples: ["accept --listener srv --socket conn", "wsk accept @2"],
  target: "none",
  options: [{
    flags: "--listener <name>",
    help: "the listening socket (a script's name)",
    parse: parseName,
  }],
  make({ options, entry }) {
    if (entry === "script" && options.listener === undefined) {
      throw new InvalidArgumentError("accept needs --listener NAME (the listening socket)");
    }
    if (entry === "handle" && options.listener !== undefined) {
      throw new InvalidArgumentError("the handle is the listening socket: drop --listener");
    }
    return { verb: "accept", listener: (options.listener as string | undefined) ?? "" };
  },
  handle: true,
  script: true,
};

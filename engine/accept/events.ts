/**
 * `accept --events`: connections come through the WskAcceptEvent callback and their data
 * through WskReceiveEvent (kept with STATUS_PENDING while in use, then WskRelease), the peer's
 * FIN or reset through WskDisconnectEvent.
 *
 * @module
 */

import {
  NPI_WSK_INTERFACE_ID,
  NT_SUCCESS,
  type NTSTATUS,
  SO_WSK_EVENT_CALLBACK,
  type SockAddr,
  SOL_SOCKET,
  STATUS_CONNECTION_RESET,
  STATUS_DATA_ERROR,
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
  WskSetOption,
} from "../../provider/mod.ts";
import { refusalOf } from "../cidr.ts";
import { PatternVerifier } from "../pattern.ts";
import { writeFailure } from "../pump.ts";
import { Connection, type Handlers, serveUntilDone } from "./connections.ts";
import { printPayload } from "./modes.ts";
import {
  type AcceptPlan,
  cancelExpected,
  connectionCall,
  disconnectAbortively,
  disconnectGracefully,
  NO_FLAGS,
  type Server,
  stoppedCompletion,
} from "./server.ts";

/**
 * The elapsed time an event's line shows: the provider calls the callback with the event
 * already there, so nothing was waited for (the aggregated lines at a connection's end time
 * the whole stream instead).
 */
const CALLBACK_MS = 0;

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
    const sends = parts.map((part) =>
      d.WskSend(socket, wskBuf(part), NO_FLAGS, this.#server.run.irp())
    );
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
        () => d.WskSend(socket, wskBuf(server.reply), NO_FLAGS, run.irp()),
      );
      if (NT_SUCCESS(sent.status)) {
        await connectionCall(
          server,
          connection,
          "WskDisconnect",
          () => d.WskDisconnect(socket, null, NO_FLAGS, run.irp()),
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
      run.report("WskDisconnectEvent", socket, event, CALLBACK_MS, {
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

/**
 * Accepts through WskAcceptEvent until --count connections were served, the server is stopped,
 * or (with --timeout) no connection came within the timeout.
 */
export async function acceptWithEvents(
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
      if (l) run.report("WskAcceptEvent", l, completion, CALLBACK_MS);
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
        run.report(
          "WskAcceptEvent",
          described,
          refused,
          CALLBACK_MS,
          {},
          STATUS_REQUEST_NOT_ACCEPTED,
        );
        connection.failExpected(refused, "local-close");
        // The provider closes the socket once the callback returns (RST on a node backing).
        queueMicrotask(() => connection.summarize(run));
        return STATUS_REQUEST_NOT_ACCEPTED;
      }
      served++;
      run.report(
        "WskAcceptEvent",
        described,
        { status: STATUS_SUCCESS, information: 0 },
        CALLBACK_MS,
      );
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

/**
 * `wsk demo`: the embedded default. An echo listener in this process, and clients that walk
 * every dispatch function against it, one status line per call, in four acts each under a
 * heading, and a last verdict line computed from the records: every call is checked against
 * what its act sets out to show.
 *
 * @module
 */

import {
  IPPROTO_TCP,
  NPI_WSK_INTERFACE_ID,
  NT_SUCCESS,
  type NTSTATUS,
  ntStatusName,
  parseSockAddr,
  SIO_WSK_QUERY_IDEAL_SEND_BACKLOG,
  SO_KEEPALIVE,
  SO_WSK_EVENT_CALLBACK,
  SOCK_STREAM,
  SOL_SOCKET,
  STATUS_CANCELLED,
  STATUS_CONNECTION_RESET,
  STATUS_NOT_SUPPORTED,
  STATUS_PENDING,
  STATUS_SUCCESS,
  TCP_NODELAY,
  ulong,
  WSK_EVENT_RECEIVE,
  WSK_FLAG_ABORTIVE,
  WSK_FLAG_WAITALL,
  wskBuf,
  type WskCompletion,
  type WskConnectionSocket,
  type WskDataIndication,
  WskGetOption,
  WskIoctl,
  type WskListenSocket,
  WskSetOption,
} from "../provider/mod.ts";
import type { CliContext } from "../cli/command.ts";
import { runAction, wskCommand } from "../cli/command.ts";
import { pump } from "../engine/pump.ts";
import { CallContext, type Described } from "../engine/context.ts";
import type { CallRecord } from "../report/reporter.ts";
import { echo } from "../engine/accept/modes.ts";

const text = new TextEncoder();

/** The demo's acts, in the order they run. */
type ActName = "server" | "client" | "events" | "errors";

/** One act: its heading, and the outcomes other than STATUS_SUCCESS it sets out to show. */
interface Act {
  readonly name: ActName;
  /** One line saying what the act shows. */
  readonly shows: string;
  /** Each must be reported exactly once in the act; every other call must succeed. */
  readonly outcomes: readonly { readonly call: string; readonly status: NTSTATUS }[];
}

const ACTS: Readonly<Record<ActName, Act>> = {
  server: {
    name: "server",
    shows: "a listener on 127.0.0.1 that echoes every connection as Microsoft's echosrv does " +
      "(its WskAccept and echo lines show in each act; its WskCloseSocket ends the demo)",
    outcomes: [],
  },
  client: {
    name: "client",
    shows: "the explicit route: WskSocket, options, WskBind, WskConnect, addresses, data both " +
      "ways, a graceful WskDisconnect with final data",
    outcomes: [],
  },
  events: {
    name: "events",
    shows: "WskReceiveEvent keeps the data it indicates (STATUS_PENDING) until WskRelease " +
      "returns it",
    outcomes: [{ call: "WskReceiveEvent", status: STATUS_PENDING }],
  },
  errors: {
    name: "errors",
    shows: "failures on purpose: WskSendEx/WskReceiveEx are reserved, an abortive " +
      "WskDisconnect resets the server's receive, WskCloseSocket cancels a pending WskReceive",
    outcomes: [
      { call: "WskSendEx", status: STATUS_NOT_SUPPORTED },
      { call: "WskReceiveEx", status: STATUS_NOT_SUPPORTED },
      { call: "WskReceive", status: STATUS_CONNECTION_RESET },
      { call: "WskReceive", status: STATUS_CANCELLED },
    ],
  },
};

/** How often the events act looks for the indication, and how many times (1 s in all). */
const EVENT_POLL_MS = 10;
const EVENT_POLLS = 100;

/**
 * A CallContext that also checks every reported call against the act under way, for the verdict: a
 * call is as expected when it succeeded or is one of the act's outcomes not seen yet.
 */
class DemoCalls extends CallContext {
  #act: Act = ACTS.server;
  #waiting: { call: string; status: NTSTATUS }[] = [];
  #calls = 0;
  /** What was not as expected, one phrase each. */
  readonly #problems: string[] = [];
  readonly #heading: (act: Act) => void;

  constructor(outer: CallContext, heading: (act: Act) => void) {
    super(outer.reporter, outer.timeout, outer.timeoutGiven, outer.signal);
    this.#heading = heading;
  }

  /** Ends the act under way (its outcomes not seen are problems) and starts `act`. */
  begin(act: Act): void {
    this.#close();
    this.#act = act;
    this.#waiting = [...act.outcomes];
    this.#heading(act);
  }

  /** A problem the records do not show (an echo that came back different). */
  problem(text: string): void {
    this.#problems.push(`${text} (${this.#act.name})`);
  }

  /** The calls counted and what was not as expected, once the last act ended. */
  verdict(): { calls: number; problems: readonly string[] } {
    this.#close();
    return { calls: this.#calls, problems: this.#problems };
  }

  #close(): void {
    for (const missing of this.#waiting.splice(0)) {
      this.#problems.push(
        `${missing.call} ${ntStatusName(missing.status)} did not happen (${this.#act.name})`,
      );
    }
  }

  override report(
    call: string,
    socket: Described | null,
    completion: WskCompletion,
    elapsedMs: number,
    extra: Partial<CallRecord> = {},
    expected?: NTSTATUS,
  ): void {
    this.#calls++;
    const status = completion.status;
    const planned = this.#waiting.findIndex((o) => o.call === call && o.status === status);
    if (planned >= 0) this.#waiting.splice(planned, 1);
    else if (status !== STATUS_SUCCESS) {
      this.#problems.push(`${call} ${ntStatusName(status)} (${this.#act.name})`);
    }
    super.report(call, socket, completion, elapsedMs, extra, expected);
  }
}

/** Accepts one connection on `listener` and echoes it; `expected` excuses the echo's failure. */
async function serveOne(
  run: CallContext,
  listener: WskListenSocket,
  expected?: NTSTATUS,
): Promise<void> {
  const l = listener.Dispatch;
  const accepted = await run.call(
    "WskAccept",
    (c) => c.socket ?? listener,
    () => l.WskAccept(listener, 0, undefined, null, run.irp()),
  );
  if (accepted.socket) await echo(run, accepted.socket, expected);
}

/** Act client: the explicit route, options, data both ways, a graceful disconnect, FIN. */
async function explicitRoute(run: DemoCalls, server: string): Promise<void> {
  const s = await run.socket(2);
  if (!s) return;
  const d = s.Dispatch;
  const option = (name: string, value: number) => ({ option: name, value });
  await run.call(
    "WskControlSocket",
    s,
    () => d.WskControlSocket(s, WskSetOption, SO_KEEPALIVE, SOL_SOCKET, ulong(1), null, run.irp()),
    option("SO_KEEPALIVE", 1),
  );
  await run.call("WskBind", s, () => d.WskBind(s, parseSockAddr("127.0.0.1:0"), 0, run.irp()));
  await run.call("WskGetLocalAddress", s, () => d.WskGetLocalAddress(s, run.irp()));
  await run.call("WskConnect", s, () => d.WskConnect(s, parseSockAddr(server), 0, run.irp()));
  if (s.state !== "ESTAB") return await run.close(s);
  await run.call("WskGetLocalAddress", s, () => d.WskGetLocalAddress(s, run.irp()));
  await run.call("WskGetRemoteAddress", s, () => d.WskGetRemoteAddress(s, run.irp()));
  await run.call(
    "WskControlSocket",
    s,
    () => d.WskControlSocket(s, WskSetOption, TCP_NODELAY, IPPROTO_TCP, ulong(1), null, run.irp()),
    option("TCP_NODELAY", 1),
  );
  const out = new Uint8Array(8);
  const got = await d.WskControlSocket(
    s,
    WskGetOption,
    TCP_NODELAY,
    IPPROTO_TCP,
    null,
    out,
    run.irp(),
  );
  run.report("WskControlSocket", s, got, 0, option("TCP_NODELAY", out[0]!));
  const backlog = await d.WskControlSocket(
    s,
    WskIoctl,
    SIO_WSK_QUERY_IDEAL_SEND_BACKLOG,
    0,
    null,
    out,
    run.irp(),
  );
  run.report(
    "WskControlSocket",
    s,
    backlog,
    0,
    option("SIO_WSK_QUERY_IDEAL_SEND_BACKLOG", new DataView(out.buffer).getUint32(0, true)),
  );
  const hello = text.encode("hello, wsk");
  await run.send(s, hello);
  const reply = new Uint8Array(hello.length);
  const echoed = await run.call(
    "WskReceive",
    s,
    () => d.WskReceive(s, wskBuf(reply), WSK_FLAG_WAITALL, run.irp()),
  );
  if (NT_SUCCESS(echoed.status) && new TextDecoder().decode(reply) !== "hello, wsk") {
    run.reporter.fail();
    run.problem("the echo of WskSend came back different");
  }
  await run.call(
    "WskDisconnect",
    s,
    () => d.WskDisconnect(s, wskBuf(text.encode("bye")), 0, run.irp()),
  );
  await pump(run, s, { show: true });
  await run.close(s);
}

/** Act events: WskReceiveEvent indications kept (STATUS_PENDING), then WskRelease. */
async function receiveEvents(run: DemoCalls, server: string): Promise<void> {
  const kept: WskDataIndication[] = [];
  const socket = await run.socket(2, {}, {
    WskReceiveEvent(_context, _flags, indication, bytesIndicated) {
      if (indication) kept.push(indication);
      run.report(
        "WskReceiveEvent",
        socket,
        { status: STATUS_PENDING, information: bytesIndicated },
        0,
      );
      return STATUS_PENDING;
    },
  });
  if (!socket) return;
  const s: WskConnectionSocket = socket;
  const d = s.Dispatch;
  await run.call("WskBind", s, () => d.WskBind(s, parseSockAddr("127.0.0.1:0"), 0, run.irp()));
  await run.call("WskConnect", s, () => d.WskConnect(s, parseSockAddr(server), 0, run.irp()));
  if (s.state !== "ESTAB") return await run.close(s);
  await run.call(
    "WskControlSocket",
    s,
    () =>
      d.WskControlSocket(s, WskSetOption, SO_WSK_EVENT_CALLBACK, SOL_SOCKET, {
        NpiId: NPI_WSK_INTERFACE_ID,
        EventMask: WSK_EVENT_RECEIVE,
      }),
    { option: "SO_WSK_EVENT_CALLBACK", value: WSK_EVENT_RECEIVE },
  );
  await run.send(s, text.encode("event"));
  for (let i = 0; i < EVENT_POLLS && kept.length === 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, EVENT_POLL_MS));
  }
  for (const list of kept) await run.call("WskRelease", s, () => d.WskRelease(s, list));
  await run.call("WskDisconnect", s, () => d.WskDisconnect(s, null, 0, run.irp()));
  await pump(run, s, { show: true });
  await run.close(s);
}

/** Act errors, first connection: WskConnectEx with first data, the reserved calls, an RST. */
async function connectExAndAbort(run: CallContext, server: string): Promise<void> {
  const s = await run.socket(2, { abortive: true });
  if (!s) return;
  const d = s.Dispatch;
  await run.call("WskBind", s, () => d.WskBind(s, parseSockAddr("0.0.0.0:0"), 0, run.irp()));
  await run.call(
    "WskConnectEx",
    s,
    () => d.WskConnectEx(s, parseSockAddr(server), wskBuf(text.encode("first data")), 0, run.irp()),
  );
  if (s.state === "ESTAB") {
    await pump(run, s, { limit: 10, waitAll: true, show: true });
    await run.call("WskSendEx", s, () => d.WskSendEx(s), {}, STATUS_NOT_SUPPORTED);
    await run.call("WskReceiveEx", s, () => d.WskReceiveEx(s), {}, STATUS_NOT_SUPPORTED);
    await run.call(
      "WskDisconnect",
      s,
      () => d.WskDisconnect(s, null, WSK_FLAG_ABORTIVE, run.irp()),
    );
  }
  await run.close(s);
}

/** Act errors, second connection: WskSocketConnect, then WskCloseSocket under a WskReceive. */
async function closeWithPending(run: CallContext, server: string): Promise<void> {
  const d = run.npi.Dispatch;
  const made = await run.call(
    "WskSocketConnect",
    (c) => c.socket ?? null,
    () =>
      d.WskSocketConnect(
        run.npi.Client,
        SOCK_STREAM,
        IPPROTO_TCP,
        parseSockAddr("0.0.0.0:0"),
        parseSockAddr(server),
        0,
        undefined,
        null,
        run.irp(),
      ),
  );
  const s = made.socket;
  if (!s) return;
  const pending = s.Dispatch.WskReceive(s, wskBuf(new Uint8Array(16)), 0, run.irp());
  const described = { id: s.id, localAddress: s.localAddress, remoteAddress: s.remoteAddress };
  await run.close(s);
  run.report("WskReceive", described, await pending, 0, {}, STATUS_CANCELLED);
}

/** The acts, each against the one listener; the server's lines of an act end inside it. */
async function walk(run: DemoCalls): Promise<void> {
  run.begin(ACTS.server);
  const listener = await run.listen(parseSockAddr("127.0.0.1:0"));
  if (!listener) return;
  const l = listener.Dispatch;
  const local = await run.call(
    "WskGetLocalAddress",
    listener,
    () => l.WskGetLocalAddress(listener, run.irp()),
  );
  if (local.address) {
    const server = `127.0.0.1:${local.address.port}`;
    run.begin(ACTS.client);
    await Promise.all([serveOne(run, listener), explicitRoute(run, server)]);
    run.begin(ACTS.events);
    await Promise.all([serveOne(run, listener), receiveEvents(run, server)]);
    run.begin(ACTS.errors);
    // The client resets this connection on purpose: the echo's reset is expected.
    await Promise.all([
      serveOne(run, listener, STATUS_CONNECTION_RESET),
      connectExAndAbort(run, server),
    ]);
    await Promise.all([serveOne(run, listener), closeWithPending(run, server)]);
  }
  await run.close(listener);
}

/** Builds the `demo` command. */
export function command(ctx: CliContext) {
  return wskCommand(
    "demo",
    "Start an echo listener on 127.0.0.1:0 in this process and walk every dispatch function " +
      "against it in four acts (server, client, events, errors), each under a '# act: what it " +
      "shows' heading, then a verdict: '# N calls, all as expected' (exit 0) or the calls that " +
      'were not (exit 1). With --json, headings are {"demo","shows"} and the verdict ' +
      '{"verdict","calls","passed","problems"} objects.',
    "all of them: WskSocket, WskSocketConnect, WskBind, WskConnect, WskConnectEx, " +
      "WskGetLocalAddress, WskGetRemoteAddress, WskControlSocket, WskSend, WskReceive, " +
      "WskSendEx, WskReceiveEx, WskRelease, WskDisconnect, WskAccept, WskCloseSocket",
    ["wsk demo", "wsk demo --json"],
  ).action(async (options, command) => {
    const json = options.json === true;
    await runAction(ctx, command, options, async (outer) => {
      const run = new DemoCalls(outer, (act) => {
        ctx.stdout.line(
          json
            ? JSON.stringify({ demo: act.name, shows: act.shows })
            : `# ${act.name}: ${act.shows}`,
        );
      });
      await walk(run);
      const { calls, problems } = run.verdict();
      if (problems.length > 0) run.reporter.fail();
      const verdict = problems.length === 0
        ? `${calls} calls, all as expected`
        : `${calls} calls, ${problems.length} not as expected: ${problems.join("; ")}`;
      ctx.stdout.line(
        json
          ? JSON.stringify({ verdict, calls, passed: problems.length === 0, problems })
          : `# ${verdict}`,
      );
    });
  });
}

/**
 * What every command shares: the run context (options, reporter, cancellation) and the short
 * chains of dispatch calls that open and close a connected socket.
 *
 * @module
 */

import {
  type AddressFamily,
  AF_INET,
  IPPROTO_TCP,
  NT_SUCCESS,
  type NTSTATUS,
  prepareProvider,
  SOCK_STREAM,
  type SockAddr,
  STATUS_CONNECTION_REFUSED,
  STATUS_CONNECTION_RESET,
  type Teardown,
  ulong,
  wildcard,
  WSK_FLAG_CONNECTION_SOCKET,
  WSK_FLAG_DRAIN,
  WSK_FLAG_LISTEN_SOCKET,
  wskBuf,
  WskCaptureProviderNPI,
  type WskClientConnectionDispatch,
  type WskClientListenDispatch,
  type WskCompletion,
  WskConnectionSocket,
  WskGetOption,
  WskIoctl,
  type WskIrp,
  WskListenSocket,
  type WskPreparation,
  type WskProviderNpi,
  WskSetOption,
  type WskSocketOptions,
  type WskTlsCompletion,
} from "../provider/mod.ts";
import type { CallRecord, Reporter } from "../report/reporter.ts";
import type { Endpoint, OptionSetting, OptionSpec } from "../syntax/values.ts";
import { pump } from "./pump.ts";
import type { HexTrace } from "../report/trace.ts";
import { UsageError } from "../syntax/usage.ts";

export { GrowingBuffer, joinBytes, RECEIVE_MAX, RECEIVE_MIN } from "./pump.ts";

/** Options every command takes. */
export interface GlobalOptions {
  readonly json?: true;
  readonly timeout: number;
  readonly verbose?: true;
  /** `-q/--quiet`: only failures are printed. */
  readonly quiet?: true;
}

/** Default bound for every pending call, in milliseconds. */
export const DEFAULT_TIMEOUT = 10_000;

/** First pause between `--retry-until` attempts; it doubles up to {@linkcode RETRY_PAUSE_MAX}. */
export const RETRY_PAUSE_MIN = 50;

/** Longest pause between `--retry-until` attempts, in milliseconds. */
export const RETRY_PAUSE_MAX = 200;

/** Anything with an id and, when known, addresses: what a status line describes. */
export type Described = Pick<WskConnectionSocket, "id" | "localAddress"> & {
  readonly remoteAddress?: SockAddr | null;
  /** Set once our side aborted the connection: what the peer was sent (RST, or FIN). */
  readonly peerSaw?: Teardown | null;
};

/** The context of one command's dispatch calls: its reporter, its timeout, and a signal that Ctrl-C aborts. */
export class CallContext {
  readonly reporter: Reporter;
  readonly npi: WskProviderNpi = WskCaptureProviderNPI();
  /** Per-call bound in milliseconds. */
  readonly timeout: number;
  /** True when the user gave --timeout (accept then bounds its wait for connections too). */
  readonly timeoutGiven: boolean;
  readonly signal: AbortSignal;
  /** Fields added to every record while set (a script's `step` and `line`). */
  tags: Readonly<Record<string, string | number | boolean>> | null = null;
  /** `--hex`: every chunk sent or received is dumped to stderr while set. */
  hex: HexTrace | null = null;

  constructor(reporter: Reporter, timeout: number, timeoutGiven: boolean, signal: AbortSignal) {
    this.reporter = reporter;
    this.timeout = timeout;
    this.timeoutGiven = timeoutGiven;
    this.signal = signal;
  }

  /** The IRP stand-in for one call: the run's cancellation and a deadline. */
  irp(timeout: number | null = this.timeout): WskIrp {
    return timeout === null ? { signal: this.signal } : { signal: this.signal, timeout };
  }

  /**
   * Loads what the calls ahead need (see {@linkcode prepareProvider}), so that their reported
   * times are the calls' alone. With no `needs`, what every call needs (the host's timers):
   * `runAction` and the session agent await that before a command's first call. Calls on an
   * existing socket need nothing more here: {@linkcode CallContext.call} prepares their socket.
   */
  prepare(needs: WskPreparation = {}): Promise<void> {
    return prepareProvider(needs);
  }

  /**
   * Issues one dispatch call, times it and reports it. `expected` marks a failure status the
   * command sets out to produce, so it does not count against the exit code. A call on a
   * model socket first awaits the socket's `prepare()` (a connect's host code), outside the
   * clock.
   */
  async call<T extends WskCompletion>(
    call: string,
    socket: Described | null | ((completion: T) => Described | null),
    issue: () => Promise<T>,
    extra: Partial<CallRecord> = {},
    expected?: NTSTATUS,
  ): Promise<T> {
    if (socket instanceof WskConnectionSocket || socket instanceof WskListenSocket) {
      await socket.prepare();
    }
    const start = performance.now();
    const completion = await issue();
    const described = typeof socket === "function" ? socket(completion) : socket;
    this.report(call, described, completion, performance.now() - start, extra, expected);
    return completion;
  }

  /** Reports a completion that was obtained some other way (an aggregated loop, an event). */
  report(
    call: string,
    socket: Described | null,
    completion: WskCompletion,
    elapsedMs: number,
    extra: Partial<CallRecord> = {},
    expected?: NTSTATUS,
  ): void {
    this.reporter.record({
      call,
      status: completion.status,
      information: completion.information,
      elapsedMs,
      ...(socket
        ? { socket: socket.id, local: socket.localAddress, remote: socket.remoteAddress ?? null }
        : {}),
      ...(socket?.peerSaw ? { peerSaw: socket.peerSaw } : {}),
      ...(completion.message === undefined ? {} : { message: completion.message }),
      ...(completion.cause === undefined ? {} : { cause: completion.cause }),
      // A TLS handshake's completion carries what it agreed on.
      ...((completion as WskTlsCompletion).tls
        ? { tls: (completion as WskTlsCompletion).tls }
        : {}),
      ...extra,
      ...(this.tags ? { extra: { ...this.tags, ...extra.extra } } : {}),
    }, expected);
  }

  /**
   * Turns an endpoint into a SOCKADDR: literals directly, names through WskGetAddressInfo
   * (reported), `:PORT` as the wildcard of `family`. Null when resolution failed.
   */
  async resolve(endpoint: Endpoint, family: AddressFamily = AF_INET): Promise<SockAddr | null> {
    if (endpoint.kind === "literal") return endpoint.address;
    if (endpoint.kind === "port") return wildcard(family, endpoint.port);
    await this.prepare({ resolve: true });
    const d = this.npi.Dispatch;
    const found = await this.call(
      "WskGetAddressInfo",
      null,
      () =>
        d.WskGetAddressInfo(this.npi.Client, endpoint.host, String(endpoint.port), 0, this.irp()),
    );
    const addresses = found.addresses ?? [];
    return addresses.find((a) => a.family === family) ?? addresses[0] ?? null;
  }

  /** Creates a connection socket (reported). */
  async socket(
    family: AddressFamily,
    options: WskSocketOptions = {},
    dispatch: WskClientConnectionDispatch | null = null,
    context: unknown = undefined,
  ): Promise<WskConnectionSocket | null> {
    const d = this.npi.Dispatch;
    const start = performance.now();
    const made = await d.WskSocket(
      this.npi.Client,
      family,
      SOCK_STREAM,
      IPPROTO_TCP,
      WSK_FLAG_CONNECTION_SOCKET,
      context,
      dispatch,
      { ...options, ...this.irp() },
    );
    this.report("WskSocket", made.socket ?? null, made, performance.now() - start);
    return made.socket ?? null;
  }

  /**
   * A listening socket on `local`: WskSocket (WSK_FLAG_LISTEN_SOCKET, on the `backing` asked for,
   * with the client's listen callbacks) then WskBind, which starts listening; both reported. Null (after closing what was made) when either fails.
   */
  async listen(
    local: SockAddr,
    backing: "deno" | "node" = "deno",
    dispatch: WskClientListenDispatch | null = null,
  ): Promise<WskListenSocket | null> {
    const d = this.npi.Dispatch;
    const made = await this.call("WskSocket", (c) => c.listenSocket ?? null, () =>
      d.WskSocket(
        this.npi.Client,
        local.family,
        SOCK_STREAM,
        IPPROTO_TCP,
        WSK_FLAG_LISTEN_SOCKET,
        undefined,
        dispatch,
        { ...this.irp(), backing },
      ));
    const listener = made.listenSocket;
    if (!listener) return null;
    const l = listener.Dispatch;
    const bound = await this.call(
      "WskBind",
      listener,
      () => l.WskBind(listener, local, 0, this.irp()),
    );
    if (NT_SUCCESS(bound.status)) return listener;
    await this.close(listener);
    return null;
  }

  /**
   * The shortest real chain to a connected socket: WskSocket → WskBind (wildcard or `bind`) →
   * WskConnect. On failure the socket is closed (reported) and null returned.
   */
  async connected(
    remoteEndpoint: Endpoint,
    bind: Endpoint | undefined,
    options: WskSocketOptions = {},
    dispatch: WskClientConnectionDispatch | null = null,
    context: unknown = undefined,
  ): Promise<WskConnectionSocket | null> {
    const ends = await this.#ends(remoteEndpoint, bind);
    if (ends === null) return null;
    const { remote, bound } = ends;
    const socket = await this.socket(remote.family, options, dispatch, context);
    if (socket === null) return null;
    const d = socket.Dispatch;
    const b = await this.call("WskBind", socket, () => d.WskBind(socket, bound, 0, this.irp()));
    if (NT_SUCCESS(b.status)) {
      const c = await this.call(
        "WskConnect",
        socket,
        () => d.WskConnect(socket, remote, 0, this.irp()),
        { remote },
      );
      if (NT_SUCCESS(c.status)) return socket;
    }
    await this.close(socket);
    return null;
  }

  /**
   * Resolves the remote endpoint and the local one to bind (wildcard port 0 by default); null
   * when a name did not resolve. Different families are a usage error.
   */
  async #ends(
    remoteEndpoint: Endpoint,
    bind: Endpoint | undefined,
  ): Promise<{ remote: SockAddr; bound: SockAddr } | null> {
    const local = bind?.kind === "literal" ? bind.address : undefined;
    const remote = await this.resolve(remoteEndpoint, local?.family ?? AF_INET);
    if (remote === null) return null;
    const bound = bind ? await this.resolve(bind, remote.family) : wildcard(remote.family, 0);
    if (bound === null) return null;
    if (bound.family !== remote.family) {
      // Caught before any socket exists: a usage error, not a dispatch failure.
      throw new UsageError(
        `Cannot bind "${
          bind!.text
        }" to reach "${remoteEndpoint.text}": the address families differ`,
      );
    }
    return { remote, bound };
  }

  /**
   * {@linkcode CallContext.connected}, retrying a refused (or reset) connect with a fresh socket until
   * `untilMs` have passed, pausing 50 ms, then 100, then 200 ms between attempts. Each attempt is
   * bounded by the timeout as usual. The last attempt is reported: its WskSocket and WskBind, and
   * one WskConnect line with `calls` = the number of attempts and the time since the first; the
   * sockets of earlier attempts are closed without a line.
   */
  async connectedRetrying(
    remoteEndpoint: Endpoint,
    bind: Endpoint | undefined,
    untilMs: number,
    options: WskSocketOptions = {},
    first: Uint8Array | null = null,
    dispatch: WskClientConnectionDispatch | null = null,
    irp: WskIrp = this.irp(),
  ): Promise<WskConnectionSocket | null> {
    const ends = await this.#ends(remoteEndpoint, bind);
    if (ends === null) return null;
    const { remote, bound } = ends;
    const d = this.npi.Dispatch;
    await this.prepare({ connect: { local: bound } });
    const start0 = performance.now();
    const deadline = start0 + untilMs;
    let pause = RETRY_PAUSE_MIN;
    for (let attempts = 1;; attempts++) {
      // Lines of this attempt, written only if it is the last.
      const lines: (() => void)[] = [];
      const flush = () => lines.forEach((line) => line());
      let start = performance.now();
      const made = await d.WskSocket(
        this.npi.Client,
        remote.family,
        SOCK_STREAM,
        IPPROTO_TCP,
        WSK_FLAG_CONNECTION_SOCKET,
        undefined,
        dispatch,
        { ...options, ...irp },
      );
      const socket = made.socket ?? null;
      const madeMs = performance.now() - start;
      // The addresses as they were at the call, not when the line is written.
      const made1 = socket && snapshot(socket);
      lines.push(() => this.report("WskSocket", made1, made, madeMs));
      if (socket === null) {
        flush();
        return null;
      }
      const s = socket.Dispatch;
      start = performance.now();
      const b = await s.WskBind(socket, bound, 0, irp);
      const bindMs = performance.now() - start;
      const bound1 = snapshot(socket);
      lines.push(() => this.report("WskBind", bound1, b, bindMs));
      if (!NT_SUCCESS(b.status)) {
        flush();
        await this.close(socket);
        return null;
      }
      const c = first === null
        ? await s.WskConnect(socket, remote, 0, irp)
        : await s.WskConnectEx(socket, remote, wskBuf(first), 0, irp);
      const retry = (c.status === STATUS_CONNECTION_REFUSED ||
        c.status === STATUS_CONNECTION_RESET) &&
        performance.now() < deadline &&
        !this.signal.aborted;
      if (retry) {
        await s.WskCloseSocket(socket);
        await pauseFor(Math.min(pause, deadline - performance.now()), this.signal);
        pause = Math.min(pause * 2, RETRY_PAUSE_MAX);
        continue;
      }
      flush();
      this.report(
        first === null ? "WskConnect" : "WskConnectEx",
        socket,
        c,
        performance.now() - start0,
        {
          remote,
          calls: attempts,
        },
      );
      if (NT_SUCCESS(c.status)) return socket;
      await this.close(socket);
      return null;
    }
  }

  /** WskCloseSocket, reported. */
  async close(socket: WskConnectionSocket | WskListenSocket): Promise<void> {
    if (socket.state === "CLOSED") return;
    await this.call("WskCloseSocket", socket, () =>
      // The two tables share the member's shape; each checks its own socket.
      (socket.Dispatch.WskCloseSocket as (s: typeof socket) => Promise<WskCompletion>)(socket));
  }

  /**
   * Ends a connection without losing data: a graceful WskDisconnect (unless the socket is
   * already shut or aborted), then receiving until the peer's FIN (bounded by the timeout),
   * then WskCloseSocket. Data drained here is reported in the WskReceive line.
   */
  async finish(socket: WskConnectionSocket, drainExpected?: NTSTATUS): Promise<void> {
    const d = socket.Dispatch;
    if (socket.state === "ESTAB" || socket.state === "RFIN") {
      await this.call("WskDisconnect", socket, () => d.WskDisconnect(socket, null, 0, this.irp()));
    }
    if (socket.state === "LFIN") {
      await pump(this, socket, {
        show: true,
        ...(drainExpected === undefined ? {} : { expected: drainExpected }),
      });
    }
    await this.close(socket);
  }

  /** WskControlSocket setting one option, reported with its name and value. */
  setOption(
    socket: WskConnectionSocket,
    { spec, value }: OptionSetting,
    irp: WskIrp = this.irp(),
    expected?: NTSTATUS,
  ): Promise<WskCompletion> {
    const d = socket.Dispatch;
    return this.call(
      "WskControlSocket",
      socket,
      () =>
        d.WskControlSocket(socket, WskSetOption, spec.code, spec.level, ulong(value), null, irp),
      { option: spec.name, value },
      expected,
    );
  }

  /** WskControlSocket reading one option (WskGetOption) or IOCTL, reported with the value. */
  async getOption(
    socket: WskConnectionSocket,
    spec: OptionSpec,
    irp: WskIrp = this.irp(),
    expected?: NTSTATUS,
  ): Promise<WskCompletion> {
    const d = socket.Dispatch;
    const output = new Uint8Array(spec.size);
    const type = spec.kind === "ioctl" ? WskIoctl : WskGetOption;
    const start = performance.now();
    const got = await d.WskControlSocket(socket, type, spec.code, spec.level, null, output, irp);
    const view = new DataView(output.buffer);
    const value = spec.size === 8 ? Number(view.getBigUint64(0, true)) : view.getUint32(0, true);
    this.report("WskControlSocket", socket, got, performance.now() - start, {
      option: spec.name,
      ...(NT_SUCCESS(got.status) ? { value } : {}),
    }, expected);
    return got;
  }

  /** One WskReceive with WSK_FLAG_DRAIN (discard until the peer's FIN), reported. */
  drain(
    socket: WskConnectionSocket,
    irp: WskIrp = this.irp(),
    expected?: NTSTATUS,
  ): Promise<WskCompletion> {
    const d = socket.Dispatch;
    return this.call(
      "WskReceive",
      socket,
      () => d.WskReceive(socket, { Mdl: null, Offset: 0, Length: 0 }, WSK_FLAG_DRAIN, irp),
      {},
      expected,
    );
  }

  /** Sends one buffer with WskSend, reported (and dumped with `--hex`). */
  async send(socket: WskConnectionSocket, bytes: Uint8Array, flags = 0): Promise<WskCompletion> {
    const d = socket.Dispatch;
    const sent = await this.call(
      "WskSend",
      socket,
      () => d.WskSend(socket, wskBuf(bytes), flags, this.irp()),
      { sentData: bytes },
    );
    this.hex?.dump(">", socket.id, bytes.subarray(0, sent.information));
    return sent;
  }
}

/** What a status line shows of a socket, as it is now. */
function snapshot(socket: Described): Described {
  return {
    id: socket.id,
    localAddress: socket.localAddress,
    remoteAddress: socket.remoteAddress ?? null,
  };
}

/** Waits `ms` (at least 0), or less when `signal` aborts. */
export function pauseFor(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted || ms <= 0) {
      resolve();
      return;
    }
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}

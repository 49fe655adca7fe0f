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
  SOCK_STREAM,
  type SockAddr,
  STATUS_SUCCESS,
  wildcard,
  WSK_FLAG_CONNECTION_SOCKET,
  WSK_FLAG_LISTEN_SOCKET,
  WSK_FLAG_WAITALL,
  wskBuf,
  WskCaptureProviderNPI,
  type WskClientConnectionDispatch,
  type WskCompletion,
  type WskConnectionSocket,
  type WskIrp,
  type WskListenSocket,
  type WskProviderNpi,
  type WskSocketOptions,
} from "../provider/mod.ts";
import type { CallRecord, Reporter } from "./_report.ts";
import type { Endpoint } from "./_parse.ts";
import { UsageError } from "./_usage.ts";

/** Options every command takes. */
export interface GlobalOptions {
  readonly json?: true;
  readonly timeout: number;
  readonly verbose?: true;
}

/** Default bound for every pending call, in milliseconds. */
export const DEFAULT_TIMEOUT = 10_000;

/** Anything with an id and, when known, addresses: what a status line describes. */
export type Described = Pick<WskConnectionSocket, "id" | "localAddress"> & {
  readonly remoteAddress?: SockAddr | null;
};

/** One command run: its reporter, its timeout, and a signal that Ctrl-C aborts. */
export class Run {
  readonly reporter: Reporter;
  readonly npi: WskProviderNpi = WskCaptureProviderNPI();
  /** Per-call bound in milliseconds. */
  readonly timeout: number;
  /** True when the user gave --timeout (accept then bounds its wait for connections too). */
  readonly timeoutGiven: boolean;
  readonly signal: AbortSignal;
  /** Fields added to every record while set (a script's `step` and `line`). */
  tags: Readonly<Record<string, string | number | boolean>> | null = null;

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
   * Issues one dispatch call, times it and reports it. `expected` marks a failure status the
   * command sets out to produce, so it does not count against the exit code.
   */
  async call<T extends WskCompletion>(
    call: string,
    socket: Described | null | ((completion: T) => Described | null),
    issue: () => Promise<T>,
    extra: Partial<CallRecord> = {},
    expected?: NTSTATUS,
  ): Promise<T> {
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
      ...(completion.message === undefined ? {} : { message: completion.message }),
      ...(completion.cause === undefined ? {} : { cause: completion.cause }),
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
   * A listening socket on `local`: WskSocket (WSK_FLAG_LISTEN_SOCKET) then WskBind, which starts
   * listening; both reported. Null (after closing what was made) when either fails.
   */
  async listen(local: SockAddr): Promise<WskListenSocket | null> {
    const d = this.npi.Dispatch;
    const made = await this.call("WskSocket", (c) => c.listenSocket ?? null, () =>
      d.WskSocket(
        this.npi.Client,
        local.family,
        SOCK_STREAM,
        IPPROTO_TCP,
        WSK_FLAG_LISTEN_SOCKET,
        undefined,
        null,
        this.irp(),
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
  async finish(socket: WskConnectionSocket): Promise<void> {
    const d = socket.Dispatch;
    if (socket.state === "ESTAB" || socket.state === "RFIN") {
      await this.call("WskDisconnect", socket, () => d.WskDisconnect(socket, null, 0, this.irp()));
    }
    if (socket.state === "LFIN") await this.receiveLoop(socket, { show: true });
    await this.close(socket);
  }

  /**
   * Receives until the peer's FIN (or `limit` bytes), handing data to `sink` as it arrives,
   * and reports the loop as one WskReceive line with `calls`. The whole loop shares one
   * deadline (`--timeout`). Returns the final status and the byte count.
   */
  async receiveLoop(
    socket: WskConnectionSocket,
    options: {
      readonly limit?: number;
      readonly waitAll?: boolean;
      readonly sink?: (bytes: Uint8Array) => Promise<void>;
      readonly show?: boolean;
      readonly bufferSize?: number;
      /** Bound each call by the timeout (an idle timeout) instead of the whole loop. */
      readonly idle?: boolean;
    } = {},
  ): Promise<{ status: NTSTATUS; total: number }> {
    const d = socket.Dispatch;
    const limit = options.limit ?? Infinity;
    const buffer = new Uint8Array(Math.min(options.bufferSize ?? 256 * 1024, limit));
    const preview: Uint8Array[] = [];
    let previewBytes = 0;
    let total = 0;
    let calls = 0;
    let last: WskCompletion = { status: STATUS_SUCCESS, information: 0 };
    const start = performance.now();
    const deadline = start + this.timeout;
    while (total < limit) {
      const length = Math.min(buffer.length, limit - total);
      const remaining = options.idle ? this.timeout : Math.max(0, deadline - performance.now());
      const flags = options.waitAll ? WSK_FLAG_WAITALL : 0;
      last = await d.WskReceive(
        socket,
        { Mdl: { Next: null, bytes: buffer }, Offset: 0, Length: length },
        flags,
        this.irp(remaining),
      );
      calls++;
      if (!NT_SUCCESS(last.status) || last.information === 0) break;
      const bytes = buffer.subarray(0, last.information);
      total += bytes.length;
      if (options.sink) await options.sink(bytes);
      else if (previewBytes < 4096) {
        preview.push(bytes.slice(0, 4096 - previewBytes));
        previewBytes += Math.min(bytes.length, 4096 - previewBytes);
      }
    }
    const shown = options.show && previewBytes > 0 ? joinBytes(preview, previewBytes) : undefined;
    this.report(
      "WskReceive",
      socket,
      NT_SUCCESS(last.status) ? { status: last.status, information: total } : last,
      performance.now() - start,
      {
        calls,
        information: total,
        ...(shown ? { data: shown } : {}),
      },
    );
    return { status: last.status, total };
  }

  /** Sends one buffer with WskSend, reported. */
  send(socket: WskConnectionSocket, bytes: Uint8Array, flags = 0): Promise<WskCompletion> {
    const d = socket.Dispatch;
    return this.call("WskSend", socket, () => d.WskSend(socket, wskBuf(bytes), flags, this.irp()));
  }
}

/** Concatenates chunks. */
export function joinBytes(chunks: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk.subarray(0, total - offset), offset);
    offset += Math.min(chunk.length, total - offset);
    if (offset >= total) break;
  }
  return out;
}

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
  STATUS_CONNECTION_REFUSED,
  STATUS_CONNECTION_RESET,
  STATUS_DATA_ERROR,
  STATUS_SUCCESS,
  type Teardown,
  ulong,
  wildcard,
  WSK_FLAG_CONNECTION_SOCKET,
  WSK_FLAG_DRAIN,
  WSK_FLAG_LISTEN_SOCKET,
  WSK_FLAG_WAITALL,
  wskBuf,
  WskCaptureProviderNPI,
  type WskClientConnectionDispatch,
  type WskClientListenDispatch,
  type WskCompletion,
  type WskConnectionSocket,
  WskGetOption,
  WskIoctl,
  type WskIrp,
  type WskListenSocket,
  type WskProviderNpi,
  WskSetOption,
  type WskSocketOptions,
} from "../provider/mod.ts";
import type { CallRecord, Reporter } from "./_report.ts";
import type { Endpoint, OptionSetting, OptionSpec } from "./_parse.ts";
import type { PatternVerifier } from "./_pattern.ts";
import type { Progress } from "./_progress.ts";
import type { HexTrace } from "./_trace.ts";
import { UsageError } from "./_usage.ts";

/** Options every command takes. */
export interface GlobalOptions {
  readonly json?: true;
  readonly timeout: number;
  readonly verbose?: true;
}

/** Default bound for every pending call, in milliseconds. */
export const DEFAULT_TIMEOUT = 10_000;

/** First pause between `--retry-until` attempts; it doubles up to {@linkcode RETRY_PAUSE_MAX}. */
export const RETRY_PAUSE_MIN = 50;

/** Longest pause between `--retry-until` attempts, in milliseconds. */
export const RETRY_PAUSE_MAX = 200;

/** Largest receive buffer of the receive loops (bulk transfers read up to this much per call). */
export const RECEIVE_MAX = 1024 * 1024;

/** First size of a receive loop's buffer. */
export const RECEIVE_MIN = 4 * 1024;

/**
 * A receive loop's buffer: it starts at {@linkcode RECEIVE_MIN} and doubles each time a receive
 * fills it, up to a maximum. An idle or chatty connection holds 4 KiB, so thousands of them stay
 * cheap, while a bulk transfer reaches 1 MiB per call after a few receives.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { GrowingBuffer } from "./_run.ts";
 *
 * const buffer = new GrowingBuffer(64 * 1024);
 * assert.equal(buffer.bytes.length, 4 * 1024);
 * buffer.received(100); // not full: stays
 * assert.equal(buffer.bytes.length, 4 * 1024);
 * buffer.received(4 * 1024);
 * buffer.received(8 * 1024);
 * buffer.received(16 * 1024);
 * buffer.received(32 * 1024);
 * buffer.received(64 * 1024); // at the maximum: stays
 * assert.equal(buffer.bytes.length, 64 * 1024);
 * ```
 */
export class GrowingBuffer {
  #bytes: Uint8Array;
  readonly #max: number;

  constructor(max: number = RECEIVE_MAX) {
    this.#max = Math.max(1, max);
    this.#bytes = new Uint8Array(Math.min(RECEIVE_MIN, this.#max));
  }

  /** The buffer for the next receive; a new one after it grew. */
  get bytes(): Uint8Array {
    return this.#bytes;
  }

  /** Records that a receive returned `count` bytes; a full buffer doubles for the next one. */
  received(count: number): void {
    if (count >= this.#bytes.length && this.#bytes.length < this.#max) {
      this.#bytes = new Uint8Array(Math.min(this.#max, this.#bytes.length * 2));
    }
  }
}

/** Options of {@linkcode Run.receiveLoop}. */
export interface ReceiveLoopOptions {
  /** Stop after this many bytes. */
  readonly limit?: number;
  /** Receive with WSK_FLAG_WAITALL. */
  readonly waitAll?: boolean;
  /** Where the data goes (otherwise a preview is kept for `show`). */
  readonly sink?: (bytes: Uint8Array) => Promise<void>;
  /** Put up to 4 KiB of what arrived in the line's `data`. */
  readonly show?: boolean;
  readonly bufferSize?: number;
  /** Bound each call by the timeout (an idle timeout) instead of the whole loop. */
  readonly idle?: boolean;
  /**
   * Check the stream against the pattern: the loop stops at the first mismatch, and a mismatch
   * (or a stream that ends short) is reported as STATUS_DATA_ERROR with the verifier's message.
   */
  readonly verify?: PatternVerifier;
  /** Count the bytes on a progress display (stopped before the line is reported). */
  readonly progress?: Progress | null;
  /** The bound in milliseconds (per call with `idle`, else for the loop); default --timeout. */
  readonly timeout?: number;
  /** A status the caller expects the loop to end with (not counted as a failure). */
  readonly expected?: NTSTATUS;
}

/** Anything with an id and, when known, addresses: what a status line describes. */
export type Described = Pick<WskConnectionSocket, "id" | "localAddress"> & {
  readonly remoteAddress?: SockAddr | null;
  /** Set once our side aborted the connection: what the peer was sent (RST, or FIN). */
  readonly peerSaw?: Teardown | null;
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
      ...(socket?.peerSaw ? { peerSaw: socket.peerSaw } : {}),
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
   * {@linkcode Run.connected}, retrying a refused (or reset) connect with a fresh socket until
   * `untilMs` have passed, pausing 50 ms, then 100, then 200 ms between attempts. Each attempt is
   * bounded by the timeout as usual. The last attempt is reported: its WskSocket and WskBind, and
   * one WskConnect line with `calls` = the number of attempts and the time since the first; the
   * sockets of earlier attempts are closed without a line.
   */
  async connectedRetrying(
    remoteEndpoint: Endpoint,
    bind: Endpoint | undefined,
    untilMs: number,
  ): Promise<WskConnectionSocket | null> {
    const ends = await this.#ends(remoteEndpoint, bind);
    if (ends === null) return null;
    const { remote, bound } = ends;
    const d = this.npi.Dispatch;
    const first = performance.now();
    const deadline = first + untilMs;
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
        null,
        this.irp(),
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
      const b = await s.WskBind(socket, bound, 0, this.irp());
      const bindMs = performance.now() - start;
      const bound1 = snapshot(socket);
      lines.push(() => this.report("WskBind", bound1, b, bindMs));
      if (!NT_SUCCESS(b.status)) {
        flush();
        await this.close(socket);
        return null;
      }
      const c = await s.WskConnect(socket, remote, 0, this.irp());
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
      this.report("WskConnect", socket, c, performance.now() - first, {
        remote,
        calls: attempts,
      });
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
      await this.receiveLoop(socket, {
        show: true,
        ...(drainExpected === undefined ? {} : { expected: drainExpected }),
      });
    }
    await this.close(socket);
  }

  /**
   * Receives until the peer's FIN (or `limit` bytes), handing data to `sink` as it arrives,
   * and reports the loop as one WskReceive line with `calls`. The whole loop shares one
   * deadline (`--timeout`). Returns the final status and the byte count.
   */
  async receiveLoop(
    socket: WskConnectionSocket,
    options: ReceiveLoopOptions = {},
  ): Promise<{ status: NTSTATUS; total: number }> {
    const d = socket.Dispatch;
    const limit = options.limit ?? Infinity;
    const buffer = new GrowingBuffer(Math.min(options.bufferSize ?? RECEIVE_MAX, limit));
    const preview: Uint8Array[] = [];
    let previewBytes = 0;
    let total = 0;
    let calls = 0;
    let last: WskCompletion = { status: STATUS_SUCCESS, information: 0 };
    const start = performance.now();
    const timeout = options.timeout ?? this.timeout;
    const deadline = start + timeout;
    while (total < limit) {
      const length = Math.min(buffer.bytes.length, limit - total);
      const remaining = options.idle ? timeout : Math.max(0, deadline - performance.now());
      const flags = options.waitAll ? WSK_FLAG_WAITALL : 0;
      last = await d.WskReceive(
        socket,
        { Mdl: { Next: null, bytes: buffer.bytes }, Offset: 0, Length: length },
        flags,
        this.irp(remaining),
      );
      calls++;
      if (!NT_SUCCESS(last.status) || last.information === 0) break;
      const bytes = buffer.bytes.subarray(0, last.information);
      total += bytes.length;
      this.hex?.dump("<", socket.id, bytes);
      options.progress?.add(bytes.length);
      if (options.verify) {
        options.verify.push(bytes);
        // A wrong byte or an overrun ends the check: nothing later can make it pass.
        if (options.verify.mismatch) break;
      }
      if (options.sink) await options.sink(bytes);
      else if (previewBytes < 4096) {
        preview.push(bytes.slice(0, 4096 - previewBytes));
        previewBytes += Math.min(bytes.length, 4096 - previewBytes);
      }
      buffer.received(bytes.length);
    }
    options.progress?.stop();
    const shown = options.show && previewBytes > 0 ? joinBytes(preview, previewBytes) : undefined;
    const mismatch = options.verify && NT_SUCCESS(last.status) ? options.verify.finish() : null;
    if (mismatch) {
      last = { status: STATUS_DATA_ERROR, information: total, message: mismatch.message };
    }
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
      options.expected,
    );
    return { status: last.status, total };
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
function pauseFor(ms: number, signal: AbortSignal): Promise<void> {
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

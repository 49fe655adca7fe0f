/**
 * The listening socket and its dispatch table, `WSK_PROVIDER_LISTEN_DISPATCH`.
 *
 * @module
 */

import {
  type NTSTATUS,
  STATUS_CANCELLED,
  STATUS_INSUFFICIENT_RESOURCES,
  STATUS_INVALID_DEVICE_STATE,
  STATUS_INVALID_HANDLE,
  STATUS_INVALID_PARAMETER,
  STATUS_NOT_SUPPORTED,
  STATUS_REQUEST_NOT_ACCEPTED,
  STATUS_SUCCESS,
} from "./status.ts";
import { type AddressFamily, isSockAddr, type SockAddr } from "./address.ts";
import {
  SO_KEEPALIVE,
  SO_WSK_EVENT_CALLBACK,
  SOL_SOCKET,
  WSK_EVENT_ACCEPT,
  WSK_EVENT_DISCONNECT,
  WSK_EVENT_RECEIVE,
  WSK_EVENT_SEND_BACKLOG,
  type WskClientConnectionDispatch,
  type WskCompletion,
  type WskControlSocketType,
  WskGetOption,
  WskIoctl,
  type WskIrp,
  WskSetOption,
} from "./types.ts";
import {
  chooseBacking,
  type ConnectionBacking,
  listenDeno,
  type ListenerBacking,
  listenNode,
  loadBacking,
} from "./_backing.ts";
import { checkIrp, failure, hostFailure, PendingCall, socketGuard, success } from "./_irp.ts";
import {
  basicMembers,
  type ControlInput,
  isCompletion,
  parseEventRequest,
  readUlong,
  unsupportedIoctl,
  unsupportedOption,
  writeUnsigned,
  type WskSocketBasicDispatch,
} from "./_control.ts";
import {
  adoptAcceptedSocket,
  allocateSocketId,
  type BackingPreference,
  checkFlags,
  newAcceptedSocket,
  type WskConnectionSocket,
} from "./connection.ts";

/** States of a listening socket: created, bound and listening, closed. */
export type ListenState = "INIT" | "LISTENING" | "CLOSED";

/** What WskAcceptEvent may return: a status, or a status with the new socket's context. */
export type WskAcceptEventResult = NTSTATUS | {
  readonly status: NTSTATUS;
  readonly context?: unknown;
  readonly dispatch?: WskClientConnectionDispatch | null;
};

/** WSK_CLIENT_LISTEN_DISPATCH. Only WskAcceptEvent is modelled (no conditional accept). */
export interface WskClientListenDispatch {
  /**
   * A connection was accepted while no WskAccept was waiting. `acceptSocket` is null when the
   * listening socket died. Return STATUS_SUCCESS to take the socket (optionally with its
   * context and callbacks) or STATUS_REQUEST_NOT_ACCEPTED to have the provider close it.
   */
  readonly WskAcceptEvent?: (
    socketContext: unknown,
    flags: number,
    localAddress: SockAddr,
    remoteAddress: SockAddr,
    acceptSocket: WskConnectionSocket | null,
  ) => WskAcceptEventResult;
  /**
   * Model extension (not in WSK): with the accept event on and no WskAccept waiting, the host
   * could not accept a connection for lack of resources (out of file descriptors: EMFILE,
   * ENFILE, ENOBUFS, ENOMEM), completed as STATUS_INSUFFICIENT_RESOURCES. The provider keeps
   * listening and tries again after a pause that grows from 10 ms to 1 s (its message says how
   * long); the connection waits in the kernel's backlog meanwhile.
   */
  readonly WskAcceptFailed?: (socketContext: unknown, completion: WskCompletion) => void;
}

/** The completion of WskAccept: the new socket and both addresses on success. */
export interface WskAcceptCompletion extends WskCompletion {
  /** The accepted, connected socket (`Irp->IoStatus.Information` in C). */
  readonly socket?: WskConnectionSocket;
  /** The local address of the new connection. */
  readonly localAddress?: SockAddr;
  /** The peer's address. */
  readonly remoteAddress?: SockAddr;
}

/** Options of a listening socket, given to WskSocket. */
export interface WskListenOptions {
  /** The kernel's accept backlog (`listen(2)`); Deno's default is 511. */
  readonly backlog?: number;
  /**
   * Which host listener serves the socket. `"node"`: a `node:net` Server
   * (`allowHalfOpen`, `pauseOnConnect`) whose accepted sockets are node-backed, so an abortive
   * WskDisconnect or a WskCloseSocket of a live connection sends a real RST. `"deno"`:
   * `Deno.listen`, whose accepted sockets read faster and send RST only with `--allow-ffi`
   * (without it their aborts close with FIN). `"auto"`: node when `abortive` is set and
   * `--allow-ffi` is not granted, else deno.
   *
   * @default {"auto"}
   */
  readonly backing?: BackingPreference;
  /**
   * The client may disconnect accepted sockets abortively, so `"auto"` picks the node backing,
   * whose accepted sockets can send RST (as `abortive` does for a connection socket).
   *
   * @default {false}
   */
  readonly abortive?: boolean;
}

interface AcceptRequest {
  readonly call: PendingCall<WskAcceptCompletion>;
  readonly context: unknown;
  readonly dispatch: WskClientConnectionDispatch | null;
}

const LISTEN_EVENTS = WSK_EVENT_ACCEPT | WSK_EVENT_RECEIVE | WSK_EVENT_DISCONNECT |
  WSK_EVENT_SEND_BACKLOG;
const INHERITED_EVENTS = WSK_EVENT_RECEIVE | WSK_EVENT_DISCONNECT | WSK_EVENT_SEND_BACKLOG;
/** Connections the model holds for a later WskAccept before it stops accepting. */
const HELD_LIMIT = 1024;
/** The first pause after a host accept failed for lack of resources; it doubles each time. */
const RETRY_FIRST_MS = 10;
/** The longest pause between accepts while resources stay short. */
const RETRY_MAX_MS = 1000;

/** Creates a listening socket, as WskSocket does (internal to provider/). */
export let newListenSocket: (
  family: AddressFamily,
  context: unknown,
  dispatch: WskClientListenDispatch | null,
  options: WskListenOptions,
) => WskListenSocket;

/** The one listen dispatch table every listening socket points at. */
export let WSK_PROVIDER_LISTEN_DISPATCH: WskProviderListenDispatch;

/**
 * A listening WSK socket. WskBind starts listening; WskAccept (or WskAcceptEvent) hands out
 * connection sockets.
 *
 * @example Accept one connection
 * ```ts
 * import assert from "node:assert/strict";
 * import { WskCaptureProviderNPI } from "./provider.ts";
 * import { parseSockAddr } from "./address.ts";
 * import { AF_INET } from "./address.ts";
 * import { IPPROTO_TCP, SOCK_STREAM, WSK_FLAG_LISTEN_SOCKET } from "./types.ts";
 * import { STATUS_SUCCESS } from "./status.ts";
 *
 * const { Client, Dispatch } = WskCaptureProviderNPI();
 * const created = await Dispatch.WskSocket(
 *   Client, AF_INET, SOCK_STREAM, IPPROTO_TCP, WSK_FLAG_LISTEN_SOCKET,
 * );
 * const listener = created.listenSocket!;
 * await listener.Dispatch.WskBind(listener, parseSockAddr("127.0.0.1:0"));
 * const local = await listener.Dispatch.WskGetLocalAddress(listener);
 * const accepting = listener.Dispatch.WskAccept(listener);
 * using client = await Deno.connect({ hostname: "127.0.0.1", port: local.address!.port });
 * const accepted = await accepting;
 * assert.equal(accepted.status, STATUS_SUCCESS);
 * assert.equal(accepted.remoteAddress!.port, client.localAddr.port);
 * await accepted.socket!.Dispatch.WskCloseSocket(accepted.socket!);
 * await listener.Dispatch.WskCloseSocket(listener);
 * ```
 */
export class WskListenSocket {
  /** A number that names this socket within the process. */
  readonly id: number = allocateSocketId();
  /** The address family given at creation. */
  readonly family: AddressFamily;
  /** The client's context for this listening socket. */
  readonly context: unknown;
  #dispatch: WskClientListenDispatch | null;
  #options: WskListenOptions;
  #state: ListenState = "INIT";
  #listener: ListenerBacking | null = null;
  #binding = false;
  #local: SockAddr | null = null;
  #accepts: AcceptRequest[] = [];
  #held: ConnectionBacking[] = [];
  #looping = false;
  #loopDone: Promise<void> = Promise.resolve();
  #events = 0;
  #keepAlive = false;
  /** The current pause after a resource shortage (0: the last accept succeeded). */
  #retryMs = 0;
  /** No host accept before this time (`performance.now()`), after a resource shortage. */
  #retryAt = 0;
  /** Ends the pause early (the socket is closing). */
  #wakeRetry: (() => void) | null = null;

  private constructor(
    family: AddressFamily,
    context: unknown,
    dispatch: WskClientListenDispatch | null,
    options: WskListenOptions,
  ) {
    this.family = family;
    this.context = context;
    this.#dispatch = dispatch;
    this.#options = options;
  }

  /** The provider's function table for this socket. */
  get Dispatch(): WskProviderListenDispatch {
    return WSK_PROVIDER_LISTEN_DISPATCH;
  }

  /** The address it listens on (with the kernel's port), or null before WskBind. */
  get localAddress(): SockAddr | null {
    return this.#local;
  }

  /** The socket's state. */
  get state(): ListenState {
    return this.#state;
  }

  /**
   * Loads what this socket's WskBind needs from the host (node:net for a node-backed
   * listener), so that a client timing the call times the call alone. Model-only, not a WSK
   * call; resolves at once once the socket listens.
   */
  prepare(): Promise<void> {
    return this.#state === "INIT" ? loadBacking(this.#backingKind()) : Promise.resolve();
  }

  /** Closes the socket if it is still open (for `await using`). */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#state !== "CLOSED") await this.#close();
  }

  #refuse(allowed: ListenState, call: string): WskCompletion | null {
    if (this.#state === allowed) return null;
    if (this.#state === "CLOSED") {
      return failure(STATUS_INVALID_HANDLE, `${call} on a closed socket`);
    }
    return failure(STATUS_INVALID_DEVICE_STATE, `${call} is not valid in state ${this.#state}`);
  }

  async #bind(address: SockAddr, flags: number, irp: WskIrp | undefined): Promise<WskCompletion> {
    const bad = this.#refuse("INIT", "WskBind") ?? checkIrp(irp) ?? checkFlags(flags, 0, "WskBind");
    if (bad) return bad;
    if (this.#binding) {
      return failure(STATUS_INVALID_DEVICE_STATE, "WskBind is already in progress");
    }
    if (!isSockAddr(address) || address.family !== this.family) {
      return failure(
        STATUS_INVALID_PARAMETER,
        "The local address is not a SOCKADDR of the socket's family",
      );
    }
    const backlog = this.#options.backlog;
    const request = { local: address, ...(backlog === undefined ? {} : { backlog }) };
    let listener: ListenerBacking;
    this.#binding = true;
    try {
      listener = this.#backingKind() === "node" ? await listenNode(request) : listenDeno(request);
    } catch (error) {
      return hostFailure(error, `Listen on ${address.address} port ${address.port}`);
    } finally {
      this.#binding = false;
    }
    if (this.#state !== "INIT") {
      // Closed while node:net was starting to listen.
      listener.close();
      return this.#refuse("INIT", "WskBind")!;
    }
    this.#listener = listener;
    this.#local = listener.localAddress;
    this.#state = "LISTENING";
    return success();
  }

  /**
   * The host listener `backing` and `abortive` ask for: node can always reset, deno reads
   * faster and can reset too when `--allow-ffi` is granted.
   */
  #backingKind(): "node" | "deno" {
    return chooseBacking(this.#options.backing, { abortive: this.#options.abortive === true });
  }

  #accept(
    flags: number,
    context: unknown,
    dispatch: WskClientConnectionDispatch | null,
    irp: WskIrp | undefined,
  ): Promise<WskAcceptCompletion> {
    const bad = this.#refuse("LISTENING", "WskAccept") ?? checkIrp(irp) ??
      checkFlags(flags, 0, "WskAccept");
    if (bad) return Promise.resolve(bad);
    const call = new PendingCall<WskAcceptCompletion>(irp);
    if (call.done) return call.promise;
    const held = this.#held.shift();
    if (held !== undefined) {
      call.complete(this.#accepted(held, context, dispatch, 0));
      return call.promise;
    }
    this.#accepts.push({ call, context, dispatch });
    this.#loop();
    return call.promise;
  }

  #accepted(
    backing: ConnectionBacking,
    context: unknown,
    dispatch: WskClientConnectionDispatch | null,
    events: number,
  ): WskAcceptCompletion {
    const socket = newAcceptedSocket({
      backing,
      context,
      dispatch,
      events,
      keepAlive: this.#keepAlive,
    });
    return {
      ...success(),
      socket,
      localAddress: backing.localAddress,
      remoteAddress: backing.remoteAddress,
    };
  }

  #wantsConnections(): boolean {
    this.#accepts = this.#accepts.filter((request) => !request.call.done);
    if (this.#accepts.length > 0) return true;
    return (this.#events & WSK_EVENT_ACCEPT) !== 0 && this.#held.length < HELD_LIMIT;
  }

  /**
   * The one accepting loop. It runs while a WskAccept waits or the accept event is on, and
   * stops when the socket closes. A connection nobody asked for any more (its WskAccept was
   * cancelled meanwhile) is held for the next WskAccept rather than dropped.
   */
  #loop(): void {
    // The flag is set and cleared synchronously, so a WskAccept issued the moment the loop
    // ends always finds it clear and starts a new loop.
    if (this.#looping) return;
    this.#looping = true;
    this.#loopDone = this.#acceptLoop();
  }

  async #acceptLoop(): Promise<void> {
    try {
      while (this.#state === "LISTENING" && this.#wantsConnections()) {
        await this.#waitRetry();
        if (this.#state !== "LISTENING" || !this.#wantsConnections()) break;
        let conn: ConnectionBacking;
        try {
          conn = await this.#listener!.accept();
        } catch (error) {
          if (this.#state !== "LISTENING") return;
          const mapped = hostFailure(error, "Accept");
          if (mapped.status === STATUS_INSUFFICIENT_RESOURCES) {
            this.#shortage(mapped);
            continue;
          }
          for (const request of this.#accepts) request.call.complete(mapped);
          this.#accepts = [];
          return;
        }
        this.#retryMs = 0;
        this.#deliver(conn);
      }
    } finally {
      this.#looping = false;
    }
  }

  /**
   * The host could not accept for lack of resources (no file descriptor free): the listener
   * stays, the connection waits in the kernel's backlog. The failure goes to the waiting
   * WskAccept calls, or else to WskAcceptFailed, and the next host accept waits a pause that
   * doubles from 10 ms up to 1 s and starts again at 10 ms after an accept succeeds, so a
   * client that issues WskAccept again at once sees one failure per pause, not a busy loop.
   */
  #shortage(mapped: WskCompletion): void {
    this.#retryMs = this.#retryMs === 0
      ? RETRY_FIRST_MS
      : Math.min(this.#retryMs * 2, RETRY_MAX_MS);
    this.#retryAt = performance.now() + this.#retryMs;
    const completion = {
      ...mapped,
      message: `${mapped.message}; accepting again in ${this.#retryMs} ms`,
    };
    const waiting = this.#accepts.filter((request) => !request.call.done);
    this.#accepts = [];
    for (const request of waiting) request.call.complete(completion);
    const callback = this.#dispatch?.WskAcceptFailed;
    if (waiting.length > 0 || (this.#events & WSK_EVENT_ACCEPT) === 0 || !callback) return;
    try {
      callback(this.context, completion);
    } catch {
      // The client's callback failed: the provider goes on listening regardless.
    }
  }

  /** Waits out the pause after a resource shortage; the socket's close ends it early. */
  async #waitRetry(): Promise<void> {
    const wait = this.#retryAt - performance.now();
    if (wait <= 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, wait);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wakeRetry = done;
    });
    this.#wakeRetry = null;
  }

  #deliver(conn: ConnectionBacking): void {
    if (this.#state !== "LISTENING") {
      conn.close();
      return;
    }
    for (;;) {
      const request = this.#accepts.shift();
      if (request === undefined) break;
      if (request.call.done) continue;
      request.call.complete(this.#accepted(conn, request.context, request.dispatch, 0));
      return;
    }
    const callback = this.#dispatch?.WskAcceptEvent;
    if ((this.#events & WSK_EVENT_ACCEPT) !== 0 && callback !== undefined) {
      const accepted = this.#accepted(conn, undefined, null, 0);
      const socket = accepted.socket!;
      let result: WskAcceptEventResult;
      try {
        result = callback(this.context, 0, accepted.localAddress!, accepted.remoteAddress!, socket);
      } catch {
        result = STATUS_REQUEST_NOT_ACCEPTED;
      }
      const status = typeof result === "number" ? result : result.status;
      if (status !== STATUS_SUCCESS) {
        void socket.Dispatch.WskCloseSocket(socket);
        return;
      }
      if (typeof result !== "number") {
        adoptAcceptedSocket(
          socket,
          result.context,
          result.dispatch ?? null,
          this.#events & INHERITED_EVENTS,
        );
      }
      return;
    }
    this.#held.push(conn);
  }

  #getLocalAddress(irp: WskIrp | undefined): WskCompletion & { address?: SockAddr } {
    const bad = this.#refuse("LISTENING", "WskGetLocalAddress") ?? checkIrp(irp);
    if (bad) return bad;
    return { ...success(), address: this.#local! };
  }

  #control(
    requestType: WskControlSocketType,
    controlCode: number,
    level: number,
    input: ControlInput,
    output: Uint8Array | null | undefined,
    irp: WskIrp | undefined,
  ): WskCompletion {
    if (this.#state === "CLOSED") {
      return failure(STATUS_INVALID_HANDLE, "WskControlSocket on a closed socket");
    }
    const bad = checkIrp(irp);
    if (bad) return bad;
    const code = controlCode >>> 0;
    if (requestType === WskIoctl) {
      const unsupported = unsupportedIoctl(code);
      return unsupported
        ? failure(STATUS_NOT_SUPPORTED, `Not supported: ${unsupported}`)
        : failure(STATUS_INVALID_PARAMETER, `Unknown IOCTL 0x${code.toString(16)}`);
    }
    if (requestType !== WskSetOption && requestType !== WskGetOption) {
      return failure(STATUS_INVALID_PARAMETER, `Unknown request type ${String(requestType)}`);
    }
    if (level === SOL_SOCKET && code === SO_WSK_EVENT_CALLBACK && requestType === WskSetOption) {
      const request = parseEventRequest(input, LISTEN_EVENTS);
      if (isCompletion(request)) return request;
      const refused = this.#refuse("LISTENING", "Enabling events");
      if (refused) return refused;
      if (request.disable) {
        if ((request.events & INHERITED_EVENTS) !== 0) {
          return failure(
            STATUS_INVALID_PARAMETER,
            "Connection events enabled on a listening socket cannot be disabled",
          );
        }
        this.#events &= ~request.events;
        return success();
      }
      if (irp !== undefined) {
        return failure(STATUS_INVALID_PARAMETER, "Enabling event callbacks takes no IRP");
      }
      if ((request.events & WSK_EVENT_ACCEPT) !== 0 && !this.#dispatch?.WskAcceptEvent) {
        return failure(STATUS_INVALID_PARAMETER, "No WskAcceptEvent callback was given");
      }
      this.#events |= request.events;
      // Held connections go to the newly enabled callback first.
      if ((request.events & WSK_EVENT_ACCEPT) !== 0) {
        const held = this.#held;
        this.#held = [];
        for (const conn of held) this.#deliver(conn);
        this.#loop();
      }
      return success();
    }
    if (level === SOL_SOCKET && code === SO_KEEPALIVE) {
      // Accepted sockets inherit the listener's keep-alive setting (applied at accept).
      if (requestType === WskGetOption) {
        const written = writeUnsigned(output, this.#keepAlive ? 1 : 0, 4);
        return isCompletion(written) ? written : success(written);
      }
      const value = readUlong(input);
      if (isCompletion(value)) return value;
      this.#keepAlive = value !== 0;
      return success();
    }
    const unsupported = unsupportedOption(level, code);
    if (unsupported) return failure(STATUS_NOT_SUPPORTED, `Not supported: ${unsupported}`);
    return failure(
      STATUS_INVALID_PARAMETER,
      `Unknown option 0x${code.toString(16)} at level 0x${(level >>> 0).toString(16)}`,
    );
  }

  async #close(): Promise<WskCompletion> {
    if (this.#state === "CLOSED") {
      return failure(STATUS_INVALID_HANDLE, "WskCloseSocket on a closed socket");
    }
    this.#state = "CLOSED";
    this.#wakeRetry?.();
    for (const request of this.#accepts) {
      request.call.complete(failure(STATUS_CANCELLED, "The socket was closed"));
    }
    this.#accepts = [];
    for (const conn of this.#held) conn.close();
    this.#held = [];
    try {
      this.#listener?.close();
    } catch {
      // Already closed.
    }
    // Deno releases the listening socket only once a pending accept() has been called off, so
    // wait for the accepting loop to end: after the close completes, connects are refused.
    await this.#loopDone;
    return success();
  }

  static {
    newListenSocket = (family, context, dispatch, options) =>
      new WskListenSocket(family, context, dispatch, options);

    const withListen = socketGuard(
      (socket): socket is WskListenSocket =>
        typeof socket === "object" && socket !== null && #state in socket,
      "The socket argument is not a listening socket",
    );

    const table: WskProviderListenDispatch = {
      ...basicMembers(withListen, (s, ...args) => s.#control(...args), (s) => s.#close()),
      WskBind(socket, localAddress, flags = 0, irp) {
        return withListen(socket, (s) => s.#bind(localAddress, flags, irp));
      },
      WskAccept(socket, flags = 0, context, dispatch = null, irp) {
        return withListen(socket, (s) => s.#accept(flags, context, dispatch, irp));
      },
      WskInspectComplete(_socket, ..._args) {
        return Promise.resolve(
          failure(
            STATUS_NOT_SUPPORTED,
            "Conditional accept (SO_CONDITIONAL_ACCEPT) is not modelled",
          ),
        );
      },
      WskGetLocalAddress(socket, irp) {
        return withListen(socket, (s) => Promise.resolve(s.#getLocalAddress(irp)));
      },
    };
    WSK_PROVIDER_LISTEN_DISPATCH = Object.freeze(table);
  }
}

/**
 * WSK_PROVIDER_LISTEN_DISPATCH, in C member order (the Basic members first). Its
 * WskControlSocket sets or gets SO_WSK_EVENT_CALLBACK for WskAcceptEvent, other options and
 * IOCTLs; its WskCloseSocket stops listening, and pending WskAccept calls complete with
 * STATUS_CANCELLED.
 */
export interface WskProviderListenDispatch extends WskSocketBasicDispatch<WskListenSocket> {
  /** Binds and starts listening. */
  WskBind(
    socket: WskListenSocket,
    localAddress: SockAddr,
    flags?: number,
    irp?: WskIrp,
  ): Promise<WskCompletion>;
  /**
   * Waits for a connection and returns it as a connection socket. When the host is out of file
   * descriptors it completes with STATUS_INSUFFICIENT_RESOURCES and the socket keeps listening;
   * the next host accept waits a growing pause (10 ms to 1 s).
   */
  WskAccept(
    socket: WskListenSocket,
    flags?: number,
    acceptSocketContext?: unknown,
    acceptSocketDispatch?: WskClientConnectionDispatch | null,
    irp?: WskIrp,
  ): Promise<WskAcceptCompletion>;
  /** Conditional accept is not modelled: always STATUS_NOT_SUPPORTED. */
  WskInspectComplete(socket: WskListenSocket, ...args: unknown[]): Promise<WskCompletion>;
  /** The address the socket listens on, with the kernel's port. */
  WskGetLocalAddress(
    socket: WskListenSocket,
    irp?: WskIrp,
  ): Promise<WskCompletion & { address?: SockAddr }>;
}

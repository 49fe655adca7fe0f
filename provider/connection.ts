/**
 * The connection-oriented socket and its dispatch table, `WSK_PROVIDER_CONNECTION_DISPATCH`.
 *
 * @module
 */

import {
  type NTSTATUS,
  STATUS_BUFFER_OVERFLOW,
  STATUS_CANCELLED,
  STATUS_CONNECTION_ABORTED,
  STATUS_CONNECTION_RESET,
  STATUS_DATA_NOT_ACCEPTED,
  STATUS_FILE_FORCED_CLOSED,
  STATUS_INVALID_ADDRESS,
  STATUS_INVALID_DEVICE_STATE,
  STATUS_INVALID_HANDLE,
  STATUS_INVALID_PARAMETER,
  STATUS_NOT_SUPPORTED,
  STATUS_PENDING,
  STATUS_SUCCESS,
} from "./status.ts";
import {
  type AddressFamily,
  AF_INET,
  formatSockAddr,
  isSockAddr,
  isWildcard,
  loopback,
  type SockAddr,
  wildcard,
} from "./address.ts";
import {
  IPPROTO_TCP,
  SIO_WSK_QUERY_IDEAL_SEND_BACKLOG,
  SIO_WSK_QUERY_RECEIVE_BACKLOG,
  SO_KEEPALIVE,
  SO_WSK_EVENT_CALLBACK,
  SOL_SOCKET,
  TCP_NODELAY,
  WSK_EVENT_DISCONNECT,
  WSK_EVENT_RECEIVE,
  WSK_EVENT_SEND_BACKLOG,
  WSK_FLAG_ABORTIVE,
  WSK_FLAG_DRAIN,
  WSK_FLAG_NODELAY,
  WSK_FLAG_OOB,
  WSK_FLAG_WAITALL,
  type WskAddressCompletion,
  type WskBuf,
  type WskClientConnectionDispatch,
  type WskCompletion,
  type WskControlSocketType,
  type WskDataIndication,
  WskGetOption,
  WskIoctl,
  type WskIrp,
  WskSetOption,
} from "./types.ts";
import {
  type BackingKind,
  type BackingPreference,
  chooseBacking,
  connectDeno,
  type ConnectionBacking,
  connectNode,
  loadBacking,
} from "./_backing.ts";
import {
  checkIrp,
  failure,
  hostFailure,
  PendingCall,
  type SocketGuard,
  socketGuard,
  success,
} from "./_irp.ts";
import { segmentsOf } from "./_buffers.ts";
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
import { statusFromError } from "./_errors.ts";
import { loadTls, tlsStatusFromError, warmTls } from "./_tls.ts";
import type { TlsOptions, WskTlsCompletion } from "./tls.ts";
import { probeBind } from "./_probe.ts";

/**
 * The states of a connection socket (wsk-semantics §2.1).
 *
 * LFIN: we sent FIN; RFIN: the peer sent FIN; BOTHFIN: both did. FAILED: a connect failed
 * (terminal but for options and close). DEAD: the provider gave up on the socket.
 */
export type ConnectionState =
  | "INIT"
  | "BOUND"
  | "CONNECTING"
  | "ESTAB"
  | "LFIN"
  | "RFIN"
  | "BOTHFIN"
  | "ABORTED"
  | "FAILED"
  | "DEAD"
  | "CLOSED";

/** Which host socket a connection uses: see the README's "Backing" section. */
export type { BackingPreference };

/** What the peer was sent when this side aborted a connection: see `peerSaw`. */
export type Teardown = "RST" | "FIN";

/** Model-only choices made when a socket is created. */
export interface WskSocketOptions {
  /**
   * `"deno"`: Deno.connect (fastest receive; cannot bind a source address; sends RST only with
   * `--allow-ffi`, else its aborts close with FIN). `"node"`: node:net (honours every call).
   * `"auto"` (default): Deno unless the socket is bound to a specific address or port, or
   * `abortive` is set and `--allow-ffi` is not granted.
   */
  readonly backing?: BackingPreference;
  /** The client may disconnect abortively, so `"auto"` picks a backing that can send RST here. */
  readonly abortive?: boolean;
}

/** How many bytes the model buffers for events before it stops reading (TCP pushes back). */
const STASH_LIMIT = 1 << 20;
/** Read size when the model reads on its own account (events, or data ahead of a receive). */
const EVENT_READ_SIZE = 64 * 1024;
/** Most the model reads at once into its own buffer (cancellable receives, WSK_FLAG_DRAIN). */
const STAGE_READ_SIZE = 256 * 1024;
/** The model's ideal send backlog (SIO_WSK_QUERY_IDEAL_SEND_BACKLOG, WskSendBacklogEvent). */
export const IDEAL_SEND_BACKLOG = 256 * 1024;

const CONNECTED: ReadonlySet<ConnectionState> = new Set(["ESTAB", "LFIN", "RFIN", "BOTHFIN"]);
const CONNECTION_EVENTS = WSK_EVENT_RECEIVE | WSK_EVENT_DISCONNECT | WSK_EVENT_SEND_BACKLOG;

interface ReceiveRequest {
  readonly call: PendingCall;
  readonly parts: Uint8Array[];
  readonly length: number;
  readonly flags: number;
  filled: number;
}

interface SendRequest {
  readonly call: PendingCall;
  readonly parts: Uint8Array[];
  readonly flags: number;
  started: boolean;
}

let nextSocketId = 1;
/** Set while the provider makes a socket of its own, which takes no id from the clients' count. */
let makingOwnSocket = false;

/** Hands out socket ids; shared with listening sockets so ids are unique within a process. */
export function allocateSocketId(): number {
  return nextSocketId++;
}

/** What an accepted socket starts with. */
export interface AcceptedInit {
  readonly backing: ConnectionBacking;
  readonly context: unknown;
  readonly dispatch: WskClientConnectionDispatch | null;
  readonly events: number;
  /** SO_KEEPALIVE inherited from the listening socket. */
  readonly keepAlive: boolean;
}

/** Creates the socket WskAccept and WskAcceptEvent deliver (internal to provider/). */
export let newAcceptedSocket: (init: AcceptedInit) => WskConnectionSocket;

/** Gives a socket delivered by WskAcceptEvent the context and callbacks the client chose. */
export let adoptAcceptedSocket: (
  socket: WskConnectionSocket,
  context: unknown,
  dispatch: WskClientConnectionDispatch | null,
  events: number,
) => void;

/** Creates an unbound socket, as WskSocket does (internal to provider/). */
export let newConnectionSocket: (
  family: AddressFamily,
  context: unknown,
  dispatch: WskClientConnectionDispatch | null,
  options: WskSocketOptions,
) => WskConnectionSocket;

let withSocket: SocketGuard<WskConnectionSocket>;

/**
 * The one connection dispatch table every connection socket points at.
 *
 * @example The reserved members answer STATUS_NOT_SUPPORTED
 * ```ts
 * import assert from "node:assert/strict";
 * import { WSK_PROVIDER_CONNECTION_DISPATCH } from "./connection.ts";
 * import { STATUS_INVALID_HANDLE } from "./status.ts";
 *
 * // Anything that is not a connection socket is refused with a status, not an exception.
 * const c = await WSK_PROVIDER_CONNECTION_DISPATCH.WskGetLocalAddress({} as never);
 * assert.equal(c.status, STATUS_INVALID_HANDLE);
 * ```
 */
export let WSK_PROVIDER_CONNECTION_DISPATCH: WskProviderConnectionDispatch;

/**
 * A connection-oriented WSK socket. Get one from WskSocket, WskSocketConnect, WskAccept or
 * WskAcceptEvent; call it through its {@linkcode WskConnectionSocket.Dispatch} table, passing
 * the socket as the first argument as the C API does.
 *
 * @example Walk one socket through its life against a local listener
 * ```ts
 * import assert from "node:assert/strict";
 * import { WskCaptureProviderNPI } from "./provider.ts";
 * import { STATUS_SUCCESS } from "./status.ts";
 * import { parseSockAddr } from "./address.ts";
 * import {
 *   AF_INET, IPPROTO_TCP, SOCK_STREAM, WSK_FLAG_CONNECTION_SOCKET, wskBuf,
 * } from "./mod.ts";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const { Client, Dispatch: provider } = WskCaptureProviderNPI();
 * const created = await provider.WskSocket(
 *   Client, AF_INET, SOCK_STREAM, IPPROTO_TCP, WSK_FLAG_CONNECTION_SOCKET,
 * );
 * const socket = created.socket!;
 * await socket.Dispatch.WskBind(socket, parseSockAddr("127.0.0.1:0"));
 * const connect = socket.Dispatch.WskConnect(
 *   socket, parseSockAddr(`127.0.0.1:${listener.addr.port}`),
 * );
 * using peer = await listener.accept();
 * assert.equal((await connect).status, STATUS_SUCCESS);
 * const sent = await socket.Dispatch.WskSend(socket, wskBuf(new Uint8Array([1, 2, 3])));
 * assert.equal(sent.information, 3);
 * assert.equal(await peer.read(new Uint8Array(8)), 3);
 * await socket.Dispatch.WskCloseSocket(socket);
 * ```
 */
export class WskConnectionSocket {
  static {
    newConnectionSocket = (family, context, dispatch, options) =>
      new WskConnectionSocket(family, context, dispatch, options);
    newAcceptedSocket = (init) => {
      const socket = new WskConnectionSocket(
        init.backing.localAddress.family,
        init.context,
        init.dispatch,
        {},
      );
      socket.#keepAlive = init.keepAlive;
      socket.#attach(init.backing);
      socket.#events = init.events;
      if (init.events !== 0) socket.#afterEventsEnabled(init.events);
      return socket;
    };
    adoptAcceptedSocket = (socket, context, dispatch, events) => {
      socket.#context = context;
      socket.#dispatch = dispatch;
      socket.#events = events;
      if (events !== 0) socket.#afterEventsEnabled(events);
    };
  }

  /** A number that names this socket within the process (0: the provider's own warm-up). */
  readonly id: number = makingOwnSocket ? 0 : allocateSocketId();
  /** The address family given at creation. */
  readonly family: AddressFamily;
  #context: unknown;

  #dispatch: WskClientConnectionDispatch | null;
  #options: WskSocketOptions;
  #state: ConnectionState = "INIT";
  #bound: SockAddr | null = null;
  #bindFixed = false;
  #backing: ConnectionBacking | null = null;
  #local: SockAddr | null = null;
  #remote: SockAddr | null = null;
  #target: SockAddr | null = null;
  #pendingConnect: PendingCall | null = null;
  #abortStatus: NTSTATUS = STATUS_CONNECTION_ABORTED;
  #peerSaw: Teardown | null = null;

  // Receive side.
  #receives: ReceiveRequest[] = [];
  #stash: Uint8Array[] = [];
  #stashBytes = 0;
  #peerFin = false;
  #readFailure: WskCompletion | null = null;
  #servicing = false;
  #readScratch: Uint8Array | null = null;

  // Send side: sends, final data and FIN run in the order they were issued.
  #sendChain: Promise<void> = Promise.resolve();
  #writers = 0;
  #sends = new Set<SendRequest>();
  #pendingDisconnect: PendingCall | null = null;

  // Options and events.
  #noDelay = false;
  #keepAlive = false;
  #events = 0;
  #eventsSuspended = false;
  #held = new Map<WskDataIndication, number>();
  #heldBytes = 0;

  // Counters, for tools that report them.
  #bytesSent = 0;
  #bytesReceived = 0;

  private constructor(
    family: AddressFamily,
    context: unknown,
    dispatch: WskClientConnectionDispatch | null,
    options: WskSocketOptions,
  ) {
    this.family = family;
    this.#context = context;
    this.#dispatch = dispatch;
    this.#options = options;
  }

  /** The client's socket context, passed back to every callback. */
  get context(): unknown {
    return this.#context;
  }

  /** The provider's function table for this socket. */
  get Dispatch(): WskProviderConnectionDispatch {
    return WSK_PROVIDER_CONNECTION_DISPATCH;
  }

  /** The socket's state in the model's state machine. */
  get state(): ConnectionState {
    return this.#state;
  }

  /**
   * The local address as far as the model knows it, without a dispatch call: the kernel's once
   * connected, the bound one before, null before WskBind. For reports and tools.
   */
  get localAddress(): SockAddr | null {
    return this.#local ?? this.#bound;
  }

  /** The peer's address once connected; before that, the target of the last connect attempt. */
  get remoteAddress(): SockAddr | null {
    return this.#remote ?? this.#target;
  }

  /** Which host socket backs this socket once connected, or null before. */
  get backing(): BackingKind | null {
    return this.#backing?.kind ?? null;
  }

  /**
   * What went on the wire when this side aborted the connection (an abortive WskDisconnect,
   * WskCloseSocket of a live connection, a send or disconnect cancelled part-way): `"RST"`, or
   * `"FIN"` where the host could only close (a deno-backed socket without `--allow-ffi`). Null
   * while this side has not aborted it.
   */
  get peerSaw(): Teardown | null {
    return this.#peerSaw;
  }

  /** Bytes handed to the host socket so far. */
  get bytesSent(): number {
    return this.#bytesSent;
  }

  /** Bytes read from the host socket so far. */
  get bytesReceived(): number {
    return this.#bytesReceived;
  }

  /**
   * Loads what this socket's WskConnect or WskConnectEx needs from the host (node:net for a
   * node backing, the host's connect path, libc for resets), so that a client timing the call
   * times the call alone. Model-only, not a WSK call: a connect without it works the same, its
   * first time in a process only includes the loading. Resolves at once on a connected socket.
   *
   * @example Prepare, then time the connect
   * ```ts ignore
   * await socket.prepare();
   * const start = performance.now();
   * await socket.Dispatch.WskConnect(socket, remote);
   * console.log(performance.now() - start);
   * ```
   */
  prepare(): Promise<void> {
    if (this.#state !== "INIT" && this.#state !== "BOUND") return Promise.resolve();
    return warmConnect(this.#chooseBacking(this.#bound ?? wildcard(this.family, 0)));
  }

  /**
   * Loads what a TLS handshake on this socket needs from the host, so that a client timing
   * {@linkcode WskConnectionSocket.startTls} times the handshake alone. For a client, once per
   * process on a connection to itself on 127.0.0.1: node:tls and a ClientHello on a node backing;
   * on a deno backing, one `Deno.startTls` (a process's first builds the root store, 40 to 70 ms).
   * For a server, node:tls is loaded and nothing more. Before the connect it prepares the backing
   * the connect will take. Model-only; a handshake without it works the same.
   *
   * @example
   * ```ts ignore
   * await socket.prepareTls();
   * const done = await socket.startTls({ role: "client", servername: "localhost" });
   * ```
   */
  async prepareTls(role: "client" | "server" = "client"): Promise<void> {
    const before = this.#state === "INIT" || this.#state === "BOUND";
    const kind = this.#backing?.kind ??
      (before ? this.#chooseBacking(this.#bound ?? wildcard(this.family, 0)) : null);
    if (kind === null) return;
    if (role === "client") await warmTls(kind);
    else if (kind === "node") await loadTls();
  }

  /**
   * Runs a TLS handshake on the connection, as a kernel client would run Schannel over its
   * socket (a model extension, not a WSK call). Afterwards WskSend and WskReceive carry
   * plaintext through TLS, and their byte counts are plaintext bytes. Valid on an established
   * connection with nothing pending and no unread bytes (else STATUS_INVALID_DEVICE_STATE). A
   * failed handshake completes with a SECURITY_STATUS (SEC_E_UNTRUSTED_ROOT, …) and leaves the
   * connection aborted.
   *
   * @example Upgrade after a plaintext greeting
   * ```ts ignore
   * const done = await socket.startTls({ role: "client", servername: "localhost", ca: [pem] });
   * if (NT_SUCCESS(done.status)) console.log(done.tls?.protocol);
   * ```
   */
  async startTls(options: TlsOptions, irp?: WskIrp): Promise<WskTlsCompletion> {
    const bad = this.#refuse(STATES_TLS, "TlsHandshake") ?? checkIrp(irp);
    if (bad) return bad;
    const backing = this.#backing;
    // A read ahead for events may be waiting on a node backing (for chunks that then come
    // through TLS); a deno backing's pending host read would hold the TCP resource.
    const reading = this.#servicing && backing?.kind !== "node";
    if (
      backing === null || reading || this.#receives.length > 0 || this.#sends.size > 0 ||
      this.#writers > 0 || this.#stashBytes > 0 || this.#peerFin
    ) {
      return failure(
        STATUS_INVALID_DEVICE_STATE,
        "TlsHandshake needs an open connection with no pending call and no unread bytes",
      );
    }
    const pending = new PendingCall<WskTlsCompletion>(irp);
    pending.onCancel(() => this.#abortLocally("The TLS handshake was cancelled"));
    backing.startTls(options).then(
      (tls) => pending.complete({ ...success(), tls }),
      (error) => {
        const mapped = tlsStatusFromError(error);
        // The host connection is closed: the socket is left aborted, as after a reset.
        if (this.#state !== "CLOSED" && this.#state !== "ABORTED") {
          this.#enterAborted(STATUS_CONNECTION_ABORTED);
          this.#peerSaw = "FIN";
        }
        pending.complete(failure(mapped.status, `TLS handshake: ${mapped.message}`, error));
      },
    );
    return await pending.promise;
  }

  /** Closes the socket if it is still open (for `await using`). */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#state !== "CLOSED") await this.#close();
  }

  // -------------------------------------------------------------------------------------------
  // State checks

  /** The status for a call that is illegal in the current state, or null when it is legal. */
  #refuse(allowed: ReadonlySet<ConnectionState>, call: string): WskCompletion | null {
    const state = this.#state;
    if (allowed.has(state)) return null;
    switch (state) {
      case "CLOSED":
        return failure(STATUS_INVALID_HANDLE, `${call} on a closed socket`);
      case "DEAD":
        return failure(STATUS_FILE_FORCED_CLOSED, `${call} on a dead socket`);
      default:
        return failure(STATUS_INVALID_DEVICE_STATE, `${call} is not valid in state ${state}`);
    }
  }

  /** Send and receive after an abort report who aborted. */
  #refuseData(allowed: ReadonlySet<ConnectionState>, call: string): WskCompletion | null {
    if (this.#state === "ABORTED") {
      return failure(
        this.#abortStatus,
        this.#abortStatus === STATUS_CONNECTION_RESET
          ? `${call} after the peer reset the connection`
          : `${call} after the connection was aborted`,
      );
    }
    return this.#refuse(allowed, call);
  }

  // -------------------------------------------------------------------------------------------
  // WskBind

  async #bind(address: SockAddr, flags: number, irp: WskIrp | undefined): Promise<WskCompletion> {
    const bad = this.#refuse(STATES_INIT, "WskBind") ?? checkIrp(irp) ??
      checkFlags(flags, 0, "WskBind") ?? this.#checkAddress(address, "local");
    if (bad) return bad;
    if (this.#options.backing === "deno" && (!isWildcard(address) || address.port !== 0)) {
      return failure(
        STATUS_NOT_SUPPORTED,
        "The deno backing cannot bind a specific source address or port; use backing node",
      );
    }
    const call = new PendingCall(irp);
    if (!call.done) {
      // A wildcard bind to port 0 is kept as it is: the kernel picks the port when connecting.
      const probed = isWildcard(address) && address.port === 0 ? address.port : probeBind(address);
      if (typeof probed !== "number") call.complete(probed);
      else if (this.#state !== "INIT") call.complete(this.#refuse(STATES_INIT, "WskBind")!);
      else {
        this.#bound = address;
        this.#state = "BOUND";
        call.complete(success());
      }
    }
    return await call.promise;
  }

  #checkAddress(address: unknown, which: string): WskCompletion | null {
    if (!isSockAddr(address)) {
      return failure(STATUS_INVALID_PARAMETER, `The ${which} address is not a SOCKADDR`);
    }
    if (address.family !== this.family) {
      return failure(
        STATUS_INVALID_PARAMETER,
        `The ${which} address is not of the socket's family`,
      );
    }
    return null;
  }

  // -------------------------------------------------------------------------------------------
  // WskConnect / WskConnectEx

  async #connect(
    remote: SockAddr,
    buffer: WskBuf | null,
    flags: number,
    irp: WskIrp | undefined,
    call: string,
  ): Promise<WskCompletion> {
    const bad = this.#refuse(STATES_BOUND, call) ?? checkIrp(irp) ??
      checkFlags(flags, 0, call) ?? this.#checkAddress(remote, "remote");
    if (bad) return bad;
    if (remote.port === 0 || isWildcard(remote)) {
      return failure(STATUS_INVALID_ADDRESS, `Cannot connect to "${formatSockAddr(remote)}"`);
    }
    const first = segmentsOf(buffer);
    if (!first.ok) return failure(STATUS_INVALID_PARAMETER, first.message);
    if (first.length > 65535) {
      return failure(STATUS_BUFFER_OVERFLOW, "WskConnectEx sends at most 65535 bytes");
    }
    const pending = new PendingCall(irp);
    if (pending.done) {
      this.#state = "FAILED";
      return await pending.promise;
    }
    this.#state = "CONNECTING";
    this.#target = remote;
    this.#pendingConnect = pending;
    pending.onCancel(() => {
      if (this.#state === "CONNECTING") this.#state = "FAILED";
    });
    const bound = this.#bound!;
    const kind = this.#chooseBacking(bound);
    const local = kind === "node" && (!isWildcard(bound) || bound.port !== 0) ? bound : undefined;
    let backing: ConnectionBacking;
    try {
      const request = { remote, signal: pending.signal, ...(local ? { local } : {}) };
      backing = kind === "node" ? await connectNode(request) : await connectDeno(request);
    } catch (error) {
      if (this.#state === "CONNECTING") this.#state = "FAILED";
      let mapped = hostFailure(error, `Connect to ${formatSockAddr(remote)}`);
      // ENOTCONN from a connect means the peer accepted and reset before the handshake was
      // reported: that is a reset, not a wrong state of ours.
      if (mapped.status === STATUS_INVALID_DEVICE_STATE) {
        mapped = failure(STATUS_CONNECTION_RESET, mapped.message ?? "Connection reset", error);
      }
      pending.complete(mapped);
      return await pending.promise;
    } finally {
      this.#pendingConnect = null;
    }
    if (pending.done || this.#state !== "CONNECTING") {
      // Cancelled or closed while the handshake finished: the connection is not wanted.
      backing.close();
      return await pending.promise;
    }
    this.#attach(backing);
    if (first.length === 0) {
      pending.complete(success());
      return await pending.promise;
    }
    // WskConnectEx: the first data follows the handshake; information is the bytes sent.
    const sent = await this.#queueSend(first.parts, 0, undefined);
    pending.complete(sent);
    return await pending.promise;
  }

  #chooseBacking(bound: SockAddr): BackingKind {
    return chooseBacking(this.#options.backing, {
      specific: !isWildcard(bound) || bound.port !== 0 || this.#bindFixed,
      abortive: this.#options.abortive === true,
    });
  }

  #attach(backing: ConnectionBacking): void {
    this.#backing = backing;
    this.#local = backing.localAddress;
    this.#remote = backing.remoteAddress;
    this.#state = "ESTAB";
    try {
      if (this.#noDelay) backing.setNoDelay(true);
      if (this.#keepAlive) backing.setKeepAlive(true);
    } catch {
      // Options recorded before the connection are best effort once it exists.
    }
  }

  // -------------------------------------------------------------------------------------------
  // Addresses

  #getLocalAddress(irp: WskIrp | undefined): WskAddressCompletion {
    const bad = this.#refuse(STATES_LOCAL_ADDRESS, "WskGetLocalAddress") ?? checkIrp(irp);
    if (bad) return bad;
    if (this.#local) return { ...success(), address: this.#local };
    const bound = this.#bound!;
    if (bound.port === 0 && this.#state === "BOUND") {
      if (this.#options.backing === "deno") {
        return failure(
          STATUS_NOT_SUPPORTED,
          "The deno backing cannot fix the local port before connecting; use backing node",
        );
      }
      // WSK fixes a TCP port at bind. The host cannot bind without connecting, so the model asks
      // the kernel for a free port now and connects from exactly that port later (node backing).
      const port = probeBind(bound);
      if (typeof port !== "number") return port;
      this.#bound = { ...bound, port };
      this.#bindFixed = true;
    }
    return { ...success(), address: this.#bound! };
  }

  #getRemoteAddress(irp: WskIrp | undefined): WskAddressCompletion {
    const bad = this.#refuse(STATES_REMOTE_ADDRESS, "WskGetRemoteAddress") ?? checkIrp(irp);
    if (bad) return bad;
    return { ...success(), address: this.#remote! };
  }

  // -------------------------------------------------------------------------------------------
  // WskSend

  #send(buffer: WskBuf, flags: number, irp: WskIrp | undefined): Promise<WskCompletion> {
    const bad = this.#refuseData(STATES_SEND, "WskSend") ?? checkIrp(irp) ??
      checkFlags(flags, WSK_FLAG_NODELAY | WSK_FLAG_OOB, "WskSend");
    if (bad) return Promise.resolve(bad);
    if ((flags & WSK_FLAG_OOB) !== 0) {
      return Promise.resolve(failure(STATUS_NOT_SUPPORTED, "WSK_FLAG_OOB is not supported"));
    }
    const segments = segmentsOf(buffer);
    if (!segments.ok) return Promise.resolve(failure(STATUS_INVALID_PARAMETER, segments.message));
    return this.#queueSend(segments.parts, flags, irp);
  }

  #queueSend(parts: Uint8Array[], flags: number, irp: WskIrp | undefined): Promise<WskCompletion> {
    const request: SendRequest = {
      call: new PendingCall(irp),
      parts,
      flags,
      started: false,
    };
    if (request.call.done) return request.call.promise;
    this.#sends.add(request);
    if (request.call.cancellable) {
      request.call.onCancel(() => {
        this.#sends.delete(request);
        // Bytes already handed to TCP cannot be taken back: the stream would be torn, so a
        // send cancelled half-way aborts the connection (RST where the backing can; on a
        // deno backing without --allow-ffi, a close, which also ends the blocked write).
        if (request.started) this.#abortLocally("A send was cancelled part-way");
      });
    }
    this.#enqueueWrite(() => this.#runSend(request));
    return request.call.promise;
  }

  /**
   * Runs a job that writes to the host socket, after every write job issued before it. When
   * nothing is in flight the job starts at once (no promise hop before the first write). Each
   * job calls `#writeDone()` exactly once, before it completes its call, so a call issued from
   * that completion already finds the writer free.
   */
  #enqueueWrite(job: () => Promise<void>): void {
    this.#writers++;
    const guarded = () => job().catch(() => {});
    this.#sendChain = this.#writers === 1 ? guarded() : this.#sendChain.then(guarded);
  }

  #writeDone(): void {
    this.#writers--;
  }

  async #runSend(request: SendRequest): Promise<void> {
    const completion = await this.#writeAll(request);
    this.#sends.delete(request);
    this.#writeDone();
    if (completion !== null) request.call.complete(completion);
  }

  /** Writes every byte of `parts` in order; null when `stop()` turned true part-way. */
  async #writeParts(
    backing: ConnectionBacking,
    parts: Uint8Array[],
    stop: () => boolean,
  ): Promise<number | null> {
    let sent = 0;
    for (const part of parts) {
      let offset = 0;
      while (offset < part.length) {
        if (stop()) return null;
        const n = await backing.write(offset === 0 ? part : part.subarray(offset));
        offset += n;
        sent += n;
        this.#bytesSent += n;
      }
    }
    return sent;
  }

  /** Writes a send request; null when its call already completed (cancelled). */
  async #writeAll(request: SendRequest): Promise<WskCompletion | null> {
    if (request.call.done) return null;
    const backing = this.#backing;
    if (this.#state === "ABORTED" || backing === null) {
      return this.#refuseData(STATES_NONE, "WskSend")!;
    }
    request.started = true;
    const push = (request.flags & WSK_FLAG_NODELAY) !== 0 && !this.#noDelay;
    let sent: number | null;
    try {
      sent = await this.#writeParts(backing, request.parts, () => request.call.done);
      // Setting TCP_NODELAY makes Linux push out whatever Nagle is holding back.
      if (push && sent !== null) {
        backing.setNoDelay(true);
        backing.setNoDelay(false);
      }
    } catch (error) {
      return request.call.done ? null : this.#dataFailure(error, "Send");
    }
    if (sent === null) return null;
    return success(sent);
  }

  /** Maps a host error on the data path, moving the socket to ABORTED when the peer reset. */
  #dataFailure(error: unknown, what: string): WskCompletion {
    if (this.#state === "CLOSED") return failure(STATUS_CANCELLED, "The socket was closed");
    if (this.#state === "ABORTED") return this.#refuseData(STATES_NONE, what)!;
    let mapped = hostFailure(error, what);
    // A write failing with EPIPE while we have not shut our side means the peer's reset won.
    if (error instanceof Deno.errors.BrokenPipe || mapped.status === STATUS_INVALID_DEVICE_STATE) {
      mapped = failure(STATUS_CONNECTION_RESET, `${what}: the peer reset the connection`, error);
    }
    this.#enterAborted(
      mapped.status === STATUS_CONNECTION_RESET ? STATUS_CONNECTION_RESET : mapped.status,
    );
    this.#fireDisconnectEvent(WSK_FLAG_ABORTIVE);
    return mapped;
  }

  // -------------------------------------------------------------------------------------------
  // WskReceive

  #receive(buffer: WskBuf, flags: number, irp: WskIrp | undefined): Promise<WskCompletion> {
    const bad = this.#refuseData(STATES_RECEIVE, "WskReceive") ?? checkIrp(irp) ??
      checkFlags(flags, WSK_FLAG_WAITALL | WSK_FLAG_DRAIN, "WskReceive");
    if (bad) return Promise.resolve(bad);
    if ((flags & WSK_FLAG_WAITALL) !== 0 && (flags & WSK_FLAG_DRAIN) !== 0) {
      return Promise.resolve(
        failure(STATUS_INVALID_PARAMETER, "WSK_FLAG_WAITALL and WSK_FLAG_DRAIN exclude each other"),
      );
    }
    const segments = segmentsOf(buffer);
    if (!segments.ok) return Promise.resolve(failure(STATUS_INVALID_PARAMETER, segments.message));
    if ((flags & WSK_FLAG_DRAIN) !== 0 && segments.length !== 0) {
      return Promise.resolve(failure(STATUS_INVALID_PARAMETER, "WSK_FLAG_DRAIN needs Length 0"));
    }
    const request: ReceiveRequest = {
      call: new PendingCall(irp),
      parts: segments.parts,
      length: segments.length,
      flags,
      filled: 0,
    };
    if (request.call.done) return request.call.promise;
    this.#receives.push(request);
    if (request.call.cancellable) {
      request.call.onCancel(() => {
        // Bytes a WAITALL receive already took go back to the front of the stream, so the
        // next receive gets them. The request stays queued until the service loop skips it; a
        // host read in flight for it lands in the model's buffer and is kept the same way.
        if (request.filled > 0) {
          const taken = new Uint8Array(request.filled);
          let offset = 0;
          for (const part of request.parts) {
            if (offset >= taken.length) break;
            const n = Math.min(part.length, taken.length - offset);
            taken.set(part.subarray(0, n), offset);
            offset += n;
          }
          this.#stash.unshift(taken);
          this.#stashBytes += taken.length;
        }
        void this.#service();
      });
    }
    // Data read ahead (for events) completes the receive now: the service loop may be waiting
    // in a read-ahead that only new data from the peer would end.
    if (this.#stashBytes > 0) this.#settleReceives();
    void this.#service();
    return request.call.promise;
  }

  /** Completes what the stash, FIN or a failure allows, in FIFO order. */
  #settleReceives(): void {
    while (this.#receives.length > 0) {
      const request = this.#receives[0]!;
      if (request.call.done) {
        this.#receives.shift();
        continue;
      }
      let completion: WskCompletion | null = null;
      if ((request.flags & WSK_FLAG_DRAIN) !== 0) {
        this.#stash = [];
        this.#stashBytes = 0;
        if (this.#peerFin) completion = success();
        else if (this.#readFailure) completion = this.#readFailure;
      } else {
        this.#fillFromStash(request);
        const waitAll = (request.flags & WSK_FLAG_WAITALL) !== 0;
        if (request.length === 0 || request.filled === request.length) {
          completion = success(request.filled);
        } else if (!waitAll && request.filled > 0) completion = success(request.filled);
        else if (this.#peerFin) completion = success(request.filled);
        else if (this.#readFailure) completion = this.#readFailure;
      }
      if (completion === null) return;
      this.#receives.shift();
      request.call.complete(completion);
      // A completed receive restarts indications after a partial accept or a refusal.
      this.#eventsSuspended = false;
    }
  }

  #fillFromStash(request: ReceiveRequest): void {
    while (request.filled < request.length && this.#stash.length > 0) {
      const chunk = this.#stash[0]!;
      const target = regionAt(request.parts, request.filled);
      const n = Math.min(chunk.length, target.length);
      target.set(n === chunk.length ? chunk : chunk.subarray(0, n));
      request.filled += n;
      this.#stashBytes -= n;
      if (n === chunk.length) this.#stash.shift();
      else this.#stash[0] = chunk.subarray(n);
    }
  }

  #pushStash(bytes: Uint8Array): void {
    this.#stash.push(bytes);
    this.#stashBytes += bytes.length;
  }

  #wantsReadAhead(): boolean {
    // Indications the client keeps still count: they are data read ahead of the client.
    if (this.#stashBytes + this.#heldBytes >= STASH_LIMIT) return false;
    const receiveEvents = (this.#events & WSK_EVENT_RECEIVE) !== 0 && !this.#eventsSuspended;
    return receiveEvents || (this.#events & WSK_EVENT_DISCONNECT) !== 0;
  }

  /**
   * The one reader of the host socket. It completes receive requests in order and reads on its
   * own account only for enabled events. A receive that cannot be cancelled (no signal, no
   * timeout) is read into straight, with no copy. A cancellable one is read into the model's
   * own buffer and copied, because a host read cannot be called off without closing the
   * connection, and the client's buffer must not change after its receive has completed.
   * Exit conditions, checked each round:
   * - no pending receive and no event wants data: stop (TCP flow control takes over);
   * - the peer's FIN or a read failure was seen: stop (everything left completes from state);
   * - the socket has no host connection (closed or never connected): stop.
   */
  async #service(): Promise<void> {
    if (this.#servicing) return;
    this.#servicing = true;
    try {
      for (;;) {
        this.#settleReceives();
        this.#deliverIndications();
        const backing = this.#backing;
        if (backing === null || this.#peerFin || this.#readFailure !== null) return;
        if (this.#state === "CLOSED" || this.#state === "ABORTED") return;
        const head = this.#receives[0];
        let target: Uint8Array;
        let direct: ReceiveRequest | null = null;
        let staged: ReceiveRequest | null = null;
        if (head !== undefined && (head.flags & WSK_FLAG_DRAIN) !== 0) {
          staged = head;
          target = this.#scratch(STAGE_READ_SIZE);
        } else if (head !== undefined && this.#stashBytes === 0) {
          const region = regionAt(head.parts, head.filled);
          if (head.call.cancellable) {
            staged = head;
            target = this.#scratch(Math.min(region.length, STAGE_READ_SIZE));
          } else {
            direct = head;
            target = region;
          }
        } else if (head === undefined && this.#wantsReadAhead()) {
          target = new Uint8Array(EVENT_READ_SIZE);
        } else return;
        let n: number | null;
        try {
          n = await backing.read(target);
        } catch (error) {
          this.#onReadFailure(error);
          continue;
        }
        if (n === null) {
          this.#onPeerFin();
          continue;
        }
        this.#bytesReceived += n;
        if (direct !== null) {
          direct.filled += n;
        } else if (staged !== null) {
          if (staged.call.done) this.#pushStash(target.slice(0, n));
          else if ((staged.flags & WSK_FLAG_DRAIN) === 0) {
            // The staged read never exceeds the region, which lies within one part.
            regionAt(staged.parts, staged.filled).set(target.subarray(0, n));
            staged.filled += n;
          }
        } else {
          // A short read is copied out so that kept indications do not pin whole buffers.
          this.#pushStash(n > target.length / 2 ? target.subarray(0, n) : target.slice(0, n));
        }
      }
    } finally {
      this.#servicing = false;
    }
  }

  /** The model's reusable read buffer, at least `size` bytes (grown on demand). */
  #scratch(size: number): Uint8Array {
    if (this.#readScratch === null || this.#readScratch.length < size) {
      this.#readScratch = new Uint8Array(size);
    }
    return this.#readScratch.subarray(0, size);
  }

  #onPeerFin(): void {
    this.#peerFin = true;
    if (this.#state === "ESTAB") this.#state = "RFIN";
    else if (this.#state === "LFIN") this.#state = "BOTHFIN";
    this.#fireDisconnectEvent(0);
  }

  #onReadFailure(error: unknown): void {
    if (this.#state === "CLOSED") {
      this.#readFailure = failure(STATUS_CANCELLED, "The socket was closed");
      return;
    }
    if (this.#state === "ABORTED") {
      this.#readFailure = this.#refuseData(STATES_NONE, "WskReceive");
      return;
    }
    const mapped = statusFromError(error);
    const status = mapped.status === STATUS_INVALID_DEVICE_STATE
      ? STATUS_CONNECTION_RESET
      : mapped.status;
    this.#readFailure = failure(status, `Receive: ${mapped.message}`, error);
    this.#enterAborted(status);
    this.#fireDisconnectEvent(WSK_FLAG_ABORTIVE);
  }

  // -------------------------------------------------------------------------------------------
  // Events

  #deliverIndications(): void {
    const callback = this.#dispatch?.WskReceiveEvent;
    if (
      callback === undefined || (this.#events & WSK_EVENT_RECEIVE) === 0 ||
      this.#eventsSuspended || this.#receives.length > 0 || this.#stashBytes === 0
    ) return;
    let list: WskDataIndication | null = null;
    for (let i = this.#stash.length - 1; i >= 0; i--) {
      const bytes = this.#stash[i]!;
      list = {
        Next: list,
        Buffer: { Mdl: { Next: null, bytes }, Offset: 0, Length: bytes.length },
      };
    }
    const indicated = this.#stashBytes;
    let result;
    try {
      result = callback(this.context, 0, list, indicated);
    } catch {
      result = STATUS_DATA_NOT_ACCEPTED;
    }
    const status = typeof result === "number" ? result : result.status;
    if (status === STATUS_PENDING) {
      this.#held.set(list!, indicated);
      this.#heldBytes += indicated;
      this.#stash = [];
      this.#stashBytes = 0;
    } else if (status === STATUS_SUCCESS) {
      // bytesAccepted matters only for a partial accept; anything else means "all of it".
      const asked = typeof result === "number" ? indicated : result.bytesAccepted;
      const accepted = Number.isSafeInteger(asked)
        ? Math.max(0, Math.min(indicated, asked))
        : indicated;
      this.#dropStash(accepted);
      if (accepted < indicated) this.#eventsSuspended = true;
    } else {
      // STATUS_DATA_NOT_ACCEPTED, or anything else (model choice): keep the data for WskReceive.
      this.#eventsSuspended = true;
    }
  }

  #dropStash(count: number): void {
    let left = count;
    while (left > 0 && this.#stash.length > 0) {
      const chunk = this.#stash[0]!;
      if (chunk.length <= left) {
        this.#stash.shift();
        left -= chunk.length;
      } else {
        this.#stash[0] = chunk.subarray(left);
        left = 0;
      }
    }
    this.#stashBytes -= count - left;
  }

  #fireDisconnectEvent(flags: number): void {
    const callback = this.#dispatch?.WskDisconnectEvent;
    if (callback === undefined || (this.#events & WSK_EVENT_DISCONNECT) === 0) return;
    try {
      callback(this.context, flags);
    } catch {
      // A throwing client callback must not break the provider.
    }
  }

  #afterEventsEnabled(events: number): void {
    if ((events & WSK_EVENT_SEND_BACKLOG) !== 0) {
      const callback = this.#dispatch?.WskSendBacklogEvent;
      queueMicrotask(() => {
        if ((this.#events & WSK_EVENT_SEND_BACKLOG) === 0) return;
        try {
          callback?.(this.context, IDEAL_SEND_BACKLOG);
        } catch {
          // As above: callbacks cannot hurt the provider.
        }
      });
    }
    if ((events & (WSK_EVENT_RECEIVE | WSK_EVENT_DISCONNECT)) !== 0) {
      this.#eventsSuspended = false;
      void this.#service();
    }
  }

  // -------------------------------------------------------------------------------------------
  // WskDisconnect

  async #disconnect(
    buffer: WskBuf | null,
    flags: number,
    irp: WskIrp | undefined,
  ): Promise<WskCompletion> {
    const bad = checkIrp(irp) ?? checkFlags(flags, WSK_FLAG_ABORTIVE, "WskDisconnect");
    if (bad) return bad;
    const segments = segmentsOf(buffer);
    if (!segments.ok) return failure(STATUS_INVALID_PARAMETER, segments.message);
    if ((flags & WSK_FLAG_ABORTIVE) !== 0) {
      if (segments.length !== 0) {
        return failure(STATUS_INVALID_PARAMETER, "An abortive disconnect takes no buffer");
      }
      if (this.#state === "BOTHFIN" || this.#state === "ABORTED") return success();
      const refused = this.#refuse(STATES_SEND_OR_FIN, "WskDisconnect");
      if (refused) return refused;
      this.#abortLocally("Aborted by WskDisconnect");
      return this.#peerSaw === "RST" ? success() : {
        ...success(),
        message: "The host could not send RST here (deno backing without --allow-ffi): " +
          "the connection was closed and the peer saw FIN",
      };
    }
    const refused = this.#refuseData(STATES_SEND, "WskDisconnect");
    if (refused) return refused;
    const pending = new PendingCall(irp);
    if (pending.done) return await pending.promise;
    this.#state = this.#state === "RFIN" ? "BOTHFIN" : "LFIN";
    this.#pendingDisconnect = pending;
    let finSent = false;
    pending.onCancel(() => {
      // A disconnect that never got its FIN out is cured the documented way: by an abort.
      if (!finSent) this.#abortLocally("The graceful disconnect was cancelled");
    });
    this.#enqueueWrite(async () => {
      let completion: WskCompletion | null;
      try {
        const sent = pending.done
          ? null
          : await this.#writeParts(this.#backing!, segments.parts, () => pending.done);
        if (sent !== null) {
          await this.#backing!.closeWrite();
          finSent = true;
        }
        // Information: the final data's bytes (0 without a buffer).
        completion = sent === null ? null : success(sent);
      } catch (error) {
        completion = pending.done ? null : this.#dataFailure(error, "Disconnect");
      }
      if (this.#pendingDisconnect === pending) this.#pendingDisconnect = null;
      this.#writeDone();
      if (completion !== null) pending.complete(completion);
    });

    return await pending.promise;
  }

  /** Our own abortive teardown: RST where the backing can, everything pending ends. */
  #abortLocally(reason: string): void {
    if (this.#state === "ABORTED" || this.#state === "CLOSED") return;
    this.#enterAborted(STATUS_CONNECTION_ABORTED);
    this.#tearDown();
    this.#failPending(STATUS_CONNECTION_ABORTED, reason);
  }

  /**
   * Releases the host socket abortively: RST where the backing can, else a plain close (the
   * peer then sees FIN). Blocked host reads and writes end either way. Records which it was.
   */
  #tearDown(): void {
    const backing = this.#backing;
    if (backing === null) return;
    if (backing.reset()) this.#peerSaw = "RST";
    else {
      backing.close();
      this.#peerSaw = "FIN";
    }
  }

  #enterAborted(status: NTSTATUS): void {
    if (this.#state === "CLOSED") return;
    this.#state = "ABORTED";
    this.#abortStatus = status;
    this.#readFailure ??= failure(
      status,
      status === STATUS_CONNECTION_RESET
        ? "The peer reset the connection"
        : "The connection was aborted",
    );
    queueMicrotask(() => this.#settleReceives());
  }

  #failPending(status: NTSTATUS, message: string): void {
    for (const request of this.#receives) request.call.complete(failure(status, message));
    this.#receives = [];
    for (const request of this.#sends) request.call.complete(failure(status, message));
    this.#sends.clear();
    this.#pendingDisconnect?.complete(failure(status, message));
    this.#pendingDisconnect = null;
  }

  // -------------------------------------------------------------------------------------------
  // WskRelease

  #release(indication: WskDataIndication): WskCompletion {
    if (this.#state === "CLOSED") {
      return failure(STATUS_INVALID_HANDLE, "WskRelease on a closed socket");
    }
    const bytes = this.#held.get(indication);
    if (bytes === undefined) {
      return failure(STATUS_INVALID_PARAMETER, "That indication list is not held by the client");
    }
    this.#held.delete(indication);
    this.#heldBytes -= bytes;
    // Released room may let the model read ahead again.
    if (this.#wantsReadAhead()) void this.#service();
    return success();
  }

  /** Indication lists the client kept (returned STATUS_PENDING for) and has not released. */
  get heldIndications(): number {
    return this.#held.size;
  }

  // -------------------------------------------------------------------------------------------
  // WskControlSocket

  #control(
    requestType: WskControlSocketType,
    controlCode: number,
    level: number,
    input: ControlInput,
    output: Uint8Array | null | undefined,
    irp: WskIrp | undefined,
  ): WskCompletion {
    const bad = this.#refuse(STATES_CONTROL, "WskControlSocket") ?? checkIrp(irp);
    if (bad) return bad;
    const code = controlCode >>> 0;
    if (requestType === WskIoctl) return this.#ioctl(code, output);
    if (requestType !== WskSetOption && requestType !== WskGetOption) {
      return failure(STATUS_INVALID_PARAMETER, `Unknown request type ${String(requestType)}`);
    }
    const set = requestType === WskSetOption;
    if (level === SOL_SOCKET && code === SO_WSK_EVENT_CALLBACK) {
      if (!set) return failure(STATUS_INVALID_PARAMETER, "SO_WSK_EVENT_CALLBACK can only be set");
      return this.#setEvents(input, irp);
    }
    const isKeepAlive = level === SOL_SOCKET && code === SO_KEEPALIVE;
    const isNoDelay = level === IPPROTO_TCP && code === TCP_NODELAY;
    if (isKeepAlive || isNoDelay) {
      if (!set) {
        const written = writeUnsigned(
          output,
          (isKeepAlive ? this.#keepAlive : this.#noDelay) ? 1 : 0,
          4,
        );
        return isCompletion(written) ? written : success(written);
      }
      const value = readUlong(input);
      if (isCompletion(value)) return value;
      try {
        if (isKeepAlive) {
          this.#keepAlive = value !== 0;
          this.#backing?.setKeepAlive(this.#keepAlive);
        } else {
          this.#noDelay = value !== 0;
          this.#backing?.setNoDelay(this.#noDelay);
        }
      } catch (error) {
        return hostFailure(error, "WskControlSocket");
      }
      return success();
    }
    const unsupported = unsupportedOption(level, code);
    if (unsupported) return failure(STATUS_NOT_SUPPORTED, `Not supported: ${unsupported}`);
    return failure(
      STATUS_INVALID_PARAMETER,
      `Unknown option 0x${code.toString(16)} at level 0x${(level >>> 0).toString(16)}`,
    );
  }

  #ioctl(code: number, output: Uint8Array | null | undefined): WskCompletion {
    if (code === SIO_WSK_QUERY_RECEIVE_BACKLOG || code === SIO_WSK_QUERY_IDEAL_SEND_BACKLOG) {
      const refused = this.#refuse(CONNECTED, "This IOCTL");
      if (refused) return refused;
      const value = code === SIO_WSK_QUERY_RECEIVE_BACKLOG ? this.#stashBytes : IDEAL_SEND_BACKLOG;
      const written = writeUnsigned(output, value, 8);
      return isCompletion(written) ? written : success(written);
    }
    const unsupported = unsupportedIoctl(code);
    if (unsupported) return failure(STATUS_NOT_SUPPORTED, `Not supported: ${unsupported}`);
    return failure(STATUS_INVALID_PARAMETER, `Unknown IOCTL 0x${code.toString(16)}`);
  }

  #setEvents(input: ControlInput, irp: WskIrp | undefined): WskCompletion {
    const request = parseEventRequest(input, CONNECTION_EVENTS);
    if (isCompletion(request)) return request;
    const refused = this.#refuse(CONNECTED, "Enabling events");
    if (refused) return refused;
    if (request.disable) {
      this.#events &= ~request.events;
      return success();
    }
    if (irp !== undefined) {
      return failure(STATUS_INVALID_PARAMETER, "Enabling event callbacks takes no IRP");
    }
    const missing = missingCallback(this.#dispatch, request.events);
    if (missing) return failure(STATUS_INVALID_PARAMETER, `No ${missing} callback was given`);
    this.#events |= request.events;
    this.#afterEventsEnabled(request.events);
    return success();
  }

  // -------------------------------------------------------------------------------------------
  // WskCloseSocket

  #close(): Promise<WskCompletion> {
    if (this.#state === "CLOSED") {
      return Promise.resolve(failure(STATUS_INVALID_HANDLE, "WskCloseSocket on a closed socket"));
    }
    const before = this.#state;
    this.#state = "CLOSED";
    this.#pendingConnect?.cancel(STATUS_CANCELLED, "The socket was closed");
    this.#failPending(STATUS_CANCELLED, "The socket was closed");
    const backing = this.#backing;
    if (backing !== null) {
      // Not shut in both directions: WSK aborts the connection (RST where the backing can).
      const abortive = before === "ESTAB" || before === "LFIN" || before === "RFIN";
      if (abortive) this.#tearDown();
      else backing.close();
    }
    this.#stash = [];
    this.#stashBytes = 0;
    return Promise.resolve(success());
  }

  // -------------------------------------------------------------------------------------------
  // The table. Its members check their socket argument, then call the private methods above.

  static {
    withSocket = socketGuard(
      (socket): socket is WskConnectionSocket =>
        typeof socket === "object" && socket !== null && #state in socket,
      "The socket argument is not a connection socket",
    );
    const table: WskProviderConnectionDispatch = {
      ...basicMembers(withSocket, (s, ...args) => s.#control(...args), (s) => s.#close()),
      WskBind(socket, localAddress, flags = 0, irp) {
        return withSocket(socket, (s) => s.#bind(localAddress, flags, irp));
      },
      WskConnect(socket, remoteAddress, flags = 0, irp) {
        return withSocket(socket, (s) => s.#connect(remoteAddress, null, flags, irp, "WskConnect"));
      },
      WskGetLocalAddress(socket, irp) {
        return withSocket(socket, (s) => Promise.resolve(s.#getLocalAddress(irp)));
      },
      WskGetRemoteAddress(socket, irp) {
        return withSocket(socket, (s) => Promise.resolve(s.#getRemoteAddress(irp)));
      },
      WskSend(socket, buffer, flags = 0, irp) {
        return withSocket(socket, (s) => s.#send(buffer, flags, irp));
      },
      WskReceive(socket, buffer, flags = 0, irp) {
        return withSocket(socket, (s) => s.#receive(buffer, flags, irp));
      },
      WskDisconnect(socket, buffer = null, flags = 0, irp) {
        return withSocket(socket, (s) => s.#disconnect(buffer, flags, irp));
      },
      WskRelease(socket, indication) {
        return withSocket(socket, (s) => Promise.resolve(s.#release(indication)));
      },
      WskConnectEx(socket, remoteAddress, buffer = null, flags = 0, irp) {
        return withSocket(
          socket,
          (s) => s.#connect(remoteAddress, buffer, flags, irp, "WskConnectEx"),
        );
      },
      WskSendEx(_socket, ..._args) {
        return Promise.resolve(
          failure(STATUS_NOT_SUPPORTED, "WskSendEx is reserved for system use"),
        );
      },
      WskReceiveEx(_socket, ..._args) {
        return Promise.resolve(
          failure(STATUS_NOT_SUPPORTED, "WskReceiveEx is reserved for system use"),
        );
      },
    };
    WSK_PROVIDER_CONNECTION_DISPATCH = Object.freeze(table);
  }
}

/**
 * WSK_PROVIDER_CONNECTION_DISPATCH: the provider's functions for a connection socket, in the C
 * member order. The two members of WSK_PROVIDER_BASIC_DISPATCH come first, flattened in as the
 * unnamed `Basic` struct is in C. Every member takes the socket first and resolves to a
 * completion; none of them throws. WskCloseSocket completes pending calls with STATUS_CANCELLED
 * and resets a live connection.
 */
export interface WskProviderConnectionDispatch extends WskSocketBasicDispatch<WskConnectionSocket> {
  /** Binds a local address (INIT → BOUND). */
  WskBind(
    socket: WskConnectionSocket,
    localAddress: SockAddr,
    flags?: number,
    irp?: WskIrp,
  ): Promise<WskCompletion>;
  /** Connects a bound socket (BOUND → ESTAB, or FAILED). */
  WskConnect(
    socket: WskConnectionSocket,
    remoteAddress: SockAddr,
    flags?: number,
    irp?: WskIrp,
  ): Promise<WskCompletion>;
  /** The local address: the bound one before connecting, the kernel's after. */
  WskGetLocalAddress(socket: WskConnectionSocket, irp?: WskIrp): Promise<WskAddressCompletion>;
  /** The remote address of a connected socket. */
  WskGetRemoteAddress(socket: WskConnectionSocket, irp?: WskIrp): Promise<WskAddressCompletion>;
  /** Sends the whole buffer; `information` is its length on success. */
  WskSend(
    socket: WskConnectionSocket,
    buffer: WskBuf,
    flags?: number,
    irp?: WskIrp,
  ): Promise<WskCompletion>;
  /** Receives up to `buffer.Length` bytes; 0 bytes with success means the peer's FIN. */
  WskReceive(
    socket: WskConnectionSocket,
    buffer: WskBuf,
    flags?: number,
    irp?: WskIrp,
  ): Promise<WskCompletion>;
  /** Graceful (optional final data, then FIN) or abortive (RST) disconnect. */
  WskDisconnect(
    socket: WskConnectionSocket,
    buffer?: WskBuf | null,
    flags?: number,
    irp?: WskIrp,
  ): Promise<WskCompletion>;
  /** Returns an indication list kept by WskReceiveEvent (no IRP in C; a Promise here). */
  WskRelease(socket: WskConnectionSocket, indication: WskDataIndication): Promise<WskCompletion>;
  /** Connects, then sends up to 65,535 bytes; `information` is the bytes sent. */
  WskConnectEx(
    socket: WskConnectionSocket,
    remoteAddress: SockAddr,
    buffer?: WskBuf | null,
    flags?: number,
    irp?: WskIrp,
  ): Promise<WskCompletion>;
  /** Reserved for system use: always STATUS_NOT_SUPPORTED. */
  WskSendEx(socket: WskConnectionSocket, ...args: unknown[]): Promise<WskCompletion>;
  /** Reserved for system use: always STATUS_NOT_SUPPORTED. */
  WskReceiveEx(socket: WskConnectionSocket, ...args: unknown[]): Promise<WskCompletion>;
}

// ---------------------------------------------------------------------------------------------
// Helpers

const STATES_NONE: ReadonlySet<ConnectionState> = new Set();
const STATES_INIT: ReadonlySet<ConnectionState> = new Set(["INIT"]);
const STATES_BOUND: ReadonlySet<ConnectionState> = new Set(["BOUND"]);
const STATES_SEND: ReadonlySet<ConnectionState> = new Set(["ESTAB", "RFIN"]);
const STATES_SEND_OR_FIN: ReadonlySet<ConnectionState> = new Set(["ESTAB", "LFIN", "RFIN"]);
/** A TLS handshake needs a connection open both ways. */
const STATES_TLS: ReadonlySet<ConnectionState> = new Set(["ESTAB"]);
const STATES_RECEIVE = CONNECTED;
const STATES_LOCAL_ADDRESS: ReadonlySet<ConnectionState> = new Set([
  "BOUND",
  "CONNECTING",
  "ESTAB",
  "LFIN",
  "RFIN",
  "BOTHFIN",
  "ABORTED",
  "FAILED",
]);
const STATES_REMOTE_ADDRESS: ReadonlySet<ConnectionState> = new Set([
  "ESTAB",
  "LFIN",
  "RFIN",
  "BOTHFIN",
  "ABORTED",
]);
const STATES_CONTROL: ReadonlySet<ConnectionState> = new Set(["INIT", ...STATES_LOCAL_ADDRESS]);

/** Refuses flags outside `allowed`, and non-integer flags. */
export function checkFlags(flags: number, allowed: number, call: string): WskCompletion | null {
  if (typeof flags !== "number" || !Number.isInteger(flags) || flags < 0 || flags > 0xffffffff) {
    return failure(STATUS_INVALID_PARAMETER, `${call}: flags must be a u32`);
  }
  if ((flags & ~allowed) !== 0) {
    return failure(STATUS_INVALID_PARAMETER, `${call}: unknown flags 0x${flags.toString(16)}`);
  }
  return null;
}

/** The part of a receive buffer that starts `filled` bytes in. */
function regionAt(parts: Uint8Array[], filled: number): Uint8Array {
  let skip = filled;
  for (const part of parts) {
    if (skip < part.length) return skip === 0 ? part : part.subarray(skip);
    skip -= part.length;
  }
  return new Uint8Array(0);
}

/** Names the first enabled event whose callback the client did not supply. */
export function missingCallback(
  dispatch: WskClientConnectionDispatch | null,
  events: number,
): string | undefined {
  if ((events & WSK_EVENT_RECEIVE) !== 0 && !dispatch?.WskReceiveEvent) return "WskReceiveEvent";
  if ((events & WSK_EVENT_DISCONNECT) !== 0 && !dispatch?.WskDisconnectEvent) {
    return "WskDisconnectEvent";
  }
  if ((events & WSK_EVENT_SEND_BACKLOG) !== 0 && !dispatch?.WskSendBacklogEvent) {
    return "WskSendBacklogEvent";
  }
  return undefined;
}

/** How long each call of the warm-up of {@linkcode warmConnect} may take at most. */
const WARM_CONNECT_MS = 1000;
/** Connections the warm-up makes: the second runs the code the first compiled. */
const WARM_ROUNDS = 2;

/** The warm-up of each backing, made once per process. */
const warmed = new Map<BackingKind, Promise<void>>();

/**
 * Makes once, per backing, what the first connect of a process would otherwise do inside its
 * own call: load the backing's host code (see `loadBacking`), and run one connection through the
 * model to a throw-away listener of this process on 127.0.0.1 (WskBind, WskConnect,
 * WskDisconnect, WskReceive of the peer's FIN, WskCloseSocket: the host runtime sets up its
 * connect path, and the engine compiles the model's code, on first use, 2 to 10 ms). Without net
 * permission for 127.0.0.1 only the loading is done. Never rejects.
 */
export function warmConnect(kind: BackingKind): Promise<void> {
  let done = warmed.get(kind);
  if (done === undefined) {
    done = connectToSelf(kind);
    warmed.set(kind, done);
  }
  return done;
}

async function connectToSelf(kind: BackingKind): Promise<void> {
  await loadBacking(kind);
  if (Deno.permissions.querySync({ name: "net", host: "127.0.0.1" }).state !== "granted") return;
  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  } catch {
    return; // No descriptor or no loopback: the first connect pays for itself.
  }
  try {
    for (let round = 0; round < WARM_ROUNDS; round++) {
      if (!await connectOnce(kind, listener)) break;
    }
  } finally {
    listener.close();
  }
}

/**
 * One connection of the warm-up, to `listener`, on a socket of the provider's own; false when
 * it did not connect (the listener's accept is then still pending, until the listener closes).
 */
async function connectOnce(kind: BackingKind, listener: Deno.TcpListener): Promise<boolean> {
  const accepted = listener.accept().then((conn) => conn.close(), () => {});
  const d = WSK_PROVIDER_CONNECTION_DISPATCH;
  // A signal as well as a deadline, as a client's calls have.
  const irp = { signal: new AbortController().signal, timeout: WARM_CONNECT_MS };
  makingOwnSocket = true;
  let socket: WskConnectionSocket;
  try {
    socket = newConnectionSocket(AF_INET, undefined, null, { backing: kind });
  } finally {
    makingOwnSocket = false;
  }
  try {
    const remote = { ...loopback(AF_INET), port: listener.addr.port };
    await d.WskBind(socket, wildcard(AF_INET, 0), 0, irp);
    if ((await d.WskConnect(socket, remote, 0, irp)).status !== STATUS_SUCCESS) return false;
    await d.WskDisconnect(socket, null, 0, irp);
    await accepted;
    await d.WskReceive(socket, { Mdl: null, Offset: 0, Length: 0 }, WSK_FLAG_DRAIN, irp);
    return true;
  } finally {
    await d.WskCloseSocket(socket);
  }
}

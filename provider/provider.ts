/**
 * The client-level part of WSK: capturing the provider NPI and `WSK_PROVIDER_DISPATCH`, which
 * creates sockets (WskSocket, WskSocketConnect) and resolves names (WskGetAddressInfo).
 *
 * @module
 */

import {
  STATUS_CONNECTION_REFUSED,
  STATUS_INVALID_HANDLE,
  STATUS_INVALID_PARAMETER,
  STATUS_NO_MATCH,
  STATUS_NOT_SUPPORTED,
} from "./status.ts";
import {
  type AddressFamily,
  AF_INET,
  AF_INET6,
  isSockAddr,
  isWildcard,
  type SockAddr,
  sockAddr,
} from "./address.ts";
import { chooseBacking, loadBacking } from "./_backing.ts";
import {
  IPPROTO_TCP,
  SOCK_STREAM,
  WSK_FLAG_BASIC_SOCKET,
  WSK_FLAG_CONNECTION_SOCKET,
  WSK_FLAG_LISTEN_SOCKET,
  WSK_VERSION_1_0,
  type WskClientConnectionDispatch,
  type WskCompletion,
  type WskIrp,
} from "./types.ts";
import { checkIrp, failure, guarded, PendingCall, socketGuard, success } from "./_irp.ts";
import { statusFromError } from "./_errors.ts";
import { unsupportedIoctl, unsupportedOption, type WskSocketBasicDispatch } from "./_control.ts";
import {
  allocateSocketId,
  newConnectionSocket,
  warmConnect,
  type WskConnectionSocket,
  type WskSocketOptions,
} from "./connection.ts";
import {
  newListenSocket,
  type WskClientListenDispatch,
  type WskListenOptions,
  type WskListenSocket,
} from "./listen.ts";

/** The client object (`PWSK_CLIENT`): passed to every client-level call. */
export class WskClient {
  #released = false;

  /** True after WskReleaseProviderNPI. */
  get released(): boolean {
    return this.#released;
  }

  /** Marks the client released; later client-level calls complete with an error. */
  release(): void {
    this.#released = true;
  }
}

/** What WskSocket and WskSocketConnect return: the new socket on success. */
export interface WskSocketCompletion extends WskCompletion {
  /** The new connection socket (`Irp->IoStatus.Information` in C). */
  readonly socket?: WskConnectionSocket;
  /** The new listening socket, for WSK_FLAG_LISTEN_SOCKET. */
  readonly listenSocket?: WskListenSocket;
  /** The new basic socket, for WSK_FLAG_BASIC_SOCKET. */
  readonly basicSocket?: WskBasicSocket;
}

/** What WskGetAddressInfo returns: the addresses a name resolves to. */
export interface WskAddressInfoCompletion extends WskCompletion {
  /** The resolved addresses, in the resolver's order. */
  readonly addresses?: SockAddr[];
}

/** Options given at socket creation: the IRP stand-in plus the model's own choices. */
export type WskCreateOptions = WskIrp & WskSocketOptions & WskListenOptions;

/** Either client callback table, matching the socket category. */
export type WskClientDispatch = WskClientConnectionDispatch | WskClientListenDispatch;

/**
 * WSK_PROVIDER_DISPATCH: the client-level functions, in C member order after Version and
 * Reserved. Every function takes the client object first and resolves to a completion.
 */
export interface WskProviderDispatch {
  /** `MAKE_WSK_VERSION(1, 0)`. */
  readonly Version: number;
  /** Always 0. */
  readonly Reserved: number;
  /** Creates a socket of the category `flags` names (connection, listen or basic). */
  WskSocket(
    client: WskClient,
    addressFamily: number,
    socketType: number,
    protocol: number,
    flags: number,
    socketContext?: unknown,
    dispatch?: WskClientDispatch | null,
    options?: WskCreateOptions,
  ): Promise<WskSocketCompletion>;
  /** Creates, binds and connects a connection socket in one call. */
  WskSocketConnect(
    client: WskClient,
    socketType: number,
    protocol: number,
    localAddress: SockAddr,
    remoteAddress: SockAddr,
    flags: number,
    socketContext?: unknown,
    dispatch?: WskClientConnectionDispatch | null,
    options?: WskCreateOptions,
  ): Promise<WskSocketCompletion>;
  /** Client control operations: none of them can be honoured here (STATUS_NOT_SUPPORTED). */
  WskControlClient(
    client: WskClient,
    controlCode: number,
    ...args: unknown[]
  ): Promise<WskCompletion>;
  /** Resolves a host name (and optional numeric service) to addresses. */
  WskGetAddressInfo(
    client: WskClient,
    nodeName: string,
    serviceName?: string | null,
    family?: number,
    irp?: WskIrp,
  ): Promise<WskAddressInfoCompletion>;
  /** Frees a result list; nothing to do with a garbage collector. */
  WskFreeAddressInfo(client: WskClient, addresses: SockAddr[]): void;
  /** Reverse lookups are not modelled: STATUS_NOT_SUPPORTED. */
  WskGetNameInfo(client: WskClient, ...args: unknown[]): Promise<WskCompletion>;
}

function checkClient(client: unknown): WskCompletion | null {
  if (!(client instanceof WskClient)) {
    return failure(STATUS_INVALID_PARAMETER, "The client argument is not a WskClient");
  }
  if (client.released) {
    return failure(STATUS_INVALID_HANDLE, "The provider NPI was released");
  }
  return null;
}

function checkFamily(family: number): family is AddressFamily {
  return family === AF_INET || family === AF_INET6;
}

/** The arguments of a client-level call, as {@linkcode WskProviderDispatch} declares them. */
type ArgsOf<K extends keyof WskProviderDispatch> = WskProviderDispatch[K] extends
  (...args: infer A) => unknown ? A : never;

function wskSocket(...args: ArgsOf<"WskSocket">): Promise<WskSocketCompletion> {
  return Promise.resolve(createSocket(...args));
}

function createSocket(
  ...[client, addressFamily, socketType, protocol, flags, socketContext, dispatch, options = {}]:
    ArgsOf<"WskSocket">
): WskSocketCompletion {
  const bad = checkClient(client) ?? checkIrp(options);
  if (bad) return bad;
  if (!checkFamily(addressFamily)) {
    return failure(
      STATUS_NOT_SUPPORTED,
      `Address family ${String(addressFamily)} is not supported`,
    );
  }
  if (flags === WSK_FLAG_BASIC_SOCKET) {
    if (dispatch) return failure(STATUS_INVALID_PARAMETER, "A basic socket takes no callbacks");
    return { ...success(), basicSocket: newBasicSocket(addressFamily) };
  }
  if (socketType !== SOCK_STREAM || protocol !== IPPROTO_TCP) {
    return failure(STATUS_NOT_SUPPORTED, "Only SOCK_STREAM with IPPROTO_TCP is modelled");
  }
  if (
    options.backing !== undefined && !["auto", "deno", "node"].includes(options.backing)
  ) {
    return failure(STATUS_INVALID_PARAMETER, `Unknown backing "${String(options.backing)}"`);
  }
  if (flags === WSK_FLAG_CONNECTION_SOCKET) {
    const socket = newConnectionSocket(
      addressFamily,
      socketContext,
      (dispatch as WskClientConnectionDispatch | null | undefined) ?? null,
      options,
    );
    return { ...success(), socket };
  }
  if (flags === WSK_FLAG_LISTEN_SOCKET) {
    const backlog = options.backlog;
    if (backlog !== undefined && (!Number.isSafeInteger(backlog) || backlog < 0)) {
      return failure(STATUS_INVALID_PARAMETER, `Invalid backlog "${String(backlog)}"`);
    }
    const listenSocket = newListenSocket(
      addressFamily,
      socketContext,
      (dispatch as WskClientListenDispatch | null | undefined) ?? null,
      options,
    );
    return { ...success(), listenSocket };
  }
  return failure(
    STATUS_NOT_SUPPORTED,
    `Socket flags 0x${(flags >>> 0).toString(16)} name a category this model does not have`,
  );
}

async function wskSocketConnect(
  ...[
    client,
    socketType,
    protocol,
    localAddress,
    remoteAddress,
    flags,
    socketContext,
    dispatch,
    options = {},
  ]: ArgsOf<"WskSocketConnect">
): Promise<WskSocketCompletion> {
  const bad = checkClient(client) ?? checkIrp(options);
  if (bad) return bad;
  if (flags !== 0) return failure(STATUS_INVALID_PARAMETER, "WskSocketConnect flags must be 0");
  if (!isSockAddr(localAddress) || !isSockAddr(remoteAddress)) {
    return failure(STATUS_INVALID_PARAMETER, "Both addresses must be SOCKADDRs");
  }
  if (localAddress.family !== remoteAddress.family) {
    return failure(STATUS_INVALID_PARAMETER, "The addresses are of different families");
  }
  // One deadline and one cancellation cover the whole call, as one IRP would.
  const whole = new PendingCall<WskSocketCompletion>(options);
  const irp: WskIrp = { signal: whole.signal };
  const { timeout: _timeout, signal: _signal, ...choices } = options;
  const created = await wskSocket(
    client,
    localAddress.family,
    socketType,
    protocol,
    WSK_FLAG_CONNECTION_SOCKET,
    socketContext,
    dispatch,
    { ...choices, ...irp },
  );
  const socket = created.socket;
  if (!socket) {
    whole.complete(created);
    return await whole.promise;
  }
  const d = socket.Dispatch;
  let step = await d.WskBind(socket, localAddress, 0, irp);
  if (step.status === 0) step = await d.WskConnect(socket, remoteAddress, 0, irp);
  if (step.status !== 0) {
    // No socket reaches the client when the call fails.
    await d.WskCloseSocket(socket);
    whole.complete(step);
  } else if (!whole.complete({ ...success(), socket })) {
    await d.WskCloseSocket(socket);
  }
  return await whole.promise;
}

async function wskGetAddressInfo(
  ...[client, nodeName, serviceName, family, irp]: ArgsOf<"WskGetAddressInfo">
): Promise<WskAddressInfoCompletion> {
  const bad = checkClient(client) ?? checkIrp(irp);
  if (bad) return bad;
  if (typeof nodeName !== "string" || nodeName.length === 0) {
    return failure(STATUS_INVALID_PARAMETER, "The node name is empty");
  }
  let port = 0;
  if (serviceName !== undefined && serviceName !== null) {
    if (!/^\d{1,5}$/.test(serviceName) || Number(serviceName) > 65535) {
      return failure(STATUS_INVALID_PARAMETER, `Service "${serviceName}" is not a port number`);
    }
    port = Number(serviceName);
  }
  if (family !== undefined && family !== 0 && !checkFamily(family)) {
    return failure(STATUS_NOT_SUPPORTED, `Address family ${String(family)} is not supported`);
  }
  const pending = new PendingCall<WskAddressInfoCompletion>(irp);
  if (!pending.done) {
    try {
      // getaddrinfo honours /etc/hosts (so "localhost" needs no DNS).
      const dns = await loadResolver();
      const found = await dns.promises.lookup(nodeName, {
        all: true,
        family: family === AF_INET ? 4 : family === AF_INET6 ? 6 : 0,
      });
      const addresses = found.map((entry) => sockAddr(entry.address, port));
      pending.complete(
        addresses.length > 0
          ? { ...success(), addresses }
          : failure(STATUS_NO_MATCH, `No address for "${nodeName}"`),
      );
    } catch (error) {
      const mapped = statusFromError(error);
      const status = mapped.status === STATUS_CONNECTION_REFUSED ? STATUS_NO_MATCH : mapped.status;
      pending.complete(failure(status, `Resolve "${nodeName}": ${mapped.message}`, error));
    }
  }
  return await pending.promise;
}

/** node:dns, imported once, on first use: most commands resolve no name. */
let resolver: Promise<typeof import("node:dns")> | null = null;

function loadResolver(): Promise<typeof import("node:dns")> {
  resolver ??= import("node:dns");
  return resolver;
}

/** The resolver's warm-up, made once per process. */
let resolverWarmed: Promise<void> | null = null;

/** Loads node:dns and makes one lookup of "localhost" (the C library loads its name services). */
function warmResolver(): Promise<void> {
  resolverWarmed ??= (async () => {
    const dns = await loadResolver();
    if (Deno.permissions.querySync({ name: "net", host: "localhost" }).state !== "granted") return;
    try {
      await dns.promises.lookup("localhost", { all: true });
    } catch {
      // A failed warm-up only leaves the first WskGetAddressInfo slower.
    }
  })();
  return resolverWarmed;
}

/** What {@linkcode prepareProvider} loads ahead of the calls that need it. */
export interface WskPreparation {
  /**
   * A connection socket with these options, bound to `local` (a wildcard with port 0 when
   * absent), will connect: WskSocketConnect, or WskSocket, WskBind and WskConnect.
   */
  readonly connect?: WskSocketOptions & { readonly local?: SockAddr };
  /** A listening socket with these options will listen (its WskBind). */
  readonly listen?: WskListenOptions;
  /** Names will be resolved (WskGetAddressInfo). */
  readonly resolve?: boolean;
}

/**
 * Loads, ahead of time, what the first calls of a process would otherwise load inside their
 * own call: the host's timers (every call with a deadline), and what `needs` names (node:net
 * for node-backed sockets, the host's connect path, libc for resets, the name resolver). A
 * client that times its calls awaits this before its first clock starts, so a first call's time
 * is the call's alone. Model-only, not a WSK call; each part is loaded once per process, and
 * nothing needed for a call is missing without it (the call then pays the loading). Never
 * rejects. {@linkcode WskConnectionSocket.prepare} and {@linkcode WskListenSocket.prepare} do
 * the same for one existing socket.
 *
 * @example Time a first connect without the loading
 * ```ts ignore
 * import { parseSockAddr, prepareProvider, WskCaptureProviderNPI } from "./mod.ts";
 *
 * const { Client, Dispatch } = WskCaptureProviderNPI();
 * const local = parseSockAddr("0.0.0.0:0");
 * await prepareProvider({ connect: { local } });
 * const start = performance.now();
 * await Dispatch.WskSocketConnect(Client, 1, 6, local, parseSockAddr("127.0.0.1:8080"), 0);
 * console.log(performance.now() - start);
 * ```
 */
export async function prepareProvider(needs: WskPreparation = {}): Promise<void> {
  // Deno sets up its timers on the first setTimeout (15 to 40 ms); IRP deadlines use them.
  clearTimeout(setTimeout(() => {}, 0));
  const loads: Promise<void>[] = [];
  if (needs.resolve === true) loads.push(warmResolver());
  const connect = needs.connect;
  if (connect !== undefined) {
    const local = connect.local;
    loads.push(warmConnect(chooseBacking(connect.backing, {
      specific: local !== undefined && (!isWildcard(local) || local.port !== 0),
      abortive: connect.abortive === true,
    })));
  }
  if (needs.listen !== undefined) {
    const listen = needs.listen;
    loads.push(loadBacking(chooseBacking(listen.backing, { abortive: listen.abortive === true })));
  }
  await Promise.all(loads);
}

/**
 * The one WSK_PROVIDER_DISPATCH table.
 */
export const WSK_PROVIDER_DISPATCH: WskProviderDispatch = Object.freeze({
  Version: WSK_VERSION_1_0,
  Reserved: 0,
  WskSocket: guarded(wskSocket),
  WskSocketConnect: guarded(wskSocketConnect),
  WskControlClient(client: WskClient, controlCode: number): Promise<WskCompletion> {
    return Promise.resolve(
      checkClient(client) ??
        failure(
          STATUS_NOT_SUPPORTED,
          `Client control code ${String(controlCode)} is not supported by this model`,
        ),
    );
  },
  WskGetAddressInfo: guarded(wskGetAddressInfo),
  WskFreeAddressInfo(_client: WskClient, _addresses: SockAddr[]): void {},
  WskGetNameInfo(client: WskClient): Promise<WskCompletion> {
    return Promise.resolve(
      checkClient(client) ?? failure(STATUS_NOT_SUPPORTED, "WskGetNameInfo is not modelled"),
    );
  },
});

/** WSK_PROVIDER_NPI: the client object and the provider's table. */
export interface WskProviderNpi {
  /** Pass it as the first argument of every WSK_PROVIDER_DISPATCH call. */
  readonly Client: WskClient;
  /** The client-level functions. */
  readonly Dispatch: WskProviderDispatch;
}

/**
 * Captures the provider NPI (registration and capture in one step: the model is always ready).
 *
 * @example Create a connection socket
 * ```ts
 * import assert from "node:assert/strict";
 * import { WskCaptureProviderNPI } from "./provider.ts";
 * import { AF_INET6, IPPROTO_TCP, SOCK_STREAM, WSK_FLAG_CONNECTION_SOCKET } from "./mod.ts";
 *
 * const { Client, Dispatch } = WskCaptureProviderNPI();
 * const created = await Dispatch.WskSocket(
 *   Client, AF_INET6, SOCK_STREAM, IPPROTO_TCP, WSK_FLAG_CONNECTION_SOCKET,
 * );
 * assert.equal(created.socket?.state, "INIT");
 * await created.socket!.Dispatch.WskCloseSocket(created.socket!);
 * ```
 */
export function WskCaptureProviderNPI(): WskProviderNpi {
  return { Client: new WskClient(), Dispatch: WSK_PROVIDER_DISPATCH };
}

/**
 * Releases a captured NPI: later client-level calls on its client are refused.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { WskCaptureProviderNPI, WskReleaseProviderNPI } from "./provider.ts";
 * import { STATUS_INVALID_HANDLE } from "./status.ts";
 *
 * const npi = WskCaptureProviderNPI();
 * WskReleaseProviderNPI(npi);
 * const c = await npi.Dispatch.WskSocket(npi.Client, 2, 1, 6, 2);
 * assert.equal(c.status, STATUS_INVALID_HANDLE);
 * ```
 */
export function WskReleaseProviderNPI(npi: WskProviderNpi): void {
  npi.Client.release();
}

// ---------------------------------------------------------------------------------------------
// Basic sockets: options and IOCTLs only, no transport under them.

/**
 * WSK_PROVIDER_BASIC_DISPATCH: WskControlSocket and WskCloseSocket. A basic socket reports every
 * documented option and IOCTL unsupported, and unknown ones invalid.
 */
export type WskProviderBasicDispatch = WskSocketBasicDispatch<WskBasicSocket>;

/** The one basic dispatch table. */
export let WSK_PROVIDER_BASIC_DISPATCH: WskProviderBasicDispatch;

/** A basic socket (WSK_FLAG_BASIC_SOCKET): it cannot be bound and carries no data. */
export class WskBasicSocket {
  /** A number that names this socket within the process. */
  readonly id: number = allocateSocketId();
  /** The address family given at creation. */
  readonly family: AddressFamily;
  #closed = false;

  /** Made by WskSocket with WSK_FLAG_BASIC_SOCKET; constructing one directly is the same. */
  constructor(family: AddressFamily) {
    this.family = family;
  }

  /** The provider's function table for this socket. */
  get Dispatch(): WskProviderBasicDispatch {
    return WSK_PROVIDER_BASIC_DISPATCH;
  }

  /** "OPEN" or "CLOSED". */
  get state(): "OPEN" | "CLOSED" {
    return this.#closed ? "CLOSED" : "OPEN";
  }

  static {
    const withBasic = socketGuard(
      (socket): socket is WskBasicSocket => socket instanceof WskBasicSocket && !socket.#closed,
      "Not an open basic socket",
    );
    const table: WskProviderBasicDispatch = {
      WskControlSocket(socket, requestType, controlCode, level, _input, _output, irp) {
        return withBasic(socket, () => {
          const unsupported = requestType === 2
            ? unsupportedIoctl(controlCode)
            : unsupportedOption(level, controlCode);
          return Promise.resolve(
            checkIrp(irp) ??
              (unsupported
                ? failure(STATUS_NOT_SUPPORTED, `Not supported: ${unsupported}`)
                : failure(STATUS_INVALID_PARAMETER, "Not an option or IOCTL of a basic socket")),
          );
        });
      },
      WskCloseSocket(socket, _irp) {
        return withBasic(socket, (s) => {
          s.#closed = true;
          return Promise.resolve(success());
        });
      },
    };
    WSK_PROVIDER_BASIC_DISPATCH = Object.freeze(table);
  }
}

function newBasicSocket(family: AddressFamily): WskBasicSocket {
  return new WskBasicSocket(family);
}

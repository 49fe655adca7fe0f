/**
 * wsk's provider: a model of the Windows Winsock Kernel (WSK) connection-socket API on real
 * Deno sockets. It has no CLI knowledge, prints nothing and never exits the process.
 *
 * One socket's life, the way a WSK client drives it:
 *
 * 1. `WskCaptureProviderNPI()` gives the client object and `WSK_PROVIDER_DISPATCH`.
 * 2. `WskSocket(Client, AF_INET, SOCK_STREAM, IPPROTO_TCP, WSK_FLAG_CONNECTION_SOCKET)` creates
 *    a socket in state INIT.
 * 3. `socket.Dispatch.WskBind(socket, address)` binds it (BOUND), `WskConnect` connects it
 *    (ESTAB); or `WskSocketConnect` does all three at once.
 * 4. `WskSend` and `WskReceive` move data; a successful receive of 0 bytes is the peer's FIN.
 * 5. `WskDisconnect` sends FIN (or RST with WSK_FLAG_ABORTIVE); `WskCloseSocket` ends it.
 *
 * Every call resolves to a completion record `{ status, information }` and never throws for a
 * network outcome or a bad argument. An `{ signal, timeout }` object stands in for the IRP.
 *
 * @example Send and receive through an echo peer
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   AF_INET, IPPROTO_TCP, parseSockAddr, SOCK_STREAM, STATUS_SUCCESS,
 *   WskCaptureProviderNPI, wskBuf,
 * } from "./mod.ts";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const echo = (async () => {
 *   using conn = await listener.accept();
 *   const buf = new Uint8Array(16);
 *   const n = await conn.read(buf);
 *   await conn.write(buf.subarray(0, n!));
 * })();
 * const { Client, Dispatch } = WskCaptureProviderNPI();
 * const made = await Dispatch.WskSocketConnect(
 *   Client, SOCK_STREAM, IPPROTO_TCP,
 *   parseSockAddr("127.0.0.1:0"), parseSockAddr(`127.0.0.1:${listener.addr.port}`), 0,
 * );
 * const socket = made.socket!;
 * await socket.Dispatch.WskSend(socket, wskBuf(new TextEncoder().encode("ping")));
 * const reply = new Uint8Array(4);
 * const got = await socket.Dispatch.WskReceive(socket, wskBuf(reply), 0, { timeout: 5000 });
 * assert.equal(got.status, STATUS_SUCCESS);
 * assert.equal(new TextDecoder().decode(reply), "ping");
 * await echo;
 * await socket.Dispatch.WskCloseSocket(socket);
 * ```
 *
 * @module
 */

export * from "./status.ts";
export * from "./address.ts";
export * from "./types.ts";
export type { BackingKind } from "./_backing.ts";
export type {
  TlsClientOptions,
  TlsInfo,
  TlsOptions,
  TlsServerOptions,
  WskTlsCompletion,
} from "./tls.ts";
export { hostErrorCode } from "./_errors.ts";
export { canResetDenoConnections } from "./_rst.ts";
export type { ControlInput, WskSocketBasicDispatch } from "./_control.ts";
export {
  type BackingPreference,
  type ConnectionState,
  IDEAL_SEND_BACKLOG,
  type Teardown,
  WSK_PROVIDER_CONNECTION_DISPATCH,
  WskConnectionSocket,
  type WskProviderConnectionDispatch,
  type WskSocketOptions,
} from "./connection.ts";
export {
  type ListenState,
  WSK_PROVIDER_LISTEN_DISPATCH,
  type WskAcceptCompletion,
  type WskAcceptEventResult,
  type WskClientListenDispatch,
  type WskListenOptions,
  WskListenSocket,
  type WskProviderListenDispatch,
} from "./listen.ts";
export {
  prepareProvider,
  WSK_PROVIDER_BASIC_DISPATCH,
  WSK_PROVIDER_DISPATCH,
  type WskAddressInfoCompletion,
  WskBasicSocket,
  WskCaptureProviderNPI,
  WskClient,
  type WskClientDispatch,
  type WskCreateOptions,
  type WskPreparation,
  type WskProviderBasicDispatch,
  type WskProviderDispatch,
  type WskProviderNpi,
  WskReleaseProviderNPI,
  type WskSocketCompletion,
} from "./provider.ts";

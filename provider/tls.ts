/**
 * TLS on a connection socket, as a model extension: a kernel client would run Schannel (through
 * ksecdd) over its WSK socket; the model upgrades the host socket in place instead, and reports
 * the handshake as one call whose failure is the SECURITY_STATUS Schannel would give.
 *
 * @module
 */

import type { NTSTATUS } from "./status.ts";

/** What a client checks and offers in its handshake. */
export interface TlsClientOptions {
  /** The name sent as SNI and checked against the certificate (a host name or an IP literal). */
  readonly servername: string;
  /**
   * CA certificates (PEM text) to trust instead of the system roots on the node backing (as
   * curl's `--cacert`), besides them on the deno backing (Deno.startTls's `caCerts`).
   */
  readonly ca?: readonly string[];
  /** ALPN protocols to offer, in order of preference. */
  readonly alpn?: readonly string[];
}

/** What a server presents. */
export interface TlsServerOptions {
  /** The certificate chain (PEM text). */
  readonly cert: string;
  /** Its private key (PEM text). */
  readonly key: string;
  /** ALPN protocols the server accepts, in order of preference. */
  readonly alpn?: readonly string[];
}

/** Either side of a handshake. */
export type TlsOptions =
  | ({ readonly role: "client" } & TlsClientOptions)
  | ({ readonly role: "server" } & TlsServerOptions);

/**
 * What a completed handshake tells. A field the host API cannot give is null (the deno backing
 * gives only the ALPN protocol: `Deno.TlsConn.handshake()` returns nothing else).
 */
export interface TlsInfo {
  /** The protocol version, e.g. `"TLSv1.3"`. */
  readonly protocol: string | null;
  /** The ALPN protocol agreed on, or null when none was. */
  readonly alpn: string | null;
  /** The peer certificate's subject (`CN=localhost`); `""` when the peer sent none. */
  readonly subject: string | null;
  /** When the peer certificate expires (ISO 8601); null when unknown or when it sent none. */
  readonly expires: string | null;
}

/** The completion of a TLS handshake. */
export interface WskTlsCompletion {
  /** STATUS_SUCCESS, or the SECURITY_STATUS (SEC_E_…) of a failed handshake. */
  readonly status: NTSTATUS;
  /** Always 0: a handshake moves no client bytes. */
  readonly information: number;
  /** The handshake's details, when it succeeded. */
  readonly tls?: TlsInfo;
  /** What failed, in words. */
  readonly message?: string;
  /** The host error behind a failure. */
  readonly cause?: unknown;
}

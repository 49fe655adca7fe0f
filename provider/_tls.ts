/**
 * The TLS upgrade of a host socket, for both backings, and the one table that turns a host's
 * handshake failure into the SECURITY_STATUS Schannel would give a kernel client. Everything
 * here throws {@linkcode TlsFailure} (or host errors); the model turns them into statuses.
 *
 * @module
 */

import type { Socket as NodeSocket } from "node:net";
import type { TLSSocket } from "node:tls";
import { statusFromError } from "./_errors.ts";
import {
  type NTSTATUS,
  SEC_E_ALGORITHM_MISMATCH,
  SEC_E_APPLICATION_PROTOCOL_MISMATCH,
  SEC_E_CERT_EXPIRED,
  SEC_E_CERT_UNKNOWN,
  SEC_E_ILLEGAL_MESSAGE,
  SEC_E_INCOMPLETE_MESSAGE,
  SEC_E_INTERNAL_ERROR,
  SEC_E_UNTRUSTED_ROOT,
  SEC_E_WRONG_PRINCIPAL,
  STATUS_INVALID_PARAMETER,
  STATUS_UNSUCCESSFUL,
} from "./status.ts";
import type { TlsClientOptions, TlsInfo, TlsOptions } from "./tls.ts";

/** A handshake that failed with a known SECURITY_STATUS. */
export class TlsFailure extends Error {
  override name = "TlsFailure";
  readonly status: NTSTATUS;
  constructor(status: NTSTATUS, message: string, options?: ErrorOptions) {
    super(message, options);
    this.status = status;
  }
}

/**
 * Host error text → SECURITY_STATUS, first match wins. The texts are rustls's (Deno.startTls,
 * and Deno's node:tls, which is built on it) and OpenSSL-style codes node:tls reports.
 */
const TLS_ERRORS: readonly [RegExp, NTSTATUS][] = [
  [/expired|CERT_HAS_EXPIRED/i, SEC_E_CERT_EXPIRED],
  [/not valid for name|NotValidForName|ALTNAME|does not match certificate/i, SEC_E_WRONG_PRINCIPAL],
  [
    /UnknownIssuer|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|SELF_SIGNED|CaUsedAsEndEntity|untrusted/i,
    SEC_E_UNTRUSTED_ROOT,
  ],
  [
    /invalid peer certificate|NotValidYet|CERT_NOT_YET_VALID|BadSignature|certificate/i,
    SEC_E_CERT_UNKNOWN,
  ],
  [/NoApplicationProtocol|NO_APPLICATION_PROTOCOL/i, SEC_E_APPLICATION_PROTOCOL_MISMATCH],
  [
    /ProtocolVersion|PROTOCOL_VERSION|HandshakeFailure|HANDSHAKE_FAILURE|InsufficientSecurity|no ciphersuites|PeerIncompatible/i,
    SEC_E_ALGORITHM_MISMATCH,
  ],
  [
    /corrupt message|InvalidContentType|InvalidMessage|fatal alert|WRONG_VERSION_NUMBER|PeerMisbehaved|alert/i,
    SEC_E_ILLEGAL_MESSAGE,
  ],
  [/eof|close_notify|socket disconnected before/i, SEC_E_INCOMPLETE_MESSAGE],
];

/**
 * The SECURITY_STATUS for a host error thrown by a handshake: the table above, else the host
 * socket's own NTSTATUS (a timeout stays STATUS_IO_TIMEOUT), else SEC_E_INTERNAL_ERROR.
 */
export function tlsStatusFromError(error: unknown): { status: NTSTATUS; message: string } {
  if (error instanceof TlsFailure) return { status: error.status, message: error.message };
  const text = error instanceof Error
    ? `${(error as { code?: string }).code ?? ""} ${error.message}`
    : String(error);
  const message = error instanceof Error ? error.message : String(error);
  for (const [pattern, status] of TLS_ERRORS) {
    if (pattern.test(text)) return { status, message };
  }
  // A host socket failure the one table knows (a reset, a timeout, a cancel) keeps its NTSTATUS.
  const socket = statusFromError(error);
  if (socket.status !== STATUS_UNSUCCESSFUL && socket.status !== STATUS_INVALID_PARAMETER) {
    return { status: socket.status, message };
  }
  return { status: SEC_E_INTERNAL_ERROR, message };
}

/** Whether `name` is an IP literal (no SNI is sent for one). */
function isIp(name: string): boolean {
  return /^[0-9.]+$/.test(name) || name.includes(":");
}

/**
 * The peer certificate of a TLS connection made by `Deno.startTls`, or null. `Deno.TlsConn` has
 * no public accessor; it keeps one under a symbol (`Symbol(getPeerCertificate)` on its
 * prototype: the method Deno's own node:tls reads a certificate with), which answers from this
 * connection's handshake. A Deno without it gives null, and the fields stay unknown.
 */
function denoPeerCertificate(conn: Deno.TlsConn): import("node:tls").PeerCertificate | null {
  const prototype = Object.getPrototypeOf(conn) as Record<symbol, unknown>;
  const key = Object.getOwnPropertySymbols(prototype).find((symbol) =>
    symbol.description === "getPeerCertificate"
  );
  const method = key === undefined ? undefined : prototype[key];
  if (typeof method !== "function") return null;
  try {
    const peer = method.call(conn, false);
    return peer !== null && typeof peer === "object" && "subject" in peer ? peer : null;
  } catch {
    return null;
  }
}

/**
 * Upgrades a `Deno.TcpConn` with `Deno.startTls` (client only: Deno has no server-side upgrade
 * of an existing connection). Afterwards the ALPN protocol is known, and the peer certificate's
 * subject and expiry (see {@linkcode denoPeerCertificate}); the protocol version is not.
 */
export async function startTlsDeno(
  conn: Deno.TcpConn,
  options: TlsClientOptions,
): Promise<{ conn: Deno.TlsConn; info: TlsInfo }> {
  const tls = await Deno.startTls(conn, {
    hostname: options.servername,
    ...(options.ca && options.ca.length > 0 ? { caCerts: [...options.ca] } : {}),
    ...(options.alpn && options.alpn.length > 0 ? { alpnProtocols: [...options.alpn] } : {}),
  });
  try {
    const done = await tls.handshake();
    const peer = denoPeerCertificate(tls);
    return {
      conn: tls,
      info: {
        protocol: null,
        alpn: done.alpnProtocol,
        subject: peer ? subjectText(peer.subject as unknown as Record<string, string>) : null,
        expires: peer?.valid_to ? new Date(peer.valid_to).toISOString() : null,
      },
    };
  } catch (error) {
    try {
      tls.close();
    } catch {
      // Already gone.
    }
    throw error;
  }
}

/** node:tls, imported once, on first use. */
let nodeTls: Promise<typeof import("node:tls")> | null = null;

/** Loads node:tls (once): what a node-backed handshake needs beyond node:net. */
export async function loadTls(): Promise<void> {
  nodeTls ??= import("node:tls");
  await nodeTls;
}

/** Each backing's TLS set-up, done once per process by {@linkcode warmTls}. */
const tlsWarm = new Map<"deno" | "node", Promise<void>>();

/** How long the node:tls warm-up waits for its ClientHello. */
const WARM_HELLO_MS = 1000;

/**
 * Sets up, once per process, what a handshake of a `kind` backing needs from the host, on a
 * connection to itself on 127.0.0.1 (as the connect warm-up does): a process's first handshake
 * otherwise pays for it inside its own time. deno: a `Deno.startTls`, closed before any byte of
 * TLS is sent (the first one builds the root store: 40 to 70 ms; later ones take about 1 ms).
 * node: node:tls, and a client that sends its ClientHello to a listener that then closes (the
 * first handshake took 65 to 75 ms against a forking socat, 20 to 25 ms after this). Without
 * net permission for 127.0.0.1 only node:tls is loaded. Never rejects.
 */
export function warmTls(kind: "deno" | "node"): Promise<void> {
  let done = tlsWarm.get(kind);
  if (done === undefined) {
    done = warmOnSelf(kind).catch(() => {
      // Whatever failed here, the first real handshake sets up for itself.
    });
    tlsWarm.set(kind, done);
  }
  return done;
}

async function warmOnSelf(kind: "deno" | "node"): Promise<void> {
  if (kind === "node") await loadTls();
  if (Deno.permissions.querySync({ name: "net", host: "127.0.0.1" }).state !== "granted") return;
  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  } catch {
    return; // No descriptor or no loopback: the first handshake pays for the set-up.
  }
  try {
    const accepted = listener.accept();
    const port = listener.addr.port;
    if (kind === "deno") {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      (await accepted).close();
      (await Deno.startTls(conn, { hostname: "localhost" })).close();
      return;
    }
    const tls = await nodeTls!;
    const client = tls.connect({ host: "127.0.0.1", port, ca: [], rejectUnauthorized: false });
    client.on("error", () => {});
    const conn = await accepted;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        conn.read(new Uint8Array(4096)).catch(() => null),
        new Promise((resolve) => timer = setTimeout(resolve, WARM_HELLO_MS)),
      ]);
    } finally {
      clearTimeout(timer);
      conn.close();
      client.destroy();
    }
  } finally {
    listener.close();
  }
}

/** The subject of a node:tls certificate object as `CN=…, O=…`; "" for none. */
function subjectText(subject: Record<string, string | string[]> | undefined): string {
  if (!subject) return "";
  return Object.entries(subject)
    .map(([key, value]) => `${key}=${Array.isArray(value) ? value.join("+") : value}`)
    .join(", ");
}

/**
 * Upgrades a `node:net` socket with `node:tls`, as a client or a server. The client checks the
 * certificate itself after the handshake (node's own check reports an expired leaf as an
 * unverifiable one): expiry, then trust, then the name. Resolves once the handshake is done;
 * the caller then reads and writes through the returned socket.
 */
export async function startTlsNode(
  socket: NodeSocket,
  options: TlsOptions,
): Promise<{ socket: TLSSocket; info: TlsInfo }> {
  nodeTls ??= import("node:tls");
  const tls = await nodeTls;
  const secured = await new Promise<TLSSocket>((resolve, reject) => {
    let upgraded: TLSSocket;
    const done = (error: Error | null) => {
      upgraded.off("error", done);
      upgraded.off("secure", onSecure);
      upgraded.off("secureConnect", onSecure);
      if (error) {
        upgraded.destroy();
        reject(error);
      } else resolve(upgraded);
    };
    const onSecure = () => done(null);
    if (options.role === "client") {
      const ip = isIp(options.servername);
      upgraded = tls.connect({
        socket,
        ...(ip ? {} : { servername: options.servername }),
        // Given CAs replace the system roots here (reading those needs --allow-sys=ca in Deno).
        ...(options.ca && options.ca.length > 0 ? { ca: [...options.ca] } : {}),
        ...(options.alpn && options.alpn.length > 0 ? { ALPNProtocols: [...options.alpn] } : {}),
        rejectUnauthorized: false,
      });
      upgraded.once("secureConnect", onSecure);
    } else {
      upgraded = new tls.TLSSocket(socket, {
        isServer: true,
        secureContext: tls.createSecureContext({ cert: options.cert, key: options.key }),
        ...(options.alpn && options.alpn.length > 0 ? { ALPNProtocols: [...options.alpn] } : {}),
      });
      upgraded.once("secure", onSecure);
    }
    upgraded.once("error", done);
  });
  const peer = secured.getPeerCertificate();
  const has = peer !== null && typeof peer === "object" && peer.subject !== undefined;
  if (options.role === "client") {
    const failure = clientCheck(tls, secured, options.servername, has ? peer : null);
    if (failure) {
      secured.destroy();
      throw failure;
    }
  }
  const alpn = secured.alpnProtocol;
  return {
    socket: secured,
    info: {
      protocol: secured.getProtocol() ?? null,
      alpn: typeof alpn === "string" ? alpn : null,
      subject: has ? subjectText(peer.subject as unknown as Record<string, string>) : "",
      expires: has && peer.valid_to ? new Date(peer.valid_to).toISOString() : null,
    },
  };
}

/** The client's own check of the server certificate; null when it passes. */
function clientCheck(
  tls: typeof import("node:tls"),
  secured: TLSSocket,
  servername: string,
  peer: import("node:tls").PeerCertificate | null,
): TlsFailure | null {
  if (peer === null) return new TlsFailure(SEC_E_CERT_UNKNOWN, "the server sent no certificate");
  const now = Date.now();
  if (peer.valid_to && Date.parse(peer.valid_to) < now) {
    return new TlsFailure(SEC_E_CERT_EXPIRED, `certificate expired on ${peer.valid_to}`);
  }
  if (peer.valid_from && Date.parse(peer.valid_from) > now) {
    return new TlsFailure(SEC_E_CERT_UNKNOWN, `certificate not valid before ${peer.valid_from}`);
  }
  const trust = secured.authorizationError;
  if (trust && !/ALTNAME/i.test(String(trust))) {
    const mapped = tlsStatusFromError(new Error(String(trust)));
    return new TlsFailure(mapped.status, `certificate not trusted: ${trust}`);
  }
  const name = tls.checkServerIdentity(servername, peer);
  if (name) return new TlsFailure(SEC_E_WRONG_PRINCIPAL, name.message);
  return null;
}

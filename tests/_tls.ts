/**
 * Throwaway certificates for TLS tests, made at test time with `openssl`: a CA (CA:TRUE) and,
 * signed by it, a good leaf for localhost/127.0.0.1, a leaf for another name, and a leaf whose
 * validity ended in 2021. rustls refuses a plain self-signed certificate even when it is given
 * as a CA, hence the two levels.
 *
 * @module
 */

import { runProcess } from "./_child.ts";
import { PY_ONE_CONNECTION } from "./_python.ts";

/** The files {@linkcode makeCerts} writes (absolute paths) and the directory holding them. */
export interface Certs {
  readonly dir: string;
  /** The CA certificate (PEM): what `--ca` takes. */
  readonly ca: string;
  /** A leaf for DNS:localhost and IP:127.0.0.1, its key, and both in one file (for socat). */
  readonly cert: string;
  readonly key: string;
  readonly both: string;
  /** A leaf for DNS:wrong.example only. */
  readonly wrongCert: string;
  /** A leaf for localhost whose validity ended on 2021-01-02. */
  readonly expiredCert: string;
  /** A leaf for localhost signed by a CA nobody is told about. */
  readonly strangerCert: string;
  /** The key of every leaf. */
  readonly leafKey: string;
  /** Removes the directory. */
  remove(): Promise<void>;
}

const CONFIG = `
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
[good]
basicConstraints = CA:FALSE
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
[wrong]
basicConstraints = CA:FALSE
extendedKeyUsage = serverAuth
subjectAltName = DNS:wrong.example
[ca]
default_ca = own
[own]
dir = .
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = any
copy_extensions = none
[any]
commonName = supplied
`;

async function openssl(dir: string, args: string[]): Promise<void> {
  const result = await runProcess("openssl", args, { cwd: dir });
  if (result.code !== 0) {
    throw new Error(`openssl ${args.join(" ")} failed: ${result.stderr}`);
  }
}

/** Makes a CA and its leaves in a new temporary directory. */
export async function makeCerts(): Promise<Certs> {
  const dir = await Deno.makeTempDir({ prefix: "wsk-tls-" });
  const path = (name: string) => `${dir}/${name}`;
  await Deno.writeTextFile(path("openssl.cnf"), CONFIG);
  await Deno.writeTextFile(path("index.txt"), "");
  await Deno.writeTextFile(path("index.txt.attr"), "unique_subject = no\n");
  await Deno.writeTextFile(path("serial"), "1000\n");
  const cnf = ["-config", "openssl.cnf"];
  const ca = async (name: string) => {
    await openssl(dir, ["genrsa", "-out", `${name}.key`, "2048"]);
    await openssl(dir, [
      "req",
      ...cnf,
      "-x509",
      "-new",
      "-key",
      `${name}.key`,
      "-subj",
      `/CN=wsk test ${name}`,
      "-days",
      "2",
      "-extensions",
      "v3_ca",
      "-out",
      `${name}.pem`,
    ]);
  };
  await ca("ca");
  await ca("stranger-ca");
  await openssl(dir, ["genrsa", "-out", "leaf.key", "2048"]);
  const csr = async (cn: string) =>
    await openssl(dir, [
      "req",
      ...cnf,
      "-new",
      "-key",
      "leaf.key",
      "-subj",
      `/CN=${cn}`,
      "-out",
      `${cn}.csr`,
    ]);
  await csr("localhost");
  await csr("wrong.example");
  const sign = async (
    cn: string,
    out: string,
    ext: string,
    issuer: string,
    dates: string[] = ["-days", "2"],
  ) =>
    await openssl(dir, [
      "ca",
      ...cnf,
      "-batch",
      "-notext",
      "-cert",
      `${issuer}.pem`,
      "-keyfile",
      `${issuer}.key`,
      "-in",
      `${cn}.csr`,
      "-extensions",
      ext,
      "-extfile",
      "openssl.cnf",
      ...dates,
      "-out",
      out,
    ]);
  await sign("localhost", "leaf.pem", "good", "ca");
  await sign("wrong.example", "wrong.pem", "wrong", "ca");
  await sign("localhost", "expired.pem", "good", "ca", [
    "-startdate",
    "20210101000000Z",
    "-enddate",
    "20210102000000Z",
  ]);
  await sign("localhost", "stranger.pem", "good", "stranger-ca");
  const both = (await Deno.readTextFile(path("leaf.pem"))) +
    (await Deno.readTextFile(path("leaf.key")));
  await Deno.writeTextFile(path("both.pem"), both);
  return {
    dir,
    ca: path("ca.pem"),
    cert: path("leaf.pem"),
    key: path("leaf.key"),
    both: path("both.pem"),
    wrongCert: path("wrong.pem"),
    expiredCert: path("expired.pem"),
    strangerCert: path("stranger.pem"),
    leafKey: path("leaf.key"),
    remove: () => Deno.remove(dir, { recursive: true }),
  };
}

/**
 * A python3 TLS source. argv (after the host): CERT KEY N [abrupt]. It serves one connection
 * with TLS (server side), sends N bytes (byte i is i·7 mod 251) in 1 MiB writes, sends
 * close_notify (with `abrupt`: only a TCP FIN, as servers that skip it do) and waits for the
 * client to close, then prints {"sha256": hex digest of what it sent, "version": the TLS
 * version}.
 */
export const PY_TLS_SOURCE = PY_ONE_CONNECTION + String.raw`
import hashlib, ssl
cert, key, n, abrupt = args[0], args[1], int(args[2]), args[3:] == ["abrupt"]
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
tls = context.wrap_socket(conn, server_side=True)
version = tls.version()
block = bytes((i * 7) % 251 for i in range(1 << 20))
digest = hashlib.sha256()
sent = 0
while sent < n:
    part = block[: min(len(block), n - sent)]
    tls.sendall(part)
    digest.update(part)
    sent += len(part)
try:
    if abrupt:
        tls.shutdown(socket.SHUT_WR)  # drops TLS first: no close_notify
        plain = tls
    else:
        plain = tls.unwrap()
    while plain.recv(65536):
        pass
except (OSError, ssl.SSLError):
    pass
print(json.dumps({"sha256": digest.hexdigest(), "version": version}), flush=True)
`;

/**
 * A python3 TLS sink. argv (after the host): CERT KEY. It serves one connection with TLS (server
 * side), reads until the client's close_notify or FIN, and prints {"bytes": N, "sha256": hex
 * digest of what it read, "version": the TLS version}.
 */
export const PY_TLS_SINK = PY_ONE_CONNECTION + String.raw`
import hashlib, ssl
cert, key = args[0], args[1]
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
tls = context.wrap_socket(conn, server_side=True)
version = tls.version()
digest = hashlib.sha256()
got = 0
while True:
    try:
        data = tls.recv(1 << 20)
    except ssl.SSLEOFError:
        break
    if not data:
        break
    digest.update(data)
    got += len(data)
print(json.dumps({"bytes": got, "sha256": digest.hexdigest(), "version": version}), flush=True)
`;

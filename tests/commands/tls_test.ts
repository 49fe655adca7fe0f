// TLS against real peers: `openssl s_server` (HTTPS with -www), a python3 SMTP-like peer that
// upgrades with `ssl` after STARTTLS, and `openssl s_client` against `accept --tls`. The
// certificates are a throwaway CA and leaves made at test time (tests/_tls.ts).

import assert from "node:assert/strict";
import { FFI, parseLine, runCli, sha256 } from "../_helpers.ts";
import { Child, runProcess } from "../_child.ts";
import { PY_ONE_CONNECTION, PythonPeer } from "../_python.ts";
import { makeCerts, PY_TLS_SINK, PY_TLS_SOURCE } from "../_tls.ts";
import { CliChild, randomBytes } from "./_peer.ts";

const certs = await makeCerts();
globalThis.addEventListener("unload", () => Deno.removeSync(certs.dir, { recursive: true }));

/** `openssl s_server -www` with `cert`, ready once it printed its ACCEPT line (and port). */
async function sServer(
  cert: string,
  extra: string[] = [],
): Promise<{ server: Child; port: number }> {
  const server = new Child("openssl", [
    "s_server",
    "-accept",
    "127.0.0.1:0",
    "-cert",
    cert,
    "-key",
    certs.leafKey,
    "-www",
    ...extra,
  ], { stdin: "piped" });
  try {
    const line = await server.stdout.waitFor(
      () => server.stdout.lines().find((l) => l.startsWith("ACCEPT")),
      20_000,
      `s_server's ACCEPT line (stderr: ${server.stderr.text()})`,
    );
    return { server, port: Number(/:(\d+)$/.exec(line)![1]) };
  } catch (error) {
    await server[Symbol.asyncDispose]();
    throw error;
  }
}

/** `wsk accept 127.0.0.1:0 --tls` with the test leaf and `extra` options, as a child. */
function tlsServer(...extra: string[]): CliChild {
  return new CliChild([
    "accept",
    "127.0.0.1:0",
    "--tls",
    "--cert",
    certs.cert,
    "--key",
    certs.key,
    ...extra,
  ]);
}

/** The parsed human lines of a run's stdout (or stderr) whose call is `call`. */
function linesOf(text: string, call: string): Record<string, string>[] {
  return text.split("\n").filter((l) => l.startsWith(call + " ")).map(parseLine);
}

Deno.test("send --tls --ca: an HTTPS GET against openssl s_server gets its page, exit 0", async () => {
  const { server, port } = await sServer(certs.cert);
  await using _ = server;
  const out = await runCli([
    "send",
    `127.0.0.1:${port}`,
    "GET / HTTP/1.0\\r\\n\\r\\n",
    "--receive",
    "--ca",
    certs.ca,
  ]);
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stdout, /^HTTP\/1\.0 200 ok/);
  assert.match(out.stdout, /<\/HTML>/);
  const [hello] = linesOf(out.stderr, "TlsHandshake");
  assert.ok(hello, out.stderr);
  assert.equal(hello.status, "STATUS_SUCCESS");
  assert.match(hello.protocol!, /^TLSv1\.[23]$/);
  assert.equal(hello.subject, "CN=localhost");
  // The leaf was made to last two days from now.
  const expires = Date.parse(hello.expires!);
  assert.ok(expires > Date.now() && expires < Date.now() + 3 * 86400_000, String(hello.expires));
  // WskSend counts plaintext bytes: the request as typed, not the TLS records.
  const [sent] = linesOf(out.stderr, "WskSend");
  assert.equal(sent!.bytes, "18");
  const [received] = linesOf(out.stderr, "WskReceive");
  assert.equal(Number(received!.bytes), new TextEncoder().encode(out.stdout).length);
});

Deno.test("connect --tls without --ca: SEC_E_UNTRUSTED_ROOT 0x80090325, exit 1", async () => {
  const { server, port } = await sServer(certs.cert);
  await using _ = server;
  const out = await runCli(["connect", `127.0.0.1:${port}`, "--tls"]);
  assert.equal(out.code, 1, out.stdout + out.stderr);
  const [hello] = linesOf(out.stdout, "TlsHandshake");
  assert.equal(hello?.status, "SEC_E_UNTRUSTED_ROOT", out.stdout);
  assert.match(out.stdout, /TlsHandshake SEC_E_UNTRUSTED_ROOT 0x80090325 /);
});

Deno.test("connect --tls, certificate signed by another CA: SEC_E_UNTRUSTED_ROOT", async () => {
  const { server, port } = await sServer(certs.strangerCert);
  await using _ = server;
  const out = await runCli(["connect", `127.0.0.1:${port}`, "--ca", certs.ca, "--json"]);
  assert.equal(out.code, 1, out.stdout + out.stderr);
  const hello = out.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l))
    .find((r) => r.call === "TlsHandshake");
  assert.equal(hello?.status, "SEC_E_UNTRUSTED_ROOT");
  assert.equal(hello?.ntstatus, "0x80090325");
});

Deno.test("connect --servername wrong.example: SEC_E_WRONG_PRINCIPAL 0x80090322, exit 1", async () => {
  const { server, port } = await sServer(certs.cert);
  await using _ = server;
  const out = await runCli([
    "connect",
    `127.0.0.1:${port}`,
    "--ca",
    certs.ca,
    "--servername",
    "wrong.example",
  ]);
  assert.equal(out.code, 1, out.stdout + out.stderr);
  assert.match(out.stdout, /TlsHandshake SEC_E_WRONG_PRINCIPAL 0x80090322 /);
});

Deno.test("connect --tls --status SEC_E_WRONG_PRINCIPAL: an expected handshake failure exits 0, a success 3", async () => {
  const { server, port } = await sServer(certs.cert);
  await using _ = server;
  const common = ["connect", `127.0.0.1:${port}`, "--ca", certs.ca];
  const expected = await runCli([
    ...common,
    "--servername",
    "wrong.example",
    "--status",
    "SEC_E_WRONG_PRINCIPAL",
  ]);
  assert.equal(expected.code, 0, expected.stdout + expected.stderr);
  assert.match(
    expected.stdout,
    /Expect PASSED step=1 line=1 verb=connect expected="SEC_E_WRONG_PRINCIPAL"/,
  );
  const passed = await runCli([...common, "--status", "SEC_E_WRONG_PRINCIPAL"]);
  assert.equal(passed.code, 3, passed.stdout + passed.stderr);
  assert.match(passed.stdout, /actual="STATUS_SUCCESS"/);
  // A refused connect expected as such runs no handshake.
  const refused = await runCli([
    "connect",
    "127.0.0.1:1",
    "--tls",
    "--status",
    "CONNECTION_REFUSED",
  ]);
  assert.equal(refused.code, 0, refused.stdout + refused.stderr);
  assert.doesNotMatch(refused.stdout, /TlsHandshake/);
});

Deno.test("connect to a server whose leaf expired: SEC_E_CERT_EXPIRED 0x80090328, exit 1", async () => {
  const { server, port } = await sServer(certs.expiredCert);
  await using _ = server;
  const out = await runCli(["connect", `localhost:${port}`, "--ca", certs.ca]);
  assert.equal(out.code, 1, out.stdout + out.stderr);
  assert.match(out.stdout, /TlsHandshake SEC_E_CERT_EXPIRED 0x80090328 /);
});

Deno.test("connect --alpn: the protocol the server picks is shown; none in common is a status", async () => {
  const { server, port } = await sServer(certs.cert, ["-alpn", "h2,http/1.1"]);
  await using _ = server;
  const agreed = await runCli([
    "connect",
    `127.0.0.1:${port}`,
    "--ca",
    certs.ca,
    "--alpn",
    "http/1.1,h2",
    "--json",
  ]);
  assert.equal(agreed.code, 0, agreed.stdout + agreed.stderr);
  const hello = agreed.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l))
    .find((r) => r.call === "TlsHandshake");
  // s_server chooses by its own order among what the client offers.
  assert.equal(hello?.alpn, "h2");
  assert.match(hello?.protocol, /^TLSv1\.[23]$/);
  assert.equal(hello?.subject, "CN=localhost");
  const none = await runCli(["connect", `127.0.0.1:${port}`, "--ca", certs.ca, "--alpn", "foo"]);
  assert.equal(none.code, 1, none.stdout + none.stderr);
  assert.match(none.stdout, /TlsHandshake SEC_E_APPLICATION_PROTOCOL_MISMATCH 0x80090367 /);
});

Deno.test("connect --tls to a peer that does not speak TLS: SEC_E_ILLEGAL_MESSAGE, exit 1", async () => {
  await using peer = await PythonPeer.start(
    PY_ONE_CONNECTION + String.raw`
conn.recv(4096)
conn.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\nnot tls here\r\n")
conn.close()
`,
    ["127.0.0.1"],
  );
  const out = await runCli(["connect", peer.address, "--ca", certs.ca]);
  assert.equal(out.code, 1, out.stdout + out.stderr);
  assert.match(out.stdout, /TlsHandshake SEC_E_ILLEGAL_MESSAGE 0x80090326 /);
});

/**
 * An SMTP-like peer: greets with 220, reads STARTTLS, answers "220 go ahead", wraps the
 * connection with python's ssl as a server, then echoes one line over TLS and closes.
 */
const PY_SMTP = PY_ONE_CONNECTION + String.raw`
import ssl
cert, key = args
conn.sendall(b"220 wsk test ESMTP\r\n")
line = b""
while not line.endswith(b"\n"):
    chunk = conn.recv(1)
    if not chunk:
        break
    line += chunk
if line.strip() != b"STARTTLS":
    conn.sendall(b"500 expected STARTTLS\r\n")
    conn.close()
    sys.exit(0)
conn.sendall(b"220 go ahead\r\n")
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
tls = context.wrap_socket(conn, server_side=True)
data = b""
while not data.endswith(b"\n"):
    chunk = tls.recv(4096)
    if not chunk:
        break
    data += chunk
tls.sendall(b"250 " + data)
print(json.dumps({"version": tls.version(), "got": data.decode()}), flush=True)
tls.unwrap().close()
`;

Deno.test("run: starttls in a script upgrades a connection after an SMTP-style STARTTLS", async () => {
  await using peer = await PythonPeer.start(PY_SMTP, ["127.0.0.1", certs.cert, certs.key]);
  const script = [
    `connect ${peer.address}`,
    'receive --until "\\r\\n" --expect "220 "',
    'send "STARTTLS\\r\\n"',
    'receive --until "\\r\\n" --expect "220 go ahead"',
    `starttls --ca ${certs.ca} --servername localhost`,
    'send "EHLO over tls\\r\\n"',
    'receive --until "\\r\\n" --expect "250 EHLO over tls"',
  ].join("\n");
  const out = await runCli(["run", "-"], { stdin: script });
  assert.equal(out.code, 0, out.stdout + out.stderr);
  const [hello] = linesOf(out.stdout, "TlsHandshake");
  assert.equal(hello?.status, "STATUS_SUCCESS", out.stdout);
  assert.match(hello!.protocol!, /^TLSv1\.[23]$/);
  assert.equal(hello!.subject, "CN=localhost");
  const report = await peer.report() as { version: string; got: string };
  assert.equal(report.got, "EHLO over tls\r\n");
  assert.equal(report.version, hello!.protocol);
  // The send after the upgrade counts the 15 plaintext bytes.
  const sends = linesOf(out.stdout, "WskSend");
  assert.equal(sends.at(-1)!.bytes, "15");
});

Deno.test("starttls on the command line without a handle is a usage error (exit 2)", async () => {
  const out = await runCli(["starttls", "--ca", certs.ca]);
  assert.equal(out.code, 2, out.stdout + out.stderr);
  assert.match(out.stderr, /session handle/);
});

Deno.test("accept --tls --cert --key: openssl s_client gets the reply, the server the data", async () => {
  await using server = tlsServer("--mode", "reply", "--reply", "hello from wsk\\n");
  const local = await server.bindLocal("stdout");
  const client = await runProcess("openssl", [
    "s_client",
    "-connect",
    local,
    "-CAfile",
    certs.ca,
    "-verify_return_error",
    "-quiet",
  ], { stdin: "hello from s_client\n" });
  assert.equal(client.code, 0, client.stderr);
  assert.match(client.stdout, /hello from wsk/);
  assert.equal(await server.exitCode(20_000), 0, server.stdout.text() + server.stderr.text());
  const lines = server.stdout.text();
  const [hello] = linesOf(lines, "TlsHandshake");
  assert.equal(hello?.status, "STATUS_SUCCESS", lines);
  assert.match(hello!.protocol!, /^TLSv1\.[23]$/);
  // s_client sent no certificate.
  assert.equal(hello!.subject, "");
  const [summary] = linesOf(lines, "Summary");
  assert.equal(summary?.sent, "15", lines);
  assert.equal(summary?.received, "20", lines);
});

Deno.test("accept --tls with a plaintext client: SEC_E_ILLEGAL_MESSAGE on the server, exit 1", async () => {
  await using server = new CliChild([
    "accept",
    "127.0.0.1:0",
    "--cert",
    certs.cert,
    "--key",
    certs.key,
  ]);
  const local = await server.bindLocal("stdout");
  const client = await runCli(["send", local, "plain text, not a ClientHello\\r\\n"]);
  assert.equal(await server.exitCode(20_000), 1, server.stdout.text());
  assert.match(server.stdout.text(), /TlsHandshake SEC_E_ILLEGAL_MESSAGE 0x80090326 /);
  assert.ok(client.code === 0 || client.code === 1, client.stderr);
});

Deno.test("accept --tls without --key, or with --events, is a usage error (exit 2)", async () => {
  const noKey = await runCli(["accept", "--tls", "--cert", certs.cert]);
  assert.equal(noKey.code, 2, noKey.stderr);
  assert.match(noKey.stderr, /--key/);
  const events = await runCli([
    "accept",
    "--cert",
    certs.cert,
    "--key",
    certs.key,
    "--events",
  ]);
  assert.equal(events.code, 2, events.stderr);
  const badCa = await runCli(["connect", "127.0.0.1:9", "--ca", certs.key]);
  assert.equal(badCa.code, 2, badCa.stderr);
  assert.match(badCa.stderr, /no PEM certificate/);
});

Deno.test("starttls on a session handle: later send and receive on the handle go through TLS", async () => {
  const { server, port } = await sServer(certs.cert);
  await using _ = server;
  const dir = `/tmp/wsk-tls-session-${crypto.randomUUID()}`;
  const wsk = (args: string[]) => runCli(args, { env: { WSK_SESSION_DIR: dir } });
  try {
    const made = await wsk(["socketconnect", `127.0.0.1:${port}`, "--session"]);
    assert.equal(made.code, 0, made.stdout + made.stderr);
    const upgraded = await wsk(["starttls", "@1", "--ca", certs.ca, "--servername", "localhost"]);
    assert.equal(upgraded.code, 0, upgraded.stdout + upgraded.stderr);
    assert.match(upgraded.stdout, /^TlsHandshake STATUS_SUCCESS 0x00000000 .*handle=@1 /);
    assert.match(upgraded.stdout, / subject="CN=localhost" /);
    const sent = await wsk(["send", "@1", "GET / HTTP/1.0\\r\\n\\r\\n"]);
    assert.equal(sent.code, 0, sent.stdout + sent.stderr);
    const got = await wsk(["receive", "@1", "--bytes", "15", "--waitall"]);
    assert.equal(got.code, 0, got.stdout + got.stderr);
    assert.match(got.stdout, /data="HTTP\/1\.0 200 ok"/);
  } finally {
    await wsk(["session", "stop"]);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("run: a socket a later starttls upgrades connects on the node backing, even with --allow-ffi", async () => {
  const { server, port } = await sServer(certs.cert, ["-alpn", "http/1.1"]);
  await using _ = server;
  const script = [
    `connect 127.0.0.1:${port}`,
    `starttls --ca ${certs.ca} --alpn http/1.1`,
    'send "GET / HTTP/1.0\\r\\n\\r\\n"',
    'receive --until "\\r\\n" --expect "200 ok"',
  ].join("\n");
  // With --allow-ffi a plain script connect would take the deno backing, whose handshake
  // cannot tell the protocol or the certificate.
  const out = await runCli(["run", "-"], { stdin: script, permissions: [FFI] });
  assert.equal(out.code, 0, out.stdout + out.stderr);
  const [hello] = linesOf(out.stdout, "TlsHandshake");
  assert.equal(hello?.status, "STATUS_SUCCESS", out.stdout);
  assert.equal(hello!.alpn, "http/1.1");
  assert.match(hello!.protocol!, /^TLSv1\.[23]$/);
  assert.equal(hello!.subject, "CN=localhost");
});

Deno.test("accept --tls --mode forward: TLS ends at the server, the target gets plaintext", async () => {
  await using target = new CliChild(["accept", "127.0.0.1:0", "--mode", "echo"]);
  const targetLocal = await target.bindLocal("stdout");
  await using front = tlsServer("--mode", "forward", "--to", targetLocal);
  const local = await front.bindLocal("stdout");
  const out = await runCli(["send", local, "relay me\\n", "--receive", "--ca", certs.ca]);
  assert.equal(out.code, 0, out.stdout + out.stderr);
  assert.equal(out.stdout, "relay me\n");
  assert.equal(await front.exitCode(20_000), 0, front.stdout.text());
  assert.equal(await target.exitCode(20_000), 0, target.stdout.text());
  // The target saw the 9 plaintext bytes, not TLS records.
  const [summary] = linesOf(target.stdout.text(), "Summary");
  assert.equal(summary?.received, "9", target.stdout.text());
  assert.match(front.stdout.text(), /TlsHandshake STATUS_SUCCESS /);
});

Deno.test("replay: a TlsHandshake record becomes a starttls step with the same status", async () => {
  const { server, port } = await sServer(certs.cert);
  await using _ = server;
  const log = await Deno.makeTempFile({ prefix: "wsk-tls-log-" });
  try {
    const recorded = await runCli(["connect", `127.0.0.1:${port}`, "--tls", "--json"]);
    assert.equal(recorded.code, 1, recorded.stderr);
    await Deno.writeTextFile(log, recorded.stdout);
    const script = await runCli(["replay", log, "--print-script"]);
    assert.match(script.stdout, /^starttls --status SEC_E_UNTRUSTED_ROOT/m);
    const replayed = await runCli(["replay", log]);
    assert.equal(replayed.code, 0, replayed.stdout + replayed.stderr);
    assert.match(replayed.stdout, /TlsHandshake SEC_E_UNTRUSTED_ROOT /);
    assert.match(replayed.stdout, /Replay MATCHED /);
  } finally {
    await Deno.remove(log);
  }
});

// A streamed send reuses its two read buffers while node:tls still holds the chunk it was given:
// each WskSend must complete only once node:tls is done with it, or the sink reads later bytes.
Deno.test("send --tls --file and stdin: 5 MiB of random bytes reach a python3 ssl sink byte-exact", async () => {
  const bytes = randomBytes(5 * 1024 * 1024 + 777);
  const expected = await sha256(bytes);
  const path = await Deno.makeTempFile({ prefix: "wsk-tls-send-" });
  try {
    await Deno.writeFile(path, bytes);
    for (const source of [["--file", path], []]) {
      await using peer = await PythonPeer.start<{ bytes: number; sha256: string; version: string }>(
        PY_TLS_SINK,
        ["127.0.0.1", certs.cert, certs.key],
      );
      const note = `send --tls ${source.join(" ") || "(stdin)"}`;
      const out = await runCli(
        ["send", peer.address, ...source, "--ca", certs.ca, "--no-progress"],
        source.length === 0 ? { stdin: bytes } : {},
      );
      assert.equal(out.code, 0, `${note}: ${out.stdout}${out.stderr}`);
      const [hello] = linesOf(out.stdout, "TlsHandshake");
      assert.match(hello?.protocol ?? "", /^TLSv1\.[23]$/, out.stdout);
      const [sent] = linesOf(out.stdout, "WskSend");
      assert.equal(sent?.status, "STATUS_SUCCESS", out.stdout);
      assert.equal(sent!.bytes, String(bytes.length), note);
      const report = await peer.report();
      assert.equal(report.bytes, bytes.length, note);
      assert.equal(report.sha256, expected, note);
    }
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("receive --tls: 6 MiB from a python3 ssl source arrive whole, read with Deno.startTls", async () => {
  const n = 6 * 1024 * 1024;
  await using peer = await PythonPeer.start<{ sha256: string; version: string }>(
    PY_TLS_SOURCE,
    ["127.0.0.1", certs.cert, certs.key, String(n)],
  );
  const output = await Deno.makeTempFile({ prefix: "wsk-tls-receive-" });
  try {
    const out = await runCli([
      "receive",
      peer.address,
      "--ca",
      certs.ca,
      "--output",
      output,
      "--no-progress",
    ]);
    assert.equal(out.code, 0, out.stdout + out.stderr);
    const [hello] = linesOf(out.stdout, "TlsHandshake");
    assert.equal(hello?.status, "STATUS_SUCCESS", out.stdout);
    // Deno.startTls cannot tell the protocol version; the certificate is this connection's.
    assert.equal(hello!.protocol, "-");
    assert.equal(hello!.subject, "CN=localhost");
    assert.ok(Date.parse(hello!.expires!) > Date.now(), String(hello!.expires));
    const [received] = linesOf(out.stdout, "WskReceive");
    assert.equal(received?.status, "STATUS_SUCCESS", out.stdout);
    assert.equal(received!.bytes, String(n));
    const report = await peer.report();
    assert.match(report.version, /^TLSv1\.[23]$/);
    assert.equal(await sha256(await Deno.readFile(output)), report.sha256);
  } finally {
    await Deno.remove(output);
  }
});

Deno.test("receive --tls --bind: a specific source address takes node:tls, which tells the protocol", async () => {
  await using peer = await PythonPeer.start<{ sha256: string; version: string }>(
    PY_TLS_SOURCE,
    ["127.0.0.1", certs.cert, certs.key, String(64 * 1024)],
  );
  const out = await runCli([
    "receive",
    peer.address,
    "--bind",
    "127.0.0.1:0",
    "--ca",
    certs.ca,
    "--bytes",
    "65536",
    "--output",
    "/dev/null",
  ]);
  assert.equal(out.code, 0, out.stdout + out.stderr);
  const [hello] = linesOf(out.stdout, "TlsHandshake");
  assert.equal(hello?.status, "STATUS_SUCCESS", out.stdout);
  const report = await peer.report();
  assert.equal(hello!.protocol, report.version);
});

Deno.test("receive --tls: a server's FIN without close_notify ends the stream like a FIN, exit 0", async () => {
  const n = 256 * 1024;
  await using peer = await PythonPeer.start<{ sha256: string }>(
    PY_TLS_SOURCE,
    ["127.0.0.1", certs.cert, certs.key, String(n), "abrupt"],
  );
  const out = await runCli(["receive", peer.address, "--ca", certs.ca, "--output", "/dev/null"]);
  assert.equal(out.code, 0, out.stdout + out.stderr);
  const [received] = linesOf(out.stdout, "WskReceive");
  assert.equal(received?.status, "STATUS_SUCCESS", out.stdout);
  assert.equal(received!.bytes, String(n));
  await peer.report();
});

// WskConnectionSocket.startTls on both backings against openssl s_server: what each can tell,
// the failure statuses, plaintext byte counts, and the state checks.

import assert from "node:assert/strict";
import {
  NT_SUCCESS,
  SEC_E_UNTRUSTED_ROOT,
  SEC_E_WRONG_PRINCIPAL,
  sockAddr,
  STATUS_INVALID_DEVICE_STATE,
  STATUS_SUCCESS,
  wildcard,
  WSK_FLAG_WAITALL,
  wskBuf,
  type WskConnectionSocket,
} from "../../provider/mod.ts";
import { newSocket } from "../_helpers.ts";
import { Child } from "../_child.ts";
import { PythonPeer } from "../_python.ts";
import { makeCerts, PY_TLS_SOURCE } from "../_tls.ts";

const certs = await makeCerts();
globalThis.addEventListener("unload", () => Deno.removeSync(certs.dir, { recursive: true }));

async function withServer(body: (port: number) => Promise<void>): Promise<void> {
  await using server = new Child("openssl", [
    "s_server",
    "-accept",
    "127.0.0.1:0",
    "-cert",
    certs.cert,
    "-key",
    certs.key,
    "-www",
    "-alpn",
    "h2",
  ], { stdin: "piped" });
  const line = await server.stdout.waitFor(
    () => server.stdout.lines().find((l) => l.startsWith("ACCEPT")),
    20_000,
    "s_server's ACCEPT line",
  );
  await body(Number(/:(\d+)$/.exec(line)![1]));
}

async function connected(port: number, backing: "deno" | "node"): Promise<WskConnectionSocket> {
  const socket = await newSocket(undefined, { backing });
  const d = socket.Dispatch;
  assert.equal((await d.WskBind(socket, wildcard(2), 0)).status, STATUS_SUCCESS);
  assert.equal((await d.WskConnect(socket, sockAddr("127.0.0.1", port), 0)).status, STATUS_SUCCESS);
  return socket;
}

for (const backing of ["node", "deno"] as const) {
  Deno.test(`startTls (${backing} backing): handshake, then WskSend/WskReceive count plaintext`, async () => {
    await withServer(async (port) => {
      await using socket = await connected(port, backing);
      const done = await socket.startTls({
        role: "client",
        servername: "localhost",
        ca: [await Deno.readTextFile(certs.ca)],
        alpn: ["h2"],
      }, { timeout: 10_000 });
      assert.equal(done.status, STATUS_SUCCESS, String(done.message));
      assert.equal(done.tls?.alpn, "h2");
      // Both backings read the peer certificate of this connection; Deno.startTls does not tell
      // the protocol version.
      if (backing === "node") assert.match(done.tls!.protocol!, /^TLSv1\.[23]$/);
      else assert.equal(done.tls!.protocol, null);
      assert.equal(done.tls!.subject, "CN=localhost");
      // The leaf was made to last two days from now.
      const expires = Date.parse(done.tls!.expires!);
      assert.ok(expires > Date.now() && expires < Date.now() + 3 * 86400_000, done.tls!.expires!);
      const request = new TextEncoder().encode("GET / HTTP/1.0\r\n\r\n");
      const sent = await socket.Dispatch.WskSend(socket, wskBuf(request), 0);
      assert.equal(sent.information, request.length);
      const buffer = new Uint8Array(15);
      const got = await socket.Dispatch.WskReceive(socket, wskBuf(buffer), WSK_FLAG_WAITALL, {
        timeout: 10_000,
      });
      assert.ok(NT_SUCCESS(got.status), String(got.message));
      assert.equal(
        new TextDecoder().decode(buffer.subarray(0, got.information)),
        "HTTP/1.0 200 ok",
      );
      // A second handshake on the same connection is refused.
      const again = await socket.startTls({ role: "client", servername: "localhost" });
      assert.notEqual(again.status, STATUS_SUCCESS);
    });
  });

  Deno.test(`startTls (${backing} backing): untrusted and wrong name map to SEC_E_ statuses`, async () => {
    await withServer(async (port) => {
      await using untrusted = await connected(port, backing);
      const a = await untrusted.startTls({ role: "client", servername: "localhost" });
      assert.equal(a.status, SEC_E_UNTRUSTED_ROOT, String(a.message));
      assert.equal(untrusted.state, "ABORTED");
      await using wrong = await connected(port, backing);
      const ca = [await Deno.readTextFile(certs.ca)];
      const b = await wrong.startTls({ role: "client", servername: "wrong.example", ca });
      assert.equal(b.status, SEC_E_WRONG_PRINCIPAL, String(b.message));
    });
  });
}

Deno.test("startTls before a connection is STATUS_INVALID_DEVICE_STATE", async () => {
  await using socket = await newSocket();
  const done = await socket.startTls({ role: "client", servername: "localhost" });
  assert.equal(done.status, STATUS_INVALID_DEVICE_STATE);
});

Deno.test("startTls (deno backing): a receive takes all that was read ahead, not one TLS record", async () => {
  const n = 512 * 1024;
  await using peer = await PythonPeer.start<{ sha256: string }>(
    PY_TLS_SOURCE,
    ["127.0.0.1", certs.cert, certs.key, String(n)],
  );
  await using socket = await connected(peer.port, "deno");
  const done = await socket.startTls({
    role: "client",
    servername: "localhost",
    ca: [await Deno.readTextFile(certs.ca)],
  }, { timeout: 10_000 });
  assert.equal(done.status, STATUS_SUCCESS, String(done.message));
  // A read of a Deno.TlsConn returns one record's plaintext at most (16 KiB). With the model
  // pausing between receives, what arrived meanwhile comes in one receive.
  const buffer = new Uint8Array(1024 * 1024);
  let total = 0;
  let largest = 0;
  for (let calls = 0; total < n && calls < 1000; calls++) {
    const got = await socket.Dispatch.WskReceive(socket, wskBuf(buffer), 0, { timeout: 10_000 });
    assert.ok(NT_SUCCESS(got.status), String(got.message));
    assert.ok(got.information > 0, "FIN before all the bytes");
    total += got.information;
    largest = Math.max(largest, got.information);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.equal(total, n);
  assert.ok(largest > 16 * 1024, `the largest receive took ${largest} bytes`);
});

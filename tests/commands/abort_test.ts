// Aborts and send deadlines as a user sees them: the CLI spawned with and without --allow-ffi,
// real loopback peers, and what the peer really read (a reset, or an end of stream). Without
// --allow-ffi a deno-backed socket can only close (FIN), and its lines must say so.

import assert from "node:assert/strict";
import { FFI, parseLine, readAll, runCli, text, within } from "../_helpers.ts";
import { runProcess } from "../_child.ts";
import { CliChild, portOf, startPeer } from "./_peer.ts";

/** Reads until the peer ends the stream; what ended it. */
async function endOf(conn: Deno.Conn): Promise<"reset" | "fin" | string> {
  const seen = await within(readAll(conn), 15_000, "the peer's end");
  if (seen.error === null) return "fin";
  return seen.error instanceof Deno.errors.ConnectionReset ? "reset" : String(seen.error);
}

/** Writes until the write fails (the server ended the connection) or `size` bytes went out. */
async function flood(conn: Deno.Conn, size: number): Promise<unknown> {
  const chunk = new Uint8Array(256 * 1024);
  try {
    for (let sent = 0; sent < size;) sent += await conn.write(chunk);
    return null;
  } catch (error) {
    return error;
  }
}

for (const ffi of [false, true]) {
  const how = ffi ? "with --allow-ffi" : "without --allow-ffi";
  const saw = ffi ? "RST" : "FIN";

  Deno.test(`accept --mode echo --timeout 1000 (default backing, ${how}): a client that sends and never reads is cut off at the deadline, peer_saw=${saw}`, async () => {
    await using cli = new CliChild(
      ["accept", "127.0.0.1:0", "--mode", "echo", "--timeout", "1000"],
      ffi ? [FFI] : [],
    );
    const local = await cli.bindLocal("stdout");
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: portOf(local) });
    const writing = flood(conn, 256 << 20);
    const code = await cli.exitCode();
    const failure = await within(writing, 15_000, "the client's flood");
    conn.close();
    const out = cli.stdout.text();
    const lines = cli.stdout.lines().map(parseLine);
    const send = lines.find((l) => l.call === "WskSend");
    assert.ok(send, out);
    assert.equal(send.status, "STATUS_IO_TIMEOUT", out);
    // The deadline holds: the send's call ends within 100 ms of its 1000 ms bound.
    const took = Number(send.time!.replace("ms", ""));
    assert.ok(took >= 1000 && took < 1100, `WskSend took ${send.time}`);
    assert.equal(send.peer_saw, saw, out);
    const summary = lines.find((l) => l.call === "Summary");
    assert.equal(summary?.value, "timeout", out);
    assert.equal(summary?.peer_saw, saw, out);
    assert.equal(code, 1, cli.stderr.text());
    // The client's blocked write failed: with an RST it is a reset (with FIN, Linux follows
    // with an RST for the bytes left unread, which a writing peer sees as a broken pipe).
    assert.ok(failure instanceof Error, `the flood ended with ${String(failure)}`);
    if (ffi) assert.ok(failure instanceof Deno.errors.ConnectionReset, String(failure));
  });

  for (const verb of ["disconnect", "closesocket"]) {
    Deno.test(`${verb}${verb === "disconnect" ? " --abortive" : ""} (${how}): the peer reads a reset, and the line says peer_saw=RST`, async () => {
      // A python peer: its accept takes a connection the CLI resets at once (Deno's would fail).
      await using peer = await startPeer("drain");
      const args = verb === "disconnect"
        ? ["disconnect", peer.address, "--abortive"]
        : ["closesocket", peer.address];
      const result = await runCli(args, { permissions: ffi ? [FFI] : [] });
      const seen = await peer.report();
      assert.equal(result.code, 0, result.stdout + result.stderr);
      assert.equal(seen.end, "reset");
      const lines = result.stdout.trim().split("\n").map(parseLine);
      const closed = lines.find((l) => l.call === "WskCloseSocket");
      assert.equal(closed?.peer_saw, "RST", result.stdout);
      if (verb === "disconnect") {
        const aborted = lines.find((l) => l.call === "WskDisconnect");
        assert.equal(aborted?.status, "STATUS_SUCCESS", result.stdout);
        assert.equal(aborted?.peer_saw, "RST", result.stdout);
      }
    });
  }
}

Deno.test("wsk run (without --allow-ffi): disconnect --abortive on a script socket is a real RST", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  // The script waits for the peer's hello, so the test has accepted before the reset comes.
  const script =
    `socketconnect 127.0.0.1:${listener.addr.port}\nreceive --bytes 5\ndisconnect --abortive\n`;
  const running = runCli(["run", "-"], { stdin: text.encode(script) });
  using peer = await listener.accept();
  await peer.write(text.encode("hello"));
  assert.equal(await endOf(peer), "reset");
  const result = await running;
  assert.equal(result.code, 0, result.stdout + result.stderr);
  assert.match(result.stdout, /WskDisconnect STATUS_SUCCESS .*peer_saw=RST/);
});

Deno.test("accept --deny 127.0.0.2 --backing deno (with --allow-ffi): a refused peer reads a reset from a deno-backed socket", async () => {
  await using cli = new CliChild(
    ["accept", "127.0.0.1:0", "--deny", "127.0.0.2", "--backing", "deno", "--count", "1"],
    [FFI],
  );
  const port = portOf(await cli.bindLocal("stdout"));
  // python3, because Deno cannot choose the source address within the test's permissions.
  const client = await runProcess("python3", [
    "-c",
    "import socket, sys\n" +
    "s = socket.socket(); s.bind(('127.0.0.2', 0)); s.connect(('127.0.0.1', int(sys.argv[1])))\n" +
    "try:\n  print('fin' if s.recv(16) == b'' else 'data')\n" +
    "except ConnectionResetError:\n  print('ECONNRESET')\n",
    String(port),
  ]);
  const refused = client.stdout.trim();
  assert.equal(refused, "ECONNRESET");
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(text.encode("ok"));
  await conn.closeWrite();
  assert.equal(await endOf(conn), "fin");
  assert.equal(await cli.exitCode(), 0, cli.stdout.text() + cli.stderr.text());
  const lines = cli.stdout.lines().map(parseLine);
  const abort = lines.find((l) => l.call === "WskDisconnect" && l.value === "abortive");
  assert.equal(abort?.peer_saw, "RST", cli.stdout.text());
  assert.match(cli.stdout.text(), /Summary STATUS_REQUEST_NOT_ACCEPTED .*peer_saw=RST/);
});

// Aborts and send deadlines as a user sees them: the CLI spawned with and without --allow-ffi,
// real loopback peers, and what the peer really read (a reset, or an end of stream). Without
// --allow-ffi a deno-backed socket can only close (FIN), and its lines must say so.

import assert from "node:assert/strict";
import { cliCommand, FFI, parseLine, readAll, runCli, text } from "../_helpers.ts";
import { Collector, portOf, within } from "./_peer.ts";

/** Reads until the peer ends the stream; what ended it. */
async function endOf(conn: Deno.Conn): Promise<"reset" | "fin" | string> {
  const seen = await within(readAll(conn), 15_000, "the peer's end");
  if (seen.error === null) return "fin";
  return seen.error instanceof Deno.errors.ConnectionReset ? "reset" : String(seen.error);
}

/**
 * Accepts the CLI's connection and says how it ended. A connection reset before this process got
 * to accept it has no peer name any more, so accept fails with NotConnected (one ended with a FIN
 * still has it): that is a reset too, and on a loaded machine the CLI may well be that quick.
 */
async function acceptedEnd(listener: Deno.Listener): Promise<"reset" | "fin" | string> {
  let peer: Deno.Conn;
  try {
    peer = await within(listener.accept(), 15_000, "the CLI's connection");
  } catch (error) {
    if (error instanceof Deno.errors.NotConnected) return "reset";
    throw error;
  }
  try {
    return await endOf(peer);
  } finally {
    peer.close();
  }
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
    const child = new Deno.Command(Deno.execPath(), {
      args: cliCommand(
        ["accept", "127.0.0.1:0", "--mode", "echo", "--timeout", "1000"],
        ffi ? [FFI] : [],
      ),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    }).spawn();
    const stdout = new Collector(child.stdout);
    const stderr = new Collector(child.stderr);
    try {
      const local = await stdout.waitFor(
        () => stdout.lines().map(parseLine).find((l) => l.call === "WskBind")?.local,
        30_000,
        "the WskBind line",
      );
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: portOf(local) });
      const writing = flood(conn, 256 << 20);
      const status = await within(child.status, 15_000, "accept's exit");
      const failure = await within(writing, 15_000, "the client's flood");
      conn.close();
      await stdout.done;
      const lines = stdout.lines().map(parseLine);
      const send = lines.find((l) => l.call === "WskSend");
      assert.ok(send, stdout.text());
      assert.equal(send.status, "STATUS_IO_TIMEOUT", stdout.text());
      // The deadline holds: the send's call ends within 100 ms of its 1000 ms bound.
      const took = Number(send.time!.replace("ms", ""));
      assert.ok(took >= 1000 && took < 1100, `WskSend took ${send.time}`);
      assert.equal(send.peer_saw, saw, stdout.text());
      const summary = lines.find((l) => l.call === "Summary");
      assert.equal(summary?.value, "timeout", stdout.text());
      assert.equal(summary?.peer_saw, saw, stdout.text());
      assert.equal(status.code, 1, stderr.text());
      // The client's blocked write failed: with an RST it is a reset (with FIN, Linux follows
      // with an RST for the bytes left unread, which a writing peer sees as a broken pipe).
      assert.ok(failure instanceof Error, `the flood ended with ${String(failure)}`);
      if (ffi) assert.ok(failure instanceof Deno.errors.ConnectionReset, String(failure));
    } finally {
      try {
        child.kill("SIGKILL");
      } catch {
        // Exited.
      }
      await child.status;
      await stdout.cancel();
      await stderr.cancel();
    }
  });

  for (const verb of ["disconnect", "closesocket"]) {
    Deno.test(`${verb}${verb === "disconnect" ? " --abortive" : ""} (${how}): the peer reads a reset, and the line says peer_saw=RST`, async () => {
      using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const args = verb === "disconnect"
        ? ["disconnect", `127.0.0.1:${listener.addr.port}`, "--abortive"]
        : ["closesocket", `127.0.0.1:${listener.addr.port}`];
      const running = runCli(args, { permissions: ffi ? [FFI] : [] });
      const end = await acceptedEnd(listener);
      const result = await running;
      assert.equal(result.code, 0, result.stdout + result.stderr);
      assert.equal(end, "reset");
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
  const script = `socketconnect 127.0.0.1:${listener.addr.port}\ndisconnect --abortive\n`;
  const running = runCli(["run", "-"], { stdin: text.encode(script) });
  assert.equal(await acceptedEnd(listener), "reset");
  const result = await running;
  assert.equal(result.code, 0, result.stdout + result.stderr);
  assert.match(result.stdout, /WskDisconnect STATUS_SUCCESS .*peer_saw=RST/);
});

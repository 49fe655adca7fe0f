/**
 * End-to-end tests of the commands that end or steer a connection: `disconnect`, `release`,
 * `controlsocket` and `closesocket`. Each test spawns the CLI against a python3 peer on loopback
 * that prints the port it bound and then what it saw (the client's address, the bytes, and
 * whether the stream ended with a FIN or a reset), and asserts stdout, stderr and the exit code
 * together.
 *
 * @module
 */

import assert from "node:assert/strict";
import { closedPort, hex, parseLine, runCli } from "../_helpers.ts";
import {
  assertFields,
  assertGracefulRun,
  assertLines,
  connectedPrefix,
  connectedPrefixJson,
  endpoint,
  type Expected,
  failed,
  failedDrain,
  failedJson,
  gracefulEnd,
  gracefulEndJson,
  humanLines,
  jsonLines,
  ok,
  okJson,
  PEER_SAW_FIN,
  refusedRun,
  runAgainst,
  SOME,
  startPeer,
  TIME,
} from "./_peer.ts";

// ---------------------------------------------------------------------------------------------
// disconnect

Deno.test("disconnect without data sends a FIN, drains until the peer's FIN and exits 0", async () => {
  await using peer = await startPeer("drain");
  const run = await runAgainst(peer, "disconnect");
  assertGracefulRun(run);
});

Deno.test('disconnect --data "bye\\n" delivers the final data, then a FIN', async () => {
  await using peer = await startPeer("drain");
  const { result, seen, local, remote } = await runAgainst(peer, "disconnect", "--data", "bye\\n");
  assert.equal(result.stderr, "");
  assertLines(result.stdout, [
    ...connectedPrefix(local, remote),
    ok("WskDisconnect", { local, remote, bytes: "4" }),
    ok("WskReceive", { local, remote, calls: "1" }),
    ok("WskCloseSocket", { local, remote }),
  ]);
  assert.equal(result.code, 0);
  // python read exactly the final data and then end of stream, not a reset.
  assert.deepEqual({ data: seen.data, end: seen.end }, { data: hex("bye\n"), end: "eof" });
});

Deno.test("disconnect --abortive resets the connection, which the peer sees as ConnectionResetError", async () => {
  await using peer = await startPeer("drain");
  const { result, seen, local, remote } = await runAgainst(peer, "disconnect", "--abortive");
  assert.equal(result.stderr, "");
  // No drain after an abortive disconnect: there is no FIN to wait for.
  assertLines(result.stdout, [
    ...connectedPrefix(local, remote),
    ok("WskDisconnect", { local, remote, peer_saw: "RST" }),
    ok("WskCloseSocket", { local, remote, peer_saw: "RST" }),
  ]);
  assert.equal(result.code, 0);
  assert.deepEqual({ data: seen.data, end: seen.end }, { data: "", end: "reset" });
});

Deno.test("disconnect --json writes one JSON object per call, the final data counted in information and carried in data", async () => {
  await using peer = await startPeer("drain");
  const { result, seen, local, remote } = await runAgainst(
    peer,
    "disconnect",
    "--data",
    "bye\\n",
    "--json",
  );
  assert.equal(result.stderr, "");
  assert.deepEqual(jsonLines(result.stdout), [
    ...connectedPrefixJson(local, remote),
    okJson("WskDisconnect", { local, remote, information: 4, data: "bye\n" }),
    okJson("WskReceive", { local, remote, calls: 1 }),
    okJson("WskCloseSocket", { local, remote }),
  ]);
  assert.equal(result.code, 0);
  assert.deepEqual({ data: seen.data, end: seen.end }, { data: hex("bye\n"), end: "eof" });
});

Deno.test("disconnect --json --abortive reports every call as a success and the peer sees a reset", async () => {
  await using peer = await startPeer("drain", 6);
  const { result, seen, local, remote } = await runAgainst(
    peer,
    "disconnect",
    "--abortive",
    "--json",
  );
  assert.equal(result.stderr, "");
  assert.deepEqual(jsonLines(result.stdout), [
    ...connectedPrefixJson(local, remote, "[::]:0"),
    okJson("WskDisconnect", { local, remote, peer_saw: "RST" }),
    okJson("WskCloseSocket", { local, remote, peer_saw: "RST" }),
  ]);
  assert.equal(result.code, 0);
  assert.equal(seen.end, "reset");
});

Deno.test("disconnect reports STATUS_CONNECTION_RESET in the drain and exits 1 when the peer answers the FIN with a reset", async () => {
  await using peer = await startPeer("resetafter");
  const { result, seen, local, remote } = await runAgainst(peer, "disconnect", "--data", "x");
  assert.equal(result.stderr, "");
  assertLines(
    result.stdout,
    failedDrain(local, remote, "STATUS_CONNECTION_RESET", "0xC000020D", { bytes: "1" }),
  );
  assert.equal(result.code, 1);
  assert.deepEqual({ data: seen.data, end: seen.end }, { data: hex("x"), end: "eof" });
});

Deno.test("disconnect ends within --timeout with STATUS_IO_TIMEOUT and exits 1 when the peer never sends its FIN", async () => {
  await using peer = await startPeer("hold");
  const start = performance.now();
  const result = await runCli(["disconnect", peer.address, "--timeout", "500"], {
    timeoutMs: 15_000,
  });
  const elapsed = performance.now() - start;
  const seen = await peer.report();
  const local = endpoint(seen.peer);
  assert.equal(result.stderr, "");
  assertLines(
    result.stdout,
    failedDrain(local, peer.address, "STATUS_IO_TIMEOUT", "0xC00000B5", {}, PEER_SAW_FIN),
  );
  assert.equal(result.code, 1);
  assert.ok(elapsed < 5000, `the run took ${elapsed.toFixed(0)} ms`);
  assert.equal(seen.end, "eof");
});

// ---------------------------------------------------------------------------------------------
// controlsocket

/** The flags that set TCP_NODELAY and read it back. */
const NODELAY = ["--set", "TCP_NODELAY=1", "--get", "TCP_NODELAY"];

Deno.test("controlsocket --set TCP_NODELAY=1 --get TCP_NODELAY reads back value=1 and exits 0", async () => {
  await using peer = await startPeer("drain");
  const { result, seen, local, remote } = await runAgainst(peer, "controlsocket", ...NODELAY);
  assert.equal(result.stderr, "");
  assertLines(result.stdout, [
    ...connectedPrefix(local, remote),
    ok("WskControlSocket", { local, remote, option: "TCP_NODELAY", value: "1" }),
    ok("WskControlSocket", { local, remote, option: "TCP_NODELAY", value: "1", bytes: "4" }),
    ...gracefulEnd(local, remote),
  ]);
  assert.equal(result.code, 0);
  assert.equal(seen.end, "eof");
});

Deno.test("controlsocket --get SO_RCVBUF completes with STATUS_NOT_SUPPORTED, still closes gracefully, and exits 1", async () => {
  await using peer = await startPeer("drain");
  const { result, seen, local, remote } = await runAgainst(
    peer,
    "controlsocket",
    "--get",
    "SO_RCVBUF",
  );
  assert.equal(result.stderr, "");
  assertLines(result.stdout, [
    ...connectedPrefix(local, remote),
    failed("WskControlSocket", "STATUS_NOT_SUPPORTED", "0xC00000BB", {
      local,
      remote,
      option: "SO_RCVBUF",
    }),
    ...gracefulEnd(local, remote),
  ]);
  assert.equal(result.code, 1);
  assert.equal(seen.end, "eof");
});

Deno.test("controlsocket --json writes option and value, and a message on the unsupported get", async () => {
  await using peer = await startPeer("drain");
  const { result, seen, local, remote } = await runAgainst(
    peer,
    "controlsocket",
    ...NODELAY,
    "--get",
    "SO_RCVBUF",
    "--json",
  );
  assert.equal(result.stderr, "");
  assert.deepEqual(jsonLines(result.stdout), [
    ...connectedPrefixJson(local, remote),
    okJson("WskControlSocket", { local, remote, option: "TCP_NODELAY", value: 1 }),
    okJson("WskControlSocket", {
      local,
      remote,
      option: "TCP_NODELAY",
      value: 1,
      information: 4,
    }),
    failedJson("WskControlSocket", "STATUS_NOT_SUPPORTED", "0xC00000BB", {
      local,
      remote,
      option: "SO_RCVBUF",
    }),
    ...gracefulEndJson(local, remote),
  ]);
  assert.equal(result.code, 1);
  assert.equal(seen.end, "eof");
});

// ---------------------------------------------------------------------------------------------
// release

/** What every `release` run starts with: the connect, the event callbacks, the send. */
function releasePrefix(local: string, remote: string, sent: number): Expected[] {
  return [
    ...connectedPrefix(local, remote),
    ok("WskControlSocket", {
      local,
      remote,
      option: "SO_WSK_EVENT_CALLBACK",
      value: "WSK_EVENT_RECEIVE|WSK_EVENT_DISCONNECT",
    }),
    ok("WskSend", { local, remote, bytes: String(sent) }),
  ];
}

/**
 * Checks the shape of a `release` run: the fixed prefix, then WskDisconnect and the
 * WskReceiveEvent lines in either order (the echo may overtake the disconnect's completion),
 * then WskDisconnectEvent, one WskRelease per kept indication, WskCloseSocket. Returns the
 * WskReceiveEvent lines.
 */
function assertReleaseRun(
  stdout: string,
  local: string,
  remote: string,
  sent: number,
): Record<string, string>[] {
  const lines = humanLines(stdout);
  const prefix = releasePrefix(local, remote, sent);
  prefix.forEach((e, i) => assertFields(lines[i] ?? {}, e, `line ${i + 1}; stdout:\n${stdout}`));
  const gone = lines.findIndex((l) => l.call === "WskDisconnectEvent");
  assert.ok(gone > prefix.length, `no WskDisconnectEvent after the send; stdout:\n${stdout}`);
  const middle = lines.slice(prefix.length, gone);
  const disconnects = middle.filter((l) => l.call === "WskDisconnect");
  assert.equal(disconnects.length, 1, stdout);
  assertFields(disconnects[0]!, ok("WskDisconnect", { local, remote }), "WskDisconnect");
  const events = middle.filter((l) => l.call === "WskReceiveEvent");
  assert.equal(events.length + 1, middle.length, `unexpected lines; stdout:\n${stdout}`);
  assert.ok(events.length >= 1, stdout);
  for (const event of events) {
    assert.match(event.bytes!, /^[1-9]\d*$/);
    assertFields(event, {
      call: "WskReceiveEvent",
      status: "STATUS_PENDING",
      ntstatus: "0x00000103",
      socket: "1",
      local,
      remote,
      bytes: event.bytes!,
      time: TIME,
      data: SOME,
    }, "WskReceiveEvent");
    assert.equal(new TextEncoder().encode(event.data).length, Number(event.bytes));
  }
  assertFields(
    lines[gone]!,
    ok("WskDisconnectEvent", { local, remote, value: "graceful" }),
    "WskDisconnectEvent",
  );
  const tail = lines.slice(gone + 1);
  assert.equal(tail.length, events.length + 1, `one WskRelease per indication; stdout:\n${stdout}`);
  events.forEach((event, i) => {
    assertFields(tail[i]!, ok("WskRelease", { local, remote, bytes: event.bytes! }), "WskRelease");
  });
  assertFields(tail.at(-1)!, ok("WskCloseSocket", { local, remote }), "WskCloseSocket");
  return events;
}

Deno.test('release --data "hello" keeps the echoed indications and returns each with WskRelease', async () => {
  await using peer = await startPeer("echo");
  const { result, seen, local, remote } = await runAgainst(peer, "release", "--data", "hello");
  assert.equal(result.stderr, "");
  const events = assertReleaseRun(result.stdout, local, remote, 5);
  assert.equal(events.map((e) => e.data).join(""), "hello");
  assert.equal(result.code, 0);
  assert.deepEqual({ data: seen.data, end: seen.end }, { data: hex("hello"), end: "eof" });
});

Deno.test("release --json carries the indicated data and one WskRelease per indication", async () => {
  await using peer = await startPeer("echo", 6);
  const { result, seen, local, remote } = await runAgainst(
    peer,
    "release",
    "--data",
    "hello",
    "--json",
  );
  assert.equal(result.stderr, "");
  const lines = jsonLines(result.stdout);
  const events = lines.filter((l) => l.call === "WskReceiveEvent");
  assert.ok(events.length >= 1, result.stdout);
  for (const event of events) {
    assert.deepEqual(event, {
      call: "WskReceiveEvent",
      status: "STATUS_PENDING",
      ntstatus: "0x00000103",
      information: (event.data as string).length,
      socket: 1,
      local,
      remote,
      data: event.data,
    });
  }
  assert.equal(events.map((e) => e.data).join(""), "hello");
  const releases = lines.filter((l) => l.call === "WskRelease");
  assert.deepEqual(
    releases,
    events.map((e) => okJson("WskRelease", { local, remote, information: e.information })),
  );
  assert.deepEqual(lines.at(-1), okJson("WskCloseSocket", { local, remote }));
  assert.equal(result.code, 0);
  assert.equal(seen.end, "eof");
});

Deno.test("release ends within --timeout with a STATUS_IO_TIMEOUT WskDisconnectEvent and exits 1 when the peer never sends its FIN", async () => {
  await using peer = await startPeer("hold");
  const start = performance.now();
  const result = await runCli(["release", peer.address, "--data", "hi", "--timeout", "500"], {
    timeoutMs: 15_000,
  });
  const elapsed = performance.now() - start;
  const seen = await peer.report();
  const local = endpoint(seen.peer);
  const remote = peer.address;
  assert.equal(result.stderr, "");
  assertLines(result.stdout, [
    ...releasePrefix(local, remote, 2),
    ok("WskDisconnect", { local, remote }),
    failed("WskDisconnectEvent", "STATUS_IO_TIMEOUT", "0xC00000B5", { local, remote }),
    ok("WskCloseSocket", { local, remote, ...PEER_SAW_FIN }),
  ]);
  assert.equal(result.code, 1);
  assert.ok(elapsed < 5000, `the run took ${elapsed.toFixed(0)} ms`);
  assert.deepEqual({ data: seen.data, end: seen.end }, { data: hex("hi"), end: "eof" });
});

// ---------------------------------------------------------------------------------------------
// closesocket

Deno.test("closesocket cancels the pending WskReceive (STATUS_CANCELLED), exits 0, and the peer sees a reset", async () => {
  await using peer = await startPeer("drain");
  const { result, seen, local, remote } = await runAgainst(peer, "closesocket");
  assert.equal(result.stderr, "");
  assertLines(result.stdout, [
    ...connectedPrefix(local, remote),
    ok("WskCloseSocket", { local, remote, peer_saw: "RST" }),
    failed("WskReceive", "STATUS_CANCELLED", "0xC0000120", { local, remote }),
  ]);
  assert.equal(result.code, 0);
  assert.deepEqual({ data: seen.data, end: seen.end }, { data: "", end: "reset" });
});

Deno.test("closesocket --json reports the cancelled receive after the close with its message", async () => {
  await using peer = await startPeer("drain", 6);
  const { result, seen, local, remote } = await runAgainst(peer, "closesocket", "--json");
  assert.equal(result.stderr, "");
  assert.deepEqual(jsonLines(result.stdout), [
    ...connectedPrefixJson(local, remote, "[::]:0"),
    okJson("WskCloseSocket", { local, remote, peer_saw: "RST" }),
    failedJson("WskReceive", "STATUS_CANCELLED", "0xC0000120", { local, remote }),
  ]);
  assert.equal(result.code, 0);
  assert.equal(seen.end, "reset");
});

Deno.test("closesocket completes with STATUS_CONNECTION_REFUSED and exits 1 when nothing listens", async () => {
  const remote = `127.0.0.1:${closedPort()}`;
  const result = await runCli(["closesocket", remote]);
  assert.equal(result.stderr, "");
  assertLines(result.stdout, refusedRun(remote));
  assert.equal(result.code, 1);
});

Deno.test("release reports a peer reset as WskDisconnectEvent STATUS_CONNECTION_RESET and exits 1", async () => {
  await using peer = await startPeer("resetafter");
  const { result, seen } = await runAgainst(peer, "release", "--data", "hello");
  assert.equal(seen.end, "eof");
  const lines = result.stdout.trim().split("\n").map(parseLine);
  const event = lines.find((line) => line.call === "WskDisconnectEvent");
  assert.ok(event, result.stdout);
  assert.equal(event.status, "STATUS_CONNECTION_RESET");
  assert.equal(event.ntstatus, "0xC000020D");
  assert.equal(event.value, "abortive");
  assert.equal(lines.at(-1)?.call, "WskCloseSocket");
  assert.equal(result.code, 1);
});

Deno.test("receive --drain is bounded by --timeout: STATUS_IO_TIMEOUT and exit 1 when the peer stays silent", async () => {
  await using peer = await startPeer("hold");
  const started = performance.now();
  const { result } = await runAgainst(peer, "receive", "--drain", "--timeout", "500");
  const elapsed = performance.now() - started;
  const lines = result.stdout.trim().split("\n").map(parseLine);
  const drain = lines.find((line) => line.call === "WskReceive");
  assert.equal(drain?.status, "STATUS_IO_TIMEOUT", result.stdout);
  assert.equal(result.code, 1);
  assert.ok(elapsed < 5000, `took ${elapsed} ms`);
});

Deno.test("connectex --data of 120 kB parses (no stack overflow), is exit 2 before any socket, and a bad escape in it is exit 2", async () => {
  const big = "x".repeat(120_000);
  for (
    const [data, reason] of [
      [big, "120000 bytes; WskConnectEx sends at most 65535"],
      [big + "\\q", 'unknown escape "\\q"'],
    ] as const
  ) {
    const result = await runCli(["connectex", "127.0.0.1:9", "--data", data]);
    assert.equal(result.code, 2, result.stdout + result.stderr);
    assert.equal(result.stdout, "", "no socket line");
    const lines = result.stderr.split("\n");
    assert.equal(lines.length, 2, "one error line");
    const line = lines[0]!;
    assert.ok(line.startsWith("error: "), line);
    assert.ok(line.includes(reason), line);
    // The line quotes the start of the data, not all of it.
    assert.ok(line.includes(`"${"x".repeat(64)}...(+`), line);
    assert.ok(line.length < 400, `a ${line.length}-character line`);
  }
});

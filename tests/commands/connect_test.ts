/**
 * End-to-end tests of the commands that get a socket and a connection: `connect`, `connectex`,
 * `socketconnect`, `getlocaladdress`, `getremoteaddress`, `bind` and `socket`. Each test spawns
 * the CLI against a python3 peer on loopback that prints the port it bound and then what it saw
 * (the client's address, the bytes, and whether the stream ended with a FIN or a reset), and
 * asserts stdout, stderr and the exit code together.
 *
 * @module
 */

import assert from "node:assert/strict";
import { closedPort, hex, runCli } from "../_helpers.ts";
import {
  assertGracefulRun,
  assertLines,
  connectedPrefix,
  connectedPrefixJson,
  endpoint,
  type Expected,
  failedDrain,
  failedJson,
  gracefulEnd,
  gracefulEndJson,
  humanLines,
  jsonLines,
  ok,
  okJson,
  PEER_SAW_FIN,
  portOf,
  refusedRun,
  runAgainst,
  SOME,
  startPeer,
  TIME,
} from "./_peer.ts";

// ---------------------------------------------------------------------------------------------
// connect

Deno.test("connect runs WskSocket, WskBind, WskConnect and a graceful end against a real peer and exits 0", async () => {
  await using peer = await startPeer("drain");
  const run = await runAgainst(peer, "connect");
  assertGracefulRun(run);
  assert.equal(run.seen.peer[0], "127.0.0.1");
});

Deno.test("connect --json writes one JSON object per call with addresses the peer saw", async () => {
  await using peer = await startPeer("drain");
  const { result, seen, local, remote } = await runAgainst(peer, "connect", "--json");
  assert.equal(result.stderr, "");
  assert.deepEqual(jsonLines(result.stdout), [
    ...connectedPrefixJson(local, remote),
    ...gracefulEndJson(local, remote),
  ]);
  assert.equal(result.code, 0);
  assert.equal(seen.end, "eof");
});

Deno.test("connect completes with STATUS_CONNECTION_REFUSED and exits 1 when nothing listens", async () => {
  const remote = `127.0.0.1:${closedPort()}`;
  const result = await runCli(["connect", remote]);
  assert.equal(result.stderr, "");
  const lines = assertLines(result.stdout, refusedRun(remote));
  assert.ok(
    lines[2]!.message!.includes(remote),
    `message names the endpoint: ${lines[2]!.message}`,
  );
  assert.equal(result.code, 1);
});

Deno.test("connect --json reports the refused WskConnect with its message and exits 1", async () => {
  const remote = `127.0.0.1:${closedPort()}`;
  const result = await runCli(["connect", remote, "--json"]);
  assert.equal(result.stderr, "");
  assert.deepEqual(jsonLines(result.stdout), [
    okJson("WskSocket"),
    okJson("WskBind", { local: "0.0.0.0:0" }),
    failedJson("WskConnect", "STATUS_CONNECTION_REFUSED", "0xC0000236", {
      local: "0.0.0.0:0",
      remote,
    }),
    okJson("WskCloseSocket", { local: "0.0.0.0:0", remote }),
  ]);
  assert.equal(result.code, 1);
});

Deno.test("connect --verbose adds the system error as cause= to the refused line", async () => {
  const remote = `127.0.0.1:${closedPort()}`;
  const result = await runCli(["connect", remote, "--verbose"]);
  assert.equal(result.stderr, "");
  assertLines(
    result.stdout,
    refusedRun(remote, "WskConnect", { cause: /ECONNREFUSED|refused/i }),
  );
  assert.equal(result.code, 1);
  // Without --verbose the same failure carries no cause.
  const quiet = await runCli(["connect", remote]);
  assert.equal(quiet.code, 1);
  assert.equal(humanLines(quiet.stdout)[2]!.cause, undefined);
});

Deno.test("connect reports STATUS_CONNECTION_RESET and exits 1 when the peer resets right after accept", async () => {
  await using peer = await startPeer("reset");
  const { result, seen } = await runAgainst(peer, "connect");
  assert.equal(seen.end, "sent-reset");
  assert.equal(result.stderr, "");
  const lines = humanLines(result.stdout);
  // The reset can beat the connect's own completion or arrive during the drain: either way
  // exactly one call says so, every other call succeeds, and the socket is still closed.
  const failures = lines.filter((l) => l.status !== "STATUS_SUCCESS");
  assert.equal(failures.length, 1, result.stdout);
  assert.ok(
    ["WskConnect", "WskDisconnect", "WskReceive"].includes(failures[0]!.call!),
    result.stdout,
  );
  assert.equal(failures[0]!.status, "STATUS_CONNECTION_RESET");
  assert.equal(failures[0]!.ntstatus, "0xC000020D");
  assert.match(failures[0]!.message ?? "", SOME);
  assert.deepEqual(lines.slice(0, 3).map((l) => l.call), ["WskSocket", "WskBind", "WskConnect"]);
  assert.equal(lines.at(-1)!.call, "WskCloseSocket");
  assert.equal(lines.at(-1)!.status, "STATUS_SUCCESS");
  assert.ok(lines.every((l) => l.socket === "1"), result.stdout);
  assert.ok(lines.slice(2).every((l) => l.remote === peer.address), result.stdout);
  assert.equal(result.code, 1);
});

Deno.test("connect reports the reset in WskReceive and exits 1 when the peer resets instead of its FIN", async () => {
  await using peer = await startPeer("resetafter");
  const { result, seen, local, remote } = await runAgainst(peer, "connect");
  assert.equal(result.stderr, "");
  assertLines(
    result.stdout,
    failedDrain(local, remote, "STATUS_CONNECTION_RESET", "0xC000020D"),
  );
  assert.equal(result.code, 1);
  // python got the CLI's FIN before it reset.
  assert.equal(seen.end, "eof");
});

Deno.test("connect ends within --timeout with STATUS_IO_TIMEOUT and exits 1 when the peer never closes", async () => {
  await using peer = await startPeer("hold");
  const start = performance.now();
  const result = await runCli(["connect", peer.address, "--timeout", "500"], { timeoutMs: 15_000 });
  const elapsed = performance.now() - start;
  const seen = await peer.report();
  const local = endpoint(seen.peer);
  assert.equal(result.stderr, "");
  const lines = assertLines(
    result.stdout,
    failedDrain(local, peer.address, "STATUS_IO_TIMEOUT", "0xC00000B5", {}, PEER_SAW_FIN),
  );
  assert.equal(result.code, 1);
  assert.ok(elapsed < 5000, `the run took ${elapsed.toFixed(0)} ms`);
  // The receive waited for the bound, not less.
  const waited = Number(lines[4]!.time!.replace("ms", ""));
  assert.ok(waited >= 450 && waited < 5000, `WskReceive waited ${waited} ms`);
  // python saw the FIN of the graceful disconnect.
  assert.equal(seen.end, "eof");
});

Deno.test("connect reaches a python server on [::1] and prints bracketed IPv6 addresses", async () => {
  await using peer = await startPeer("drain", 6);
  const { result, seen, local, remote } = await runAgainst(peer, "connect");
  assert.equal(seen.peer[0], "::1");
  assert.equal(result.stderr, "");
  assertLines(result.stdout, [
    ...connectedPrefix(local, remote, "[::]:0"),
    ...gracefulEnd(local, remote),
  ]);
  assert.equal(result.code, 0);
  assert.equal(seen.end, "eof");
});

Deno.test("connect --bind 127.0.0.1:PORT connects from that port, as the peer sees it", async () => {
  await using peer = await startPeer("drain");
  const port = closedPort();
  const bind = `127.0.0.1:${port}`;
  const { result, seen, remote } = await runAgainst(peer, "connect", "--bind", bind);
  assert.deepEqual(seen.peer, ["127.0.0.1", port]);
  assert.equal(result.stderr, "");
  assertLines(result.stdout, [
    ...connectedPrefix(bind, remote, bind),
    ...gracefulEnd(bind, remote),
  ]);
  assert.equal(result.code, 0);
});

Deno.test("connect localhost:PORT resolves the name with WskGetAddressInfo first", async () => {
  await using peer = await startPeer("drain");
  const result = await runCli(["connect", `localhost:${peer.port}`]);
  const local = endpoint((await peer.report()).peer);
  const remote = peer.address;
  assert.equal(result.stderr, "");
  assertLines(result.stdout, [
    {
      call: "WskGetAddressInfo",
      status: "STATUS_SUCCESS",
      ntstatus: "0x00000000",
      bytes: "0",
      time: TIME,
    },
    ...connectedPrefix(local, remote),
    ...gracefulEnd(local, remote),
  ]);
  assert.equal(result.code, 0);
});

// ---------------------------------------------------------------------------------------------
// connectex, socketconnect

Deno.test("connectex sends --data with the connect and the peer reads it before the FIN", async () => {
  await using peer = await startPeer("drain");
  const { result, seen, local, remote } = await runAgainst(peer, "connectex", "--data", "hi\\n");
  assert.equal(result.stderr, "");
  assertLines(result.stdout, [
    ok("WskSocket"),
    ok("WskBind", { local: "0.0.0.0:0" }),
    ok("WskConnectEx", { local, remote, bytes: "3" }),
    ...gracefulEnd(local, remote),
  ]);
  assert.equal(result.code, 0);
  assert.deepEqual({ data: seen.data, end: seen.end }, { data: hex("hi\n"), end: "eof" });
});

Deno.test("connectex completes with STATUS_CONNECTION_REFUSED and exits 1 when nothing listens", async () => {
  const remote = `127.0.0.1:${closedPort()}`;
  const result = await runCli(["connectex", remote, "--data", "x"]);
  assert.equal(result.stderr, "");
  assertLines(result.stdout, refusedRun(remote, "WskConnectEx"));
  assert.equal(result.code, 1);
});

Deno.test("socketconnect creates, binds and connects in one WskSocketConnect line", async () => {
  await using peer = await startPeer("drain");
  const { result, seen, local, remote } = await runAgainst(peer, "socketconnect");
  assert.equal(result.stderr, "");
  assertLines(result.stdout, [
    ok("WskSocketConnect", { local, remote }),
    ...gracefulEnd(local, remote),
  ]);
  assert.equal(result.code, 0);
  assert.equal(seen.end, "eof");
});

Deno.test("socketconnect --bind [::1]:PORT connects from that IPv6 port, as the peer sees it", async () => {
  await using peer = await startPeer("drain", 6);
  const listener = Deno.listen({ hostname: "::1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const bind = `[::1]:${port}`;
  const { result, seen, remote } = await runAgainst(peer, "socketconnect", "--bind", bind);
  assert.deepEqual(seen.peer, ["::1", port]);
  assert.equal(result.stderr, "");
  assertLines(result.stdout, [
    ok("WskSocketConnect", { local: bind, remote }),
    ...gracefulEnd(bind, remote),
  ]);
  assert.equal(result.code, 0);
});

// ---------------------------------------------------------------------------------------------
// getlocaladdress, getremoteaddress

Deno.test("getlocaladdress prints the local address the peer saw", async () => {
  await using peer = await startPeer("drain");
  const { result, local, remote } = await runAgainst(
    peer,
    "getlocaladdress",
    "--bind",
    "127.0.0.1:0",
  );
  assert.equal(result.stderr, "");
  assertLines(result.stdout, [
    ...connectedPrefix(local, remote, "127.0.0.1:0"),
    ok("WskGetLocalAddress", { local, remote }),
    ...gracefulEnd(local, remote),
  ]);
  assert.equal(result.code, 0);
});

Deno.test("getremoteaddress prints the peer's listening address on IPv6", async () => {
  await using peer = await startPeer("drain", 6);
  const { result, local, remote } = await runAgainst(peer, "getremoteaddress");
  assert.equal(result.stderr, "");
  assertLines(result.stdout, [
    ...connectedPrefix(local, remote, "[::]:0"),
    ok("WskGetRemoteAddress", { local, remote }),
    ...gracefulEnd(local, remote),
  ]);
  assert.equal(result.code, 0);
});

Deno.test("getremoteaddress --json carries the remote address the peer listens on", async () => {
  await using peer = await startPeer("drain");
  const { result, local, remote } = await runAgainst(peer, "getremoteaddress", "--json");
  assert.equal(result.stderr, "");
  assert.deepEqual(jsonLines(result.stdout), [
    ...connectedPrefixJson(local, remote),
    okJson("WskGetRemoteAddress", { local, remote }),
    ...gracefulEndJson(local, remote),
  ]);
  assert.equal(result.code, 0);
});

// ---------------------------------------------------------------------------------------------
// bind, socket

/** A bound socket's run: WskSocket, WskBind to `bind`, WskGetLocalAddress, WskCloseSocket. */
function boundRun(bind: string | RegExp, bound: RegExp): Expected[] {
  return [
    ok("WskSocket"),
    ok("WskBind", { local: bind }),
    ok("WskGetLocalAddress", { local: bound }),
    ok("WskCloseSocket", { local: bound }),
  ];
}

Deno.test("bind 127.0.0.1:0 shows the kernel-chosen port in WskGetLocalAddress", async () => {
  const result = await runCli(["bind", "127.0.0.1:0"]);
  assert.equal(result.stderr, "");
  const lines = assertLines(result.stdout, boundRun("127.0.0.1:0", /^127\.0\.0\.1:\d+$/));
  const port = portOf(lines[2]!.local!);
  assert.ok(port > 0 && port <= 65535, `port ${port}`);
  assert.equal(lines[3]!.local, lines[2]!.local);
  assert.equal(result.code, 0);
});

Deno.test("bind --listen [::1]:0 shows the real port in WskBind and WskGetLocalAddress", async () => {
  const result = await runCli(["bind", "--listen", "[::1]:0"]);
  assert.equal(result.stderr, "");
  const bound = /^\[::1\]:\d+$/;
  const lines = assertLines(result.stdout, boundRun(bound, bound));
  const port = portOf(lines[2]!.local!);
  assert.ok(port > 0 && port <= 65535, `port ${port}`);
  assert.equal(lines[1]!.local, lines[2]!.local);
  assert.equal(result.code, 0);
});

Deno.test("bind --json reports the kernel-chosen port", async () => {
  const result = await runCli(["bind", "127.0.0.1:0", "--json"]);
  assert.equal(result.stderr, "");
  const lines = jsonLines(result.stdout);
  const local = lines[2]?.local;
  assert.equal(typeof local, "string");
  assert.match(local as string, /^127\.0\.0\.1:\d+$/);
  assert.ok(portOf(local as string) > 0);
  assert.deepEqual(lines, [
    okJson("WskSocket"),
    okJson("WskBind", { local: "127.0.0.1:0" }),
    okJson("WskGetLocalAddress", { local }),
    okJson("WskCloseSocket", { local }),
  ]);
  assert.equal(result.code, 0);
});

Deno.test("socket --family inet6 --listen --bind [::1]:0 binds a listening IPv6 socket", async () => {
  const result = await runCli(["socket", "--family", "inet6", "--listen", "--bind", "[::1]:0"]);
  assert.equal(result.stderr, "");
  const bound = /^\[::1\]:\d+$/;
  const lines = assertLines(result.stdout, boundRun(bound, bound));
  assert.ok(portOf(lines[2]!.local!) > 0);
  assert.equal(lines[1]!.local, lines[2]!.local);
  assert.equal(result.code, 0);
});

Deno.test("socket without options creates and closes a connection socket", async () => {
  const result = await runCli(["socket"]);
  assert.equal(result.stderr, "");
  assertLines(result.stdout, [ok("WskSocket"), ok("WskCloseSocket")]);
  assert.equal(result.code, 0);
});

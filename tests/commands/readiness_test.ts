// Readiness and reachability: `connect --retry-until` waiting for a listener that comes up late
// (or never), and `socketconnect` over a port list with one line per port. Peers are python3.

import assert from "node:assert/strict";
import { MAX_PORT_LIST, parsePortList, parseRetryUntil } from "../../syntax/values.ts";
import { closedPort, parseLine, runCli, sleep } from "../_helpers.ts";
import { PythonPeer } from "../_python.ts";
import { assertLines, assertUsageFails, failed, ok, TIME } from "./_peer.ts";

const ADDRESS = /^127\.0\.0\.1:\d+$/;

// ---------------------------------------------------------------------------------------------
// Parsers

Deno.test("parsePortList() reads one port, ranges and comma lists in the order given", () => {
  const cases = [
    { input: "127.0.0.1:80", ports: [80], isList: false },
    { input: "127.0.0.1:8000-8003", ports: [8000, 8001, 8002, 8003], isList: true },
    { input: "127.0.0.1:443,80,22", ports: [443, 80, 22], isList: true },
    { input: "[::1]:1-2,9", ports: [1, 2, 9], isList: true },
    { input: "localhost:7-7", ports: [7], isList: true },
    { input: "127.0.0.1:65535,1", ports: [65535, 1], isList: true },
  ];
  for (const { input, ports, isList } of cases) {
    const list = parsePortList(input);
    assert.deepEqual(list.ports, ports, input);
    assert.equal(list.isList, isList, input);
  }
  assert.equal(parsePortList("localhost:1,2").endpoint.kind, "name");
  assert.equal(parsePortList(`127.0.0.1:1-${MAX_PORT_LIST}`).ports.length, MAX_PORT_LIST);
});

Deno.test("parsePortList() refuses bad lists with a message that quotes them", () => {
  const cases = [
    { input: "127.0.0.1:9-8", why: 'the range "9-8" runs backwards' },
    { input: `127.0.0.1:1-${MAX_PORT_LIST + 1}`, why: `more than ${MAX_PORT_LIST} ports` },
    { input: "127.0.0.1:1-1000,2000-2100", why: `more than ${MAX_PORT_LIST} ports` },
    { input: "127.0.0.1:80,,81", why: "an empty item (expected P, P1-P2 or P1,P2,…)" },
    { input: "127.0.0.1:80,", why: "an empty item (expected P, P1-P2 or P1,P2,…)" },
    { input: "127.0.0.1:80,79-81", why: "port 80 is named twice" },
    { input: "127.0.0.1:0,1", why: 'port "0": expected an integer from 1 to 65535' },
    { input: "127.0.0.1:1-65536", why: 'port "65536": expected an integer from 1 to 65535' },
    { input: "127.0.0.1:1-2-3", why: 'port "2-3": expected an integer from 1 to 65535' },
    { input: "127.0.0.1:08,9", why: 'port "08": expected an integer from 1 to 65535' },
    { input: "127.0.0.1: 8,9", why: 'port " 8": expected an integer from 1 to 65535' },
  ];
  for (const { input, why } of cases) {
    assert.throws(
      () => parsePortList(input),
      (error: Error) => error.message === `Cannot parse port list "${input}": ${why}`,
      input,
    );
  }
  // The host is checked as for any address, and the message quotes the whole list.
  assert.throws(
    () => parsePortList("::1:80,81"),
    /^InvalidArgumentError: Cannot parse address "::1:80,81": an IPv6 address needs brackets/,
  );
  assert.throws(
    () => parsePortList(":80,81"),
    /Cannot parse address ":80,81": the host is missing/,
  );
});

Deno.test("parseRetryUntil() reads milliseconds from 0, or a duration with a unit", () => {
  assert.equal(parseRetryUntil("0"), 0);
  assert.equal(parseRetryUntil("30000"), 30000);
  assert.equal(parseRetryUntil("5s"), 5000);
  assert.equal(parseRetryUntil("1.5s"), 1500);
  assert.equal(parseRetryUntil("250ms"), 250);
  assert.equal(parseRetryUntil("2m"), 120_000);
  for (const input of ["-1", "", "1.5", "5x", "s", "1.5.2s", "25d"]) {
    assert.throws(() => parseRetryUntil(input), /Cannot parse retry deadline/, input);
  }
});

// ---------------------------------------------------------------------------------------------
// connect --retry-until

/**
 * Binds argv[1] (127.0.0.1) port 0 without listening (a connect to it is refused), prints the port (it is
 * ready), listens once a line comes on stdin, reads its one client until EOF, closes, and prints
 * {"peer": "IP:PORT"}.
 */
const LATE_LISTENER = String.raw`
import json, socket, sys
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.bind((sys.argv[1], 0))
print(srv.getsockname()[1], flush=True)
sys.stdin.readline()
srv.listen(1)
srv.settimeout(20)
conn, peer = srv.accept()
srv.close()
conn.settimeout(20)
while conn.recv(65536):
    pass
conn.close()
print(json.dumps({"peer": "%s:%d" % peer}), flush=True)
`;

Deno.test("connect --retry-until succeeds once a listener comes up 2 s after the CLI started", async () => {
  // The listener is ready (its port bound, refusing) before the CLI starts, so python's start-up
  // is out of the picture; 2 s leaves the CLI (deno) time to start and be refused at least once
  // on a loaded machine, and 10 s of retrying leaves time for the rest.
  await using peer = await PythonPeer.start(LATE_LISTENER, ["127.0.0.1"], { stdin: true });
  const port = peer.port;
  const started = performance.now();
  const running = runCli(["connect", `127.0.0.1:${port}`, "--retry-until", "10000"]);
  await sleep(2000);
  await peer.writeLine("listen");
  const result = await running;
  const elapsed = performance.now() - started;
  const { peer: local } = await peer.json<{ peer: string }>();
  assert.equal(result.stderr, "");
  assert.equal(result.code, 0, result.stdout);
  const remote = `127.0.0.1:${port}`;
  const lines = assertLines(result.stdout, [
    // The socket of the last attempt: earlier ones were closed without a line.
    ok("WskSocket", { socket: /^\d+$/ }),
    ok("WskBind", { socket: /^\d+$/, local: "0.0.0.0:0" }),
    ok("WskConnect", { socket: /^\d+$/, local, remote, calls: /^\d+$/ }),
    ok("WskDisconnect", { socket: /^\d+$/, local, remote }),
    ok("WskReceive", { socket: /^\d+$/, local, remote, calls: "1" }),
    ok("WskCloseSocket", { socket: /^\d+$/, local, remote }),
  ]);
  const attempts = Number(lines[2]!.calls);
  assert.ok(attempts >= 2, `calls=${attempts}: the first attempts must have been refused`);
  assert.equal(lines[0]!.socket, String(attempts), "one socket per attempt");
  assert.ok(new Set(lines.map((line) => line.socket)).size === 1);
  // The WskConnect time covers the wait, and the CLI stopped soon after the listener came up.
  const waited = parseFloat(lines[2]!.time!);
  assert.ok(waited >= 100 && waited < 8000, `WskConnect time=${lines[2]!.time}`);
  assert.ok(elapsed < 10_000, `the CLI ran ${elapsed} ms`);
});

Deno.test("connect --retry-until gives up after the deadline with the last refusal, exit 1", async () => {
  const port = closedPort();
  const started = performance.now();
  const result = await runCli(["connect", `127.0.0.1:${port}`, "--retry-until", "800"]);
  const elapsed = performance.now() - started;
  assert.equal(result.stderr, "");
  assert.equal(result.code, 1);
  const remote = `127.0.0.1:${port}`;
  const local = "0.0.0.0:0";
  const lines = assertLines(result.stdout, [
    ok("WskSocket", { socket: /^\d+$/ }),
    ok("WskBind", { socket: /^\d+$/, local }),
    failed("WskConnect", "STATUS_CONNECTION_REFUSED", "0xC0000236", {
      socket: /^\d+$/,
      local,
      remote,
      calls: /^\d+$/,
    }),
    ok("WskCloseSocket", { socket: /^\d+$/, local, remote }),
  ]);
  // Pauses of 50, 100, then 200 ms: about 6 attempts in 800 ms, never a busy loop.
  // (A loaded machine's late timers mean fewer attempts, never more.)
  const attempts = Number(lines[2]!.calls);
  assert.ok(attempts >= 3 && attempts <= 12, `calls=${attempts}`);
  // The deadline is kept: no attempt starts after it (the last one's refusal is quick even on a
  // loaded machine, the bound allows its scheduling).
  const waited = parseFloat(lines[2]!.time!);
  assert.ok(waited >= 800 && waited < 3000, `WskConnect time=${lines[2]!.time}`);
  // Deno's start-up is included here; the bound is what matters.
  assert.ok(elapsed < 6000, `the CLI ran ${elapsed} ms`);
});

Deno.test("connect --retry-until 0 makes exactly one attempt", async () => {
  const port = closedPort();
  const result = await runCli(["connect", `127.0.0.1:${port}`, "--retry-until", "0", "--json"]);
  assert.equal(result.code, 1);
  const records = result.stdout.trim().split("\n").map((line) => JSON.parse(line));
  assert.deepEqual(records.map((r) => r.call), [
    "WskSocket",
    "WskBind",
    "WskConnect",
    "WskCloseSocket",
  ]);
  assert.equal(records[2].calls, 1);
  assert.equal(records[2].status, "STATUS_CONNECTION_REFUSED");
  assert.equal(records[0].socket, 1);
});

Deno.test("connect --retry-until refuses a value that is not a duration", async () => {
  await assertUsageFails(
    ["connect", "127.0.0.1:1", "--retry-until", "5x"],
    "error: option '--retry-until <ms>' argument '5x' is invalid. Cannot parse retry deadline " +
      '"5x": expected milliseconds from 0 to 2147483647, or a number with a unit (500ms, 5s, 2m)\n',
  );
});

// ---------------------------------------------------------------------------------------------
// socketconnect HOST:PORTS

/**
 * argv: HOST MODE ("gap": the port P it listens on has P+1 free, left closed; "any": any port).
 * Prints the port, accepts one connection, reads it until EOF and prints {"bytes": N}.
 */
const PORT_PEER = String.raw`
import json, socket, sys
def listener(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((sys.argv[1], port))
    s.listen(1)
    return s
while True:
    srv = listener(0)
    port = srv.getsockname()[1]
    if sys.argv[2] == "any":
        break
    try:
        if port < 65535:
            listener(port + 1).close()
            break
    except OSError:
        pass
    srv.close()
srv.settimeout(20)
print(port, flush=True)
conn, _ = srv.accept()
srv.close()
conn.settimeout(20)
received = 0
try:
    while data := conn.recv(65536):
        received += len(data)
except ConnectionResetError:
    pass
conn.close()
print(json.dumps({"bytes": received}), flush=True)
`;

function portPeer(mode: "gap" | "any"): Promise<PythonPeer<{ bytes: number }>> {
  return PythonPeer.start<{ bytes: number }>(PORT_PEER, ["127.0.0.1", mode]);
}

Deno.test("socketconnect over a port list: one line per port, exit 1 when one is closed", async () => {
  await using first = await portPeer("gap");
  await using second = await portPeer("any");
  const p = first.port;
  const result = await runCli(["socketconnect", `127.0.0.1:${p}-${p + 1},${second.port}`]);
  assert.equal(result.stderr, "");
  assert.equal(result.code, 1);
  const lines = assertLines(result.stdout, [
    ok("WskSocketConnect", { socket: /^\d+$/, local: ADDRESS, remote: `127.0.0.1:${p}` }),
    failed("WskSocketConnect", "STATUS_CONNECTION_REFUSED", "0xC0000236", {
      socket: "0",
      local: "0.0.0.0:0",
      remote: `127.0.0.1:${p + 1}`,
    }),
    ok("WskSocketConnect", { socket: /^\d+$/, local: ADDRESS, remote: second.address }),
  ]);
  for (const line of lines) assert.match(line.time!, TIME);
  // Both open ports saw a connection that ended without a byte (zero I/O).
  assert.deepEqual(await first.report(), { bytes: 0 });
  assert.deepEqual(await second.report(), { bytes: 0 });
});

Deno.test("socketconnect over a port list exits 0 when every port connected", async () => {
  await using first = await portPeer("any");
  await using second = await portPeer("any");
  const result = await runCli([
    "socketconnect",
    `127.0.0.1:${second.port},${first.port}`,
    "--json",
  ]);
  assert.equal(result.stderr, "");
  assert.equal(result.code, 0);
  const records = result.stdout.trim().split("\n").map((line) => JSON.parse(line));
  assert.deepEqual(records.map((r) => [r.call, r.status, r.remote]), [
    ["WskSocketConnect", "STATUS_SUCCESS", second.address],
    ["WskSocketConnect", "STATUS_SUCCESS", first.address],
  ]);
  assert.deepEqual(await first.report(), { bytes: 0 });
  assert.deepEqual(await second.report(), { bytes: 0 });
});

Deno.test("socketconnect over a range of closed ports: every line refused, in order", async () => {
  const base = closedPort();
  const ports = [base, base === 65535 ? 1 : base + 1];
  const result = await runCli(["socketconnect", `127.0.0.1:${ports.join(",")}`]);
  assert.equal(result.code, 1);
  assertLines(
    result.stdout,
    ports.map((port) =>
      failed("WskSocketConnect", "STATUS_CONNECTION_REFUSED", "0xC0000236", {
        socket: "0",
        local: "0.0.0.0:0",
        remote: `127.0.0.1:${port}`,
      })
    ),
  );
});

Deno.test("socketconnect refuses a bad port list before any socket (exit 2)", async () => {
  await assertUsageFails(
    ["socketconnect", "127.0.0.1:90-80"],
    "error: command-argument value '127.0.0.1:90-80' is invalid for argument 'remote'. Cannot " +
      'parse port list "127.0.0.1:90-80": the range "90-80" runs backwards\n',
  );
});

Deno.test("--timeout and --retry-until take units: connect --retry-until 1s --timeout 500ms gives up after about a second", async () => {
  const port = closedPort();
  const start = performance.now();
  const result = await runCli([
    "connect",
    `127.0.0.1:${port}`,
    "--retry-until",
    "1s",
    "--timeout",
    "500ms",
  ]);
  const elapsed = performance.now() - start;
  assert.equal(result.code, 1, result.stdout + result.stderr);
  const line = result.stdout.split("\n").map(parseLine).find((l) => l.call === "WskConnect");
  assert.equal(line?.status, "STATUS_CONNECTION_REFUSED", result.stdout);
  const attempts = Number(line?.calls);
  assert.ok(attempts > 2, `attempts: ${attempts}`);
  // The deadline is 1000 ms of retries: at least that long, far less than a 1 s-as-1 ms or
  // 1 s-as-1000 s reading would give.
  const spent = Number(line!.time!.replace("ms", ""));
  assert.ok(spent >= 950 && spent < 5000, `retried for ${spent} ms (run ${elapsed.toFixed(0)} ms)`);
});

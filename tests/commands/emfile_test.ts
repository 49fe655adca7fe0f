// `wsk accept --keep-open` short of file descriptors: the server runs under `ulimit -n 64`, one
// python3 process (bench/emfile_clients.py) opens 200 connections at once, each sends a line,
// checks the answer and holds the connection 0.3 s, so the server runs out of descriptors while
// the rest wait in the kernel's backlog. Every client must end served (or, from a denied address,
// reset: a status it sees), the server must report each failed accept as
// STATUS_INSUFFICIENT_RESOURCES and still serve one more client after the storm.

import assert from "node:assert/strict";
import { parseLine } from "../_helpers.ts";
import { PythonPeer } from "../_python.ts";
import { CliChild, portOf } from "./_peer.ts";

const CLIENTS_SCRIPT = new URL("../../bench/emfile_clients.py", import.meta.url).pathname;
const CLIENTS = 200;
/** `python3 -c` this with the script's path first runs that script with the rest as its argv. */
const RUN_FILE =
  "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')";

/** Runs the CLI under `ulimit -n 64`. */
const LIMITED = ["sh", "-c", 'ulimit -n 64 && exec "$0" "$@"'];

interface StormResult {
  readonly counts: Record<string, number>;
  readonly after: string;
  readonly seconds: number;
}

interface Case {
  readonly name: string;
  readonly args: string[];
  /** The call the server names a failed accept with. */
  readonly call: "WskAccept" | "WskAcceptEvent";
  /** --expect for the clients. */
  readonly expect: string;
  /** Every K-th client connects from 127.0.0.2, which the server denies. */
  readonly denyEvery?: number;
}

const CASES: Case[] = [
  { name: "deno IRP, --mode echo", args: [], call: "WskAccept", expect: "echo" },
  {
    name: "--backing node IRP, --mode echo",
    args: ["--backing", "node"],
    call: "WskAccept",
    expect: "echo",
  },
  { name: "--events, --mode echo", args: ["--events"], call: "WskAcceptEvent", expect: "echo" },
  {
    name: "--events --backing node, --mode reply",
    args: ["--events", "--backing", "node", "--reply", "hello"],
    call: "WskAcceptEvent",
    expect: "hello",
  },
  {
    name: "--allow 127.0.0.0/8 --deny 127.0.0.2 (every 10th client denied), --mode echo",
    args: ["--allow", "127.0.0.0/8", "--deny", "127.0.0.2"],
    call: "WskAccept",
    expect: "echo",
    denyEvery: 10,
  },
];

for (const c of CASES) {
  Deno.test(`accept --keep-open under ulimit -n 64, ${CLIENTS} clients at once, ${c.name}: each failed accept is STATUS_INSUFFICIENT_RESOURCES, every client is served (or denied with a reset) and the server still serves`, async () => {
    await using server = new CliChild(["accept", "--keep-open", ...c.args], [], LIMITED);
    const port = portOf(await server.bindLocal("stdout"));
    await using storm = await PythonPeer.start(RUN_FILE, [
      CLIENTS_SCRIPT,
      "127.0.0.1",
      String(port),
      "--clients",
      String(CLIENTS),
      "--expect",
      c.expect,
      "--hold",
      "0.3",
      "--deadline",
      "20",
      ...(c.denyEvery ? ["--deny-every", String(c.denyEvery)] : []),
    ], { ready: "line", readyMs: 15_000, graceMs: 5000 });
    assert.deepEqual(JSON.parse(storm.ready), { ready: true });
    // Bounded by the script's own deadlines (20 s for the storm, 10 s for the last client).
    const result = await storm.json<StormResult>(35_000);
    const denied = c.denyEvery ? Math.ceil(CLIENTS / c.denyEvery) : 0;
    assert.deepEqual(
      result.counts,
      denied > 0 ? { served: CLIENTS - denied, ECONNRESET: denied } : { served: CLIENTS },
      `server stderr: ${server.stderr.text()}`,
    );
    assert.equal(result.after, "served", "the client after the storm");

    server.kill("SIGTERM");
    const code = await server.exitCode(10_000);
    const lines = server.stdout.lines().map(parseLine);
    const failedAccepts = lines.filter((line) =>
      line.call === c.call && line.status === "STATUS_INSUFFICIENT_RESOURCES"
    );
    assert.ok(
      failedAccepts.length > 0,
      `the server never ran out of descriptors: ${server.stdout.text().slice(-2000)}`,
    );
    for (const line of failedAccepts) {
      assert.equal(line.ntstatus, "0xC000009A");
      assert.equal(line.socket, "1", "a failed accept names the listening socket");
      assert.match(line.message ?? "", /Too many open files.*; accepting again in \d+ ms$/);
    }
    // One line per failed accept, paced by the pause (10 ms doubling to 1 s): not a busy loop.
    assert.ok(failedAccepts.length < 200, `${failedAccepts.length} failed accepts`);
    const summaries = lines.filter((line) => line.call === "Summary");
    assert.equal(summaries.length, CLIENTS + 1, "one Summary per client, the last one included");
    const served = summaries.filter((line) =>
      line.status === "STATUS_SUCCESS" && line.value === "graceful"
    );
    assert.equal(served.length, CLIENTS + 1 - denied);
    assert.equal(
      summaries.filter((line) => line.status === "STATUS_REQUEST_NOT_ACCEPTED").length,
      denied,
    );
    // The failed accepts were not planned: the server says so with exit 1 once stopped.
    assert.equal(code, 1, server.stderr.text());
    assert.doesNotMatch(server.stderr.text(), /panicked|error:/);
  });
}

// `wsk accept --mode exec -- CMD ARGS…` end to end: accept runs as a spawned child, the test
// reads its WskBind line for the port it bound, drives Deno clients (and netcat) against it, and
// checks the bytes the command sent back, the lines per connection and the Summary's exit code.

import assert from "node:assert/strict";
import { CLI_ENV, parseLine, readAll, text, within } from "../_helpers.ts";
import { runProcess } from "../_child.ts";
import { PythonPeer } from "../_python.ts";
import { assertUsageFails, CliChild, portOf, randomBytes } from "./_peer.ts";

/** Connects, sends `payload` while reading, half-closes and reads until EOF (or an error). */
async function exchange(
  port: number,
  payload: Uint8Array,
): Promise<{ local: string; got: Uint8Array; error: unknown }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const reading = readAll(conn);
    for (let offset = 0; offset < payload.length;) {
      offset += await conn.write(payload.subarray(offset));
    }
    await conn.closeWrite();
    const { bytes, error } = await reading;
    return { local: `127.0.0.1:${conn.localAddr.port}`, got: bytes, error };
  } finally {
    conn.close();
  }
}

/** The parsed lines of the connection whose remote is `client`, in order. */
function linesOf(output: string, client: string): Record<string, string>[] {
  return output.split("\n").filter((line) => line !== "").map(parseLine)
    .filter((line) => line.remote === client);
}

Deno.test("accept --mode exec runs the command per connection: bytes transformed, exit=0 in each Summary", async () => {
  await using cli = new CliChild([
    "accept",
    "--count",
    "2",
    "--mode",
    "exec",
    "--",
    "tr",
    "a-z",
    "A-Z",
  ]);
  const port = portOf(await cli.bindLocal("stdout"));
  const payloads = [
    text.encode("hello, exec\n"),
    new Uint8Array([...text.encode("second one "), ...text.encode("xyz".repeat(40_000))]),
  ];
  const runs = await within(
    Promise.all(payloads.map((payload) => exchange(port, payload))),
    20_000,
    "two exec clients",
  );
  assert.equal(await cli.exitCode(), 0, cli.stderr.text());
  assert.equal(cli.stderr.text(), "");
  const pids = new Set<string>();
  runs.forEach((run, i) => {
    assert.equal(run.error, null, `client ${i}`);
    const upper = text.decode(payloads[i]!).toUpperCase();
    assert.equal(text.decode(run.got), upper, `client ${i} got its bytes upper-cased`);
    const lines = linesOf(cli.stdout.text(), run.local);
    assert.deepEqual(lines.map((line) => line.call), [
      "WskAccept",
      "Exec",
      "WskReceive",
      "WskSend",
      "WskDisconnect",
      "WskCloseSocket",
      "Summary",
    ]);
    for (const line of lines) assert.equal(line.status, "STATUS_SUCCESS", JSON.stringify(line));
    const exec = lines[1]!;
    assert.match(exec.value!, /^\d+$/, "the Exec line names the process id");
    pids.add(exec.value!);
    assert.equal(lines[2]!.bytes, String(payloads[i]!.length), "WskReceive: into the command");
    assert.equal(lines[3]!.bytes, String(upper.length), "WskSend: what the command wrote");
    const summary = lines[6]!;
    assert.equal(summary.exit, "0");
    assert.equal(summary.value, "graceful");
    assert.equal(summary.received, String(payloads[i]!.length));
    assert.equal(summary.sent, String(upper.length));
  });
  assert.equal(pids.size, 2, "each connection had its own process");
});

Deno.test("accept --mode exec passes a few MiB through cat byte-exact, both directions at once", async () => {
  await using cli = new CliChild(["accept", "--mode", "exec", "--", "cat"]);
  const port = portOf(await cli.bindLocal("stdout"));
  const payload = randomBytes(4 * 1024 * 1024 + 7);
  const run = await within(exchange(port, payload), 30_000, "the cat client");
  assert.equal(run.error, null);
  assert.equal(run.got.length, payload.length);
  assert.ok(run.got.every((byte, i) => byte === payload[i]), "the bytes came back unchanged");
  assert.equal(await cli.exitCode(), 0, cli.stderr.text());
  const summary = linesOf(cli.stdout.text(), run.local).at(-1)!;
  assert.equal(summary.call, "Summary");
  assert.equal(summary.exit, "0");
  assert.equal(summary.received, String(payload.length));
  assert.equal(summary.sent, String(payload.length));
});

Deno.test("accept --mode exec shows a failing command's exit code; its stderr passes through", async () => {
  const script = "cat > /dev/null; echo answer; echo complaint >&2; exit 3";
  await using cli = new CliChild(["accept", "--mode", "exec", "--", "sh", "-c", script]);
  const port = portOf(await cli.bindLocal("stdout"));
  // netcat as the client: -N sends its FIN at the end of its input.
  const nc = await within(
    runProcess("nc", ["-N", "127.0.0.1", String(port)], { stdin: "question\n" }),
    15_000,
    "nc",
  );
  assert.equal(nc.code, 0, nc.stderr);
  assert.equal(nc.stdout, "answer\n");
  assert.equal(await cli.exitCode(), 0, "a command's exit code is reported, not the server's");
  assert.equal(cli.stderr.text(), "complaint\n", "the command's stderr goes to wsk's stderr");
  const summary = cli.stdout.lines().map(parseLine).find((line) => line.call === "Summary")!;
  assert.equal(summary.status, "STATUS_SUCCESS");
  assert.equal(summary.exit, "3");
  assert.equal(summary.received, "9");
  assert.equal(summary.sent, "7");
});

Deno.test("accept --mode exec: a command that cannot start is a status on that connection, and the server goes on", async () => {
  const missing = "/nonexistent/wsk-no-such-command";
  await using cli = new CliChild(["accept", "--count", "2", "--mode", "exec", "--", missing]);
  const port = portOf(await cli.bindLocal("stdout"));
  for (let i = 0; i < 2; i++) {
    const run = await within(exchange(port, text.encode("hi")), 15_000, `client ${i}`);
    assert.equal(run.got.length, 0, "nothing answers");
    // The connection is aborted: a reset with --allow-ffi, else (the deno backing) a close, so
    // the client reads an EOF or a reset.
    assert.ok(
      run.error === null || run.error instanceof Deno.errors.ConnectionReset,
      `client ${i} saw ${run.error}`,
    );
  }
  assert.equal(await cli.exitCode(), 1, "a failed start is a failure");
  const lines = cli.stdout.lines().map(parseLine);
  const execs = lines.filter((line) => line.call === "Exec");
  assert.equal(execs.length, 2, "both connections were served");
  for (const exec of execs) {
    assert.equal(exec.status, "STATUS_OBJECT_NAME_NOT_FOUND");
    assert.equal(exec.ntstatus, "0xC0000034");
    assert.equal(exec.value, missing);
    assert.match(exec.message!, /^Cannot run "\/nonexistent\/wsk-no-such-command": /);
  }
  const summaries = lines.filter((line) => line.call === "Summary");
  assert.equal(summaries.length, 2);
  for (const summary of summaries) {
    assert.equal(summary.status, "STATUS_OBJECT_NAME_NOT_FOUND");
    assert.equal(summary.value, "local-close");
    assert.equal(summary.exit, undefined, "no process, no exit code");
  }
});

Deno.test("accept --mode exec without --allow-run is a usage error before any socket opens", async () => {
  const main = new URL("../../main.ts", import.meta.url).pathname;
  const result = await runProcess(
    Deno.execPath(),
    ["run", "--allow-net", main, "accept", "--mode", "exec", "--", "cat"],
    { env: { ...CLI_ENV } },
  );
  assert.equal(result.stdout, "");
  assert.equal(
    result.stderr,
    'error: Cannot run "cat" for each connection: --mode exec needs --allow-run ' +
      "(deno run --allow-run …, or deno task wsk)\n",
  );
  assert.equal(result.code, 2);
});

Deno.test("accept --mode exec: the command's words follow --, and misplaced words are usage errors", async () => {
  const cases: [string[], string][] = [
    [
      ["accept", "--mode", "exec"],
      "error: --mode exec needs a command after --: wsk accept --mode exec -- CMD\n",
    ],
    [
      ["accept", "127.0.0.1:0", "tr", "a-z", "A-Z"],
      'error: Cannot use "tr": accept takes one LOCAL address, and a command only after --\n',
    ],
    [
      ["accept", "--mode", "echo", "--", "cat"],
      'error: Cannot run "cat" with --mode "echo": a command is for --mode exec\n',
    ],
    [
      ["accept", "--mode", "exec", "--events", "--", "cat"],
      'error: Cannot use --events with --mode "exec": it runs on WskAccept IRPs\n',
    ],
  ];
  for (const [args, stderr] of cases) await assertUsageFails(args, stderr);
});

Deno.test("accept --mode exec: the peer's reset ends the command, and the Summary says reset", async () => {
  await using cli = new CliChild(["accept", "--mode", "exec", "--", "cat"]);
  const port = portOf(await cli.bindLocal("stdout"));
  await using client = await PythonPeer.client("127.0.0.1", "127.0.0.1", port, "6869", "reset");
  assert.deepEqual(await client.json(), { sent: 2 });
  // The command runs and has echoed the two bytes before the client resets.
  await cli.lineWhere("stdout", (line) => line.call === "Exec", "the Exec line");
  await client.writeLine("reset");
  assert.equal((await client.json<{ end: string }>()).end, "sent-reset");
  assert.equal(await cli.exitCode(), 1, "the peer's reset is a failure");
  const lines = cli.stdout.lines().map(parseLine);
  const receive = lines.find((line) => line.call === "WskReceive")!;
  assert.equal(receive.status, "STATUS_CONNECTION_RESET");
  const summary = lines.find((line) => line.call === "Summary")!;
  assert.equal(summary.status, "STATUS_CONNECTION_RESET");
  assert.equal(summary.value, "reset");
  assert.equal(summary.received, "2");
  // cat was ended by SIGTERM (143), unless it saw its input close first (0).
  assert.ok(summary.exit === "143" || summary.exit === "0", `exit=${summary.exit}`);
});

Deno.test("accept --mode exec --json: the Exec record has the pid, the Summary the exit code", async () => {
  await using cli = new CliChild(["accept", "--json", "--mode", "exec", "--", "tr", "a-z", "A-Z"]);
  const bound = JSON.parse(
    await cli.stdout.waitFor(
      () => cli.stdout.lines().find((line) => line.includes('"call":"WskBind"')),
      15_000,
      "the WskBind record",
    ),
  );
  const run = await within(exchange(portOf(bound.local), text.encode("json\n")), 15_000, "client");
  assert.equal(text.decode(run.got), "JSON\n");
  assert.equal(await cli.exitCode(), 0, cli.stderr.text());
  const records = cli.stdout.lines().map((line) => JSON.parse(line));
  const exec = records.find((record) => record.call === "Exec");
  assert.equal(exec.status, "STATUS_SUCCESS");
  assert.equal(typeof exec.value, "number", "the pid");
  const summary = records.find((record) => record.call === "Summary");
  assert.equal(summary.exit, 0);
  assert.equal(summary.received, 5);
  assert.equal(summary.sent, 5);
});

Deno.test("accept --mode exec: a command that closed its output but runs on is ended after --timeout", async () => {
  const script = "echo hi; exec >&-; exec sleep 30";
  await using cli = new CliChild([
    "accept",
    "--timeout",
    "1s",
    "--mode",
    "exec",
    "--",
    "sh",
    "-c",
    script,
  ]);
  const port = portOf(await cli.bindLocal("stdout"));
  const run = await within(exchange(port, new Uint8Array(0)), 15_000, "the client");
  assert.equal(run.error, null);
  assert.equal(text.decode(run.got), "hi\n", "the end of its output was our FIN");
  assert.equal(await cli.exitCode(10_000), 0, cli.stderr.text());
  const summary = cli.stdout.lines().map(parseLine).find((line) => line.call === "Summary")!;
  assert.equal(summary.status, "STATUS_SUCCESS");
  assert.equal(summary.exit, "143", "SIGTERM, not the end of its sleep");
  assert.ok(Number(summary.time!.replace("ms", "")) >= 1000, "not before --timeout passed");
});

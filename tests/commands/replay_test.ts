/**
 * End-to-end tests of record to replay: `wsk run --record LOG` against a python3 greeting server,
 * then `wsk replay LOG` against the same server, another one (`--to`), one that answers one byte
 * differently, one in other chunks, and none (refused); a kept `--json` output replays; a
 * malformed log is a usage error naming its record.
 */

import assert from "node:assert/strict";
import { closedPort, parseLine, runCli } from "../_helpers.ts";
import { PY_LISTEN, PythonPeer } from "../_python.ts";
import { deriveScript, parseLog } from "../../steps/replay.ts";

/**
 * A greeting server (PY_LISTEN on 127.0.0.1). argv: HOST GREETING COUNT [split]. Per connection
 * it sends GREETING (with `split`, in two sends 100 ms apart), then echoes until EOF and closes.
 * After COUNT connections it reports, per connection, the bytes it got.
 */
const GREETER = PY_LISTEN + String.raw`
greeting, count = args[0].encode(), int(args[1])
split = len(args) > 2 and args[2] == "split"
got = []
for index in range(count):
    conn, addr = srv.accept()
    conn.settimeout(20)
    data = b""
    try:
        if split:
            conn.sendall(greeting[:3])
            time.sleep(0.1)
            conn.sendall(greeting[3:])
        else:
            conn.sendall(greeting)
        while chunk := conn.recv(4096):
            data += chunk
            conn.sendall(chunk)
    except (ConnectionResetError, socket.timeout):
        pass
    conn.close()
    got.append(data.decode("latin-1"))
print(json.dumps({"got": got}), flush=True)
`;

const GREETING = "HELLO wsk v1\r\n";

function greeter(count: number, greeting = GREETING, split = false) {
  const args = ["127.0.0.1", greeting, String(count), ...(split ? ["split"] : [])];
  return PythonPeer.start<{ got: string[] }>(GREETER, args);
}

/** The recorded script: read the greeting, send a line, read its echo, half-close, read to FIN. */
function script(port: number): string {
  return [
    `socketconnect 127.0.0.1:${port}`,
    'receive --until "\\r\\n" --expect HELLO',
    'send "PING\\r\\n"',
    "receive --bytes 6",
    "disconnect",
    "receive",
  ].join("\n");
}

/** Records `script(port)` into a temporary log; returns its path. */
async function record(port: number): Promise<string> {
  const log = await Deno.makeTempFile({ prefix: "wsk-replay-", suffix: ".jsonl" });
  const result = await runCli(["run", "-", "--record", log], { stdin: script(port) });
  assert.equal(result.code, 0, result.stdout + result.stderr);
  return log;
}

/** The fields of the Replay line of the recorded log: 8 records (one Expect), 7 steps. */
const REPLAY_OF_8 = { call: "Replay", ntstatus: "records=8", records: "8", steps: "7" };

/** The last line of stdout, parsed (the Replay line). */
function replayLine(stdout: string): Record<string, string> {
  const lines = stdout.trim().split("\n");
  return parseLine(lines[lines.length - 1]!);
}

Deno.test("replay: a recorded run replays against the same server with exit 0", async () => {
  await using server = await greeter(2);
  const log = await record(server.port);
  try {
    const records = (await Deno.readTextFile(log)).trim().split("\n").map((l) => JSON.parse(l));
    // The log is the --json records: the send carries the bytes it sent, receives what came.
    const send = records.find((r) => r.call === "WskSend");
    assert.equal(send.data, "PING\r\n");
    assert.equal(send.information, 6);
    const received = records.filter((r) => r.call === "WskReceive").map((r) => r.data ?? "");
    assert.equal(received.join(""), GREETING + "PING\r\n");

    const printed = await runCli(["replay", log, "--print-script"]);
    assert.equal(printed.code, 0, printed.stderr);
    assert.equal(
      printed.stdout,
      [
        `socketconnect 127.0.0.1:${server.port}  # record 1`,
        "receive --bytes 14  # record 2",
        "send 'PING\\r\\n'  # record 4",
        "receive --bytes 6  # record 5",
        "disconnect  # record 6",
        "receive  # record 7",
        "closesocket  # record 8",
        "",
      ].join("\n"),
    );

    const result = await runCli(["replay", log]);
    assert.equal(result.stderr, "");
    assert.equal(result.code, 0, result.stdout);
    const calls = result.stdout.trim().split("\n").map((l) => parseLine(l).call);
    assert.deepEqual(calls, [
      "WskSocketConnect",
      "WskReceive",
      "WskSend",
      "WskReceive",
      "WskDisconnect",
      "WskReceive",
      "WskCloseSocket",
      "Replay",
    ]);
    assert.deepEqual(replayLine(result.stdout), { ...REPLAY_OF_8, status: "MATCHED" });
    const { got } = await server.report();
    assert.deepEqual(got, ["PING\r\n", "PING\r\n"]);
  } finally {
    await Deno.remove(log);
  }
});

Deno.test("replay: one byte answered differently exits 3 naming the call and the offset", async () => {
  await using recorded = await greeter(1);
  const log = await record(recorded.port);
  // The same greeting but for one byte, at offset 11 ("1" becomes "2").
  await using other = await greeter(1, "HELLO wsk v2\r\n");
  try {
    const result = await runCli(["replay", log, "--to", other.address]);
    assert.equal(result.code, 3, result.stdout + result.stderr);
    assert.equal(result.stderr, "");
    assert.deepEqual(replayLine(result.stdout), {
      ...REPLAY_OF_8,
      status: "DIVERGED",
      record: "2",
      at: "WskReceive",
      socket: "1",
      offset: "11",
      expected: "1\r\nPING\r\n",
      actual: "2\r\n",
      expected_hex: "310d0a50494e470d0a",
      actual_hex: "320d0a",
    });
    // The replay stopped at the divergent receive: nothing was sent after it.
    assert.deepEqual((await other.report()).got, [""]);
    // The call line is the received record that showed it.
    assert.match(result.stdout, /WskReceive STATUS_SUCCESS .* data="HELLO wsk v2\\r\\n"/);
  } finally {
    await Deno.remove(log);
  }
});

Deno.test("replay: a server that refuses exits 3 naming the status difference", async () => {
  let log: string;
  let address: string;
  {
    await using server = await greeter(1);
    log = await record(server.port);
    address = server.address;
  }
  try {
    // The server is gone: the same address now refuses.
    const result = await runCli(["replay", log]);
    assert.equal(result.code, 3, result.stdout + result.stderr);
    assert.match(
      result.stdout,
      new RegExp(`^WskSocketConnect STATUS_CONNECTION_REFUSED 0xC0000236 .*remote=${address} `),
    );
    assert.deepEqual(replayLine(result.stdout), {
      ...REPLAY_OF_8,
      status: "DIVERGED",
      record: "1",
      at: "WskSocketConnect",
      socket: "1",
      expected: "STATUS_SUCCESS",
      actual: "STATUS_CONNECTION_REFUSED",
    });
  } finally {
    await Deno.remove(log);
  }
});

Deno.test("replay: --to another server, and received bytes compared as a stream, not per chunk", async () => {
  await using recorded = await greeter(1);
  const log = await record(recorded.port);
  // The same bytes, the greeting in two sends: other chunks, the same stream.
  await using other = await greeter(1, GREETING, true);
  try {
    const result = await runCli(["replay", log, "--to", other.address, "--json"]);
    assert.equal(result.stderr, "");
    assert.equal(result.code, 0, result.stdout);
    const records = result.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(records[0].remote, other.address);
    assert.deepEqual(records.at(-1), {
      call: "Replay",
      result: "MATCHED",
      records: 8,
      steps: 7,
    });
    assert.deepEqual((await other.report()).got, ["PING\r\n"]);
  } finally {
    await Deno.remove(log);
  }
});

Deno.test("replay: the kept --json output of send --receive replays", async () => {
  await using server = await greeter(3);
  const kept = await runCli([
    "send",
    server.address,
    "--data",
    "PING\\r\\n",
    "--receive",
    "--json",
  ]);
  assert.equal(kept.code, 0, kept.stderr);
  const log = await Deno.makeTempFile({ prefix: "wsk-replay-", suffix: ".jsonl" });
  try {
    await Deno.writeTextFile(log, kept.stdout);
    const printed = await runCli(["replay", log, "--print-script"]);
    assert.equal(printed.code, 0, printed.stderr);
    const steps = printed.stdout.trim().split("\n").map((l) => l.replace(/ +# record \d+$/, ""));
    assert.deepEqual(steps, [
      `connect ${server.address}`,
      "send 'PING\\r\\n'",
      "disconnect",
      "receive",
      "closesocket",
    ]);
    const result = await runCli(["replay", "-"], { stdin: kept.stdout });
    assert.equal(result.stderr, "");
    assert.equal(result.code, 0, result.stdout);
    assert.equal(replayLine(result.stdout).status, "MATCHED");
    assert.match(result.stdout, /WskReceive .* data="HELLO wsk v1\\r\\nPING\\r\\n"/);
  } finally {
    await Deno.remove(log);
  }
});

Deno.test("replay: a malformed log is exit 2 naming the record, before any socket", async () => {
  const port = closedPort();
  const good = JSON.stringify({
    call: "WskSocketConnect",
    status: "STATUS_SUCCESS",
    ntstatus: "0x00000000",
    information: 0,
    socket: 1,
    remote: `127.0.0.1:${port}`,
  });
  const cases: [string, RegExp][] = [
    [`${good}\n{"call":"WskSend",`, /record 2: not a JSON object/],
    [`${good}\n\n[1]`, /record 2: not a JSON object/],
    [
      `${good}\n{"call":"WskSend","status":"STATUS_SUCCESS","information":4,"socket":1}`,
      /record 2: WskSend without the data it sent/,
    ],
    [
      `${good}\n{"call":"WskReceive","status":"NO_SUCH","socket":1}`,
      /record 2: unknown status "NO_SUCH"/,
    ],
    ["WskConnect STATUS_SUCCESS 0x00000000 socket=1", /record 1: not a JSON object/],
    ["", /the log has no records/],
    [
      good.replace(`127.0.0.1:${port}`, `127.0.0.1:${port} --socket x`),
      /record 1: Cannot parse address /,
    ],
  ];
  for (const [text, message] of cases) {
    const result = await runCli(["replay", "-"], { stdin: text });
    assert.equal(result.code, 2, text);
    assert.equal(result.stdout, "", text);
    assert.match(result.stderr, /^error: Cannot replay "-": /, text);
    assert.match(result.stderr, message, text);
    assert.equal(result.stderr.split("\n").length, 2, result.stderr);
  }
  const missing = await runCli(["replay", "/nonexistent/log.jsonl"]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^error: Cannot read log "\/nonexistent\/log\.jsonl": /);
});

Deno.test("run --record: a log that cannot be written is exit 2 before any socket", async () => {
  const result = await runCli(["run", "-", "--record", "/nonexistent/dir/log.jsonl"], {
    stdin: `socketconnect 127.0.0.1:${closedPort()}`,
  });
  assert.equal(result.code, 2);
  assert.equal(result.stdout, "");
  assert.match(result.stderr, /^error: Cannot write log "\/nonexistent\/dir\/log\.jsonl": /);
});

Deno.test("deriveScript() reads a --json receive to the FIN when its loop made one call more than pieces", () => {
  const common = { status: "STATUS_SUCCESS", socket: 1, remote: "127.0.0.1:7010" };
  const log = [
    { ...common, call: "WskSocket", information: 0 },
    { ...common, call: "WskBind", information: 0, local: "0.0.0.0:0" },
    { ...common, call: "WskConnect", information: 0 },
    { ...common, call: "WskReceive", information: 3, calls: 1, data: "hel", chunk: 1 },
    { ...common, call: "WskReceive", information: 2, calls: 1, data: "lo", chunk: 2 },
    { ...common, call: "WskReceive", information: 5, calls: 3 },
    { ...common, call: "WskReceive", information: 2, calls: 1, base64: "AP8=", chunk: 1 },
    { ...common, call: "WskReceive", information: 2, calls: 1 },
    { ...common, call: "WskCloseSocket", information: 0 },
  ].map((record) => JSON.stringify(record)).join("\n");
  const derived = deriveScript(parseLog(log), "[::1]:9");
  assert.equal(
    derived.script,
    [
      "connect [::1]:9  # record 3",
      "receive  # record 6",
      "receive --bytes 2  # record 8",
      "closesocket  # record 9",
      "",
    ].join("\n"),
  );
  assert.deepEqual(
    derived.streams.get(1)?.bytes,
    new Uint8Array([104, 101, 108, 108, 111, 0, 255]),
  );
  assert.deepEqual(derived.streams.get(1)?.pieces, [
    { offset: 0, record: 4 },
    { offset: 3, record: 5 },
    { offset: 5, record: 7 },
  ]);
});

Deno.test("replay: the kept --json output of disconnect DATA carries and re-sends its data", async () => {
  await using server = await greeter(2);
  const kept = await runCli(["disconnect", server.address, "BYE\\r\\n", "--json"]);
  assert.equal(kept.code, 0, kept.stderr);
  const records = kept.stdout.trim().split("\n").map((l) => JSON.parse(l));
  const disconnect = records.find((r) => r.call === "WskDisconnect");
  assert.equal(disconnect.information, 5);
  assert.equal(disconnect.data, "BYE\r\n");
  const printed = await runCli(["replay", "-", "--print-script"], { stdin: kept.stdout });
  assert.equal(printed.code, 0, printed.stderr);
  assert.match(printed.stdout, /^disconnect 'BYE\\r\\n' {2}# record 4$/m);
  const result = await runCli(["replay", "-"], { stdin: kept.stdout });
  assert.equal(result.stderr, "");
  assert.equal(result.code, 0, result.stdout);
  assert.equal(replayLine(result.stdout).status, "MATCHED");
  assert.deepEqual((await server.report()).got, ["BYE\r\n", "BYE\r\n"]);
});

Deno.test("deriveScript() refuses a WskDisconnect that sent bytes the log does not hold", () => {
  const common = { status: "STATUS_SUCCESS", socket: 1, remote: "127.0.0.1:7010" };
  const log = [
    { ...common, call: "WskSocketConnect", information: 0 },
    { ...common, call: "WskDisconnect", information: 4 },
  ].map((record) => JSON.stringify(record)).join("\n");
  assert.throws(
    () => deriveScript(parseLog(log)),
    /record 2: WskDisconnect without the data it sent/,
  );
});

Deno.test("replay: a call that timed out in the log is bounded by its logged time, not --timeout", async () => {
  await using server = await greeter(2);
  const log = await Deno.makeTempFile({ prefix: "wsk-replay-", suffix: ".jsonl" });
  try {
    const recorded = await runCli(["run", "-", "--record", log], {
      stdin: [
        `socketconnect ${server.address}`,
        `receive --bytes ${GREETING.length}`,
        "receive --bytes 1 --timeout 300ms --status STATUS_IO_TIMEOUT",
      ].join("\n"),
    });
    assert.equal(recorded.code, 0, recorded.stdout + recorded.stderr);
    const printed = await runCli(["replay", log, "--print-script"]);
    assert.equal(printed.code, 0, printed.stderr);
    assert.match(
      printed.stdout,
      /^receive --status STATUS_IO_TIMEOUT --timeout 3\d\dms {2}# record 3$/m,
    );
    const result = await runCli(["replay", log]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const timedOut = result.stdout.trim().split("\n").map(parseLine).find((line) =>
      line.call === "WskReceive" && line.status === "STATUS_IO_TIMEOUT"
    );
    assert.ok(timedOut, result.stdout);
    // The run's --timeout is 10 s; the logged call gave up after about 300 ms.
    assert.ok(Number(timedOut.time!.replace("ms", "")) < 5000, timedOut.time!);
    assert.equal(replayLine(result.stdout).status, "MATCHED");
  } finally {
    await Deno.remove(log);
  }
});

Deno.test("run --record -: a usage error pointing to --json, and no file named '-'", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wsk-record-" });
  try {
    const result = await runCli(["run", "-", "--record", "-"], {
      stdin: `socketconnect 127.0.0.1:${closedPort()}`,
      cwd: dir,
    });
    assert.equal(result.code, 2);
    assert.equal(result.stdout, "");
    assert.match(result.stderr, /^error: Cannot write log "-": .*--json/);
    assert.equal(result.stderr.split("\n").length, 2, result.stderr);
    assert.deepEqual(await Array.fromAsync(Deno.readDir(dir)), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("replay: a release --json log carries its sent data, and is refused for its event callbacks", async () => {
  await using server = await greeter(1);
  const kept = await runCli(["release", server.address, "--data", "hi", "--json"]);
  assert.equal(kept.code, 0, kept.stderr);
  const records = kept.stdout.trim().split("\n").map((l) => JSON.parse(l));
  const send = records.find((r) => r.call === "WskSend");
  assert.equal(send.data, "hi");
  const event = records.findIndex((r) => r.call === "WskReceiveEvent");
  assert.ok(event >= 0, kept.stdout);
  const result = await runCli(["replay", "-"], { stdin: kept.stdout });
  assert.equal(result.code, 2, result.stdout);
  assert.equal(result.stdout, "");
  assert.match(
    result.stderr,
    new RegExp(`^error: Cannot replay "-": record ${event + 1}: WskReceiveEvent: `),
  );
  assert.equal(result.stderr.split("\n").length, 2, result.stderr);
  assert.deepEqual((await server.report()).got, ["hi"]);
});

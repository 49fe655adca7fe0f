/**
 * The output contract of `--json`: stdout carries only JSON Lines. Received payload travels in
 * WskReceive records (`data` for valid UTF-8, `base64` otherwise), one per chunk as it arrives,
 * unless `--output` names a destination; `--output -` puts the payload raw on stdout and the
 * JSON on stderr. And `-q/--quiet`: only what went wrong is printed.
 *
 * The peer is a listener in this test process (real loopback sockets), so nothing races a
 * child's start-up: the CLI child is started only once the port is bound.
 */

import assert from "node:assert/strict";
import { closedPort, runCli, text, within } from "../_helpers.ts";
import { Reporter, type TextSink } from "../../report/reporter.ts";
import { CliChild, randomBytes } from "./_peer.ts";

/** Every stdout line parsed as JSON (any line that does not parse fails the test). */
function parseEveryLine(stdout: string): Record<string, unknown>[] {
  assert.ok(stdout.endsWith("\n"), `stdout ends with a newline: ${JSON.stringify(stdout)}`);
  return stdout.slice(0, -1).split("\n").map((line, index) => {
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch (error) {
      throw new Error(`stdout line ${index + 1} is not JSON: ${JSON.stringify(line)} (${error})`);
    }
  });
}

/** The payload records (those with `chunk`), in order, and the bytes they carry together. */
function payloadOf(records: Record<string, unknown>[]): {
  chunks: Record<string, unknown>[];
  bytes: Uint8Array;
} {
  const chunks = records.filter((r) => r.call === "WskReceive" && r.chunk !== undefined);
  const parts = chunks.map((r, i) => {
    assert.equal(r.chunk, i + 1, "chunks are numbered from 1 in order");
    assert.equal(r.status, "STATUS_SUCCESS");
    assert.equal(r.calls, 1);
    // Exactly one of the two fields carries the bytes.
    assert.ok((r.data === undefined) !== (r.base64 === undefined), JSON.stringify(r));
    const bytes = typeof r.data === "string"
      ? text.encode(r.data)
      : Uint8Array.fromBase64(r.base64 as string);
    assert.equal(r.information, bytes.length, "information is the chunk's length");
    return bytes;
  });
  const total = parts.reduce((n, p) => n + p.length, 0);
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    bytes.set(part, offset);
    offset += part.length;
  }
  return { chunks, bytes };
}

/** Writes all of `bytes` to `conn`. */
async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let offset = 0; offset < bytes.length;) {
    offset += await conn.write(bytes.subarray(offset));
  }
}

/** Reads `conn` until the peer's FIN; returns the bytes. */
async function readToEnd(conn: Deno.Conn): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const buffer = new Uint8Array(65536);
  for (let reads = 0; reads < 100_000; reads++) {
    const n = await conn.read(buffer);
    if (n === null) break;
    parts.push(buffer.slice(0, n));
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** A text that is valid UTF-8 and starts with a byte order mark (EF BB BF). */
const BOM_TEXT = text.encode("\uFEFFhé\r\n");

/** Every byte value: not valid UTF-8. */
const ALL_BYTES = Uint8Array.from({ length: 256 }, (_, i) => i);

Deno.test("receive --json streams the payload in WskReceive records on stdout, every line JSON, bytes exact", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const bulk = randomBytes(300 * 1024);
  const sent = new Uint8Array([...BOM_TEXT, ...ALL_BYTES, ...bulk]);
  await using cli = new CliChild(["receive", `127.0.0.1:${listener.addr.port}`, "--json"]);
  const conn = await within(listener.accept(), 15_000, "the CLI's connection");
  try {
    await writeAll(conn, BOM_TEXT);
    // The first record is out before the stream ends: the payload is streamed, not held.
    const first = await cli.stdout.waitFor(
      () => cli.stdout.lines().map((l) => JSON.parse(l)).find((r) => r.chunk === 1),
      15_000,
      "the first payload record",
    );
    // Valid UTF-8 is text in `data`, its byte order mark kept.
    assert.equal(first.data, "\uFEFFhé\r\n");
    assert.equal(first.base64, undefined);
    await writeAll(conn, ALL_BYTES);
    await writeAll(conn, bulk);
  } finally {
    conn.close();
  }
  assert.equal(await cli.exitCode(), 0, cli.stderr.text());
  assert.equal(cli.stderr.text(), "");
  const records = parseEveryLine(cli.stdout.text());
  const { chunks, bytes } = payloadOf(records);
  assert.ok(chunks.length >= 2, `${chunks.length} payload records`);
  assert.ok(chunks.some((r) => r.base64 !== undefined), "bytes that are not UTF-8 are base64");
  assert.deepEqual(bytes, sent);
  // The loop's own line follows with the totals and no data.
  const summary = records.filter((r) => r.call === "WskReceive" && r.chunk === undefined);
  assert.equal(summary.length, 1);
  assert.equal(summary[0]!.information, sent.length);
  assert.equal(summary[0]!.calls, chunks.length + 1, "every chunk's call and the FIN's");
  assert.equal(summary[0]!.data, undefined);
  assert.equal(summary[0]!.base64, undefined);
  const calls = records.map((r) => r.call).filter((c) => c !== "WskReceive");
  assert.deepEqual(calls, [
    "WskSocket",
    "WskBind",
    "WskConnect",
    "WskDisconnect",
    "WskCloseSocket",
  ]);
});

Deno.test("send --receive --json puts the reply in WskReceive records on stdout, every line JSON", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const reply = new Uint8Array([...text.encode("+PONG\r\n"), ...ALL_BYTES]);
  const served = (async () => {
    const conn = await within(listener.accept(), 15_000, "the CLI's connection");
    try {
      const request = await readToEnd(conn);
      await writeAll(conn, reply);
      return request;
    } finally {
      conn.close();
    }
  })();
  const result = await runCli([
    "send",
    `127.0.0.1:${listener.addr.port}`,
    "--data",
    String.raw`PING\r\n`,
    "--receive",
    "--json",
  ]);
  assert.equal(text.decode(await served), "PING\r\n");
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stderr, "");
  const records = parseEveryLine(result.stdout);
  assert.deepEqual(payloadOf(records).bytes, reply);
  const send = records.find((r) => r.call === "WskSend");
  assert.equal(send?.information, 6);
  const summary = records.filter((r) => r.call === "WskReceive" && r.chunk === undefined);
  assert.equal(summary.length, 1);
  assert.equal(summary[0]!.information, reply.length);
});

Deno.test("receive --json --output - writes the payload raw on stdout and the JSON on stderr", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = (async () => {
    const conn = await within(listener.accept(), 15_000, "the CLI's connection");
    try {
      await writeAll(conn, ALL_BYTES);
    } finally {
      conn.close();
    }
  })();
  const result = await runCli([
    "receive",
    `127.0.0.1:${listener.addr.port}`,
    "--json",
    "--output",
    "-",
  ]);
  await served;
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(result.stdoutBytes, ALL_BYTES);
  const records = parseEveryLine(result.stderr);
  const receive = records.filter((r) => r.call === "WskReceive");
  assert.equal(receive.length, 1);
  assert.equal(receive[0]!.information, ALL_BYTES.length);
  assert.equal(receive[0]!.chunk, undefined);
});

Deno.test("receive --json: a closed stdout fails the receive (exit 1) with an error line on stderr", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  await using cli = new CliChild(["receive", `127.0.0.1:${listener.addr.port}`, "--json"]);
  const conn = await within(listener.accept(), 15_000, "the CLI's connection");
  try {
    await writeAll(conn, text.encode("first\n"));
    await cli.stdout.waitFor(
      () => cli.stdout.lines().find((l) => JSON.parse(l).chunk === 1),
      15_000,
      "the first payload record",
    );
    // The reader goes away (`| head -1`); what arrives next can no longer be written.
    await cli.stdout.cancel();
    await writeAll(conn, text.encode("second\n"));
    assert.equal(await cli.exitCode(), 1, cli.stderr.text());
  } finally {
    conn.close();
  }
  assert.equal(
    cli.stderr.text(),
    "error: standard output was closed before all received data was written\n",
  );
});

Deno.test("-q prints only the failed call; the exit code is unchanged", async () => {
  const port = closedPort();
  const quiet = await runCli(["connect", `127.0.0.1:${port}`, "-q"]);
  assert.equal(quiet.code, 1);
  assert.equal(quiet.stderr, "");
  const lines = quiet.stdout.split("\n").filter((l) => l !== "");
  assert.equal(lines.length, 1, quiet.stdout);
  assert.match(lines[0]!, /^WskConnect STATUS_CONNECTION_REFUSED 0xC0000236 /);
  const loud = await runCli(["connect", `127.0.0.1:${port}`, "--quiet", "--json"]);
  assert.equal(loud.code, 1);
  const records = parseEveryLine(loud.stdout);
  assert.deepEqual(records.map((r) => r.status), ["STATUS_CONNECTION_REFUSED"]);
});

Deno.test("receive --json -q prints the payload records and no status line", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = (async () => {
    const conn = await within(listener.accept(), 15_000, "the CLI's connection");
    try {
      await writeAll(conn, ALL_BYTES);
    } finally {
      conn.close();
    }
  })();
  const result = await runCli(["receive", `127.0.0.1:${listener.addr.port}`, "--json", "-q"]);
  await served;
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stderr, "");
  const records = parseEveryLine(result.stdout);
  assert.ok(records.every((r) => r.chunk !== undefined), result.stdout);
  assert.deepEqual(payloadOf(records).bytes, ALL_BYTES);
});

Deno.test("receive -q in text mode writes the payload and nothing else", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = (async () => {
    const conn = await within(listener.accept(), 15_000, "the CLI's connection");
    try {
      await writeAll(conn, ALL_BYTES);
    } finally {
      conn.close();
    }
  })();
  const result = await runCli(["receive", `127.0.0.1:${listener.addr.port}`, "-q"]);
  await served;
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(result.stdoutBytes, ALL_BYTES);
  assert.equal(result.stderr, "");
});

for (const events of [false, true]) {
  const how = events ? "--events" : "IRPs";
  Deno.test(`accept --mode print --json (${how}) puts the payload in records on stdout, every line JSON`, async () => {
    await using cli = new CliChild([
      "accept",
      "--mode",
      "print",
      "--json",
      ...(events ? ["--events"] : []),
    ]);
    const bind = await cli.stdout.waitFor(
      () => cli.stdout.lines().map((l) => JSON.parse(l)).find((r) => r.call === "WskBind"),
      15_000,
      "the WskBind record",
    );
    const port = Number(/:(\d+)$/.exec(bind.local)![1]);
    const sent = new Uint8Array([...BOM_TEXT, ...ALL_BYTES, ...randomBytes(64 * 1024)]);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      await writeAll(conn, sent);
      await conn.closeWrite();
      await within(readToEnd(conn), 15_000, "the server's FIN");
    } finally {
      conn.close();
    }
    assert.equal(await cli.exitCode(), 0, cli.stderr.text());
    assert.equal(cli.stderr.text(), "");
    const records = parseEveryLine(cli.stdout.text());
    const call = events ? "WskReceiveEvent" : "WskReceive";
    const chunks = records.filter((r) => r.chunk !== undefined);
    assert.ok(chunks.length >= 1 && chunks.every((r) => r.call === call), cli.stdout.text());
    assert.deepEqual(
      payloadOf(records.map((r) => r.chunk === undefined ? r : { ...r, call: "WskReceive" }))
        .bytes,
      sent,
    );
    assert.equal(records.at(-2)?.call, "Summary");
  });
}

Deno.test("Reporter with quiet writes failures, failed expectations and payload records only", () => {
  const out: string[] = [];
  const sink: TextSink = { line: (t) => out.push(t) };
  const reporter = new Reporter(sink, sink, {
    json: true,
    verbose: false,
    color: false,
    quiet: true,
  });
  const base = { information: 0, socket: 1, elapsedMs: 1 };
  reporter.record({ ...base, call: "WskConnect", status: 0 });
  // A failure the command set out to show (closesocket's cancel) is not a failure.
  reporter.record({ ...base, call: "WskReceive", status: 0xC0000120 }, 0xC0000120);
  reporter.record({ ...base, call: "WskSend", status: 0xC000020D });
  reporter.record({
    ...base,
    call: "WskReceive",
    status: 0,
    data: text.encode("x"),
    payload: true,
  });
  const expectation = { step: 1, line: 1, verb: "receive", expected: "OK" };
  reporter.expectation({ ...expectation, passed: true });
  reporter.expectation({ ...expectation, passed: false, actual: "NO" });
  reporter.note("a note");
  assert.deepEqual(out.map((line) => line.startsWith("{") ? JSON.parse(line).call : line), [
    "WskSend",
    "WskReceive",
    "Expect",
    "a note",
  ]);
  assert.equal(JSON.parse(out[2]!).result, "FAILED");
  assert.equal(reporter.failed, true);
});

// `wsk accept --mode forward --to HOST:PORT` end to end: accept runs as a spawned child relaying
// to a python3 target; the test reads the WskBind line for the port, drives a Deno or python3
// client through the relay, and checks the bytes, the lines of both sides and the Summary.

import assert from "node:assert/strict";
import { closedPort, FFI, parseLine, readAll, within } from "../_helpers.ts";
import { PythonPeer } from "../_python.ts";
import { assertUsageFails, CliChild, portOf, randomBytes, startPeer } from "./_peer.ts";

/** The parsed status lines of socket `id`, in order. */
function linesOfSocket(output: string, id: string): Record<string, string>[] {
  return output.split("\n").filter((line) => line !== "").map(parseLine)
    .filter((line) => line.socket === id);
}

Deno.test("accept --mode forward relays both ways byte-exact and passes each FIN on", async () => {
  await using target = await startPeer("echo");
  await using cli = new CliChild(["accept", "--mode", "forward", "--to", target.address]);
  const port = portOf(await cli.bindLocal("stdout"));
  const payload = randomBytes(3 * 1024 * 1024 + 5);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const client = `127.0.0.1:${conn.localAddr.port}`;
  try {
    const reading = readAll(conn);
    for (let offset = 0; offset < payload.length;) {
      offset += await conn.write(payload.subarray(offset));
    }
    await conn.closeWrite();
    const { bytes, error } = await within(reading, 30_000, "the echo through the relay");
    assert.equal(error, null);
    assert.equal(bytes.length, payload.length);
    assert.ok(bytes.every((byte, i) => byte === payload[i]), "the echo came back unchanged");
  } finally {
    conn.close();
  }
  const seen = await target.report();
  assert.equal(seen.end, "eof", "the target got the client's FIN");
  assert.equal(await cli.exitCode(), 0, cli.stderr.text());
  assert.equal(cli.stderr.text(), "");
  const lines = cli.stdout.lines().map(parseLine);
  const accepted = lines.find((line) => line.call === "WskAccept")!;
  assert.equal(accepted.remote, client);
  const connect = lines.find((line) => line.call === "WskSocketConnect")!;
  assert.equal(connect.status, "STATUS_SUCCESS");
  assert.equal(connect.remote, target.address);
  assert.equal(
    connect.local,
    `${seen.peer[0]}:${seen.peer[1]}`,
    "the target side is the connection the target accepted",
  );
  const size = String(payload.length);
  // The client side: what it sent is received, the target's echo sent back, then our FIN.
  const clientSide = linesOfSocket(cli.stdout.text(), accepted.socket!);
  assert.deepEqual(
    clientSide.map((line) => [line.call, line.bytes]),
    [
      ["WskAccept", "0"],
      ["WskReceive", size],
      ["WskSend", size],
      ["WskDisconnect", "0"],
      ["WskCloseSocket", "0"],
      ["Summary", String(2 * payload.length)],
    ],
  );
  const targetSide = linesOfSocket(cli.stdout.text(), connect.socket!);
  assert.deepEqual(
    targetSide.map((line) => [line.call, line.bytes]),
    [
      ["WskSocketConnect", "0"],
      ["WskSend", size],
      ["WskDisconnect", "0"],
      ["WskReceive", size],
      ["WskCloseSocket", "0"],
    ],
  );
  for (const line of [...clientSide, ...targetSide]) {
    assert.equal(line.status, "STATUS_SUCCESS", JSON.stringify(line));
  }
  const summary = clientSide.at(-1)!;
  assert.equal(summary.received, size, "received= is what the client sent");
  assert.equal(summary.sent, size, "sent= is what the client was sent");
  assert.equal(summary.value, "graceful");
  assert.equal(summary.target, connect.socket);
  assert.equal(summary.target_end, "graceful");
});

for (const permissions of [[], [FFI]]) {
  const how = permissions.length === 0 ? "node-backed" : "deno-backed with --allow-ffi";
  Deno.test(`accept --mode forward passes the target's reset on as a reset (${how})`, async () => {
    // The target reads until the FIN the relay passed on, then resets.
    await using target = await startPeer("resetafter");
    await using cli = new CliChild(
      ["accept", "--mode", "forward", "--to", target.address],
      permissions,
    );
    const port = portOf(await cli.bindLocal("stdout"));
    await using client = await PythonPeer.client("127.0.0.1", "127.0.0.1", port, "6869", "close");
    const seen = await client.report();
    assert.equal(seen.end, "reset", "the client saw a reset, as the target sent one");
    const report = await target.report();
    assert.deepEqual([report.data, report.end], ["6869", "eof"], "the target got the FIN");
    assert.equal(await cli.exitCode(), 1, "the target's reset is a failure");
    const lines = cli.stdout.lines().map(parseLine);
    const accepted = lines.find((line) => line.call === "WskAccept")!;
    const abort = lines.find((line) =>
      line.call === "WskDisconnect" && line.socket === accepted.socket
    )!;
    assert.equal(abort.value, "abortive");
    assert.equal(abort.status, "STATUS_SUCCESS");
    assert.equal(abort.peer_saw, "RST");
    const summary = lines.find((line) => line.call === "Summary")!;
    assert.equal(summary.status, "STATUS_CONNECTION_RESET");
    assert.equal(summary.value, "local-close", "wsk reset the client side");
    assert.equal(summary.target_end, "reset", cli.stdout.text());
    assert.equal(summary.received, "2");
    // The rest of the message is the host's, which differs between backings.
    assert.match(summary.message!, /^The target side reset the connection: \S/);
  });
}

Deno.test("accept --mode forward passes the client's reset on to the target as a reset", async () => {
  await using target = await startPeer("drain");
  await using cli = new CliChild(["accept", "--mode", "forward", "--to", target.address]);
  const port = portOf(await cli.bindLocal("stdout"));
  await using client = await PythonPeer.client("127.0.0.1", "127.0.0.1", port, "6869", "reset");
  assert.deepEqual(await client.json(), { sent: 2 });
  // The relay is connected to the target before the client resets.
  await cli.lineWhere("stdout", (line) => line.call === "WskSocketConnect", "the target side");
  await client.writeLine("reset");
  assert.equal((await client.json<{ end: string }>()).end, "sent-reset");
  assert.equal((await target.report()).end, "reset", "the target saw a reset");
  assert.equal(await cli.exitCode(), 1);
  const lines = cli.stdout.lines().map(parseLine);
  const connect = lines.find((line) => line.call === "WskSocketConnect")!;
  const abort = lines.find((line) =>
    line.call === "WskDisconnect" && line.socket === connect.socket
  )!;
  assert.equal(abort.value, "abortive");
  assert.equal(abort.peer_saw, "RST");
  const summary = lines.find((line) => line.call === "Summary")!;
  assert.equal(summary.status, "STATUS_CONNECTION_RESET");
  assert.equal(summary.value, "reset", "the client reset its side");
  assert.equal(summary.target_end, "local-close", "wsk reset the target side");
});

Deno.test("accept --mode forward: a refusing target shows STATUS_CONNECTION_REFUSED and the client is reset", async () => {
  const refusing = `127.0.0.1:${closedPort()}`;
  await using cli = new CliChild(["accept", "--mode", "forward", "--to", refusing]);
  const port = portOf(await cli.bindLocal("stdout"));
  await using client = await PythonPeer.client("127.0.0.1", "127.0.0.1", port, "", "hold");
  assert.equal((await client.report()).end, "reset");
  assert.equal(await cli.exitCode(), 1);
  const lines = cli.stdout.lines().map(parseLine);
  const connect = lines.find((line) => line.call === "WskSocketConnect")!;
  assert.equal(connect.status, "STATUS_CONNECTION_REFUSED");
  assert.equal(connect.ntstatus, "0xC0000236");
  assert.equal(connect.remote, refusing);
  const summary = lines.find((line) => line.call === "Summary")!;
  assert.equal(summary.status, "STATUS_CONNECTION_REFUSED");
  assert.equal(summary.value, "local-close");
  assert.equal(summary.target_end, "refused");
  assert.equal(summary.target, undefined, "no target socket was made");
  assert.ok(
    summary.message!.startsWith(`The target ${refusing} could not be reached: `),
    summary.message!,
  );
});

Deno.test("accept --mode forward: options that do not fit are usage errors", async () => {
  const cases: [string[], string][] = [
    [["accept", "--mode", "forward"], "error: --mode forward needs the target: --to HOST:PORT\n"],
    [
      ["accept", "--mode", "echo", "--to", "127.0.0.1:9"],
      'error: Cannot use --to with --mode "echo"\n',
    ],
    [
      ["accept", "--to", "127.0.0.1:9", "--events"],
      'error: Cannot use --events with --mode "forward": it runs on WskAccept IRPs\n',
    ],
  ];
  for (const [args, stderr] of cases) await assertUsageFails(args, stderr);
});

Deno.test("accept --mode forward gives up when no byte moved either way for --timeout", async () => {
  await using target = await startPeer("hold");
  await using cli = new CliChild([
    "accept",
    "--mode",
    "forward",
    "--to",
    target.address,
    "--timeout",
    "1s",
  ]);
  const port = portOf(await cli.bindLocal("stdout"));
  // The client (Deno: it connects at once, well within accept's 1 s wait) sends two bytes, and
  // then neither side sends anything.
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new Uint8Array([0x68, 0x69]));
    const { bytes, error } = await within(readAll(conn), 15_000, "the client's end");
    assert.equal(bytes.length, 0);
    assert.ok(error instanceof Deno.errors.ConnectionReset, `the client saw ${error}`);
  } finally {
    conn.close();
  }
  assert.equal(await cli.exitCode(), 1);
  const summary = cli.stdout.lines().map(parseLine).find((line) => line.call === "Summary")!;
  assert.equal(summary.status, "STATUS_IO_TIMEOUT");
  assert.equal(summary.message, "No data moved either way for 1000 ms");
  assert.equal(summary.received, "2");
  // Both receives were bounded at once: the side whose receive completed first timed out, and
  // wsk aborted the other.
  assert.ok(
    (summary.value === "timeout" && summary.target_end === "local-close") ||
      (summary.value === "local-close" && summary.target_end === "timeout"),
    `value=${summary.value} target_end=${summary.target_end}`,
  );
  assert.ok(Number(summary.time!.replace("ms", "")) >= 1000, "not before the timeout");
});

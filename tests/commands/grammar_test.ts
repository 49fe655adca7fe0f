// The nc habits of the grammar, on the spawned CLI: `HOST PORT` as two words, and
// `--retry-until` on a port list that comes up while it waits.

import assert from "node:assert/strict";
import { closedPort, listenLoopback, runCli } from "../_helpers.ts";
import { runProcess } from "../_child.ts";

Deno.test("connect 127.0.0.1 PORT (two words, as nc takes them) connects like 127.0.0.1:PORT", async () => {
  using listener = listenLoopback();
  const accepting = (async () => {
    const conn = await listener.accept();
    conn.close();
  })();
  const result = await runCli(["connect", "127.0.0.1", String(listener.port), "--json"]);
  await accepting;
  assert.equal(result.code, 0, result.stderr);
  const connect = result.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l))
    .find((r) => r.call === "WskConnect");
  assert.equal(connect.status, "STATUS_SUCCESS");
  assert.equal(connect.remote, `127.0.0.1:${listener.port}`);
});

Deno.test("a port alone after an address with a port is data, not a port", async () => {
  const result = await runCli(["connect", "127.0.0.1:1", "80"]);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /^error: too many arguments/);
});

Deno.test("socketconnect A,B --retry-until waits until both ports are up (one line each, calls=ATTEMPTS)", async () => {
  const ports = [closedPort(), closedPort()];
  // Both come up 600 ms after the check starts; the check retries until then.
  const late: Deno.TcpListener[] = [];
  const opening = new Promise<void>((resolve) =>
    setTimeout(() => {
      for (const port of ports) late.push(Deno.listen({ hostname: "127.0.0.1", port }));
      resolve();
    }, 600)
  );
  try {
    const result = await runCli([
      "socketconnect",
      `127.0.0.1:${ports.join(",")}`,
      "--retry-until",
      "10s",
      "--json",
    ]);
    await opening;
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const lines = result.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => [l.call, l.status, l.remote]), [
      ["WskSocketConnect", "STATUS_SUCCESS", `127.0.0.1:${ports[0]}`],
      ["WskSocketConnect", "STATUS_SUCCESS", `127.0.0.1:${ports[1]}`],
    ]);
    assert.ok(lines.every((l) => l.calls > 1), "each port was refused first, then retried");
  } finally {
    await opening;
    for (const listener of late) listener.close();
  }
});

Deno.test("socketconnect A,B --retry-until gives up at its deadline: a refused port fails, exit 1", async () => {
  const port = closedPort();
  const result = await runCli([
    "socketconnect",
    `127.0.0.1:${port},${closedPort()}`,
    "--retry-until",
    "300ms",
  ]);
  assert.equal(result.code, 1);
  assert.match(result.stdout, /^WskSocketConnect STATUS_CONNECTION_REFUSED 0xC0000236 .*calls=\d+/);
});

Deno.test("a connect denied by a narrow --allow-net is WskConnect STATUS_ACCESS_DENIED, never a stack trace (node backing too)", async () => {
  using listener = listenLoopback();
  const main = new URL("../../main.ts", import.meta.url).pathname;
  // 127.0.0.1:0 lets a bind through, but not the port it got: the bound socket (node:net)
  // then connects from an address this process may not use. A plain socket (Deno's) too.
  const scripts = [
    `bind 127.0.0.1:0\ngetlocaladdress\nconnect 127.0.0.1:${listener.port}\n`,
    `connect 127.0.0.1:${listener.port}\n`,
  ];
  for (const script of scripts) {
    const result = await runProcess(Deno.execPath(), [
      "run",
      "--allow-net=127.0.0.1:0",
      main,
      "run",
      "-",
    ], { env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" }, stdin: script });
    assert.equal(result.code, 1, result.stderr);
    assert.doesNotMatch(result.stderr, /Uncaught|\s+at /);
    assert.match(result.stdout, /^WskConnect STATUS_ACCESS_DENIED 0xC0000022 /m);
  }
});

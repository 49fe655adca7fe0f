// The test helpers every spawned-process test stands on: runProcess (one-shot, bounded),
// Child's dispose (a child that ignores its closed stdin is still stopped) and PythonPeer's
// ready line (a script that dies first fails the start with python's own message).

import assert from "node:assert/strict";
import { runProcess } from "./_child.ts";
import { PythonPeer } from "./_python.ts";

Deno.test("runProcess() writes stdin, then returns the exit code, stdout and stderr", async () => {
  const script = "import sys\n" +
    "data = sys.stdin.read()\n" +
    "print(data.upper(), end='')\n" +
    "print('note', file=sys.stderr)\n" +
    "sys.exit(3)";
  const out = await runProcess("python3", ["-c", script], { stdin: "ping\n" });
  assert.deepEqual(
    { code: out.code, stdout: out.stdout, stderr: out.stderr },
    { code: 3, stdout: "PING\n", stderr: "note\n" },
  );
  assert.deepEqual(out.stdoutBytes, new TextEncoder().encode("PING\n"));
});

Deno.test("runProcess() kills a run that outlives timeoutMs and returns its status", async () => {
  const start = performance.now();
  const out = await runProcess("sleep", ["30"], { timeoutMs: 300 });
  const elapsed = performance.now() - start;
  assert.equal(out.code, 137, "SIGKILL");
  assert.ok(elapsed < 10_000, `took ${elapsed} ms`);
});

Deno.test("PythonPeer dispose kills a peer that does not exit when its stdin closes", async () => {
  const start = performance.now();
  {
    await using python = await PythonPeer.start(
      "import time\nprint('ready', flush=True)\ntime.sleep(30)",
      [],
      { stdin: true, ready: "line", graceMs: 200 },
    );
    assert.equal(python.ready, "ready");
    assert.ok(python.running);
  }
  const elapsed = performance.now() - start;
  assert.ok(elapsed < 15_000, `took ${elapsed} ms`);
});

Deno.test("PythonPeer.start() fails with python's stderr when the script ends before its port", async () => {
  await assert.rejects(
    () => PythonPeer.start("import sys\nsys.exit('cannot bind: test')", ["127.0.0.1"]),
    (error: Error) => error.message.includes("cannot bind: test"),
  );
});

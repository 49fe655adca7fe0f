/**
 * IRP deadlines (provider/_deadline.ts) and signals: lanes expire in order, dropped deadlines never fire,
 * a loop of calls shares one lane, idle lanes are bounded, and a finished call's leftover timer
 * never keeps a process alive while a pending call's deadline does; an IRP cancelled before
 * the call completes it with STATUS_CANCELLED.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  addDeadline,
  cancelDeadline,
  deadlineCounts,
  IDLE_LANES,
} from "../../provider/_deadline.ts";
import { PendingCall } from "../../provider/_irp.ts";
import {
  AF_INET,
  ntStatusName,
  STATUS_IO_TIMEOUT,
  STATUS_SUCCESS,
  wskBuf,
} from "../../provider/mod.ts";
import { connectedPair, sleep } from "../_helpers.ts";
import { runProcess } from "../_child.ts";

const DONE = { status: STATUS_SUCCESS, information: 0 };

Deno.test("deadlines of one length expire in order; an expiry may add another to the lane", async () => {
  const fired: number[] = [];
  let chained = false;
  for (let i = 0; i < 5; i++) {
    addDeadline(30, () => {
      fired.push(i);
      if (i === 4 && !chained) {
        chained = true;
        addDeadline(30, () => fired.push(99));
      }
    });
    await sleep(2);
  }
  await sleep(200);
  assert.deepEqual(fired, [0, 1, 2, 3, 4, 99]);
  assert.equal(deadlineCounts().deadlines, 0);
});

Deno.test("a dropped deadline never fires; the rest of its lane still does", async () => {
  const fired: string[] = [];
  const first = addDeadline(40, () => fired.push("dropped"));
  addDeadline(40, () => fired.push("kept"));
  cancelDeadline(40, first);
  cancelDeadline(40, first); // twice is harmless
  await sleep(150);
  assert.deepEqual(fired, ["kept"]);
});

Deno.test("a loop of calls with one timeout shares one lane and leaves no deadline behind", async () => {
  for (let i = 0; i < 1000; i++) {
    const call = new PendingCall({ timeout: 12_345 });
    await Promise.resolve();
    call.complete(DONE);
  }
  const counts = deadlineCounts();
  assert.equal(counts.deadlines, 0);
  assert.ok(counts.lanes <= IDLE_LANES, `lanes: ${counts.lanes}`);
  // The lane of 12345 ms is still there (idle), reused by the next call.
  const call = new PendingCall({ timeout: 12_345 });
  assert.equal(deadlineCounts().lanes, counts.lanes);
  call.complete(DONE);
});

Deno.test("calls with many different timeouts keep at most IDLE_LANES idle lanes", () => {
  for (let i = 0; i < 200; i++) {
    const call = new PendingCall({ timeout: 20_000 + i });
    call.complete(DONE);
  }
  assert.ok(deadlineCounts().lanes <= IDLE_LANES, `lanes: ${deadlineCounts().lanes}`);
});

Deno.test("calls with timeouts each time out once", async () => {
  const calls = Array.from({ length: 300 }, (_, i) => new PendingCall({ timeout: 20 + (i % 5) }));
  const done = await Promise.all(calls.map((call) => call.promise));
  assert.ok(done.every((c) => ntStatusName(c.status) === ntStatusName(STATUS_IO_TIMEOUT)));
  assert.equal(deadlineCounts().deadlines, 0);
});

/** Runs `code` in a Deno process of its own; its stdout, exit code and wall time. */
async function runAlone(code: string): Promise<{ stdout: string; code: number; ms: number }> {
  const start = performance.now();
  const out = await runProcess(Deno.execPath(), ["eval", "--no-config", code], {
    env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
  });
  return {
    stdout: out.stdout.trim(),
    code: out.code,
    ms: performance.now() - start,
  };
}

const IRP = new URL("../../provider/_irp.ts", import.meta.url).href;

Deno.test("a completed call's lane timer does not keep the process alive", async () => {
  const result = await runAlone(`
    import { PendingCall } from "${IRP}";
    const call = new PendingCall({ timeout: 30000 });
    call.complete({ status: 0, information: 0 });
    console.log("done");
  `);
  assert.equal(result.code, 0);
  assert.equal(result.stdout, "done");
  assert.ok(result.ms < 10_000, `the process lingered ${Math.round(result.ms)} ms`);
});

Deno.test("a call with only its deadline pending keeps the process alive until it times out", async () => {
  const result = await runAlone(`
    import { PendingCall } from "${IRP}";
    const start = performance.now();
    const done = await new PendingCall({ timeout: 200 }).promise;
    console.log(JSON.stringify({ status: done.status, ms: performance.now() - start }));
  `);
  assert.equal(result.code, 0, result.stdout);
  const { status, ms } = JSON.parse(result.stdout) as { status: number; ms: number };
  assert.equal(ntStatusName(status), "STATUS_IO_TIMEOUT");
  assert.ok(ms >= 199, `timed out after ${ms} ms`);
});

Deno.test("one abort cancels every call pending on its signal, and only those", async () => {
  const controller = new AbortController();
  const finished = new PendingCall({ signal: controller.signal });
  finished.complete(DONE);
  const pending = Array.from({ length: 100 }, () => new PendingCall({ signal: controller.signal }));
  const other = new PendingCall({ signal: new AbortController().signal, timeout: 5000 });
  controller.abort();
  for (const call of pending) {
    assert.equal(ntStatusName((await call.promise).status), "STATUS_CANCELLED");
  }
  assert.deepEqual(await finished.promise, DONE);
  assert.equal(other.done, false);
  other.complete(DONE);
  const late = new PendingCall({ signal: controller.signal });
  assert.equal(ntStatusName((await late.promise).status), "STATUS_CANCELLED");
});

for (const backing of ["deno", "node"] as const) {
  Deno.test(`WskSend() with an IRP cancelled before the call completes with STATUS_CANCELLED (${backing} backing)`, async () => {
    await using pair = await connectedPair(AF_INET, { backing });
    const { socket } = pair;
    const sent = await socket.Dispatch.WskSend(socket, wskBuf(new Uint8Array(8)), 0, {
      signal: AbortSignal.abort(),
    });
    // It once came back STATUS_INVALID_PARAMETER ("Cannot access 'request' before
    // initialization"): the send's may-cancel check ran inside PendingCall's constructor.
    assert.equal(ntStatusName(sent.status), "STATUS_CANCELLED", sent.message ?? "");
    assert.equal(sent.information, 0);
    assert.equal(socket.state, "ESTAB");
  });
}

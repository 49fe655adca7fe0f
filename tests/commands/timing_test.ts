/**
 * `time=` times the call alone: what a call needs from the host (timers, node:net, the host's
 * connect path, libc) is loaded before its clock starts, so the first call of a process reports
 * about what a repeated one does. Each test spawns the CLI against a listener of its own on
 * loopback that accepts and closes every connection, and compares the first call's time with
 * the median of the repeated ones. Each figure is a median over {@linkcode RUNS} processes, so
 * one slow moment of a loaded machine does not decide; before the fix the first calls took 7 to
 * 90 ms more, which no such median hides.
 *
 * @module
 */

import assert from "node:assert/strict";
import { FFI, runCli } from "../_helpers.ts";
import { callsOf, humanLines } from "./_peer.ts";

/** Processes measured per figure. */
const RUNS = 5;
/** Repeated calls per script, after the first. */
const REPEATS = 5;
/** How much longer than a repeated call a first call may report, in milliseconds. */
const MARGIN_MS = 2;
/**
 * Measurements per test at most. A figure over the margin is measured again: a busy moment of a
 * loaded machine (other tests' processes still ending) passes, while a lazy load, which costs
 * every first call 7 to 90 ms, fails every attempt.
 */
const ATTEMPTS = 3;
/** The most connections the listener accepts: every run of every attempt, with room to spare. */
const ACCEPT_MAX = 600;

/** A loopback listener that accepts (at most ACCEPT_MAX) connections and closes each at once. */
function closingListener(): { port: number } & AsyncDisposable {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const loop = (async () => {
    for (let i = 0; i < ACCEPT_MAX; i++) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch {
        return; // Closed by the test.
      }
      conn.close();
    }
  })();
  return {
    port: listener.addr.port,
    async [Symbol.asyncDispose]() {
      listener.close();
      await loop;
    },
  };
}

function median(values: readonly number[]): number {
  assert.ok(values.length > 0, "no values");
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The reported times (ms) of every line of `call` in a run's stdout, in order. */
function timesOf(stdout: string, call: string): number[] {
  return humanLines(stdout).filter((line) => line.call === call).map((line) => {
    const time = /^(\d+(?:\.\d+)?)ms$/.exec(line.time ?? "");
    assert.ok(time, `no time in ${JSON.stringify(line)}`);
    return Number(time[1]);
  });
}

/** Runs a script of `count` steps made by `step(i)`; asserts it succeeded. */
async function runScript(step: (i: number) => string, count: number, permissions: string[]) {
  const script = Array.from({ length: count }, (_, i) => step(i)).join("\n") + "\n";
  const result = await runCli(["run", "-"], { stdin: script, permissions });
  assert.equal(result.code, 0, result.stdout + result.stderr);
  assert.equal(result.stderr, "");
  return result.stdout;
}

/**
 * Measures with `measure` (each figure: how much longer a first call took, by name) until every
 * figure is under the margin or {@linkcode ATTEMPTS} have been made; asserts on the best one of
 * each.
 */
async function bestOf(measure: () => Promise<Map<string, number>>): Promise<void> {
  const best = new Map<string, number>();
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    for (const [what, extra] of await measure()) {
      best.set(what, Math.min(best.get(what) ?? Infinity, extra));
    }
    if ([...best.values()].every((extra) => extra < MARGIN_MS)) break;
  }
  for (const [what, extra] of best) assertWithinMargin(extra, what);
}

/** Asserts that a first call took less than MARGIN_MS longer (`extra`) than a repeated one. */
function assertWithinMargin(extra: number, what: string): void {
  assert.ok(
    extra < MARGIN_MS,
    `${what}: the first call took ${
      extra.toFixed(3)
    } ms longer than a repeated one (median of ${RUNS} runs); allowed: under ${MARGIN_MS} ms`,
  );
}

for (const [backing, permissions] of [["node", []], ["deno", [FFI]]] as const) {
  // A script's sockets may reset: without --allow-ffi they are node-backed, with it deno-backed.
  Deno.test(`the first WskSocketConnect of a wsk run (${backing} backing) reports about what the next ones do`, async () => {
    await using server = closingListener();
    await bestOf(async () => {
      const differences: number[] = [];
      for (let run = 0; run < RUNS; run++) {
        const stdout = await runScript(
          (i) => `socketconnect 127.0.0.1:${server.port} --socket s${i}`,
          1 + REPEATS,
          [...permissions],
        );
        const times = timesOf(stdout, "WskSocketConnect");
        assert.equal(times.length, 1 + REPEATS, stdout);
        differences.push(times[0]! - median(times.slice(1)));
      }
      return new Map([[`WskSocketConnect (${backing})`, median(differences)]]);
    });
  });
}

Deno.test("a single wsk connect reports its WskSocket, WskBind and WskConnect about as repeated ones", async () => {
  await using server = closingListener();
  await bestOf(() => measureConnect(server.port));
});

/** How much longer a single `wsk connect`'s calls take than the same calls repeated. */
async function measureConnect(port: number): Promise<Map<string, number>> {
  const calls = ["WskSocket", "WskBind", "WskConnect"];
  const firsts = new Map(calls.map((call) => [call, [] as number[]]));
  for (let run = 0; run < RUNS; run++) {
    const result = await runCli(["connect", `127.0.0.1:${port}`]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.deepEqual(callsOf(humanLines(result.stdout)).slice(0, 3), calls, result.stdout);
    for (const call of calls) firsts.get(call)!.push(timesOf(result.stdout, call)[0]!);
  }
  // The same chain repeated in one process: each `connect` step on a fresh socket issues
  // WskSocket, WskBind and WskConnect (deno-backed, as `wsk connect` is, with --allow-ffi).
  const repeated = new Map(calls.map((call) => [call, [] as number[]]));
  for (let run = 0; run < RUNS; run++) {
    const stdout = await runScript(
      (i) => `connect 127.0.0.1:${port} --socket s${i}`,
      1 + REPEATS,
      [FFI],
    );
    for (const call of calls) {
      const times = timesOf(stdout, call);
      assert.equal(times.length, 1 + REPEATS, stdout);
      repeated.get(call)!.push(...times.slice(1));
    }
  }
  return new Map(
    calls.map((call) => [call, median(firsts.get(call)!) - median(repeated.get(call)!)]),
  );
}

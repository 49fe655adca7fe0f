/**
 * Scenario 8 (relay): N bytes of the verification pattern (`wsk send --pattern N`) through a
 * relay into a sink that checks every byte (`wsk accept --mode verify --verify-bytes N`), the
 * relay being `wsk accept --mode forward --to SINK` (as the `wsk` task runs it: no
 * `--allow-ffi`, so both of its sides are node-backed, which can reset), the same with
 * `--allow-ffi` (deno-backed sides, reset through libc), or `socat TCP-LISTEN:P,reuseaddr
 * TCP:SINK` (socat's default 8 KiB buffer, as a user types it). Rounds alternate.
 *
 * The time is the sink's: its WskReceive line, from the accepted connection (the relay connects
 * to the sink when the sender connects to the relay) to the FIN, so the sender's start-up is
 * not in it. A round counts only when the sink verified all N bytes (its line and Summary say
 * STATUS_SUCCESS with N bytes) and every process exited 0.
 *
 * @module
 */

import { alternateRounds, BenchError, type Env, sizeArg, waitBound, wskCmd } from "./_env.ts";
import { detail, freePort, Proc, waitListening } from "./_proc.ts";
import { type Ratio, ratio, type Stats, stats } from "./_stats.ts";

/** The relays compared. */
export const RELAYS = [
  {
    id: "wsk forward",
    command: "wsk accept 127.0.0.1:0 --mode forward --to 127.0.0.1:SINK",
  },
  {
    id: "wsk forward --allow-ffi",
    command: "deno run --allow-ffi … main.ts accept 127.0.0.1:0 --mode forward --to 127.0.0.1:SINK",
  },
  {
    id: "socat",
    command: "socat TCP-LISTEN:P,reuseaddr,bind=127.0.0.1 TCP:127.0.0.1:SINK",
  },
] as const;

/** Settings of the relay scenario. */
export interface RelayOptions {
  readonly bytes: number;
  readonly rounds: number;
  readonly timeoutMs: number;
}

/** What one relay measured over all rounds. */
export interface RelayContenderResult {
  readonly id: string;
  readonly command: string;
  readonly skipped: string | null;
  /** MB/s (10^6 bytes/s) per round as the sink timed it, NaN for a failed round. */
  readonly mbps: Stats | null;
  readonly errors: readonly string[];
}

/** The relay scenario's results. */
export interface RelayResult {
  readonly bytes: number;
  readonly rounds: number;
  readonly contenders: readonly RelayContenderResult[];
  readonly ratios: readonly Ratio[];
}

const LISTEN_TIMEOUT_MS = 15_000;

/** The sink's WskReceive line: its bytes and milliseconds; throws unless all N arrived intact. */
function sinkTime(stdout: string, n: number): number {
  const line = stdout.match(/^WskReceive (\S+) .*? bytes=(\d+) .*?time=([\d.]+)ms/m);
  if (!line) {
    throw new BenchError(`the sink wrote no WskReceive line${detail({ stdout, stderr: "" })}`);
  }
  const [, status, bytes, ms] = line;
  if (status !== "STATUS_SUCCESS" || Number(bytes) !== n) {
    throw new BenchError(`the sink got ${bytes} of ${n} bytes: ${status}`);
  }
  return Number(ms);
}

/** One round of one relay: the sink's seconds for the N bytes. */
async function relayRound(env: Env, relay: number, options: RelayOptions): Promise<number> {
  const n = options.bytes;
  const bound = { timeoutMs: options.timeoutMs + LISTEN_TIMEOUT_MS, cwd: env.root };
  const procs: Proc[] = [];
  try {
    const sink = new Proc(
      wskCmd(env, [
        "accept",
        "127.0.0.1:0",
        "--mode",
        "verify",
        "--verify-bytes",
        sizeArg(n),
        "--timeout",
        `${options.timeoutMs}ms`,
      ]),
      bound,
    );
    procs.push(sink);
    const sinkPort = await waitBound(sink, LISTEN_TIMEOUT_MS);
    const target = `127.0.0.1:${sinkPort}`;
    let port: number;
    if (relay === 2) {
      port = freePort();
      const socat = new Proc(
        ["socat", `TCP-LISTEN:${port},reuseaddr,bind=127.0.0.1`, `TCP:${target}`],
        bound,
      );
      procs.push(socat);
      await waitListening(socat, port, LISTEN_TIMEOUT_MS);
    } else {
      const forward = new Proc(
        wskCmd(env, [
          "accept",
          "127.0.0.1:0",
          "--mode",
          "forward",
          "--to",
          target,
          "--timeout",
          `${options.timeoutMs}ms`,
        ], relay === 1 ? ["--allow-ffi"] : []),
        bound,
      );
      procs.push(forward);
      port = await waitBound(forward, LISTEN_TIMEOUT_MS);
    }
    const sender = new Proc(
      wskCmd(env, ["send", `127.0.0.1:${port}`, "--pattern", sizeArg(n), "--no-progress"]),
      { timeoutMs: options.timeoutMs, cwd: env.root },
    );
    procs.push(sender);
    for (const proc of procs.toReversed()) {
      const exit = await proc.wait();
      if (exit.timedOut) {
        throw new BenchError(`killed after ${options.timeoutMs} ms${detail(exit)}`);
      }
      if (exit.code !== 0) throw new BenchError(`a process exited ${exit.code}${detail(exit)}`);
    }
    return sinkTime(sink.stdout, n) / 1000;
  } finally {
    for (const proc of procs) if (!proc.exited) await proc.kill();
  }
}

/** Runs the scenario: the relays alternate within each round. */
export async function runRelay(env: Env, options: RelayOptions): Promise<RelayResult> {
  const skipped = (i: number) => i === 2 && !env.tools.socat ? "socat missing" : null;
  const { runs, errors } = await alternateRounds(
    env,
    "relay",
    RELAYS.map((r) => r.id),
    options,
    skipped,
    (relay) => relayRound(env, relay, options),
  );
  const contenders = RELAYS.map((r, i) => ({
    id: r.id,
    command: r.command,
    skipped: skipped(i),
    mbps: stats(runs[i]!),
    errors: errors[i]!,
  }));
  const target = { direction: "atLeast", value: 0.7 } as const;
  return {
    bytes: options.bytes,
    rounds: options.rounds,
    contenders,
    ratios: [
      ratio(
        "wsk forward / socat",
        "relay into the same verifying sink",
        contenders[0]!.mbps,
        contenders[2]!.mbps,
        target,
      ),
      ratio(
        "wsk forward --allow-ffi / socat",
        "relay into the same verifying sink",
        contenders[1]!.mbps,
        contenders[2]!.mbps,
        target,
      ),
    ],
  };
}

/**
 * Scenario 2: provider overhead. Runs `bench/provider_overhead.ts --json` (WskSend/WskReceive vs
 * raw `conn.write`/`conn.read` in one process, alternating) as a child and reads its report; its
 * progress lines pass through to stderr.
 *
 * @module
 */

import { BenchError, type Env } from "./_env.ts";
import { detail, Proc } from "./_proc.ts";
import { type Ratio, ratio, type Stats } from "./_stats.ts";

/** Settings of the provider-overhead scenario. */
export interface ProviderOptions {
  readonly bytes: number;
  readonly rounds: number;
  /** Buffer sizes in bytes (multiples of 1 KiB). */
  readonly sizes: readonly number[];
  readonly timeoutMs: number;
}

/** One buffer size's figures (MB/s). */
export interface ProviderSize {
  readonly bufferBytes: number;
  readonly raw: Stats;
  readonly wsk: Stats;
}

/** The provider-overhead scenario's results. */
export interface ProviderResult {
  readonly bytes: number;
  readonly rounds: number;
  readonly backing: readonly string[];
  readonly sizes: readonly ProviderSize[];
  readonly ratios: readonly Ratio[];
}

/** The part of provider_overhead.ts's `--json` report the suite reads. */
interface OverheadReport {
  readonly wskBacking: string[];
  readonly sizes: { bufferBytes: number; raw: Stats; wsk: Stats }[];
}

/** A series reduced to its fastest run (for a max-vs-max ratio). */
function fastest(s: Stats): Stats {
  return { median: s.max, min: s.max, max: s.max, runs: [s.max] };
}

/** Runs provider_overhead.ts and turns its report into the suite's shape. */
export async function runProvider(env: Env, options: ProviderOptions): Promise<ProviderResult> {
  const proc = new Proc([
    env.deno,
    "run",
    "--allow-net=127.0.0.1",
    `${env.root}/bench/provider_overhead.ts`,
    "--json",
    "--gib",
    String(options.bytes / 1024 ** 3),
    "--rounds",
    String(options.rounds),
    "--timeout",
    String(Math.ceil(options.timeoutMs / 1000)),
    ...options.sizes.flatMap((size) => ["--size", String(size / 1024)]),
  ], {
    timeoutMs: options.timeoutMs * (options.rounds * 2 + 2) * options.sizes.length,
    cwd: env.root,
    onStderr: (line) => env.progress(`provider ${line.trim()}`),
  });
  const exit = await proc.wait();
  if (exit.timedOut) throw new BenchError(`provider_overhead.ts was killed${detail(exit)}`);
  if (exit.code !== 0) {
    throw new BenchError(`provider_overhead.ts exited ${exit.code}${detail(exit)}`);
  }
  let report: OverheadReport;
  try {
    report = JSON.parse(exit.stdout) as OverheadReport;
  } catch {
    throw new BenchError(`provider_overhead.ts printed no JSON report${detail(exit)}`);
  }
  const sizes = report.sizes.map((s) => ({ bufferBytes: s.bufferBytes, raw: s.raw, wsk: s.wsk }));
  return {
    bytes: options.bytes,
    rounds: options.rounds,
    backing: report.wskBacking,
    sizes,
    ratios: sizes.flatMap((s) => [
      ratio(
        `wsk/raw, ${s.bufferBytes / 1024} KiB buffers`,
        "WskSend/WskReceive vs conn.write/read, one process",
        s.wsk,
        s.raw,
        { direction: "atLeast", value: 0.9 },
      ),
      // Loopback is bimodal here (a connection runs fast or slow as Linux sizes its receive
      // buffer), so medians can land in different modes; the fastest rounds compare like for like.
      ratio(
        `wsk/raw, ${s.bufferBytes / 1024} KiB, fastest rounds`,
        "max vs max: the same mode on both sides",
        fastest(s.wsk),
        fastest(s.raw),
      ),
    ]),
  };
}

/**
 * Scenario 3: start-up to first status. The wall time of a whole process, spawn to exit, for
 * `wsk connect 127.0.0.1:P` (as a user runs it: `deno run --allow-net --allow-read --allow-write
 * main.ts connect …`) against a listener in this process that accepts and closes, vs
 * `deno run bench/empty.ts` (the floor: Deno's own start-up) and `nc -z 127.0.0.1 P` (a C tool
 * doing the same connect). The contenders alternate run by run, after unmeasured warm-up runs.
 *
 * @module
 */

import { BenchError, type Env, message, wskCmd } from "./_env.ts";
import { detail, Proc } from "./_proc.ts";
import { type Ratio, ratio, type Stats, stats } from "./_stats.ts";

/** Settings of the start-up scenario. */
export interface StartupOptions {
  readonly runs: number;
  readonly warmups: number;
  readonly timeoutMs: number;
}

/** One contender's times. */
export interface StartupContender {
  readonly id: string;
  readonly command: string;
  readonly skipped: string | null;
  /** Milliseconds, spawn to exit, per run (NaN for a failed run). */
  readonly ms: Stats | null;
  readonly errors: readonly string[];
}

/** The start-up scenario's results. */
export interface StartupResult {
  readonly runs: number;
  readonly contenders: readonly StartupContender[];
  readonly ratios: readonly Ratio[];
}

interface Spec {
  readonly id: string;
  readonly command: string;
  readonly cmd: (port: number) => string[];
  /** Checks a run's stdout beyond exit 0. */
  readonly check: (stdout: string) => boolean;
  readonly skipped: string | null;
}

/** Accepts every connection and closes it at once (a FIN), until `close()`. */
function closingListener(): { port: number; close: () => Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const loop = (async () => {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch {
        return; // Closed (or out of descriptors, which ends the scenario's listener too).
      }
      try {
        conn.close();
      } catch {
        // Already reset by the peer.
      }
    }
  })();
  return {
    port: listener.addr.port,
    close: async () => {
      listener.close();
      await loop;
    },
  };
}

/** Runs the start-up scenario. */
export async function runStartup(env: Env, options: StartupOptions): Promise<StartupResult> {
  const empty = `${env.root}/bench/empty.ts`;
  const specs: Spec[] = [
    {
      id: "wsk connect",
      command: "deno run --allow-net --allow-read --allow-write main.ts connect 127.0.0.1:P",
      cmd: (port) => wskCmd(env, ["connect", `127.0.0.1:${port}`]),
      check: (out) => /^WskConnect STATUS_SUCCESS /m.test(out),
      skipped: null,
    },
    {
      id: "deno empty.ts",
      command: "deno run bench/empty.ts",
      cmd: () => [env.deno, "run", empty],
      check: () => true,
      skipped: null,
    },
    {
      id: "nc -z",
      command: "nc -z 127.0.0.1 P",
      cmd: (port) => ["nc", "-z", "127.0.0.1", String(port)],
      check: () => true,
      skipped: env.tools.nc ? null : "needs nc (netcat-openbsd)",
    },
  ];
  const active = specs.filter((s) => s.skipped === null);
  const times = new Map<string, number[]>(active.map((s) => [s.id, []]));
  const errors = new Map<string, string[]>(active.map((s) => [s.id, []]));
  const server = closingListener();
  try {
    for (let run = -options.warmups; run < options.runs; run++) {
      for (const spec of active) {
        let ms = NaN;
        try {
          const exit = await new Proc(spec.cmd(server.port), {
            timeoutMs: options.timeoutMs,
            cwd: env.root,
          }).wait();
          if (exit.timedOut) throw new BenchError(`killed after ${options.timeoutMs} ms`);
          if (exit.code !== 0) throw new BenchError(`exited ${exit.code}${detail(exit)}`);
          if (!spec.check(exit.stdout)) {
            throw new BenchError(`unexpected output${detail(exit)}`);
          }
          ms = exit.ms;
        } catch (error) {
          errors.get(spec.id)!.push(`run ${run + 1}: ${message(error)}`);
          env.progress(`startup ${spec.id} run ${run + 1}: FAILED: ${message(error)}`);
        }
        if (run >= 0) times.get(spec.id)!.push(ms);
      }
      if (run >= 0 && (run + 1) % 10 === 0) {
        const medians = active.map((s) =>
          `${s.id} ${stats(times.get(s.id)!)?.median.toFixed(1) ?? "—"} ms`
        );
        env.progress(`startup ${run + 1}/${options.runs} runs: ${medians.join(", ")}`);
      }
    }
  } finally {
    await server.close();
  }
  const contenders: StartupContender[] = specs.map((s) => ({
    id: s.id,
    command: s.command,
    skipped: s.skipped,
    ms: s.skipped === null ? stats(times.get(s.id)!) : null,
    errors: s.skipped === null ? errors.get(s.id)! : [],
  }));
  const of = (id: string) => contenders.find((c) => c.id === id)?.ms ?? null;
  return {
    runs: options.runs,
    contenders,
    ratios: [
      ratio(
        "wsk connect / deno empty.ts",
        "wsk's start-up over Deno's floor (time: lower is better)",
        of("wsk connect"),
        of("deno empty.ts"),
        { direction: "atMost", value: 2.0 },
      ),
      ratio("wsk connect / nc -z", "vs a C tool (time)", of("wsk connect"), of("nc -z")),
    ],
  };
}

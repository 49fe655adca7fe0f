/**
 * What every scenario of the benchmark suite shares: where wsk and Deno are, which contender
 * tools are installed, how wsk is invoked (the way a user runs it), and the error type that makes
 * the suite exit 1.
 *
 * @module
 */

import { detail, GNU_TIME, type Proc, sleep, which } from "./_proc.ts";

/** A contender tool the suite can compare wsk with (Debian package in parentheses). */
export type Tool = "socat" | "nc" | "iperf3";

/** The Debian package of each tool. */
export const PACKAGE: Record<Tool, string> = {
  socat: "socat",
  nc: "netcat-openbsd",
  iperf3: "iperf3",
};

/** A transfer failed, moved the wrong number of bytes, or a child timed out: exit 1. */
export class BenchError extends Error {
  override name = "BenchError";
}

/** The machine and the paths the scenarios run with. */
export interface Env {
  /** The repository root (main.ts lives there; wsk runs with it as cwd). */
  readonly root: string;
  /** The Deno executable running the suite; wsk and the helpers run on the same one. */
  readonly deno: string;
  /** Which contender tools are usable. */
  readonly tools: Readonly<Record<Tool, boolean>>;
  /** Why a tool is not usable (missing, or not the expected flavour). */
  readonly missing: Readonly<Partial<Record<Tool, string>>>;
  /** `/usr/bin/time` is there, so peak RSS is the kernel's own figure. */
  readonly gnuTime: boolean;
  /** Writes one progress line to stderr. */
  readonly progress: (line: string) => void;
}

/** Finds the tools; netcat must be the OpenBSD one (`-N`, `-d`, `-z`). */
export async function detectTools(): Promise<
  { tools: Record<Tool, boolean>; missing: Partial<Record<Tool, string>> }
> {
  const tools: Record<Tool, boolean> = { socat: false, nc: false, iperf3: false };
  const missing: Partial<Record<Tool, string>> = {};
  for (const tool of ["socat", "nc", "iperf3"] as const) {
    if (which(tool) === null) {
      missing[tool] = "not found on PATH";
      continue;
    }
    tools[tool] = true;
  }
  if (tools.nc) {
    const help = await runText(["nc", "-h"]);
    if (!help.includes("OpenBSD")) {
      tools.nc = false;
      missing.nc = "not the OpenBSD netcat";
    }
  }
  return { tools, missing };
}

/** Whether GNU time can report peak RSS. */
export function hasGnuTime(): boolean {
  return which(GNU_TIME) !== null;
}

/** Output (stdout + stderr) of a short command, "" when it cannot run. */
export async function runText(cmd: readonly string[]): Promise<string> {
  try {
    const [program, ...args] = cmd;
    const out = await new Deno.Command(program!, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(5_000),
    }).output();
    const decoder = new TextDecoder();
    return decoder.decode(out.stdout) + decoder.decode(out.stderr);
  } catch {
    return "";
  }
}

/** The version line of each tool, for the report header. */
export async function toolVersions(env: Env): Promise<Record<string, string>> {
  const versions: Record<string, string> = {};
  if (env.tools.socat) {
    versions.socat = (await runText(["socat", "-V"])).match(/socat version (\S+)/)?.[1] ?? "?";
  }
  if (env.tools.nc) {
    const help = await runText(["nc", "-h"]);
    versions.nc = help.match(/OpenBSD netcat \(([^)]*)\)/)?.[1] ?? "OpenBSD";
  }
  if (env.tools.iperf3) {
    versions.iperf3 = (await runText(["iperf3", "--version"])).match(/iperf (\S+)/)?.[1] ?? "?";
  }
  return versions;
}

/**
 * The wsk CLI as a user runs it (the `wsk` task and `deno install` use the same flags):
 * `deno run --allow-net --allow-read --allow-write main.ts …`, run from the repository root;
 * `extraPermissions` go before main.ts (e.g. `--allow-ffi`).
 */
export function wskCmd(
  env: Env,
  args: readonly string[],
  extraPermissions: readonly string[] = [],
): string[] {
  return [
    env.deno,
    "run",
    "--allow-net",
    "--allow-read",
    "--allow-write",
    ...extraPermissions,
    `${env.root}/main.ts`,
    ...args,
  ];
}

/** "1G", "8M", "64K" or the plain number: the SIZE syntax of `wsk send --pattern`. */
export function sizeArg(bytes: number): string {
  const units: [string, number][] = [["G", 1024 ** 3], ["M", 1024 ** 2], ["K", 1024]];
  for (const [suffix, unit] of units) {
    if (bytes % unit === 0) return `${bytes / unit}${suffix}`;
  }
  return String(bytes);
}

/** The message of any thrown value. */
export function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The port a `wsk accept 127.0.0.1:0` child bound, read from its `WskBind` line; the socket
 * listens from then on. Throws if the child exits first or `timeoutMs` passes.
 */
export async function waitBound(proc: Proc, timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const m = proc.stdout.match(/^WskBind STATUS_SUCCESS .*?local=127\.0\.0\.1:(\d+)/m);
    if (m) return Number(m[1]);
    if (proc.exited) {
      const exit = await proc.wait();
      throw new BenchError(`wsk accept exited (${exit.code}) before binding${detail(exit)}`);
    }
    if (performance.now() > deadline) {
      throw new BenchError(`wsk accept did not bind within ${timeoutMs} ms${detail(proc)}`);
    }
    await sleep(5);
  }
}

/**
 * Runs the contenders in turn, `rounds` times (A B A B …, so each round's runs share the
 * machine's state): `measure(i)` gives contender i's seconds for `bytes`, recorded as MB/s
 * (10^6 bytes/s), or NaN with its error when it throws. A contender `skipped` names is not run.
 * Each run is a progress line `scenario: round r/n id: N MB/s`.
 */
export async function alternateRounds(
  env: Env,
  scenario: string,
  ids: readonly string[],
  options: { readonly rounds: number; readonly bytes: number },
  skipped: (contender: number) => string | null,
  measure: (contender: number) => Promise<number>,
): Promise<{ runs: number[][]; errors: string[][] }> {
  const runs: number[][] = ids.map(() => []);
  const errors: string[][] = ids.map(() => []);
  for (let round = 0; round < options.rounds; round++) {
    for (let contender = 0; contender < ids.length; contender++) {
      if (skipped(contender)) continue;
      try {
        const seconds = await measure(contender);
        runs[contender]!.push(options.bytes / 1e6 / seconds);
      } catch (error) {
        runs[contender]!.push(NaN);
        errors[contender]!.push(message(error));
      }
      env.progress(
        `${scenario}: round ${round + 1}/${options.rounds} ${ids[contender]}: ` +
          `${runs[contender]!.at(-1)!.toFixed(0)} MB/s`,
      );
    }
  }
  return { runs, errors };
}

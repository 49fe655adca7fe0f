/**
 * Scenario 6, **emfile**: an echo server short of file descriptors. The server runs under
 * `ulimit -n 64`; `bench/emfile_clients.py` (one python3 process) opens 200 connections at once,
 * each sends a line, checks the echo, holds the connection 0.3 s (so that the server runs out of
 * descriptors while the rest wait in the kernel's backlog), half-closes and reads to the FIN.
 * Then one more client checks that the server still serves. Contenders, alternating round by
 * round: `wsk accept --mode echo --keep-open` on the deno backing, the same with
 * `--backing node`, and socat's forking echo (`socat TCP-LISTEN:P,fork PIPE`: each connection
 * in its own process, so the server's own descriptors stay few).
 *
 * A round passes when every client was served (or refused with a status it saw: a reset or a
 * refused connect, counted apart) and the client after the storm was served. For wsk the round
 * also counts the failed accepts it reported (`STATUS_INSUFFICIENT_RESOURCES` lines).
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { BenchError, type Env, message, waitBound, wskCmd } from "./_env.ts";
import { detail, freePort, Proc, shellQuote, waitListening } from "./_proc.ts";
import { type Stats, stats } from "./_stats.ts";

const LISTEN_TIMEOUT_MS = 15_000;
const CLIENTS_SCRIPT = fileURLToPath(new URL("./emfile_clients.py", import.meta.url));

/** Settings of the scenario. */
export interface EmfileOptions {
  readonly clients: number;
  /** The server's descriptor limit (`ulimit -n`). */
  readonly fds: number;
  readonly rounds: number;
  readonly timeoutMs: number;
}

/** One server's results over all rounds. */
export interface EmfileContender {
  readonly id: string;
  readonly command: string;
  readonly skipped: string | null;
  /** Clients served, over all rounds. */
  readonly served: number;
  /** Clients refused with a status they saw (ECONNRESET, ECONNREFUSED), over all rounds. */
  readonly refused: number;
  /** Clients that got a wrong answer or none in time, over all rounds. */
  readonly lost: number;
  /** Rounds whose client after the storm was served. */
  readonly servingAfter: number;
  /** Seconds from the first connect to the last client done, per round. */
  readonly seconds: Stats | null;
  /** wsk only: WskAccept STATUS_INSUFFICIENT_RESOURCES lines over all rounds. */
  readonly failedAccepts: number | null;
  readonly errors: readonly string[];
}

/** The scenario's results. */
export interface EmfileResult {
  readonly clients: number;
  readonly fds: number;
  readonly rounds: number;
  readonly contenders: readonly EmfileContender[];
  /** Every wsk round served (or refused) every client and still served afterwards. */
  readonly pass: boolean;
}

interface Storm {
  readonly counts: Record<string, number>;
  readonly after: string;
  readonly seconds: number;
}

/** The refusals a client sees as a status of its own. */
const REFUSALS = new Set(["ECONNRESET", "ECONNREFUSED"]);

type Server = "wsk-deno" | "wsk-node" | "socat";

/** One round against one server. */
async function emfileRound(
  env: Env,
  server: Server,
  options: EmfileOptions,
): Promise<{ storm: Storm; failedAccepts: number }> {
  let failedAccepts = 0;
  const limit = (cmd: readonly string[]) => [
    "bash",
    "-c",
    `ulimit -n ${options.fds} && exec ${cmd.map(shellQuote).join(" ")}`,
  ];
  const bound = { timeoutMs: options.timeoutMs + LISTEN_TIMEOUT_MS };
  let proc: Proc;
  let port: number;
  if (server === "socat") {
    port = freePort();
    proc = new Proc(
      limit(["socat", `TCP-LISTEN:${port},fork,reuseaddr,bind=127.0.0.1,backlog=511`, "PIPE"]),
      bound,
    );
  } else {
    const backing = server === "wsk-node" ? ["--backing", "node"] : [];
    proc = new Proc(
      limit(wskCmd(env, ["accept", "127.0.0.1:0", "--mode", "echo", "--keep-open", ...backing])),
      {
        ...bound,
        cwd: env.root,
        onLine: (line) => {
          if (line.startsWith("WskAccept STATUS_INSUFFICIENT_RESOURCES ")) failedAccepts++;
        },
      },
    );
  }
  let driver: Proc | null = null;
  try {
    if (server === "socat") await waitListening(proc, port!, LISTEN_TIMEOUT_MS);
    else port = await waitBound(proc, LISTEN_TIMEOUT_MS);
    const deadline = Math.max(1, Math.floor(options.timeoutMs / 1000) - 15);
    driver = new Proc([
      "python3",
      "-u",
      CLIENTS_SCRIPT,
      "127.0.0.1",
      String(port!),
      "--clients",
      String(options.clients),
      "--deadline",
      String(deadline),
    ], bound);
    const exit = await driver.wait();
    const last = exit.stdout.trim().split("\n").pop() ?? "";
    let storm: Storm;
    try {
      storm = JSON.parse(last) as Storm;
    } catch {
      throw new BenchError(`the clients reported nothing (exit ${exit.code})${detail(exit)}`);
    }
    if (storm.counts === undefined) {
      throw new BenchError(`the clients reported nothing (exit ${exit.code})${detail(exit)}`);
    }
    return { storm, failedAccepts };
  } finally {
    if (driver && !driver.exited) await driver.kill();
    await proc.stop("SIGTERM");
  }
}

/** Runs the scenario: the servers alternate, one storm each per round. */
export async function runEmfile(env: Env, options: EmfileOptions): Promise<EmfileResult> {
  const servers = [
    {
      id: "wsk accept (deno)",
      server: "wsk-deno" as const,
      command: "wsk accept 127.0.0.1:0 --mode echo --keep-open",
      skipped: null,
    },
    {
      id: "wsk accept (node)",
      server: "wsk-node" as const,
      command: "wsk accept 127.0.0.1:0 --mode echo --keep-open --backing node",
      skipped: null,
    },
    {
      id: "socat fork PIPE",
      server: "socat" as const,
      command: "socat TCP-LISTEN:P,fork,reuseaddr,bind=127.0.0.1,backlog=511 PIPE",
      skipped: env.tools.socat ? null : "needs socat",
    },
  ];
  const active = servers.filter((s) => s.skipped === null);
  const series = new Map(active.map((s) => [s.id, {
    served: 0,
    refused: 0,
    lost: 0,
    after: 0,
    seconds: [] as number[],
    failedAccepts: 0,
    errors: [] as string[],
  }]));
  for (let round = 1; round <= options.rounds; round++) {
    for (const s of active) {
      const into = series.get(s.id)!;
      try {
        const { storm, failedAccepts } = await emfileRound(env, s.server, options);
        let served = 0;
        let refused = 0;
        let lost = 0;
        for (const [outcome, n] of Object.entries(storm.counts)) {
          if (outcome === "served") served += n;
          else if (REFUSALS.has(outcome)) refused += n;
          else lost += n;
        }
        into.served += served;
        into.refused += refused;
        into.lost += lost;
        into.failedAccepts += failedAccepts;
        if (storm.after === "served") into.after++;
        into.seconds.push(storm.seconds);
        if (lost > 0 || storm.after !== "served") {
          into.errors.push(
            `round ${round}: ${JSON.stringify(storm.counts)}, after the storm: ${storm.after}`,
          );
        }
        env.progress(
          `emfile ${s.id.padEnd(18)} round ${round}/${options.rounds}: ${served} served, ` +
            `${refused} refused, ${lost} lost in ${storm.seconds.toFixed(2)} s; after: ` +
            `${storm.after}` + (s.server === "socat" ? "" : `; ${failedAccepts} failed accepts`),
        );
      } catch (error) {
        into.seconds.push(NaN);
        into.errors.push(`round ${round}: ${message(error)}`);
        env.progress(`emfile ${s.id} round ${round}: FAILED: ${message(error)}`);
      }
    }
  }
  const contenders: EmfileContender[] = servers.map((s) => {
    const r = series.get(s.id);
    return {
      id: s.id,
      command: s.command,
      skipped: s.skipped,
      served: r?.served ?? 0,
      refused: r?.refused ?? 0,
      lost: r?.lost ?? 0,
      servingAfter: r?.after ?? 0,
      seconds: r ? stats(r.seconds) : null,
      failedAccepts: s.server === "socat" ? null : r?.failedAccepts ?? 0,
      errors: r?.errors ?? [],
    };
  });
  const wsk = contenders.filter((c) => c.failedAccepts !== null);
  return {
    clients: options.clients,
    fds: options.fds,
    rounds: options.rounds,
    contenders,
    pass: wsk.every((c) =>
      c.errors.length === 0 && c.served + c.refused === options.clients * options.rounds &&
      c.servingAfter === options.rounds
    ),
  };
}

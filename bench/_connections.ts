/**
 * Scenario 4: many connections.
 *
 * - **echo**: `wsk accept --mode echo --keep-open` vs `socat TCP-LISTEN:P,fork,backlog=511 PIPE`
 *   (socat's own echo: one forked process per connection, a pipe as the loop; backlog 511 is the
 *   one Deno's listener uses). `bench/clients.ts echo` connects N clients at once, each echoing
 *   BYTES and checking every byte; the servers alternate round by round. For wsk the server side
 *   is checked too: N `Summary STATUS_SUCCESS` lines with `received=BYTES sent=BYTES`.
 * - **idle**: `wsk accept --mode discard --keep-open` holds N connections opened by
 *   `bench/clients.ts idle` (bounded concurrency); once all are accepted (N `WskAccept` lines) and
 *   the kernel shows N established sockets on the port, the server's VmRSS and VmHWM are read from
 *   `/proc`; then the clients half-close and each connection must end with a graceful `Summary`.
 *   One round (no contender: a forking socat would need N processes).
 *
 * The descriptor limit is raised for both processes with `ulimit -n` (up to the hard limit) when
 * N needs it.
 *
 * @module
 */

import { BenchError, type Env, message, runText, waitBound, wskCmd } from "./_env.ts";
import {
  detail,
  type Exit,
  freePort,
  memoryOf,
  Proc,
  shellQuote,
  sleep,
  tcpEntries,
  waitListening,
} from "./_proc.ts";
import { type Ratio, ratio, type Stats, stats } from "./_stats.ts";

const LISTEN_TIMEOUT_MS = 15_000;

/** Settings of the echo part. */
export interface EchoOptions {
  readonly clients: number;
  readonly bytes: number;
  readonly rounds: number;
  readonly timeoutMs: number;
}

/** One echo server's results over all rounds. */
export interface EchoContender {
  readonly id: string;
  readonly command: string;
  readonly skipped: string | null;
  readonly connectionsPerSecond: Stats | null;
  /** Milliseconds from the first connect to the last client done, per round. */
  readonly ms: Stats | null;
  /** Client errors over all rounds (failed connects, short or wrong echoes, timeouts). */
  readonly clientErrors: number;
  /** Bytes echoed and verified by the clients over all rounds. */
  readonly bytesVerified: number;
  readonly errors: readonly string[];
}

/** The echo part's results. */
export interface EchoResult {
  readonly clients: number;
  readonly bytes: number;
  readonly rounds: number;
  readonly contenders: readonly EchoContender[];
  readonly ratios: readonly Ratio[];
  /** Every wsk round had zero errors and verified every byte. */
  readonly pass: boolean;
}

/** Settings of the idle part. */
export interface IdleOptions {
  readonly clients: number;
  readonly concurrency: number;
  readonly timeoutMs: number;
}

/** The idle part's results. */
export interface IdleResult {
  /** Connections asked for (may be lowered to fit the hard descriptor limit). */
  readonly clients: number;
  readonly requested: number;
  readonly opened: number;
  readonly connectErrors: number;
  readonly accepted: number;
  readonly established: number;
  readonly openMs: number | null;
  readonly closedGracefully: number;
  readonly closeMs: number | null;
  /** The server's memory before the first connection and while holding them all (KiB). */
  readonly baselineRssKiB: number | null;
  readonly heldRssKiB: number | null;
  readonly peakRssKiB: number | null;
  readonly errors: readonly string[];
  readonly pass: boolean;
}

/** The soft and hard descriptor limits a child of bash starts with. */
async function fdLimits(): Promise<{ soft: number; hard: number }> {
  const [soft, hard] = (await runText(["bash", "-c", "ulimit -Sn; ulimit -Hn"])).trim().split(
    /\s+/,
  );
  const parse = (text: string | undefined) =>
    text === "unlimited" ? Number.MAX_SAFE_INTEGER : Number(text);
  return { soft: parse(soft) || 1024, hard: parse(hard) || 1024 };
}

/** `cmd` run through bash with its descriptor limit raised to `fds` (bash then execs it). */
function withFdLimit(cmd: readonly string[], fds: number): string[] {
  return ["bash", "-c", `ulimit -n ${fds} && exec ${cmd.map(shellQuote).join(" ")}`];
}

/** Parses the last JSON line with `"event": event` from a clients.ts stdout. */
function report(stdout: string, event: string): Record<string, unknown> | null {
  for (const line of stdout.trim().split("\n").reverse()) {
    try {
      const value = JSON.parse(line) as Record<string, unknown>;
      if (value.event === event) return value;
    } catch {
      // Not a report line.
    }
  }
  return null;
}

function clientsCmd(env: Env, args: readonly string[]): string[] {
  return [env.deno, "run", "--allow-net=127.0.0.1", `${env.root}/bench/clients.ts`, ...args];
}

/** Waits until `done()` holds, polling every 10 ms; false after `timeoutMs`. */
async function until(done: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!done()) {
    if (performance.now() > deadline) return false;
    await sleep(10);
  }
  return true;
}

/** Counts a wsk accept's result lines as they arrive. */
class AcceptLines {
  accepted = 0;
  /** Summary STATUS_SUCCESS lines that match `expect`. */
  good = 0;
  bad = 0;
  readonly samples: string[] = [];
  readonly #expect: RegExp;

  constructor(expect: RegExp) {
    this.#expect = expect;
  }

  readonly onLine = (line: string): void => {
    if (line.startsWith("WskAccept STATUS_SUCCESS ")) this.accepted++;
    else if (line.startsWith("Summary ")) {
      if (line.startsWith("Summary STATUS_SUCCESS ") && this.#expect.test(line)) this.good++;
      else {
        this.bad++;
        if (this.samples.length < 3) this.samples.push(line);
      }
    }
  };
}

/** One echo round against one server: the driver's report, or a thrown BenchError. */
async function echoRound(
  env: Env,
  server: "wsk" | "socat",
  options: EchoOptions,
  fds: number,
): Promise<{ ms: number; cps: number; ok: number; errors: number }> {
  const lines = new AcceptLines(
    new RegExp(`received=${options.bytes} sent=${options.bytes}( |$)`),
  );
  let proc: Proc;
  let port: number;
  if (server === "wsk") {
    proc = new Proc(
      withFdLimit(wskCmd(env, ["accept", "127.0.0.1:0", "--mode", "echo", "--keep-open"]), fds),
      { timeoutMs: options.timeoutMs + LISTEN_TIMEOUT_MS, cwd: env.root, onLine: lines.onLine },
    );
  } else {
    port = freePort();
    proc = new Proc(
      withFdLimit([
        "socat",
        `TCP-LISTEN:${port},fork,reuseaddr,bind=127.0.0.1,backlog=511`,
        "PIPE",
      ], fds),
      { timeoutMs: options.timeoutMs + LISTEN_TIMEOUT_MS },
    );
  }
  let driver: Proc | null = null;
  let result: { ms: number; cps: number; ok: number; errors: number };
  let stopped: Exit;
  try {
    if (server === "wsk") port = await waitBound(proc, LISTEN_TIMEOUT_MS);
    else await waitListening(proc, port!, LISTEN_TIMEOUT_MS);
    driver = new Proc(
      withFdLimit(
        clientsCmd(env, [
          "echo",
          "--port",
          String(port!),
          "--clients",
          String(options.clients),
          "--bytes",
          String(options.bytes),
          "--timeout",
          String(options.timeoutMs),
        ]),
        fds,
      ),
      { timeoutMs: options.timeoutMs + LISTEN_TIMEOUT_MS, cwd: env.root },
    );
    const exit = await driver.wait();
    const r = report(exit.stdout, "echo");
    if (!r) {
      throw new BenchError(`the echo clients reported nothing (exit ${exit.code})${detail(exit)}`);
    }
    const ok = Number(r.ok);
    const errors = Number(r.errors);
    if (errors > 0 || ok !== options.clients) {
      throw new BenchError(
        `${errors} of ${options.clients} clients failed: ${JSON.stringify(r.samples)}`,
      );
    }
    if (server === "wsk") {
      const all = await until(() => lines.good + lines.bad >= options.clients, 10_000);
      if (!all || lines.bad > 0 || lines.good !== options.clients) {
        throw new BenchError(
          `wsk accept: ${lines.good} of ${options.clients} Summary lines STATUS_SUCCESS with ` +
            `received=sent=${options.bytes}${lines.samples.length ? `: ${lines.samples[0]}` : ""}`,
        );
      }
    }
    result = { ms: Number(r.ms), cps: Number(r.connectionsPerSecond), ok, errors };
  } finally {
    if (driver && !driver.exited) await driver.kill();
    stopped = await proc.stop("SIGTERM");
  }
  if (server === "wsk" && stopped.code !== 0) {
    throw new BenchError(`wsk accept exited ${stopped.code} on SIGTERM${detail(stopped)}`);
  }
  return result;
}

/** Runs the echo part: the servers alternate, one driver run each per round. */
export async function runEcho(env: Env, options: EchoOptions): Promise<EchoResult> {
  const limits = await fdLimits();
  const fds = Math.min(limits.hard, Math.max(limits.soft, options.clients * 2 + 256));
  const servers = [
    {
      id: "wsk accept --mode echo",
      server: "wsk" as const,
      command: "wsk accept 127.0.0.1:0 --mode echo --keep-open",
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
  const series = new Map(
    active.map((s) => [s.id, {
      ms: [] as number[],
      cps: [] as number[],
      clientErrors: 0,
      bytes: 0,
      errors: [] as string[],
    }]),
  );
  for (let round = 1; round <= options.rounds; round++) {
    for (const s of active) {
      const into = series.get(s.id)!;
      try {
        const r = await echoRound(env, s.server, options, fds);
        into.ms.push(r.ms);
        into.cps.push(r.cps);
        into.bytes += r.ok * options.bytes;
        env.progress(
          `echo ${s.id.padEnd(22)} round ${round}/${options.rounds}: ${r.cps.toFixed(0)} conn/s ` +
            `(${options.clients} clients in ${r.ms.toFixed(0)} ms, ${r.errors} errors)`,
        );
      } catch (error) {
        into.ms.push(NaN);
        into.cps.push(NaN);
        into.clientErrors += Number(message(error).match(/^(\d+) of \d+ clients failed/)?.[1] ?? 0);
        into.errors.push(`round ${round}: ${message(error)}`);
        env.progress(`echo ${s.id} round ${round}: FAILED: ${message(error)}`);
      }
    }
  }
  const contenders: EchoContender[] = servers.map((s) => {
    const r = series.get(s.id);
    return {
      id: s.id,
      command: s.command,
      skipped: s.skipped,
      connectionsPerSecond: r ? stats(r.cps) : null,
      ms: r ? stats(r.ms) : null,
      clientErrors: r?.clientErrors ?? 0,
      bytesVerified: r?.bytes ?? 0,
      errors: r?.errors ?? [],
    };
  });
  const wsk = contenders[0]!;
  return {
    clients: options.clients,
    bytes: options.bytes,
    rounds: options.rounds,
    contenders,
    ratios: [
      ratio(
        "wsk / socat (connections/s)",
        "echo server throughput under a connection burst",
        wsk.connectionsPerSecond,
        contenders[1]!.connectionsPerSecond,
      ),
    ],
    pass: wsk.errors.length === 0 &&
      wsk.bytesVerified === options.clients * options.bytes * options.rounds,
  };
}

/** Established TCP sockets whose local port is `port` (the server's side of each connection). */
function establishedOn(port: number): number {
  return tcpEntries().filter((entry) => entry.state === "01" && entry.port === port).length;
}

/** Runs the idle part once. */
export async function runIdle(env: Env, options: IdleOptions): Promise<IdleResult> {
  const limits = await fdLimits();
  const errors: string[] = [];
  // Each side needs one descriptor per connection, plus Deno's own (about 30) and headroom.
  const headroom = 256;
  const clients = Math.min(options.clients, limits.hard - headroom);
  if (clients < options.clients) {
    errors.push(
      `lowered to ${clients} connections: the hard descriptor limit is ${limits.hard}`,
    );
  }
  const fds = Math.min(limits.hard, Math.max(limits.soft, clients + headroom));
  const lines = new AcceptLines(/ value=graceful received=0 sent=0( |$)/);
  const server = new Proc(
    withFdLimit(
      wskCmd(env, [
        "accept",
        "127.0.0.1:0",
        "--mode",
        "discard",
        "--keep-open",
        "--timeout",
        String(options.timeoutMs * 3),
      ]),
      fds,
    ),
    { timeoutMs: options.timeoutMs * 3 + LISTEN_TIMEOUT_MS, cwd: env.root, onLine: lines.onLine },
  );
  let driver: Proc | null = null;
  let opened = 0;
  let connectErrors = 0;
  let openMs: number | null = null;
  let closedGracefully = 0;
  let closeMs: number | null = null;
  let established = 0;
  let baselineRssKiB: number | null = null;
  let heldRssKiB: number | null = null;
  let peakRssKiB: number | null = null;
  try {
    const port = await waitBound(server, LISTEN_TIMEOUT_MS);
    baselineRssKiB = memoryOf(server.pid)?.rssKiB ?? null;
    driver = new Proc(
      withFdLimit(
        clientsCmd(env, [
          "idle",
          "--port",
          String(port),
          "--clients",
          String(clients),
          "--concurrency",
          String(options.concurrency),
          "--timeout",
          String(options.timeoutMs),
        ]),
        fds,
      ),
      { timeoutMs: options.timeoutMs * 3, cwd: env.root, stdin: true },
    );
    const d = driver;
    const sawOpened = await until(
      () => report(d.stdout, "opened") !== null || d.exited,
      options.timeoutMs + 5_000,
    );
    const openReport = report(d.stdout, "opened");
    if (!sawOpened || !openReport) {
      throw new BenchError(`the idle clients reported nothing${detail(d)}`);
    }
    opened = Number(openReport.ok);
    connectErrors = Number(openReport.errors);
    openMs = Number(openReport.ms);
    env.progress(
      `idle: ${opened} of ${clients} connections open in ${openMs.toFixed(0)} ms ` +
        `(${connectErrors} errors)`,
    );
    if (connectErrors > 0) {
      errors.push(`${connectErrors} connects failed: ${JSON.stringify(openReport.samples)}`);
    }
    await until(() => lines.accepted >= opened && establishedOn(port) >= opened, 30_000);
    established = establishedOn(port);
    const memory = memoryOf(server.pid);
    heldRssKiB = memory?.rssKiB ?? null;
    peakRssKiB = memory?.hwmKiB ?? null;
    env.progress(
      `idle: wsk accepted ${lines.accepted}, ${established} established; ` +
        `RSS ${((heldRssKiB ?? 0) / 1024).toFixed(1)} MiB`,
    );
    if (lines.accepted !== clients || established !== clients) {
      errors.push(
        `wsk accept held ${lines.accepted} accepted / ${established} established of ${clients}`,
      );
    }
    await d.writeLine("close");
    const exit = await d.wait();
    const closeReport = report(exit.stdout, "closed");
    if (!closeReport) throw new BenchError(`the idle clients did not close${detail(exit)}`);
    closedGracefully = Number(closeReport.ok);
    closeMs = Number(closeReport.ms);
    if (Number(closeReport.errors) > 0) {
      errors.push(
        `${closeReport.errors} closes failed: ${JSON.stringify(closeReport.samples)}`,
      );
    }
    await until(() => lines.good + lines.bad >= opened, 30_000);
    peakRssKiB = memoryOf(server.pid)?.hwmKiB ?? peakRssKiB;
    if (lines.good !== clients || lines.bad > 0) {
      errors.push(
        `wsk accept: ${lines.good} of ${clients} graceful Summary lines` +
          (lines.samples.length ? `: ${lines.samples[0]}` : ""),
      );
    }
  } catch (error) {
    errors.push(message(error));
  } finally {
    if (driver && !driver.exited) await driver.kill();
    const stopped = await server.stop("SIGTERM", 10_000);
    if (stopped.code !== 0) errors.push(`wsk accept exited ${stopped.code}${detail(stopped)}`);
  }
  return {
    clients,
    requested: options.clients,
    opened,
    connectErrors,
    accepted: lines.accepted,
    established,
    openMs,
    closedGracefully,
    closeMs,
    baselineRssKiB,
    heldRssKiB,
    peakRssKiB,
    errors,
    pass: errors.length === 0 && opened === options.clients && established === options.clients,
  };
}

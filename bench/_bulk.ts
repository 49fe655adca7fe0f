/**
 * Scenario 1 (bulk transfer) and scenario 5 (peak RSS of wsk during it).
 *
 * Each pair is a sender process and a receiver process on 127.0.0.1. The receiver starts first
 * (wsk reports the port it bound; socat, nc and iperf3 get a free fixed port and are awaited in
 * `/proc/net/tcp`), then the clock starts, the sender is spawned, and the clock stops when the
 * receiver exits: MB/s = bytes / (sender spawn → receiver exit). Sender start-up is inside the
 * time, as it is for a user.
 *
 * Bytes are verified on every round where the tool says them (wsk `send`'s `WskSend` line, wsk
 * `accept`'s `Summary received=`, iperf3's JSON); socat and nc receivers write to /dev/null in
 * measured rounds and are counted through `| wc -c` in the unmeasured first round (a pipe there
 * costs socat about a third of its rate on this machine), and every process must exit 0.
 *
 * @module
 */

import { BenchError, type Env, message, sizeArg, type Tool, waitBound, wskCmd } from "./_env.ts";
import {
  detail,
  type Exit,
  freePort,
  memoryOf,
  Proc,
  processTree,
  shellQuote,
  waitListening,
  withPeakRss,
} from "./_proc.ts";
import { type Ratio, ratio, type Stats, stats } from "./_stats.ts";

/** The sending side of a pair. */
type Sender = "wsk-stdin" | "wsk-pattern" | "socat" | "nc" | "iperf3";
/** The receiving side of a pair. */
type Receiver = "wsk" | "socat" | "nc" | "iperf3";

/** One contender of the bulk scenario: a sender into a receiver. */
export interface BulkPair {
  readonly id: string;
  readonly sender: Sender;
  readonly receiver: Receiver;
  readonly description: string;
}

/** The pairs, in the order each round runs them. */
export const BULK_PAIRS: readonly BulkPair[] = [
  {
    id: "wsk-stdin→wsk",
    sender: "wsk-stdin",
    receiver: "wsk",
    description: "head -c N /dev/zero | wsk send  →  wsk accept --mode discard",
  },
  {
    id: "wsk-pattern→wsk",
    sender: "wsk-pattern",
    receiver: "wsk",
    description: "wsk send --pattern N  →  wsk accept --mode discard",
  },
  {
    id: "socat→socat",
    sender: "socat",
    receiver: "socat",
    description: "head -c N /dev/zero | socat -u - TCP:…  →  socat -u TCP-LISTEN:… OPEN:/dev/null",
  },
  {
    id: "nc→nc",
    sender: "nc",
    receiver: "nc",
    description: "head -c N /dev/zero | nc -N  →  nc -l -d >/dev/null",
  },
  {
    id: "iperf3",
    sender: "iperf3",
    receiver: "iperf3",
    description: "iperf3 -c -n N  →  iperf3 -s -1 (the loopback ceiling)",
  },
  {
    id: "wsk-stdin→socat",
    sender: "wsk-stdin",
    receiver: "socat",
    description: "head -c N /dev/zero | wsk send  →  socat receiver (the wsk sender alone)",
  },
  {
    id: "socat→wsk",
    sender: "socat",
    receiver: "wsk",
    description: "head -c N /dev/zero | socat sender  →  wsk accept (the wsk receiver alone)",
  },
];

/** Settings of the bulk scenario. */
export interface BulkOptions {
  readonly bytes: number;
  readonly rounds: number;
  /** Bound on each process of a round (the receiver's start-up has its own 15 s). */
  readonly timeoutMs: number;
}

/** What one pair measured over all rounds. */
export interface BulkPairResult {
  readonly id: string;
  readonly description: string;
  /** Why it did not run (a tool is missing), or null. */
  readonly skipped: string | null;
  /** MB/s (10^6 bytes/s) per round, NaN for a failed round. */
  readonly mbps: Stats | null;
  /** Seconds per round. */
  readonly seconds: Stats | null;
  /**
   * MB/s over the sender's own transfer time, start-up excluded: wsk send's `WskSend time=`
   * (first send to last send done), iperf3's `sum_sent.seconds`; null for the others.
   */
  readonly selfMbps: Stats | null;
  /** Peak RSS in KiB of the wsk sender / receiver per round (when that side is wsk). */
  readonly senderRssKiB: Stats | null;
  readonly receiverRssKiB: Stats | null;
  readonly errors: readonly string[];
}

/** The bulk scenario's results. */
export interface BulkResult {
  readonly bytes: number;
  readonly rounds: number;
  readonly pairs: readonly BulkPairResult[];
  readonly ratios: readonly Ratio[];
  /** How peak RSS was measured. */
  readonly rssMethod: string;
}

const LISTEN_TIMEOUT_MS = 15_000;
const SAMPLE_MS = 10;

function needs(pair: BulkPair): Tool[] {
  const tools = new Set<Tool>();
  for (const side of [pair.sender, pair.receiver]) {
    if (side === "socat" || side === "nc" || side === "iperf3") tools.add(side);
  }
  return [...tools];
}

/** One round's figures. */
interface RoundResult {
  readonly seconds: number;
  /** The sender's own transfer time where it reports one (wsk's WskSend `time=`, iperf3). */
  readonly selfSeconds: number | null;
  readonly senderRssKiB: number | null;
  readonly receiverRssKiB: number | null;
}

/**
 * Follows the peak RSS (VmHWM) of the deno processes in a child's tree, for machines without
 * GNU time. Sampled every 10 ms, so growth in the last 10 ms of a process can be missed.
 */
class PeakSampler {
  #peak: number | null = null;
  readonly #timer: ReturnType<typeof setTimeout>;

  constructor(pid: number) {
    const sample = () => {
      for (const each of processTree(pid)) {
        let comm = "";
        try {
          comm = Deno.readTextFileSync(`/proc/${each}/comm`).trim();
        } catch {
          continue;
        }
        if (comm !== "deno") continue;
        const memory = memoryOf(each);
        if (memory) this.#peak = Math.max(this.#peak ?? 0, memory.hwmKiB);
      }
    };
    sample();
    this.#timer = setInterval(sample, SAMPLE_MS);
  }

  stop(): number | null {
    clearInterval(this.#timer);
    return this.#peak;
  }
}

/** A wsk process's peak RSS: from GNU time, else from the sampler. */
function peakOf(exit: Exit, sampler: PeakSampler | null): number | null {
  const sampled = sampler?.stop() ?? null;
  return exit.maxRssKiB ?? sampled;
}

/** Runs one round of `pair`; `verify` makes the socat/nc receivers count bytes through `wc -c`. */
async function bulkRound(
  env: Env,
  pair: BulkPair,
  options: BulkOptions,
  verify: boolean,
): Promise<RoundResult> {
  const n = options.bytes;
  const rss = (cmd: string[]) => env.gnuTime ? withPeakRss(cmd) : cmd;
  const procs: Proc[] = [];
  const spawn = (cmd: string[]) => {
    const proc = new Proc(cmd, { timeoutMs: options.timeoutMs, cwd: env.root });
    procs.push(proc);
    return proc;
  };
  const bash = (script: string) => ["bash", "-c", script];
  const quote = (cmd: string[]) => cmd.map(shellQuote).join(" ");
  try {
    // The receiver, listening before the clock starts.
    let port: number;
    let receiver: Proc;
    switch (pair.receiver) {
      case "wsk": {
        receiver = new Proc(
          rss(wskCmd(env, ["accept", "127.0.0.1:0", "--mode", "discard", "--count", "1"])),
          { timeoutMs: options.timeoutMs + LISTEN_TIMEOUT_MS, cwd: env.root },
        );
        procs.push(receiver);
        port = await waitBound(receiver, LISTEN_TIMEOUT_MS);
        break;
      }
      case "socat": {
        port = freePort();
        const listen = `TCP-LISTEN:${port},reuseaddr,bind=127.0.0.1`;
        receiver = spawn(
          verify ? bash(`socat -u ${listen} - | wc -c`) : ["socat", "-u", listen, "OPEN:/dev/null"],
        );
        await waitListening(receiver, port, LISTEN_TIMEOUT_MS);
        break;
      }
      case "nc": {
        port = freePort();
        receiver = spawn(
          bash(`exec nc -l -d 127.0.0.1 ${port} ${verify ? "| wc -c" : ">/dev/null"}`),
        );
        await waitListening(receiver, port, LISTEN_TIMEOUT_MS);
        break;
      }
      case "iperf3": {
        port = freePort();
        receiver = spawn(["iperf3", "-s", "-1", "-p", String(port), "-B", "127.0.0.1", "-J"]);
        await waitListening(receiver, port, LISTEN_TIMEOUT_MS);
        break;
      }
    }
    const target = `127.0.0.1:${port}`;
    const receiverSampler = pair.receiver === "wsk" && !env.gnuTime
      ? new PeakSampler(receiver.pid)
      : null;

    // The sender; the clock runs from just before its spawn to the receiver's exit.
    const start = performance.now();
    let sender: Proc;
    switch (pair.sender) {
      case "wsk-stdin":
        sender = spawn(
          bash(`head -c ${n} /dev/zero | exec ${quote(rss(wskCmd(env, ["send", target])))}`),
        );
        break;
      case "wsk-pattern":
        sender = spawn(rss(wskCmd(env, ["send", target, "--pattern", sizeArg(n)])));
        break;
      case "socat":
        sender = spawn(bash(`head -c ${n} /dev/zero | exec socat -u - TCP:${target}`));
        break;
      case "nc":
        sender = spawn(bash(`head -c ${n} /dev/zero | exec nc -N 127.0.0.1 ${port}`));
        break;
      case "iperf3":
        sender = spawn(["iperf3", "-c", "127.0.0.1", "-p", String(port), "-n", String(n), "-J"]);
        break;
    }
    const senderSampler = pair.sender.startsWith("wsk") && !env.gnuTime
      ? new PeakSampler(sender.pid)
      : null;
    const received = await receiver.wait();
    const seconds = (receiver.started + received.ms - start) / 1000;
    const sent = await sender.wait();
    const senderRssKiB = pair.sender.startsWith("wsk") ? peakOf(sent, senderSampler) : null;
    const receiverRssKiB = pair.receiver === "wsk" ? peakOf(received, receiverSampler) : null;

    // Checks: both exited 0 in time, and the bytes where the tools say them.
    for (const [side, exit] of [["sender", sent], ["receiver", received]] as const) {
      if (exit.timedOut) {
        throw new BenchError(`${side} killed after ${options.timeoutMs} ms${detail(exit)}`);
      }
      if (exit.code !== 0) throw new BenchError(`${side} exited ${exit.code}${detail(exit)}`);
    }
    let selfSeconds: number | null = null;
    if (pair.sender === "wsk-stdin" || pair.sender === "wsk-pattern") {
      const m = sent.stdout.match(/^WskSend STATUS_SUCCESS .*? bytes=(\d+).*? time=([\d.]+)ms/m);
      if (!m || Number(m[1]) !== n) {
        throw new BenchError(`wsk send: expected a WskSend line with bytes=${n}${detail(sent)}`);
      }
      selfSeconds = Number(m[2]) / 1000;
    }
    switch (pair.receiver) {
      case "wsk": {
        const m = received.stdout.match(/^Summary (\S+) .*? received=(\d+)/m);
        if (!m || m[1] !== "STATUS_SUCCESS" || Number(m[2]) !== n) {
          throw new BenchError(
            `wsk accept: expected Summary STATUS_SUCCESS received=${n}${detail(received)}`,
          );
        }
        break;
      }
      case "socat":
      case "nc":
        if (verify && Number(received.stdout.trim()) !== n) {
          throw new BenchError(
            `${pair.receiver} receiver got ${received.stdout.trim() || "?"} bytes, expected ${n}`,
          );
        }
        break;
      case "iperf3": {
        // iperf3's server stops counting at the client's end-of-test message, so it may report
        // a little less than was sent: check the client sent it all and the server saw data.
        const bytesOf = (text: string, key: "sum_sent" | "sum_received") => {
          try {
            return Number(JSON.parse(text).end[key].bytes);
          } catch {
            return NaN;
          }
        };
        const out = bytesOf(sent.stdout, "sum_sent");
        const got = bytesOf(received.stdout, "sum_received");
        if (out !== n || !(got > 0 && got <= n)) {
          throw new BenchError(`iperf3 sent ${out} and received ${got} bytes, expected ${n}`);
        }
        try {
          selfSeconds = Number(JSON.parse(sent.stdout).end.sum_sent.seconds) || null;
        } catch {
          // Checked above: the JSON parsed.
        }
        break;
      }
    }
    return { seconds, selfSeconds, senderRssKiB, receiverRssKiB };
  } finally {
    for (const proc of procs) if (!proc.exited) await proc.kill();
  }
}

/** Runs the bulk scenario: one verified warm-up round per pair, then the rounds, alternating. */
export async function runBulk(env: Env, options: BulkOptions): Promise<BulkResult> {
  const active = BULK_PAIRS.filter((pair) => needs(pair).every((tool) => env.tools[tool]));
  const seconds = new Map<string, number[]>();
  const selfSeconds = new Map<string, number[]>();
  const senderRss = new Map<string, number[]>();
  const receiverRss = new Map<string, number[]>();
  const errors = new Map<string, string[]>();
  for (const pair of active) {
    seconds.set(pair.id, []);
    selfSeconds.set(pair.id, []);
    senderRss.set(pair.id, []);
    receiverRss.set(pair.id, []);
    errors.set(pair.id, []);
  }
  const record = (pair: BulkPair, round: number, r: RoundResult | Error) => {
    const label = round === 0 ? "warm-up" : `round ${round}/${options.rounds}`;
    if (r instanceof Error) {
      errors.get(pair.id)!.push(`${label}: ${r.message}`);
      env.progress(`bulk ${pair.id.padEnd(16)} ${label}: FAILED: ${r.message}`);
      if (round > 0) {
        seconds.get(pair.id)!.push(NaN);
        selfSeconds.get(pair.id)!.push(NaN);
      }
      return;
    }
    const rate = options.bytes / r.seconds / 1e6;
    env.progress(
      `bulk ${pair.id.padEnd(16)} ${label}: ${rate.toFixed(1)} MB/s (${r.seconds.toFixed(3)} s)`,
    );
    if (round === 0) return;
    seconds.get(pair.id)!.push(r.seconds);
    selfSeconds.get(pair.id)!.push(r.selfSeconds ?? NaN);
    if (r.senderRssKiB !== null) senderRss.get(pair.id)!.push(r.senderRssKiB);
    if (r.receiverRssKiB !== null) receiverRss.get(pair.id)!.push(r.receiverRssKiB);
  };
  for (let round = 0; round <= options.rounds; round++) {
    for (const pair of active) {
      try {
        record(pair, round, await bulkRound(env, pair, options, round === 0));
      } catch (error) {
        record(pair, round, error instanceof Error ? error : new Error(message(error)));
      }
    }
  }
  const pairs: BulkPairResult[] = BULK_PAIRS.map((pair) => {
    const missing = needs(pair).filter((tool) => !env.tools[tool]);
    if (missing.length > 0) {
      return {
        id: pair.id,
        description: pair.description,
        skipped: `needs ${missing.join(", ")}`,
        mbps: null,
        seconds: null,
        selfMbps: null,
        senderRssKiB: null,
        receiverRssKiB: null,
        errors: [],
      };
    }
    const secs = seconds.get(pair.id)!;
    return {
      id: pair.id,
      description: pair.description,
      skipped: null,
      mbps: stats(secs.map((s) => options.bytes / s / 1e6)),
      seconds: stats(secs),
      selfMbps: stats(selfSeconds.get(pair.id)!.map((s) => options.bytes / s / 1e6)),
      senderRssKiB: stats(senderRss.get(pair.id)!),
      receiverRssKiB: stats(receiverRss.get(pair.id)!),
      errors: errors.get(pair.id)!,
    };
  });
  const rate = (id: string) => pairs.find((p) => p.id === id)?.mbps ?? null;
  const selfRate = (id: string) => pairs.find((p) => p.id === id)?.selfMbps ?? null;
  const ratios = [
    ratio(
      "wsk-stdin→wsk / socat→socat",
      "from stdin, end to end, vs socat",
      rate("wsk-stdin→wsk"),
      rate("socat→socat"),
      { direction: "atLeast", value: 1.0 },
    ),
    ratio(
      "wsk-pattern→wsk / iperf3",
      "from memory vs the loopback ceiling",
      rate("wsk-pattern→wsk"),
      rate("iperf3"),
      { direction: "atLeast", value: 0.8 },
    ),
    ratio(
      "wsk-pattern→wsk / iperf3, self-reported",
      "the same, start-up excluded (each sender's own transfer time)",
      selfRate("wsk-pattern→wsk"),
      selfRate("iperf3"),
    ),
    ratio(
      "wsk-stdin→socat / socat→socat",
      "the wsk sender alone (stdin pump)",
      rate("wsk-stdin→socat"),
      rate("socat→socat"),
    ),
    ratio(
      "socat→wsk / socat→socat",
      "the wsk receiver alone (accept discard)",
      rate("socat→wsk"),
      rate("socat→socat"),
    ),
    ratio("wsk-stdin→wsk / nc→nc", "from stdin vs netcat", rate("wsk-stdin→wsk"), rate("nc→nc")),
    ratio(
      "wsk-pattern→wsk / socat→socat",
      "from memory vs socat",
      rate("wsk-pattern→wsk"),
      rate("socat→socat"),
    ),
  ];
  return {
    bytes: options.bytes,
    rounds: options.rounds,
    pairs,
    ratios,
    rssMethod: env.gnuTime
      ? "GNU time %M (the kernel's peak RSS)"
      : `VmHWM sampled every ${SAMPLE_MS} ms`,
  };
}

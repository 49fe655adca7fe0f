// deno-lint-ignore-file no-console
/**
 * The wsk benchmark suite (issue 5): wsk against socat, OpenBSD netcat and iperf3 on 127.0.0.1,
 * every contender run alternately in the same invocation, reported as medians with min–max and as
 * ratios wsk/contender, with PASS/MISS against the targets.
 *
 * Scenarios (`--only` names):
 *
 * 1. `bulk`: 1 GiB from stdin (`head -c 1G /dev/zero | wsk send`) and from memory
 *    (`wsk send --pattern 1G`) into `wsk accept --mode discard`, vs socat→socat, nc→nc, iperf3,
 *    and the mixed pairs wsk→socat and socat→wsk. Also scenario 5, **memory**: the peak RSS of
 *    every wsk sender and receiver.
 * 2. `provider`: `bench/provider_overhead.ts` (WSK calls vs raw Deno conn calls, one process).
 * 3. `startup`: `wsk connect` to a local listener vs `deno run bench/empty.ts` vs `nc -z`.
 * 4. `echo`: 1,000 clients echoing 64 KiB each through `wsk accept --mode echo --keep-open` vs a
 *    forking socat echo; and `idle`: 10,000 idle connections held by `wsk accept --keep-open`.
 * 6. `emfile`: 200 clients at once against an echo server under `ulimit -n 64`: wsk (deno and
 *    node backings) vs a forking socat echo; every client served or refused with a status, and
 *    the server still serving afterwards.
 * 7. `duplex`: 1 GiB through `wsk send --receive` against an echo server vs `nc -N` through the
 *    same server (target ≥ 0.8×).
 * 8. `relay`: 256 MiB of the pattern through `wsk accept --mode forward` (without and with
 *    `--allow-ffi`) vs `socat TCP-LISTEN:… TCP:…`, into the same verifying sink (target ≥ 0.7×).
 * 9. `tls`: 256 MiB of the pattern over TLS each way: `wsk send --tls` vs `socat … OPENSSL:` into
 *    the same python3 `ssl` sink, `wsk receive --tls` vs `socat OPENSSL:… -` from the same
 *    python3 `ssl` source (target ≥ 1.0× each way).
 *
 * The suite installs nothing: a missing socat, nc (netcat-openbsd) or iperf3 is named with the
 * `apt-get` line that installs it, and the contenders that need it are skipped.
 *
 * Usage:
 *
 * ```sh
 * deno task bench                 # everything, about 2 minutes on a 2-core VM
 * deno task bench:smoke           # the same code paths with tiny sizes, seconds (CI)
 * deno task bench --only bulk,startup --rounds 7
 * deno task bench --json > bench.json
 * ```
 *
 * Options: `--only LIST`, `--rounds N` (bulk, provider, echo, duplex; default 7), `--bulk-size SIZE`
 * (default 1G), `--startup-runs N` (default 50), `--clients N` (default 1000), `--idle N`
 * (default 10000), `--timeout S` (bound on each child process; default 120), `--smoke`, `--json`.
 *
 * Permissions: `--allow-all`. Deno 2 lets only `--allow-all` read `/proc` (listening ports, process
 * trees, RSS), and a suite that spawns socat, nc, iperf3, bash and deno has all access anyway.
 *
 * Exit 0 when every transfer completed with every byte accounted for (a missed target is reported,
 * not an error); 1 when a transfer failed, bytes were missing, a child timed out or a server did
 * not stop cleanly; 2 for bad flags.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { type BulkResult, runBulk } from "./_bulk.ts";
import { type DuplexResult, runDuplex } from "./_duplex.ts";
import { type RelayResult, runRelay } from "./_relay.ts";
import { runTls, type TlsBenchResult } from "./_tls.ts";
import { type EchoResult, type IdleResult, runEcho, runIdle } from "./_connections.ts";
import { type EmfileResult, runEmfile } from "./_emfile.ts";
import {
  BenchError,
  detectTools,
  type Env,
  hasGnuTime,
  message,
  PACKAGE,
  type Tool,
  toolVersions,
} from "./_env.ts";
import { type ProviderResult, runProvider } from "./_provider.ts";
import { runStartup, type StartupResult } from "./_startup.ts";
import {
  formatBytes,
  formatKiB,
  formatStats,
  type Ratio,
  ratioTable,
  type Stats,
  table,
  times,
  verdict,
} from "./_stats.ts";

const SCENARIOS = [
  "bulk",
  "provider",
  "startup",
  "echo",
  "idle",
  "emfile",
  "duplex",
  "relay",
  "tls",
] as const;
type Scenario = typeof SCENARIOS[number];
/** Names `--only` also takes: what they stand for. */
const ALIASES: Record<string, Scenario[]> = {
  memory: ["bulk"],
  connections: ["echo", "idle", "emfile"],
};
const MIB = 1024 * 1024;
/** Scenario 5's bound on a wsk process's peak RSS. */
const RSS_TARGET_KIB = 100 * 1024;

interface Options {
  readonly only: readonly Scenario[];
  readonly rounds: number;
  readonly bulkBytes: number;
  readonly startupRuns: number;
  readonly clients: number;
  readonly idle: number;
  readonly timeoutMs: number;
  readonly smoke: boolean;
  readonly json: boolean;
}

const USAGE = `Usage: deno task bench [options]      (or: deno task bench:smoke)

Options:
  --only <list>        scenarios, comma-separated: ${SCENARIOS.join(", ")}
                       (memory = bulk, connections = echo,idle,emfile; default all)
  --rounds <n>         rounds per contender for bulk, provider, echo, duplex, relay and tls
                       (default 7; smoke 2)
  --bulk-size <size>   bytes per bulk and duplex transfer: 1G, 256M, 8M (default 1G; smoke 8M)
                       (relay and tls: 256M, or the bulk size when smaller)
  --startup-runs <n>   measured start-ups per contender (default 50; smoke 5)
  --clients <n>        concurrent echo clients, 64 KiB each (default 1000; smoke 20)
  --idle <n>           idle connections to hold (default 10000; smoke 200)
                       (emfile: 200 clients, ulimit -n 64, 3 rounds; smoke 1 round)
  --timeout <s>        kill any child process after this many seconds (default 120; smoke 30)
  --smoke              tiny sizes, the same code paths, seconds (what CI runs)
  --json               print one JSON object on stdout instead of the tables
  -h, --help           show this help`;

// ---------------------------------------------------------------------------------------------
// Flags

function positive(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new TypeError(`--${name}: "${text}" is not a positive integer`);
  }
  return value;
}

function parseSize(text: string): number {
  const m = text.match(/^(\d+)([KMG]?)$/);
  if (!m) throw new TypeError(`--bulk-size: "${text}" is not a size like 1G, 256M, 64K or 4096`);
  const unit = { "": 1, K: 1024, M: MIB, G: 1024 * MIB }[m[2] as "" | "K" | "M" | "G"];
  const bytes = Number(m[1]) * unit;
  if (bytes < 1024 || bytes % 1024 !== 0) {
    throw new TypeError(`--bulk-size: "${text}" must be a whole number of KiB, at least 1K`);
  }
  return bytes;
}

function parseOptions(args: string[]): Options | "help" {
  const { values } = parseArgs({
    args,
    options: {
      only: { type: "string" },
      rounds: { type: "string" },
      "bulk-size": { type: "string" },
      "startup-runs": { type: "string" },
      clients: { type: "string" },
      idle: { type: "string" },
      timeout: { type: "string" },
      smoke: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return "help";
  const smoke = values.smoke;
  let only: Scenario[] = [...SCENARIOS];
  if (values.only !== undefined) {
    const wanted = new Set<Scenario>();
    for (const name of values.only.split(",").map((s) => s.trim())) {
      if ((SCENARIOS as readonly string[]).includes(name)) wanted.add(name as Scenario);
      else if (ALIASES[name]) ALIASES[name].forEach((s) => wanted.add(s));
      else {
        throw new TypeError(
          `--only: "${name}" is not a scenario (${
            [...SCENARIOS, ...Object.keys(ALIASES)].join(", ")
          })`,
        );
      }
    }
    only = SCENARIOS.filter((s) => wanted.has(s));
  }
  return {
    only,
    rounds: values.rounds === undefined ? (smoke ? 2 : 7) : positive("rounds", values.rounds),
    bulkBytes: values["bulk-size"] === undefined
      ? (smoke ? 8 * MIB : 1024 * MIB)
      : parseSize(values["bulk-size"]),
    startupRuns: values["startup-runs"] === undefined
      ? (smoke ? 5 : 50)
      : positive("startup-runs", values["startup-runs"]),
    clients: values.clients === undefined
      ? (smoke ? 20 : 1000)
      : positive("clients", values.clients),
    idle: values.idle === undefined ? (smoke ? 200 : 10_000) : positive("idle", values.idle),
    timeoutMs:
      (values.timeout === undefined ? (smoke ? 30 : 120) : positive("timeout", values.timeout)) *
      1000,
    smoke,
    json: values.json,
  };
}

// ---------------------------------------------------------------------------------------------
// The report

interface Meta {
  readonly date: string;
  readonly deno: string;
  readonly v8: string;
  readonly typescript: string;
  readonly platform: string;
  readonly kernel: string;
  readonly cpus: number;
  readonly cpuModel: string;
  readonly tools: Record<string, string>;
  readonly skippedTools: Partial<Record<Tool, string>>;
  readonly rssMethod: string;
  readonly mode: "full" | "smoke";
}

interface Results {
  bulk?: BulkResult;
  provider?: ProviderResult;
  startup?: StartupResult;
  echo?: EchoResult;
  idle?: IdleResult;
  emfile?: EmfileResult;
  duplex?: DuplexResult;
  relay?: RelayResult;
  tls?: TlsBenchResult;
}

/** One line of the targets summary. */
interface TargetLine {
  readonly target: string;
  readonly measured: string;
  readonly result: string;
}

function readText(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
}

/** "- name: what it runs" lines under a table. */
function legend(entries: readonly (readonly [string, string])[]): string {
  return entries.map(([name, what]) => `- ${name}: ${what}`).join("\n");
}

function mbps(s: Stats | null): string {
  return formatStats(s, 0);
}

function bulkSection(r: BulkResult): string {
  const rows = r.pairs.map((p) => [
    p.id,
    p.skipped ?? mbps(p.mbps),
    p.seconds ? p.seconds.median.toFixed(3) : "—",
    p.selfMbps ? mbps(p.selfMbps) : "",
    p.errors.length ? `${p.errors.length} failed` : "ok",
  ]);
  return [
    `## 1. Bulk transfer: ${formatBytes(r.bytes)} over 127.0.0.1, ${r.rounds} rounds, ` +
    `pairs alternating (MB/s = 10^6 B/s, sender spawn → receiver exit)`,
    "",
    table(
      [
        "pair",
        "median MB/s (min–max)",
        "median s",
        "self-reported MB/s",
        "bytes",
      ],
      rows,
      [1, 2, 3],
    ),
    "",
    legend(r.pairs.map((p) => [p.id, p.description])),
    "",
    ratioTable(r.ratios),
  ].join("\n");
}

/** Scenario 5's rows: each wsk process's peak RSS over the bulk rounds. */
function memoryRows(r: BulkResult): { rows: string[][]; lines: TargetLine[] } {
  const rows: string[][] = [];
  const lines: TargetLine[] = [];
  for (const p of r.pairs) {
    const sender = p.id.startsWith("wsk-pattern") ? "wsk send --pattern N" : "head | wsk send";
    const sides = [
      ["sender", p.senderRssKiB, sender],
      ["receiver", p.receiverRssKiB, "wsk accept --mode discard"],
    ] as const;
    for (const [side, s, what] of sides) {
      if (!s) continue;
      const pass = s.max <= RSS_TARGET_KIB;
      rows.push([
        `${p.id} ${side}`,
        what,
        formatKiB(s.median),
        formatKiB(s.max),
        "≤ 100 MiB",
        pass ? "PASS" : "MISS",
      ]);
      lines.push({
        target: `peak RSS ${p.id} ${side} ≤ 100 MiB`,
        measured: `max ${formatKiB(s.max)}`,
        result: pass ? "PASS" : "MISS",
      });
    }
  }
  return { rows, lines };
}

function memorySection(r: BulkResult): string {
  const { rows } = memoryRows(r);
  return [
    `## 5. Memory: peak RSS of each wsk process in scenario 1 (${r.rssMethod})`,
    "",
    rows.length
      ? table(["process", "command", "median", "max", "target", "result"], rows, [2, 3])
      : "(no wsk round completed)",
  ].join("\n");
}

function providerSection(r: ProviderResult): string {
  const rows = r.sizes.flatMap((s) => [
    [`${s.bufferBytes / 1024} KiB`, "raw conn", mbps(s.raw)],
    [`${s.bufferBytes / 1024} KiB`, "wsk", mbps(s.wsk)],
  ]);
  return [
    `## 2. Provider overhead: ${formatBytes(r.bytes)} per round, ${r.rounds} rounds, ` +
    `raw/wsk alternating, one process (bench/provider_overhead.ts; backing ${
      r.backing.join("; ")
    })`,
    "",
    table(["buffer", "contender", "median MB/s (min–max)"], rows, [2]),
    "",
    ratioTable(r.ratios),
  ].join("\n");
}

function startupSection(r: StartupResult): string {
  const rows = r.contenders.map((c) => [
    c.id,
    c.skipped ?? formatStats(c.ms, 1),
    c.errors.length ? `${c.errors.length} failed` : "ok",
  ]);
  return [
    `## 3. Start-up to first status: ${r.runs} runs each, alternating (ms, spawn → exit)`,
    "",
    table(["command", "median ms (min–max)", "runs"], rows, [1]),
    "",
    legend(r.contenders.map((c) => [c.id, c.command])),
    "",
    ratioTable(r.ratios),
  ].join("\n");
}

function echoSection(r: EchoResult): string {
  const rows = r.contenders.map((c) => [
    c.id,
    c.skipped ?? formatStats(c.connectionsPerSecond, 0),
    c.ms ? formatStats(c.ms, 0) : "—",
    String(c.clientErrors + c.errors.length),
    formatBytes(c.bytesVerified),
  ]);
  return [
    `## 4a. Many connections: ${r.clients} clients × ${formatBytes(r.bytes)} echoed and checked, ` +
    `${r.rounds} rounds, servers alternating (≤ 256 clients awaiting accept at a time)`,
    "",
    table(
      ["server", "connections/s (min–max)", "total ms (min–max)", "errors", "verified"],
      rows,
      [1, 2, 3, 4],
    ),
    "",
    legend(r.contenders.map((c) => [c.id, c.command])),
    "",
    ratioTable(r.ratios),
  ].join("\n");
}

function idleSection(r: IdleResult): string {
  const rows = [
    ["connections opened", `${r.opened} of ${r.clients}`],
    ["accepted by wsk (WskAccept lines)", String(r.accepted)],
    ["established (kernel, server side)", String(r.established)],
    ["time to open all (client side)", r.openMs === null ? "—" : `${r.openMs.toFixed(0)} ms`],
    ["wsk RSS before the first connection", formatKiB(r.baselineRssKiB)],
    ["wsk RSS holding them all", formatKiB(r.heldRssKiB)],
    ["wsk peak RSS (VmHWM)", formatKiB(r.peakRssKiB)],
    [
      "per connection",
      r.heldRssKiB !== null && r.baselineRssKiB !== null && r.opened > 0
        ? `${((r.heldRssKiB - r.baselineRssKiB) / r.opened).toFixed(1)} KiB`
        : "—",
    ],
    ["closed gracefully (client half-close → server FIN)", `${r.closedGracefully}`],
    ["time to close all", r.closeMs === null ? "—" : `${r.closeMs.toFixed(0)} ms`],
  ];
  return [
    `## 4b. Idle connections held by wsk accept --mode discard --keep-open: ${r.clients}` +
    (r.clients !== r.requested ? ` (asked for ${r.requested})` : "") + ", one round",
    "",
    table(["", "value"], rows, [1]),
  ].join("\n");
}

function emfileSection(r: EmfileResult): string {
  const rows = r.contenders.map((c) => [
    c.id,
    c.skipped ?? `${c.served}`,
    c.skipped ? "—" : `${c.refused}`,
    c.skipped ? "—" : `${c.lost}`,
    c.skipped ? "—" : `${c.servingAfter} of ${r.rounds}`,
    c.seconds ? formatStats(c.seconds, 2) : "—",
    c.failedAccepts === null ? "—" : String(c.failedAccepts),
  ]);
  return [
    `## 6. Descriptor exhaustion: the server under ulimit -n ${r.fds}, ${r.clients} echo clients ` +
    `at once (each holds its connection 0.3 s after its echo), ${r.rounds} rounds, servers ` +
    `alternating; one more client after each storm`,
    "",
    table(
      [
        "server",
        "served",
        "refused (status seen)",
        "lost",
        "served after",
        "storm s (min–max)",
        "failed accepts reported",
      ],
      rows,
      [1, 2, 3, 5, 6],
    ),
    "",
    legend(r.contenders.map((c) => [c.id, c.command])),
  ].join("\n");
}

function duplexSection(r: DuplexResult): string {
  const rows = r.clients.map((c) => [
    c.id,
    c.skipped ?? mbps(c.mbps),
    c.errors.length ? `${c.errors.length} failed` : "ok",
  ]);
  return [
    `## 7. Full duplex: ${formatBytes(r.bytes)} echoed through ${r.server}, ${r.rounds} rounds, ` +
    "clients alternating (MB/s one way, client spawn → exit, every byte counted)",
    "",
    table(["client", "median MB/s (min–max)", "bytes"], rows, [1]),
    "",
    legend(r.clients.map((c) => [c.id, c.command])),
    "",
    ratioTable(r.ratios),
  ].join("\n");
}

function relaySection(r: RelayResult): string {
  const rows = r.contenders.map((c) => [
    c.id,
    c.skipped ?? mbps(c.mbps),
    c.errors.length ? `${c.errors.length} failed` : "ok",
  ]);
  return [
    `## 8. Relay: ${formatBytes(r.bytes)} of the pattern, wsk send → relay → wsk accept ` +
    `--mode verify, ${r.rounds} rounds, relays alternating (MB/s as the sink timed its receive)`,
    "",
    table(["relay", "median MB/s (min–max)", "bytes"], rows, [1]),
    "",
    legend(r.contenders.map((c) => [c.id, c.command])),
    "",
    ratioTable(r.ratios),
  ].join("\n");
}

function tlsSection(r: TlsBenchResult): string {
  const rows = r.contenders.map((c) => [
    c.direction,
    c.id,
    c.skipped ?? mbps(c.mbps),
    c.errors.length ? `${c.errors.length} failed` : "ok",
  ]);
  return [
    `## 9. TLS: ${formatBytes(r.bytes)} of the pattern each way, TLS 1.3, ${r.rounds} rounds, ` +
    `contenders alternating; the peer is ${r.peer}`,
    "",
    table(["direction", "contender", "median MB/s (min–max)", "bytes"], rows, [2]),
    "",
    legend(r.contenders.map((c) => [c.id, c.command])),
    "",
    ratioTable(r.ratios),
  ].join("\n");
}

function ratioLine(r: Ratio, measured = times(r.value)): TargetLine {
  return {
    target: `${r.name} ${r.target?.direction === "atMost" ? "≤" : "≥"} ${
      r.target?.value.toFixed(1)
    }×`,
    measured,
    result: verdict(r),
  };
}

function targetLines(results: Results): TargetLine[] {
  const lines: TargetLine[] = [];
  const withTargets = (ratios: readonly Ratio[]) => ratios.filter((r) => r.target !== null);
  if (results.bulk) { for (const r of withTargets(results.bulk.ratios)) lines.push(ratioLine(r)); }
  if (results.provider) {
    for (const r of withTargets(results.provider.ratios)) lines.push(ratioLine(r));
  }
  if (results.startup) {
    for (const r of withTargets(results.startup.ratios)) lines.push(ratioLine(r));
  }
  if (results.duplex) {
    for (const r of withTargets(results.duplex.ratios)) lines.push(ratioLine(r));
  }
  if (results.relay) {
    for (const r of withTargets(results.relay.ratios)) lines.push(ratioLine(r));
  }
  if (results.tls) {
    for (const r of withTargets(results.tls.ratios)) lines.push(ratioLine(r));
  }
  if (results.echo) {
    const wsk = results.echo.contenders[0]!;
    lines.push({
      target: `${results.echo.clients} echo clients: 0 errors, every byte verified`,
      measured: `${wsk.clientErrors + wsk.errors.length} errors, ${
        formatBytes(wsk.bytesVerified)
      } verified`,
      result: results.echo.pass ? "PASS" : "MISS",
    });
  }
  if (results.idle) {
    lines.push({
      target: `${results.idle.requested} idle connections held`,
      measured: `${results.idle.established} established, RSS ${
        formatKiB(results.idle.heldRssKiB)
      }`,
      result: results.idle.pass ? "PASS" : "MISS",
    });
  }
  if (results.emfile) {
    const wsk = results.emfile.contenders.filter((c) => c.failedAccepts !== null);
    lines.push({
      target: `ulimit -n ${results.emfile.fds}, ${results.emfile.clients} clients: every client ` +
        "served or refused with a status, server still serving",
      measured: wsk.map((c) =>
        `${c.id}: ${c.served} served, ${c.refused} refused, ${c.lost} lost, ` +
        `${c.servingAfter}/${results.emfile!.rounds} after`
      ).join("; "),
      result: results.emfile.pass ? "PASS" : "MISS",
    });
  }
  if (results.bulk) lines.push(...memoryRows(results.bulk).lines);
  return lines;
}

/** Every failure the scenarios recorded: any makes the exit code 1. */
function failures(results: Results, thrown: string[]): string[] {
  const all = [...thrown];
  for (const p of results.bulk?.pairs ?? []) all.push(...p.errors.map((e) => `bulk ${p.id}: ${e}`));
  for (const c of results.startup?.contenders ?? []) {
    all.push(...c.errors.map((e) => `startup ${c.id}: ${e}`));
  }
  for (const c of results.echo?.contenders ?? []) {
    all.push(...c.errors.map((e) => `echo ${c.id}: ${e}`));
  }
  all.push(...(results.idle?.errors ?? []).map((e) => `idle: ${e}`));
  for (const c of results.emfile?.contenders ?? []) {
    all.push(...c.errors.map((e) => `emfile ${c.id}: ${e}`));
  }
  for (const c of results.duplex?.clients ?? []) {
    all.push(...c.errors.map((e) => `duplex ${c.id}: ${e}`));
  }
  for (const c of results.relay?.contenders ?? []) {
    all.push(...c.errors.map((e) => `relay ${c.id}: ${e}`));
  }
  for (const c of results.tls?.contenders ?? []) {
    all.push(...c.errors.map((e) => `tls ${c.id}: ${e}`));
  }
  return all;
}

/** The relay and TLS scenarios' transfer: 256 MiB, or the bulk size when that is smaller (smoke). */
function relayBytes(options: Options): number {
  return Math.min(256 * MIB, options.bulkBytes);
}

/** The sizes and counts of the scenarios that run. */
function parameters(options: Options): string[] {
  const on = (s: Scenario) => options.only.includes(s);
  const list: string[] = [];
  if (on("bulk") || on("provider") || on("echo") || on("duplex") || on("relay") || on("tls")) {
    list.push(`${options.rounds} rounds`);
  }
  if (on("bulk") || on("provider") || on("duplex")) {
    list.push(`${formatBytes(options.bulkBytes)} per transfer`);
  }
  if (on("relay")) list.push(`relay ${formatBytes(relayBytes(options))}`);
  if (on("tls")) list.push(`tls ${formatBytes(relayBytes(options))} each way`);
  if (on("startup")) list.push(`${options.startupRuns} start-ups each`);
  if (on("echo")) list.push(`${options.clients} echo clients`);
  if (on("idle")) list.push(`${options.idle} idle connections`);
  if (on("emfile")) list.push("200 clients under ulimit -n 64");
  return list;
}

function header(meta: Meta, options: Options): string {
  const tools = Object.entries(meta.tools).map(([k, v]) => `${k} ${v}`).join(", ") || "none";
  const skipped = Object.entries(meta.skippedTools).map(([k, v]) => `${k} (${v})`).join(", ");
  return [
    `# wsk benchmark suite (${meta.mode}) — ${meta.date}`,
    `Deno ${meta.deno} (V8 ${meta.v8}, TypeScript ${meta.typescript}), ${meta.platform}, ` +
    `Linux ${meta.kernel}, ${meta.cpus} CPUs (${meta.cpuModel})`,
    `contenders: ${tools}${skipped ? `; skipped: ${skipped}` : ""}`,
    `scenarios: ${options.only.join(", ")} (${parameters(options).join("; ")})`,
  ].join("\n");
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(args: string[]): Promise<number> {
  let options: Options;
  try {
    const parsed = parseOptions(args);
    if (parsed === "help") {
      console.log(USAGE);
      return 0;
    }
    options = parsed;
  } catch (error) {
    console.error(`error: ${message(error)}\n\n${USAGE}`);
    return 2;
  }

  const progress = (line: string) => console.error(line);
  try {
    await Deno.readTextFile("/proc/net/tcp");
  } catch (error) {
    // Deno 2 lets only --allow-all read /proc, where the suite finds ports, process trees and RSS.
    console.error(
      `error: Cannot read /proc/net/tcp: ${message(error)}\n` +
        "Run the suite with --allow-all on Linux (deno task bench does)",
    );
    return 2;
  }
  const { tools, missing } = await detectTools();
  const missingTools = Object.keys(missing) as Tool[];
  if (missingTools.length > 0) {
    for (const tool of missingTools) {
      progress(`warning: ${tool} ${missing[tool]}: the contenders that need it are skipped`);
    }
    progress(
      `  to compare with them, install: apt-get install -y ${
        missingTools.map((t) => PACKAGE[t]).join(" ")
      }`,
    );
  }
  const env: Env = {
    root: fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, ""),
    deno: Deno.execPath(),
    tools,
    missing,
    gnuTime: hasGnuTime(),
    progress,
  };
  const meta: Meta = {
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    platform: `${Deno.build.os}/${Deno.build.arch}`,
    kernel: readText("/proc/sys/kernel/osrelease").trim() || "?",
    cpus: navigator.hardwareConcurrency,
    cpuModel: readText("/proc/cpuinfo").match(/^model name\s*:\s*(.*)$/m)?.[1]?.trim() ?? "?",
    tools: await toolVersions(env),
    skippedTools: missing,
    rssMethod: env.gnuTime ? "GNU time" : "VmHWM sampling",
    mode: options.smoke ? "smoke" : "full",
  };
  progress(`wsk benchmark suite (${meta.mode}): ${options.only.join(", ")}`);

  const results: Results = {};
  const thrown: string[] = [];
  const started = performance.now();
  const attempt = async (name: Scenario, work: () => Promise<void>) => {
    if (!options.only.includes(name)) return;
    const t0 = performance.now();
    try {
      await work();
    } catch (error) {
      // A BenchError is a failed transfer; anything else is a bug in the suite: both end in 1.
      thrown.push(`${name}: ${error instanceof BenchError ? "" : "unexpected "}${message(error)}`);
      progress(`${name}: FAILED: ${message(error)}`);
    }
    progress(`${name}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  };
  const timeoutMs = options.timeoutMs;
  await attempt("bulk", async () => {
    results.bulk = await runBulk(env, {
      bytes: options.bulkBytes,
      rounds: options.rounds,
      timeoutMs,
    });
  });
  await attempt("provider", async () => {
    results.provider = await runProvider(env, {
      bytes: options.bulkBytes,
      rounds: options.rounds,
      sizes: options.smoke ? [64 * 1024] : [64 * 1024, 256 * 1024, 1024 * 1024],
      timeoutMs,
    });
  });
  await attempt("startup", async () => {
    results.startup = await runStartup(env, {
      runs: options.startupRuns,
      warmups: options.smoke ? 1 : 3,
      timeoutMs,
    });
  });
  await attempt("echo", async () => {
    results.echo = await runEcho(env, {
      clients: options.clients,
      bytes: 64 * 1024,
      rounds: options.rounds,
      timeoutMs,
    });
  });
  await attempt("idle", async () => {
    results.idle = await runIdle(env, { clients: options.idle, concurrency: 100, timeoutMs });
  });
  await attempt("emfile", async () => {
    results.emfile = await runEmfile(env, {
      clients: 200,
      fds: 64,
      rounds: options.smoke ? 1 : Math.min(options.rounds, 3),
      timeoutMs: Math.min(timeoutMs, 60_000),
    });
  });
  await attempt("duplex", async () => {
    results.duplex = await runDuplex(env, {
      bytes: options.bulkBytes,
      rounds: options.rounds,
      timeoutMs,
    });
  });
  await attempt("relay", async () => {
    results.relay = await runRelay(env, {
      bytes: relayBytes(options),
      rounds: options.rounds,
      timeoutMs,
    });
  });
  await attempt("tls", async () => {
    results.tls = await runTls(env, {
      bytes: relayBytes(options),
      rounds: options.rounds,
      timeoutMs,
    });
  });
  const seconds = (performance.now() - started) / 1000;

  // Smoke sizes exercise the code paths; their ratios and RSS say nothing about the targets.
  const targets = targetLines(results).map((t) =>
    options.smoke && !t.target.includes("held") && !t.target.includes("verified") &&
      !t.target.includes("still serving")
      ? { ...t, result: "(smoke)" }
      : t
  );
  const failed = failures(results, thrown);
  if (options.json) {
    console.log(JSON.stringify({ meta, options, seconds, results, targets, failures: failed }));
  } else {
    const sections: string[] = [header(meta, options)];
    if (results.bulk) sections.push(bulkSection(results.bulk));
    if (results.provider) sections.push(providerSection(results.provider));
    if (results.startup) sections.push(startupSection(results.startup));
    if (results.echo) sections.push(echoSection(results.echo));
    if (results.idle) sections.push(idleSection(results.idle));
    if (results.emfile) sections.push(emfileSection(results.emfile));
    if (results.duplex) sections.push(duplexSection(results.duplex));
    if (results.relay) sections.push(relaySection(results.relay));
    if (results.tls) sections.push(tlsSection(results.tls));
    if (results.bulk) sections.push(memorySection(results.bulk));
    sections.push(
      [
        "## Targets",
        ...(options.smoke
          ? ["(smoke sizes: ratios and RSS are not judged; only the byte and connection checks)"]
          : []),
        "",
        table(
          ["target", "measured", "result"],
          targets.map((t) => [t.target, t.measured, t.result]),
        ),
      ].join("\n"),
    );
    sections.push(
      failed.length
        ? `## FAILED (${failed.length})\n\n${failed.map((f) => `- ${f}`).join("\n")}`
        : `All transfers completed and verified; total ${seconds.toFixed(0)} s.`,
    );
    console.log(sections.join("\n\n"));
  }
  return failed.length > 0 ? 1 : 0;
}

if (import.meta.main) Deno.exitCode = await main(Deno.args);

// deno-lint-ignore-file no-console
/**
 * Benchmark: what the WSK model costs on top of raw Deno sockets when moving bulk data over
 * loopback, measured side by side in one process.
 *
 * - `raw`: a `Deno.listen` listener on 127.0.0.1:0; the sender `Deno.connect`s and loops
 *   `conn.write(chunk)` (partial writes handled), then `closeWrite()`; the accepted side loops
 *   `conn.read(buf)` until `null`.
 * - `wsk`: the same shapes through the provider: a connection socket (WskSocket → wildcard
 *   WskBind → WskConnect, default "auto" backing) loops `WskSend(socket, wskBuf(chunk))`, then a
 *   graceful `WskDisconnect`; a listening socket (WskBind 127.0.0.1:0 → WskAccept) hands out the
 *   receiving socket, which loops `WskReceive` into one reused WskBuf until a 0-byte success.
 *
 * For each buffer size the contenders run alternately (raw, wsk, raw, wsk, …). Throughput is
 * reported in MB/s (10^6 bytes per second), timed from the first send to the receiver's EOF.
 *
 * Usage:
 *
 * ```sh
 * DENO_NO_UPDATE_CHECK=1 deno run --allow-net=127.0.0.1 bench/provider_overhead.ts \
 *   [--gib 1] [--rounds 5] [--timeout 60] [--quick] [--json]
 * ```
 *
 * Exit code 0 on success; 1 when a WSK call completes with a non-success status, a transfer
 * moves the wrong number of bytes or a round times out; 2 for bad flags.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  AF_INET,
  formatNtStatus,
  IPPROTO_TCP,
  NT_SUCCESS,
  ntStatusName,
  SOCK_STREAM,
  sockAddr,
  wildcard,
  WSK_FLAG_CONNECTION_SOCKET,
  WSK_FLAG_LISTEN_SOCKET,
  type WskBuf,
  wskBuf,
  WskCaptureProviderNPI,
  type WskCompletion,
  type WskConnectionSocket,
  type WskListenSocket,
} from "../provider/mod.ts";

const KIB = 1024;
const MIB = 1024 * KIB;
const GIB = 1024 * MIB;
const HOST = "127.0.0.1";
/** Deadline for connection setup calls (connect, accept). */
const SETUP_TIMEOUT_MS = 5_000;
/** Bytes each contender moves once, unreported, before the measured rounds. */
const WARMUP_BYTES = 64 * MIB;

type Contender = "raw" | "wsk";

/** A failure that ends the benchmark with exit code 1. */
class BenchError extends Error {
  override name = "BenchError";
}

interface Options {
  readonly totalBytes: number;
  readonly rounds: number;
  readonly sizes: readonly number[];
  readonly timeoutMs: number;
  readonly json: boolean;
  readonly quick: boolean;
}

interface Stats {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly runs: number[];
}

interface SizeResult {
  readonly size: number;
  readonly raw: Stats;
  readonly wsk: Stats;
  readonly ratio: number;
}

const USAGE = `Usage: deno run --allow-net=127.0.0.1 bench/provider_overhead.ts [options]

Options:
  --gib <n>       GiB moved per round (default 1; fractions allowed)
  --rounds <n>    rounds per contender and size (default 5)
  --timeout <s>   abort a round after this many seconds (default 60)
  --size <KiB>    buffer size in KiB; repeat for several (default 64, 256 and 1024)
  --quick         CI smoke: 64 MiB, 1 round, 64 KiB buffers only
  --json          print one JSON object instead of the table
  -h, --help      show this help`;

// ---------------------------------------------------------------------------------------------
// Flags

function parseOptions(args: string[]): Options {
  const { values } = parseArgs({
    args,
    options: {
      gib: { type: "string", default: "1" },
      rounds: { type: "string", default: "5" },
      timeout: { type: "string", default: "60" },
      size: { type: "string", multiple: true },
      quick: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  const gib = Number(values.gib);
  if (!Number.isFinite(gib) || gib <= 0) throw new TypeError(`--gib: "${values.gib}" is not > 0`);
  const rounds = Number(values.rounds);
  if (!Number.isSafeInteger(rounds) || rounds < 1) {
    throw new TypeError(`--rounds: "${values.rounds}" is not a positive integer`);
  }
  const timeout = Number(values.timeout);
  if (!Number.isFinite(timeout) || timeout <= 0) {
    throw new TypeError(`--timeout: "${values.timeout}" is not > 0 seconds`);
  }
  const sizes = (values.size ?? ["64", "256", "1024"]).map((text) => {
    const kib = Number(text);
    if (!Number.isSafeInteger(kib) || kib < 1) {
      throw new TypeError(`--size: "${text}" is not a positive whole number of KiB`);
    }
    return kib * KIB;
  });
  if (values.quick) {
    return {
      totalBytes: 64 * MIB,
      rounds: 1,
      sizes: [64 * KIB],
      timeoutMs: timeout * 1000,
      json: values.json,
      quick: true,
    };
  }
  return {
    totalBytes: Math.round(gib * GIB),
    rounds,
    sizes,
    timeoutMs: timeout * 1000,
    json: values.json,
    quick: false,
  };
}

// ---------------------------------------------------------------------------------------------
// WSK plumbing

const npi = WskCaptureProviderNPI();

/** Throws a BenchError naming the call and status unless `completion` is a success. */
function check<T extends WskCompletion>(completion: T, call: string): T {
  if (!NT_SUCCESS(completion.status)) {
    throw new BenchError(
      `${call} completed with ${ntStatusName(completion.status)} ` +
        `(${formatNtStatus(completion.status)})${
          completion.message ? `: ${completion.message}` : ""
        }`,
    );
  }
  return completion;
}

/** The bytes a round of `total` bytes in `size` chunks sends in its last, short chunk (or 0). */
function tail(total: number, size: number): number {
  return total % size;
}

// ---------------------------------------------------------------------------------------------
// One round of each contender. Each returns the seconds from the first send to the receiver's
// EOF. Connection setup and teardown are outside the timed region.

/**
 * Runs `sender` and `receiver` side by side. If either fails, or the deadline passes, `abort`
 * closes everything so the other side ends too; the first failure is rethrown.
 */
async function timedTransfer(
  sender: () => Promise<void>,
  receiver: () => Promise<number>,
  abort: () => Promise<void>,
  expected: number,
  timeoutMs: number,
  what: string,
): Promise<number> {
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void abort();
  }, timeoutMs);
  const onFailure = (error: unknown): never => {
    void abort();
    throw error;
  };
  const start = performance.now();
  const [sent, received] = await Promise.allSettled([
    sender().catch(onFailure),
    receiver().catch(onFailure),
  ]);
  const seconds = (performance.now() - start) / 1000;
  clearTimeout(timer);
  if (timedOut) {
    throw new BenchError(`${what}: the round did not finish within ${timeoutMs / 1000} s`);
  }
  if (sent.status === "rejected") throw sent.reason;
  if (received.status === "rejected") throw received.reason;
  if (received.value !== expected) {
    throw new BenchError(`${what}: received ${received.value} bytes, expected ${expected}`);
  }
  return seconds;
}

async function rawRound(
  chunk: Uint8Array,
  receiveBuffer: Uint8Array,
  total: number,
  timeoutMs: number,
): Promise<number> {
  using listener = Deno.listen({ hostname: HOST, port: 0 });
  const [sender, receiver] = await Promise.all([
    Deno.connect({ hostname: HOST, port: listener.addr.port }),
    listener.accept(),
  ]);
  using _sender = sender;
  using _receiver = receiver;
  const size = chunk.length;
  const short = chunk.subarray(0, tail(total, size));

  const send = async () => {
    for (let sent = 0; sent < total;) {
      const piece = total - sent >= size ? chunk : short;
      let offset = 0;
      while (offset < piece.length) {
        offset += await sender.write(offset === 0 ? piece : piece.subarray(offset));
      }
      sent += piece.length;
    }
    await sender.closeWrite();
  };
  const receive = async () => {
    let received = 0;
    for (;;) {
      const n = await receiver.read(receiveBuffer);
      if (n === null) return received;
      received += n;
    }
  };
  const abort = () => {
    for (const conn of [sender, receiver]) {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }
    return Promise.resolve();
  };
  try {
    return await timedTransfer(send, receive, abort, total, timeoutMs, "raw");
  } catch (error) {
    if (error instanceof BenchError) throw error;
    throw new BenchError(`raw: ${error instanceof Error ? error.message : String(error)}`);
  }
}

async function wskRound(
  chunk: Uint8Array,
  receiveBuffer: WskBuf,
  total: number,
  timeoutMs: number,
  backings: Set<string>,
): Promise<number> {
  const setup = { timeout: SETUP_TIMEOUT_MS };
  const provider = npi.Dispatch;
  const opened: (WskConnectionSocket | WskListenSocket)[] = [];
  const closeAll = async (checked: boolean) => {
    for (const socket of opened.splice(0)) {
      if (socket.state === "CLOSED") continue;
      // Both socket kinds' tables take their own socket; the union needs a hand here.
      const closed = await (socket.Dispatch.WskCloseSocket as (
        s: typeof socket,
      ) => Promise<WskCompletion>)(socket);
      if (checked) check(closed, "WskCloseSocket");
    }
  };
  try {
    const made = check(
      await provider.WskSocket(
        npi.Client,
        AF_INET,
        SOCK_STREAM,
        IPPROTO_TCP,
        WSK_FLAG_LISTEN_SOCKET,
      ),
      "WskSocket (listen)",
    );
    const listen = made.listenSocket!;
    opened.push(listen);
    const ld = listen.Dispatch;
    check(await ld.WskBind(listen, sockAddr(HOST, 0)), "WskBind (listen)");
    const local = check(await ld.WskGetLocalAddress(listen), "WskGetLocalAddress (listen)");

    const created = check(
      await provider.WskSocket(
        npi.Client,
        AF_INET,
        SOCK_STREAM,
        IPPROTO_TCP,
        WSK_FLAG_CONNECTION_SOCKET,
      ),
      "WskSocket (connection)",
    );
    const sender = created.socket!;
    opened.push(sender);
    const d = sender.Dispatch;
    check(await d.WskBind(sender, wildcard(AF_INET)), "WskBind (connection)");
    const [accepted, connected] = await Promise.all([
      ld.WskAccept(listen, 0, undefined, null, setup),
      d.WskConnect(sender, sockAddr(HOST, local.address!.port), 0, setup),
    ]);
    if (accepted.socket) opened.push(accepted.socket);
    check(accepted, "WskAccept");
    check(connected, "WskConnect");
    const receiver = accepted.socket!;
    backings.add(`sender ${sender.backing}, receiver ${receiver.backing}`);

    const size = chunk.length;
    const full = wskBuf(chunk);
    const short = wskBuf(chunk.subarray(0, tail(total, size)));
    const send = async () => {
      for (let sent = 0; sent < total;) {
        const buffer = total - sent >= size ? full : short;
        const done = check(await d.WskSend(sender, buffer), "WskSend");
        if (done.information !== buffer.Length) {
          throw new BenchError(`WskSend sent ${done.information} of ${buffer.Length} bytes`);
        }
        sent += buffer.Length;
      }
      check(await d.WskDisconnect(sender), "WskDisconnect");
    };
    const receive = async () => {
      let received = 0;
      for (;;) {
        const got = check(await d.WskReceive(receiver, receiveBuffer), "WskReceive");
        if (got.information === 0) return received;
        received += got.information;
      }
    };
    return await timedTransfer(send, receive, () => closeAll(false), total, timeoutMs, "wsk");
  } finally {
    await closeAll(true);
  }
}

// ---------------------------------------------------------------------------------------------
// Statistics and output

function stats(runs: number[]): Stats {
  const sorted = [...runs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, runs };
}

function formatSize(bytes: number): string {
  if (bytes >= GIB && bytes % GIB === 0) return `${bytes / GIB} GiB`;
  if (bytes >= MIB && bytes % MIB === 0) return `${bytes / MIB} MiB`;
  if (bytes >= KIB && bytes % KIB === 0) return `${bytes / KIB} KiB`;
  return `${bytes} B`;
}

const mbps = (n: number) => n.toFixed(1);

function table(options: Options, results: SizeResult[], backings: Set<string>): string {
  const header = ["buffer", "contender", "median MB/s", "min–max MB/s", "runs"];
  const rows: string[][] = [];
  for (const r of results) {
    for (const name of ["raw", "wsk"] as const) {
      const s = r[name];
      rows.push([
        formatSize(r.size),
        name,
        mbps(s.median),
        `${mbps(s.min)}–${mbps(s.max)}`,
        String(s.runs.length),
      ]);
    }
    rows.push(["", "wsk/raw", `${r.ratio.toFixed(3)}×`, "", ""]);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => i >= 2 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)).join("  ")
      .trimEnd();
  return [
    `provider overhead: ${formatSize(options.totalBytes)} per round over ${HOST}, ` +
    `${options.rounds} round(s) per contender, alternating raw/wsk`,
    `Deno ${Deno.version.deno}, V8 ${Deno.version.v8}, ${Deno.build.os}/${Deno.build.arch}; ` +
    `wsk backing: ${[...backings].join("; ")}`,
    "",
    line(header),
    line(widths.map((w) => "-".repeat(w))),
    ...rows.map(line),
  ].join("\n");
}

// ---------------------------------------------------------------------------------------------
// Main

async function run(options: Options): Promise<SizeResult[]> {
  const backings = new Set<string>();
  const progress = (text: string) => console.error(text);
  const results: SizeResult[] = [];
  for (const [index, size] of options.sizes.entries()) {
    const chunk = new Uint8Array(size);
    for (let i = 0; i < size; i++) chunk[i] = i & 0xff;
    const raw = new Uint8Array(size);
    const wsk = wskBuf(new Uint8Array(size));
    if (index === 0) {
      // Warm both paths up (JIT, first node:net or op loads) outside the measurements.
      const warm = Math.min(WARMUP_BYTES, options.totalBytes);
      await rawRound(chunk, raw, warm, options.timeoutMs);
      await wskRound(chunk, wsk, warm, options.timeoutMs, backings);
    }
    const runs: Record<Contender, number[]> = { raw: [], wsk: [] };
    for (let round = 1; round <= options.rounds; round++) {
      for (const contender of ["raw", "wsk"] as const) {
        const seconds = contender === "raw"
          ? await rawRound(chunk, raw, options.totalBytes, options.timeoutMs)
          : await wskRound(chunk, wsk, options.totalBytes, options.timeoutMs, backings);
        const rate = options.totalBytes / seconds / 1e6;
        runs[contender].push(rate);
        progress(
          `${formatSize(size).padStart(7)} ${contender} round ${round}/${options.rounds}: ` +
            `${mbps(rate)} MB/s (${seconds.toFixed(3)} s)`,
        );
      }
    }
    const rawStats = stats(runs.raw);
    const wskStats = stats(runs.wsk);
    results.push({ size, raw: rawStats, wsk: wskStats, ratio: wskStats.median / rawStats.median });
  }
  if (options.json) {
    console.log(JSON.stringify({
      unit: "MB/s (10^6 bytes/s)",
      bytesPerRound: options.totalBytes,
      rounds: options.rounds,
      quick: options.quick,
      deno: Deno.version.deno,
      v8: Deno.version.v8,
      platform: `${Deno.build.os}/${Deno.build.arch}`,
      wskBacking: [...backings],
      sizes: results.map((r) => ({
        bufferBytes: r.size,
        raw: r.raw,
        wsk: r.wsk,
        ratio: r.ratio,
      })),
    }));
  } else {
    console.log(table(options, results, backings));
  }
  return results;
}

if (import.meta.main) {
  let options: Options;
  try {
    options = parseOptions(Deno.args);
  } catch (error) {
    console.error(`error: ${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
    Deno.exit(2);
  }
  try {
    await run(options);
  } catch (error) {
    if (!(error instanceof BenchError)) throw error;
    console.error(`error: ${error.message}`);
    Deno.exit(1);
  }
}

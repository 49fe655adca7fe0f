/**
 * Scenario 9 (tls): N bytes of the verification pattern over TLS 1.3, each way, wsk against
 * `socat OPENSSL:` (socat's default 8 KiB buffer, as a user types it), contenders alternating.
 *
 * - send: `wsk send --pattern N --ca CA` and `socat -u OPEN:FILE OPENSSL:…,cafile=CA` (FILE
 *   holds the same N pattern bytes) into one TLS sink;
 * - receive: `wsk receive --ca CA` and `socat -u OPENSSL:…,cafile=CA -` from one TLS source,
 *   each writing to a file in memory (`/dev/shm` when there is one), compared with FILE once the
 *   round is over (a `cmp` reading a pipe beside them would take one of the two cores from the
 *   receiver and the source).
 *
 * The peer on the other end is the same python3 `ssl` program for both contenders (OpenSSL, 1
 * MiB reads and writes): a fresh one per round, serving one connection. It times the transfer
 * itself, from its TCP accept (so neither contender's start-up counts) to the end: as a sink
 * until the sender's EOF, having compared every byte with FILE; as a source until the receiver
 * closed after reading everything. A round counts only when the peer saw N intact bytes (sink)
 * or the receiver's output equals FILE (source), and every process exited 0.
 *
 * The throwaway CA and leaf come from `tests/_tls.ts` (openssl, at bench time).
 *
 * @module
 */

import { makeCerts } from "../tests/_tls.ts";
import { fillPattern, PATTERN_BLOCK } from "../engine/pattern.ts";
import { alternateRounds, BenchError, type Env, sizeArg, wskCmd } from "./_env.ts";
import { detail, Proc, shellQuote, sleep } from "./_proc.ts";
import { type Ratio, ratio, type Stats, stats } from "./_stats.ts";

/** The four contenders: two senders into the sink, two receivers from the source. */
export const TLS_CONTENDERS = [
  {
    id: "wsk send --tls",
    direction: "send",
    command: "wsk send 127.0.0.1:P --pattern N --ca ca.pem --no-progress",
  },
  {
    id: "socat → OPENSSL",
    direction: "send",
    command: "socat -u OPEN:pattern,rdonly OPENSSL:127.0.0.1:P,cafile=ca.pem",
  },
  {
    id: "wsk receive --tls",
    direction: "receive",
    command: "wsk receive 127.0.0.1:P --ca ca.pem --no-progress > out",
  },
  {
    id: "socat OPENSSL →",
    direction: "receive",
    command: "socat -u OPENSSL:127.0.0.1:P,cafile=ca.pem - > out",
  },
] as const;

/** Settings of the TLS scenario. */
export interface TlsBenchOptions {
  readonly bytes: number;
  readonly rounds: number;
  readonly timeoutMs: number;
}

/** What one contender measured over all rounds. */
export interface TlsContenderResult {
  readonly id: string;
  readonly direction: "send" | "receive";
  readonly command: string;
  readonly skipped: string | null;
  /** MB/s (10^6 bytes/s) per round as the python peer timed it, NaN for a failed round. */
  readonly mbps: Stats | null;
  readonly errors: readonly string[];
}

/** The TLS scenario's results. */
export interface TlsBenchResult {
  readonly bytes: number;
  readonly rounds: number;
  readonly peer: string;
  readonly contenders: readonly TlsContenderResult[];
  readonly ratios: readonly Ratio[];
}

const READY_TIMEOUT_MS = 15_000;

/**
 * The TLS peer. argv: MODE (sink | source) CERT KEY FILE N. Listens on 127.0.0.1 port 0, prints
 * the port, serves one connection with TLS and prints {"bytes", "seconds", "mismatch"} (the
 * first offset that differed from FILE, or -1). The clock starts at the TCP accept.
 */
const PEER = String.raw`
import json, mmap, socket, ssl, sys, time
mode, cert, key, path, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
srv.settimeout(60)
with open(path, "rb") as f:
    mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
print(srv.getsockname()[1], flush=True)
raw, _ = srv.accept()
t0 = time.perf_counter()
raw.settimeout(120)
conn = ctx.wrap_socket(raw, server_side=True)
step = 1 << 20
got, bad = 0, -1
if mode == "sink":
    buf = bytearray(step)
    view = memoryview(buf)
    while True:
        k = conn.recv_into(view)
        if k == 0:
            break
        if bad < 0 and (got + k > n or buf[:k] != mm[got:got + k]):
            bad = got
        got += k
else:
    data = memoryview(mm)
    while got < n:
        conn.sendall(data[got:min(n, got + step)])
        got += min(step, n - got)
    try:
        # close_notify, then wait for the receiver's close: it has read everything by then.
        plain = conn.unwrap()
        while plain.recv(65536):
            pass
    except (OSError, ssl.SSLError):
        pass
seconds = time.perf_counter() - t0
print(json.dumps({"bytes": got, "seconds": seconds, "mismatch": bad}), flush=True)
`;

/** /dev/shm when it is a directory (files there live in memory), else the default temp dir. */
async function memoryDir(): Promise<string | undefined> {
  try {
    return (await Deno.stat("/dev/shm")).isDirectory ? "/dev/shm" : undefined;
  } catch {
    return undefined;
  }
}

/** Writes the first `n` pattern bytes to `path`; returns it. */
async function writePattern(path: string, n: number): Promise<string> {
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  const block = new Uint8Array(PATTERN_BLOCK);
  for (let offset = 0; offset < n; offset += PATTERN_BLOCK) {
    const chunk = block.subarray(0, Math.min(PATTERN_BLOCK, n - offset));
    fillPattern(chunk, offset);
    for (let done = 0; done < chunk.length;) done += await file.write(chunk.subarray(done));
  }
  return path;
}

/** Files every round uses. */
interface Files {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
  readonly pattern: string;
  /** Where a receiver writes (in memory when /dev/shm exists). */
  readonly out: string;
}

/** The peer's report: the bytes it moved and its seconds; throws unless all N were intact. */
function peerReport(stdout: string, n: number): number {
  const last = stdout.trim().split("\n").at(-1) ?? "";
  let report: { bytes: number; seconds: number; mismatch: number };
  try {
    report = JSON.parse(last);
  } catch {
    throw new BenchError(`the TLS peer printed no report${detail({ stdout, stderr: "" })}`);
  }
  if (report.bytes !== n) throw new BenchError(`the TLS peer moved ${report.bytes} of ${n} bytes`);
  if (report.mismatch >= 0) {
    throw new BenchError(`the bytes differ from the pattern from offset ${report.mismatch}`);
  }
  return report.seconds;
}

/** The contender's command line for port `port`. */
function contenderCmd(env: Env, contender: number, port: number, files: Files, n: number) {
  const target = `127.0.0.1:${port}`;
  const socat = `OPENSSL:${target},cafile=${files.ca}`;
  const shell = (words: readonly string[]) => words.map(shellQuote).join(" ");
  switch (contender) {
    case 0:
      return wskCmd(env, [
        "send",
        target,
        "--pattern",
        sizeArg(n),
        "--ca",
        files.ca,
        "--no-progress",
      ]);
    case 1:
      return ["socat", "-u", `OPEN:${files.pattern},rdonly`, socat];
    case 2:
      return [
        "bash",
        "-c",
        `${shell(wskCmd(env, ["receive", target, "--ca", files.ca, "--no-progress"]))} > ${
          shellQuote(files.out)
        }`,
      ];
    default:
      return ["bash", "-c", `socat -u ${shellQuote(socat)} - > ${shellQuote(files.out)}`];
  }
}

/** Throws unless the file at `out` holds exactly the `n` bytes of the file at `pattern`. */
async function sameFile(out: string, pattern: string, n: number): Promise<void> {
  const size = (await Deno.stat(out)).size;
  if (size !== n) throw new BenchError(`the receiver wrote ${size} of ${n} bytes`);
  const cmp = await new Deno.Command("cmp", { args: [out, pattern], stdout: "piped" }).output();
  if (cmp.code !== 0) {
    throw new BenchError(
      `the received bytes differ: ${new TextDecoder().decode(cmp.stdout).trim()}`,
    );
  }
}

/** One round of one contender: the peer's seconds for the N bytes. */
async function tlsRound(
  env: Env,
  contender: number,
  files: Files,
  options: TlsBenchOptions,
): Promise<number> {
  const n = options.bytes;
  const mode = TLS_CONTENDERS[contender]!.direction === "send" ? "sink" : "source";
  const procs: Proc[] = [];
  try {
    const peer = new Proc(
      ["python3", "-u", "-c", PEER, mode, files.cert, files.key, files.pattern, String(n)],
      { timeoutMs: options.timeoutMs + READY_TIMEOUT_MS, cwd: env.root },
    );
    procs.push(peer);
    const port = await readyPort(peer);
    const client = new Proc(contenderCmd(env, contender, port, files, n), {
      timeoutMs: options.timeoutMs,
      cwd: env.root,
    });
    procs.push(client);
    for (const proc of procs.toReversed()) {
      const exit = await proc.wait();
      if (exit.timedOut) {
        throw new BenchError(`killed after ${options.timeoutMs} ms${detail(exit)}`);
      }
      if (exit.code !== 0) throw new BenchError(`a process exited ${exit.code}${detail(exit)}`);
    }
    const seconds = peerReport(peer.stdout, n);
    if (mode === "source") await sameFile(files.out, files.pattern, n);
    return seconds;
  } finally {
    for (const proc of procs) if (!proc.exited) await proc.kill();
  }
}

/** The port the python peer printed as its first line. */
async function readyPort(peer: Proc): Promise<number> {
  const deadline = performance.now() + READY_TIMEOUT_MS;
  for (;;) {
    const m = peer.stdout.match(/^(\d+)\n/);
    if (m) return Number(m[1]);
    if (peer.exited) {
      const exit = await peer.wait();
      throw new BenchError(`the TLS peer exited (${exit.code}) before listening${detail(exit)}`);
    }
    if (performance.now() > deadline) {
      throw new BenchError(`the TLS peer did not listen within ${READY_TIMEOUT_MS} ms`);
    }
    await sleep(5);
  }
}

/** Runs the scenario: the four contenders alternate within each round. */
export async function runTls(env: Env, options: TlsBenchOptions): Promise<TlsBenchResult> {
  const certs = await makeCerts();
  const memory = await memoryDir();
  const dir = await Deno.makeTempDir({
    prefix: "wsk-bench-tls-",
    ...(memory === undefined ? {} : { dir: memory }),
  });
  try {
    const files = {
      ca: certs.ca,
      cert: certs.cert,
      key: certs.key,
      pattern: await writePattern(`${dir}/pattern`, options.bytes),
      out: `${dir}/out`,
    };
    const skipped = (i: number) => i % 2 === 1 && !env.tools.socat ? "socat missing" : null;
    const { runs, errors } = await alternateRounds(
      env,
      "tls",
      TLS_CONTENDERS.map((c) => c.id),
      options,
      skipped,
      (contender) => tlsRound(env, contender, files, options),
    );
    const contenders = TLS_CONTENDERS.map((c, i) => ({
      id: c.id,
      direction: c.direction,
      command: c.command,
      skipped: skipped(i),
      mbps: stats(runs[i]!),
      errors: errors[i]!,
    }));
    const target = { direction: "atLeast", value: 1.0 } as const;
    return {
      bytes: options.bytes,
      rounds: options.rounds,
      peer: "python3 ssl (one connection per round, times from its accept)",
      contenders,
      ratios: [
        ratio(
          "wsk send --tls / socat",
          "TLS send into the same python3 sink",
          contenders[0]!.mbps,
          contenders[1]!.mbps,
          target,
        ),
        ratio(
          "wsk receive --tls / socat",
          "TLS receive from the same python3 source",
          contenders[2]!.mbps,
          contenders[3]!.mbps,
          target,
        ),
      ],
    };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await certs.remove().catch(() => {});
  }
}

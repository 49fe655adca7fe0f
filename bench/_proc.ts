/**
 * Child processes for the benchmark suite: every child is spawned with a deadline and killed with
 * its whole process tree when the deadline passes; its output is read as it comes (so a chatty
 * server never blocks on a full pipe), and listeners on fixed ports are awaited through
 * `/proc/net/tcp` rather than by connecting (a probe would use up a one-shot server's accept).
 *
 * Linux only: `/proc` is the source of process trees, listening ports and peak RSS.
 *
 * @module
 */

/** Milliseconds between looks at `/proc` while waiting. */
const POLL_MS = 5;
/** Bytes of each output stream kept for error messages (the tail). */
const KEEP_BYTES = 64 * 1024;
/** How the peak-RSS wrapper marks its line on stderr. */
const RSS_MARK = "WSKBENCH_MAXRSS_KB=";
/** GNU time, used to read the kernel's exact peak RSS of a child when present. */
export const GNU_TIME = "/usr/bin/time";

/** How a child ended. */
export interface Exit {
  /** Exit code (128 + n when killed by signal n, as the shell reports it). */
  readonly code: number;
  /** The signal that ended it, if any. */
  readonly signal: Deno.Signal | null;
  /** The deadline passed and the suite killed it. */
  readonly timedOut: boolean;
  /** Milliseconds from just before spawn to the exit being observed. */
  readonly ms: number;
  /** The tail of stdout (at most 64 KiB). */
  readonly stdout: string;
  /** The tail of stderr (at most 64 KiB), without the peak-RSS line. */
  readonly stderr: string;
  /** Peak RSS in KiB from the `/usr/bin/time` wrapper, when the child was wrapped. */
  readonly maxRssKiB: number | null;
}

/** Options of {@linkcode Proc}. */
export interface ProcOptions {
  /** Kill the process tree after this many milliseconds. */
  readonly timeoutMs: number;
  /** Working directory. */
  readonly cwd?: string;
  /** Give the child a stdin pipe (see {@linkcode Proc.writeLine}); default `/dev/null`. */
  readonly stdin?: boolean;
  /** Called with every complete stdout line, as it arrives. */
  readonly onLine?: (line: string) => void;
  /** Called with every complete stderr line, as it arrives. */
  readonly onStderr?: (line: string) => void;
}

/** Environment every child gets on top of the suite's own. */
const CHILD_ENV = { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" };

/** Keeps the last `KEEP_BYTES` characters of a stream and hands out complete lines. */
class Tail {
  #text = "";
  #partial = "";
  readonly #onLine: ((line: string) => void) | undefined;

  constructor(onLine?: (line: string) => void) {
    this.#onLine = onLine;
  }

  push(chunk: string): void {
    this.#text += chunk;
    if (this.#text.length > 2 * KEEP_BYTES) this.#text = this.#text.slice(-KEEP_BYTES);
    if (!this.#onLine) return;
    const lines = (this.#partial + chunk).split("\n");
    this.#partial = lines.pop() ?? "";
    for (const line of lines) this.#onLine(line);
  }

  end(): void {
    if (this.#onLine && this.#partial !== "") this.#onLine(this.#partial);
    this.#partial = "";
  }

  get text(): string {
    return this.#text.slice(-KEEP_BYTES);
  }
}

/** Milliseconds the output streams may stay open after the child exited (a grandchild kept them). */
const DRAIN_MS = 2_000;

/** Reads `stream` into `tail` until it ends or `cancel()` is called. */
function pump(
  stream: ReadableStream<Uint8Array>,
  tail: Tail,
): { done: Promise<void>; cancel: () => void } {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  const done = (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        tail.push(decoder.decode(value, { stream: true }));
      }
    } catch {
      // Cancelled, or the child was killed mid-write; what arrived is kept.
    }
    tail.push(decoder.decode());
    tail.end();
  })();
  return {
    done,
    cancel: () => {
      reader.cancel().catch(() => {});
    },
  };
}

/**
 * One child process: spawned at construction, bounded by `timeoutMs`, its output read as it
 * comes. `wait()` resolves once it exited and both output streams ended.
 */
export class Proc {
  readonly pid: number;
  readonly started: number;
  readonly #child: Deno.ChildProcess;
  readonly #stdout: Tail;
  readonly #stderr: Tail;
  readonly #done: Promise<Exit>;
  readonly #timer: ReturnType<typeof setTimeout>;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array> | null;
  #timedOut = false;
  #exited = false;

  constructor(cmd: readonly string[], options: ProcOptions) {
    const [program, ...args] = cmd;
    if (program === undefined) throw new TypeError("Proc: empty command");
    this.#stdout = new Tail(options.onLine);
    this.#stderr = new Tail(options.onStderr);
    this.started = performance.now();
    this.#child = new Deno.Command(program, {
      args,
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      env: CHILD_ENV,
      stdin: options.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.pid = this.#child.pid;
    this.#stdin = options.stdin ? this.#child.stdin.getWriter() : null;
    this.#timer = setTimeout(() => {
      this.#timedOut = true;
      killTree(this.pid, "SIGKILL");
    }, options.timeoutMs);
    const out = pump(this.#child.stdout, this.#stdout);
    const err = pump(this.#child.stderr, this.#stderr);
    this.#done = this.#child.status.then(async (status) => {
      const ms = performance.now() - this.started;
      this.#exited = true;
      clearTimeout(this.#timer);
      // A descendant that outlived the child may hold the pipes open: stop reading after a while.
      let drain: ReturnType<typeof setTimeout> | undefined;
      const drained = Promise.all([out.done, err.done]);
      await Promise.race([
        drained,
        new Promise<void>((resolve) => drain = setTimeout(resolve, DRAIN_MS)),
      ]);
      clearTimeout(drain);
      out.cancel();
      err.cancel();
      await drained;
      this.#stdin?.close().catch(() => {});
      const { stderr, maxRssKiB } = splitRss(this.#stderr.text);
      return {
        code: status.signal === null ? status.code : 128 + signalNumber(status.signal),
        signal: status.signal,
        timedOut: this.#timedOut,
        ms,
        stdout: this.#stdout.text,
        stderr,
        maxRssKiB,
      };
    });
  }

  /** Resolves when the child exited and its output was read. */
  wait(): Promise<Exit> {
    return this.#done;
  }

  /** Whether the child has exited. */
  get exited(): boolean {
    return this.#exited;
  }

  /** The stdout tail read so far. */
  get stdout(): string {
    return this.#stdout.text;
  }

  /** The stderr tail read so far. */
  get stderr(): string {
    return this.#stderr.text;
  }

  /** Writes one line to the child's stdin (only with `stdin: true`). */
  async writeLine(line: string): Promise<void> {
    if (!this.#stdin) throw new TypeError("Proc: the child has no stdin pipe");
    await this.#stdin.write(new TextEncoder().encode(`${line}\n`));
  }

  /** Sends `signal` to the child alone (a server's orderly stop). */
  signal(signal: Deno.Signal): void {
    if (this.#exited) return;
    try {
      Deno.kill(this.pid, signal);
    } catch {
      // It exited in the meantime.
    }
  }

  /** Kills the child and every descendant with SIGKILL, then waits for it. */
  async kill(): Promise<Exit> {
    if (!this.#exited) killTree(this.pid, "SIGKILL");
    return await this.#done;
  }

  /**
   * Stops the child with `signal`, waits up to `graceMs`, then kills the tree; descendants left
   * behind (a forking server's children) are killed too.
   */
  async stop(signal: Deno.Signal = "SIGTERM", graceMs = 3_000): Promise<Exit> {
    const tree = this.#exited ? [] : processTree(this.pid).slice(1).map((pid) => ({
      pid,
      started: startTime(pid),
    }));
    this.signal(signal);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((resolve) =>
      timer = setTimeout(() => resolve("late"), graceMs)
    );
    const first = await Promise.race([this.#done, late]);
    clearTimeout(timer);
    const exit = first === "late" ? await this.kill() : first;
    for (const { pid, started } of tree) {
      // Only the same process (its start time unchanged), never a recycled pid.
      if (started === null || startTime(pid) !== started) continue;
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // Gone, as it should be.
      }
    }
    return exit;
  }
}

const SIGNALS: Partial<Record<Deno.Signal, number>> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGABRT: 6,
  SIGKILL: 9,
  SIGSEGV: 11,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
};

function signalNumber(signal: Deno.Signal): number {
  return SIGNALS[signal] ?? 0;
}

/** Splits the `/usr/bin/time` line off a child's stderr. */
function splitRss(stderr: string): { stderr: string; maxRssKiB: number | null } {
  const index = stderr.lastIndexOf(RSS_MARK);
  if (index < 0) return { stderr, maxRssKiB: null };
  const value = Number.parseInt(stderr.slice(index + RSS_MARK.length), 10);
  return {
    stderr: stderr.slice(0, index),
    maxRssKiB: Number.isFinite(value) ? value : null,
  };
}

/** Prefix that makes `/usr/bin/time` report the peak RSS of `cmd` on stderr. */
export function withPeakRss(cmd: readonly string[]): string[] {
  return [GNU_TIME, "-f", `${RSS_MARK}%M`, ...cmd];
}

/** The direct children of `pid` (from every thread's `children` file). */
function childrenOf(pid: number): number[] {
  const found: number[] = [];
  try {
    for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
      try {
        const text = Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/children`).trim();
        if (text) found.push(...text.split(/\s+/).map(Number));
      } catch {
        // The thread ended.
      }
    }
  } catch {
    // The process ended.
  }
  return found;
}

/** The start time of a process (field 22 of `/proc/PID/stat`), null once it is gone. */
function startTime(pid: number): string | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // The command name (field 2) may hold spaces; the fields after it are counted from its ")".
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

/** `pid` and all its descendants, parents first. */
export function processTree(pid: number): number[] {
  const all = [pid];
  for (let i = 0; i < all.length && all.length < 10_000; i++) all.push(...childrenOf(all[i]!));
  return all;
}

/** Sends `signal` to `pid` and every descendant (collected first, so none is orphaned). */
export function killTree(pid: number, signal: Deno.Signal): void {
  const tree = processTree(pid);
  for (const each of tree.reverse()) {
    try {
      Deno.kill(each, signal);
    } catch {
      // Already gone.
    }
  }
}

/** Resident and peak resident set size of a live process, in KiB (null once it is gone). */
export function memoryOf(pid: number): { rssKiB: number; hwmKiB: number } | null {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const field = (name: string) =>
      Number(status.match(new RegExp(`^${name}:\\s+(\\d+)`, "m"))?.[1]);
    const rssKiB = field("VmRSS");
    const hwmKiB = field("VmHWM");
    if (!Number.isFinite(rssKiB) || !Number.isFinite(hwmKiB)) return null;
    return { rssKiB, hwmKiB };
  } catch {
    return null;
  }
}

/** One TCP socket of the kernel's tables: its local port and state (hex, e.g. 01 ESTABLISHED). */
export interface TcpEntry {
  readonly port: number;
  readonly state: string;
}

/** Every TCP socket in `/proc/net/tcp` and `/proc/net/tcp6` (a table that cannot be read is skipped). */
export function tcpEntries(): TcpEntry[] {
  const entries: TcpEntry[] = [];
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = Deno.readTextFileSync(file);
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      const port = Number.parseInt(fields[1]?.split(":")[1] ?? "", 16);
      if (Number.isFinite(port) && fields[3] !== undefined) {
        entries.push({ port, state: fields[3] });
      }
    }
  }
  return entries;
}

/** The local ports in TCP state LISTEN on loopback or the wildcard address (IPv4 and IPv6). */
function listeningPorts(): Set<number> {
  return new Set(tcpEntries().filter((entry) => entry.state === "0A").map((entry) => entry.port));
}

/** Every local port that has any TCP socket (any state), IPv4 and IPv6. */
function usedPorts(): Set<number> {
  return new Set(tcpEntries().map((entry) => entry.port));
}

/** Fixed ports for tools that cannot report theirs: 20000–29999, below the ephemeral range. */
const PORT_FIRST = 20_000;
const PORT_COUNT = 10_000;
let nextPort = PORT_FIRST + (Deno.pid * 7919) % PORT_COUNT;

/** A port from 20000–29999 that no TCP socket uses right now (rotating, so TIME_WAIT is avoided). */
export function freePort(): number {
  const used = usedPorts();
  for (let i = 0; i < PORT_COUNT; i++) {
    const port = nextPort;
    nextPort = PORT_FIRST + (nextPort - PORT_FIRST + 1) % PORT_COUNT;
    if (!used.has(port)) return port;
  }
  throw new Error("No free port in 20000-29999");
}

/** Resolves once `port` is in LISTEN state; rejects if `proc` exits first or after `timeoutMs`. */
export async function waitListening(proc: Proc, port: number, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (listeningPorts().has(port)) return;
    if (proc.exited) {
      const exit = await proc.wait();
      throw new Error(
        `the listener exited (code ${exit.code}) before listening on ${port}` +
          detail(exit),
      );
    }
    if (performance.now() > deadline) {
      throw new Error(`nothing listened on port ${port} within ${timeoutMs} ms`);
    }
    await sleep(POLL_MS);
  }
}

/** A short, single-line account of a child's stderr/stdout for an error message. */
export function detail(exit: Pick<Exit, "stdout" | "stderr">): string {
  const text = (exit.stderr.trim() || exit.stdout.trim()).split("\n").slice(-3).join(" | ");
  return text ? `: ${text.slice(0, 400)}` : "";
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Quotes `word` for `bash -c`. */
export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/** Whether `program` is on PATH (or an existing absolute path). */
export function which(program: string): string | null {
  if (program.startsWith("/")) return isFile(program) ? program : null;
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")) {
    const path = `${dir || "."}/${program}`;
    if (isFile(path)) return path;
  }
  return null;
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/**
 * The one child-process helper of the tests: {@linkcode Child} spawns a program (the CLI, a
 * python3 peer, a launcher such as `sh -c` in front of either), collects its output as it comes,
 * reads it a line at a time within deadlines, writes to its stdin, and stops it on dispose.
 * {@linkcode runProcess} is the one-shot form: run to the end, return the exit code and output.
 * This module imports nothing from the other helpers, so every helper can build on it.
 *
 * @module
 */

/** UTF-8 helpers. */
export const text = {
  encode: (s: string): Uint8Array => new TextEncoder().encode(s),
  decode: (b: Uint8Array): string => new TextDecoder().decode(b),
};

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves to `promise`'s value, or rejects after `ms`; the timer never outlives the call. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// Reading a stream in the background

/** Reads a stream to its end in the background; lines can be awaited with a bound. */
export class Collector {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #chunks: Uint8Array[] = [];
  #length = 0;
  #finished = false;
  #waiters = new Set<() => void>();
  /** Settles once the stream ended (or was cancelled). */
  readonly done: Promise<void>;

  /** Starts reading `stream` at once. */
  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
    this.done = this.#pump();
  }

  async #pump(): Promise<void> {
    try {
      for (;;) {
        const { value, done } = await this.#reader.read();
        if (done) break;
        this.#chunks.push(value);
        this.#length += value.length;
        for (const wake of [...this.#waiters]) wake();
      }
    } catch {
      // Cancelled.
    } finally {
      this.#finished = true;
      for (const wake of [...this.#waiters]) wake();
    }
  }

  /** Every byte read so far. */
  bytes(): Uint8Array {
    const out = new Uint8Array(this.#length);
    let offset = 0;
    for (const chunk of this.#chunks) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
    return out;
  }

  /** Every byte read so far, as UTF-8. */
  text(): string {
    return text.decode(this.bytes());
  }

  /** Complete lines so far. */
  lines(): string[] {
    const all = this.text().split("\n");
    all.pop();
    return all;
  }

  /** Resolves with the first defined result of `find`, checked whenever data arrives. */
  waitFor<T>(find: () => T | undefined, ms: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const finish = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      const check = () => {
        let found: T | undefined;
        try {
          found = find();
        } catch (error) {
          finish();
          reject(error);
          return;
        }
        if (found !== undefined) {
          finish();
          resolve(found);
        } else if (this.#finished) {
          finish();
          reject(new Error(`${what}: the stream ended first; got ${JSON.stringify(this.text())}`));
        }
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`${what}: not within ${ms} ms; got ${JSON.stringify(this.text())}`));
      }, ms);
      this.#waiters.add(check);
      check();
    });
  }

  /** Stops reading (if the stream is still open) and waits for the reader to finish. */
  async cancel(): Promise<void> {
    if (!this.#finished) await this.#reader.cancel().catch(() => {});
    await this.done;
  }
}

// ---------------------------------------------------------------------------------------------
// A child process

/** How {@linkcode Child} starts a program. */
export interface ChildOptions {
  /** "piped" lets the test write to the child (write, writeLine, closeStdin); default "null". */
  readonly stdin?: "null" | "piped";
  /**
   * "collect" (default) reads stdout as it comes; "held" leaves it unread (a pipe that fills up)
   * until {@linkcode Child.closeStdout} or {@linkcode Child.heldStdout}.
   */
  readonly stdout?: "collect" | "held";
  /** Added to the test's environment. */
  readonly env?: Record<string, string>;
  /** The child's working directory. */
  readonly cwd?: string;
  /** A launcher and its arguments, with the program and its arguments following them. */
  readonly via?: readonly string[];
  /**
   * On dispose, after stdin is closed: how long the child may take to exit by itself before it
   * is killed (default 0: killed at once).
   */
  readonly graceMs?: number;
}

/**
 * A spawned program whose stdout and stderr are collected as they come. `await using` stops it:
 * with `graceMs`, stdin is closed and the child gets that long to exit; then SIGKILL.
 */
export class Child implements AsyncDisposable {
  /** What the child wrote to stderr so far. */
  readonly stderr: Collector;
  readonly #child: Deno.ChildProcess;
  readonly #stdout: Collector | null;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array> | null;
  readonly #graceMs: number;
  #exited = false;
  #nextLine = 0;

  /** Spawns `program` with `args` (behind `options.via` if given). */
  constructor(program: string, args: readonly string[], options: ChildOptions = {}) {
    const [command, ...rest] = [...(options.via ?? []), program, ...args];
    this.#child = new Deno.Command(command!, {
      args: rest,
      stdin: options.stdin ?? "null",
      stdout: "piped",
      stderr: "piped",
      ...(options.env ? { env: options.env } : {}),
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    }).spawn();
    this.#child.status.then(() => this.#exited = true);
    this.#stdin = options.stdin === "piped" ? this.#child.stdin.getWriter() : null;
    this.#stdout = options.stdout === "held" ? null : new Collector(this.#child.stdout);
    this.stderr = new Collector(this.#child.stderr);
    this.#graceMs = options.graceMs ?? 0;
  }

  /** What the child wrote to stdout so far (not with `stdout: "held"`). */
  get stdout(): Collector {
    if (!this.#stdout) throw new Error("this child's stdout is held, not collected");
    return this.#stdout;
  }

  /** The unread stdout of a child started with `stdout: "held"`. */
  heldStdout(): ReadableStream<Uint8Array> {
    if (this.#stdout) throw new Error("this child's stdout is collected, not held");
    return this.#child.stdout;
  }

  /** Closes the reading end of a held stdout (once; later calls do nothing). */
  async closeStdout(): Promise<void> {
    if (!this.#stdout && !this.#child.stdout.locked) await this.#child.stdout.cancel();
  }

  /** Whether the child is still running. */
  get running(): boolean {
    return !this.#exited;
  }

  /** The child's process id. */
  get pid(): number {
    return this.#child.pid;
  }

  /**
   * The next complete stdout line not yet returned by this method (without its newline), within
   * `ms`; the error names `what` and shows stderr.
   */
  async nextLine(ms = 10_000, what = "a line"): Promise<string> {
    const index = this.#nextLine;
    const line = await this.lineAt(index, ms, what);
    this.#nextLine = index + 1;
    return line;
  }

  /** Stdout line number `index` (from 0), once it is complete, within `ms`. */
  async lineAt(index: number, ms = 10_000, what = `line ${index + 1}`): Promise<string> {
    const stdout = this.stdout;
    try {
      return await stdout.waitFor(() => stdout.lines()[index], ms, what);
    } catch (error) {
      throw new Error(`${error}; stderr: ${this.stderr.text()}`, { cause: error });
    }
  }

  /** Writes `data` (a string as UTF-8) to the child's stdin. */
  async write(data: string | Uint8Array): Promise<void> {
    if (!this.#stdin) throw new Error("this child was started without stdin");
    await this.#stdin.write(typeof data === "string" ? text.encode(data) : data);
  }

  /** Writes one line to the child's stdin. */
  writeLine(line: string): Promise<void> {
    return this.write(line + "\n");
  }

  /** Closes the child's stdin; a child that is gone already is no error. */
  async closeStdin(): Promise<void> {
    await this.#stdin?.close().catch(() => {});
  }

  /** Sends `signal` to the child. */
  kill(signal: Deno.Signal): void {
    this.#child.kill(signal);
  }

  /** Sends SIGKILL unless the child is gone already. */
  #killHard(): void {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // It exited meanwhile.
    }
  }

  /** The child's status, once it exited within `ms` (all of its output then collected). */
  async status(ms = 15_000, what = "the child's exit"): Promise<Deno.CommandStatus> {
    const status = await within(this.#child.status, ms, what);
    await this.#stdout?.done;
    await this.stderr.done;
    return status;
  }

  /** The exit code, once the child exited by itself within `ms`. */
  async exitCode(ms = 15_000): Promise<number> {
    return (await this.status(ms)).code;
  }

  /**
   * Stops the child: with a grace time, closes its stdin and lets it exit by itself within that
   * time; then kills it if it still runs, and stops reading.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.running && this.#graceMs > 0) {
      const exited = this.closeStdin().then(() => this.#child.status);
      await within(exited, this.#graceMs, "exit").catch(() => {});
    }
    if (this.running) this.#killHard();
    await this.#child.status;
    await this.closeStdin();
    await this.closeStdout();
    await this.#stdout?.cancel();
    await this.stderr.cancel();
  }
}

/** What a finished process produced. */
export interface ProcessResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly stdoutBytes: Uint8Array;
}

/**
 * Runs `program` to its end: `stdin` is written and closed; `timeoutMs` (default 30 s) kills a
 * run that hangs (the test then fails on the exit code, 137 or similar).
 */
export async function runProcess(
  program: string,
  args: readonly string[],
  options: Omit<ChildOptions, "stdin" | "stdout" | "graceMs"> & {
    stdin?: Uint8Array | string;
    timeoutMs?: number;
  } = {},
): Promise<ProcessResult> {
  const { stdin, timeoutMs = 30_000, ...spawn } = options;
  await using child = new Child(program, args, {
    ...spawn,
    stdin: stdin === undefined ? "null" : "piped",
  });
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }, timeoutMs);
  let status: Deno.CommandStatus;
  try {
    if (stdin !== undefined) {
      try {
        await child.write(stdin);
      } catch {
        // The program may exit before reading all of its input (usage errors).
      }
      await child.closeStdin();
    }
    status = await child.status(timeoutMs + 10_000, "the run");
  } finally {
    clearTimeout(timer);
  }
  return {
    code: status.code,
    stdout: child.stdout.text(),
    stderr: child.stderr.text(),
    stdoutBytes: child.stdout.bytes(),
  };
}

// deno-lint-ignore-file no-console
/**
 * The client side of scenario 4 (many connections), run by `bench/suite.ts` as its own process so
 * the server under test and the clients never share an event loop.
 *
 * - `echo`: N clients start at once; each connects, sends BYTES of its own slice of a byte
 *   pattern, half-closes, reads the echo until the server's FIN and compares every byte. At most
 *   PENDING clients (default 256) are between their connect and the first byte of their echo, so
 *   no more than that wait in the server's accept queue: Deno listens with a backlog of 511, and a
 *   burst past it makes Linux drop SYNs that come back only after a 1 s retransmit, which would
 *   time the kernel's timer instead of the server. One JSON line:
 *   `{"event":"echo","clients","ok","errors","bytesVerified","ms","connectionsPerSecond",
 *   "samples"}` (`samples`: the first few error messages).
 * - `idle`: opens N connections with at most CONCURRENCY connects in flight and sends nothing,
 *   then prints `{"event":"opened","clients","ok","errors","ms","samples"}` and holds them until a
 *   line arrives on stdin; then half-closes each, waits for the server's FIN, closes, and prints
 *   `{"event":"closed","ok","errors","ms","samples"}`.
 *
 * Usage:
 *
 * ```sh
 * deno run --allow-net=127.0.0.1 bench/clients.ts echo --port P [--clients 1000] [--bytes 65536] \
 *   [--pending 256]
 * deno run --allow-net=127.0.0.1 bench/clients.ts idle --port P [--clients 10000] \
 *   [--concurrency 200]
 * ```
 *
 * Every phase is bounded by `--timeout MS` (default 60000): when it passes, every open connection
 * is closed and the stragglers count as errors. Exit 0 when every client succeeded, 1 otherwise,
 * 2 for bad flags.
 *
 * @module
 */

import { parseArgs } from "node:util";

const HOST = "127.0.0.1";
/** How many error messages a report carries. */
const SAMPLES = 5;

interface Options {
  readonly mode: "echo" | "idle";
  readonly port: number;
  readonly clients: number;
  readonly bytes: number;
  readonly concurrency: number;
  readonly pending: number;
  readonly timeoutMs: number;
}

function positiveInteger(name: string, text: string, max = Number.MAX_SAFE_INTEGER): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new TypeError(`--${name}: "${text}" is not an integer from 1 to ${max}`);
  }
  return value;
}

function parseOptions(args: string[]): Options {
  const { values, positionals } = parseArgs({
    args,
    options: {
      port: { type: "string" },
      clients: { type: "string", default: "1000" },
      bytes: { type: "string", default: "65536" },
      concurrency: { type: "string", default: "200" },
      pending: { type: "string", default: "256" },
      timeout: { type: "string", default: "60000" },
    },
    strict: true,
    allowPositionals: true,
  });
  const mode = positionals[0];
  if (positionals.length !== 1 || (mode !== "echo" && mode !== "idle")) {
    throw new TypeError(`expected one mode, "echo" or "idle", got "${positionals.join(" ")}"`);
  }
  if (values.port === undefined) throw new TypeError("--port is required");
  return {
    mode,
    port: positiveInteger("port", values.port, 65535),
    clients: positiveInteger("clients", values.clients),
    bytes: positiveInteger("bytes", values.bytes, 1 << 30),
    concurrency: positiveInteger("concurrency", values.concurrency),
    pending: positiveInteger("pending", values.pending),
    timeoutMs: positiveInteger("timeout", values.timeout),
  };
}

/** Counts outcomes and keeps the first few error messages. */
class Tally {
  ok = 0;
  errors = 0;
  readonly samples: string[] = [];

  fail(what: string, error: unknown): void {
    this.errors++;
    if (this.samples.length < SAMPLES) {
      this.samples.push(`${what}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}

/** Every connection still open, so a deadline can close them all. */
const open = new Set<Deno.Conn>();

function closeQuietly(conn: Deno.Conn): void {
  open.delete(conn);
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

/** Runs `work` and closes every open connection if `ms` passes first. */
async function bounded<T>(ms: number, work: Promise<T>): Promise<T> {
  const timer = setTimeout(() => {
    for (const conn of [...open]) closeQuietly(conn);
  }, ms);
  try {
    return await work;
  } finally {
    clearTimeout(timer);
  }
}

/** A counting semaphore: at most `size` holders at a time, the rest wait in order. */
class Gate {
  #free: number;
  readonly #waiting: (() => void)[] = [];

  constructor(size: number) {
    this.#free = size;
  }

  async enter(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return;
    }
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
  }

  leave(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#free++;
  }
}

/**
 * Reads until the peer's FIN and checks the bytes against `expected` (an idle connection expects
 * none). `onFirst` runs once, when the first byte or the FIN arrives.
 */
async function readToEnd(
  conn: Deno.Conn,
  expected: Uint8Array | null,
  onFirst: () => void = () => {},
): Promise<void> {
  const buffer = new Uint8Array(Math.max(expected?.length ?? 0, 4096) + 1);
  let got = 0;
  let first = true;
  for (;;) {
    if (got === buffer.length) throw new Error(`more than ${expected?.length ?? 0} bytes back`);
    const n = await conn.read(buffer.subarray(got));
    if (first) {
      first = false;
      onFirst();
    }
    if (n === null) break;
    got += n;
  }
  const want = expected?.length ?? 0;
  if (got !== want) throw new Error(`${got} of ${want} bytes came back`);
  if (expected) {
    for (let i = 0; i < want; i++) {
      if (buffer[i] !== expected[i]) throw new Error(`byte ${i} differs`);
    }
  }
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let offset = 0; offset < data.length;) offset += await conn.write(data.subarray(offset));
}

async function echo(options: Options): Promise<boolean> {
  // One pattern; client i sends the slice starting at i % 251, so a crossed stream is caught.
  const pattern = new Uint8Array(options.bytes + 251);
  for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 7 + (i >> 8)) & 0xff;
  const tally = new Tally();
  const gate = new Gate(options.pending);
  const client = async (index: number) => {
    const payload = pattern.subarray(index % 251, index % 251 + options.bytes);
    let conn: Deno.Conn | null = null;
    let gated = true;
    const leave = () => {
      if (gated) gate.leave();
      gated = false;
    };
    await gate.enter();
    try {
      conn = await Deno.connect({ hostname: HOST, port: options.port });
      open.add(conn);
      const c = conn;
      await Promise.all([
        writeAll(c, payload).then(() => c.closeWrite()),
        readToEnd(c, payload, leave),
      ]);
      tally.ok++;
    } catch (error) {
      tally.fail(`client ${index}`, error);
    } finally {
      leave();
      if (conn) closeQuietly(conn);
    }
  };
  const start = performance.now();
  await bounded(
    options.timeoutMs,
    Promise.all(Array.from({ length: options.clients }, (_, i) => client(i))),
  );
  const ms = performance.now() - start;
  console.log(JSON.stringify({
    event: "echo",
    clients: options.clients,
    ok: tally.ok,
    errors: tally.errors,
    bytesVerified: tally.ok * options.bytes,
    ms,
    connectionsPerSecond: options.clients / (ms / 1000),
    samples: tally.samples,
  }));
  return tally.errors === 0;
}

async function idle(options: Options): Promise<boolean> {
  const conns: Deno.Conn[] = [];
  const opened = new Tally();
  let next = 0;
  const opener = async () => {
    while (next < options.clients) {
      const index = next++;
      try {
        const conn = await Deno.connect({ hostname: HOST, port: options.port });
        open.add(conn);
        conns.push(conn);
        opened.ok++;
      } catch (error) {
        opened.fail(`connect ${index}`, error);
      }
    }
  };
  let start = performance.now();
  await bounded(
    options.timeoutMs,
    Promise.all(Array.from({ length: Math.min(options.concurrency, options.clients) }, opener)),
  );
  console.log(JSON.stringify({
    event: "opened",
    clients: options.clients,
    ok: opened.ok,
    errors: opened.errors,
    ms: performance.now() - start,
    samples: opened.samples,
  }));

  // Hold them until the suite says so (a line, or the end of stdin).
  const reader = Deno.stdin.readable.getReader();
  await reader.read();
  reader.releaseLock();

  const closed = new Tally();
  start = performance.now();
  await bounded(
    options.timeoutMs,
    Promise.all(conns.map(async (conn, index) => {
      try {
        await conn.closeWrite();
        await readToEnd(conn, null);
        closed.ok++;
      } catch (error) {
        closed.fail(`close ${index}`, error);
      } finally {
        closeQuietly(conn);
      }
    })),
  );
  console.log(JSON.stringify({
    event: "closed",
    ok: closed.ok,
    errors: closed.errors,
    ms: performance.now() - start,
    samples: closed.samples,
  }));
  return opened.errors === 0 && closed.errors === 0;
}

if (import.meta.main) {
  let options: Options;
  try {
    options = parseOptions(Deno.args);
  } catch (error) {
    console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
    Deno.exit(2);
  }
  const ok = options.mode === "echo" ? await echo(options) : await idle(options);
  Deno.exitCode = ok ? 0 : 1;
}

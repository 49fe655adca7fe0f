/**
 * The one python3 peer helper: {@linkcode PythonPeer} runs a behaviour script
 * (`python3 -u -c SCRIPT ...args`) as a {@linkcode Child} and waits until the script says it is
 * ready, so no test races python's start-up (a pyenv shim takes 0.3–0.5 s). Scripts that listen
 * start with {@linkcode PY_LISTEN} or {@linkcode PY_ONE_CONNECTION} and differ only in what they
 * do with their connections.
 *
 * @module
 */

import { Child } from "./_child.ts";

/**
 * The start of a listening peer script: it listens on the loopback address in argv[1]
 * ("127.0.0.1" or "::1") port 0 as `srv` (backlog 8, a 20 s accept timeout) and prints that port
 * as its first line (its ready line). `host` is argv[1], `args` the arguments after it; the
 * modules json, os, socket, struct, sys and time are imported.
 */
export const PY_LISTEN = String.raw`
import json, os, socket, struct, sys, time
host, args = sys.argv[1], sys.argv[2:]
srv = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
srv.bind((host, 0))
srv.listen(8)
srv.settimeout(20)
print(srv.getsockname()[1], flush=True)
`;

/**
 * {@linkcode PY_LISTEN}, then the one connection it serves: `conn` (20 s timeout) from `addr`;
 * the listener is closed.
 */
export const PY_ONE_CONNECTION = PY_LISTEN + String.raw`
conn, addr = srv.accept()
srv.close()
conn.settimeout(20)
`;

/**
 * A client peer. argv: SOURCE HOST PORT HEX HOW. It binds SOURCE port 0 (so the loopback source
 * address can be chosen, e.g. 127.0.0.2) and prints {"port": N}, its ready line; with PORT "-"
 * it then reads the server's port as a line on stdin. It connects to HOST:PORT, sends HEX, then:
 *   close   half-closes and reads until EOF or a reset
 *   hold    reads until EOF or a reset without half-closing
 *   reset   prints {"sent": N}, waits for a line on stdin, then resets (SO_LINGER 0)
 * and last prints {"data": hex received, "end": "eof" | "reset" | "sent-reset" | "timeout"}.
 */
export const PY_CLIENT = String.raw`
import json, socket, struct, sys
source, host, port, payload, how = sys.argv[1:4] + [bytes.fromhex(sys.argv[4]), sys.argv[5]]
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
s.settimeout(10)
s.bind((source, 0))
# The port is known before connecting: a reset may already come back from connect().
print(json.dumps({"port": s.getsockname()[1]}), flush=True)
port = int(sys.stdin.readline() if port == "-" else port)
data, end = b"", "eof"
try:
    s.connect((host, port))
    s.sendall(payload)
    if how == "reset":
        print(json.dumps({"sent": len(payload)}), flush=True)
        sys.stdin.readline()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        end = "sent-reset"
    else:
        if how == "close":
            s.shutdown(socket.SHUT_WR)
        while chunk := s.recv(65536):
            data += chunk
except (ConnectionResetError, BrokenPipeError):
    end = "reset"
except socket.timeout:
    end = "timeout"
print(json.dumps({"data": data.hex(), "end": end}), flush=True)
`;

/** What a {@linkcode PY_CLIENT} saw: the bytes it received (hex) and how its connection ended. */
export interface ClientReport {
  readonly data: string;
  readonly end: "eof" | "reset" | "sent-reset" | "timeout";
}

/** What a {@linkcode PY_CLIENT} does once connected and has sent its payload. */
export type ClientHow = "close" | "hold" | "reset";

/** How a {@linkcode PythonPeer} starts. */
export interface PythonOptions {
  /** Keep python's stdin open for {@linkcode Child.writeLine} until dispose. */
  readonly stdin?: boolean;
  /**
   * What python's first line is: "port" (default: a bare number or `{"port": N}`, the port it
   * bound), "line" (any line: read it with {@linkcode PythonPeer.ready}), or "none" (no ready
   * line: a script that only runs to its end).
   */
  readonly ready?: "port" | "line" | "none";
  /** How long the ready line may take (default 30 s). */
  readonly readyMs?: number;
  /**
   * On dispose, how long python may take to exit after its stdin closed (default 5 s with
   * `stdin`, else 0: a peer that was not told to stop is killed at once).
   */
  readonly graceMs?: number;
}

/**
 * A python3 peer: a behaviour script started and ready. Lines after the ready line are read
 * with {@linkcode Child.nextLine} (or {@linkcode PythonPeer.json}); `report()` is the first of
 * them, as JSON. Dispose closes stdin, gives python its grace time to exit, then kills it.
 */
export class PythonPeer<Report = unknown> extends Child {
  /**
   * Starts a {@linkcode PY_CLIENT} from `source` to `host`:`port` (`null`: the port is written
   * to its stdin later) that sends the bytes of `hexPayload`; ready once it is bound, so its
   * `port` (and `address`) is its own.
   */
  static client(
    source: string,
    host: string,
    port: number | null,
    hexPayload: string,
    how: ClientHow,
  ): Promise<PythonPeer<ClientReport>> {
    const args = [source, host, port === null ? "-" : String(port), hexPayload, how];
    return PythonPeer.start<ClientReport>(PY_CLIENT, args, {
      stdin: port === null || how === "reset",
    });
  }

  /** The script's first argument: for a listener, the loopback host it listens on. */
  readonly host: string;
  #ready = "";
  #port = 0;

  private constructor(script: string, args: readonly string[], options: PythonOptions) {
    super("python3", ["-u", "-c", script, ...args], {
      stdin: options.stdin ? "piped" : "null",
      graceMs: options.graceMs ?? (options.stdin ? 5000 : 0),
    });
    this.host = args[0] ?? "";
  }

  /**
   * Starts `script` with `args` and waits for its ready line (see {@linkcode PythonOptions}).
   * A listener made of {@linkcode PY_LISTEN} takes the host as its first argument.
   */
  static async start<Report = unknown>(
    script: string,
    args: readonly string[] = [],
    options: PythonOptions = {},
  ): Promise<PythonPeer<Report>> {
    const python = new PythonPeer<Report>(script, args, options);
    const ready = options.ready ?? "port";
    if (ready === "none") return python;
    try {
      python.#ready = await python.nextLine(options.readyMs ?? 30_000, "python's ready line");
      if (ready === "port") {
        const first: unknown = JSON.parse(python.#ready);
        const port = typeof first === "number" ? first : (first as { port?: unknown }).port;
        if (typeof port !== "number") throw new Error(`no port in python's first line: ${first}`);
        python.#port = port;
      }
    } catch (error) {
      await python[Symbol.asyncDispose]();
      throw error;
    }
    return python;
  }

  /** Python's ready line, as it printed it. */
  get ready(): string {
    return this.#ready;
  }

  /** The port python listens on (from its ready line). */
  get port(): number {
    return this.#port;
  }

  /** The listening address as the CLI prints it: `127.0.0.1:N` or `[::1]:N`. */
  get address(): string {
    return this.host.includes(":") ? `[${this.host}]:${this.#port}` : `${this.host}:${this.#port}`;
  }

  /** The next line python prints, parsed as JSON, within `ms`. */
  async json<T = Report>(ms = 15_000): Promise<T> {
    return JSON.parse(await this.nextLine(ms, "a JSON line from python")) as T;
  }

  /** Writes one command line to python and returns its answer: the next line, as JSON. */
  async ask<T = Report>(command: string, ms = 20_000): Promise<T> {
    await this.writeLine(command);
    return await this.json<T>(ms);
  }

  /**
   * The first line after the ready line (the peer's report), as JSON; waits `ms` for it. The
   * same line each time, however many lines were read with nextLine().
   */
  async report(ms = 15_000): Promise<Report> {
    return JSON.parse(await this.lineAt(1, ms, "python peer report")) as Report;
  }
}

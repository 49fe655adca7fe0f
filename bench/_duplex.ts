/**
 * Scenario 6 (full duplex): N bytes through `wsk send --receive` against an echo server, against
 * `nc -N` through the same server, rounds alternating. The client reads the echo while it sends,
 * so neither side may stall.
 *
 * The echo server is a python3 program that reads 256 KiB at a time, sends each read back, and
 * half-closes at EOF: on this machine it is the fastest echo at hand (measured for 256 MiB with
 * `nc -N`: python 236 MiB/s, `socat … PIPE` 154, `socat … EXEC:cat` 107), so the ratio says
 * most about the clients. A fresh server serves each round's one connection and prints the bytes
 * it echoed. Every byte is counted: the client's stdout goes through `wc -c`, the server reports
 * its count, both must equal N, and every process must exit 0.
 *
 * @module
 */

import { alternateRounds, BenchError, type Env, wskCmd } from "./_env.ts";
import { detail, freePort, Proc, shellQuote, waitListening } from "./_proc.ts";
import { type Ratio, ratio, type Stats, stats } from "./_stats.ts";

/** The two clients. */
export const DUPLEX_CLIENTS = [
  {
    id: "wsk send --receive",
    command: "head -c N /dev/zero | wsk send 127.0.0.1:P --receive | wc -c",
  },
  { id: "nc -N", command: "head -c N /dev/zero | nc -N 127.0.0.1 P | wc -c" },
] as const;

/** Settings of the duplex scenario. */
export interface DuplexOptions {
  readonly bytes: number;
  readonly rounds: number;
  readonly timeoutMs: number;
}

/** What one client measured over all rounds. */
export interface DuplexClientResult {
  readonly id: string;
  readonly command: string;
  readonly skipped: string | null;
  /** MB/s (10^6 bytes/s, bytes one way) per round, NaN for a failed round. */
  readonly mbps: Stats | null;
  readonly errors: readonly string[];
}

/** The duplex scenario's results. */
export interface DuplexResult {
  readonly bytes: number;
  readonly rounds: number;
  readonly server: string;
  readonly clients: readonly DuplexClientResult[];
  readonly ratios: readonly Ratio[];
}

const LISTEN_TIMEOUT_MS = 15_000;

/** argv[1]: the port. Echoes one connection, half-closes at EOF, prints the bytes echoed. */
const ECHO_SERVER = `
import socket, sys
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(1)
conn, _ = srv.accept()
srv.close()
n = 0
while data := conn.recv(262144):
    conn.sendall(data)
    n += len(data)
conn.shutdown(socket.SHUT_WR)
conn.close()
print(n, flush=True)
`;

/** One round of one client: seconds from the client's spawn to its exit. */
async function duplexRound(env: Env, client: number, options: DuplexOptions): Promise<number> {
  const n = options.bytes;
  const port = freePort();
  const server = new Proc(["python3", "-c", ECHO_SERVER, String(port)], {
    timeoutMs: options.timeoutMs + LISTEN_TIMEOUT_MS,
  });
  let sender: Proc | null = null;
  try {
    await waitListening(server, port, LISTEN_TIMEOUT_MS);
    const cmd = client === 0
      ? wskCmd(env, ["send", `127.0.0.1:${port}`, "--receive", "--no-progress"]).map(shellQuote)
        .join(" ")
      : `nc -N 127.0.0.1 ${port}`;
    sender = new Proc(["bash", "-c", `head -c ${n} /dev/zero | ${cmd} | wc -c`], {
      timeoutMs: options.timeoutMs,
      cwd: env.root,
    });
    const exit = await sender.wait();
    const echoed = await server.wait();
    if (exit.timedOut) throw new BenchError(`killed after ${options.timeoutMs} ms${detail(exit)}`);
    if (exit.code !== 0) throw new BenchError(`exited ${exit.code}${detail(exit)}`);
    if (echoed.code !== 0) throw new BenchError(`the echo server exited ${echoed.code}`);
    const got = Number(exit.stdout.trim());
    const served = Number(echoed.stdout.trim());
    if (got !== n || served !== n) {
      throw new BenchError(`bytes: sent ${n}, echoed ${served}, received back ${got}`);
    }
    return exit.ms / 1000;
  } finally {
    for (const proc of [sender, server]) {
      if (proc && !proc.exited) await proc.kill();
    }
  }
}

/** Runs the scenario: the clients alternate within each round. */
export async function runDuplex(env: Env, options: DuplexOptions): Promise<DuplexResult> {
  const skipped = env.tools.nc ? null : "nc missing";
  const { runs, errors } = await alternateRounds(
    env,
    "duplex",
    DUPLEX_CLIENTS.map((c) => c.id),
    options,
    (client) => client === 1 ? skipped : null,
    (client) => duplexRound(env, client, options),
  );
  const clients = DUPLEX_CLIENTS.map((c, i) => ({
    id: c.id,
    command: c.command,
    skipped: i === 1 ? skipped : null,
    mbps: stats(runs[i]!),
    errors: errors[i]!,
  }));
  return {
    bytes: options.bytes,
    rounds: options.rounds,
    server: "python3 echo (256 KiB reads, half-close at EOF), one per round",
    clients,
    ratios: [
      ratio(
        "wsk send --receive / nc -N",
        "full duplex through the same echo server",
        clients[0]!.mbps,
        clients[1]!.mbps,
        { direction: "atLeast", value: 0.8 },
      ),
    ],
  };
}

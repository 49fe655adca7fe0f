// deno-lint-ignore-file no-console
/**
 * What a real RST costs, for each way wsk can send one (issue 10's candidates), in one run:
 *
 * 1. Receive path: 1 GiB from `socat -b 262144` (256 KiB blocks, so socat is not the limit) into `wsk accept --mode discard` on the default deno
 *    backing without `--allow-ffi` (aborts close with FIN), the same with `--allow-ffi` (aborts
 *    reset through libc), and `--backing node` (aborts reset through node:net). Rounds
 *    alternate; each figure is the WskReceive line's own time (accept to the peer's FIN).
 * 2. Abort itself: WskDisconnect(WSK_FLAG_ABORTIVE) on a deno-backed socket with --allow-ffi
 *    (a descriptor scan, then connect(AF_UNSPEC)) and on a node-backed one (resetAndDestroy),
 *    with 1, 1,000 and 4,000 other connections open (the scan walks the open descriptors).
 *
 * Run: `deno run --allow-all bench/abort.ts [--smoke]`. Loopback only; every child is killed on
 * timeout.
 *
 * @module
 */

import {
  AF_INET,
  IPPROTO_TCP,
  SOCK_STREAM,
  sockAddr,
  wildcard,
  WSK_FLAG_ABORTIVE,
  WSK_FLAG_CONNECTION_SOCKET,
  WskCaptureProviderNPI,
  type WskConnectionSocket,
} from "../provider/mod.ts";
import { formatStats, stats } from "./_stats.ts";
import { freePort, sleep, tcpEntries } from "./_proc.ts";

const smoke = Deno.args.includes("--smoke");
const ROOT = new URL("..", import.meta.url).pathname;
const SIZE = smoke ? 8 << 20 : 1 << 30;
const ROUNDS = smoke ? 1 : 5;
const OPEN_COUNTS = smoke ? [1, 100] : [1, 1000, 4000];
const ABORTS = smoke ? 3 : 20;
const CHILD_LIMIT_MS = 60_000;

/** One receive: wsk accept with `extra` flags fed SIZE bytes by socat; the WskReceive time. */
async function receiveOnce(permissions: string[], extra: string[]): Promise<number> {
  const port = freePort();
  const server = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-read",
      "--allow-write",
      ...permissions,
      `${ROOT}main.ts`,
      "accept",
      `127.0.0.1:${port}`,
      "--mode",
      "discard",
      ...extra,
    ],
    stdout: "piped",
    stderr: "piped",
    env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
  }).spawn();
  const timer = setTimeout(() => server.kill("SIGKILL"), CHILD_LIMIT_MS);
  try {
    // Wait until it listens (the kernel's table, not a probe: accept would take the probe).
    const deadline = performance.now() + CHILD_LIMIT_MS;
    while (!tcpEntries().some((e) => e.port === port && e.state === "0A")) {
      if (performance.now() > deadline) throw new Error(`nothing listened on ${port}`);
      await sleep(20);
    }
    const sender = await new Deno.Command("socat", {
      args: ["-b", "262144", "-u", `OPEN:/dev/zero,readbytes=${SIZE}`, `TCP:127.0.0.1:${port}`],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!sender.success) throw new Error(new TextDecoder().decode(sender.stderr));
    const out = await server.output();
    const text = new TextDecoder().decode(out.stdout);
    const line = text.split("\n").find((l) => l.startsWith("WskReceive ") && l.includes("bytes="));
    const bytes = Number(/ bytes=(\d+)/.exec(line ?? "")?.[1]);
    const ms = Number(/ time=([\d.]+)ms/.exec(line ?? "")?.[1]);
    if (bytes !== SIZE) throw new Error(`received ${bytes} of ${SIZE}: ${text}`);
    return ms;
  } finally {
    clearTimeout(timer);
  }
}

async function receivePaths(): Promise<void> {
  const contenders: [string, string[], string[]][] = [
    ["deno backing, no --allow-ffi (aborts: FIN)", [], []],
    ["deno backing, --allow-ffi (aborts: RST via libc)", ["--allow-ffi"], []],
    ["node backing (aborts: RST via node:net)", [], ["--backing", "node"]],
  ];
  const runs = contenders.map(() => [] as number[]);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, [, permissions, extra]] of contenders.entries()) {
      runs[i]!.push(await receiveOnce(permissions, extra));
    }
  }
  console.log(`\n1. Receive ${SIZE >> 20} MiB from socat into accept --mode discard`);
  console.log(`   (${ROUNDS} alternating rounds; WskReceive time, ms: median (min–max); MB/s)`);
  for (const [i, [name]] of contenders.entries()) {
    const s = stats(runs[i]!);
    const rate = s ? (SIZE / 1e6 / (s.median / 1000)).toFixed(0) : "—";
    console.log(`   ${name.padEnd(50)} ${formatStats(s)}  ${rate} MB/s`);
  }
}

async function connectedPair(
  listener: Deno.TcpListener,
  backing: "deno" | "node",
): Promise<{ socket: WskConnectionSocket; peer: Deno.TcpConn }> {
  const npi = WskCaptureProviderNPI();
  const made = await npi.Dispatch.WskSocket(
    npi.Client,
    AF_INET,
    SOCK_STREAM,
    IPPROTO_TCP,
    WSK_FLAG_CONNECTION_SOCKET,
    undefined,
    null,
    { backing },
  );
  if (!made.socket) throw new Error(`WskSocket: ${made.message}`);
  const socket = made.socket;
  await socket.Dispatch.WskBind(socket, wildcard(AF_INET));
  const connecting = socket.Dispatch.WskConnect(socket, sockAddr("127.0.0.1", listener.addr.port));
  const peer = await listener.accept();
  await connecting;
  return { socket, peer };
}

async function abortCost(): Promise<void> {
  console.log("\n2. WskDisconnect(WSK_FLAG_ABORTIVE), µs per call: median (min–max)");
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  for (const open of OPEN_COUNTS) {
    const others: Deno.Conn[] = [];
    for (let i = 0; i < open; i++) {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
      others.push(c, await listener.accept());
    }
    const row: string[] = [];
    for (const backing of ["deno", "node"] as const) {
      const times: number[] = [];
      for (let i = 0; i < ABORTS; i++) {
        const { socket, peer } = await connectedPair(listener, backing);
        const start = performance.now();
        await socket.Dispatch.WskDisconnect(socket, null, WSK_FLAG_ABORTIVE);
        times.push((performance.now() - start) * 1000);
        if (socket.peerSaw !== "RST") throw new Error(`${backing}: peer saw ${socket.peerSaw}`);
        await socket.Dispatch.WskCloseSocket(socket);
        peer.close();
      }
      row.push(`${backing}: ${formatStats(stats(times), 0)}`);
    }
    console.log(`   ${String(open).padStart(5)} other connections open   ${row.join("   ")}`);
    for (const c of others) c.close();
  }
}

if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
  console.error("bench/abort.ts needs --allow-ffi (run it with --allow-all)");
  Deno.exit(2);
}
await receivePaths();
await abortCost();

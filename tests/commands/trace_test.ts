// Seeing the bytes: `--hex` dumps on stderr (formatter tables and the spawned CLI against python3
// peers) and `--progress` (absent in pipes and with --json, present when asked for, and drawn by
// default on a terminal, which a python3 pty provides).

import assert from "node:assert/strict";
import { formatHexDump, HexTrace } from "../../report/trace.ts";
import { formatBytes } from "../../report/progress.ts";
import { CLI_ENV, cliCommand, hex, runCli, text } from "../_helpers.ts";
import { runProcess } from "../_child.ts";
import { PY_ONE_CONNECTION, PythonPeer } from "../_python.ts";

const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// The formatter

Deno.test("formatHexDump() writes a header and hexdump -C rows tagged with the direction", () => {
  const cases: { args: Parameters<typeof formatHexDump>; expected: string[] }[] = [
    {
      args: [">", 1, 0, text.encode("PING\r\n")],
      expected: [
        "> socket=1 offset=0 length=6",
        "> 00000000  50 49 4e 47 0d 0a                                 |PING..|",
      ],
    },
    {
      // Row offsets continue the stream offset; bytes outside 0x20-0x7E show as ".".
      args: [
        "<",
        2,
        6,
        new Uint8Array([...text.encode("0123456789abcdefXYZ"), 0x00, 0x7f, 0x20, 0xff]),
      ],
      expected: [
        "< socket=2 offset=6 length=23",
        "< 00000006  30 31 32 33 34 35 36 37  38 39 61 62 63 64 65 66  |0123456789abcdef|",
        "< 00000016  58 59 5a 00 7f 20 ff                              |XYZ.. .|",
      ],
    },
    {
      args: ["<", 3, 0x1000, new Uint8Array(16).fill(0x41)],
      expected: [
        "< socket=3 offset=4096 length=16",
        "< 00001000  41 41 41 41 41 41 41 41  41 41 41 41 41 41 41 41  |AAAAAAAAAAAAAAAA|",
      ],
    },
    { args: [">", 1, 0, new Uint8Array()], expected: ["> socket=1 offset=0 length=0"] },
  ];
  for (const { args, expected } of cases) assert.deepEqual(formatHexDump(...args), expected);
});

Deno.test("HexTrace keeps one offset per socket and direction, and skips empty chunks", () => {
  const lines: string[] = [];
  const trace = new HexTrace((line) => lines.push(line));
  trace.dump(">", 1, text.encode("ab"));
  trace.dump("<", 1, text.encode("c"));
  trace.dump(">", 2, text.encode("d"));
  trace.dump(">", 1, new Uint8Array());
  trace.dump(">", 1, text.encode("e"));
  assert.deepEqual(lines.filter((line) => line.includes("socket=")), [
    "> socket=1 offset=0 length=2",
    "< socket=1 offset=0 length=1",
    "> socket=2 offset=0 length=1",
    "> socket=1 offset=2 length=1",
  ]);
});

Deno.test("formatBytes() uses binary units", () => {
  const cases = [
    { input: 0, expected: "0 B" },
    { input: 1023, expected: "1023 B" },
    { input: 1024, expected: "1.0 KiB" },
    { input: 8 * MiB, expected: "8.0 MiB" },
    { input: 1000 * MiB, expected: "1000.0 MiB" },
    { input: 1024 * MiB, expected: "1.00 GiB" },
  ];
  for (const { input, expected } of cases) assert.equal(formatBytes(input), expected);
});

// ---------------------------------------------------------------------------------------------
// Peers

/**
 * argv: HOST MODE HEX…. PY_ONE_CONNECTION on HOST; for its one client:
 * - reply HEX: read until EOF, send HEX, close;
 * - source HEX HEX…: send each part 200 ms apart, half-close, read until EOF;
 * - sink: read until EOF.
 * Then prints {"received": "<hex>" (first 64 KiB), "bytes": N}.
 */
const PEER = PY_ONE_CONNECTION + String.raw`
mode, parts = args[0], [bytes.fromhex(p) for p in args[1:]]
def read_all():
    head, n = b"", 0
    try:
        while data := conn.recv(1 << 20):
            head += data[:65536 - len(head)]
            n += len(data)
    except OSError:  # the CLI reset the connection
        pass
    return head, n
if mode == "source":
    for i, part in enumerate(parts):
        if i:
            time.sleep(0.2)
        conn.sendall(part)
    conn.shutdown(socket.SHUT_WR)
head, n = read_all()
if mode == "reply":
    conn.sendall(parts[0])
conn.close()
print(json.dumps({"received": head.hex(), "bytes": n}), flush=True)
`;

interface Seen {
  readonly received: string;
  readonly bytes: number;
}

function peer(mode: "reply" | "source" | "sink", ...parts: string[]) {
  return PythonPeer.start<Seen>(PEER, ["127.0.0.1", mode, ...parts.map(hex)]);
}

/** The lines of `output` that belong to a hex dump. */
function dumpLines(output: string): string[] {
  return output.split("\n").filter((line) => line.startsWith("> ") || line.startsWith("< "));
}

/** The lines of `output` that are status lines. */
function statusLines(output: string): string[] {
  return output.split("\n").filter((line) => line.startsWith("Wsk"));
}

// ---------------------------------------------------------------------------------------------
// --hex

Deno.test("send --hex dumps what was sent (>) and the reply (<) on stderr, never on stdout", async () => {
  await using p = await PythonPeer.start<Seen>(PEER, ["127.0.0.1", "reply", "2b504f4e470d0a"]);
  const result = await runCli([
    "send",
    p.address,
    "--data",
    String.raw`PING\r\n`,
    "--receive",
    "--hex",
  ]);
  assert.deepEqual(await p.report(), { received: "50494e470d0a", bytes: 6 });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, "+PONG\r\n");
  assert.deepEqual(dumpLines(result.stderr), [
    "> socket=1 offset=0 length=6",
    "> 00000000  50 49 4e 47 0d 0a                                 |PING..|",
    "< socket=1 offset=0 length=7",
    "< 00000000  2b 50 4f 4e 47 0d 0a                              |+PONG..|",
  ]);
  // Status lines and dump lines are the whole of stderr.
  const lines = result.stderr.trimEnd().split("\n");
  assert.equal(lines.length, statusLines(result.stderr).length + 4);
});

Deno.test("receive --hex dumps each chunk with the stream offset carried on", async () => {
  await using p = await peer("source", "hello ", "world!");
  const result = await runCli(["receive", p.address, "--hex", "--output", "-"]);
  await p.report();
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, "hello world!");
  assert.deepEqual(dumpLines(result.stderr), [
    "< socket=1 offset=0 length=6",
    "< 00000000  68 65 6c 6c 6f 20                                 |hello |",
    "< socket=1 offset=6 length=6",
    "< 00000006  77 6f 72 6c 64 21                                 |world!|",
  ]);
});

Deno.test("receive --hex keeps stdout for status lines when the data goes to no output", async () => {
  await using p = await peer("source", "hi");
  const result = await runCli(["receive", p.address, "--hex", "--json", "--verify-pattern", "0"]);
  await p.report();
  // Two bytes where none were expected: the check fails, the dump still shows them.
  assert.equal(result.code, 1);
  assert.deepEqual(result.stderr.trimEnd().split("\n"), [
    "< socket=1 offset=0 length=2",
    "< 00000000  68 69                                             |hi|",
  ]);
  for (const line of result.stdout.trimEnd().split("\n")) JSON.parse(line);
});

Deno.test("without --hex nothing is dumped", async () => {
  await using p = await peer("source", "hello");
  const result = await runCli(["receive", p.address]);
  await p.report();
  assert.equal(result.code, 0);
  assert.equal(result.stdout, "hello");
  assert.deepEqual(dumpLines(result.stderr), []);
  assert.equal(statusLines(result.stderr).length, result.stderr.trimEnd().split("\n").length);
});

// ---------------------------------------------------------------------------------------------
// --progress

Deno.test("--progress is absent in pipes by default, even for an 8 MiB transfer", async () => {
  await using p = await peer("sink");
  const result = await runCli(["send", p.address, "--pattern", "8M"]);
  assert.equal((await p.report()).bytes, 8 * MiB);
  assert.equal(result.code, 0);
  assert.equal(result.stderr, "");
  assert.equal(statusLines(result.stdout).length, 7);
});

Deno.test("--progress given in a pipe writes plain progress lines to stderr", async () => {
  await using p = await peer("sink");
  const result = await runCli(["send", p.address, "--pattern", "8M", "--progress"]);
  assert.equal((await p.report()).bytes, 8 * MiB);
  assert.equal(result.code, 0);
  const lines = result.stderr.trimEnd().split("\n");
  assert.match(lines[0]!, /^sent \[-{20}\] 0% 0 B of 8\.0 MiB 0 B\/s 0s$/);
  assert.match(
    lines.at(-1)!,
    /^sent \[={20}\] 100% 8\.0 MiB of 8\.0 MiB \d+(\.\d+)? [KMG]iB\/s \d+s$/,
  );
  assert.ok(!result.stderr.includes("\x1b"), "no terminal controls off a terminal");
  assert.equal(statusLines(result.stdout).length, 7);
});

Deno.test("--progress with --json is a usage error; --no-progress is accepted", async () => {
  const refused = await runCli(["send", "127.0.0.1:1", "--pattern", "1M", "--progress", "--json"]);
  assert.equal(
    refused.stderr,
    'error: Cannot use "--progress" with "--json": progress is for terminals\n',
  );
  assert.equal(refused.code, 2);
  await using p = await peer("source", "x");
  const quiet = await runCli(["receive", p.address, "--no-progress", "--json", "--output", "-"]);
  await p.report();
  assert.equal(quiet.code, 0);
  assert.equal(quiet.stdout, "x");
  for (const line of quiet.stderr.trimEnd().split("\n")) JSON.parse(line);
});

/**
 * argv: COMMAND ARGS…. Runs the command on a new pseudo-terminal (stdin, stdout and stderr all
 * on it) and prints {"code": N, "output": "<everything it wrote>"}.
 */
const ON_A_TTY = String.raw`
import json, os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
out = b""
while True:
    try:
        data = os.read(fd, 65536)
    except OSError:
        break
    if not data:
        break
    out += data
_, status = os.waitpid(pid, 0)
print(json.dumps({"code": os.waitstatus_to_exitcode(status), "output": out.decode("utf-8", "replace")}))
`;

/** Runs wsk on a pseudo-terminal; its exit code and all it wrote (stdout and stderr mixed). */
async function runOnTty(args: string[]): Promise<{ code: number; output: string }> {
  const out = await runProcess("python3", ["-c", ON_A_TTY, Deno.execPath(), ...cliCommand(args)], {
    env: CLI_ENV,
  });
  assert.equal(out.code, 0, out.stderr);
  return JSON.parse(out.stdout);
}

Deno.test("--progress is drawn by default on a terminal for a transfer over 1 MiB", async () => {
  await using p = await peer("sink");
  const { code, output } = await runOnTty(["send", p.address, "--pattern", "8M"]);
  assert.equal((await p.report()).bytes, 8 * MiB);
  assert.equal(code, 0, output);
  assert.match(output, /sent \[={20}\] 100% 8\.0 MiB of 8\.0 MiB \d+(\.\d+)? [KMG]iB\/s \d+s/);
  // The bar is redrawn in place (carriage control), and ends before the next status line.
  assert.ok(output.includes("\x1b[1G"), JSON.stringify(output.slice(0, 400)));
  assert.match(output, /\r\nWskSend STATUS_SUCCESS /);
});

Deno.test("no progress on a terminal for a small transfer or with --no-progress", async () => {
  for (const args of [["--pattern", "1M"], ["--pattern", "8M", "--no-progress"]]) {
    await using p = await peer("sink");
    const { code, output } = await runOnTty(["send", p.address, ...args]);
    await p.report();
    assert.equal(code, 0, output);
    assert.ok(!output.includes("sent ["), `${args.join(" ")}: ${JSON.stringify(output)}`);
    assert.match(output, /WskSend STATUS_SUCCESS /);
  }
});

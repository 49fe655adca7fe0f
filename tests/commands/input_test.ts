/**
 * Bad input found before any socket, and output that cannot reach a terminal raw: invalid UTF-8
 * on the command line and in scripts, bad steps of `wsk run`, and control bytes (ESC, BEL, NUL,
 * DEL, C1) from arguments, scripts and received data, which every line must show escaped.
 *
 * Bytes that are not UTF-8 cannot be put in a `Deno.Command` argument (it takes strings), so
 * those runs go through `sh`, which passes the bytes `printf` made.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type CliResult, runCli, text } from "../_helpers.ts";

/** A remote that would refuse at once if a bug let a bad command line through to a connect. */
const REMOTE = "127.0.0.1:9";

/** Control characters no output line may carry raw (a line's own newline aside). */
// deno-lint-ignore no-control-regex -- finding control characters is the point
const RAW_CONTROL = /[\x00-\x09\x0b-\x1f\x7f-\x9f]/;

/**
 * Runs the CLI with `args` and then one more argument: the bytes of `printfFormat` as
 * `printf` writes them (octal escapes make bytes that are not UTF-8).
 */
function runWithRawArgument(args: string[], printfFormat: string): Promise<CliResult> {
  return runCli(args, {
    via: ["sh", "-c", 'exec "$@" "$(printf "$WSK_FORMAT")"', "sh"],
    env: { WSK_FORMAT: printfFormat },
    timeoutMs: 20_000,
  });
}

/** Exit 2, nothing on stdout (no socket line), one error line on stderr; returns that line. */
function usageLine(result: CliResult): string {
  const context = `\nstdout: ${JSON.stringify(result.stdout)}\nstderr: ${
    JSON.stringify(result.stderr)
  }`;
  assert.equal(result.code, 2, `exit code ${result.code}${context}`);
  assert.equal(result.stdout, "", `stdout must be empty${context}`);
  assert.ok(result.stderr.endsWith("\n"), `no final newline${context}`);
  const lines = result.stderr.slice(0, -1).split("\n");
  assert.equal(lines.length, 1, `expected one stderr line${context}`);
  assert.ok(lines[0]!.startsWith("error: "), context);
  assert.doesNotMatch(lines[0]!, RAW_CONTROL, `a raw control character${context}`);
  return lines[0]!;
}

const HINT = "write such bytes as \\xNN (U+FFFD itself as \\xEF\\xBF\\xBD)";

for (
  const [what, args] of [
    ["send --data", ["send", REMOTE, "--data"]],
    ["connectex --data", ["connectex", REMOTE, "--data"]],
    ["disconnect --data", ["disconnect", REMOTE, "--data"]],
    ["accept --reply", ["accept", "127.0.0.1:0", "--mode", "reply", "--reply"]],
  ] as const
) {
  Deno.test(`${what} with bytes that are not UTF-8 exits 2 before any socket with a \\xNN hint`, async () => {
    const result = await runWithRawArgument([...args], "caf\\351 \\377");
    const line = usageLine(result);
    assert.ok(line.includes("U+FFFD"), line);
    assert.ok(line.includes(HINT), line);
  });
}

Deno.test("send --data with \\xEF\\xBF\\xBD is the way to send a real U+FFFD (the hint works)", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const accepted = (async () => {
      const conn = await listener.accept();
      const chunks: number[] = [];
      const buf = new Uint8Array(64);
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        chunks.push(...buf.subarray(0, n));
      }
      conn.close();
      return new Uint8Array(chunks);
    })();
    const result = await runCli([
      "send",
      `127.0.0.1:${listener.addr.port}`,
      "--data",
      "caf\\xEF\\xBF\\xBD",
    ], { timeoutMs: 20_000 });
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.deepEqual(await accepted, new Uint8Array([0x63, 0x61, 0x66, 0xef, 0xbf, 0xbd]));
  } finally {
    listener.close();
  }
});

/** Runs `wsk run -` with `script` on standard input. */
function runScript(script: string | Uint8Array, ...options: string[]): Promise<CliResult> {
  return runCli(["run", "-", ...options], { stdin: script, timeoutMs: 20_000 });
}

Deno.test("wsk run names the line of bytes that are not UTF-8 and opens nothing", async () => {
  const script = new Uint8Array([
    ...text.encode(`socketconnect ${REMOTE}\n# a comment\nsend "caf`),
    0xe9,
    ...text.encode('"\nclosesocket\n'),
  ]);
  const line = usageLine(await runScript(script));
  assert.match(line, /^error: line 3: invalid UTF-8 \(byte 0xe9 at offset \d+\); /, line);
});

for (
  const [what, step, reason] of [
    ["--timeout 0 on a step", "send --timeout 0 x", "expected milliseconds from 1 to 2147483647"],
    [
      "a timeout past the timer range",
      "receive --timeout 2147483648",
      "expected milliseconds from 1 to 2147483647",
    ],
    ["a literal U+FFFD in data", 'send "caf\uFFFD"', HINT],
    ["the remote port 0", "connect --socket other 127.0.0.1:0", "port 0 cannot be reached"],
    [
      "connectex data over 65,535 bytes",
      `connectex --socket other ${REMOTE} "\\x00${"a".repeat(65535)}"`,
      "65536 bytes; WskConnectEx sends at most 65535",
    ],
  ] as const
) {
  Deno.test(`wsk run refuses ${what} on its line before any socket opens`, async () => {
    const line = usageLine(await runScript(`socketconnect ${REMOTE}\n\n${step}\n`));
    assert.ok(line.startsWith("error: line 3: "), line);
    assert.ok(line.includes(reason), line);
  });
}

Deno.test("wsk run with --timeout 0 for the whole script exits 2 before any socket", async () => {
  const line = usageLine(await runScript(`socketconnect ${REMOTE}\n`, "--timeout", "0"));
  assert.ok(line.includes("expected milliseconds from 1 to 2147483647"), line);
});

// ---------------------------------------------------------------------------------------------
// Control bytes in output

/** ESC, BEL, DEL and C1 (an argument cannot hold NUL; scripts add it). */
const NASTY = "\x1b[2J\x1b]0;owned\x07\x7f\u009b31m";
const NASTY_ESCAPED = "\\x1b[2J\\x1b]0;owned\\x07\\x7f\\x9b31m";

Deno.test("a bad address with ESC, BEL, DEL and C1 is quoted escaped on one line", async () => {
  const line = usageLine(await runCli(["connect", `${NASTY}:80`], { timeoutMs: 20_000 }));
  assert.ok(line.includes(NASTY_ESCAPED), line);
});

Deno.test("a bad --data escape with a newline and ESC in it stays one escaped line", async () => {
  const line = usageLine(
    await runCli(["send", REMOTE, "--data", `a\nb${NASTY}\\q`], { timeoutMs: 20_000 }),
  );
  assert.ok(line.includes(`a\\nb${NASTY_ESCAPED}\\q`), line);
});

Deno.test("an unknown command made of control bytes is escaped (commander's own error)", async () => {
  const line = usageLine(await runCli([`x${NASTY}`], { timeoutMs: 20_000 }));
  assert.ok(line.includes(`x${NASTY_ESCAPED}`), line);
});

Deno.test("a script step of control bytes is echoed escaped in its syntax error", async () => {
  const line = usageLine(await runScript(`socketconnect ${REMOTE}\nsend${NASTY}\x00 x\n`));
  assert.ok(line.startsWith("error: line 2: "), line);
  assert.ok(line.includes(`${NASTY_ESCAPED}\\x00`), line);
});

Deno.test("a script path with control bytes is shown escaped in its error line", async () => {
  const result = await runCli(["run", `/nonexistent/${NASTY}.wsk`], { timeoutMs: 20_000 });
  const line = usageLine(result);
  assert.ok(line.includes(NASTY_ESCAPED), line);
});

/** A one-connection loopback server that sends `reply` and closes; closed on dispose. */
function replyServer(reply: string): Deno.TcpListener & AsyncDisposable & { done: Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const done = (async () => {
    const conn = await listener.accept();
    await conn.write(text.encode(reply));
    conn.close();
  })();
  return Object.assign(listener, {
    done,
    async [Symbol.asyncDispose]() {
      listener.close();
      await done.catch(() => {});
    },
  });
}

for (const json of [false, true]) {
  Deno.test(
    `an expectation of DEL and C1 text is shown escaped in the ${json ? "JSON" : "human"} line`,
    async () => {
      await using server = replyServer("hi");
      const script = `socketconnect 127.0.0.1:${server.addr.port}\n` +
        `receive --expect "\x7f\u009b\x1b"\nclosesocket\n`;
      const result = await runScript(script, ...(json ? ["--json"] : []));
      assert.equal(result.code, 3, result.stdout + result.stderr);
      assert.doesNotMatch(result.stdout, RAW_CONTROL);
      assert.doesNotMatch(result.stderr, RAW_CONTROL);
      const expect = result.stdout.split("\n").find((line) => line.includes("Expect"));
      assert.ok(expect, result.stdout);
      assert.ok(expect.includes('"\\u007f\\u009b\\u001b"'), expect);
      // Still valid JSON meaning the same text.
      if (json) assert.equal(JSON.parse(expect).expected, "\x7f\u009b\x1b");
    },
  );
}

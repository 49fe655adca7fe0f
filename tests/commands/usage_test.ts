/**
 * Usage errors of the spawned CLI: every bad input exits 2 with one `error: …` line on stderr
 * that quotes what was wrong, nothing on stdout (so no socket was opened), and no stack trace.
 * Also `--help` of every command, `-V`, and `wsk` without arguments.
 *
 * @module
 */

import assert from "node:assert/strict";
import { CLI_ENV, type CliResult, runCli } from "../_helpers.ts";
import { runProcess } from "../_child.ts";
import { VERSION } from "../../main.ts";
import { DISPATCH_CALLS } from "./_peer.ts";

/** A bad command line and what its error line must say. */
interface BadInput {
  /** What is wrong, for the test name. */
  readonly what: string;
  readonly args: string[];
  /** Texts the error line must quote (in single or double quotes): the bad value. */
  readonly quoted: string[];
  /** A part of the explanation the line must carry. */
  readonly reason: string;
}

/** A remote that would refuse at once if a bug let a bad command line through to a connect. */
const REMOTE = "127.0.0.1:9";

const BAD_INPUTS: readonly BadInput[] = [
  // Addresses.
  {
    what: "an address without a port",
    args: ["connect", "127.0.0.1"],
    quoted: ["127.0.0.1"],
    reason: "a port is required",
  },
  {
    what: "port 65536",
    args: ["connect", "127.0.0.1:65536"],
    quoted: ["65536"],
    reason: "expected an integer from 0 to 65535",
  },
  {
    what: "port -1",
    args: ["connect", "127.0.0.1:-1"],
    quoted: ["-1"],
    reason: "expected an integer from 0 to 65535",
  },
  {
    what: 'port "abc"',
    args: ["connect", "127.0.0.1:abc"],
    quoted: ["abc"],
    reason: "expected an integer from 0 to 65535",
  },
  {
    what: 'port "+80"',
    args: ["getlocaladdress", "127.0.0.1:+80"],
    quoted: ["+80"],
    reason: "expected an integer from 0 to 65535",
  },
  {
    what: "an IPv6 address with its closing bracket missing",
    args: ["connect", "[::1"],
    quoted: ["[::1"],
    reason: "missing ']'",
  },
  {
    what: "an unbracketed IPv6 address",
    args: ["connect", "::1:80"],
    quoted: ["::1:80"],
    reason: "needs brackets",
  },
  {
    what: "an IPv4 address in brackets",
    args: ["connect", "[127.0.0.1]:80"],
    quoted: ["[127.0.0.1]:80"],
    reason: "not an IPv6 literal",
  },
  {
    what: "a bracketed IPv6 address without the colon before the port",
    args: ["socketconnect", "[::1]80"],
    quoted: ["[::1]80"],
    reason: "expected [IPV6]:PORT",
  },
  {
    what: "a bracketed IPv6 address with an empty port",
    args: ["connect", "[::1]:"],
    quoted: ["[::1]:"],
    reason: "the port is missing",
  },
  {
    what: "IPv4 octet 999",
    args: ["connect", "999.1.1.1:80"],
    quoted: ["999.1.1.1:80"],
    reason: "not a valid IPv4 or IPv6 literal",
  },
  {
    what: "an IPv4 address of three parts",
    args: ["connect", "1.2.3:80"],
    quoted: ["1.2.3:80"],
    reason: "not a valid IPv4 or IPv6 literal",
  },
  {
    what: "IPv4 octet 256",
    args: ["connect", "256.0.0.1:80"],
    quoted: ["256.0.0.1:80"],
    reason: "not a valid IPv4 or IPv6 literal",
  },
  {
    what: "an IPv4 octet with a leading zero",
    args: ["connect", "01.2.3.4:80"],
    quoted: ["01.2.3.4:80"],
    reason: "not a valid IPv4 or IPv6 literal",
  },
  {
    what: "an empty host in a REMOTE",
    args: ["connect", ":80"],
    quoted: [":80"],
    reason: "the host is missing",
  },
  {
    what: "a host name with forbidden characters",
    args: ["connect", "bad_host!:80"],
    quoted: ["bad_host!:80"],
    reason: "not an IP literal or a valid host name",
  },
  {
    what: "a LOCAL without a port",
    args: ["bind", "127.0.0.1"],
    quoted: ["127.0.0.1"],
    reason: "a port is required",
  },
  {
    what: "a LOCAL with port 70000",
    args: ["bind", "[::1]:70000"],
    quoted: ["70000"],
    reason: "expected an integer from 0 to 65535",
  },
  {
    what: "a numeric-looking --bind address",
    args: ["connect", REMOTE, "--bind", "999.1.1.1:0"],
    quoted: ["999.1.1.1:0"],
    reason: "not a valid IPv4 or IPv6 literal",
  },
  {
    what: "a numeric-looking accept LOCAL",
    args: ["accept", "256.0.0.1:0"],
    quoted: ["256.0.0.1:0"],
    reason: "not a valid IPv4 or IPv6 literal",
  },
  // Port 0 as a remote: nothing can listen there, so no command may open a socket for it.
  {
    what: "the remote port 0 (127.0.0.1:0)",
    args: ["connect", "127.0.0.1:0"],
    quoted: ["127.0.0.1:0"],
    reason: "port 0 cannot be reached",
  },
  {
    what: "the remote port 0 ([::1]:0)",
    args: ["connect", "[::1]:0"],
    quoted: ["[::1]:0"],
    reason: "port 0 cannot be reached",
  },
  {
    what: "the remote port 0 (127.0.0.1:0)",
    args: ["connectex", "127.0.0.1:0", "--data", "x"],
    quoted: ["127.0.0.1:0"],
    reason: "port 0 cannot be reached",
  },
  {
    what: "the remote port 0 (127.0.0.1:0)",
    args: ["socketconnect", "127.0.0.1:0"],
    quoted: ["127.0.0.1:0"],
    reason: "port 0 cannot be reached",
  },
  {
    what: "the remote port 0 (127.0.0.1:0)",
    args: ["send", "127.0.0.1:0", "--data", "x"],
    quoted: ["127.0.0.1:0"],
    reason: "port 0 cannot be reached",
  },
  {
    what: "the remote port 0 ([::1]:0)",
    args: ["receive", "[::1]:0"],
    quoted: ["[::1]:0"],
    reason: "port 0 cannot be reached",
  },
  {
    what: "the remote port 0 (127.0.0.1:0)",
    args: ["disconnect", "127.0.0.1:0"],
    quoted: ["127.0.0.1:0"],
    reason: "port 0 cannot be reached",
  },
  {
    what: "the remote port 0 (127.0.0.1:0)",
    args: ["release", "127.0.0.1:0"],
    quoted: ["127.0.0.1:0"],
    reason: "port 0 cannot be reached",
  },
  {
    what: "the remote port 0 (127.0.0.1:0)",
    args: ["controlsocket", "127.0.0.1:0", "--get", "SO_RCVBUF"],
    quoted: ["127.0.0.1:0"],
    reason: "port 0 cannot be reached",
  },
  {
    what: "the remote port 0 (127.0.0.1:0)",
    args: ["getlocaladdress", "127.0.0.1:0"],
    quoted: ["127.0.0.1:0"],
    reason: "port 0 cannot be reached",
  },
  {
    what: "the remote port 0 (127.0.0.1:0)",
    args: ["getremoteaddress", "127.0.0.1:0"],
    quoted: ["127.0.0.1:0"],
    reason: "port 0 cannot be reached",
  },
  {
    what: "the remote port 0 (127.0.0.1:0)",
    args: ["closesocket", "127.0.0.1:0"],
    quoted: ["127.0.0.1:0"],
    reason: "port 0 cannot be reached",
  },
  // Commands, options, arguments.
  {
    what: "an unknown command",
    args: ["bogus"],
    quoted: ["bogus"],
    reason: "unknown command",
  },
  {
    what: "a misspelt command (the suggestion must stay on the one line)",
    args: ["conect", REMOTE],
    quoted: ["conect"],
    reason: "unknown command",
  },
  {
    what: "an unknown option",
    args: ["connect", REMOTE, "--nope"],
    quoted: ["--nope"],
    reason: "unknown option",
  },
  {
    what: "a misspelt option (the suggestion must stay on the one line)",
    args: ["connect", REMOTE, "--jsn"],
    quoted: ["--jsn"],
    reason: "unknown option",
  },
  {
    what: "a missing REMOTE argument",
    args: ["connect"],
    quoted: ["remote"],
    reason: "missing required argument",
  },
  {
    what: "--timeout -5",
    args: ["connect", REMOTE, "--timeout", "-5"],
    quoted: ["-5"],
    reason: "expected milliseconds from 1 to 2147483647",
  },
  {
    what: "--timeout abc",
    args: ["connect", REMOTE, "--timeout", "abc"],
    quoted: ["abc"],
    reason: "expected milliseconds from 1 to 2147483647",
  },
  {
    what: "a fractional --timeout",
    args: ["receive", REMOTE, "--timeout", "1.5"],
    quoted: ["1.5"],
    reason: "expected milliseconds from 1 to 2147483647",
  },
  {
    what: "--timeout 0",
    args: ["connect", REMOTE, "--timeout", "0"],
    quoted: ["0"],
    reason: "expected milliseconds from 1 to 2147483647",
  },
  {
    what: "send --timeout 0",
    args: ["send", REMOTE, "--data", "x", "--timeout", "0"],
    quoted: ["0"],
    reason: "expected milliseconds from 1 to 2147483647",
  },
  {
    what: "accept --timeout 0",
    args: ["accept", "127.0.0.1:0", "--timeout", "0"],
    quoted: ["0"],
    reason: "expected milliseconds from 1 to 2147483647",
  },
  {
    what: "a --timeout past the timer range",
    args: ["receive", REMOTE, "--timeout", "2147483648"],
    quoted: ["2147483648"],
    reason: "expected milliseconds from 1 to 2147483647",
  },
  {
    what: "--count 0",
    args: ["accept", "--count", "0"],
    quoted: ["0"],
    reason: "expected an integer from 1",
  },
  {
    what: "--count -1",
    args: ["accept", "--count", "-1"],
    quoted: ["-1"],
    reason: "expected an integer from 1",
  },
  {
    what: "--bytes x",
    args: ["receive", REMOTE, "--bytes", "x"],
    quoted: ["x"],
    reason: "expected an integer from 0",
  },
  {
    what: "--bytes -3",
    args: ["receive", REMOTE, "--bytes", "-3"],
    quoted: ["-3"],
    reason: "expected an integer from 0",
  },
  {
    what: "--family inet7",
    args: ["socket", "--family", "inet7"],
    quoted: ["inet7"],
    reason: "expected inet or inet6",
  },
  {
    what: "accept --mode bogus",
    args: ["accept", "--mode", "bogus"],
    quoted: ["bogus"],
    reason: "echo, discard, print, reply",
  },
  // Socket options.
  {
    what: "--set without =",
    args: ["controlsocket", REMOTE, "--set", "TCP_NODELAY"],
    quoted: ["TCP_NODELAY"],
    reason: "expected NAME=VALUE",
  },
  {
    what: "--set of an unknown option",
    args: ["controlsocket", REMOTE, "--set", "NOPE=1"],
    quoted: ["NOPE"],
    reason: "expected one of SO_KEEPALIVE",
  },
  {
    what: "--set with a non-numeric value",
    args: ["controlsocket", REMOTE, "--set", "TCP_NODELAY=maybe"],
    quoted: ["maybe"],
    reason: "expected an integer from 0",
  },
  {
    what: "--set of an IOCTL",
    args: ["controlsocket", REMOTE, "--set", "SIO_WSK_QUERY_RECEIVE_BACKLOG=1"],
    quoted: ["SIO_WSK_QUERY_RECEIVE_BACKLOG=1"],
    reason: "is an IOCTL",
  },
  {
    what: "--get of an unknown option",
    args: ["controlsocket", REMOTE, "--get", "NOPE"],
    quoted: ["NOPE"],
    reason: "expected one of SO_KEEPALIVE",
  },
  // Data escapes.
  {
    what: 'the unknown escape "\\q" in --data',
    args: ["send", REMOTE, "--data", "\\q"],
    quoted: ["\\q"],
    reason: "unknown escape",
  },
  {
    what: 'the short hex escape "\\x4" in --data',
    args: ["send", REMOTE, "--data", "\\x4"],
    quoted: ["\\x4"],
    reason: "unknown escape",
  },
  {
    what: 'the non-hex escape "\\xZZ" in release --data',
    args: ["release", REMOTE, "--data", "\\xZZ"],
    quoted: ["\\xZZ"],
    reason: "unknown escape",
  },
  {
    what: "a trailing backslash in accept --reply",
    args: ["accept", "--mode", "reply", "--reply", "ab\\"],
    quoted: ["ab\\"],
    reason: "unknown escape",
  },
  {
    what: "connectex --data of 65,536 bytes after escapes (65,537 characters)",
    args: ["connectex", REMOTE, "--data", "a".repeat(65535) + "\\n"],
    quoted: [`${"a".repeat(64)}...(+65473 characters)`],
    reason: "65536 bytes; WskConnectEx sends at most 65535",
  },
  {
    what: "U+FFFD in send --data (Deno's stand-in for bytes that are not UTF-8)",
    args: ["send", REMOTE, "--data", "caf\uFFFD"],
    quoted: ["caf\uFFFD"],
    reason: "write such bytes as \\xNN (U+FFFD itself as \\xEF\\xBF\\xBD)",
  },
  {
    what: "U+FFFD in accept --reply",
    args: ["accept", "--mode", "reply", "--reply", "\uFFFD"],
    quoted: ["\uFFFD"],
    reason: "write such bytes as \\xNN",
  },
  // Conflicts and missing options.
  {
    what: "disconnect --abortive with --data",
    args: ["disconnect", REMOTE, "--abortive", "--data", "x"],
    quoted: ["--abortive"],
    reason: "cannot be used with",
  },
  {
    what: "receive --drain with --bytes",
    args: ["receive", REMOTE, "--drain", "--bytes", "5"],
    quoted: ["--drain"],
    reason: "cannot be used with",
  },
  {
    what: "send --data with --file",
    args: ["send", REMOTE, "--data", "x", "--file", "/dev/null"],
    quoted: ["--data <text>"],
    reason: "cannot be used with",
  },
  {
    what: "connectex without --data",
    args: ["connectex", REMOTE],
    quoted: ["--data <text>"],
    reason: "not specified",
  },
  // Files.
  {
    what: "send --file of a missing file",
    args: ["send", REMOTE, "--file", "/nonexistent"],
    quoted: ["/nonexistent"],
    reason: "Cannot read file",
  },
  {
    what: "receive --output into a missing directory",
    args: ["receive", REMOTE, "--output", "/nonexistent-dir/x"],
    quoted: ["/nonexistent-dir/x"],
    reason: "Cannot write file",
  },
];

/** Splits output into lines, requiring that it ends with a newline when not empty. */
function lines(output: string): string[] {
  if (output === "") return [];
  assert.ok(output.endsWith("\n"), `output does not end with a newline: ${JSON.stringify(output)}`);
  return output.slice(0, -1).split("\n");
}

/** Asserts the whole usage-error contract of a spawned run. */
function assertUsageError(result: CliResult, quoted: readonly string[], reason: string): void {
  const context = `\nstdout: ${JSON.stringify(result.stdout)}\nstderr: ${
    JSON.stringify(result.stderr)
  }`;
  assert.equal(result.code, 2, `exit code ${result.code}${context}`);
  assert.equal(result.stdout, "", `stdout must be empty${context}`);
  assert.doesNotMatch(result.stderr, /^\s+at\s/m, `stack trace on stderr${context}`);
  const errLines = lines(result.stderr);
  assert.equal(errLines.length, 1, `expected exactly one stderr line${context}`);
  const line = errLines[0]!;
  assert.ok(line.startsWith("error: "), `line does not start with "error: "${context}`);
  for (const value of quoted) {
    assert.ok(
      line.includes(`"${value}"`) || line.includes(`'${value}'`),
      `the line does not quote ${JSON.stringify(value)}${context}`,
    );
  }
  assert.ok(line.includes(reason), `the line does not say ${JSON.stringify(reason)}${context}`);
}

for (const bad of BAD_INPUTS) {
  Deno.test(
    `wsk ${bad.args[0]} rejects ${bad.what} with exit 2 and one quoting error line`,
    async () => {
      const result = await runCli(bad.args, { timeoutMs: 20_000 });
      assertUsageError(result, bad.quoted, bad.reason);
    },
  );
}

Deno.test("the table of bad inputs covers at least 30 cases across most commands", () => {
  assert.ok(BAD_INPUTS.length >= 30, `only ${BAD_INPUTS.length} bad inputs`);
  const commands = new Set(BAD_INPUTS.map((bad) => bad.args[0]));
  assert.ok(commands.size >= 10, `only ${[...commands].join(", ")}`);
});

Deno.test(
  "controlsocket without --set or --get exits 2 with one error line naming both options",
  async () => {
    const result = await runCli(["controlsocket", REMOTE], { timeoutMs: 20_000 });
    assert.equal(result.code, 2, result.stderr);
    assert.equal(result.stdout, "");
    assert.deepEqual(lines(result.stderr), [
      "error: Nothing to do: give at least one --set NAME=VALUE or --get NAME",
    ]);
  },
);

/** The CLI as `runCli` spawns it, but allowed to reach 127.0.0.1 only: a lookup would fail. */
async function runLoopbackOnly(args: string[]): Promise<CliResult & { elapsedMs: number }> {
  const main = new URL("../../main.ts", import.meta.url).pathname;
  const start = performance.now();
  const out = await runProcess(
    Deno.execPath(),
    ["run", "--no-prompt", "--allow-net=127.0.0.1", main, ...args],
    { env: CLI_ENV, timeoutMs: 20_000 },
  );
  return { ...out, elapsedMs: performance.now() - start };
}

for (const host of ["999.1.1.1", "1.2.3", "256.0.0.1", "01.2.3.4", "2130706433", "0x7f.0.0.1"]) {
  Deno.test(
    `connect rejects the numeric-looking host "${host}" as no valid literal without a lookup`,
    async () => {
      const result = await runLoopbackOnly(["connect", `${host}:80`, "--timeout", "1"]);
      // A lookup would have printed a WskGetAddressInfo line on stdout and exited 1.
      assertUsageError(result, [`${host}:80`], "not a valid IPv4 or IPv6 literal");
      assert.ok(result.elapsedMs < 10_000, `took ${result.elapsedMs} ms`);
    },
  );
}

Deno.test(
  "a real host name is looked up and reported as WskGetAddressInfo (the control for the above)",
  async () => {
    // With net access to 127.0.0.1 only, the lookup of "localhost" is refused by Deno before
    // any resolver runs; what matters is that an attempted lookup is visible as its own line.
    const result = await runLoopbackOnly(["connect", "localhost:9", "--timeout", "2000"]);
    assert.equal(result.code, 1, result.stderr);
    assert.equal(result.stderr, "");
    const [first] = lines(result.stdout);
    assert.ok(first, "no status line");
    assert.match(first, /^WskGetAddressInfo STATUS_[A-Z_]+ 0xC[0-9A-F]{7} /);
  },
);

/** Each command and the dispatch call it is named for. */
const COMMANDS: readonly (readonly [string, string])[] = [
  ["socket", "WskSocket"],
  ["bind", "WskBind"],
  ["connect", "WskConnect"],
  ["connectex", "WskConnectEx"],
  ["socketconnect", "WskSocketConnect"],
  ["getlocaladdress", "WskGetLocalAddress"],
  ["getremoteaddress", "WskGetRemoteAddress"],
  ["send", "WskSend"],
  ["receive", "WskReceive"],
  ["disconnect", "WskDisconnect"],
  ["release", "WskRelease"],
  ["controlsocket", "WskControlSocket"],
  ["closesocket", "WskCloseSocket"],
  ["accept", "WskAccept"],
  ["demo", "WskSocket"],
];

/** Every name a help text may give as a WSK call or event. */
const WSK_NAMES = new Set([
  ...DISPATCH_CALLS,
  "WskGetAddressInfo",
  "WskAcceptEvent",
  "WskReceiveEvent",
  "WskDisconnectEvent",
]);

for (const [command, call] of COMMANDS) {
  Deno.test(
    `${command} --help exits 0 on stdout, names ${call} and shows a "wsk ${command}" example`,
    async () => {
      const result = await runCli([command, "--help"], { timeoutMs: 20_000 });
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stderr, "");
      const help = result.stdout;
      assert.ok(help.startsWith(`Usage: wsk ${command} `), help);
      // The dispatch calls paragraph runs from "Dispatch calls:" to the next blank line.
      const paragraph = /^Dispatch calls: ([\s\S]*?)\n\n/m.exec(help);
      assert.ok(paragraph, `no "Dispatch calls:" paragraph:\n${help}`);
      const named = [...paragraph[1]!.matchAll(/\bWsk[A-Za-z]+/g)].map((m) => m[0]);
      assert.ok(named.includes(call), `${call} is not among ${named.join(", ")}`);
      for (const name of named) assert.ok(WSK_NAMES.has(name), `unknown WSK name ${name}`);
      const examples = help.split("\nExamples:\n")[1];
      assert.ok(examples !== undefined, `no "Examples:" section:\n${help}`);
      const exampleLines = examples.split("\n").filter((line) => line.trim() !== "");
      assert.ok(exampleLines.length >= 1);
      for (const line of exampleLines) assert.match(line, /^ {2}\$ \S/);
      assert.ok(
        exampleLines.some((line) =>
          line.startsWith(`  $ wsk ${command} `) || line === `  $ wsk ${command}`
        ),
        `no "wsk ${command}" example in:\n${examples}`,
      );
    },
  );
}

Deno.test("wsk --help exits 0 and lists every command on stdout", async () => {
  const result = await runCli(["--help"], { timeoutMs: 20_000 });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stderr, "");
  assert.ok(result.stdout.startsWith("Usage: wsk "), result.stdout);
  const listed = result.stdout.split("\nCommands:\n")[1] ?? "";
  const names = [...listed.matchAll(/^ {2}([a-z]+) /gm)].map((m) => m[1]);
  for (const [command] of COMMANDS) assert.ok(names.includes(command), `${command} not listed`);
});

for (const flag of ["-V", "--version"]) {
  Deno.test(`wsk ${flag} prints the version on stdout and exits 0`, async () => {
    const result = await runCli([flag], { timeoutMs: 20_000 });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, "");
    assert.match(VERSION, /^\d+\.\d+\.\d+/);
    assert.equal(result.stdout, `${VERSION}\n`);
  });
}

Deno.test("wsk without arguments exits 2 with the usage on stderr and nothing on stdout", async () => {
  const result = await runCli([], { timeoutMs: 20_000 });
  assert.equal(result.code, 2, result.stderr);
  assert.equal(result.stdout, "");
  assert.ok(result.stderr.startsWith("Usage: wsk "), result.stderr);
  assert.doesNotMatch(result.stderr, /^\s+at\s/m);
});

// Parity of the three entry points: every declared verb, every one of its options, typed on the
// command line, as a `wsk run` step and on a session handle, is accepted by all three and gives
// the same step (apart from where its socket comes from). The grammars are the ones main.ts
// builds; nothing here restates an option list.

import assert from "node:assert/strict";
import { loadVerbs } from "../../main.ts";
import { verbCommand } from "../../cli/verb.ts";
import type { CliContext } from "../../cli/command.ts";
import { parseHandleWords, parseVerbWords, type VerbDecl } from "../../steps/verb.ts";
import { runCli } from "../_helpers.ts";

/** A value each option's parser takes, by the option's value name in its flags. */
const SAMPLES: Record<string, string> = {
  local: "127.0.0.1:0",
  family: "inet6",
  ms: "500ms",
  duration: "5s",
  n: "4",
  text: "hi\\r\\n",
  regex: "^h.",
  size: "1K",
  file: "/tmp/wsk-parity-output",
  path: "/tmp/wsk-parity-input",
  "name=value": "TCP_NODELAY=1",
  name: "TCP_NODELAY",
  pem: "/tmp/wsk-parity-ca.pem",
  host: "localhost",
  protocols: "h2,http/1.1",
};

/** The option words to try for one declared option (`--status` needs a status name). */
function wordsFor(flags: string): string[] {
  const long = /--[a-z-]+/.exec(flags)![0];
  const value = /[<[]([^>\]]+)[>\]]/.exec(flags)?.[1];
  if (long === "--status") return [long, "STATUS_SUCCESS"];
  if (long === "--listener") return [long, "srv"];
  return value === undefined ? [long] : [long, SAMPLES[value] ?? "1"];
}

/** Words that make a verb's step valid besides the option under test. */
function baseWords(verb: VerbDecl, option: string): string[] {
  switch (verb.name) {
    case "bind":
      return ["127.0.0.1:0"];
    case "connect":
    case "socketconnect":
      return ["127.0.0.1:8080"];
    case "connectex":
      return option === "--data" ? ["127.0.0.1:8080"] : ["127.0.0.1:8080", "first"];
    case "send":
      return ["--data", "--file", "--pattern"].includes(option) ? [] : ["x"];
    case "controlsocket":
      return option === "--set" || option === "--get" ? [] : ["--get", "SO_RCVBUF"];
    case "accept":
      return option === "--listener" ? [] : ["--listener", "srv"];
    case "receive":
      return option === "--append" ? ["--output", "/tmp/wsk-parity-output"] : [];
    default:
      return [];
  }
}

/** A context whose output goes nowhere: the grammar is all that is used. */
const QUIET: CliContext = {
  stdout: { line: () => {} },
  stderr: { line: () => {} },
  writePayload: () => Promise.resolve(),
  stdin: () => ({ read: () => Promise.resolve(null), close: () => {} }),
  color: false,
  exitCode: 0,
};

/** The step fields that say what to do, not where (socket, text, position). */
function what(step: Record<string, unknown>): Record<string, unknown> {
  const { socket: _s, text: _t, line: _l, step: _n, listener: _k, ...rest } = step;
  return rest;
}

Deno.test("parity: every verb and option is accepted by the CLI, a script step and a handle, alike", async () => {
  const verbs = await loadVerbs();
  assert.ok(verbs.size >= 13, `verbs: ${[...verbs.keys()].join(", ")}`);
  let checked = 0;
  for (const verb of verbs.values()) {
    // The CLI's option set is the declaration's (plus the connect options for a remote).
    const cli = verbCommand(QUIET, verb);
    const cliFlags = new Set(cli.options.map((o) => o.long));
    for (const option of verb.options) {
      const words = wordsFor(option.flags);
      const long = words[0]!;
      assert.ok(cliFlags.has(long), `${verb.name}: the CLI lacks ${long}`);
      if (long === "--no-progress" || long === "--no-pending-receive") continue;
      const typed = [...baseWords(verb, long), ...words];
      const at = { line: 1, step: 1, text: typed.join(" ") };
      if (verb.script) {
        const step = parseVerbWords(verb, "script", typed, at);
        if (verb.handle && long !== "--listener") {
          const handle = parseHandleWords(
            verb,
            typed.filter((w, i, all) => !(w === "--listener" || all[i - 1] === "--listener")),
            at.text,
          ).step;
          assert.deepEqual(
            what(handle as unknown as Record<string, unknown>),
            what(step as unknown as Record<string, unknown>),
            `${verb.name} ${typed.join(" ")}: script and handle differ`,
          );
        }
      }
      checked++;
    }
  }
  assert.ok(checked >= 30, `only ${checked} verb options were checked`);
});

Deno.test("parity: the same typo is refused the same way on the CLI, in a script and on a handle", async () => {
  const verbs = await loadVerbs();
  const receive = verbs.get("receive")!;
  const at = { line: 1, step: 1, text: "receive --bytes x" };
  assert.throws(() => parseVerbWords(receive, "script", ["--bytes", "x"], at), /--bytes/);
  assert.throws(() => parseHandleWords(receive, ["--bytes", "x"], at.text), /--bytes/);
  assert.throws(
    () => parseVerbWords(receive, "script", ["--bogus"], at),
    /unknown option '--bogus'/,
  );
  assert.throws(() => parseHandleWords(receive, ["--bogus"], at.text), /unknown option '--bogus'/);
});

/** A loopback server in this process: says "hello" to each connection, then echoes it. */
function greetingEcho(): { port: number; close(): Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const serving = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      (async () => {
        try {
          await conn.write(new TextEncoder().encode("hello"));
          const buffer = new Uint8Array(4096);
          for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
            await conn.write(buffer.subarray(0, n));
          }
        } catch {
          // The client reset or closed it.
        } finally {
          conns.delete(conn);
          try {
            conn.close();
          } catch {
            // Closed already.
          }
        }
      })();
    }
  })().catch(() => {});
  return {
    port: listener.addr.port,
    async close() {
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // Closed already.
        }
      }
      await serving;
    },
  };
}

/** Every JSON record a run printed, stdout and stderr (payload on stdout moves lines away). */
function records(result: { stdout: string; stderr: string }): Record<string, unknown>[] {
  return [...result.stdout.split("\n"), ...result.stderr.split("\n")].flatMap((line) => {
    try {
      const value = JSON.parse(line);
      return value !== null && typeof value === "object" && "call" in value ? [value] : [];
    } catch {
      return [];
    }
  });
}

/** What a call's record says that does not depend on where its socket came from. */
function outcome(record: Record<string, unknown> | undefined): Record<string, unknown> {
  if (record === undefined) return { missing: true };
  const { call, status, information, option, value, data, base64 } = record;
  return { call, status, information, option, value, data, base64 };
}

Deno.test("parity: the same words print the same call on the CLI, in a script and on a handle", async () => {
  const server = greetingEcho();
  const dir = await Deno.makeTempDir({ prefix: "wsk-parity-" });
  const env = { WSK_SESSION_DIR: `${dir}/session` };
  const remote = `127.0.0.1:${server.port}`;
  const cases: { words: string[]; call: string }[] = [
    { words: ["receive", "--bytes", "5", "--output", "-"], call: "WskReceive" },
    { words: ["send", "--data", "ping"], call: "WskSend" },
    {
      words: ["controlsocket", "--set", "TCP_NODELAY=1", "--get", "TCP_NODELAY"],
      call: "WskControlSocket",
    },
    { words: ["getremoteaddress"], call: "WskGetRemoteAddress" },
    { words: ["disconnect", "--data", "bye"], call: "WskDisconnect" },
    { words: ["receive", "--bytes", "5", "--status", "STATUS_SUCCESS"], call: "WskReceive" },
  ];
  try {
    for (const { words, call } of cases) {
      const [verb, ...rest] = words;
      const cli = await runCli([verb!, remote, ...rest, "--json"], { env });
      const script = await runCli(["run", "-", "--json"], {
        env,
        stdin: `socketconnect ${remote}\n${words.map((w) => `'${w}'`).join(" ")}\n`,
      });
      const made = await runCli(["socketconnect", remote, "--session", "--json"], { env });
      assert.equal(made.code, 0, made.stderr);
      const handle = `@${records(made)[0]!.socket}`;
      const onHandle = await runCli([verb!, handle, ...rest, "--json"], { env });
      const [a, b, c] = [cli, script, onHandle].map((result) =>
        outcome(records(result).find((record) => record.call === call))
      );
      assert.deepEqual(b, a, `${words.join(" ")}: script vs CLI`);
      assert.deepEqual(c, a, `${words.join(" ")}: handle vs CLI`);
      assert.equal(a!.status, "STATUS_SUCCESS", words.join(" "));
      for (
        const [what, result] of [["cli", cli], ["script", script], ["handle", onHandle]] as const
      ) {
        assert.equal(result.code, 0, `${words.join(" ")} (${what}): ${result.stderr}`);
      }
      if (words.includes("--output")) {
        for (const result of [cli, script, onHandle]) assert.equal(result.stdout, "hello");
      }
      const closed = await runCli(["closesocket", handle, "--no-pending-receive"], { env });
      assert.equal(closed.code, 0, closed.stderr);
    }
  } finally {
    await runCli(["session", "stop"], { env });
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * `wsk session`: the local agent that holds sockets between commands, so each shell line can be
 * one dispatch call on a socket that lives on (`wsk send @1 --data hi`). The client and the
 * agent are imported only when a session is used.
 *
 * @module
 */

import { Command, Option } from "@commander-js/extra-typings";
import type { CliContext } from "../cli/command.ts";
import { parseTimeout } from "../syntax/values.ts";
import { commanderOutput } from "../report/reporter.ts";
import { UsageError } from "../syntax/usage.ts";

/** Commander output through the context and the one output formatter (escaped, no colour). */
function outputOf(ctx: CliContext) {
  return commanderOutput(ctx.stdout, ctx.stderr);
}

function parseIdle(text: string): number {
  const ms = parseTimeout(text);
  if (ms < 1) throw new UsageError(`Cannot use idle time "${text}": it must be at least 1 ms`);
  return ms;
}

/** Builds the `session` command with `start`, `stop`, `status`, `list` (and the hidden `agent`). */
export function command(ctx: CliContext) {
  const output = outputOf(ctx);
  const session = new Command("session")
    .summary("Hold sockets between commands in a local agent: start, stop, status, list.")
    .description(
      "Hold sockets between commands in a local agent, so each command is one dispatch call.\n\n" +
        "`wsk socket --session` (or `socketconnect --session`) makes a socket in the agent and\n" +
        "its lines carry its handle (handle=@N). Every command then takes the handle in place\n" +
        "of an address and makes only its own call: wsk bind @1 127.0.0.1:0, wsk connect @1\n" +
        "127.0.0.1:8080, wsk send @1 --data hi, wsk receive @1 --bytes 2, wsk disconnect @1,\n" +
        "wsk closesocket @1, wsk accept @2 (a listening handle; the new socket gets a handle).\n\n" +
        "The agent starts on the first such command. It listens only on a Unix socket in a\n" +
        "private directory ($WSK_SESSION_DIR, else $XDG_RUNTIME_DIR/wsk, else /tmp/wsk-UID;\n" +
        "0700, socket 0600) and exits after --idle ms without a command ($WSK_SESSION_IDLE;\n" +
        "default 10 minutes) or on stop, closing every socket it holds.",
    )
    .configureOutput(output)
    .exitOverride()
    .addHelpText(
      "after",
      "\nExamples:\n  $ wsk socket --session\n  $ wsk connect @1 127.0.0.1:8080\n" +
        "  $ wsk session list\n  $ wsk session stop\n",
    );
  const sub = (name: string, summary: string) =>
    new Command(name)
      .summary(summary)
      .description(summary)
      .addOption(new Option("--json", "write JSON Lines"))
      .configureOutput(output)
      .exitOverride()
      .showHelpAfterError(false);
  session.addCommand(
    sub("start", "Start the agent unless it runs (it also starts on demand).")
      .option("--idle <ms>", "exit after MS milliseconds without a command", parseIdle)
      .action(async (options) => {
        const { sessionAction } = await import("../session/client.ts");
        ctx.exitCode = await sessionAction("start", {
          json: options.json === true,
          ...(options.idle === undefined ? {} : { idleMs: options.idle }),
        }, ctx);
      }),
  );
  for (
    const [name, summary] of [
      ["stop", "Stop the agent: close every socket it holds and remove its socket file."],
      ["status", "Show whether the agent runs: its pid, sockets, idle time and directory."],
      [
        "list",
        "List the sockets the agent holds: handle, kind, state, local and remote address, " +
        "bytes sent and received, bytes buffered, commands pending.",
      ],
    ] as const
  ) {
    session.addCommand(
      sub(name, summary).action(async (options) => {
        const { sessionAction } = await import("../session/client.ts");
        ctx.exitCode = await sessionAction(name, { json: options.json === true }, ctx);
      }),
    );
  }
  session.addCommand(
    new Command("agent")
      .description("Run the agent in this process (the CLI starts it this way).")
      .requiredOption("--dir <dir>", "the private session directory")
      .requiredOption("--idle <ms>", "exit after MS milliseconds without a command", parseIdle)
      .configureOutput(output)
      .exitOverride()
      .action(async (options) => {
        const { runAgent } = await import("../session/agent.ts");
        ctx.exitCode = await runAgent({ dir: options.dir, idleMs: options.idle });
      }),
    { hidden: true },
  );
  return session;
}

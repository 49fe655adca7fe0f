/**
 * `wsk run`: a dispatch script. All steps run in one process on live sockets, each step one
 * dispatch call (plus the WskSocket/WskBind a `connect` needs when its socket does not exist
 * yet), each checked.
 *
 * @module
 */

import { newRunnerState, StepExecutor } from "../steps/executor.ts";
import type { VerbTable } from "../steps/verb.ts";
import { type CliContext, processIO } from "../cli/command.ts";
import { runAction, wskCommand } from "../cli/command.ts";
import { readWhole } from "../cli/input.ts";
import { parseScript, ScriptSyntaxError, type Step } from "../steps/script.ts";
import { UsageError } from "../syntax/usage.ts";
import { jsonLinesTap, writerSink } from "../report/reporter.ts";

/** Largest script read (a script is a few lines; this only bounds a mistaken input). */
const MAX_SCRIPT = 1 << 20;

/** Opens the `--record` log before any socket exists: a path that cannot be written is exit 2. */
async function openLog(path: string): Promise<Deno.FsFile> {
  if (path === "-") {
    // Elsewhere "-" is a standard stream; the records on standard output are what --json prints.
    throw new UsageError(
      'Cannot write log "-": --record takes a file; for the records on standard output use --json',
    );
  }
  try {
    return await Deno.open(path, { write: true, create: true, truncate: true });
  } catch (error) {
    throw new UsageError(
      `Cannot write log "${path}": ${error instanceof Error ? error.message : error}`,
    );
  }
}

/** Builds the `run` command. */
export function command(ctx: CliContext, verbs: () => Promise<VerbTable>) {
  return wskCommand(
    "run",
    "Run a dispatch script: one step per line, all on live sockets in this process, each " +
      "checked (--status, --expect, --expect-re).",
    "any: each step names its own (socket, bind, connect, connectex, socketconnect, send, " +
      "receive, disconnect, getlocaladdress, getremoteaddress, controlsocket, closesocket, accept)",
    [
      "wsk run smoke.wsk",
      "wsk run smoke.wsk --record smoke.jsonl",
      `printf 'socketconnect 127.0.0.1:6379\\nsend "PING\\\\r\\\\n"\\nreceive --expect "+PONG"\\n' | wsk run -`,
    ],
  )
    .argument("[file]", "the script (- or nothing for standard input)", "-")
    .option(
      "--record <log>",
      "also write every call to LOG as JSON Lines, with the bytes sent and received " +
        "(wsk replay LOG runs them again)",
    )
    .action(async (file, options, command) => {
      const source = await readWhole(ctx, file, MAX_SCRIPT, "script");
      let steps: Step[];
      try {
        steps = parseScript(source, await verbs());
      } catch (error) {
        if (error instanceof ScriptSyntaxError) throw new UsageError(error.message);
        throw error;
      }
      const log = options.record === undefined ? null : await openLog(options.record);
      try {
        await runAction(ctx, command, options, async (run) => {
          const runner = new StepExecutor(run, newRunnerState(), processIO(ctx, run, options));
          await runner.prepare(steps);
          const outcome = await runner.runSteps(steps, true, true);
          if (outcome === "expectation") ctx.exitCode = 3;
        }, (reporter) => log && reporter.tap(jsonLinesTap(writerSink(log))));
      } finally {
        log?.close();
      }
    });
}

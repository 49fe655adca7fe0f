/**
 * `wsk replay LOG`: the calls of a log (`wsk run --record`, or any command's `--json` output)
 * run again as a script, against the same remote or `--to` another, expecting the same statuses
 * and the same received bytes. A difference exits 3 and names the first divergent call.
 *
 * @module
 */

import { Option } from "@commander-js/extra-typings";
import { newRunnerState, StepExecutor } from "../steps/executor.ts";
import type { VerbTable } from "../steps/verb.ts";
import { type CliContext, processIO, runAction, wskCommand } from "../cli/command.ts";
import { readWhole } from "../cli/input.ts";
import { parseScript, ScriptSyntaxError, type Step } from "../steps/script.ts";
import { type Derived, deriveScript, MAX_LOG, parseLog, ReplayCheck } from "../steps/replay.ts";
import type { ReplayRecord } from "../report/reporter.ts";
import { parseRemote } from "../syntax/values.ts";
import { UsageError } from "../syntax/usage.ts";

/** Reads and derives the log, every problem a usage error naming the log (and its record). */
async function derive(ctx: CliContext, file: string, to: string | undefined): Promise<Derived> {
  const bytes = await readWhole(ctx, file, MAX_LOG, "log");
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return deriveScript(parseLog(text), to);
  } catch (error) {
    const why = error instanceof TypeError ? "it is not UTF-8 text" : (error as Error).message;
    if (error instanceof UsageError || error instanceof TypeError) {
      throw new UsageError(`Cannot replay "${file}": ${why}`);
    }
    throw error;
  }
}

/** The outcome line of a replay. */
function outcomeOf(derived: Derived, check: ReplayCheck): ReplayRecord {
  const counts = { records: derived.records, steps: derived.origins.length };
  const found = check.divergence;
  if (found === null) return { result: "MATCHED", ...counts };
  return {
    result: "DIVERGED",
    ...counts,
    record: found.record,
    call: found.call,
    ...(found.socket === undefined ? {} : { socket: found.socket }),
    ...(found.kind === "bytes" ? { offset: found.offset } : {}),
    expected: found.expected,
    actual: found.actual,
  };
}

/** Builds the `replay` command. */
export function command(ctx: CliContext, verbs: () => Promise<VerbTable>) {
  return wskCommand(
    "replay",
    "Run the calls of a log (wsk run --record, or any command's --json output) again and " +
      "check they answer the same: the same statuses, the same received bytes (exit 3 if not).",
    "those of the log: WskSocket, WskBind, WskConnect, WskConnectEx, WskSocketConnect, " +
      "WskSend, WskReceive, WskDisconnect, WskGetLocalAddress, WskGetRemoteAddress, " +
      "WskCloseSocket",
    [
      "wsk replay smoke.jsonl",
      "wsk replay smoke.jsonl --to 127.0.0.1:7008",
      "wsk replay smoke.jsonl --print-script > smoke.wsk",
    ],
  )
    .argument("[log]", "the log (- or nothing for standard input)", "-")
    .addOption(
      new Option("--to <remote>", "connect to REMOTE instead of the logged remote address")
        .argParser((text) => (parseRemote(text), text)),
    )
    .option("--print-script", "print the script the log becomes (for wsk run) and stop")
    .action(async (file, options, command) => {
      const derived = await derive(ctx, file, options.to);
      if (options.printScript) {
        for (const line of derived.script.trimEnd().split("\n")) ctx.stdout.line(line);
        return;
      }
      let steps: Step[];
      try {
        steps = parseScript(derived.script, await verbs());
      } catch (error) {
        if (error instanceof ScriptSyntaxError) {
          throw new UsageError(`Cannot replay "${file}": the derived script: ${error.message}`);
        }
        throw error;
      }
      const check = new ReplayCheck(derived);
      await runAction(ctx, command, options, async (run) => {
        const runner = new StepExecutor(run, newRunnerState(), processIO(ctx, run, options));
        await runner.prepare(steps);
        const outcome = await runner.runSteps(steps, true, true, (step) => check.after(step));
        check.finish();
        run.reporter.replay(outcomeOf(derived, check));
        if (outcome === "expectation" || check.divergence !== null) ctx.exitCode = 3;
      }, (reporter) => reporter.tap(check));
    });
}

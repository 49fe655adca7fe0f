/**
 * The command-line form of a declared verb: a commander command built from the declaration
 * (target, arguments, options, help), whose action turns the words into a few steps (connect
 * first, the verb's own step) and runs them with the one step executor, as `wsk run` would.
 *
 * @module
 */

import { type CommandUnknownOpts, Help, InvalidArgumentError } from "@commander-js/extra-typings";
import { newRunnerState, StepExecutor } from "../steps/executor.ts";
import type { Step } from "../steps/step.ts";
import {
  addOption,
  type ArgDecl,
  bindOf,
  commonOf,
  optionsOf,
  parsePositionals,
  REMOTE_ARG,
  retryOf,
  tlsOf,
  type VerbDecl,
} from "../steps/verb.ts";
import type { Endpoint } from "../syntax/values.ts";
import { type CliContext, processIO, runAction, wskCommand } from "./command.ts";

/** The positionals of a verb's command-line form: REMOTE first when it connects first. */
export function cliArgs(verb: VerbDecl): readonly ArgDecl[] {
  return verb.target === "remote" ? [REMOTE_ARG, ...(verb.args ?? [])] : verb.args ?? [];
}

/** The usage line's arguments, e.g. `<remote> [data]`. */
function usageOf(args: readonly ArgDecl[]): string {
  return [...args.map((arg) => arg.name), "[options]"].join(" ");
}

/**
 * The steps of a command line: for a verb that connects first, a `connect` step (its socket is
 * made on a backing that can reset, unless the verb wants the fast reading one), then the verb's
 * own step; otherwise the verb's step alone, and what the declaration adds after it.
 */
function stepsOf(
  verb: VerbDecl,
  own: Step,
  remote: Endpoint | undefined,
  options: Record<string, unknown>,
): Step[] {
  const at = { line: 1, text: own.text, socket: own.socket };
  const steps: Step[] = [];
  if (remote !== undefined) {
    steps.push({
      ...at,
      step: 1,
      verb: "connect",
      remote,
      ...(own.timeout === undefined ? {} : { timeout: own.timeout }),
      ...bindOf(options),
      ...retryOf(options),
      ...tlsOf(options),
      abortive: verb.abortive?.(own) ?? true,
      ...(verb.fastTls === true ? { fastTls: true } : {}),
    } as Step);
  }
  steps.push({ ...own, step: steps.length + 1 });
  for (const after of verb.after?.(own) ?? []) {
    steps.push({ ...at, ...after, step: steps.length + 1 } as Step);
  }
  return steps;
}

/** Builds the commander command of `verb` for the CLI. */
export function verbCommand(ctx: CliContext, verb: VerbDecl): CommandUnknownOpts {
  const args = cliArgs(verb);
  const command = wskCommand(verb.name, verb.summary, verb.calls, [...verb.examples])
    .usage(usageOf(args))
    // The words are parsed by the declaration (an address may be two words, `HOST PORT`), so
    // commander takes them as one list and the help lists the declared arguments instead.
    .argument("[words...]")
    .configureHelp({
      visibleArguments: () => [],
      formatHelp: (cmd, helper) => {
        const text = Help.prototype.formatHelp.call(helper, cmd, helper);
        const width = Math.max(...args.map((arg) => arg.name.length)) + 2;
        const lines = args.map((arg) => `  ${arg.name.padEnd(width)}${arg.help}`);
        return args.length === 0
          ? text
          : text.replace("\nOptions:\n", `\nArguments:\n${lines.join("\n")}\n\nOptions:\n`);
      },
    });
  for (const option of optionsOf(verb, "cli")) addOption(command, option);
  if (verb.session) {
    command.option("--session", "make the socket in the session agent and keep it (wsk session)");
  }
  command.action(async (words, options, self) => {
    let values: unknown[];
    try {
      values = parsePositionals(args, words);
    } catch (error) {
      if (error instanceof InvalidArgumentError) self.error(`error: ${error.message}`);
      throw error;
    }
    const remote = verb.target === "remote" ? values.shift() as Endpoint : undefined;
    const all = options as Record<string, unknown>;
    let fields;
    try {
      fields = verb.make({
        args: values,
        options: all,
        given: (name) => self.getOptionValueSource(name) === "cli",
        entry: "cli",
      });
    } catch (error) {
      if (error instanceof InvalidArgumentError) self.error(`error: ${error.message}`);
      throw error;
    }
    const own = {
      ...commonOf(all, { line: 1, step: 1, text: [verb.name, ...words].join(" "), socket: "main" }),
      ...(self.getOptionValueSource("timeout") === "cli" ? {} : { timeout: undefined }),
      ...fields,
    } as Step;
    const steps = stepsOf(verb, own, remote, all);
    if (all.session === true) {
      // The socket is made in the session agent and kept there: its lines carry its handle.
      const { runSessionSteps } = await import("../session/client.ts");
      ctx.exitCode = await runSessionSteps(ctx, null, steps, {
        json: all.json === true,
        verbose: all.verbose === true,
        timeout: all.timeout as number,
      });
      return;
    }
    await runCliSteps(ctx, self, all, steps);
  });
  return command;
}

/**
 * Runs the steps of one command line: their files opened first (a bad path is a usage error),
 * then each step until one fails, then whatever is still open ended (gracefully after a clean
 * run, at once after a failure). A failed expectation exits 3.
 */
async function runCliSteps(
  ctx: CliContext,
  command: { getOptionValueSource(key: string): string | undefined },
  options: Record<string, unknown>,
  steps: Step[],
): Promise<void> {
  await runAction(ctx, command, options as never, async (run) => {
    const runner = new StepExecutor(run, newRunnerState(), processIO(ctx, run, options), true);
    await runner.prepare(steps);
    const outcome = await runner.runSteps(steps, false, false);
    if (outcome === "expectation") ctx.exitCode = 3;
  });
}

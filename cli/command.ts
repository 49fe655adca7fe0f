/**
 * How commands are declared and run: the global options every command takes, and the wrapper
 * that gives an action its {@linkcode CallContext} and turns the outcome into an exit code.
 *
 * @module
 */

import { Command, Option } from "@commander-js/extra-typings";
import { Reporter } from "../report/reporter.ts";
import { CallContext, DEFAULT_TIMEOUT, type GlobalOptions } from "../engine/context.ts";
import { parseTimeout } from "../syntax/values.ts";
import type { CliContext, StepIO } from "../steps/io.ts";
import { onFirstSignal } from "../engine/interrupt.ts";

export type { CliContext } from "../steps/io.ts";

/** A new subcommand with the global options and help that names its dispatch calls. */
export function wskCommand(name: string, summary: string, calls: string, examples: string[]) {
  return new Command(name)
    .summary(summary)
    .description(`${summary}\n\nDispatch calls: ${calls}`)
    .addOption(new Option("--json", "write JSON Lines, one object per dispatch call"))
    .addOption(
      new Option(
        "-q, --quiet",
        "print only failures (failed calls, failed expectations, errors); payload still goes " +
          "where it goes",
      ),
    )
    .addOption(
      new Option(
        "--timeout <ms>",
        "bound every pending call: milliseconds, or a number with a unit (500ms, 5s, 2m)",
      )
        .default(DEFAULT_TIMEOUT)
        .argParser(parseTimeout),
    )
    .addOption(new Option("--verbose", "add the underlying system error to failures"))
    .addHelpText("after", `\nExamples:\n${examples.map((e) => `  $ ${e}`).join("\n")}\n`)
    .showHelpAfterError(false);
}

/**
 * Runs an action body with a fresh {@linkcode CallContext}: Ctrl-C or SIGTERM cancels pending calls, and the
 * exit code becomes 1 when any call failed unexpectedly.
 */
export async function runAction(
  ctx: CliContext,
  command: { getOptionValueSource(key: string): string | undefined },
  options: GlobalOptions,
  body: (run: CallContext) => Promise<void>,
  setup: (reporter: Reporter) => void = () => {},
): Promise<void> {
  const reporter = new Reporter(ctx.stdout, ctx.stderr, {
    json: options.json === true,
    verbose: options.verbose === true,
    color: ctx.color && options.json !== true,
    quiet: options.quiet === true,
  });
  setup(reporter);
  const controller = new AbortController();
  // The first Ctrl-C (SIGINT) or SIGTERM (`timeout`, `kill`) cancels the pending calls, so the
  // closing lines are printed and --output's temporary file is removed; a second one ends the
  // process.
  const stopListening = onFirstSignal(() => controller.abort());
  const timeoutGiven = command.getOptionValueSource("timeout") === "cli";
  try {
    const run = new CallContext(reporter, options.timeout, timeoutGiven, controller.signal);
    await run.prepare();
    await body(run);
  } finally {
    stopListening();
  }
  if (ctx.exitCode === 0 && reporter.failed) ctx.exitCode = 1;
}

/** The step IO of this process: payload to the context's stdout, input from its stdin. */
export function processIO(
  ctx: CliContext,
  run: CallContext,
  options: { readonly json?: boolean | undefined },
): StepIO {
  return {
    stdout: (bytes) => ctx.writePayload(bytes),
    stdin: () => ctx.stdin(),
    json: options.json === true,
    payloadOnStdout: () => run.reporter.payloadOnStdout = true,
  };
}

/**
 * How commands are declared and run: the global options every command takes, and the wrapper
 * that gives an action its {@linkcode Run} and turns the outcome into an exit code.
 *
 * @module
 */

import { Command, Option } from "@commander-js/extra-typings";
import { Reporter, type TextSink } from "../report/reporter.ts";
import { DEFAULT_TIMEOUT, type GlobalOptions, Run } from "../engine/context.ts";
import { parseTimeout } from "../syntax/values.ts";
import type { ByteSource } from "../engine/send.ts";

/** The process around the CLI; tests give their own. */
export interface CliContext {
  /** Status lines (and help) for stdout. */
  readonly stdout: TextSink;
  /** Error lines for stderr. */
  readonly stderr: TextSink;
  /** Raw payload bytes to stdout. */
  writePayload(bytes: Uint8Array): Promise<void>;
  /** Standard input, read into the caller's buffers. */
  readonly stdin: () => ByteSource;
  /** Colour the status names. */
  readonly color: boolean;
  /** Set by the command that ran: 0, 1 (a call failed) or 3 (an expectation failed). */
  exitCode: number;
}

/** A new subcommand with the global options and help that names its dispatch calls. */
export function wskCommand(name: string, summary: string, calls: string, examples: string[]) {
  return new Command(name)
    .summary(summary)
    .description(`${summary}\n\nDispatch calls: ${calls}`)
    .addOption(new Option("--json", "write JSON Lines, one object per dispatch call"))
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
 * Runs an action body with a fresh {@linkcode Run}: Ctrl-C or SIGTERM cancels pending calls, and the
 * exit code becomes 1 when any call failed unexpectedly.
 */
export async function runAction(
  ctx: CliContext,
  command: { getOptionValueSource(key: string): string | undefined },
  options: GlobalOptions,
  body: (run: Run) => Promise<void>,
  setup: (reporter: Reporter) => void = () => {},
): Promise<void> {
  const reporter = new Reporter(ctx.stdout, ctx.stderr, {
    json: options.json === true,
    verbose: options.verbose === true,
    color: ctx.color && options.json !== true,
  });
  setup(reporter);
  const controller = new AbortController();
  // The first Ctrl-C (SIGINT) or SIGTERM (`timeout`, `kill`) cancels the pending calls, so the
  // closing lines are printed and --output's temporary file is removed; the listeners then
  // step aside so a second signal ends the process the default way.
  const signals: Deno.Signal[] = [];
  const stopListening = () => {
    for (const signal of signals.splice(0)) Deno.removeSignalListener(signal, onInterrupt);
  };
  const onInterrupt = () => {
    controller.abort();
    stopListening();
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    try {
      Deno.addSignalListener(signal, onInterrupt);
      signals.push(signal);
    } catch {
      // No signal support here (e.g. a restricted test runtime): the signal ends the process.
    }
  }
  const timeoutGiven = command.getOptionValueSource("timeout") === "cli";
  try {
    const run = new Run(reporter, options.timeout, timeoutGiven, controller.signal);
    await run.prepare();
    await body(run);
  } finally {
    stopListening();
  }
  if (ctx.exitCode === 0 && reporter.failed) ctx.exitCode = 1;
}

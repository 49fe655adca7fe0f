/**
 * wsk: exercise TCP connection sockets from a terminal, one named WSK dispatch call at a time.
 *
 * `main(args)` runs the CLI without touching the process (tests call it directly); the entry
 * line at the bottom is the only place that sets the exit code.
 *
 * @module
 */

import { Command, CommanderError, type CommandUnknownOpts } from "@commander-js/extra-typings";
import type { CliContext } from "./cli/command.ts";
import type { VerbDecl, VerbTable } from "./steps/verb.ts";
import { commanderOutput, formatErrorLine, writerSink } from "./report/reporter.ts";
import { UsageError } from "./syntax/usage.ts";

/** What a command module gives main: the command, built for a context and the verb table. */
interface CommandModule {
  readonly command: (ctx: CliContext, verbs: () => Promise<VerbTable>) => CommandUnknownOpts;
  /** Whether the command walks the whole program (completions), so every command is loaded. */
  readonly needsProgram?: boolean;
}

/**
 * Every subcommand in dispatch-table order, each loaded only when needed: a run that names its
 * command loads that module alone (and so only the packages it uses), which keeps startup near
 * the cost of Deno and commander themselves.
 */
const COMMANDS: Record<string, () => Promise<CommandModule>> = {
  socket: () => import("./commands/socket.ts"),
  bind: () => import("./commands/bind.ts"),
  connect: () => import("./commands/connect.ts"),
  connectex: () => import("./commands/connectex.ts"),
  socketconnect: () => import("./commands/socketconnect.ts"),
  getlocaladdress: () => import("./commands/getlocaladdress.ts"),
  getremoteaddress: () => import("./commands/getremoteaddress.ts"),
  send: () => import("./commands/send.ts"),
  receive: () => import("./commands/receive.ts"),
  disconnect: () => import("./commands/disconnect.ts"),
  release: () => import("./commands/release.ts"),
  controlsocket: () => import("./commands/controlsocket.ts"),
  closesocket: () => import("./commands/closesocket.ts"),
  starttls: () => import("./commands/starttls.ts"),
  accept: () => import("./commands/accept.ts"),
  run: () => import("./commands/run.ts"),
  session: () => import("./commands/session.ts"),
  demo: () => import("./commands/demo.ts"),
  completions: () => import("./commands/completions.ts"),
};

/** The declaration a command module exports under its verb's name, if it declares one. */
function declarationOf(name: string, module: CommandModule): VerbDecl | undefined {
  const value = (module as unknown as Record<string, unknown>)[name];
  return value !== null && typeof value === "object" && "make" in value
    ? value as VerbDecl
    : undefined;
}

/** Every declared verb (loaded on first use): what scripts and the session agent parse with. */
export const loadVerbs: () => Promise<VerbTable> = (() => {
  let table: Promise<VerbTable> | null = null;
  return () =>
    table ??= Promise.all(
      Object.entries(COMMANDS).map(async (
        [name, load],
      ) => [name, declarationOf(name, await load())]),
    ).then((entries) =>
      new Map(
        entries.filter((entry): entry is [string, VerbDecl] => entry[1] !== undefined),
      )
    );
})();

/**
 * The command modules a run needs: the one `args` names, or all of them (for `--help`, an
 * unknown command and its suggestions, or no command at all).
 */
function commandsFor(args: readonly string[]): Array<() => Promise<CommandModule>> {
  const named = args[0] !== undefined && Object.hasOwn(COMMANDS, args[0])
    ? COMMANDS[args[0]]
    : undefined;
  return named ? [named] : Object.values(COMMANDS);
}

/** Whether `args` is a command on a session handle (`wsk send @1 …`), not asking for help. */
function isHandleCommand(args: readonly string[]): boolean {
  if (!args[1]?.startsWith("@")) return false;
  const end = args.indexOf("--");
  const options = end === -1 ? args : args.slice(0, end);
  return !options.includes("--help") && !options.includes("-h");
}

/** The version `wsk -V` prints. */
export const VERSION = "0.1.0";

/** The context of a real process: Deno's stdio, colour only on a TTY without NO_COLOR. */
export function processContext(): CliContext {
  return {
    stdout: writerSink(Deno.stdout),
    stderr: writerSink(Deno.stderr),
    async writePayload(bytes: Uint8Array): Promise<void> {
      for (let offset = 0; offset < bytes.length;) {
        offset += await Deno.stdout.write(bytes.subarray(offset));
      }
    },
    stdin: () => Deno.stdin,
    color: Deno.stdout.isTerminal() && !Deno.noColor,
    exitCode: 0,
  };
}

/**
 * Runs wsk with `args` and returns the exit code: 0 every call succeeded, 1 a dispatch call
 * failed, 2 bad arguments or usage, 3 a failed expectation.
 */
export async function main(args: string[], ctx: CliContext = processContext()): Promise<number> {
  try {
    // A handle (`wsk send @1 …`): the verb's one declaration parses it, the agent runs it.
    if (isHandleCommand(args) && Object.hasOwn(COMMANDS, args[0]!)) {
      const verb = declarationOf(args[0]!, await COMMANDS[args[0]!]!());
      const { runHandleCommand } = await import("./session/client.ts");
      return await runHandleCommand(verb ?? null, args, ctx);
    }
    await parseAndRun(args, ctx);
  } catch (error) {
    return exitCodeFor(error, ctx);
  }
  return ctx.exitCode;
}

/** Builds the program with the commands `args` needs and runs it. */
async function parseAndRun(args: string[], ctx: CliContext): Promise<void> {
  // Help, version and commander's own errors go through the one output formatter (escaped).
  const output = commanderOutput(ctx.stdout, ctx.stderr);
  const program = new Command("wsk")
    .description(
      "Exercise TCP connection sockets one Winsock Kernel (WSK) dispatch call at a time.\n" +
        "Each command prints one line per call: the call, its NTSTATUS name and hex value,\n" +
        "the local and remote addresses, the bytes moved and the time it took.",
    )
    .version(VERSION, "-V, --version")
    .configureOutput(output)
    .exitOverride()
    .showSuggestionAfterError(true);
  let modules = await Promise.all(commandsFor(args).map((load) => load()));
  if (modules.length === 1 && modules[0]!.needsProgram) {
    modules = await Promise.all(Object.values(COMMANDS).map((load) => load()));
  }
  for (const module of modules) {
    program.addCommand(module.command(ctx, loadVerbs).configureOutput(output).exitOverride());
  }
  await program.parseAsync(args, { from: "user" });
}

/** The exit code of a run that ended with `error`, after its one error line. */
function exitCodeFor(error: unknown, ctx: CliContext): number {
  if (error instanceof CommanderError) {
    // Help and version exit 0; every other commander error is a usage error (already written).
    return error.exitCode === 0 ? 0 : 2;
  }
  if (error instanceof Deno.errors.BrokenPipe) {
    ctx.stderr.line(
      formatErrorLine("standard output was closed before all received data was written"),
    );
    return 1;
  }
  if (error instanceof UsageError) {
    ctx.stderr.line(formatErrorLine(error.message));
    return 2;
  }
  const detail = error instanceof Error ? error.message : String(error);
  ctx.stderr.line(formatErrorLine(`internal error: ${detail}`));
  return 1;
}

if (import.meta.main) Deno.exitCode = await main(Deno.args);

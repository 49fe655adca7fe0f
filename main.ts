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
import { commanderOutput, formatErrorLine, writerSink } from "./report/reporter.ts";
import { UsageError } from "./syntax/usage.ts";

/** What a command module gives main: the command, built for a context. */
type CommandMaker = (ctx: CliContext) => CommandUnknownOpts;

/**
 * Every subcommand in dispatch-table order, each loaded only when needed: a run that names its
 * command loads that module alone (and so only the packages it uses), which keeps startup near
 * the cost of Deno and commander themselves.
 */
const COMMANDS: Record<string, () => Promise<CommandMaker>> = {
  socket: async () => (await import("./commands/socket.ts")).socketCommand,
  bind: async () => (await import("./commands/bind.ts")).bindCommand,
  connect: async () => (await import("./commands/connect.ts")).connectCommand,
  connectex: async () => (await import("./commands/connectex.ts")).connectexCommand,
  socketconnect: async () => (await import("./commands/socketconnect.ts")).socketconnectCommand,
  getlocaladdress: async () =>
    (await import("./commands/getlocaladdress.ts")).getlocaladdressCommand,
  getremoteaddress: async () =>
    (await import("./commands/getremoteaddress.ts")).getremoteaddressCommand,
  send: async () => (await import("./commands/send.ts")).sendCommand,
  receive: async () => (await import("./commands/receive.ts")).receiveCommand,
  disconnect: async () => (await import("./commands/disconnect.ts")).disconnectCommand,
  release: async () => (await import("./commands/release.ts")).releaseCommand,
  controlsocket: async () => (await import("./commands/controlsocket.ts")).controlsocketCommand,
  closesocket: async () => (await import("./commands/closesocket.ts")).closesocketCommand,
  accept: async () => (await import("./commands/accept.ts")).acceptCommand,
  run: async () => (await import("./commands/run.ts")).runCommand,
  session: async () => (await import("./commands/session.ts")).sessionCommand,
  demo: async () => (await import("./commands/demo.ts")).demoCommand,
};

/**
 * The command modules a run needs: the one `args` names, or all of them (for `--help`, an
 * unknown command and its suggestions, or no command at all).
 */
function commandsFor(args: readonly string[]): Array<() => Promise<CommandMaker>> {
  const named = args[0] !== undefined && Object.hasOwn(COMMANDS, args[0])
    ? COMMANDS[args[0]]
    : undefined;
  return named ? [named] : Object.values(COMMANDS);
}

/**
 * Whether `args` is a command for the session agent: a handle after the subcommand
 * (`send @1 …`), `socket`/`socketconnect` with `--session`, or `accept` with `--hold`. Help
 * (`-h`, `--help`) is never
 * routed, so it shows the command's own help.
 */
export function isSessionRoute(args: readonly string[]): boolean {
  const end = args.indexOf("--");
  const options = end === -1 ? args : args.slice(0, end);
  if (options.includes("--help") || options.includes("-h")) return false;
  if (args[0] === undefined || args[0].startsWith("-")) return false;
  if (args[1]?.startsWith("@")) return true;
  if (args[0] === "accept") return options.includes("--hold");
  return (args[0] === "socket" || args[0] === "socketconnect") && options.includes("--session");
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
    // A handle (`wsk send @1 …`) or `--session` sends the command to the session agent.
    if (isSessionRoute(args)) {
      const { runInSession } = await import("./session/client.ts");
      return await runInSession(args, ctx);
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
  const makers = await Promise.all(commandsFor(args).map((load) => load()));
  for (const make of makers) {
    program.addCommand(make(ctx).configureOutput(output).exitOverride());
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

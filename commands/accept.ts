/**
 * `wsk accept`: a listening socket that serves connections in one of several modes, for real
 * servers in a test: a count or `--keep-open`, allow and deny lists, WskAccept IRPs or the
 * WskAcceptEvent/WskReceiveEvent callbacks, and one summary line per connection. The serving
 * itself is in `engine/accept/`.
 *
 * @module
 */

import { InvalidArgumentError, Option } from "@commander-js/extra-typings";
import type { CliContext } from "../cli/command.ts";
import { runAction, wskCommand } from "../cli/command.ts";
import {
  collect,
  type Endpoint,
  parseCount,
  parseData,
  parseLocal,
  parseRemote,
  parseSize,
} from "../syntax/values.ts";
import { parseCidr } from "../engine/cidr.ts";
import { planAccept, serveAccept } from "../engine/accept/serve.ts";
import { parseName, type VerbDecl } from "../steps/verb.ts";
import { UsageError } from "../syntax/usage.ts";

/** Builds the `accept` command. */
export function command(ctx: CliContext) {
  return wskCommand(
    "accept",
    "Listen on LOCAL (default 127.0.0.1:0) and serve --count connections (or --keep-open) " +
      "concurrently, each in --mode, each ending with a Summary line.",
    "WskSocket, WskBind, WskAccept, then per connection WskReceive/WskSend (by mode; forward " +
      "first connects to the target with WskSocketConnect), " +
      "WskDisconnect, WskCloseSocket; with --events WskControlSocket (SO_WSK_EVENT_CALLBACK), " +
      "events WskAcceptEvent, WskReceiveEvent, WskDisconnectEvent, and WskRelease",
    [
      "wsk accept --mode echo --count 10",
      'wsk accept [::1]:8080 --mode reply --reply "HTTP/1.0 200 OK\\r\\n\\r\\nhello"',
      "wsk accept 127.0.0.1:9000 --mode print > received.bin",
      "wsk accept :9000 --keep-open --mode discard --allow 127.0.0.0/8 --deny 127.0.0.2",
      "wsk accept --mode verify --verify-bytes 1G --events",
      "wsk accept :9000 --keep-open --mode exec -- tr a-z A-Z",
      "wsk accept 127.0.0.1:8443 --keep-open --mode forward --to 10.0.0.5:443",
      "wsk accept 127.0.0.1:8443 --tls --cert server.pem --key server.key --mode reply --reply hi",
    ],
  )
    // LOCAL is parsed in the action: only there is it known whether the first operand is LOCAL
    // or the first word of an exec command (`wsk accept -- CMD`).
    .argument("[local]", "IP:PORT or [IPV6]:PORT to listen on")
    .argument("[command...]", "--mode exec: the command and its arguments, after --")
    .option(
      "--hold",
      "session agent: one WskAccept on a new listening socket, and keep both sockets as " +
        "handles for later commands (wsk accept LOCAL --hold; see session)",
    )
    .addOption(
      new Option("--count <n>", "connections to serve before exiting (refused peers do not count)")
        .default(1)
        .argParser(parseCount),
    )
    .addOption(
      new Option(
        "--keep-open",
        "serve until SIGINT/SIGTERM, or until --timeout passes with no new connection",
      ).conflicts("count"),
    )
    .addOption(
      new Option("--mode <mode>", "what to do with each connection")
        .choices(["echo", "discard", "print", "reply", "verify", "exec", "forward"] as const)
        .default("echo" as const),
    )
    .addOption(
      new Option("--reply <text>", "the reply for --mode reply (escapes: \\r \\n \\t \\xNN)")
        .argParser(parseData),
    )
    .addOption(
      new Option("--reply-file <file>", "the reply for --mode reply, read from a file")
        .conflicts("reply"),
    )
    .addOption(
      new Option(
        "--verify-bytes <size>",
        "--mode verify: the exact size expected (4096, 64K, 8M, 1G)",
      )
        .argParser(parseSize),
    )
    .addOption(
      new Option(
        "--to <remote>",
        "--mode forward: relay each connection to this HOST:PORT (implies the mode)",
      ).argParser(parseRemote),
    )
    .addOption(
      new Option("--allow <cidr>", "accept only peers in this network (repeatable)")
        .argParser(collect(parseCidr)),
    )
    .addOption(
      new Option("--deny <cidr>", "reset peers in this network (repeatable; wins over --allow)")
        .argParser(collect(parseCidr)),
    )
    .addOption(
      new Option(
        "--backing <kind>",
        "host sockets: node can always reset a connection (refused peers, failed " +
          "verifications), deno reads faster with flat memory and resets only with --allow-ffi " +
          "(default: node with --allow/--deny or --mode forward unless --allow-ffi is granted, " +
          "else deno)",
      ).choices(["deno", "node"] as const),
    )
    .option(
      "--tls",
      "serve TLS: each connection's TlsHandshake line, then the mode on plaintext (needs " +
        "--cert and --key; node backing)",
    )
    .option("--cert <file>", "--tls: the server's certificate chain (PEM)")
    .option("--key <file>", "--tls: the server's private key (PEM)")
    .addOption(
      new Option(
        "--events",
        "accept through WskAcceptEvent and receive through WskReceiveEvent instead of IRPs",
      ),
    )
    .action(async (first, rest, options, command) => {
      const rawArgs = (command.parent as { rawArgs?: string[] } | null)?.rawArgs ?? [];
      const { local, words } = splitOperands(
        rawArgs,
        first === undefined ? rest : [first, ...rest],
      );
      const localEndpoint = local === undefined ? undefined : parseOperand(local);
      if (options.hold) {
        if (words.length > 0) throw new UsageError("accept --hold takes no command");
        // The session agent makes the listening socket, binds it and takes one connection;
        // both become handles.
        if (localEndpoint === undefined) {
          throw new UsageError(
            "accept --hold takes the local address first: wsk accept LOCAL --hold",
          );
        }
        const family = localEndpoint.kind === "literal" ? localEndpoint.address.family : 2;
        const at = { line: 1, text: ["accept", localEndpoint.text, "--hold"].join(" ") };
        const { runSessionSteps } = await import("../session/client.ts");
        ctx.exitCode = await runSessionSteps(ctx, null, [
          { ...at, step: 1, socket: "listener", verb: "socket", family, listen: true },
          { ...at, step: 2, socket: "listener", verb: "bind", local: localEndpoint, listen: true },
          { ...at, step: 3, socket: "main", verb: "accept", listener: "listener" },
        ], {
          json: options.json === true,
          verbose: options.verbose === true,
          quiet: options.quiet === true,
          timeout: options.timeout,
        });
        return;
      }
      const explicitMode = command.getOptionValueSource("mode") === "cli";
      const settings = await planAccept(
        options,
        explicitMode,
        words,
      );
      await runAction(
        ctx,
        command,
        options,
        (run) => serveAccept(run, localEndpoint, settings, (bytes) => ctx.writePayload(bytes)),
        (reporter) => {
          if (settings.mode === "print" && options.json !== true) reporter.payloadOnStdout = true;
        },
      );
    });
}

/**
 * Splits accept's operands into LOCAL and the command of `--mode exec`, the words after `--` on
 * the command line (`rawArgs`, as typed). Commander hands every operand over in one list without
 * the `--`; so the command is the last as many operands as followed the `--`, and an operand
 * beyond LOCAL that did not follow one is a usage error (a word meant for something else).
 */
function splitOperands(
  rawArgs: readonly string[],
  operands: readonly string[],
): { local: string | undefined; words: string[] } {
  const marker = rawArgs.indexOf("--");
  const after = Math.min(operands.length, marker < 0 ? 0 : rawArgs.length - marker - 1);
  const before = operands.length - after;
  if (before > 1) {
    throw new UsageError(
      `Cannot use "${operands[1]}": accept takes one LOCAL address, and a command only after --`,
    );
  }
  return { local: before === 1 ? operands[0] : undefined, words: operands.slice(before) };
}

/** LOCAL, parsed as commander would have: a bad address is a usage error. */
function parseOperand(text: string): Endpoint {
  try {
    return parseLocal(text);
  } catch (error) {
    throw new UsageError(
      `command-argument value '${text}' is invalid for argument 'local'. ${
        error instanceof Error ? error.message : error
      }`,
    );
  }
}

/**
 * The `accept` verb as a step and on a handle: one WskAccept on a listening socket (a script's
 * `--listener NAME`, or the handle `@L`); the new connection gets the step's `--socket` name
 * (or a handle). The command line's `accept` is the server above.
 */
export const accept: VerbDecl = {
  name: "accept",
  summary: "Take one connection from a listening socket: WskAccept.",
  calls: "WskAccept",
  examples: ["accept --listener srv --socket conn", "wsk accept @2"],
  target: "none",
  options: [{
    flags: "--listener <name>",
    help: "the listening socket (a script's name)",
    parse: parseName,
  }],
  make({ options, entry }) {
    if (entry === "script" && options.listener === undefined) {
      throw new InvalidArgumentError("accept needs --listener NAME (the listening socket)");
    }
    if (entry === "handle" && options.listener !== undefined) {
      throw new InvalidArgumentError("the handle is the listening socket: drop --listener");
    }
    return { verb: "accept", listener: (options.listener as string | undefined) ?? "" };
  },
  handle: true,
  script: true,
};

/**
 * How a verb is declared, once, for every place it can be typed: on the command line
 * (`wsk receive 127.0.0.1:8080 --bytes 5`), as a step of a `wsk run` script
 * (`receive --bytes 5`), and on a session handle (`wsk receive @1 --bytes 5`). A declaration
 * names the verb's arguments and options with their parsers, checks what was given, and turns
 * it into the fields of a {@linkcode Step}. The three grammars are built from it here, so a verb
 * that gains an option has it everywhere.
 *
 * The command files (`commands/`) hold the declarations; whoever needs the whole table (the
 * script parser, the session agent) is handed it, so nothing here imports a command file.
 *
 * @module
 */

import { Command, CommanderError, InvalidArgumentError, Option } from "@commander-js/extra-typings";
import { type NTSTATUS, NTSTATUS_NAMES, ntStatusFromName } from "../provider/mod.ts";
import {
  type Endpoint,
  parseLocal,
  parseRemote,
  parseRetryUntil,
  parseTimeout,
} from "../syntax/values.ts";
import { UsageError } from "../syntax/usage.ts";
import type { Step, StepCommon, TlsStep } from "./step.ts";

/** Where a verb's words come from. */
export type Entry = "cli" | "script" | "handle";

/** One option of a verb: commander's flags, its help, its parser and its default. */
export interface OptionDecl {
  /** Commander flags, e.g. `"--bytes <n>"`, `"--listen"`, `"--verify-pattern [size]"`. */
  readonly flags: string;
  readonly help: string;
  /** Parses the option's text (and, for repeatable options, the values so far). */
  readonly parse?: (text: string, previous: never) => unknown;
  /** The value when the option is not given. */
  readonly default?: unknown;
  /** Options (by attribute name) this one cannot be given with. */
  readonly conflicts?: readonly string[];
  /**
   * The values shell completion offers (`wsk completions`); the parser alone decides what is
   * valid. A value ending in `=` is a prefix (`TCP_NODELAY=`), completed without a space.
   */
  readonly values?: readonly string[];
}

/** One positional argument after the verb's target. */
export interface ArgDecl {
  /** Its name in help: `"[data]"` (optional) or `"<local>"` (required). */
  readonly name: string;
  readonly help: string;
  readonly parse?: (text: string) => unknown;
  /**
   * An address that may be typed as two words, `HOST PORT`, as nc takes it: a word with no
   * port followed by a word that is only digits.
   */
  readonly address?: boolean;
}

/**
 * What a verb works on when typed on the command line:
 * - `remote`: it connects to REMOTE first (WskSocket, WskBind, WskConnect; `--bind`,
 *   `--retry-until`), then runs on that socket, then ends it;
 * - `none`: it makes its own socket from its options (socket, bind, socketconnect, connect).
 * In a script a step names its socket with `--socket NAME`; on a handle it is `@N`.
 */
export type Target = "remote" | "none";

/** What parsing gave: the positional values (after the target) and the options by name. */
export interface Parsed {
  readonly args: readonly unknown[];
  readonly options: Readonly<Record<string, unknown>>;
  /** Whether an option was typed (as opposed to its default). */
  readonly given: (name: string) => boolean;
  /** Where the words came from. */
  readonly entry: Entry;
}

/** The fields a verb adds to {@linkcode StepCommon}. */
export type StepFields = Omit<Step, keyof StepCommon>;

/** A verb, declared once. */
export interface VerbDecl {
  readonly name: string;
  /** One sentence: what the command-line form does. */
  readonly summary: string;
  /** The dispatch calls the command-line form makes, in order. */
  readonly calls: string;
  /** Command lines shown under the help. */
  readonly examples: readonly string[];
  readonly target: Target;
  /** Positionals after the target (or, with target `none`, the verb's own). */
  readonly args?: readonly ArgDecl[];
  readonly options: readonly OptionDecl[];
  /**
   * Checks the parsed words and makes the step's fields. Throws InvalidArgumentError or
   * UsageError for a combination that cannot work.
   */
  readonly make: (parsed: Parsed) => StepFields;
  /**
   * For a command-line form that connects first: whether its socket must be able to reset
   * (true unless the verb reads in bulk and never aborts on purpose).
   */
  readonly abortive?: (own: Step) => boolean;
  /**
   * For a command-line form that connects first with `--tls`: run TLS with Deno.startTls on the
   * deno backing (reads in bulk about twice as fast; the handshake line then has no protocol
   * version) instead of node:tls on the node backing. Only for a socket that never resets.
   */
  readonly fastTls?: boolean;
  /** Steps a command-line form runs after the verb's own (e.g. WskGetLocalAddress). */
  readonly after?: (own: Step) => readonly Record<string, unknown>[];
  /** Whether `--session` makes the socket in the session agent. */
  readonly session?: boolean;
  /** Whether the verb can work on a session handle (`@N`). */
  readonly handle: boolean;
  /** Whether the verb is a `wsk run` step. */
  readonly script: boolean;
}

/** The verbs by name. */
export type VerbTable = ReadonlyMap<string, VerbDecl>;

/** The options a command-line form that connects first takes for that connect. */
export const CONNECT_OPTIONS: readonly OptionDecl[] = [
  {
    flags: "--bind <local>",
    help: "local address to bind (default: wildcard, port 0)",
    parse: parseLocal,
  },
  {
    flags: "--retry-until <ms>",
    help: "retry a refused (or reset) connect with a new socket until this long has passed " +
      "(milliseconds, or 500ms, 5s, 2m), pausing 50-200 ms; one line with calls=ATTEMPTS",
    parse: parseRetryUntil,
  },
];

/**
 * The client TLS options of every step that connects (and, without `--tls`, of `starttls`):
 * `--ca`, `--servername` or `--alpn` alone mean `--tls` too.
 */
export const TLS_CLIENT_OPTIONS: readonly OptionDecl[] = [
  {
    flags: "--ca <pem>",
    help: "trust this CA certificate file (PEM) instead of the system roots; repeatable",
    parse: (text: string, previous: string[] | undefined) => [...(previous ?? []), absolute(text)],
  },
  {
    flags: "--servername <host>",
    help: "the name sent (SNI) and checked against the certificate (default: the host typed)",
    parse: parseServername,
  },
  {
    flags: "--alpn <protocols>",
    help: "offer these ALPN protocols, comma-separated, most wanted first (e.g. h2,http/1.1)",
    parse: parseAlpn,
  },
];

/** `--tls` and the client TLS options: what a connecting step takes. */
export const TLS_OPTIONS: readonly OptionDecl[] = [
  {
    flags: "--tls",
    help: "run a TLS handshake once connected (a TlsHandshake line); data then goes through it",
  },
  ...TLS_CLIENT_OPTIONS,
];

/** A path made absolute against the working directory (a handle's agent runs elsewhere). */
function absolute(path: string): string {
  if (path === "") throw new InvalidArgumentError('Cannot parse file "": empty path');
  return path.startsWith("/") ? path : `${Deno.cwd()}/${path}`;
}

/** Parses a TLS server name: a host name or an IP literal. */
export function parseServername(text: string): string {
  const bare = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  if (!/^[A-Za-z0-9_.:-]{1,253}$/.test(bare)) {
    throw new InvalidArgumentError(`Cannot parse server name "${text}": expected a host name`);
  }
  return bare;
}

/** Parses a comma-separated ALPN protocol list (`h2,http/1.1`). */
export function parseAlpn(text: string): string[] {
  const list = text.split(",").map((p) => p.trim());
  if (list.some((p) => p.length === 0 || p.length > 255)) {
    throw new InvalidArgumentError(
      `Cannot parse ALPN list "${text}": expected protocol names separated by commas`,
    );
  }
  return list;
}

/** The TLS a step asks for: `--tls`, or any client TLS option (which implies it). */
export function tlsOf(options: Readonly<Record<string, unknown>>): { tls?: TlsStep } {
  const wanted = options.tls === true || options.ca !== undefined ||
    options.servername !== undefined || options.alpn !== undefined;
  if (!wanted) return {};
  return {
    tls: {
      ca: (options.ca as string[] | undefined) ?? [],
      ...(options.servername === undefined ? {} : { servername: options.servername as string }),
      ...(options.alpn === undefined ? {} : { alpn: options.alpn as string[] }),
    },
  };
}

/** The options a step takes in every entry: the status it must complete with, its bound. */
export const STEP_OPTIONS: readonly OptionDecl[] = [
  {
    flags: "--status <name>",
    help: "the status the verb's own call must complete with (a negative test: exit 3 if not)",
    parse: parseStatus,
    // Full names, and the short forms the parser takes too (CONNECTION_REFUSED).
    values: [...NTSTATUS_NAMES.values()].flatMap((name) =>
      name.startsWith("STATUS_") ? [name, name.slice("STATUS_".length)] : [name]
    ),
  },
];

/** Parses an NTSTATUS name or hex value. */
export function parseStatus(text: string): NTSTATUS {
  const status = ntStatusFromName(text);
  if (status === undefined) {
    throw new InvalidArgumentError(`Cannot parse status "${text}": not an NTSTATUS name or hex`);
  }
  return status;
}

/** Parses a script socket name. */
export function parseName(text: string): string {
  if (!/^[A-Za-z_][\w-]{0,63}$/.test(text)) {
    throw new InvalidArgumentError(`Cannot parse socket name "${text}": expected a word`);
  }
  return text;
}

/** The attribute name commander gives an option (`--retry-until` → `retryUntil`). */
export function attributeOf(flags: string): string {
  const long = /--([a-z][a-z0-9-]*)/.exec(flags)![1]!.replace(/^no-/, "");
  return long.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** Adds one declared option to a commander command. */
export function addOption(command: { addOption(option: Option): unknown }, decl: OptionDecl): void {
  const option = new Option(decl.flags, decl.help);
  if (decl.parse) option.argParser(decl.parse as (text: string, previous: unknown) => unknown);
  if (decl.default !== undefined) option.default(decl.default);
  if (decl.conflicts) option.conflicts([...decl.conflicts]);
  command.addOption(option);
}

/** The remote-address argument of a command-line form that connects first. */
export const REMOTE_ARG: ArgDecl = {
  name: "<remote>",
  help: "HOST:PORT, [IPV6]:PORT, or HOST PORT as two words",
  parse: parseRemote,
  address: true,
};

/** Whether `text` names a host without a port (`127.0.0.1`, `::1`, `[::1]`, `localhost`). */
function lacksPort(text: string): boolean {
  if (text.startsWith("[")) return text.endsWith("]");
  const colons = text.split(":").length - 1;
  return colons === 0 || colons > 1;
}

/** `host` and `port` as one address word (`[::1]:80` for a bare IPv6 literal). */
function joinAddress(host: string, port: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Parses the positional words against `decls`: each through its parser, an address given as
 * `HOST PORT` joined first. Throws InvalidArgumentError for a missing or an extra word.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parsePositionals } from "./verb.ts";
 *
 * const remote = { name: "<remote>", help: "", address: true };
 * assert.deepEqual(parsePositionals([remote], ["127.0.0.1", "8080"]), ["127.0.0.1:8080"]);
 * assert.deepEqual(parsePositionals([remote], ["::1", "7"]), ["[::1]:7"]);
 * ```
 */
export function parsePositionals(decls: readonly ArgDecl[], words: readonly string[]): unknown[] {
  const rest = [...words];
  const values: unknown[] = [];
  for (const decl of decls) {
    let word = rest.shift();
    if (word === undefined) {
      if (decl.name.startsWith("<")) {
        throw new InvalidArgumentError(`missing required argument '${decl.name.slice(1, -1)}'`);
      }
      values.push(undefined);
      continue;
    }
    if (decl.address && lacksPort(word) && /^[0-9]{1,5}$/.test(rest[0] ?? "")) {
      word = joinAddress(word, rest.shift()!);
    }
    try {
      values.push(decl.parse ? decl.parse(word) : word);
    } catch (error) {
      if (!(error instanceof InvalidArgumentError)) throw error;
      // As commander words it for an argument it parses itself.
      throw new InvalidArgumentError(
        `command-argument value '${word}' is invalid for argument '${
          decl.name.slice(1, -1)
        }'. ${error.message}`,
      );
    }
  }
  if (rest.length > 0) {
    const expected = decls.length === 0 ? "none" : decls.map((d) => d.name).join(" ");
    throw new InvalidArgumentError(
      `too many arguments: "${rest.join(" ")}" (expected ${expected})`,
    );
  }
  return values;
}

/**
 * The options, in help order, a verb takes from `entry`: its own, the connect options of a
 * command-line form that connects first, and the step options.
 */
export function optionsOf(verb: VerbDecl, entry: Entry): OptionDecl[] {
  const connects = entry === "cli" && verb.target === "remote";
  return [
    ...verb.options,
    ...(connects ? [...CONNECT_OPTIONS, ...TLS_OPTIONS] : []),
    ...STEP_OPTIONS,
  ];
}

/**
 * A commander command for a script step or a handle command: silent (errors become
 * ScriptSyntaxError or a usage line), with the verb's arguments and options.
 */
export function stepParser(verb: VerbDecl, entry: Exclude<Entry, "cli">): Command {
  const command = new Command(verb.name)
    .exitOverride()
    .helpOption(false)
    .allowExcessArguments(false)
    .configureOutput({ writeOut: () => {}, writeErr: () => {}, outputError: () => {} });
  command.argument("[words...]");
  if (entry === "handle") {
    // The command line's global options, which a handle command takes too.
    addOption(command, { flags: "--json", help: "write JSON Lines" });
    addOption(command, { flags: "--verbose", help: "add the system error to failures" });
    addOption(command, { flags: "-q, --quiet", help: "print only failures" });
  }
  if (entry === "script") {
    addOption(command, {
      flags: "--socket <name>",
      help: "the socket this step works on",
      parse: parseName,
      default: "main",
    });
  }
  addOption(command, {
    flags: "--timeout <ms>",
    help: "bound for this step's calls",
    parse: parseTimeout,
  });
  for (const option of optionsOf(verb, entry)) addOption(command, option);
  return command as Command;
}

/** The common fields of a step, from parsed options. */
export function commonOf(
  options: Readonly<Record<string, unknown>>,
  at: { line: number; step: number; text: string; socket: string },
): StepCommon {
  return {
    ...at,
    ...(options.status === undefined ? {} : { status: options.status as NTSTATUS }),
    ...(options.timeout === undefined ? {} : { timeout: options.timeout as number }),
  };
}

/**
 * Parses a verb's words (after the verb, and after the handle for a handle command) into a
 * step. Throws UsageError with commander's message for words that do not parse.
 */
export function parseVerbWords(
  verb: VerbDecl,
  entry: Exclude<Entry, "cli">,
  words: readonly string[],
  at: { line: number; step: number; text: string; socket?: string },
  seen: (options: Record<string, unknown>) => void = () => {},
): Step {
  const command = stepParser(verb, entry);
  let step: Step | undefined;
  command.action((...values: unknown[]) => {
    const self = values.at(-1) as Command;
    const options = self.opts() as Record<string, unknown>;
    seen(options);
    const fields = verb.make({
      args: parsePositionals(verb.args ?? [], values[0] as string[]),
      options,
      given: (name) => self.getOptionValueSource(name) === "cli",
      entry,
    });
    const socket = at.socket ?? (options.socket as string | undefined) ?? "main";
    step = { ...commonOf(options, { ...at, socket }), ...fields } as Step;
  });
  try {
    command.parse([...words], { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError || error instanceof InvalidArgumentError) {
      throw new UsageError(error.message.replace(/^error: /, ""));
    }
    throw error;
  }
  return step!;
}

/**
 * Parses a handle command's words (after `@N`) into its step, on the socket `main`, and the
 * options (with `--json` and `--verbose`). Throws UsageError.
 */
export function parseHandleWords(
  verb: VerbDecl,
  words: readonly string[],
  text: string,
): { step: Step; options: Record<string, unknown> } {
  let options: Record<string, unknown> = {};
  const step = parseVerbWords(
    verb,
    "handle",
    words,
    { line: 1, step: 1, text, socket: "main" },
    (o) => options = o,
  );
  return { step, options };
}

/** The endpoint of a `--bind`, when it was given. */
export function bindOf(options: Readonly<Record<string, unknown>>): { bind?: Endpoint } {
  return options.bind === undefined ? {} : { bind: options.bind as Endpoint };
}

/** The `--retry-until` deadline, when it was given. */
export function retryOf(options: Readonly<Record<string, unknown>>): { retryUntil?: number } {
  return options.retryUntil === undefined ? {} : { retryUntil: options.retryUntil as number };
}

/** `--hex` and `--progress`, which send and receive share. */
export const TRACE_OPTIONS: readonly OptionDecl[] = [
  { flags: "--hex", help: "hex dump every chunk sent (>) and received (<) to stderr" },
  {
    flags: "--progress",
    help: "show bytes, rate and elapsed time on stderr (default: on a terminal, over 1 MiB)",
  },
  { flags: "--no-progress", help: "never show progress" },
];

/** The values of {@linkcode TRACE_OPTIONS}. `--progress` with `--json` is a usage error. */
export function tracedOf(options: Readonly<Record<string, unknown>>): {
  hex: boolean;
  progress?: boolean;
} {
  if (options.progress === true && options.json === true) {
    throw new UsageError('Cannot use "--progress" with "--json": progress is for terminals');
  }
  return {
    hex: options.hex === true,
    ...(typeof options.progress === "boolean" ? { progress: options.progress } : {}),
  };
}

/** Parses a regular expression (dot matches newlines). */
export function parseRegex(text: string): RegExp {
  try {
    return new RegExp(text, "s");
  } catch (error) {
    throw new InvalidArgumentError(
      `Cannot parse regular expression "${text}": ${
        error instanceof Error ? error.message : error
      }`,
    );
  }
}

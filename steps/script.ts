/**
 * The dispatch-script language of `wsk run`: one step per line, `#` comments, shell-style
 * quoting (POSIX rules, no expansion), the verbs and options of the subcommands. This module
 * only parses; `run.ts` executes. Every syntax error names its line and is found before any
 * socket opens.
 *
 * @module
 */

import { Command, CommanderError, InvalidArgumentError, Option } from "@commander-js/extra-typings";
import { split } from "shlex";
import { type AddressFamily, type NTSTATUS, ntStatusFromName } from "../provider/mod.ts";
import {
  collect,
  type Endpoint,
  type OptionSetting,
  type OptionSpec,
  parseByteCount,
  parseData,
  parseFamily,
  parseFirstData,
  parseLocal,
  parseOptionName,
  parseOptionSetting,
  parseRemote,
  parseRetryUntil,
  parseSize,
  parseTimeout,
} from "../syntax/values.ts";

/** A syntax error in a script, with the line it is on. */
export class ScriptSyntaxError extends Error {
  override name = "ScriptSyntaxError";
  readonly line: number;

  constructor(line: number, message: string) {
    super(`line ${line}: ${message}`);
    this.line = line;
  }
}

/** What every step may say. */
export interface StepCommon {
  /** 1-based line in the script. */
  readonly line: number;
  /** 1-based step number. */
  readonly step: number;
  /** The step as written (for messages). */
  readonly text: string;
  /** The socket the step works on. */
  readonly socket: string;
  /** The status the step's own dispatch call must complete with (a negative test). */
  readonly status?: NTSTATUS;
  /** Per-call bound for this step, overriding the run's --timeout. */
  readonly timeout?: number;
}

/** One parsed step. */
export type Step =
  & StepCommon
  & (
    | { readonly verb: "socket"; readonly family: AddressFamily; readonly listen: boolean }
    | { readonly verb: "bind"; readonly local: Endpoint }
    | {
      readonly verb: "connect";
      readonly remote: Endpoint;
      readonly bind?: Endpoint;
      readonly retryUntil?: number;
    }
    | {
      readonly verb: "connectex";
      readonly remote: Endpoint;
      readonly data: Uint8Array;
      readonly bind?: Endpoint;
    }
    | { readonly verb: "socketconnect"; readonly remote: Endpoint; readonly bind?: Endpoint }
    | {
      readonly verb: "send";
      readonly data?: Uint8Array;
      readonly pattern?: number;
      readonly nodelay: boolean;
    }
    | {
      readonly verb: "receive";
      readonly bytes?: number;
      readonly waitAll: boolean;
      readonly drain: boolean;
      readonly until?: Uint8Array;
      readonly expect?: Uint8Array;
      readonly expectRe?: RegExp;
      readonly verifyPattern?: number | true;
    }
    | { readonly verb: "disconnect"; readonly data?: Uint8Array; readonly abortive: boolean }
    | { readonly verb: "getlocaladdress" }
    | { readonly verb: "getremoteaddress" }
    | {
      readonly verb: "controlsocket";
      readonly set: readonly OptionSetting[];
      readonly get: readonly OptionSpec[];
    }
    | { readonly verb: "closesocket" }
    | { readonly verb: "accept"; readonly listener: string }
  );

/** The verbs a script knows. */
export const VERBS = [
  "socket",
  "bind",
  "connect",
  "connectex",
  "socketconnect",
  "send",
  "receive",
  "disconnect",
  "getlocaladdress",
  "getremoteaddress",
  "controlsocket",
  "closesocket",
  "accept",
] as const;

function parseStatus(text: string): NTSTATUS {
  const status = ntStatusFromName(text);
  if (status === undefined) {
    throw new InvalidArgumentError(`Cannot parse status "${text}": not an NTSTATUS name or hex`);
  }
  return status;
}

function parseRegex(text: string): RegExp {
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

function parseName(text: string): string {
  if (!/^[A-Za-z_][\w-]{0,63}$/.test(text)) {
    throw new InvalidArgumentError(`Cannot parse socket name "${text}": expected a word`);
  }
  return text;
}

/** A commander parser for one verb: the shared options, then the verb's own. */
function stepCommand(verb: string) {
  return new Command(verb)
    .exitOverride()
    .helpOption(false)
    .allowExcessArguments(false)
    .configureOutput({ writeOut: () => {}, writeErr: () => {}, outputError: () => {} })
    .option("--socket <name>", "the socket this step works on", parseName, "main")
    .option("--status <name>", "the status this step's call must complete with", parseStatus)
    .option("--timeout <ms>", "bound for this step's calls", parseTimeout);
}

/**
 * Parses one step's words into a {@linkcode Step}. Throws ScriptSyntaxError. It does not check
 * that the step's sockets exist (the caller knows which do).
 */
export function parseStep(words: string[], line: number, step: number, text: string): Step {
  const verb = words[0]!;
  const args = words.slice(1);
  let parsed: Step | undefined;
  const base = (o: { socket: string; status?: NTSTATUS; timeout?: number }) => ({
    line,
    step,
    text,
    socket: o.socket,
    ...(o.status === undefined ? {} : { status: o.status }),
    ...(o.timeout === undefined ? {} : { timeout: o.timeout }),
  });
  const bindOption = (c: ReturnType<typeof stepCommand>) =>
    c.option("--bind <local>", "local address", parseLocal);
  let command;
  switch (verb) {
    case "socket":
      command = stepCommand(verb)
        .option("--family <family>", "inet or inet6", parseFamily, 2 as AddressFamily)
        .option("--listen", "a listening socket")
        .action((o) => {
          parsed = { ...base(o), verb, family: o.family, listen: o.listen === true };
        });
      break;
    case "bind":
      command = stepCommand(verb).argument("<local>", "", parseLocal).action((local, o) => {
        parsed = { ...base(o), verb, local };
      });
      break;
    case "connect":
      command = bindOption(stepCommand(verb))
        .argument("<remote>", "", parseRemote)
        .addOption(
          new Option("--retry-until <ms>", "retry a refused connect until then")
            .argParser(parseRetryUntil)
            .conflicts("status"),
        )
        .action((remote, o) => {
          parsed = {
            ...base(o),
            verb,
            remote,
            ...(o.bind ? { bind: o.bind } : {}),
            ...(o.retryUntil === undefined ? {} : { retryUntil: o.retryUntil }),
          };
        });
      break;
    case "socketconnect":
      command = bindOption(stepCommand(verb)).argument("<remote>", "", parseRemote).action(
        (remote, o) => {
          parsed = { ...base(o), verb, remote, ...(o.bind ? { bind: o.bind } : {}) };
        },
      );
      break;
    case "connectex":
      command = bindOption(stepCommand(verb))
        .argument("<remote>", "", parseRemote)
        .argument("[data]", "", parseFirstData)
        .option("--data <text>", "first data", parseFirstData)
        .action((remote, data, o) => {
          const first = data ?? o.data;
          if (!first) {
            throw new InvalidArgumentError("connectex needs data (an argument or --data)");
          }
          parsed = { ...base(o), verb, remote, data: first, ...(o.bind ? { bind: o.bind } : {}) };
        });
      break;
    case "send":
      command = stepCommand(verb)
        .argument("[data]", "", parseData)
        .option("--data <text>", "data to send", parseData)
        .option("--pattern <size>", "send SIZE bytes of the verification pattern", parseSize)
        .option("--nodelay", "WSK_FLAG_NODELAY")
        .action((data, o) => {
          const bytes = data ?? o.data;
          if (!bytes === (o.pattern === undefined)) {
            throw new InvalidArgumentError("send needs data (an argument or --data) or --pattern");
          }
          parsed = {
            ...base(o),
            verb,
            nodelay: o.nodelay === true,
            ...(bytes ? { data: bytes } : { pattern: o.pattern! }),
          };
        });
      break;
    case "receive":
      command = stepCommand(verb)
        .option("--bytes <n>", "stop after N bytes", parseByteCount)
        .option("--waitall", "WSK_FLAG_WAITALL")
        .addOption(
          new Option("--drain", "WSK_FLAG_DRAIN").conflicts(["waitall", "bytes", "until"]),
        )
        .option("--until <text>", "receive until this text has arrived", parseData)
        .option("--expect <text>", "the data must contain this text", parseData)
        .option("--expect-re <regex>", "the data must match this regular expression", parseRegex)
        .addOption(
          new Option("--verify-pattern [size]", "the data must be the verification pattern")
            .argParser(parseSize)
            .conflicts(["until", "expect", "expectRe", "drain", "bytes"]),
        )
        .action((o) => {
          parsed = {
            ...base(o),
            verb,
            waitAll: o.waitall === true,
            drain: o.drain === true,
            ...(o.bytes === undefined ? {} : { bytes: o.bytes }),
            ...(o.until ? { until: o.until } : {}),
            ...(o.expect ? { expect: o.expect } : {}),
            ...(o.expectRe ? { expectRe: o.expectRe } : {}),
            ...(o.verifyPattern === undefined ? {} : { verifyPattern: o.verifyPattern }),
          };
        });
      break;
    case "disconnect":
      command = stepCommand(verb)
        .argument("[data]", "", parseData)
        .option("--data <text>", "final data", parseData)
        .option("--abortive", "reset instead of FIN")
        .action((data, o) => {
          const final = data ?? o.data;
          if (final && o.abortive) {
            throw new InvalidArgumentError("--abortive takes no data (an RST carries none)");
          }
          parsed = {
            ...base(o),
            verb,
            abortive: o.abortive === true,
            ...(final ? { data: final } : {}),
          };
        });
      break;
    case "getlocaladdress":
    case "getremoteaddress":
    case "closesocket":
      command = stepCommand(verb).action((o) => {
        parsed = { ...base(o), verb };
      });
      break;
    case "controlsocket":
      command = stepCommand(verb)
        .option("--set <name=value>", "WskSetOption", collect(parseOptionSetting))
        .option("--get <name>", "WskGetOption or WskIoctl", collect(parseOptionName))
        .action((o) => {
          if (!o.set && !o.get) {
            throw new InvalidArgumentError("controlsocket needs --set or --get");
          }
          parsed = { ...base(o), verb, set: o.set ?? [], get: o.get ?? [] };
        });
      break;
    case "accept":
      command = stepCommand(verb)
        .requiredOption("--listener <name>", "the listening socket", parseName)
        .action((o) => {
          parsed = { ...base(o), verb, listener: o.listener };
        });
      break;
    default:
      throw new ScriptSyntaxError(
        line,
        `unknown step "${verb}" (expected one of ${VERBS.join(", ")})`,
      );
  }
  try {
    command.parse(args, { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError || error instanceof InvalidArgumentError) {
      throw new ScriptSyntaxError(line, error.message.replace(/^error: /, ""));
    }
    throw error;
  }
  return parsed!;
}

/** Cuts a trailing `# comment` that stands outside quotes. */
function stripComment(line: string): string {
  let quote: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === "\\" && quote === '"') i++;
      else if (c === quote) quote = null;
    } else if (c === "\\") i++;
    else if (c === "'" || c === '"') quote = c;
    else if (c === "#" && (i === 0 || /\s/.test(line[i - 1]!))) return line.slice(0, i);
  }
  return line;
}

/**
 * Which sockets a step needs to exist, which it brings into being (`fresh`: it must not be
 * live already, or the old one would be lost), and which it ends.
 */
function socketsOf(
  step: Step,
): { needs: string[]; makes: string[]; fresh: boolean; ends?: string } {
  switch (step.verb) {
    case "socket":
    case "socketconnect":
      return { needs: [], makes: [step.socket], fresh: true };
    case "connect":
      return { needs: [], makes: [step.socket], fresh: step.retryUntil !== undefined };
    case "bind":
    case "connectex":
      return { needs: [], makes: [step.socket], fresh: false };
    case "accept":
      return { needs: [step.listener], makes: [step.socket], fresh: true };
    case "closesocket":
      return { needs: [step.socket], makes: [], fresh: false, ends: step.socket };
    default:
      return { needs: [step.socket], makes: [], fresh: false };
  }
}

/** A `--bind` literal whose family differs from the remote literal's. */
function familyClash(step: Step): string | null {
  if (step.verb !== "connect" && step.verb !== "connectex" && step.verb !== "socketconnect") {
    return null;
  }
  const { remote, bind } = step;
  if (remote.kind !== "literal" || bind?.kind !== "literal") return null;
  return remote.address.family === bind.address.family
    ? null
    : `cannot bind "${bind.text}" to reach "${remote.text}": the address families differ`;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/**
 * Decodes a script file as UTF-8, refusing bytes that are not: they would become U+FFFD and be
 * sent as EF BF BD. Throws ScriptSyntaxError naming the line of the first invalid byte.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeScript } from "./script.ts";
 *
 * assert.throws(() => decodeScript(new Uint8Array([0x0a, 0x61, 0xff])), /^ScriptSyntaxError: line 2:/);
 * ```
 */
export function decodeScript(bytes: Uint8Array): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    // Find the first byte that does not decode: the longest valid prefix ends before it.
    let low = 0;
    let high = bytes.length;
    while (low < high) {
      const middle = Math.ceil((low + high) / 2);
      if (isUtf8Prefix(bytes.subarray(0, middle))) low = middle;
      else high = middle - 1;
    }
    // The bad sequence starts where the longest complete prefix ends (at most 3 bytes back).
    let at = low;
    while (at > 0 && at > low - 3 && !isUtf8Prefix(bytes.subarray(0, at), true)) at--;
    const line = bytes.subarray(0, at).reduce((n, byte) => byte === 0x0a ? n + 1 : n, 1);
    // A file valid as a prefix ends inside a sequence: it is cut short there.
    const what = low === bytes.length
      ? "the script ends inside a UTF-8 sequence"
      : `byte 0x${bytes[at]!.toString(16).padStart(2, "0")} at offset ${at}`;
    throw new ScriptSyntaxError(
      line,
      `invalid UTF-8 (${what}); write bytes that are not UTF-8 as \\xNN in a quoted text`,
    );
  }
}

/** Whether `bytes` is valid UTF-8 (`complete`), or up to a sequence its end may cut short. */
function isUtf8Prefix(bytes: Uint8Array, complete = false): boolean {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(bytes, { stream: !complete });
    return true;
  } catch {
    return false;
  }
}

/**
 * Parses a whole script. Blank lines and `#` comments are skipped. Throws ScriptSyntaxError
 * for the first bad line, including a step on a socket no earlier step created.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseScript } from "./script.ts";
 *
 * const steps = parseScript('socketconnect 127.0.0.1:8080\nsend "PING\\r\\n"\n# done\n');
 * assert.deepEqual(steps.map((s) => [s.line, s.verb]), [[1, "socketconnect"], [2, "send"]]);
 * ```
 */
export function parseScript(source: string | Uint8Array): Step[] {
  if (typeof source !== "string") source = decodeScript(source);
  const steps: Step[] = [];
  const known = new Set<string>();
  const lines = source.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const text = stripComment(lines[i]!).trim();
    if (text === "") continue;
    let words: string[];
    try {
      words = split(text);
    } catch (error) {
      throw new ScriptSyntaxError(i + 1, error instanceof Error ? error.message : String(error));
    }
    if (words.length === 0) continue;
    const step = parseStep(words, i + 1, steps.length + 1, text);
    const { needs, makes, fresh, ends } = socketsOf(step);
    for (const name of needs) {
      if (!known.has(name)) {
        throw new ScriptSyntaxError(i + 1, `no socket "${name}" exists here; create it first`);
      }
    }
    if (fresh) {
      for (const name of makes) {
        if (known.has(name)) {
          throw new ScriptSyntaxError(
            i + 1,
            `socket "${name}" is still open; close it first or use another --socket name`,
          );
        }
      }
    }
    const clash = familyClash(step);
    if (clash) throw new ScriptSyntaxError(i + 1, clash);
    for (const name of makes) known.add(name);
    if (ends) known.delete(ends);
    steps.push(step);
  }
  if (steps.length === 0) throw new ScriptSyntaxError(1, "the script has no steps");
  return steps;
}

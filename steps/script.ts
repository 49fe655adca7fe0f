/**
 * The dispatch-script language of `wsk run`: one step per line, `#` comments, shell-style
 * quoting (POSIX rules, no expansion), the verbs and options of the subcommands. This module
 * only parses; `run.ts` executes. Every syntax error names its line and is found before any
 * socket opens.
 *
 * @module
 */

import { split } from "shlex";
import { UsageError } from "../syntax/usage.ts";
import type { Step } from "./step.ts";
import { parseVerbWords, type VerbTable } from "./verb.ts";

export type { Step, StepCommon } from "./step.ts";

/** A syntax error in a script, with the line it is on. */
export class ScriptSyntaxError extends Error {
  override name = "ScriptSyntaxError";
  readonly line: number;

  constructor(line: number, message: string) {
    super(`line ${line}: ${message}`);
    this.line = line;
  }
}

/**
 * Parses one step's words (the verb first) into a {@linkcode Step}, with the verb's one
 * declaration. Throws ScriptSyntaxError. It does not check that the step's sockets exist (the
 * caller knows which do).
 */
export function parseStep(
  verbs: VerbTable,
  words: string[],
  line: number,
  step: number,
  text: string,
): Step {
  const name = words[0]!;
  const verb = verbs.get(name);
  if (verb === undefined || !verb.script) {
    const known = [...verbs.values()].filter((v) => v.script).map((v) => v.name);
    throw new ScriptSyntaxError(
      line,
      `unknown step "${name}" (expected one of ${known.join(", ")})`,
    );
  }
  try {
    return parseVerbWords(verb, "script", words.slice(1), { line, step, text });
  } catch (error) {
    if (error instanceof UsageError) throw new ScriptSyntaxError(line, error.message);
    throw error;
  }
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
      return { needs: [], makes: [step.socket], fresh: true };
    case "socketconnect":
      // A port list keeps no socket.
      return step.ports ? { needs: [], makes: [], fresh: false } : {
        needs: [],
        makes: [step.socket],
        fresh: true,
      };
    case "connect":
    case "connectex":
      return { needs: [], makes: [step.socket], fresh: step.retryUntil !== undefined };
    case "bind":
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
 * for the first bad line, including a step on a socket no earlier step created. `verbs` is
 * the declaration table every step is parsed with.
 */
export function parseScript(source: string | Uint8Array, verbs: VerbTable): Step[] {
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
    const step = parseStep(verbs, words, i + 1, steps.length + 1, text);
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

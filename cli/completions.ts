/**
 * Shell completion scripts made from the declarations: the commander program main.ts builds
 * (every visible command, subcommand, option, argument and `.choices()`), with the values a
 * verb's {@linkcode OptionDecl} offers (socket option names, status names, families). Nothing is
 * listed by hand, so an option added anywhere completes without a change here.
 *
 * A value completes by what the declaration says: its choices, its declared values, file names
 * when the value is named like a file (`<file>`, `<path>`, `<log>`, `<script>`, `<pem>`, `<ca-file>`),
 * directories for `<dir>`, and nothing for other free text (`<ms>`, `<n>`).
 *
 * The scripts run no `wsk` process: all they know is written into them.
 *
 * @module
 */

import { type CommandUnknownOpts, Help } from "@commander-js/extra-typings";
import { optionsOf, type VerbTable } from "../steps/verb.ts";

/** The shells `wsk completions` writes for. */
export const SHELLS = ["bash", "zsh", "fish"] as const;

/** A shell `wsk completions` writes for. */
export type Shell = typeof SHELLS[number];

/** What completes where a value goes. */
export type ValueSpec =
  & { readonly name: string }
  & (
    | { readonly kind: "choices"; readonly values: readonly string[] }
    | { readonly kind: "files" }
    | { readonly kind: "dirs" }
    | { readonly kind: "text" }
  );

/** One option: its flags (`-q`, `--quiet`), help, and value (null for a switch). */
export interface OptionSpec {
  readonly flags: readonly string[];
  readonly help: string;
  readonly value: ValueSpec | null;
  /** Whether the value may be left out (`--verify-pattern [size]`). */
  readonly optionalValue: boolean;
}

/** One command of the program, with its subcommands. */
export interface CommandSpec {
  /** The words from the program to this command (empty for the program itself). */
  readonly path: readonly string[];
  readonly summary: string;
  readonly options: readonly OptionSpec[];
  /** What completes for positional words (the first declared argument's kind, if any). */
  readonly positional: ValueSpec | null;
  readonly commands: readonly CommandSpec[];
}

/** Value names that stand for a file, and for a directory. */
const FILE_VALUE_REGEXP = /(^|-)(file|path|log|script|pem)s?$/i;
const DIR_VALUE_REGEXP = /(^|-)dir(ectory)?$/i;

/** What completes for a value named `name` with `choices`, or the values a declaration offers. */
function valueOf(name: string, choices: readonly string[] | undefined): ValueSpec {
  if (choices !== undefined && choices.length > 0) {
    return { kind: "choices", name, values: choices };
  }
  if (FILE_VALUE_REGEXP.test(name)) return { kind: "files", name };
  if (DIR_VALUE_REGEXP.test(name)) return { kind: "dirs", name };
  return { kind: "text", name };
}

/** A help text's first clause, on one line (a shell shows it beside the candidate). */
function brief(text: string): string {
  const line = text.split("\n")[0]!.replace(/\s+/g, " ").trim();
  const clause = line.split(/(?<=[a-z0-9)])(?:\. |; | \()/)[0]!.replace(/\.$/, "");
  return clause.length <= 80 ? clause : `${clause.slice(0, 79).trimEnd()}…`;
}

/**
 * Describes `program` for completion: every visible command and option, each option's values
 * from its commander choices or, for a declared verb's option, its {@linkcode OptionDecl}
 * values.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Command, Option } from "@commander-js/extra-typings";
 * import { describeProgram } from "./completions.ts";
 *
 * const program = new Command("wsk");
 * program.addCommand(
 *   new Command("accept").addOption(new Option("--mode <mode>").choices(["echo", "print"])),
 * );
 * const spec = describeProgram(program, new Map());
 * const mode = spec.commands[0]!.options.find((o) => o.flags.includes("--mode"))!;
 * assert.deepEqual(mode.value, { kind: "choices", name: "mode", values: ["echo", "print"] });
 * ```
 */
export function describeProgram(program: CommandUnknownOpts, verbs: VerbTable): CommandSpec {
  return describe(program, [], verbs);
}

function describe(
  command: CommandUnknownOpts,
  path: readonly string[],
  verbs: VerbTable,
): CommandSpec {
  const help = new Help();
  const verb = path.length === 1 ? verbs.get(path[0]!) : undefined;
  const declared = verb === undefined ? [] : optionsOf(verb, "cli");
  const options = help.visibleOptions(command as never).map((option): OptionSpec => {
    const flags = [option.short, option.long].filter((flag): flag is string => !!flag);
    const name = /[<[]([^>\]]+)[>\]]/.exec(option.flags)?.[1];
    const offered = declared.find((decl) => decl.flags === option.flags)?.values ??
      option.argChoices;
    return {
      flags,
      help: brief(option.description),
      value: name === undefined ? null : valueOf(name, offered),
      optionalValue: option.optional,
    };
  });
  // A verb built from a declaration takes its words as one list (`[words...]`): addresses and
  // data, which complete as free text.
  const first = command.registeredArguments[0];
  const positional = first === undefined ? null : valueOf(first.name(), first.argChoices);
  return {
    path,
    summary: brief(command.summary() || command.description()),
    options,
    positional,
    commands: help.visibleCommands(command as never)
      .filter((sub) => sub.name() !== "help")
      .map((sub) => describe(sub as CommandUnknownOpts, [...path, sub.name()], verbs)),
  };
}

/** Every command of `spec`, depth first, the program itself first. */
function allCommands(spec: CommandSpec): CommandSpec[] {
  return [spec, ...spec.commands.flatMap(allCommands)];
}

/**
 * The distinct value lists of a program (the status names appear under every verb): each is
 * written once into a script, and its options refer to it by number.
 */
function valueLists(spec: CommandSpec): string[] {
  const lists = new Set<string>();
  for (const command of allCommands(spec)) {
    for (const value of [...command.options.map((o) => o.value), command.positional]) {
      if (value?.kind === "choices") lists.add(value.values.join(" "));
    }
  }
  return [...lists];
}

/** The number of `value`'s list in `lists`. */
function listOf(lists: readonly string[], value: { readonly values: readonly string[] }): number {
  return lists.indexOf(value.values.join(" "));
}

/** `text` quoted for a POSIX shell (bash, zsh): in single quotes. */
function quote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/** The completion script of `shell` for the program `spec` describes. */
export function completionScript(shell: Shell, spec: CommandSpec): string {
  switch (shell) {
    case "bash":
      return bashScript(spec);
    case "zsh":
      return zshScript(spec);
    case "fish":
      return fishScript(spec);
  }
}

/** The header every script starts with. */
function header(comment: string, shell: Shell, install: string): string {
  return [
    `${comment} ${shell} completion for wsk, made by \`wsk completions ${shell}\` from the`,
    `${comment} command declarations: make it again after an upgrade. Install:`,
    `${comment}   ${install}`,
  ].join("\n");
}

/** A bash `case` pattern matching a command path (`"session start"`). */
function bashPath(path: readonly string[]): string {
  return quote(path.join(" "));
}

/** The bash lines that complete one value (COMPREPLY from `$cur`), then return. */
function bashValue(value: ValueSpec, lists: readonly string[]): string {
  switch (value.kind) {
    case "choices":
      return `_wsk_list ${listOf(lists, value)}; return`;
    case "files":
      return "_wsk_files -f; return";
    case "dirs":
      return "_wsk_files -d; return";
    case "text":
      return "return";
  }
}

/**
 * The bash lines for the word after an option: its value. A value that may be left out
 * completes only when the word does not start an option (and free text not at all).
 */
function bashOptionValue(option: OptionSpec, lists: readonly string[]): string {
  const value = option.value!;
  if (!option.optionalValue) return bashValue(value, lists);
  if (value.kind === "text") return ":";
  return `if [[ $cur != -* ]]; then ${bashValue(value, lists)}; fi`;
}

function bashScript(spec: CommandSpec): string {
  const commands = allCommands(spec);
  const lists = valueLists(spec);
  const subcommands = commands
    .filter((command) => command.commands.length > 0)
    .map((command) =>
      `    ${bashPath(command.path)}) subs=${
        quote(command.commands.map((sub) => sub.path.at(-1)).join(" "))
      } ;;`
    );
  const arms = commands.map((command) => {
    const valued = command.options.filter((option) => option.value !== null);
    const values = valued.map((option) =>
      `        ${option.flags.map(quote).join("|")}) ${bashOptionValue(option, lists)} ;;`
    );
    const flags = command.options.flatMap((option) => option.flags).join(" ");
    const positional = command.positional === null || command.positional.kind === "text"
      ? ""
      : `\n      if [[ $cur != -* ]]; then ${bashValue(command.positional, lists)}; fi`;
    return [
      `    ${bashPath(command.path)})`,
      ...(values.length === 0 ? [] : ["      case $opt in", ...values, "      esac"]),
      `      flags=${quote(flags)}${positional}`,
      "      ;;",
    ].join("\n");
  });
  return `${
    header("#", "bash", "wsk completions bash > ~/.local/share/bash-completion/completions/wsk")
  }

# Offers the words of $1 that start with $cur.
# (A loop, not compgen in a subshell: no process is started. set -f: the words are not globs.)
_wsk_words() {
  local IFS=$' \\t\\n' word -
  set -f
  COMPREPLY=()
  for word in $1; do
    [[ $word == "$cur"* ]] && COMPREPLY+=("$word")
  done
  # A prefix such as TCP_NODELAY= takes its value in the same word: no space after it.
  [[ \${#COMPREPLY[@]} -eq 1 && \${COMPREPLY[0]} == *= ]] && compopt -o nospace 2>/dev/null
  return 0
}

# Offers the words of value list $1 that start with $cur.
_wsk_list() {
  case $1 in
${lists.map((list, n) => `    ${n}) _wsk_words ${quote(list)} ;;`).join("\n")}
  esac
}

# Offers file (-f) or directory (-d) names that start with $cur.
_wsk_files() {
  local IFS=$'\\n'
  compopt -o filenames 2>/dev/null
  COMPREPLY=($(compgen "$1" -- "$cur"))
}

_wsk() {
  local cur=\${COMP_WORDS[COMP_CWORD]} opt=\${COMP_WORDS[COMP_CWORD-1]}
  local path="" subs flags word i
  COMPREPLY=()
  # --mode=echo is three words to bash (= breaks words): the option is before the =.
  if [[ $cur == "=" ]]; then
    cur=""
  elif [[ $opt == "=" ]]; then
    opt=\${COMP_WORDS[COMP_CWORD-2]}
  fi
  # The command path: each word that names a subcommand of the path so far. After --, the
  # words are another program's (accept --mode exec -- CMD ARGS): a command, then file names.
  for ((i = 1; i < COMP_CWORD; i++)); do
    word=\${COMP_WORDS[i]}
    if [[ $word == "--" ]]; then
      if ((i == COMP_CWORD - 1)); then
        COMPREPLY=($(compgen -c -- "$cur" | sort -u))
      else
        _wsk_files -f
      fi
      return 0
    fi
    subs=""
    case $path in
${subcommands.join("\n")}
    esac
    if [[ " $subs " == *" $word "* ]]; then path=\${path:+$path }$word; fi
  done
  subs=""
  case $path in
${subcommands.join("\n")}
  esac
  case $path in
${arms.join("\n")}
  esac
  if [[ -n $subs && $cur != -* ]]; then
    _wsk_words "$subs"
  else
    _wsk_words "$flags"
  fi
  return 0
}

complete -F _wsk wsk
`;
}

/** `text` for a zsh `_arguments` description in brackets. */
function zshHelp(text: string): string {
  return text.replace(/([\\[\]:])/g, "\\$1");
}

/** The name of the zsh function that completes a command path. */
function zshFunction(path: readonly string[]): string {
  return ["_wsk", ...path.map((word) => word.replace(/[^A-Za-z0-9]/g, "_"))].join("__");
}

/** A zsh `_arguments` action for a value. */
function zshAction(value: ValueSpec): string {
  switch (value.kind) {
    case "choices":
      return value.values.some((word) => word.endsWith("="))
        ? `{compadd -S '' -- ${value.values.join(" ")}}`
        : `(${value.values.join(" ")})`;
    case "files":
      return "_files";
    case "dirs":
      return "_files -/";
    case "text":
      return " ";
  }
}

/** The `_arguments` specs of a command's options. */
function zshOptions(command: CommandSpec): string[] {
  return command.options.flatMap((option) =>
    option.flags.map((flag) => {
      const help = `[${zshHelp(option.help)}]`;
      if (option.value === null) return quote(`*${flag}${help}`);
      const name = option.value.name;
      const colon = option.optionalValue ? "::" : ":";
      const equals = flag.startsWith("--") ? "=" : "";
      return quote(
        `*${flag}${equals}${help}${colon}${zshHelp(name)}:${zshAction(option.value)}`,
      );
    })
  );
}

function zshCommandFunction(command: CommandSpec): string {
  const name = zshFunction(command.path);
  const options = zshOptions(command).map((spec) => `    ${spec} \\`);
  if (command.commands.length === 0) {
    const rest = command.positional === null ? [] : [
      `    ${quote(`*:${zshHelp(command.positional.name)}:${zshAction(command.positional)}`)} \\`,
    ];
    return [
      `${name}() {`,
      "  _wsk_after_dashes && return",
      "  _arguments -s -S \\",
      ...options,
      ...rest,
      "    && return 0",
      "  return 1",
      "}",
    ].join("\n");
  }
  const described = command.commands.map((sub) =>
    `    ${quote(`${sub.path.at(-1)}:${sub.summary.replace(/:/g, "\\:")}`)}`
  );
  const dispatch = command.commands.map((sub) =>
    `        ${quote(sub.path.at(-1)!)}) ${zshFunction(sub.path)} ;;`
  );
  return [
    `${name}() {`,
    '  local curcontext="$curcontext" state state_descr line',
    "  typeset -A opt_args",
    "  local -a commands=(",
    ...described,
    "  )",
    "  _arguments -C \\",
    ...options,
    "    '1:command:->command' \\",
    "    '*::argument:->argument' \\",
    "    && return 0",
    "  case $state in",
    "    command)",
    "      _describe -t commands command commands",
    "      ;;",
    "    argument)",
    `      curcontext=\${curcontext%:*:*}:${name}-$words[1]:`,
    "      case $words[1] in",
    ...dispatch,
    "      esac",
    "      ;;",
    "  esac",
    "}",
  ].join("\n");
}

function zshScript(spec: CommandSpec): string {
  return `#compdef wsk
${
    header(
      "#",
      "zsh",
      "wsk completions zsh > ~/.zfunc/_wsk  (with fpath=(~/.zfunc $fpath) before compinit)",
    )
  }

# After --, the words are another program's (accept --mode exec -- CMD ARGS): complete them as
# that command line.
_wsk_after_dashes() {
  local end=\${words[(i)--]}
  (( end < CURRENT )) || return 1
  words=("\${(@)words[end+1,-1]}")
  (( CURRENT -= end ))
  _normal
  return 0
}

${allCommands(spec).reverse().map(zshCommandFunction).join("\n\n")}

# Autoloaded from fpath, this file is the body of _wsk: complete now. Sourced, register _wsk.
if [[ $funcstack[1] == _wsk ]]; then
  _wsk "$@"
else
  compdef _wsk wsk
fi
`;
}

/** `text` in fish single quotes. */
function fishQuote(text: string): string {
  return `'${text.replace(/([\\'])/g, "\\$1")}'`;
}

/** The fish `complete` arguments that complete a value. */
function fishValue(value: ValueSpec): string {
  switch (value.kind) {
    case "choices":
      return `-x -a ${fishQuote(value.values.join(" "))}`;
    case "files":
      return "-r -F";
    case "dirs":
      return "-x -a '(__fish_complete_directories)'";
    case "text":
      return "-x";
  }
}

function fishScript(spec: CommandSpec): string {
  const commands = allCommands(spec);
  const subcommands = commands
    .filter((command) => command.commands.length > 0)
    .map((command) =>
      `      case ${fishQuote(command.path.join(" "))}\n` +
      `        set subs ${command.commands.map((sub) => sub.path.at(-1)).join(" ")}`
    );
  const lines = commands.flatMap((command) => {
    const at = `-n ${fishQuote(`__wsk_at ${fishQuote(command.path.join(" "))}`)}`;
    const out: string[] = [];
    for (const sub of command.commands) {
      out.push(`complete -c wsk ${at} -a ${sub.path.at(-1)} -d ${fishQuote(sub.summary)}`);
    }
    for (const option of command.options) {
      const flags = option.flags.map((flag) =>
        flag.startsWith("--") ? `-l ${flag.slice(2)}` : `-s ${flag.slice(1)}`
      );
      const value = option.value === null ? "" : ` ${fishValue(option.value)}`;
      out.push(
        `complete -c wsk ${at} ${flags.join(" ")}${value} -d ${fishQuote(option.help)}`,
      );
    }
    if (command.positional !== null && command.positional.kind !== "text") {
      const value = fishValue(command.positional).replace(/^-r /, "");
      out.push(`complete -c wsk ${at} ${value}`);
    }
    return out;
  });
  return `${header("#", "fish", "wsk completions fish > ~/.config/fish/completions/wsk.fish")}

# The command path so far: each word that names a subcommand of the path before it.
function __wsk_path
    set -l path
    for word in (commandline -opc)[2..-1]
        test "$word" = -- && break
        set -l subs
        switch (string join ' ' -- $path)
${subcommands.join("\n")}
        end
        contains -- $word $subs && set -a path $word
    end
    string join ' ' -- $path
end

# Whether the command path is $argv[1] and no -- came before the cursor.
function __wsk_at
    contains -- -- (commandline -opc) && return 1
    set -l path (__wsk_path)
    test "$path" = "$argv[1]"
end

# File names only where a value or an argument is a file; after --, another program's words.
complete -c wsk -f
complete -c wsk -n 'contains -- -- (commandline -opc)' -F
${lines.join("\n")}
`;
}

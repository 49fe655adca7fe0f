// `wsk completions bash|zsh|fish`: each script is loaded into its real shell and asked for
// completions the way the shell asks when TAB is pressed (bash: COMP_WORDS and the function;
// zsh: an interactive shell on a pseudo-terminal with compinit; fish: `complete -C`). What is
// expected comes from the declarations (commander's choices, a VerbDecl's values, the parser's
// tables), never from a copied list.

import assert from "node:assert/strict";
import { Command, type Option } from "@commander-js/extra-typings";
import { loadVerbs, main } from "../../main.ts";
import { command as acceptCommand } from "../../commands/accept.ts";
import { command as sessionCommand } from "../../commands/session.ts";
import { SHELLS } from "../../cli/completions.ts";
import { optionsOf } from "../../steps/verb.ts";
import { NTSTATUS_NAMES } from "../../provider/mod.ts";
import { OPTION_NAMES, parseFamily } from "../../syntax/values.ts";
import type { CliContext } from "../../steps/io.ts";
import { runCli } from "../_helpers.ts";
import { runProcess } from "../_child.ts";

/** A context that keeps what is written (help text) and nothing else. */
function captureContext(): CliContext & { readonly out: string[] } {
  const out: string[] = [];
  return {
    out,
    stdout: { line: (text: string) => void out.push(...text.split("\n")) },
    stderr: { line: () => {} },
    writePayload: () => Promise.resolve(),
    stdin: () => ({ read: () => Promise.resolve(null), close: () => {} }),
    color: false,
    exitCode: 0,
  };
}

/** The generated scripts, each made once by a spawned `wsk completions SHELL`. */
const scripts = new Map<string, Promise<string>>();
function scriptOf(shell: string): Promise<string> {
  let script = scripts.get(shell);
  if (script === undefined) {
    script = runCli(["completions", shell]).then((result) => {
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stderr, "");
      return result.stdout;
    });
    scripts.set(shell, script);
  }
  return script;
}

/**
 * A temporary directory holding the script of `shell` (as `file`) and three files to complete
 * (alpha.wsk, alpine.txt, beta), removed by dispose.
 */
async function workDir(shell: string, file: string) {
  const dir = await Deno.makeTempDir({ prefix: "wsk-completions-" });
  await Deno.writeTextFile(`${dir}/${file}`, await scriptOf(shell));
  for (const name of ["alpha.wsk", "alpine.txt", "beta"]) {
    await Deno.writeTextFile(`${dir}/${name}`, "");
  }
  return {
    dir,
    script: `${dir}/${file}`,
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/**
 * Bash: loads SCRIPT and, for each LINE, splits it into COMP_WORDS as readline does (at spaces,
 * and `:` and `=` as words of their own, COMP_WORDBREAKS), calls the function `complete -p`
 * names, and prints `>> LINE` then one candidate a line.
 */
const BASH_DRIVER = `
source "$1" || exit 9
shift
complete -p wsk
function=$(complete -p wsk | sed -n 's/.* -F \\([^ ]*\\) .*/\\1/p')
for line in "$@"; do
  spaced=\${line//:/ : }
  spaced=\${spaced//=/ = }
  read -ra COMP_WORDS <<< "$spaced"
  [[ $line == *" " || $line == *[:=] ]] && COMP_WORDS+=("")
  COMP_CWORD=$((\${#COMP_WORDS[@]} - 1))
  COMP_LINE=$line
  COMP_POINT=\${#line}
  COMPREPLY=()
  "$function" wsk "\${COMP_WORDS[COMP_CWORD]}" "\${COMP_WORDS[COMP_CWORD-1]}"
  echo ">> $line"
  for word in "\${COMPREPLY[@]}"; do echo "$word"; done
done
`;

/** The bash candidates of each line, and the `complete -p wsk` line. */
async function bashComplete(
  script: string,
  lines: readonly string[],
): Promise<{ spec: string; candidates: Map<string, string[]> }> {
  const result = await runProcess("bash", [
    "--norc",
    "--noprofile",
    "-c",
    BASH_DRIVER,
    "bash",
    script,
    ...lines,
  ], { timeoutMs: 20_000 });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stderr, "");
  const [spec, ...rest] = result.stdout.trimEnd().split("\n");
  return { spec: spec!, candidates: groups(rest) };
}

/** `>> LINE` headed groups of output lines, by LINE. */
function groups(lines: readonly string[]): Map<string, string[]> {
  const found = new Map<string, string[]>();
  let current: string[] = [];
  for (const line of lines) {
    if (line.startsWith(">> ")) found.set(line.slice(3), current = []);
    else current.push(line);
  }
  return found;
}

/** The values of `--name` on a commander command. */
function choicesOf(command: { readonly options: readonly Option[] }, flag: string): string[] {
  const option = command.options.find((o) => o.long === flag);
  assert.ok(option?.argChoices, `${flag} declares no choices`);
  return [...option.argChoices];
}

/** The values a verb's declaration offers for an option. */
async function declaredValues(verb: string, flag: string): Promise<string[]> {
  const decl = (await loadVerbs()).get(verb)!;
  const option = optionsOf(decl, "cli").find((o) => o.flags.startsWith(`${flag} `));
  assert.ok(option?.values, `${verb} ${flag} declares no values`);
  return [...option.values];
}

function sorted(words: readonly string[]): string[] {
  return [...words].sort();
}

Deno.test("completions: bash registers its function and completes verbs, options and their values", async () => {
  await using work = await workDir("bash", "wsk.bash");
  const d = work.dir;
  const lines = [
    "wsk acc",
    "wsk accept --mo",
    "wsk accept --mode ",
    "wsk accept --mode=",
    "wsk accept --count ",
    "wsk controlsocket 1.2.3.4:5 --set ",
    "wsk controlsocket 1.2.3.4:5 --set TCP_N",
    "wsk controlsocket 1.2.3.4:5 --get SO_R",
    "wsk socket --family ",
    `wsk send --file ${d}/al`,
    `wsk run ${d}/be`,
    "wsk completions ",
    "wsk session st",
    "wsk session a",
    "wsk receive 1.2.3.4:5 --status STATUS_CONNECTION_RE",
    `wsk accept --mode echo -- cat ${d}/alp`,
  ];
  const { spec, candidates } = await bashComplete(work.script, lines);
  assert.match(spec, /^complete -F _wsk wsk$/);
  const got = (line: string) => sorted(candidates.get(line) ?? assert.fail(`no run of ${line}`));

  const accept = acceptCommand(captureContext());
  const modes = choicesOf(accept, "--mode");
  assert.ok(modes.length >= 2, "accept declares its modes");
  assert.deepEqual(got("wsk acc"), ["accept"]);
  assert.deepEqual(got("wsk accept --mo"), ["--mode"]);
  assert.deepEqual(got("wsk accept --mode "), sorted(modes));
  assert.deepEqual(got("wsk accept --mode="), sorted(modes));
  assert.deepEqual(got("wsk accept --count "), [], "a free value offers nothing");

  const set = await declaredValues("controlsocket", "--set");
  assert.deepEqual(got("wsk controlsocket 1.2.3.4:5 --set "), sorted(set));
  // Every offered NAME= is a name the parser's table knows.
  for (const word of set) assert.ok(OPTION_NAMES.includes(word.slice(0, -1)), word);
  assert.deepEqual(got("wsk controlsocket 1.2.3.4:5 --set TCP_N"), ["TCP_NODELAY="]);
  assert.deepEqual(
    got("wsk controlsocket 1.2.3.4:5 --get SO_R"),
    sorted(OPTION_NAMES.filter((name) => name.startsWith("SO_R"))),
  );
  const families = await declaredValues("socket", "--family");
  for (const family of families) parseFamily(family);
  assert.deepEqual(got("wsk socket --family "), sorted(families));

  assert.deepEqual(got(`wsk send --file ${d}/al`), [`${d}/alpha.wsk`, `${d}/alpine.txt`]);
  assert.deepEqual(got(`wsk run ${d}/be`), [`${d}/beta`]);
  assert.deepEqual(got("wsk completions "), sorted(SHELLS));

  const session = sessionCommand(captureContext());
  const visible = session.commands.filter((c) => !(c as unknown as { _hidden: boolean })._hidden)
    .map((c) => c.name());
  assert.ok(visible.length < session.commands.length, "session has a hidden subcommand");
  assert.deepEqual(got("wsk session st"), sorted(visible.filter((n) => n.startsWith("st"))));
  assert.deepEqual(got("wsk session a"), [], "the hidden agent is not offered");

  assert.deepEqual(
    got("wsk receive 1.2.3.4:5 --status STATUS_CONNECTION_RE"),
    sorted([...NTSTATUS_NAMES.values()].filter((name) => name.startsWith("STATUS_CONNECTION_RE"))),
  );
  assert.deepEqual(got(`wsk accept --mode echo -- cat ${d}/alp`), [
    `${d}/alpha.wsk`,
    `${d}/alpine.txt`,
  ]);
});

/** The words of `--help` output's Options section: every long and short flag. */
function helpFlags(lines: readonly string[]): string[] {
  const start = lines.indexOf("Options:");
  assert.notEqual(start, -1, lines.join("\n"));
  const flags: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (line === "" || !line.startsWith(" ")) break;
    const match = /^ {2}(-\w)?(?:, )?(--[\w-]+)?/.exec(line);
    for (const flag of [match?.[1], match?.[2]]) if (flag) flags.push(flag);
  }
  return flags;
}

/** The commands a `--help` output lists (without `help`). */
function helpCommands(lines: readonly string[]): string[] {
  const start = lines.indexOf("Commands:");
  if (start === -1) return [];
  return lines.slice(start + 1)
    .map((line) => /^ {2}([a-z][\w-]*)/.exec(line)?.[1])
    .filter((name): name is string => name !== undefined && name !== "help");
}

/** The `flags` the bash script lists for a command path. */
function bashFlags(script: string, path: string): string[] {
  const arm = new RegExp(`\\n {4}'${path}'\\)\\n(?: {6}.*\\n)*? {6}flags='([^']*)'`).exec(script);
  assert.ok(arm, `no case for "${path}" in the bash script`);
  return arm[1]!.split(" ");
}

Deno.test("completions: the bash script has every command and option --help lists and every declared verb option", async () => {
  const script = await scriptOf("bash");
  const help = async (args: string[]) => {
    const ctx = captureContext();
    assert.equal(await main([...args, "--help"], ctx), 0);
    return ctx.out;
  };
  const top = helpCommands(await help([]));
  assert.ok(top.includes("completions") && top.includes("accept") && top.includes("session"));
  const paths = [...top];
  for (const name of top) {
    for (const sub of helpCommands(await help([name]))) paths.push(`${name} ${sub}`);
  }
  assert.ok(paths.includes("session start"));
  for (const path of paths) {
    const listed = bashFlags(script, path);
    for (const flag of helpFlags(await help(path.split(" ")))) {
      assert.ok(listed.includes(flag), `${path} ${flag} does not complete`);
    }
  }
  const verbs = await loadVerbs();
  assert.ok(verbs.size > 10);
  let checked = 0;
  for (const verb of verbs.values()) {
    const listed = bashFlags(script, verb.name);
    // A verb whose command line is built by hand (accept, the server) declares its step form.
    const cli = helpFlags(await help([verb.name]));
    for (const option of optionsOf(verb, "cli")) {
      const long = /--[\w-]+/.exec(option.flags)![0];
      if (!cli.includes(long)) continue;
      checked++;
      assert.ok(listed.includes(long), `${verb.name} ${long} does not complete`);
      for (const value of option.values ?? []) {
        assert.ok(script.includes(value), `${verb.name} ${long} ${value} is not in the script`);
      }
    }
  }
  assert.ok(checked > 30, `only ${checked} declared options checked`);
});

/**
 * zsh: an interactive `zsh -f` on a pseudo-terminal (zpty) runs compinit, autoloads `_wsk` from
 * the directory in $1 (fpath, as an installed file is), and types LINE then TAB; a compadd
 * wrapper prints each candidate the completion adds, and the shell exits when it ends.
 */
const ZSH_DRIVER = `
zmodload zsh/zpty || exit 9
zpty shell zsh -f -i
zpty -w shell "PS1='' PS2='' RPS1=''; autoload -U compinit; compinit -u -D"
zpty -w shell "fpath=(\${(q)1} \\$fpath); autoload -U _wsk; compdef _wsk wsk"
zpty -w shell 'compadd() { if [[ \${@[1,(i)(-|--)]} == *-(O|A|D)\\ * ]]; then builtin compadd "$@"; return; fi; local -a hits; builtin compadd -A hits "$@"; local h; for h in $hits; do print -r -- "CAND""IDATE:$h"; done; builtin compadd "$@"; }'
zpty -w shell 'comppostfuncs=(wsk_done); wsk_done() { print -r -- "END""OFCOMPLETION"; exit 0 }'
zpty -w shell "zstyle ':completion:*' insert-tab false; bindkey '^I' complete-word"
zpty -n -w shell "$2"$'\\t'
zpty -r -m shell out '*ENDOFCOMPLETION*' || exit 8
for line in \${(f)out//$'\\r'/}; do
  [[ $line == *CANDIDATE:* ]] && print -r -- \${line#*CANDIDATE:}
done
zpty -d shell
`;

/**
 * The lines zsh and fish are asked, each with what it must offer (from the declarations).
 * `shown` is how the shell shows a file name of `dir` it completes.
 */
async function sharedCases(
  dir: string,
  shown: (name: string) => string,
): Promise<[string, string[]][]> {
  const session = sessionCommand(captureContext()).commands.map((c) => c.name());
  return [
    ["wsk acc", ["accept"]],
    ["wsk accept --mo", ["--mode"]],
    ["wsk accept --mode ", sorted(choicesOf(acceptCommand(captureContext()), "--mode"))],
    ["wsk controlsocket 1.2.3.4:5 --set TCP_N", ["TCP_NODELAY="]],
    ["wsk socket --family ", sorted(await declaredValues("socket", "--family"))],
    [`wsk send --file ${dir}/al`, [shown("alpha.wsk"), shown("alpine.txt")]],
    ["wsk completions ", sorted(SHELLS)],
    ["wsk session sta", sorted(session.filter((name) => name.startsWith("sta")))],
  ];
}

async function zshComplete(dir: string, line: string): Promise<string[]> {
  const result = await runProcess("zsh", ["-f", "-c", ZSH_DRIVER, "zsh", dir, line], {
    timeoutMs: 20_000,
  });
  assert.equal(result.code, 0, `${line}: ${result.stderr}`);
  return sorted(result.stdout.split("\n").filter((word) => word !== ""));
}

Deno.test("completions: zsh, autoloaded from fpath, completes verbs, options and their values", async () => {
  await using work = await workDir("zsh", "_wsk");
  const parsed = await runProcess("zsh", ["-n", work.script]);
  assert.equal(parsed.code, 0, parsed.stderr);
  // zsh shows a file name without the directory typed before it.
  const cases = await sharedCases(work.dir, (name) => name);
  // One shell at a time: each is an interactive zsh on its own terminal.
  for (const [line, expected] of cases) {
    assert.deepEqual(await zshComplete(work.dir, line), expected, line);
  }
});

async function fishComplete(script: string, line: string): Promise<string[]> {
  const result = await runProcess("fish", [
    "--no-config",
    "-c",
    "source $argv[1]; and complete -C $argv[2]",
    script,
    line,
  ], { timeoutMs: 20_000 });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stderr, "", line);
  return sorted(
    result.stdout.split("\n").filter((l) => l !== "").map((l) => l.split("\t")[0]!),
  );
}

Deno.test("completions: fish completes verbs, options and their values", async () => {
  await using work = await workDir("fish", "wsk.fish");
  const parsed = await runProcess("fish", ["--no-config", "-n", work.script]);
  assert.equal(parsed.code, 0, parsed.stderr);
  const cases = await sharedCases(work.dir, (name) => `${work.dir}/${name}`);
  for (const [line, expected] of cases) {
    assert.deepEqual(await fishComplete(work.script, line), expected, line);
  }
});

Deno.test("completions: an unknown shell is a usage error (exit 2) naming the choices", async () => {
  const result = await runCli(["completions", "tcsh"]);
  assert.equal(result.code, 2);
  assert.equal(result.stdout, "");
  assert.match(result.stderr, /^error: .*'tcsh'.*bash, zsh, fish/);
});

// The program main.ts builds is what the scripts come from: a command added to it completes.
Deno.test("completions: a command added to the program appears in every script", async () => {
  const { describeProgram, completionScript } = await import("../../cli/completions.ts");
  const program = new Command("wsk");
  program.addCommand(
    new Command("replay")
      .option("--against <remote>", "where")
      .option("--ca <pem>", "roots")
      .option("--record <file>", "log")
      .argument("<log>", "the log"),
  );
  const spec = describeProgram(program, new Map());
  for (const shell of SHELLS) {
    const script = completionScript(shell, spec);
    assert.ok(script.includes("replay") && script.includes("against"), shell);
  }
  const [replay] = spec.commands;
  assert.deepEqual(replay!.positional, { kind: "files", name: "log" });
  assert.deepEqual(replay!.options.map((o) => [o.flags.at(-1), o.value?.kind ?? null]), [
    ["--against", "text"],
    ["--ca", "files"],
    ["--record", "files"],
    ["--help", null],
  ]);
});

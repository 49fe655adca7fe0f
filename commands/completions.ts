/**
 * `wsk completions bash|zsh|fish`: the shell completion script of the whole program, made from
 * its declarations (`cli/completions.ts`).
 *
 * @module
 */

import { Argument, Command } from "@commander-js/extra-typings";
import type { CliContext } from "../cli/command.ts";
import { completionScript, describeProgram, SHELLS } from "../cli/completions.ts";
import type { VerbTable } from "../steps/verb.ts";

/** main.ts loads every command before this one runs: the script walks the whole program. */
export const needsProgram = true;

/** Builds the `completions` command. */
export function command(ctx: CliContext, verbs: () => Promise<VerbTable>) {
  const summary = "Print a completion script for bash, zsh or fish, made from the command " +
    "declarations (commands, options, option values such as modes and socket option names).";
  return new Command("completions")
    .summary(summary)
    .description(
      `${summary}\nIt runs no wsk process while completing; make it again after an upgrade.`,
    )
    .addArgument(new Argument("<shell>", "the shell to complete for").choices(SHELLS))
    .addHelpText(
      "after",
      "\nExamples:\n" +
        "  $ wsk completions bash > ~/.local/share/bash-completion/completions/wsk\n" +
        "  $ wsk completions zsh > ~/.zfunc/_wsk\n" +
        "  $ wsk completions fish > ~/.config/fish/completions/wsk.fish\n",
    )
    .showHelpAfterError(false)
    .action(async (shell, _options, self) => {
      const spec = describeProgram(self.parent!, await verbs());
      await ctx.writePayload(new TextEncoder().encode(completionScript(shell, spec)));
    });
}

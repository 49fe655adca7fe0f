/**
 * `wsk run`: a dispatch script. All steps run in one process on live sockets, each step one
 * dispatch call (plus the WskSocket/WskBind a `connect` needs when its socket does not exist
 * yet), each checked.
 *
 * @module
 */

import { newRunnerState, StepExecutor } from "../steps/executor.ts";
import type { VerbTable } from "../steps/verb.ts";
import { type CliContext, processIO } from "../cli/command.ts";
import { runAction, wskCommand } from "../cli/command.ts";
import { joinBytes } from "../engine/pump.ts";
import { parseScript, ScriptSyntaxError, type Step } from "../steps/script.ts";
import { UsageError } from "../syntax/usage.ts";

/** Largest script read (a script is a few lines; this only bounds a mistaken input). */
const MAX_SCRIPT = 1 << 20;

async function readScript(ctx: CliContext, file: string): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    if (file === "-") {
      const stdin = ctx.stdin();
      const chunks: Uint8Array[] = [];
      let total = 0;
      for (;;) {
        const chunk = new Uint8Array(64 * 1024);
        const count = await stdin.read(chunk);
        if (count === null) break;
        chunks.push(chunk.subarray(0, count));
        total += count;
        if (total > MAX_SCRIPT) throw new Error(`longer than ${MAX_SCRIPT} bytes`);
      }
      bytes = joinBytes(chunks, total);
    } else {
      const info = await Deno.stat(file);
      if (!info.isFile && !info.isFifo) throw new Error("not a file");
      if (info.size > MAX_SCRIPT) throw new Error(`longer than ${MAX_SCRIPT} bytes`);
      bytes = await Deno.readFile(file);
    }
  } catch (error) {
    throw new UsageError(
      `Cannot read script "${file}": ${error instanceof Error ? error.message : error}`,
    );
  }
  return bytes;
}
/** Builds the `run` command. */
export function command(ctx: CliContext, verbs: () => Promise<VerbTable>) {
  return wskCommand(
    "run",
    "Run a dispatch script: one step per line, all on live sockets in this process, each " +
      "checked (--status, --expect, --expect-re).",
    "any: each step names its own (socket, bind, connect, connectex, socketconnect, send, " +
      "receive, disconnect, getlocaladdress, getremoteaddress, controlsocket, closesocket, accept)",
    [
      "wsk run smoke.wsk",
      `printf 'socketconnect 127.0.0.1:6379\\nsend "PING\\\\r\\\\n"\\nreceive --expect "+PONG"\\n' | wsk run -`,
    ],
  )
    .argument("[file]", "the script (- or nothing for standard input)", "-")
    .action(async (file, options, command) => {
      const source = await readScript(ctx, file);
      let steps: Step[];
      try {
        steps = parseScript(source, await verbs());
      } catch (error) {
        if (error instanceof ScriptSyntaxError) throw new UsageError(error.message);
        throw error;
      }
      await runAction(ctx, command, options, async (run) => {
        const runner = new StepExecutor(run, newRunnerState(), processIO(ctx, run, options));
        await runner.prepare(steps);
        const outcome = await runner.runSteps(steps, true, true);
        if (outcome === "expectation") ctx.exitCode = 3;
      });
    });
}

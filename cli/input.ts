/** Reading a whole small input (a script, a log) from a file or standard input. @module */

import { joinBytes } from "../engine/pump.ts";
import { UsageError } from "../syntax/usage.ts";
import type { CliContext } from "../steps/io.ts";

/**
 * Reads all of `file` (`-`: standard input), at most `limit` bytes. Throws UsageError
 * (`Cannot read WHAT "FILE": …`) for a file that cannot be read or is too long.
 */
export async function readWhole(
  ctx: CliContext,
  file: string,
  limit: number,
  what: string,
): Promise<Uint8Array> {
  try {
    if (file !== "-") {
      const info = await Deno.stat(file);
      if (!info.isFile && !info.isFifo) throw new Error("not a file");
      if (info.size > limit) throw new Error(`longer than ${limit} bytes`);
      return await Deno.readFile(file);
    }
    const stdin = ctx.stdin();
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const chunk = new Uint8Array(64 * 1024);
      const count = await stdin.read(chunk);
      if (count === null) break;
      chunks.push(chunk.subarray(0, count));
      total += count;
      if (total > limit) throw new Error(`longer than ${limit} bytes`);
    }
    return joinBytes(chunks, total);
  } catch (error) {
    throw new UsageError(
      `Cannot read ${what} "${file}": ${error instanceof Error ? error.message : error}`,
    );
  }
}

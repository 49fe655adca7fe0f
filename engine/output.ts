/**
 * `--output FILE` without losing or overwriting anything: the data goes to a temporary file
 * beside FILE (same directory, so the rename is atomic) that replaces FILE only once data arrived
 * and every write succeeded; `--append` adds to FILE instead. A device or a pipe (`/dev/null`,
 * `/dev/full`, a FIFO) is written directly. No path leaves the temporary file behind.
 *
 * @module
 */

import { basename, dirname } from "node:path";
import { UsageError } from "../syntax/usage.ts";
import { STATUS_SUCCESS, type WskConnectionSocket } from "../provider/mod.ts";
import type { PumpHost } from "./pump.ts";

/**
 * A pump sink for `--json` without `--output`: each chunk becomes its own WskReceive record on
 * the status stream, `calls` 1, `information` the chunk's length, `chunk` its 1-based number and
 * the bytes in `data` (valid UTF-8) or `base64`, so standard output carries only JSON Lines
 * while the data streams (nothing is held back for the loop's own line, which follows with the
 * totals and no data). A closed standard output makes the write fail, as a raw write would.
 * `call`: the record's name (`WskReceiveEvent` for data a receive event indicated).
 */
export function payloadRecords(
  host: PumpHost,
  socket: WskConnectionSocket,
  call = "WskReceive",
): (bytes: Uint8Array, elapsedMs: number) => Promise<void> {
  let chunk = 0;
  return (bytes, elapsedMs) => {
    chunk++;
    host.report(
      call,
      socket,
      { status: STATUS_SUCCESS, information: bytes.length },
      elapsedMs,
      { calls: 1, data: bytes, payload: true, extra: { chunk } },
    );
    return Promise.resolve();
  };
}

/** Where received data goes when it goes to a file. */
export class OutputFile {
  readonly #path: string;
  readonly #file: Deno.FsFile;
  /** The temporary file renamed over the path at the end; null when writing in place. */
  readonly #temp: string | null;
  readonly #mode: number | null;
  #done = false;

  private constructor(path: string, file: Deno.FsFile, temp: string | null, mode: number | null) {
    this.#path = path;
    this.#file = file;
    this.#temp = temp;
    this.#mode = mode;
  }

  /**
   * Opens the output for `path` before any socket exists, so a path that cannot be written is a
   * usage error (exit 2). `append`: write at the end of `path` (created if missing).
   */
  static async open(path: string, append: boolean): Promise<OutputFile> {
    let temp: string | null = null;
    try {
      if (append) {
        return new OutputFile(
          path,
          await Deno.open(path, { write: true, create: true, append: true }),
          null,
          null,
        );
      }
      const existing = await Deno.stat(path).catch((error) => {
        if (error instanceof Deno.errors.NotFound) return null;
        throw error;
      });
      if (existing?.isDirectory) throw new Error("it is a directory");
      if (existing && !existing.isFile) {
        // A device or a FIFO: nothing to overwrite, and nothing to rename over.
        return new OutputFile(path, await Deno.open(path, { write: true }), null, null);
      }
      temp = await Deno.makeTempFile({
        dir: dirname(path),
        prefix: `.${basename(path)}.`,
        suffix: ".wsk-partial",
      });
      const file = await Deno.open(temp, { write: true });
      return new OutputFile(path, file, temp, existing?.mode ?? null);
    } catch (error) {
      if (temp !== null) await Deno.remove(temp).catch(() => {});
      throw new UsageError(
        `Cannot write file "${path}": ${error instanceof Error ? error.message : error}`,
      );
    }
  }

  /** Writes all of `bytes`; throws what the write threw (ENOSPC, EIO, …). */
  async write(bytes: Uint8Array): Promise<void> {
    for (let offset = 0; offset < bytes.length;) {
      offset += await this.#file.write(bytes.subarray(offset));
    }
  }

  /**
   * Closes the output. `keep`: data arrived and every write succeeded, so the temporary file
   * replaces the path; otherwise it is removed and the path stays as it was. Idempotent.
   */
  async close(keep: boolean): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    try {
      this.#file.close();
    } catch {
      // Closed already.
    }
    if (this.#temp === null) return;
    if (!keep) {
      await Deno.remove(this.#temp).catch(() => {});
      return;
    }
    try {
      // A new file gets the usual mode rather than the temporary file's 0600.
      await Deno.chmod(this.#temp, this.#mode ?? 0o644);
      await Deno.rename(this.#temp, this.#path);
    } catch (error) {
      await Deno.remove(this.#temp).catch(() => {});
      throw error;
    }
  }
}

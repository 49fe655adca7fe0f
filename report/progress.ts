/**
 * `--progress`: bytes, rate and elapsed time of a long transfer on stderr, drawn by the
 * `cli-progress` package.
 *
 * When it shows: never with `--json` or `--no-progress`; always with `--progress` (on a
 * terminal as a redrawn bar, elsewhere as a plain line each second); by default only when stderr
 * is a terminal and the transfer is over 1 MiB (known from the start, or once 1 MiB has moved).
 * The bar writes through a small stream object of its own straight to stderr, so it needs no
 * permission beyond what the CLI has, and installs no signal handlers.
 *
 * @module
 */

import { UsageError } from "../syntax/usage.ts";
// @ts-types="@types/cli-progress"
import type cliProgress from "cli-progress";

/** The cli-progress module, loaded on first use: most runs never draw a bar. */
type BarModule = typeof cliProgress;

/** Transfers over this many bytes get a progress bar by default (on a terminal). */
export const PROGRESS_THRESHOLD = 1024 * 1024;

/** `--progress` (true), `--no-progress` (false) or neither (undefined). */
export type ProgressFlag = boolean | undefined;

/** Where the bar draws: the part of a Node writable stream cli-progress uses. */
interface BarStream {
  readonly isTTY: boolean;
  readonly columns: number;
  write(text: string, callback?: () => void): boolean;
}

function stderrStream(): BarStream {
  const encoder = new TextEncoder();
  const tty = Deno.stderr.isTerminal();
  let columns = 80;
  try {
    if (tty) columns = Deno.consoleSize().columns;
  } catch {
    // stdout is not a terminal; 80 columns will do.
  }
  return {
    isTTY: tty,
    columns,
    write(text: string, callback?: () => void): boolean {
      const bytes = encoder.encode(text);
      try {
        for (let o = 0; o < bytes.length;) o += Deno.stderr.writeSync(bytes.subarray(o));
      } catch {
        // stderr went away: progress is only decoration.
      }
      callback?.();
      return true;
    },
  };
}

/**
 * Formats a byte count with binary units: `512 B`, `1.5 KiB`, `64.0 MiB`, `1.00 GiB`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatBytes } from "./progress.ts";
 *
 * assert.equal(formatBytes(1536), "1.5 KiB");
 * assert.equal(formatBytes(1024 ** 3), "1.00 GiB");
 * ```
 */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit >= 2 ? 2 : 1)} ${units[unit]}`;
}

/** One transfer's progress display; {@linkcode Progress.for} decides whether there is one. */
export class Progress {
  #bar: cliProgress.SingleBar | null = null;
  #bars: BarModule;
  #stream: BarStream;
  #label: string;
  #total: number | null;
  #started = 0;
  #done = 0;

  private constructor(label: string, total: number | null, stream: BarStream, bars: BarModule) {
    this.#bars = bars;
    this.#label = label;
    this.#total = total;
    this.#stream = stream;
  }

  /**
   * The display for a transfer of `total` bytes (null: unknown) labelled `label` ("sent",
   * "received"), or null when none is wanted. cli-progress is only loaded when there is one.
   */
  static async for(
    label: string,
    total: number | null,
    flag: ProgressFlag,
    json: boolean,
  ): Promise<Progress | null> {
    if (json || flag === false) return null;
    if (flag === undefined) {
      if (!Deno.stderr.isTerminal()) return null;
      if (total !== null && total <= PROGRESS_THRESHOLD) return null;
    }
    const bars = (await import("cli-progress")).default;
    const progress = new Progress(label, total, stderrStream(), bars);
    if (flag === true || total !== null) progress.#start();
    return progress;
  }

  #start(): void {
    const known = this.#total !== null;
    this.#bar = new this.#bars.SingleBar({
      stream: this.#stream as unknown as NodeJS.WritableStream,
      format: known
        ? `{label} [{bar}] {percentage}% {done} of {size} {rate} {duration_formatted}`
        : `{label} {done} {rate} {duration_formatted}`,
      barsize: 20,
      fps: 5,
      noTTYOutput: true,
      notTTYSchedule: 1000,
      hideCursor: false,
      linewrap: true,
      // Off a terminal each render already ends its line; a last newline would be an empty one.
      clearOnComplete: !this.#stream.isTTY,
      gracefulExit: false,
    });
    this.#started = performance.now();
    this.#bar.start(this.#total ?? 0, this.#done, this.#payload());
  }

  #payload(): Record<string, string> {
    const seconds = Math.max((performance.now() - this.#started) / 1000, 0.001);
    return {
      label: this.#label,
      done: formatBytes(this.#done),
      size: formatBytes(this.#total ?? 0),
      rate: `${formatBytes(Math.round(this.#done / seconds))}/s`,
    };
  }

  /** Counts `bytes` more moved. */
  add(bytes: number): void {
    this.#done += bytes;
    if (this.#bar === null) {
      if (this.#done <= PROGRESS_THRESHOLD) return;
      this.#start();
    }
    this.#bar!.update(this.#done, this.#payload());
  }

  /** Draws the final state and ends the line; the bar's timer stops. */
  stop(): void {
    if (this.#bar === null) return;
    this.#bar.update(this.#done, this.#payload());
    this.#bar.stop();
    this.#bar = null;
  }
}

/**
 * The `--progress` choice as the user made it: true or false when given on the command line,
 * undefined for the default. `--progress` with `--json` is a usage error.
 */
export function progressFlag(
  command: { getOptionValueSource(key: string): string | undefined },
  options: { progress?: boolean; json?: true },
): ProgressFlag {
  const flag: ProgressFlag = command.getOptionValueSource("progress") === "cli"
    ? options.progress
    : undefined;
  if (flag === true && options.json) {
    throw new UsageError('Cannot use "--progress" with "--json": progress is for terminals');
  }
  return flag;
}

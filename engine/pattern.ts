/**
 * The deterministic byte pattern of `send --pattern` and the checks of `receive
 * --verify-pattern` and `accept --mode verify` (ctsTraffic-style data verification).
 *
 * The stream is cut into blocks of {@linkcode PATTERN_BLOCK} bytes (1 MiB). Every block is a
 * window of one fixed table `T` of hashed bytes, entered at a start that is itself a hash of the
 * block's number:
 *
 * ```text
 * mix32(x)       = murmur3 finaliser of x mod 2^32 (x ^= x >>> 16; x *= 0x7feb352d;
 *                  x ^= x >>> 15; x *= 0x846ca68b; x ^= x >>> 16), all mod 2^32
 * T[i]           = mix32(i) & 0xFF                               for 0 <= i < 2^20
 * start(n)       = mix32(n + 0x9E3779B9) & (2^20 - 1)
 * byte(offset)   = T[(offset mod 2^20 + start(floor(offset / 2^20))) mod 2^20]
 * ```
 *
 * No short span repeats (each byte hashes its index), so a shifted, dropped or duplicated run is
 * caught within a few bytes; two blocks are equal only when their starts collide (one chance in
 * 2^20), so a replayed block is caught too. Filling and checking copy and compare whole runs of
 * a precomputed 2 MiB table (`T` twice, so a window never wraps): a memcpy and a memcmp per run,
 * never a hash per byte. The formula is simple to restate in another language (the tests do it
 * in Python).
 *
 * @module
 */

import { Buffer } from "node:buffer";

/** Bytes per pattern block: one window of the table. */
export const PATTERN_BLOCK = 1 << 20;

const MASK = PATTERN_BLOCK - 1;

/** The murmur3 32-bit finaliser: every input bit affects every output bit. */
function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** Where block `n` enters the table. */
function blockStart(n: number): number {
  // `n + c` may pass 2^32; the bit operations in mix32 take it mod 2^32, as the formula says.
  return mix32((n + 0x9e3779b9) % 0x100000000) & MASK;
}

let table: Uint8Array | null = null;

/** `T` twice over (2 MiB), built on first use. */
function doubledTable(): Uint8Array {
  if (table === null) {
    table = new Uint8Array(2 * PATTERN_BLOCK);
    for (let i = 0; i < PATTERN_BLOCK; i++) table[i] = mix32(i) & 0xff;
    table.copyWithin(PATTERN_BLOCK, 0, PATTERN_BLOCK);
  }
  return table;
}

/**
 * Calls `each(position, start, length)` for every run of `length` bytes from stream `offset`
 * that lies within one block; the run's expected bytes are `table[start .. start + length]`.
 */
function forEachRun(
  offset: number,
  length: number,
  each: (position: number, start: number, length: number) => boolean | void,
): void {
  let done = 0;
  while (done < length) {
    const at = offset + done;
    const inBlock = at % PATTERN_BLOCK;
    const run = Math.min(PATTERN_BLOCK - inBlock, length - done);
    const start = (inBlock + blockStart(Math.floor(at / PATTERN_BLOCK))) & MASK;
    if (each(done, start, run) === false) return;
    done += run;
  }
}

function checkOffset(offset: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw new RangeError(`Cannot use pattern offset "${offset}": expected a safe integer >= 0`);
  }
}

/**
 * The pattern byte at stream `offset` (a safe integer >= 0). Slow: for single bytes and tests.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fillPattern, patternByte } from "./pattern.ts";
 *
 * const bytes = new Uint8Array(4);
 * fillPattern(bytes, 1_048_574);
 * assert.deepEqual([...bytes], [0, 1, 2, 3].map((i) => patternByte(1_048_574 + i)));
 * ```
 */
export function patternByte(offset: number): number {
  checkOffset(offset);
  const start = blockStart(Math.floor(offset / PATTERN_BLOCK));
  return mix32(((offset % PATTERN_BLOCK) + start) & MASK) & 0xff;
}

/** Fills `target` with the pattern bytes of stream offsets `offset .. offset + target.length`. */
export function fillPattern(target: Uint8Array, offset: number): void {
  checkOffset(offset);
  const t = doubledTable();
  forEachRun(offset, target.length, (position, start, length) => {
    target.set(t.subarray(start, start + length), position);
  });
}

/**
 * The pattern bytes of stream offsets `offset .. offset + length` as a read-only view of the
 * pattern table, with no copy; the range must lie within one 1 MiB block (an `offset` that is a
 * multiple of {@linkcode PATTERN_BLOCK} and a `length` up to it always do). The view must not be
 * written to: it is the table every later fill and check reads.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fillPattern, PATTERN_BLOCK, patternView } from "./pattern.ts";
 *
 * const copy = new Uint8Array(PATTERN_BLOCK);
 * fillPattern(copy, 3 * PATTERN_BLOCK);
 * assert.deepEqual(patternView(3 * PATTERN_BLOCK, PATTERN_BLOCK), copy);
 * ```
 */
export function patternView(offset: number, length: number): Uint8Array {
  checkOffset(offset);
  const inBlock = offset % PATTERN_BLOCK;
  if (!Number.isSafeInteger(length) || length < 0 || inBlock + length > PATTERN_BLOCK) {
    throw new RangeError(
      `Cannot view the pattern at ${offset} for ${length} bytes: it must lie within one block`,
    );
  }
  const start = (inBlock + blockStart(Math.floor(offset / PATTERN_BLOCK))) & MASK;
  return doubledTable().subarray(start, start + length);
}

/** The first way a received stream departs from the pattern. */
export interface PatternMismatch {
  /** A wrong byte, a stream that ended early, or one that went past the expected total. */
  kind: "byte" | "short" | "long";
  /** Stream offset of the wrong byte, or the byte count where the stream ended or overran. */
  offset: number;
  /** The pattern byte (for `byte`). */
  expected?: number;
  /** The received byte (for `byte`). */
  actual?: number;
  /** One line for a status report, e.g. `first mismatch at offset 5: expected 0x5A, got 0x00`. */
  message: string;
}

function hex(byte: number): string {
  return "0x" + byte.toString(16).toUpperCase().padStart(2, "0");
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}

/**
 * Checks a received stream against the pattern, chunk by chunk, and keeps the first mismatch.
 * With `expected`, a stream must hold exactly that many bytes; without it, any length that
 * matches is fine.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fillPattern, PatternVerifier } from "./pattern.ts";
 *
 * const bytes = new Uint8Array(4096);
 * fillPattern(bytes, 0);
 * bytes[1000] = bytes[1000]! ^ 0xff;
 * const verifier = new PatternVerifier(4096);
 * verifier.push(bytes);
 * assert.equal(verifier.finish()?.offset, 1000);
 * ```
 */
export class PatternVerifier {
  #expected: number | undefined;
  #total = 0;
  #mismatch: PatternMismatch | null = null;

  /** Starts at stream offset 0; `expected` is the exact total, when known. */
  constructor(expected?: number) {
    if (expected !== undefined) checkOffset(expected);
    this.#expected = expected;
  }

  /** Checks the next received bytes (a no-op for the check once a mismatch is known). */
  push(bytes: Uint8Array): void {
    const at = this.#total;
    this.#total += bytes.length;
    if (this.#mismatch !== null) return;
    const limit = this.#expected ?? Infinity;
    const inRange = Math.max(0, Math.min(bytes.length, limit - at));
    const t = doubledTable();
    forEachRun(at, inRange, (position, start, length) => {
      const got = asBuffer(bytes.subarray(position, position + length));
      const want = asBuffer(t.subarray(start, start + length));
      if (got.equals(want)) return true;
      // Only a failing run is walked byte by byte.
      for (let i = 0; i < length; i++) {
        if (got[i] !== want[i]) {
          const offset = at + position + i;
          this.#mismatch = {
            kind: "byte",
            offset,
            expected: want[i]!,
            actual: got[i]!,
            message: `first mismatch at offset ${offset}: expected ${hex(want[i]!)}, got ${
              hex(got[i]!)
            }`,
          };
          break;
        }
      }
      return false;
    });
    if (this.#mismatch === null && this.#total > limit) {
      this.#mismatch = {
        kind: "long",
        offset: limit,
        message: `too many bytes: more than ${limit}`,
      };
    }
  }

  /** The first mismatch seen so far (a short stream is only known at {@linkcode finish}). */
  get mismatch(): PatternMismatch | null {
    return this.#mismatch;
  }

  /** Bytes pushed so far. */
  get total(): number {
    return this.#total;
  }

  /** Ends the stream: the first mismatch, a too-short stream, or null when it all matched. */
  finish(): PatternMismatch | null {
    if (this.#mismatch === null && this.#expected !== undefined && this.#total < this.#expected) {
      this.#mismatch = {
        kind: "short",
        offset: this.#total,
        message: `too few bytes: ${this.#total} of ${this.#expected}`,
      };
    }
    return this.#mismatch;
  }
}

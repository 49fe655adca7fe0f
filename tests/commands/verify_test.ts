// Data verification: the pattern of commands/_pattern.ts (unit tests), `send --pattern` and
// `receive --verify-pattern` end to end against python3 peers that compute the same pattern.

import assert from "node:assert/strict";
import {
  fillPattern,
  PATTERN_BLOCK,
  patternByte,
  PatternVerifier,
} from "../../commands/_pattern.ts";

const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// The pattern

// Computed with the formula in python (the same program the peers below use), not with
// commands/_pattern.ts, so a change to the formula cannot pass unnoticed.
const KNOWN: ReadonlyArray<{ offset: number; byte: number }> = [
  { offset: 0, byte: 0x7f },
  { offset: 1, byte: 0x8b },
  { offset: 2, byte: 0xec },
  { offset: 3, byte: 0x5d },
  { offset: 1048575, byte: 0x47 },
  { offset: 1048576, byte: 0x3c },
  { offset: 1048577, byte: 0xda },
  { offset: 1048579, byte: 0x2c },
  { offset: 2 ** 32 + 5, byte: 0x78 },
  { offset: 2 ** 40 + 123, byte: 0x9a },
];

Deno.test("patternByte() gives the documented formula's bytes", () => {
  for (const { offset, byte } of KNOWN) assert.equal(patternByte(offset), byte, String(offset));
});

Deno.test("patternByte() refuses offsets that are negative or not safe integers", () => {
  for (const offset of [-1, 1.5, NaN, 2 ** 53]) {
    assert.throws(() => patternByte(offset), RangeError, String(offset));
  }
});

Deno.test("fillPattern() agrees with patternByte() across block boundaries and odd offsets", () => {
  const cases = [
    { offset: 0, length: 4096 },
    { offset: 12345, length: 777 },
    { offset: PATTERN_BLOCK - 100, length: 300 },
    { offset: 3 * PATTERN_BLOCK - 1, length: PATTERN_BLOCK + 2 },
    { offset: 2 ** 32 - 50, length: 100 },
  ];
  for (const { offset, length } of cases) {
    const bytes = new Uint8Array(length);
    fillPattern(bytes, offset);
    for (let i = 0; i < length; i++) {
      if (bytes[i] !== patternByte(offset + i)) {
        assert.fail(`offset ${offset + i}: ${bytes[i]} !== ${patternByte(offset + i)}`);
      }
    }
  }
});

Deno.test("fillPattern() writes only into the view it is given", () => {
  const whole = new Uint8Array(64).fill(0xee);
  fillPattern(whole.subarray(8, 56), 100);
  assert.deepEqual([...whole.subarray(0, 8)], new Array(8).fill(0xee));
  assert.deepEqual([...whole.subarray(56)], new Array(8).fill(0xee));
  assert.equal(whole[8], patternByte(100));
});

Deno.test("the pattern does not repeat: shifted runs and other blocks differ at once", () => {
  const base = new Uint8Array(256);
  fillPattern(base, 0);
  const other = new Uint8Array(256);
  for (const shift of [1, 2, 3, 4, 16, 256, 4096, 65536, PATTERN_BLOCK, 2 * PATTERN_BLOCK]) {
    fillPattern(other, shift);
    let same = 0;
    for (let i = 0; i < base.length; i++) if (base[i] === other[i]) same++;
    // Random bytes agree about once in 256; a periodic pattern would agree everywhere.
    assert.ok(same < 16, `shift ${shift}: ${same} of 256 bytes equal`);
  }
});

Deno.test("PatternVerifier passes a correct stream pushed in uneven chunks", () => {
  const total = 2 * PATTERN_BLOCK + 12345;
  const bytes = new Uint8Array(total);
  fillPattern(bytes, 0);
  const verifier = new PatternVerifier(total);
  let size = 1;
  for (let at = 0; at < total; at += size) {
    size = (size * 7 + 3) % 200_003 + 1;
    verifier.push(bytes.subarray(at, Math.min(total, at + size)));
  }
  assert.equal(verifier.mismatch, null);
  assert.equal(verifier.finish(), null);
  assert.equal(verifier.total, total);
});

Deno.test("PatternVerifier names the first wrong byte with its offset, expected and actual", () => {
  const total = 4 * MiB;
  const bytes = new Uint8Array(total);
  fillPattern(bytes, 0);
  const expected = bytes[1048579]!;
  bytes[1048579] = expected ^ 0x5a;
  bytes[3 * MiB] = bytes[3 * MiB]! ^ 1; // a later error must not replace the first
  const verifier = new PatternVerifier(total);
  verifier.push(bytes.subarray(0, 1048000));
  assert.equal(verifier.mismatch, null);
  verifier.push(bytes.subarray(1048000));
  const hex = (b: number) => "0x" + b.toString(16).toUpperCase().padStart(2, "0");
  const want = {
    kind: "byte",
    offset: 1048579,
    expected,
    actual: expected ^ 0x5a,
    message: `first mismatch at offset 1048579: expected ${hex(expected)}, got ${
      hex(expected ^ 0x5a)
    }`,
  };
  assert.deepEqual(verifier.mismatch, want);
  assert.deepEqual(verifier.finish(), want);
  assert.equal(verifier.total, total);
});

Deno.test("PatternVerifier reports a short stream only at finish()", () => {
  const bytes = new Uint8Array(1000);
  fillPattern(bytes, 0);
  const verifier = new PatternVerifier(4096);
  verifier.push(bytes);
  assert.equal(verifier.mismatch, null);
  assert.deepEqual(verifier.finish(), {
    kind: "short",
    offset: 1000,
    message: "too few bytes: 1000 of 4096",
  });
});

Deno.test("PatternVerifier reports a long stream as soon as it passes the total", () => {
  const bytes = new Uint8Array(5000);
  fillPattern(bytes, 0);
  const verifier = new PatternVerifier(4096);
  verifier.push(bytes.subarray(0, 4096));
  assert.equal(verifier.mismatch, null);
  verifier.push(bytes.subarray(4096, 4097));
  const want = { kind: "long", offset: 4096, message: "too many bytes: more than 4096" };
  assert.deepEqual(verifier.mismatch, want);
  verifier.push(bytes.subarray(4097));
  assert.deepEqual(verifier.finish(), want);
  assert.equal(verifier.total, 5000);
});

Deno.test("PatternVerifier prefers a wrong byte within the total over the overrun", () => {
  const bytes = new Uint8Array(5000);
  fillPattern(bytes, 0);
  bytes[10] = bytes[10]! ^ 0xff;
  const verifier = new PatternVerifier(4096);
  verifier.push(bytes);
  assert.equal(verifier.finish()?.kind, "byte");
  assert.equal(verifier.finish()?.offset, 10);
});

Deno.test("PatternVerifier without a total accepts any length of correct bytes", () => {
  for (const length of [0, 1, 4097]) {
    const bytes = new Uint8Array(length);
    fillPattern(bytes, 0);
    const verifier = new PatternVerifier();
    verifier.push(bytes);
    assert.equal(verifier.finish(), null, String(length));
  }
});

Deno.test("PatternVerifier catches a zero byte where the pattern has a zero-free run", () => {
  // An all-zero stream (a buffer that was never filled) fails at the first non-zero byte.
  const verifier = new PatternVerifier(100);
  verifier.push(new Uint8Array(100));
  const first = Array.from({ length: 100 }, (_, i) => patternByte(i)).findIndex((b) => b !== 0);
  assert.equal(verifier.finish()?.offset, first);
  assert.equal(verifier.finish()?.actual, 0);
});

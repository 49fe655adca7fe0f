/**
 * `--hex`: a direction-tagged hex dump of the payload a command moves, for stderr only.
 *
 * Each chunk handed to or returned by one WskSend or WskReceive gives a header line and then
 * `hexdump -C`-style rows, every line tagged with its direction (`>` sent, `<` received):
 *
 * ```text
 * > socket=1 offset=0 length=18
 * > 00000000  47 45 54 20 2f 20 48 54  54 50 2f 31 2e 30 0d 0a  |GET / HTTP/1.0..|
 * > 00000010  0d 0a                                             |..|
 * ```
 *
 * `offset` counts the bytes already moved that way on that socket, and the row offsets (hex)
 * continue it, so the dump of a stream reads as one. Nothing here runs unless `--hex` is given.
 *
 * @module
 */

/** `>` for bytes sent, `<` for bytes received. */
export type Direction = ">" | "<";

const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));

/**
 * Formats one chunk as dump lines (no newlines): a header, then 16 bytes per row with an ASCII
 * column in which bytes outside 0x20–0x7E show as `.`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatHexDump } from "./trace.ts";
 *
 * assert.deepEqual(formatHexDump("<", 1, 16, new TextEncoder().encode("+PONG\r\n")), [
 *   "< socket=1 offset=16 length=7",
 *   "< 00000010  2b 50 4f 4e 47 0d 0a                              |+PONG..|",
 * ]);
 * ```
 */
export function formatHexDump(
  direction: Direction,
  socket: number,
  offset: number,
  bytes: Uint8Array,
): string[] {
  const lines = [`${direction} socket=${socket} offset=${offset} length=${bytes.length}`];
  for (let row = 0; row < bytes.length; row += 16) {
    const end = Math.min(row + 16, bytes.length);
    let hex = "";
    let ascii = "";
    for (let i = row; i < row + 16; i++) {
      if (i === row + 8) hex += " ";
      if (i < end) {
        const byte = bytes[i]!;
        hex += HEX[byte]! + " ";
        ascii += byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : ".";
      } else hex += "   ";
    }
    const at = (offset + row).toString(16).padStart(8, "0");
    lines.push(`${direction} ${at}  ${hex} |${ascii}|`);
  }
  return lines;
}

/** Writes hex dumps as lines to a sink, keeping each socket's offset in each direction. */
export class HexTrace {
  #write: (line: string) => void;
  #offsets = new Map<string, number>();

  /** `write` takes one line (stderr: the reporter's note sink). */
  constructor(write: (line: string) => void) {
    this.#write = write;
  }

  /** Dumps `bytes` moved in `direction` on `socket`, continuing that stream's offset. */
  dump(direction: Direction, socket: number, bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    const key = `${direction}${socket}`;
    const offset = this.#offsets.get(key) ?? 0;
    this.#offsets.set(key, offset + bytes.length);
    for (const line of formatHexDump(direction, socket, offset, bytes)) this.#write(line);
  }
}

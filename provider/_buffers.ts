/**
 * Internal: checks a WSK_BUF and turns it into the byte ranges it covers.
 *
 * @module
 */

import type { Mdl, WskBuf } from "./types.ts";

/** The byte ranges a WSK_BUF covers, in order, or the reason it is malformed. */
export type Segments =
  | { readonly ok: true; readonly parts: Uint8Array[]; readonly length: number }
  | {
    readonly ok: false;
    readonly message: string;
  };

function isByteLength(n: unknown): n is number {
  return typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
}

/** Resolves `buf` into subarrays of its MDL chain, checking every rule WSK_BUF has. */
export function segmentsOf(buf: WskBuf | null | undefined): Segments {
  if (buf === null || buf === undefined) return { ok: true, parts: [], length: 0 };
  if (typeof buf !== "object") return { ok: false, message: "The buffer is not a WSK_BUF" };
  if (!isByteLength(buf.Length)) {
    return { ok: false, message: `Invalid buffer length "${String(buf.Length)}"` };
  }
  if (!isByteLength(buf.Offset)) {
    return { ok: false, message: `Invalid buffer offset "${String(buf.Offset)}"` };
  }
  if (buf.Length === 0) return { ok: true, parts: [], length: 0 };
  let mdl: Mdl | null = buf.Mdl;
  if (mdl === null || typeof mdl !== "object" || !(mdl.bytes instanceof Uint8Array)) {
    return { ok: false, message: "The buffer has a length but no MDL" };
  }
  if (buf.Offset >= mdl.bytes.length) {
    return { ok: false, message: "The buffer offset does not fall inside the first MDL" };
  }
  const parts: Uint8Array[] = [];
  let skip = buf.Offset;
  let left = buf.Length;
  for (let guard = 0; mdl !== null && left > 0; guard++) {
    if (guard > 1_000_000 || !(mdl.bytes instanceof Uint8Array)) {
      return { ok: false, message: "The MDL chain is malformed" };
    }
    const bytes = mdl.bytes.subarray(skip, skip + left);
    skip = 0;
    if (bytes.length > 0) parts.push(bytes);
    left -= bytes.length;
    // Anything but an MDL or null as `Next` ends the chain; a length that needs more is refused
    // below like any chain that runs short.
    const next: unknown = mdl.Next;
    mdl = typeof next === "object" && next !== null ? next as Mdl : null;
  }
  if (left > 0) {
    return { ok: false, message: "The buffer length runs past the end of the MDL chain" };
  }
  return { ok: true, parts, length: buf.Length };
}

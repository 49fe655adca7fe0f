/**
 * Value parsers for command-line arguments. Each throws commander's InvalidArgumentError with
 * a one-line message that quotes the bad value; commander turns it into `error: …` and exit 2.
 *
 * @module
 */

import { InvalidArgumentError } from "@commander-js/extra-typings";
import {
  type AddressFamily,
  AF_INET,
  AF_INET6,
  FIONREAD,
  IPPROTO_IPV6,
  IPPROTO_TCP,
  IPV6_V6ONLY,
  isIpLiteral,
  looksNumeric,
  SIO_KEEPALIVE_VALS,
  SIO_WSK_QUERY_IDEAL_SEND_BACKLOG,
  SIO_WSK_QUERY_RECEIVE_BACKLOG,
  SO_EXCLUSIVEADDRUSE,
  SO_KEEPALIVE,
  SO_RCVBUF,
  SO_REUSEADDR,
  SO_SNDBUF,
  type SockAddr,
  sockAddr,
  SOL_SOCKET,
  TCP_FASTOPEN,
  TCP_KEEPCNT,
  TCP_KEEPIDLE,
  TCP_KEEPINTVL,
  TCP_MAXRT,
  TCP_NODELAY,
} from "../provider/mod.ts";

/**
 * An endpoint as typed: an IP literal (already a SOCKADDR), a host name still to resolve, or
 * only a port (a wildcard local address whose family follows the remote one).
 */
export type Endpoint =
  | { readonly kind: "literal"; readonly address: SockAddr; readonly text: string }
  | { readonly kind: "name"; readonly host: string; readonly port: number; readonly text: string }
  | { readonly kind: "port"; readonly port: number; readonly text: string };

const HOST_NAME =
  /^(?=.{1,253}$)([a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*\.?$/;

/** Throws commander's InvalidArgumentError: "Cannot parse WHAT "VALUE": WHY". */
export function bad(what: string, value: string, why: string): never {
  throw new InvalidArgumentError(`Cannot parse ${what} "${value}": ${why}`);
}

/** Parses a decimal port 0–65535. */
export function parsePort(text: string, what = "port"): number {
  if (!/^(0|[1-9]\d{0,4})$/.test(text)) bad(what, text, "expected an integer from 0 to 65535");
  const port = Number(text);
  if (port > 65535) bad(what, text, "expected an integer from 0 to 65535");
  return port;
}

/**
 * Parses `HOST:PORT`, `[IPV6]:PORT` or (for a local endpoint) `:PORT`. A remote endpoint may
 * not name port 0: nothing listens there, so it is a usage error rather than a connect.
 */
function parseEndpointText(text: string, local: boolean, shown = text): Endpoint {
  let host: string;
  let portText: string;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0) bad("address", shown, "missing ']' after the IPv6 address");
    host = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (!rest.startsWith(":")) bad("address", shown, "expected [IPV6]:PORT");
    portText = rest.slice(1);
    if (isIpLiteral(host) !== 23) bad("address", shown, "not an IPv6 literal inside brackets");
  } else {
    const colon = text.lastIndexOf(":");
    if (colon < 0) bad("address", shown, "expected HOST:PORT (a port is required)");
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(":")) bad("address", shown, "an IPv6 address needs brackets: [IPV6]:PORT");
  }
  if (portText === "") bad("address", shown, "the port is missing");
  if (!/^(0|[1-9]\d{0,4})$/.test(portText) || Number(portText) > 65535) {
    bad("address", shown, `port "${portText}": expected an integer from 0 to 65535`);
  }
  const port = Number(portText);
  if (port === 0 && !local) {
    bad("address", shown, "port 0 cannot be reached (a remote port is from 1 to 65535)");
  }
  if (host === "") {
    if (!local) bad("address", shown, "the host is missing");
    return { kind: "port", port, text };
  }
  if (isIpLiteral(host) !== undefined) {
    try {
      return { kind: "literal", address: sockAddr(host, port), text };
    } catch (error) {
      bad("address", shown, error instanceof Error ? error.message : String(error));
    }
  }
  // Looks like an IP but is not one (999.1.1.1, 1.2.3): refuse it without any name lookup.
  if (looksNumeric(host)) bad("address", shown, "not a valid IPv4 or IPv6 literal");
  if (!HOST_NAME.test(host)) bad("address", shown, "not an IP literal or a valid host name");
  return { kind: "name", host, port, text };
}

/** A port as typed after an address (`PORTS` also takes lists and ranges: `80,8000-8002`). */
const PORT = "[0-9]{1,5}";
const PORTS = "[0-9][0-9,-]*";

/**
 * The one address a mistyped `text` most likely meant, or null when no single reading fits.
 * Each form is unambiguous: only one split of the text gives a host and a port.
 *
 * - the wrong separator: `127.0.0.1 8099` (one quoted word), `127.0.0.1;8099`, `127.0.0.1/8099`
 *   (not when the number could be a prefix length, as in `10.0.0.0/8`);
 * - a doubled colon: `127.0.0.1::8099`;
 * - a dot before the port after a whole IPv4 address: `127.0.0.1.8099`;
 * - an IPv6 address without brackets: `::1:8099` → `[::1]:8099`, or without the colon after
 *   them: `[::1]8099`;
 * - a URL: `http://127.0.0.1:8099/` (its port, or 80/443 for http/https).
 *
 * `ports` is the pattern of the port part; `parses` says whether a candidate is valid, and only
 * a valid candidate is offered.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { addressHint } from "./values.ts";
 *
 * const valid = (text: string) => /^(\[::1\]|127\.0\.0\.1):\d+$/.test(text);
 * assert.equal(addressHint("127.0.0.1;8099", "[0-9]{1,5}", valid), "127.0.0.1:8099");
 * assert.equal(addressHint("::1:8099", "[0-9]{1,5}", valid), "[::1]:8099");
 * assert.equal(addressHint("127.0.0.1", "[0-9]{1,5}", valid), null);
 * ```
 */
export function addressHint(
  text: string,
  ports: string,
  parses: (candidate: string) => boolean,
): string | null {
  const candidates: string[] = [];
  const separated = new RegExp(`^([^\\s;/]+?)(\\s+|;|/|::)(${ports})$`).exec(text.trim());
  if (separated) {
    const [, host, separator, port] = separated as unknown as [string, string, string, string];
    const family = isIpLiteral(host);
    // After a doubled colon only an IPv4 address or localhost is sure to be the host: `fe80::80`
    // may be an IPv6 address missing its brackets and port.
    // After a slash a small number may be a prefix length (`10.0.0.0/8`), not a port.
    const prefix = separator === "/" && Number(port) <= (family === AF_INET6 ? 128 : 32);
    if (!prefix && (separator !== "::" || family === AF_INET || host === "localhost")) {
      candidates.push(family === AF_INET6 ? `[${host}]:${port}` : `${host}:${port}`);
    }
  }
  const dotted = new RegExp(`^([0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+)\\.(${ports})$`).exec(text);
  if (dotted && isIpLiteral(dotted[1]!) === AF_INET) candidates.push(`${dotted[1]}:${dotted[2]}`);
  const unbracketed = new RegExp(`^([0-9a-fA-F:.]*:[0-9a-fA-F:.]*):(${ports})$`).exec(text);
  if (unbracketed && isIpLiteral(unbracketed[1]!) === AF_INET6) {
    candidates.push(`[${unbracketed[1]}]:${unbracketed[2]}`);
  }
  const unseparated = new RegExp(`^\\[([^\\]]+)\\](${ports})$`).exec(text);
  if (unseparated) candidates.push(`[${unseparated[1]}]:${unseparated[2]}`);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    try {
      const url = new URL(text);
      const port = url.port || { "http:": "80", "https:": "443" }[url.protocol];
      if (port && url.hostname) candidates.push(`${url.hostname}:${port}`);
    } catch {
      // Not a URL after all.
    }
  }
  const valid = [...new Set(candidates)].filter((candidate) =>
    candidate !== text && parses(candidate)
  );
  return valid.length === 1 ? valid[0]! : null;
}

/**
 * Runs `parse`; when it refuses `text` and {@linkcode addressHint} finds the address it most
 * likely meant, the one-line error ends with `; did you mean ADDRESS?`.
 */
function withHint<T>(text: string, ports: string, parse: (text: string) => T): T {
  try {
    return parse(text);
  } catch (error) {
    if (!(error instanceof InvalidArgumentError)) throw error;
    const hint = addressHint(text, ports, (candidate) => {
      try {
        parse(candidate);
        return true;
      } catch {
        return false;
      }
    });
    if (hint === null) throw error;
    throw new InvalidArgumentError(`${error.message}; did you mean ${hint}?`);
  }
}

/**
 * Parses a remote endpoint: `HOST:PORT` or `[IPV6]:PORT`, port 1–65535. A mistyped form gets
 * a hint (see {@linkcode addressHint}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRemote } from "./values.ts";
 *
 * assert.throws(
 *   () => parseRemote("127.0.0.1/8099"),
 *   /Cannot parse address "127.0.0.1\/8099": .*; did you mean 127.0.0.1:8099\?$/,
 * );
 * ```
 */
export function parseRemote(text: string): Endpoint {
  return withHint(text, PORT, (t) => parseEndpointText(t, false));
}

/**
 * Parses a local endpoint: as a remote one, or `:PORT` for the wildcard address. A mistyped
 * form gets a hint (see {@linkcode addressHint}).
 */
export function parseLocal(text: string): Endpoint {
  return withHint(text, PORT, (t) => parseEndpointText(t, true));
}

/** Parses an integer within bounds. */
export function parseInteger(text: string, what: string, min: number, max: number): number {
  if (!/^\d+$/.test(text)) bad(what, text, `expected an integer from ${min} to ${max}`);
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    bad(what, text, `expected an integer from ${min} to ${max}`);
  }
  return n;
}

/** The longest timer a timeout can set (setTimeout takes a signed 32-bit delay). */
export const MAX_TIMEOUT = 2_147_483_647;

/**
 * Parses `--timeout` milliseconds: 1 to {@linkcode MAX_TIMEOUT}. A timeout of 0 would fail
 * every call before it could complete, so it is refused as a usage error.
 */
export function parseTimeout(text: string): number {
  return parseDuration(text, "timeout", 1, MAX_TIMEOUT);
}

/** Milliseconds per duration unit. */
const DURATION_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000 };

/**
 * Parses a duration in milliseconds, within bounds: a bare integer is milliseconds (`500`), and
 * a number with a unit may have a fraction (`500ms`, `5s`, `1.5s`, `2m`); the result is rounded
 * to whole milliseconds.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseDuration } from "./values.ts";
 *
 * assert.equal(parseDuration("250", "timeout", 1, 10_000), 250);
 * assert.equal(parseDuration("1.5s", "timeout", 1, 10_000), 1500);
 * assert.equal(parseDuration("500ms", "timeout", 1, 10_000), 500);
 * ```
 */
export function parseDuration(text: string, what: string, min: number, max: number): number {
  const expected = `expected milliseconds from ${min} to ${max}, or a number with a unit ` +
    "(500ms, 5s, 2m)";
  const match = /^(\d+)$|^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(text);
  if (!match) return bad(what, text, expected);
  const ms = match[1] !== undefined
    ? Number(match[1])
    : Math.round(Number(match[2]) * DURATION_UNITS[match[3]!]!);
  if (!Number.isSafeInteger(ms) || ms < min || ms > max) return bad(what, text, expected);
  return ms;
}

/** Parses a positive count (connections, bytes). */
export function parseCount(text: string): number {
  return parseInteger(text, "count", 1, Number.MAX_SAFE_INTEGER);
}

/** Parses a byte count that may be 0. */
export function parseByteCount(text: string): number {
  return parseInteger(text, "byte count", 0, Number.MAX_SAFE_INTEGER);
}

/** Parses `--family`. */
export function parseFamily(text: string): AddressFamily {
  if (text === "inet" || text === "4") return 2;
  if (text === "inet6" || text === "6") return 23;
  return bad("family", text, "expected inet or inet6");
}

/** Data text as an error line quotes it: long text cut to its start, so the line stays short. */
function shownData(text: string): string {
  return text.length > 64 ? `${text.slice(0, 64)}...(+${text.length - 64} characters)` : text;
}

/**
 * Decodes `--data` text: `\r`, `\n`, `\t`, `\0`, `\\` and `\xNN` escapes; the rest as UTF-8.
 *
 * Text holding U+FFFD is refused: Deno decodes a command line lossily, so bytes that are not
 * UTF-8 arrive as U+FFFD and would be sent as EF BF BD instead of what was typed. Such bytes
 * are written as `\xNN` (and a real U+FFFD as `\xEF\xBF\xBD`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseData } from "./values.ts";
 *
 * assert.deepEqual(parseData("a\\r\\n\\x00"), new Uint8Array([0x61, 0x0d, 0x0a, 0x00]));
 * ```
 */
export function parseData(text: string): Uint8Array {
  if (text.includes("\uFFFD")) {
    bad(
      "data",
      shownData(text),
      "it holds U+FFFD, the stand-in for bytes that are not UTF-8; write such bytes as \\xNN " +
        "(U+FFFD itself as \\xEF\\xBF\\xBD)",
    );
  }
  const simple = new Map([["r", 13], ["n", 10], ["t", 9], ["0", 0], ["\\", 92]]);
  const encoder = new TextEncoder();
  const pieces: Uint8Array[] = [];
  let plainStart = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] !== "\\") continue;
    pieces.push(encoder.encode(text.slice(plainStart, i)));
    const next = text[i + 1] ?? "";
    const byte = simple.get(next);
    if (byte !== undefined) {
      pieces.push(new Uint8Array([byte]));
      i++;
    } else if (next === "x" && /^[0-9a-fA-F]{2}$/.test(text.slice(i + 2, i + 4))) {
      pieces.push(new Uint8Array([parseInt(text.slice(i + 2, i + 4), 16)]));
      i += 3;
    } else {
      bad("data", shownData(text), `unknown escape "\\${next}" (use \\r \\n \\t \\0 \\\\ \\xNN)`);
    }
    plainStart = i + 1;
  }
  pieces.push(encoder.encode(text.slice(plainStart)));
  const out = new Uint8Array(pieces.reduce((sum, piece) => sum + piece.length, 0));
  let offset = 0;
  for (const piece of pieces) {
    out.set(piece, offset);
    offset += piece.length;
  }
  return out;
}

/** Most bytes WskConnectEx sends with the handshake. */
export const MAX_FIRST_DATA = 65535;

/** Parses the first data of `connectex`: as {@linkcode parseData}, at most 65,535 bytes. */
export function parseFirstData(text: string): Uint8Array {
  const bytes = parseData(text);
  if (bytes.length > MAX_FIRST_DATA) {
    bad(
      "data",
      shownData(text),
      `${bytes.length} bytes; WskConnectEx sends at most ${MAX_FIRST_DATA}`,
    );
  }
  return bytes;
}

/** A socket option or IOCTL the CLI can name. */
export interface OptionSpec {
  readonly name: string;
  readonly kind: "option" | "ioctl";
  readonly level: number;
  readonly code: number;
  /** Output size for a get or IOCTL (ULONG 4, SIZE_T 8). */
  readonly size: 4 | 8;
}

const OPTION_TABLE: readonly OptionSpec[] = [
  { name: "SO_KEEPALIVE", kind: "option", level: SOL_SOCKET, code: SO_KEEPALIVE, size: 4 },
  { name: "SO_REUSEADDR", kind: "option", level: SOL_SOCKET, code: SO_REUSEADDR, size: 4 },
  {
    name: "SO_EXCLUSIVEADDRUSE",
    kind: "option",
    level: SOL_SOCKET,
    code: SO_EXCLUSIVEADDRUSE,
    size: 4,
  },
  { name: "SO_RCVBUF", kind: "option", level: SOL_SOCKET, code: SO_RCVBUF, size: 4 },
  { name: "SO_SNDBUF", kind: "option", level: SOL_SOCKET, code: SO_SNDBUF, size: 4 },
  { name: "TCP_NODELAY", kind: "option", level: IPPROTO_TCP, code: TCP_NODELAY, size: 4 },
  { name: "TCP_KEEPIDLE", kind: "option", level: IPPROTO_TCP, code: TCP_KEEPIDLE, size: 4 },
  { name: "TCP_KEEPCNT", kind: "option", level: IPPROTO_TCP, code: TCP_KEEPCNT, size: 4 },
  { name: "TCP_KEEPINTVL", kind: "option", level: IPPROTO_TCP, code: TCP_KEEPINTVL, size: 4 },
  { name: "TCP_MAXRT", kind: "option", level: IPPROTO_TCP, code: TCP_MAXRT, size: 4 },
  { name: "TCP_FASTOPEN", kind: "option", level: IPPROTO_TCP, code: TCP_FASTOPEN, size: 4 },
  { name: "IPV6_V6ONLY", kind: "option", level: IPPROTO_IPV6, code: IPV6_V6ONLY, size: 4 },
  {
    name: "SIO_WSK_QUERY_RECEIVE_BACKLOG",
    kind: "ioctl",
    level: 0,
    code: SIO_WSK_QUERY_RECEIVE_BACKLOG,
    size: 8,
  },
  {
    name: "SIO_WSK_QUERY_IDEAL_SEND_BACKLOG",
    kind: "ioctl",
    level: 0,
    code: SIO_WSK_QUERY_IDEAL_SEND_BACKLOG,
    size: 8,
  },
  { name: "FIONREAD", kind: "ioctl", level: 0, code: FIONREAD, size: 4 },
  { name: "SIO_KEEPALIVE_VALS", kind: "ioctl", level: 0, code: SIO_KEEPALIVE_VALS, size: 4 },
];

/** The option and IOCTL names `controlsocket` knows. */
export const OPTION_NAMES: readonly string[] = OPTION_TABLE.map((spec) => spec.name);

/** Parses an option name for `--get` (case-insensitive). */
export function parseOptionName(text: string): OptionSpec {
  const spec = OPTION_TABLE.find((entry) => entry.name === text.toUpperCase());
  if (!spec) bad("option", text, `expected one of ${OPTION_NAMES.join(", ")}`);
  return spec;
}

/** A `--set NAME=VALUE` request. */
export interface OptionSetting {
  readonly spec: OptionSpec;
  readonly value: number;
}

/** Parses `NAME=VALUE` for `--set` (VALUE: an integer, or on/off/true/false). */
export function parseOptionSetting(text: string): OptionSetting {
  const eq = text.indexOf("=");
  if (eq < 0) bad("option setting", text, "expected NAME=VALUE");
  const spec = parseOptionName(text.slice(0, eq));
  if (spec.kind !== "option") bad("option setting", text, `${spec.name} is an IOCTL; use --get`);
  const raw = text.slice(eq + 1).toLowerCase();
  const named = new Map([["on", 1], ["off", 0], ["true", 1], ["false", 0], ["yes", 1], ["no", 0]]);
  const value = named.get(raw) ?? parseInteger(raw, "option value", 0, 0xffffffff);
  return { spec, value };
}

/** Collects repeated options into an array (commander's variadic helper). */
export function collect<T>(
  parse: (text: string) => T,
): (text: string, previous: T[] | undefined) => T[] {
  return (text, previous) => [...(previous ?? []), parse(text)];
}

const SIZE_REGEXP = /^(0|[1-9][0-9]*)([KMG]?)$/;

/**
 * Parses a byte size: a decimal integer with an optional binary suffix, K (KiB), M (MiB) or
 * G (GiB). Nothing else is accepted: no fractions, spaces, lower-case suffixes or "B".
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSize } from "./values.ts";
 *
 * assert.equal(parseSize("1G"), 1024 ** 3);
 * assert.equal(parseSize("8M"), 8 * 1024 * 1024);
 * assert.equal(parseSize("4096"), 4096);
 * ```
 */
export function parseSize(text: string): number {
  const match = SIZE_REGEXP.exec(text);
  if (!match) bad("size", text, "expected a byte count such as 4096, 64K, 8M or 1G");
  const scale = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[match[2] as "" | "K" | "M" | "G"];
  const value = Number(match[1]) * scale;
  if (!Number.isSafeInteger(value)) bad("size", text, "too large");
  return value;
}

/** Most ports one `socketconnect` port list may name. */
export const MAX_PORT_LIST = 1024;

/** `HOST:P1-P2` or `HOST:P1,P2,…` (items may be ranges): one host, many ports. */
export interface PortList {
  /** The host with the first port, as a remote endpoint (resolve it once). */
  readonly endpoint: Endpoint;
  /** The ports, in the order given. */
  readonly ports: readonly number[];
  /** True when the text named more than one port or a range (not a plain HOST:PORT). */
  readonly isList: boolean;
  readonly text: string;
}

/**
 * Parses `HOST:PORT`, `HOST:P1-P2` or `HOST:P1,P2,P3` (items may be ranges; `[IPV6]:…` too).
 * Ports are 1–65535, a range may not run backwards, no port may repeat, and at most
 * {@linkcode MAX_PORT_LIST} ports are named.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parsePortList } from "./values.ts";
 *
 * assert.deepEqual(parsePortList("127.0.0.1:80,8000-8002").ports, [80, 8000, 8001, 8002]);
 * assert.deepEqual(parsePortList("[::1]:7").ports, [7]);
 * ```
 */
export function parsePortList(text: string): PortList {
  return withHint(text, PORTS, portList);
}

/** {@linkcode parsePortList} without the hint. */
function portList(text: string): PortList {
  const colon = text.lastIndexOf(":");
  const spec = colon < 0 ? "" : text.slice(colon + 1);
  if (colon < 0 || !/[-,]/.test(spec)) {
    const endpoint = parseEndpointText(text, false);
    const port = endpoint.kind === "literal" ? endpoint.address.port : endpoint.port;
    return { endpoint, ports: [port], isList: false, text };
  }
  const host = text.slice(0, colon);
  const ports: number[] = [];
  const seen = new Set<number>();
  const portOf = (item: string): number => {
    if (!/^[1-9][0-9]{0,4}$/.test(item) || Number(item) > 65535) {
      bad("port list", text, `port "${item}": expected an integer from 1 to 65535`);
    }
    return Number(item);
  };
  for (const item of spec.split(",")) {
    if (item === "") bad("port list", text, "an empty item (expected P, P1-P2 or P1,P2,…)");
    const dash = item.indexOf("-");
    const low = portOf(dash < 0 ? item : item.slice(0, dash));
    const high = dash < 0 ? low : portOf(item.slice(dash + 1));
    if (high < low) bad("port list", text, `the range "${item}" runs backwards`);
    if (ports.length + (high - low + 1) > MAX_PORT_LIST) {
      bad("port list", text, `more than ${MAX_PORT_LIST} ports`);
    }
    for (let port = low; port <= high; port++) {
      if (seen.has(port)) bad("port list", text, `port ${port} is named twice`);
      seen.add(port);
      ports.push(port);
    }
  }
  const endpoint = parseEndpointText(`${host}:${ports[0]}`, false, text);
  return { endpoint, ports, isList: true, text };
}

/** Parses `--retry-until`: milliseconds, or a duration with a unit (`5s`). */
export function parseRetryUntil(text: string): number {
  return parseDuration(text, "retry deadline", 0, MAX_TIMEOUT);
}

// The SOCKADDR model: IPv4 and IPv6 endpoints as small immutable values, their text forms, and
// the Windows byte layouts of SOCKADDR_IN and SOCKADDR_IN6 (wsk-semantics.md §1.5).
//
// Only IP literals are handled here. Host names belong to the resolver, which hands this module
// the addresses it found.

/**
 * The Windows value of `AF_INET` (IPv4), from ws2def.h.
 *
 * @example Value
 * ```ts
 * import { AF_INET } from "./address.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(AF_INET, 2);
 * ```
 */
export const AF_INET = 2;

/**
 * The Windows value of `AF_INET6` (IPv6), from ws2def.h. It differs from Linux's 10.
 *
 * @example Value
 * ```ts
 * import { AF_INET6 } from "./address.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(AF_INET6, 23);
 * ```
 */
export const AF_INET6 = 23;

/**
 * The address families a connection socket can have.
 *
 * @example Narrowing a family
 * ```ts
 * import { AF_INET6, type AddressFamily, familyName } from "./address.ts";
 * import assert from "node:assert/strict";
 *
 * const family: AddressFamily = AF_INET6;
 * assert.equal(familyName(family), "AF_INET6");
 * ```
 */
export type AddressFamily = typeof AF_INET | typeof AF_INET6;

/**
 * An IPv4 or IPv6 endpoint: the model of `SOCKADDR_IN` / `SOCKADDR_IN6`.
 *
 * Build values with {@linkcode sockAddr}, {@linkcode parseSockAddr} or
 * {@linkcode decodeSockAddr}, which keep `address` canonical so that two equal endpoints have
 * equal fields:
 *
 * - IPv4: dotted decimal without leading zeros (`"127.0.0.1"`);
 * - IPv6: RFC 5952 text, lower case with the longest run of zero groups compressed (`"::1"`,
 *   `"fe80::1"`); IPv4-mapped addresses end in dotted decimal (`"::ffff:192.0.2.1"`).
 *
 * `scopeId` (the IPv6 zone, such as an interface index) is present only when it is not 0.
 * `sin6_flowinfo` is not modelled.
 *
 * @example An IPv6 endpoint with a scope
 * ```ts
 * import { AF_INET6, parseSockAddr, type SockAddr } from "./address.ts";
 * import assert from "node:assert/strict";
 *
 * const addr: SockAddr = parseSockAddr("[FE80:0::1%2]:80");
 * assert.deepEqual(addr, { family: AF_INET6, address: "fe80::1", port: 80, scopeId: 2 });
 * ```
 */
export interface SockAddr {
  /** `AF_INET` or `AF_INET6`. */
  readonly family: AddressFamily;
  /** The canonical text of the IP address, without brackets or scope. */
  readonly address: string;
  /** The port, 0 to 65535; 0 means "any port" when binding. */
  readonly port: number;
  /** The IPv6 scope id (zone index); absent when 0 and always absent for IPv4. */
  readonly scopeId?: number;
}

const SOCKADDR_IN_SIZE = 16;
const SOCKADDR_IN6_SIZE = 28;
const MAX_PORT = 65535;
const MAX_SCOPE_ID = 0xFFFFFFFF;

const IPV4_OCTET_REGEXP = /^(?:0|[1-9][0-9]{0,2})$/;
const IPV6_GROUP_REGEXP = /^[0-9a-f]{1,4}$/i;
const DECIMAL_REGEXP = /^[0-9]+$/;
const SCOPE_ID_REGEXP = /^(?:0|[1-9][0-9]*)$/;
// Dotted labels of decimal or 0x-hex digits, as inet_aton would read them, with an optional
// trailing dot. No DNS host name has an all-numeric top-level label, so none of these is a name.
const DOTTED_NUMBER_REGEXP = /^(?:[0-9]+|0x[0-9a-f]+)(?:\.(?:[0-9]+|0x[0-9a-f]+))*\.?$/i;
// Hex digits, dots and at least one colon, with an optional zone: an attempt at an IPv6 literal.
// Host names never contain a colon.
const IPV6_LIKE_REGEXP = /^[0-9a-f.]*:[0-9a-f.:]*(?:%[0-9a-z_.-]*)?$/i;

// An IP literal taken apart: the 4 or 16 address bytes and the zone (0 when none was given).
interface IpLiteral {
  family: AddressFamily;
  bytes: Uint8Array;
  scopeId: number;
}

// Why a text is not an IP literal, so each caller can word its own message.
type IpLiteralProblem =
  | { kind: "not-literal" }
  | { kind: "bad-scope"; scope: string };

/**
 * Builds an endpoint from an IP literal and a port. The family comes from the literal and the
 * address is stored in canonical form. An IPv6 literal may carry a numeric zone after `%`
 * (`"fe80::1%2"`), which becomes `scopeId`.
 *
 * @param address An IPv4 or IPv6 literal, without brackets. Host names are not accepted.
 * @param port The port, an integer from 0 to 65535.
 * @returns The endpoint.
 * @throws {SyntaxError} If `address` is not an IP literal, or its zone is not a decimal number.
 * @throws {RangeError} If `port` is not an integer from 0 to 65535.
 *
 * @example IPv4 and IPv6
 * ```ts
 * import { AF_INET, AF_INET6, sockAddr } from "./address.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(sockAddr("127.0.0.1", 80), { family: AF_INET, address: "127.0.0.1", port: 80 });
 * assert.deepEqual(sockAddr("0:0:0:0:0:0:0:1", 7), { family: AF_INET6, address: "::1", port: 7 });
 * assert.throws(() => sockAddr("999.1.1.1", 80), SyntaxError);
 * assert.throws(() => sockAddr("::1", 70000), RangeError);
 * ```
 */
export function sockAddr(address: string, port: number): SockAddr {
  const literal = parseIpLiteral(address);
  if ("kind" in literal) {
    throw new SyntaxError(`Cannot parse address "${address}": ${describeProblem(literal)}`);
  }
  checkPort(port);
  return makeSockAddr(literal.family, literal.bytes, port, literal.scopeId);
}

/**
 * Parses an endpoint written as `address:port`: `"127.0.0.1:80"`, `"[::1]:80"` or, with a
 * numeric IPv6 zone, `"[fe80::1%2]:80"`.
 *
 * The grammar is strict:
 *
 * - IPv4 is exactly four decimal octets from 0 to 255 without leading zeros;
 * - IPv6 follows RFC 4291 (hex groups of at most four digits, at most one `::`, an optional
 *   dotted IPv4 tail) and must be in brackets, since a port always follows;
 * - the port is required and is plain decimal from 0 to 65535: no sign, no leading zeros, no
 *   spaces.
 *
 * @param text The text to parse.
 * @returns The endpoint, with its address in canonical form.
 * @throws {SyntaxError} If the text does not follow the grammar above; the message quotes it.
 * @throws {RangeError} If the port is above 65535.
 *
 * @example Accepted and refused forms
 * ```ts
 * import { AF_INET, AF_INET6, parseSockAddr } from "./address.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseSockAddr("127.0.0.1:80"), {
 *   family: AF_INET,
 *   address: "127.0.0.1",
 *   port: 80,
 * });
 * assert.deepEqual(parseSockAddr("[::1]:80"), { family: AF_INET6, address: "::1", port: 80 });
 * assert.throws(() => parseSockAddr("1.2.3:80"), SyntaxError);
 * assert.throws(() => parseSockAddr("::1:80"), SyntaxError);
 * assert.throws(() => parseSockAddr("127.0.0.1:65536"), RangeError);
 * ```
 */
export function parseSockAddr(text: string): SockAddr {
  let host: string;
  let portText: string;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close === -1) throw syntaxError(text, `missing "]" after the IPv6 address`);
    host = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (rest === "") throw syntaxError(text, `missing ":port" after "]"`);
    if (!rest.startsWith(":")) throw syntaxError(text, `expected ":port" after "]"`);
    portText = rest.slice(1);
  } else {
    const colon = text.indexOf(":");
    if (colon === -1) {
      throw syntaxError(text, `expected "address:port", as in "127.0.0.1:80"`);
    }
    if (text.indexOf(":", colon + 1) !== -1) {
      throw syntaxError(
        text,
        `an IPv6 address must be in brackets when a port follows, as in "[::1]:80"`,
      );
    }
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
  }

  const literal = parseIpLiteral(host);
  if ("kind" in literal) {
    const expected = text.startsWith("[") ? "an IPv6" : "an IPv4 or IPv6";
    const detail = literal.kind === "not-literal"
      ? `"${host}" is not ${expected} literal`
      : describeProblem(literal);
    throw syntaxError(text, detail);
  }
  const bracketed = text.startsWith("[");
  if (bracketed && literal.family === AF_INET) {
    throw syntaxError(text, `"${host}" is an IPv4 address; brackets are only for IPv6`);
  }

  if (portText === "") throw syntaxError(text, `missing port after ":"`);
  if (!DECIMAL_REGEXP.test(portText)) {
    throw syntaxError(text, `port "${portText}" is not a decimal number`);
  }
  if (portText.length > 1 && portText.startsWith("0")) {
    throw syntaxError(text, `port "${portText}" has a leading zero`);
  }
  const port = Number(portText);
  if (port > MAX_PORT) {
    throw new RangeError(
      `Cannot parse socket address "${text}": port "${portText}" is not from 0 to ${MAX_PORT}`,
    );
  }
  return makeSockAddr(literal.family, literal.bytes, port, literal.scopeId);
}

/**
 * Tells whether a text is an IP literal, and of which family. An IPv6 literal may end in a
 * numeric zone (`"fe80::1%2"`). The rules are those of {@linkcode parseSockAddr}, without the
 * brackets and port.
 *
 * @param text The text to test, such as a host argument.
 * @returns `AF_INET`, `AF_INET6`, or `undefined` when the text is not a literal (a host name,
 * or a malformed address).
 *
 * @example Literals and non-literals
 * ```ts
 * import { AF_INET, AF_INET6, isIpLiteral } from "./address.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isIpLiteral("10.0.0.1"), AF_INET);
 * assert.equal(isIpLiteral("::ffff:10.0.0.1"), AF_INET6);
 * assert.equal(isIpLiteral("256.0.0.1"), undefined);
 * assert.equal(isIpLiteral("localhost"), undefined);
 * ```
 */
export function isIpLiteral(text: string): AddressFamily | undefined {
  const literal = parseIpLiteral(text);
  return "kind" in literal ? undefined : literal.family;
}

/**
 * Tells whether a host argument looks like an attempt at a numeric address rather than a name,
 * so a CLI can refuse it without a DNS lookup when {@linkcode isIpLiteral} does not accept it.
 *
 * It is `true` for dotted numbers (decimal or `0x` hex labels, such as `"999.1.1.1"`, `"1.2.3"`,
 * `"256.0.0.1"` or `"2130706433"`), and for texts of hex digits and dots that contain a colon,
 * optionally with a `%` zone (such as `"1:2:3"` or `"fe80:::1"`): no host name has a colon.
 * Valid literals look numeric too, so test with {@linkcode isIpLiteral} first.
 *
 * @param host The host argument.
 * @returns `true` if no DNS name could have this form.
 *
 * @example Deciding whether to resolve
 * ```ts
 * import { isIpLiteral, looksNumeric } from "./address.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isIpLiteral("999.1.1.1"), undefined);
 * assert.ok(looksNumeric("999.1.1.1"));
 * assert.ok(looksNumeric("1:2:3"));
 * assert.equal(looksNumeric("example.com"), false);
 * assert.equal(looksNumeric("1.2.3.example"), false);
 * ```
 */
export function looksNumeric(host: string): boolean {
  return DOTTED_NUMBER_REGEXP.test(host) || IPV6_LIKE_REGEXP.test(host);
}

/**
 * Writes an endpoint as text: `"127.0.0.1:80"`, `"[::1]:80"`, or `"[fe80::1%2]:80"` with a
 * scope. {@linkcode parseSockAddr} reads this form back.
 *
 * @param addr The endpoint.
 * @returns The text.
 *
 * @example Both families
 * ```ts
 * import { formatSockAddr, sockAddr } from "./address.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatSockAddr(sockAddr("127.0.0.1", 80)), "127.0.0.1:80");
 * assert.equal(formatSockAddr(sockAddr("fe80::1%2", 80)), "[fe80::1%2]:80");
 * ```
 */
export function formatSockAddr(addr: SockAddr): string {
  if (addr.family === AF_INET) return `${addr.address}:${addr.port}`;
  const scope = addr.scopeId === undefined || addr.scopeId === 0 ? "" : `%${addr.scopeId}`;
  return `[${addr.address}${scope}]:${addr.port}`;
}

/**
 * Tells whether an endpoint's address is the wildcard (`0.0.0.0` or `::`), whatever its port.
 *
 * @param addr The endpoint.
 * @returns `true` for the unspecified address of either family.
 * @throws {TypeError} If `addr.address` is not a literal of `addr.family` (a hand-built value).
 *
 * @example Wildcard and loopback
 * ```ts
 * import { AF_INET6, isWildcard, loopback, wildcard } from "./address.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(isWildcard(wildcard(AF_INET6, 8080)));
 * assert.equal(isWildcard(loopback(AF_INET6)), false);
 * ```
 */
export function isWildcard(addr: SockAddr): boolean {
  return addressBytes(addr).every((byte) => byte === 0);
}

/**
 * Builds the wildcard endpoint of a family: `0.0.0.0` or `::`.
 *
 * @param family `AF_INET` or `AF_INET6`.
 * @param port The port; 0 (the default) means "any port".
 * @returns The endpoint.
 * @throws {RangeError} If `family` is not a known family or `port` is out of range.
 *
 * @example Binding anywhere
 * ```ts
 * import { AF_INET, formatSockAddr, wildcard } from "./address.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatSockAddr(wildcard(AF_INET)), "0.0.0.0:0");
 * ```
 */
export function wildcard(family: AddressFamily, port = 0): SockAddr {
  checkFamily(family);
  return sockAddr(family === AF_INET ? "0.0.0.0" : "::", port);
}

/**
 * Builds the loopback endpoint of a family: `127.0.0.1` or `::1`.
 *
 * @param family `AF_INET` or `AF_INET6`.
 * @param port The port; defaults to 0.
 * @returns The endpoint.
 * @throws {RangeError} If `family` is not a known family or `port` is out of range.
 *
 * @example Loopback endpoints
 * ```ts
 * import { AF_INET6, formatSockAddr, loopback } from "./address.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatSockAddr(loopback(AF_INET6, 7)), "[::1]:7");
 * ```
 */
export function loopback(family: AddressFamily, port = 0): SockAddr {
  checkFamily(family);
  return sockAddr(family === AF_INET ? "127.0.0.1" : "::1", port);
}

/**
 * Converts the address Deno reports for a socket (`conn.localAddr`, `listener.addr`) into an
 * endpoint. The transport (`"tcp"` or `"udp"`) is dropped.
 *
 * @param addr A Deno network address whose hostname is an IP literal.
 * @returns The endpoint.
 * @throws {SyntaxError} If `addr.hostname` is not an IP literal.
 *
 * @example A listener's address
 * ```ts
 * import { AF_INET, sockAddrFromNetAddr } from "./address.ts";
 * import assert from "node:assert/strict";
 *
 * const addr = sockAddrFromNetAddr({ transport: "tcp", hostname: "127.0.0.1", port: 8080 });
 * assert.deepEqual(addr, { family: AF_INET, address: "127.0.0.1", port: 8080 });
 * ```
 */
export function sockAddrFromNetAddr(addr: Deno.NetAddr): SockAddr {
  return sockAddr(addr.hostname, addr.port);
}

/**
 * Tells whether two endpoints are the same: family, address bytes, port and scope (a missing
 * scope counts as 0). Addresses are compared as bytes, so a hand-built value with a
 * non-canonical address still compares correctly.
 *
 * @param a One endpoint.
 * @param b The other endpoint.
 * @returns `true` when they name the same endpoint.
 * @throws {TypeError} If an address is not a literal of its family (a hand-built value).
 *
 * @example Equal and different endpoints
 * ```ts
 * import { AF_INET6, parseSockAddr, sameSockAddr } from "./address.ts";
 * import assert from "node:assert/strict";
 *
 * const a = parseSockAddr("[::1]:80");
 * assert.ok(sameSockAddr(a, { family: AF_INET6, address: "0::0:1", port: 80 }));
 * assert.equal(sameSockAddr(a, parseSockAddr("[::1]:81")), false);
 * ```
 */
export function sameSockAddr(a: SockAddr, b: SockAddr): boolean {
  if (a.family !== b.family || a.port !== b.port) return false;
  if (a.family === AF_INET6 && (a.scopeId ?? 0) !== (b.scopeId ?? 0)) return false;
  const left = addressBytes(a);
  const right = addressBytes(b);
  return left.every((byte, i) => byte === right[i]);
}

/**
 * Encodes an endpoint in the Windows byte layout.
 *
 * - `SOCKADDR_IN`, 16 bytes: family (u16, little-endian, 2), port (u16, big-endian), 4 address
 *   bytes, 8 zero bytes.
 * - `SOCKADDR_IN6`, 28 bytes: family (u16, little-endian, 23), port (u16, big-endian),
 *   flowinfo (u32, always 0), 16 address bytes, scope id (u32, little-endian).
 *
 * @param addr The endpoint.
 * @returns A new byte array of 16 or 28 bytes.
 * @throws {TypeError} If the address is not a literal of its family (a hand-built value).
 * @throws {RangeError} If the family, port or scope id is out of range.
 *
 * @example The bytes of 127.0.0.1:80
 * ```ts
 * import { encodeSockAddr, sockAddr } from "./address.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(
 *   encodeSockAddr(sockAddr("127.0.0.1", 80)),
 *   new Uint8Array([2, 0, 0, 80, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]),
 * );
 * ```
 */
export function encodeSockAddr(addr: SockAddr): Uint8Array {
  checkFamily(addr.family);
  checkPort(addr.port);
  const address = addressBytes(addr);
  if (addr.family === AF_INET) {
    const bytes = new Uint8Array(SOCKADDR_IN_SIZE);
    const view = new DataView(bytes.buffer);
    view.setUint16(0, AF_INET, true);
    view.setUint16(2, addr.port, false);
    bytes.set(address, 4);
    return bytes;
  }
  const scopeId = addr.scopeId ?? 0;
  if (!Number.isInteger(scopeId) || scopeId < 0 || scopeId > MAX_SCOPE_ID) {
    throw new RangeError(
      `Cannot encode scope id "${scopeId}": expected an integer from 0 to ${MAX_SCOPE_ID}`,
    );
  }
  const bytes = new Uint8Array(SOCKADDR_IN6_SIZE);
  const view = new DataView(bytes.buffer);
  view.setUint16(0, AF_INET6, true);
  view.setUint16(2, addr.port, false);
  view.setUint32(4, 0, false);
  bytes.set(address, 8);
  view.setUint32(24, scopeId, true);
  return bytes;
}

/**
 * Decodes a `SOCKADDR_IN` (16 bytes) or `SOCKADDR_IN6` (28 bytes) written in the layout of
 * {@linkcode encodeSockAddr}. `sin_zero` and `sin6_flowinfo` are ignored.
 *
 * @param bytes The structure's bytes, exactly 16 or 28 of them.
 * @returns The endpoint, with its address in canonical form.
 * @throws {RangeError} If the family is neither `AF_INET` nor `AF_INET6`, or the length does not
 * match the family.
 *
 * @example Round trip
 * ```ts
 * import { decodeSockAddr, encodeSockAddr, parseSockAddr } from "./address.ts";
 * import assert from "node:assert/strict";
 *
 * const addr = parseSockAddr("[fe80::1%2]:40007");
 * assert.deepEqual(decodeSockAddr(encodeSockAddr(addr)), addr);
 * assert.throws(() => decodeSockAddr(new Uint8Array(3)), RangeError);
 * ```
 */
export function decodeSockAddr(bytes: Uint8Array): SockAddr {
  if (bytes.length < 2) {
    throw new RangeError(
      `Cannot decode socket address: ${bytes.length} bytes are too few for the family field`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const family = view.getUint16(0, true);
  if (family === AF_INET) {
    checkLength(bytes, SOCKADDR_IN_SIZE, "SOCKADDR_IN");
    return makeSockAddr(AF_INET, bytes.slice(4, 8), view.getUint16(2, false), 0);
  }
  if (family === AF_INET6) {
    checkLength(bytes, SOCKADDR_IN6_SIZE, "SOCKADDR_IN6");
    return makeSockAddr(
      AF_INET6,
      bytes.slice(8, 24),
      view.getUint16(2, false),
      view.getUint32(24, true),
    );
  }
  throw new RangeError(`Cannot decode socket address: unknown address family ${family}`);
}

/**
 * Gives the C name of a family, for messages and `--verbose` output.
 *
 * @param f `AF_INET` or `AF_INET6`.
 * @returns `"AF_INET"` or `"AF_INET6"`.
 * @throws {RangeError} If `f` is not a known family.
 *
 * @example Both names
 * ```ts
 * import { AF_INET, AF_INET6, familyName } from "./address.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(familyName(AF_INET), "AF_INET");
 * assert.equal(familyName(AF_INET6), "AF_INET6");
 * ```
 */
export function familyName(f: AddressFamily): "AF_INET" | "AF_INET6" {
  checkFamily(f);
  return f === AF_INET ? "AF_INET" : "AF_INET6";
}

function makeSockAddr(
  family: AddressFamily,
  bytes: Uint8Array,
  port: number,
  scopeId: number,
): SockAddr {
  if (family === AF_INET) return Object.freeze({ family, address: formatIpv4(bytes), port });
  const address = formatIpv6(bytes);
  return Object.freeze(
    scopeId === 0 ? { family, address, port } : { family, address, port, scopeId },
  );
}

function parseIpLiteral(text: string): IpLiteral | IpLiteralProblem {
  const percent = text.indexOf("%");
  if (percent !== -1) {
    // A zone is only meaningful on IPv6; "1.2.3.4%1" is simply not a literal.
    const bytes = parseIpv6(text.slice(0, percent));
    if (bytes === undefined) return { kind: "not-literal" };
    const scope = text.slice(percent + 1);
    const scopeId = Number(scope);
    if (!SCOPE_ID_REGEXP.test(scope) || scopeId > MAX_SCOPE_ID) {
      return { kind: "bad-scope", scope };
    }
    return { family: AF_INET6, bytes, scopeId };
  }
  const v4 = parseIpv4(text);
  if (v4 !== undefined) return { family: AF_INET, bytes: v4, scopeId: 0 };
  const v6 = parseIpv6(text);
  if (v6 !== undefined) return { family: AF_INET6, bytes: v6, scopeId: 0 };
  return { kind: "not-literal" };
}

function describeProblem(problem: IpLiteralProblem): string {
  return problem.kind === "not-literal"
    ? "not an IPv4 or IPv6 literal"
    : `scope id "${problem.scope}" is not a decimal number from 0 to ${MAX_SCOPE_ID}`;
}

function parseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const bytes = new Uint8Array(4);
  for (const [i, part] of parts.entries()) {
    if (!IPV4_OCTET_REGEXP.test(part)) return undefined;
    const value = Number(part);
    if (value > 255) return undefined;
    bytes[i] = value;
  }
  return bytes;
}

// RFC 4291 §2.2: eight groups of 1-4 hex digits; one "::" may stand for one or more zero groups;
// the last 32 bits may be written as dotted IPv4.
function parseIpv6(text: string): Uint8Array | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const compressed = halves.length === 2;
  const headText = halves[0]!;
  const tailText = compressed ? halves[1]! : "";
  // Only the address's final group may be dotted IPv4: the tail's last, or the head's last when
  // there is no "::".
  const head = headText === "" && compressed ? [] : parseGroups(headText, !compressed);
  const tail = tailText === "" ? [] : parseGroups(tailText, true);
  if (head === undefined || tail === undefined) return undefined;
  const explicit = head.length + tail.length;
  if (compressed ? explicit > 7 : explicit !== 8) return undefined;
  const groups = [...head, ...new Array<number>(8 - explicit).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  const view = new DataView(bytes.buffer);
  for (const [i, group] of groups.entries()) view.setUint16(i * 2, group, false);
  return bytes;
}

function parseGroups(text: string, ipv4Last: boolean): number[] | undefined {
  const parts = text.split(":");
  const groups: number[] = [];
  for (const [i, part] of parts.entries()) {
    if (IPV6_GROUP_REGEXP.test(part)) {
      groups.push(parseInt(part, 16));
      continue;
    }
    const v4 = ipv4Last && i === parts.length - 1 ? parseIpv4(part) : undefined;
    if (v4 === undefined) return undefined;
    groups.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
  }
  return groups;
}

function formatIpv4(bytes: Uint8Array): string {
  return Array.from(bytes.subarray(0, 4)).join(".");
}

// RFC 5952 §4: lower-case hex without leading zeros; "::" replaces the longest run of two or more
// zero groups (the first such run on a tie). §5: IPv4-mapped addresses keep a dotted tail, which
// is also how Deno (Rust's Ipv6Addr) prints them.
function formatIpv6(bytes: Uint8Array): string {
  const view = new DataView(bytes.buffer, bytes.byteOffset, 16);
  const groups = Array.from({ length: 8 }, (_, i) => view.getUint16(i * 2, false));
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xFFFF) {
    return "::ffff:" + formatIpv4(bytes.subarray(12, 16));
  }
  let bestStart = -1;
  let bestLength = 1;
  let i = 0;
  while (i < 8) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let end = i;
    while (end < 8 && groups[end] === 0) end++;
    if (end - i > bestLength) {
      bestStart = i;
      bestLength = end - i;
    }
    i = end;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart === -1) return hex.join(":");
  return hex.slice(0, bestStart).join(":") + "::" + hex.slice(bestStart + bestLength).join(":");
}

// The raw bytes of a SockAddr's address. Values built by this module always pass; a hand-built
// one whose text does not match its family is a caller bug.
function addressBytes(addr: SockAddr): Uint8Array {
  const bytes = addr.family === AF_INET ? parseIpv4(addr.address) : parseIpv6(addr.address);
  if (bytes === undefined) {
    throw new TypeError(
      `Cannot use address "${addr.address}": not an ${familyName(addr.family)} literal`,
    );
  }
  return bytes;
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > MAX_PORT) {
    throw new RangeError(`Cannot use port "${port}": expected an integer from 0 to ${MAX_PORT}`);
  }
}

function checkFamily(family: number): void {
  if (family !== AF_INET && family !== AF_INET6) {
    throw new RangeError(
      `Cannot use address family "${family}": expected AF_INET (2) or AF_INET6 (23)`,
    );
  }
}

function checkLength(bytes: Uint8Array, expected: number, struct: string): void {
  if (bytes.length !== expected) {
    throw new RangeError(
      `Cannot decode socket address: ${struct} is ${expected} bytes, got ${bytes.length}`,
    );
  }
}

function syntaxError(text: string, detail: string): SyntaxError {
  return new SyntaxError(`Cannot parse socket address "${text}": ${detail}`);
}

/**
 * True when `value` has the shape of a {@linkcode SockAddr}: a known family, a string address
 * of that family and an integer port from 0 to 65535. Dispatch functions use it to turn a
 * malformed argument into a status.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isSockAddr, parseSockAddr } from "./address.ts";
 *
 * assert.equal(isSockAddr(parseSockAddr("[::1]:80")), true);
 * assert.equal(isSockAddr({ family: 2, address: "::1", port: 80 }), false);
 * ```
 */
export function isSockAddr(value: unknown): value is SockAddr {
  if (typeof value !== "object" || value === null) return false;
  const { family, address, port } = value as Record<string, unknown>;
  if (typeof address !== "string" || isIpLiteral(address) !== family) return false;
  return typeof port === "number" && Number.isInteger(port) && port >= 0 && port <= 65535;
}

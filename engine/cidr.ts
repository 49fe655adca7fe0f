/**
 * `--allow` and `--deny` networks of `accept`: strict CIDR parsing and peer matching through
 * ipaddr.js. Only `accept` loads this module (and so ipaddr.js).
 *
 * @module
 */

import ipaddr from "ipaddr.js";
import { AF_INET, isIpLiteral } from "../provider/mod.ts";
import { bad } from "../syntax/values.ts";

/** One `--allow` or `--deny` value: a network as typed and as ipaddr.js parsed it. */
export interface CidrRule {
  /** The text as given, for messages. */
  readonly text: string;
  /** The network address and prefix length. */
  readonly range: [ipaddr.IPv4 | ipaddr.IPv6, number];
}

/**
 * Parses an IPv4 or IPv6 network `ADDRESS/PREFIX` (or a bare address, a single host) strictly:
 * dotted-decimal or standard IPv6 text only, no zone, a decimal prefix within the family's
 * width, and no host bits set. Throws commander's InvalidArgumentError naming the problem.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseCidr } from "./cidr.ts";
 *
 * assert.equal(parseCidr("10.0.0.0/8").range[1], 8);
 * assert.equal(parseCidr("::1").range[1], 128);
 * assert.throws(() => parseCidr("10.0.0.1/8"), /host bits are set/);
 * ```
 */
export function parseCidr(text: string): CidrRule {
  const parts = text.split("/");
  if (parts.length > 2) bad("CIDR", text, "expected ADDRESS/PREFIX");
  const [address, prefixText] = parts as [string, string | undefined];
  if (address.includes("%")) bad("CIDR", text, "a zone (%) is not allowed");
  const family = isIpLiteral(address);
  if (family === undefined) bad("CIDR", text, `"${address}" is not an IPv4 or IPv6 address`);
  const width = family === AF_INET ? 32 : 128;
  let prefix = width;
  if (prefixText !== undefined) {
    if (!/^(0|[1-9]\d{0,2})$/.test(prefixText) || Number(prefixText) > width) {
      bad("CIDR", text, `the prefix must be an integer from 0 to ${width}`);
    }
    prefix = Number(prefixText);
  }
  const parsed = ipaddr.parse(address);
  const network = family === AF_INET
    ? ipaddr.IPv4.networkAddressFromCIDR(`${address}/${prefix}`)
    : ipaddr.IPv6.networkAddressFromCIDR(`${address}/${prefix}`);
  if (network.toString() !== parsed.toString()) {
    bad("CIDR", text, `host bits are set (the network is ${network.toString()}/${prefix})`);
  }
  return { text, range: [parsed, prefix] };
}

function matches(address: ipaddr.IPv4 | ipaddr.IPv6, rule: CidrRule): boolean {
  const [network, prefix] = rule.range;
  if (address.kind() !== network.kind()) return false;
  return address.kind() === "ipv4"
    ? (address as ipaddr.IPv4).match(network as ipaddr.IPv4, prefix)
    : (address as ipaddr.IPv6).match(network as ipaddr.IPv6, prefix);
}

/**
 * Why a peer is refused, or null when it may connect. A peer is refused when it matches a
 * `--deny` network, or when `--allow` networks were given and it matches none of them (deny
 * wins). An IPv4-mapped IPv6 peer (`::ffff:a.b.c.d`) is checked as the IPv4 address.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseCidr, refusalOf } from "./cidr.ts";
 *
 * const allow = [parseCidr("127.0.0.0/8")];
 * assert.equal(refusalOf("127.0.0.1", allow, []), null);
 * assert.equal(refusalOf("::1", allow, []), "::1 matches no --allow network");
 * ```
 */
export function refusalOf(
  peer: string,
  allow: readonly CidrRule[],
  deny: readonly CidrRule[],
): string | null {
  if (allow.length === 0 && deny.length === 0) return null;
  const address = ipaddr.process(peer);
  const denied = deny.find((rule) => matches(address, rule));
  if (denied) return `${peer} is refused by --deny ${denied.text}`;
  if (allow.length > 0 && !allow.some((rule) => matches(address, rule))) {
    return `${peer} matches no --allow network`;
  }
  return null;
}

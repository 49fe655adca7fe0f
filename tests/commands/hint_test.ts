/**
 * Typo hints: a mistyped address gets `did you mean …?` in its one-line usage error, only for
 * the forms that can mean one address; every other refusal stays as it was.
 */

import assert from "node:assert/strict";
import { parseLocal, parsePortList, parseRemote } from "../../syntax/values.ts";
import { runCli } from "../_helpers.ts";

/** The message `parse` refuses `text` with. */
function refusal(parse: (text: string) => unknown, text: string): string {
  try {
    parse(text);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error(`"${text}" was accepted`);
}

const HINTED: ReadonlyArray<readonly [string, string]> = [
  ["127.0.0.1 8099", "127.0.0.1:8099"],
  ["127.0.0.1;8099", "127.0.0.1:8099"],
  ["127.0.0.1/8099", "127.0.0.1:8099"],
  ["127.0.0.1.8099", "127.0.0.1:8099"],
  ["127.0.0.1::8099", "127.0.0.1:8099"],
  ["localhost::8099", "localhost:8099"],
  ["localhost 8099", "localhost:8099"],
  ["::1:8099", "[::1]:8099"],
  ["::1 8099", "[::1]:8099"],
  ["[::1]8099", "[::1]:8099"],
  ["http://127.0.0.1:8099/index.html", "127.0.0.1:8099"],
  ["http://localhost/", "localhost:80"],
];

for (const [parse, name] of [[parseRemote, "parseRemote"], [parseLocal, "parseLocal"]] as const) {
  Deno.test(`${name} hints the one address a mistyped form means`, () => {
    for (const [typed, meant] of HINTED) {
      const message = refusal(parse, typed);
      assert.ok(message.startsWith(`Cannot parse address "${typed}": `), message);
      assert.ok(message.endsWith(`; did you mean ${meant}?`), `${typed}: ${message}`);
      assert.doesNotThrow(() => parse(meant));
    }
  });
}

Deno.test("parsePortList hints with the port list kept", () => {
  assert.match(
    refusal(parsePortList, "127.0.0.1;80,8000-8002"),
    /; did you mean 127\.0\.0\.1:80,8000-8002\?$/,
  );
  assert.match(refusal(parsePortList, "::1:80-82"), /; did you mean \[::1\]:80-82\?$/);
  assert.match(refusal(parsePortList, "127.0.0.1 8099"), /; did you mean 127\.0\.0\.1:8099\?$/);
});

Deno.test("no hint where a form could mean more than one thing, or nothing valid", () => {
  for (
    const typed of [
      "127.0.0.1", // no port at all
      "localhost8099", // a host name could end in digits
      "fe80::80", // [fe80::]:80 or an IPv6 address missing its port
      "10.0.0.0/8", // a prefix length, not a port
      "1.2.3.8099", // 1.2.3 is no IPv4 address
      "999.1.1.1:80", // a bad octet: no address to offer
      "127.0.0.1 99999", // the port is out of range either way
      "https://", // a URL without a host
    ]
  ) {
    const message = refusal(parseRemote, typed);
    assert.ok(!message.includes("did you mean"), `${typed}: ${message}`);
  }
});

Deno.test("connect with a mistyped address exits 2 with one error line carrying the hint", async () => {
  const result = await runCli(["connect", "127.0.0.1 8099"]);
  assert.equal(result.code, 2);
  assert.equal(result.stdout, "", "nothing was opened");
  const lines = result.stderr.split("\n");
  assert.equal(lines.pop(), "");
  assert.equal(lines.length, 1, result.stderr);
  assert.match(lines[0]!, /^error: .*"127\.0\.0\.1 8099".*; did you mean 127\.0\.0\.1:8099\?$/);
});

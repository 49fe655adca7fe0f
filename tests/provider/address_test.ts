import assert from "node:assert/strict";
import {
  type AddressFamily,
  AF_INET,
  AF_INET6,
  decodeSockAddr,
  encodeSockAddr,
  familyName,
  formatSockAddr,
  isIpLiteral,
  isWildcard,
  looksNumeric,
  loopback,
  parseSockAddr,
  sameSockAddr,
  type SockAddr,
  sockAddr,
  sockAddrFromNetAddr,
  wildcard,
} from "../../provider/address.ts";

// Valid endpoints: the text, what it parses to, and the canonical text formatSockAddr() writes.
const VALID: ReadonlyArray<{ input: string; expected: SockAddr; formatted: string }> = [
  {
    input: "127.0.0.1:80",
    expected: { family: AF_INET, address: "127.0.0.1", port: 80 },
    formatted: "127.0.0.1:80",
  },
  {
    input: "0.0.0.0:0",
    expected: { family: AF_INET, address: "0.0.0.0", port: 0 },
    formatted: "0.0.0.0:0",
  },
  {
    input: "255.255.255.255:65535",
    expected: { family: AF_INET, address: "255.255.255.255", port: 65535 },
    formatted: "255.255.255.255:65535",
  },
  {
    input: "10.0.0.10:8080",
    expected: { family: AF_INET, address: "10.0.0.10", port: 8080 },
    formatted: "10.0.0.10:8080",
  },
  {
    input: "192.168.100.200:40007",
    expected: { family: AF_INET, address: "192.168.100.200", port: 40007 },
    formatted: "192.168.100.200:40007",
  },
  {
    input: "[::1]:80",
    expected: { family: AF_INET6, address: "::1", port: 80 },
    formatted: "[::1]:80",
  },
  {
    input: "[::]:0",
    expected: { family: AF_INET6, address: "::", port: 0 },
    formatted: "[::]:0",
  },
  {
    input: "[0:0:0:0:0:0:0:1]:7",
    expected: { family: AF_INET6, address: "::1", port: 7 },
    formatted: "[::1]:7",
  },
  {
    input: "[0000:0000:0000:0000:0000:0000:0000:0000]:1",
    expected: { family: AF_INET6, address: "::", port: 1 },
    formatted: "[::]:1",
  },
  {
    input: "[fe80::1%2]:80",
    expected: { family: AF_INET6, address: "fe80::1", port: 80, scopeId: 2 },
    formatted: "[fe80::1%2]:80",
  },
  {
    input: "[fe80::1%4294967295]:80",
    expected: { family: AF_INET6, address: "fe80::1", port: 80, scopeId: 4294967295 },
    formatted: "[fe80::1%4294967295]:80",
  },
  {
    input: "[fe80::1%0]:80",
    expected: { family: AF_INET6, address: "fe80::1", port: 80 },
    formatted: "[fe80::1]:80",
  },
  {
    input: "[FE80::ABCD]:443",
    expected: { family: AF_INET6, address: "fe80::abcd", port: 443 },
    formatted: "[fe80::abcd]:443",
  },
  {
    input: "[2001:DB8:0:0:1:0:0:1]:443",
    expected: { family: AF_INET6, address: "2001:db8::1:0:0:1", port: 443 },
    formatted: "[2001:db8::1:0:0:1]:443",
  },
  {
    input: "[2001:0db8::0001]:443",
    expected: { family: AF_INET6, address: "2001:db8::1", port: 443 },
    formatted: "[2001:db8::1]:443",
  },
  {
    input: "[2001:db8:0:0:0:0:2:1]:1",
    expected: { family: AF_INET6, address: "2001:db8::2:1", port: 1 },
    formatted: "[2001:db8::2:1]:1",
  },
  {
    // RFC 5952 §4.2.2: a single zero group is not compressed.
    input: "[2001:db8:0:1:1:1:1:1]:1",
    expected: { family: AF_INET6, address: "2001:db8:0:1:1:1:1:1", port: 1 },
    formatted: "[2001:db8:0:1:1:1:1:1]:1",
  },
  {
    // RFC 5952 §4.2.3: on a tie the first run is compressed.
    input: "[2001:db8:0:0:1:0:0:1]:1",
    expected: { family: AF_INET6, address: "2001:db8::1:0:0:1", port: 1 },
    formatted: "[2001:db8::1:0:0:1]:1",
  },
  {
    // RFC 5952 §4.2.3: the longest run is compressed, even when it is not the first.
    input: "[1:0:0:2:0:0:0:3]:1",
    expected: { family: AF_INET6, address: "1:0:0:2::3", port: 1 },
    formatted: "[1:0:0:2::3]:1",
  },
  {
    input: "[1:2:3:4:5:6:7::]:9",
    expected: { family: AF_INET6, address: "1:2:3:4:5:6:7:0", port: 9 },
    formatted: "[1:2:3:4:5:6:7:0]:9",
  },
  {
    input: "[::2:3:4:5:6:7:8]:9",
    expected: { family: AF_INET6, address: "0:2:3:4:5:6:7:8", port: 9 },
    formatted: "[0:2:3:4:5:6:7:8]:9",
  },
  {
    input: "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
    expected: {
      family: AF_INET6,
      address: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
      port: 65535,
    },
    formatted: "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
  },
  {
    input: "[::ffff:1.2.3.4]:5",
    expected: { family: AF_INET6, address: "::ffff:1.2.3.4", port: 5 },
    formatted: "[::ffff:1.2.3.4]:5",
  },
  {
    input: "[::FFFF:7F00:1]:5",
    expected: { family: AF_INET6, address: "::ffff:127.0.0.1", port: 5 },
    formatted: "[::ffff:127.0.0.1]:5",
  },
  {
    input: "[0:0:0:0:0:ffff:10.0.0.1]:5",
    expected: { family: AF_INET6, address: "::ffff:10.0.0.1", port: 5 },
    formatted: "[::ffff:10.0.0.1]:5",
  },
  {
    // Only IPv4-mapped addresses keep a dotted tail; the deprecated IPv4-compatible form does
    // not (as Rust, and so Deno, prints it).
    input: "[::1.2.3.4]:1",
    expected: { family: AF_INET6, address: "::102:304", port: 1 },
    formatted: "[::102:304]:1",
  },
  {
    input: "[1:2:3:4:5:6:1.2.3.4]:1",
    expected: { family: AF_INET6, address: "1:2:3:4:5:6:102:304", port: 1 },
    formatted: "[1:2:3:4:5:6:102:304]:1",
  },
  {
    input: "[64:ff9b::192.0.2.33]:80",
    expected: { family: AF_INET6, address: "64:ff9b::c000:221", port: 80 },
    formatted: "[64:ff9b::c000:221]:80",
  },
];

// Refused endpoints: the text and the error class parseSockAddr() throws.
const INVALID: ReadonlyArray<{ input: string; expected: typeof SyntaxError | typeof RangeError }> =
  [
    { input: "", expected: SyntaxError },
    { input: "127.0.0.1", expected: SyntaxError },
    { input: "127.0.0.1:", expected: SyntaxError },
    { input: ":80", expected: SyntaxError },
    { input: "1.2.3:80", expected: SyntaxError },
    { input: "1.2.3.4.5:80", expected: SyntaxError },
    { input: "256.0.0.1:80", expected: SyntaxError },
    { input: "999.1.1.1:80", expected: SyntaxError },
    { input: "01.2.3.4:80", expected: SyntaxError },
    { input: "1.2.3.04:80", expected: SyntaxError },
    { input: "1..2.3:80", expected: SyntaxError },
    { input: "1.2.3.4.:80", expected: SyntaxError },
    { input: "0x7f.0.0.1:80", expected: SyntaxError },
    { input: "-1.2.3.4:80", expected: SyntaxError },
    { input: "localhost:80", expected: SyntaxError },
    { input: "example.com:443", expected: SyntaxError },
    { input: " 1.2.3.4:80", expected: SyntaxError },
    { input: "1.2.3.4 :80", expected: SyntaxError },
    { input: "1.2.3.4: 80", expected: SyntaxError },
    { input: "1.2.3.4:80 ", expected: SyntaxError },
    { input: "1.2.3.4:+80", expected: SyntaxError },
    { input: "1.2.3.4:-1", expected: SyntaxError },
    { input: "1.2.3.4:080", expected: SyntaxError },
    { input: "1.2.3.4:8a", expected: SyntaxError },
    { input: "1.2.3.4:1e3", expected: SyntaxError },
    { input: "1.2.3.4:80.0", expected: SyntaxError },
    { input: "1.2.3.4:65536", expected: RangeError },
    { input: "1.2.3.4:70000", expected: RangeError },
    { input: "1.2.3.4:99999999999999999999", expected: RangeError },
    { input: "1.2.3.4%1:80", expected: SyntaxError },
    { input: "::1", expected: SyntaxError },
    { input: "::1:80", expected: SyntaxError },
    { input: "fe80::1%2:80", expected: SyntaxError },
    { input: "[::1]", expected: SyntaxError },
    { input: "[::1]:", expected: SyntaxError },
    { input: "[::1]80", expected: SyntaxError },
    { input: "[::1:80", expected: SyntaxError },
    { input: "[::1]:65536", expected: RangeError },
    { input: "[]:80", expected: SyntaxError },
    { input: "[1.2.3.4]:80", expected: SyntaxError },
    { input: "[localhost]:80", expected: SyntaxError },
    { input: "[:::1]:80", expected: SyntaxError },
    { input: "[1::2::3]:80", expected: SyntaxError },
    { input: "[12345::1]:80", expected: SyntaxError },
    { input: "[1:2:3:4:5:6:7:8:9]:80", expected: SyntaxError },
    { input: "[1:2:3:4:5:6:7]:80", expected: SyntaxError },
    { input: "[1:2:3:4:5:6:7:8::]:80", expected: SyntaxError },
    { input: "[:1:2:3:4:5:6:7]:80", expected: SyntaxError },
    { input: "[1:2:3:4:5:6:7:]:80", expected: SyntaxError },
    { input: "[g::1]:80", expected: SyntaxError },
    { input: "[::ffff:1.2.3]:80", expected: SyntaxError },
    { input: "[::ffff:256.1.1.1]:80", expected: SyntaxError },
    { input: "[::1.2.3.4:5]:80", expected: SyntaxError },
    { input: "[1.2.3.4::]:80", expected: SyntaxError },
    { input: "[1:2:3:4:5:6:7:1.2.3.4]:80", expected: SyntaxError },
    { input: "[fe80::1%eth0]:80", expected: SyntaxError },
    { input: "[fe80::1%]:80", expected: SyntaxError },
    { input: "[fe80::1%-1]:80", expected: SyntaxError },
    { input: "[fe80::1%4294967296]:80", expected: SyntaxError },
    { input: "[fe80::1%02]:80", expected: SyntaxError },
  ];

Deno.test("parseSockAddr() parses valid endpoints into canonical SockAddr values", () => {
  for (const { input, expected } of VALID) {
    assert.deepEqual(parseSockAddr(input), expected, input);
  }
});

Deno.test("parseSockAddr() rejects malformed endpoints with the right error class", () => {
  for (const { input, expected } of INVALID) {
    assert.throws(() => parseSockAddr(input), expected, JSON.stringify(input));
  }
});

Deno.test("parseSockAddr() quotes the whole input in every error message", () => {
  for (const { input } of INVALID) {
    assert.throws(
      () => parseSockAddr(input),
      (error: Error) => error.message.startsWith(`Cannot parse socket address "${input}": `),
      JSON.stringify(input),
    );
  }
});

Deno.test("parseSockAddr() rejects an IPv4 literal with three octets", () => {
  assert.throws(() => parseSockAddr("1.2.3:80"), {
    name: "SyntaxError",
    message: 'Cannot parse socket address "1.2.3:80": "1.2.3" is not an IPv4 or IPv6 literal',
  });
});

Deno.test("parseSockAddr() asks for brackets around an IPv6 address followed by a port", () => {
  assert.throws(() => parseSockAddr("::1:80"), {
    name: "SyntaxError",
    message: 'Cannot parse socket address "::1:80": ' +
      'an IPv6 address must be in brackets when a port follows, as in "[::1]:80"',
  });
});

Deno.test("parseSockAddr() reports a port above 65535 as a RangeError", () => {
  assert.throws(() => parseSockAddr("127.0.0.1:65536"), {
    name: "RangeError",
    message: 'Cannot parse socket address "127.0.0.1:65536": port "65536" is not from 0 to 65535',
  });
});

Deno.test("parseSockAddr() names a non-numeric scope id", () => {
  assert.throws(() => parseSockAddr("[fe80::1%eth0]:80"), {
    name: "SyntaxError",
    message: 'Cannot parse socket address "[fe80::1%eth0]:80": ' +
      'scope id "eth0" is not a decimal number from 0 to 4294967295',
  });
});

Deno.test("parseSockAddr() returns frozen values", () => {
  assert.ok(Object.isFrozen(parseSockAddr("[::1]:80")));
  assert.ok(Object.isFrozen(parseSockAddr("127.0.0.1:80")));
});

Deno.test("formatSockAddr() writes the canonical text of every valid endpoint", () => {
  for (const { input, formatted } of VALID) {
    assert.equal(formatSockAddr(parseSockAddr(input)), formatted, input);
  }
});

Deno.test("formatSockAddr() output parses back to the same endpoint", () => {
  for (const { expected } of VALID) {
    assert.deepEqual(parseSockAddr(formatSockAddr(expected)), expected);
  }
});

Deno.test("sockAddr() builds canonical endpoints from IP literals", () => {
  const cases: ReadonlyArray<{ input: [string, number]; expected: SockAddr }> = [
    { input: ["127.0.0.1", 80], expected: { family: AF_INET, address: "127.0.0.1", port: 80 } },
    { input: ["::1", 0], expected: { family: AF_INET6, address: "::1", port: 0 } },
    { input: ["0:0::0", 65535], expected: { family: AF_INET6, address: "::", port: 65535 } },
    {
      input: ["FE80::1%3", 22],
      expected: { family: AF_INET6, address: "fe80::1", port: 22, scopeId: 3 },
    },
    {
      input: ["::ffff:192.0.2.1", 1],
      expected: { family: AF_INET6, address: "::ffff:192.0.2.1", port: 1 },
    },
  ];
  for (const { input, expected } of cases) {
    assert.deepEqual(sockAddr(...input), expected);
  }
});

Deno.test("sockAddr() rejects a non-literal address with a SyntaxError that quotes it", () => {
  assert.throws(() => sockAddr("999.1.1.1", 80), {
    name: "SyntaxError",
    message: 'Cannot parse address "999.1.1.1": not an IPv4 or IPv6 literal',
  });
  for (const input of ["localhost", "", "[::1]", "1.2.3", "1.2.3.4%1", "::1%x"]) {
    assert.throws(() => sockAddr(input, 80), SyntaxError, input);
  }
});

Deno.test("sockAddr() rejects ports that are not integers from 0 to 65535", () => {
  for (const port of [-1, 65536, 1.5, NaN, Infinity]) {
    assert.throws(() => sockAddr("127.0.0.1", port), RangeError, String(port));
  }
  assert.throws(() => sockAddr("127.0.0.1", 70000), {
    name: "RangeError",
    message: 'Cannot use port "70000": expected an integer from 0 to 65535',
  });
});

Deno.test("isIpLiteral() tells IPv4, IPv6 and non-literals apart", () => {
  const cases: ReadonlyArray<{ input: string; expected: AddressFamily | undefined }> = [
    { input: "127.0.0.1", expected: AF_INET },
    { input: "0.0.0.0", expected: AF_INET },
    { input: "::", expected: AF_INET6 },
    { input: "::1", expected: AF_INET6 },
    { input: "fe80::1%2", expected: AF_INET6 },
    { input: "::ffff:1.2.3.4", expected: AF_INET6 },
    { input: "2001:db8::", expected: AF_INET6 },
    { input: "1.2.3", expected: undefined },
    { input: "256.0.0.1", expected: undefined },
    { input: "999.1.1.1", expected: undefined },
    { input: "01.2.3.4", expected: undefined },
    { input: "1.2.3.4.5", expected: undefined },
    { input: "[::1]", expected: undefined },
    { input: "fe80::1%eth0", expected: undefined },
    { input: "localhost", expected: undefined },
    { input: "", expected: undefined },
  ];
  for (const { input, expected } of cases) {
    assert.equal(isIpLiteral(input), expected, input);
  }
});

Deno.test("looksNumeric() flags dotted numbers and colon forms but not host names", () => {
  const cases: ReadonlyArray<{ input: string; expected: boolean }> = [
    { input: "999.1.1.1", expected: true },
    { input: "1.2.3", expected: true },
    { input: "256.0.0.1", expected: true },
    { input: "1.2.3.4.5", expected: true },
    { input: "2130706433", expected: true },
    { input: "0x7f.0.0.1", expected: true },
    { input: "127.0.0.1", expected: true },
    { input: "1.2.3.4.", expected: true },
    { input: "1:2:3", expected: true },
    { input: "fe80:::1", expected: true },
    { input: "fe80::1%eth0", expected: true },
    { input: "localhost", expected: false },
    { input: "example.com", expected: false },
    { input: "1.2.3.example", expected: false },
    { input: "123abc", expected: false },
    { input: "dead.beef", expected: false },
    { input: "1..2", expected: false },
    { input: "", expected: false },
  ];
  for (const { input, expected } of cases) {
    assert.equal(looksNumeric(input), expected, input);
  }
});

Deno.test("encodeSockAddr() writes SOCKADDR_IN: family LE, port BE, address, 8 zero bytes", () => {
  assert.deepEqual(
    encodeSockAddr(parseSockAddr("192.168.1.2:40007")),
    new Uint8Array([2, 0, 0x9c, 0x47, 192, 168, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0]),
  );
});

Deno.test("encodeSockAddr() writes SOCKADDR_IN6: family LE, port BE, flowinfo, address, scope LE", () => {
  // deno-fmt-ignore
  const expected = new Uint8Array([
    23, 0,                                                   // sin6_family
    0x01, 0xbb,                                              // sin6_port 443
    0, 0, 0, 0,                                              // sin6_flowinfo
    0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2,    // sin6_addr fe80::1:2
    0x02, 0x01, 0, 0,                                        // sin6_scope_id 258
  ]);
  assert.deepEqual(encodeSockAddr(parseSockAddr("[fe80::1:2%258]:443")), expected);
});

Deno.test("encodeSockAddr() and decodeSockAddr() round-trip every valid endpoint", () => {
  for (const { input, expected } of VALID) {
    const bytes = encodeSockAddr(expected);
    assert.equal(bytes.length, expected.family === AF_INET ? 16 : 28, input);
    assert.deepEqual(decodeSockAddr(bytes), expected, input);
  }
});

Deno.test("decodeSockAddr() canonicalises the address and ignores sin_zero and flowinfo", () => {
  const v4 = new Uint8Array([2, 0, 0, 7, 10, 0, 0, 1, 9, 9, 9, 9, 9, 9, 9, 9]);
  assert.deepEqual(decodeSockAddr(v4), { family: AF_INET, address: "10.0.0.1", port: 7 });
  const v6 = new Uint8Array(28);
  v6.set([23, 0, 0, 7, 1, 2, 3, 4]);
  v6[23] = 1;
  assert.deepEqual(decodeSockAddr(v6), { family: AF_INET6, address: "::1", port: 7 });
});

Deno.test("decodeSockAddr() reads a view into a larger buffer", () => {
  const storage = new Uint8Array(128);
  storage.set(encodeSockAddr(parseSockAddr("[::1]:9")), 50);
  assert.deepEqual(decodeSockAddr(storage.subarray(50, 78)), parseSockAddr("[::1]:9"));
});

Deno.test("decodeSockAddr() throws a RangeError for a wrong length or an unknown family", () => {
  const v4 = encodeSockAddr(parseSockAddr("127.0.0.1:80"));
  const v6 = encodeSockAddr(parseSockAddr("[::1]:80"));
  const linuxFamily = v4.slice();
  linuxFamily[0] = 10;
  const cases: ReadonlyArray<{ input: Uint8Array; message: string }> = [
    { input: new Uint8Array(0), message: "0 bytes are too few for the family field" },
    { input: new Uint8Array(1), message: "1 bytes are too few for the family field" },
    { input: v4.subarray(0, 15), message: "SOCKADDR_IN is 16 bytes, got 15" },
    { input: new Uint8Array([...v4, 0]), message: "SOCKADDR_IN is 16 bytes, got 17" },
    { input: v6.subarray(0, 16), message: "SOCKADDR_IN6 is 28 bytes, got 16" },
    { input: new Uint8Array(28), message: "unknown address family 0" },
    { input: linuxFamily, message: "unknown address family 10" },
  ];
  for (const { input, message } of cases) {
    assert.throws(() => decodeSockAddr(input), {
      name: "RangeError",
      message: `Cannot decode socket address: ${message}`,
    });
  }
});

Deno.test("encodeSockAddr() rejects hand-built values it cannot encode", () => {
  assert.throws(
    () => encodeSockAddr({ family: AF_INET, address: "::1", port: 80 }),
    TypeError,
  );
  assert.throws(
    () => encodeSockAddr({ family: AF_INET, address: "1.2.3.4", port: 65536 }),
    RangeError,
  );
  assert.throws(
    () => encodeSockAddr({ family: AF_INET6, address: "::1", port: 1, scopeId: -1 }),
    RangeError,
  );
  assert.throws(
    () => encodeSockAddr({ family: 10 as AddressFamily, address: "1.2.3.4", port: 1 }),
    RangeError,
  );
});

Deno.test("wildcard() and loopback() build the well-known addresses of each family", () => {
  assert.deepEqual(wildcard(AF_INET), { family: AF_INET, address: "0.0.0.0", port: 0 });
  assert.deepEqual(wildcard(AF_INET6, 80), { family: AF_INET6, address: "::", port: 80 });
  assert.deepEqual(loopback(AF_INET), { family: AF_INET, address: "127.0.0.1", port: 0 });
  assert.deepEqual(loopback(AF_INET6, 7), { family: AF_INET6, address: "::1", port: 7 });
  assert.throws(() => wildcard(10 as AddressFamily), RangeError);
  assert.throws(() => loopback(AF_INET, -1), RangeError);
});

Deno.test("isWildcard() is true only for 0.0.0.0 and ::", () => {
  const cases: ReadonlyArray<{ input: string; expected: boolean }> = [
    { input: "0.0.0.0:0", expected: true },
    { input: "0.0.0.0:80", expected: true },
    { input: "[::]:80", expected: true },
    { input: "[::%3]:80", expected: true },
    { input: "127.0.0.1:0", expected: false },
    { input: "[::1]:0", expected: false },
    { input: "[::ffff:0.0.0.0]:0", expected: false },
  ];
  for (const { input, expected } of cases) {
    assert.equal(isWildcard(parseSockAddr(input)), expected, input);
  }
});

Deno.test("sameSockAddr() compares family, address bytes, port and scope", () => {
  const cases: ReadonlyArray<{ input: [SockAddr, SockAddr]; expected: boolean }> = [
    { input: [parseSockAddr("[::1]:80"), parseSockAddr("[0::1]:80")], expected: true },
    {
      input: [parseSockAddr("[::1]:80"), { family: AF_INET6, address: "0:0::0:1", port: 80 }],
      expected: true,
    },
    { input: [parseSockAddr("[fe80::1%0]:80"), parseSockAddr("[fe80::1]:80")], expected: true },
    { input: [parseSockAddr("127.0.0.1:80"), parseSockAddr("127.0.0.1:80")], expected: true },
    { input: [parseSockAddr("127.0.0.1:80"), parseSockAddr("127.0.0.1:81")], expected: false },
    { input: [parseSockAddr("127.0.0.1:80"), parseSockAddr("127.0.0.2:80")], expected: false },
    { input: [parseSockAddr("[fe80::1%1]:80"), parseSockAddr("[fe80::1%2]:80")], expected: false },
    { input: [parseSockAddr("0.0.0.0:0"), parseSockAddr("[::]:0")], expected: false },
    {
      input: [parseSockAddr("127.0.0.1:80"), parseSockAddr("[::ffff:127.0.0.1]:80")],
      expected: false,
    },
  ];
  for (const { input: [a, b], expected } of cases) {
    assert.equal(sameSockAddr(a, b), expected, `${formatSockAddr(a)} vs ${formatSockAddr(b)}`);
  }
});

Deno.test("sockAddrFromNetAddr() converts a real IPv4 listener address", () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const addr = sockAddrFromNetAddr(listener.addr);
  assert.deepEqual(addr, { family: AF_INET, address: "127.0.0.1", port: listener.addr.port });
});

Deno.test("sockAddrFromNetAddr() converts both ends of a real IPv6 connection", async () => {
  using listener = Deno.listen({ hostname: "::1", port: 0 });
  using client = await Deno.connect({ hostname: "::1", port: listener.addr.port });
  using server = await listener.accept();
  const serverLocal = sockAddrFromNetAddr(server.localAddr);
  assert.deepEqual(serverLocal, { family: AF_INET6, address: "::1", port: listener.addr.port });
  assert.ok(
    sameSockAddr(sockAddrFromNetAddr(client.localAddr), sockAddrFromNetAddr(server.remoteAddr)),
  );
  assert.equal(
    formatSockAddr(sockAddrFromNetAddr(client.remoteAddr)),
    `[::1]:${listener.addr.port}`,
  );
});

Deno.test("sockAddrFromNetAddr() keeps Deno's IPv4-mapped form unchanged", () => {
  const addr = sockAddrFromNetAddr({ transport: "tcp", hostname: "::ffff:127.0.0.1", port: 5 });
  assert.deepEqual(addr, { family: AF_INET6, address: "::ffff:127.0.0.1", port: 5 });
});

Deno.test("familyName() gives the C names and refuses unknown families", () => {
  assert.equal(familyName(AF_INET), "AF_INET");
  assert.equal(familyName(AF_INET6), "AF_INET6");
  assert.equal(AF_INET, 2);
  assert.equal(AF_INET6, 23);
  assert.throws(() => familyName(10 as AddressFamily), RangeError);
});

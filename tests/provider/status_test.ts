import assert from "node:assert/strict";
import * as status from "../../provider/status.ts";
import {
  formatNtStatus,
  NT_ERROR,
  NT_INFORMATION,
  NT_SUCCESS,
  NT_WARNING,
  NTSTATUS_NAMES,
  ntStatusFromName,
  ntStatusName,
  STATUS_BUFFER_OVERFLOW,
  STATUS_CONNECTION_REFUSED,
  STATUS_EVENT_PENDING,
  STATUS_PENDING,
  STATUS_SUCCESS,
  STATUS_UNSUCCESSFUL,
} from "../../provider/status.ts";

// Copied by hand from wsk-semantics.md §6 (plus, from ntstatus.h, STATUS_DATA_ERROR for data
// verification, STATUS_DISK_FULL, STATUS_PIPE_BROKEN and STATUS_IO_DEVICE_ERROR for a sink's
// failed writes, and STATUS_OBJECT_NAME_NOT_FOUND for accept --mode exec's missing command), not from provider/status.ts, so a wrong value in the source cannot also be
// wrong here.
const DOCUMENTED: ReadonlyArray<readonly [string, number]> = [
  ["STATUS_SUCCESS", 0x00000000],
  ["STATUS_TIMEOUT", 0x00000102],
  ["STATUS_PENDING", 0x00000103],
  ["STATUS_RECEIVE_PARTIAL", 0x4000000F],
  ["STATUS_EVENT_PENDING", 0x40000013],
  ["STATUS_BUFFER_OVERFLOW", 0x80000005],
  ["STATUS_UNSUCCESSFUL", 0xC0000001],
  ["STATUS_NOT_IMPLEMENTED", 0xC0000002],
  ["STATUS_INVALID_HANDLE", 0xC0000008],
  ["STATUS_INVALID_PARAMETER", 0xC000000D],
  ["STATUS_INVALID_DEVICE_REQUEST", 0xC0000010],
  ["STATUS_MORE_PROCESSING_REQUIRED", 0xC0000016],
  ["STATUS_NO_MEMORY", 0xC0000017],
  ["STATUS_ACCESS_DENIED", 0xC0000022],
  ["STATUS_BUFFER_TOO_SMALL", 0xC0000023],
  ["STATUS_DATA_ERROR", 0xC000003E],
  ["STATUS_OBJECT_NAME_NOT_FOUND", 0xC0000034],
  ["STATUS_INSUFFICIENT_RESOURCES", 0xC000009A],
  ["STATUS_DISK_FULL", 0xC000007F],
  ["STATUS_PIPE_BROKEN", 0xC000014B],
  ["STATUS_IO_DEVICE_ERROR", 0xC0000185],
  ["STATUS_DEVICE_NOT_READY", 0xC00000A3],
  ["STATUS_PIPE_DISCONNECTED", 0xC00000B0],
  ["STATUS_IO_TIMEOUT", 0xC00000B5],
  ["STATUS_FILE_FORCED_CLOSED", 0xC00000B6],
  ["STATUS_NOT_SUPPORTED", 0xC00000BB],
  ["STATUS_REMOTE_NOT_LISTENING", 0xC00000BC],
  ["STATUS_BAD_NETWORK_PATH", 0xC00000BE],
  ["STATUS_NETWORK_BUSY", 0xC00000BF],
  ["STATUS_BAD_NETWORK_NAME", 0xC00000CC],
  ["STATUS_REQUEST_NOT_ACCEPTED", 0xC00000D0],
  ["STATUS_CANCELLED", 0xC0000120],
  ["STATUS_FILE_CLOSED", 0xC0000128],
  ["STATUS_LOCAL_DISCONNECT", 0xC000013B],
  ["STATUS_REMOTE_DISCONNECT", 0xC000013C],
  ["STATUS_INVALID_CONNECTION", 0xC0000140],
  ["STATUS_INVALID_ADDRESS", 0xC0000141],
  ["STATUS_INVALID_DEVICE_STATE", 0xC0000184],
  ["STATUS_INVALID_BUFFER_SIZE", 0xC0000206],
  ["STATUS_INVALID_ADDRESS_COMPONENT", 0xC0000207],
  ["STATUS_TOO_MANY_ADDRESSES", 0xC0000209],
  ["STATUS_ADDRESS_ALREADY_EXISTS", 0xC000020A],
  ["STATUS_ADDRESS_CLOSED", 0xC000020B],
  ["STATUS_CONNECTION_DISCONNECTED", 0xC000020C],
  ["STATUS_CONNECTION_RESET", 0xC000020D],
  ["STATUS_DATA_NOT_ACCEPTED", 0xC000021B],
  ["STATUS_NOT_FOUND", 0xC0000225],
  ["STATUS_CONNECTION_REFUSED", 0xC0000236],
  ["STATUS_GRACEFUL_DISCONNECT", 0xC0000237],
  ["STATUS_ADDRESS_ALREADY_ASSOCIATED", 0xC0000238],
  ["STATUS_ADDRESS_NOT_ASSOCIATED", 0xC0000239],
  ["STATUS_CONNECTION_INVALID", 0xC000023A],
  ["STATUS_CONNECTION_ACTIVE", 0xC000023B],
  ["STATUS_NETWORK_UNREACHABLE", 0xC000023C],
  ["STATUS_HOST_UNREACHABLE", 0xC000023D],
  ["STATUS_PROTOCOL_UNREACHABLE", 0xC000023E],
  ["STATUS_PORT_UNREACHABLE", 0xC000023F],
  ["STATUS_REQUEST_ABORTED", 0xC0000240],
  ["STATUS_CONNECTION_ABORTED", 0xC0000241],
  ["STATUS_CONNECTION_COUNT_LIMIT", 0xC0000246],
  ["STATUS_NO_MATCH", 0xC0000272],
  ["STATUS_NOINTERFACE", 0xC00002B9],
  ["STATUS_HOST_DOWN", 0xC0000350],
];

// The Schannel SECURITY_STATUS values a failed TLS handshake completes with, copied by hand from
// winerror.h (FACILITY_SECURITY), not from provider/status.ts.
const SECURITY: ReadonlyArray<readonly [string, number]> = [
  ["SEC_E_UNSUPPORTED_FUNCTION", 0x80090302],
  ["SEC_E_INTERNAL_ERROR", 0x80090304],
  ["SEC_E_INCOMPLETE_MESSAGE", 0x80090318],
  ["SEC_E_WRONG_PRINCIPAL", 0x80090322],
  ["SEC_E_UNTRUSTED_ROOT", 0x80090325],
  ["SEC_E_ILLEGAL_MESSAGE", 0x80090326],
  ["SEC_E_CERT_UNKNOWN", 0x80090327],
  ["SEC_E_CERT_EXPIRED", 0x80090328],
  ["SEC_E_ALGORITHM_MISMATCH", 0x80090331],
  ["SEC_E_APPLICATION_PROTOCOL_MISMATCH", 0x80090367],
];

function exportedStatuses(): Map<string, number> {
  const found = new Map<string, number>();
  for (const [name, value] of Object.entries(status)) {
    if (name.startsWith("STATUS_")) found.set(name, value as number);
  }
  return found;
}

Deno.test("status.ts exports every NTSTATUS of wsk-semantics.md §6 with its documented value", () => {
  const exported = exportedStatuses();
  for (const [name, value] of DOCUMENTED) {
    assert.equal(exported.has(name), true, `${name} is not exported`);
    assert.equal(formatNtStatus(exported.get(name)!), formatNtStatus(value), name);
    assert.equal(exported.get(name), value, `${name} must be the unsigned form`);
  }
});

Deno.test("status.ts exports no STATUS_ constant missing from the documented table", () => {
  const documented = new Set(DOCUMENTED.map(([name]) => name));
  const extra = [...exportedStatuses().keys()].filter((name) => !documented.has(name));
  assert.deepEqual(extra, []);
  assert.equal(exportedStatuses().size, 63);
});

Deno.test("NTSTATUS_NAMES maps every documented value back to its name", () => {
  assert.equal(NTSTATUS_NAMES.size, DOCUMENTED.length + SECURITY.length);
  for (const [name, value] of [...DOCUMENTED, ...SECURITY]) {
    assert.equal(NTSTATUS_NAMES.get(value), name);
  }
});

Deno.test("status.ts exports every SEC_E_ status of a failed handshake with its winerror.h value", () => {
  const exported = new Map(
    Object.entries(status).filter(([name]) => name.startsWith("SEC_E_")) as [string, number][],
  );
  assert.deepEqual([...exported.keys()].sort(), SECURITY.map(([name]) => name).sort());
  for (const [name, value] of SECURITY) {
    assert.equal(exported.get(name), value, name);
    assert.equal(NT_SUCCESS(value), false, `${name} is a failure`);
    assert.equal(ntStatusFromName(name), value, `${name} reads back`);
    assert.equal(ntStatusName(value), name);
  }
});

Deno.test("NT_SUCCESS() follows the sign of the value read as a signed 32-bit integer", () => {
  const cases: ReadonlyArray<{ input: number; expected: boolean }> = [
    { input: 0x00000000, expected: true },
    { input: STATUS_PENDING, expected: true },
    { input: STATUS_EVENT_PENDING, expected: true },
    { input: 0x7FFFFFFF, expected: true },
    { input: 0x80000000, expected: false },
    { input: STATUS_BUFFER_OVERFLOW, expected: false },
    { input: STATUS_CONNECTION_REFUSED, expected: false },
    { input: STATUS_CONNECTION_REFUSED | 0, expected: false },
    { input: 0xFFFFFFFF, expected: false },
  ];
  for (const { input, expected } of cases) {
    assert.equal(NT_SUCCESS(input), expected, formatNtStatus(input));
  }
});

Deno.test("NT_INFORMATION(), NT_WARNING() and NT_ERROR() read the two severity bits", () => {
  const cases: ReadonlyArray<{ input: number; expected: [boolean, boolean, boolean] }> = [
    { input: STATUS_SUCCESS, expected: [false, false, false] },
    { input: STATUS_PENDING, expected: [false, false, false] },
    { input: 0x3FFFFFFF, expected: [false, false, false] },
    { input: 0x40000000, expected: [true, false, false] },
    { input: STATUS_EVENT_PENDING, expected: [true, false, false] },
    { input: 0x80000000, expected: [false, true, false] },
    { input: STATUS_BUFFER_OVERFLOW, expected: [false, true, false] },
    { input: 0xBFFFFFFF, expected: [false, true, false] },
    { input: 0xC0000000, expected: [false, false, true] },
    { input: STATUS_CONNECTION_REFUSED, expected: [false, false, true] },
    { input: STATUS_CONNECTION_REFUSED | 0, expected: [false, false, true] },
    { input: 0xFFFFFFFF, expected: [false, false, true] },
  ];
  for (const { input, expected } of cases) {
    assert.deepEqual(
      [NT_INFORMATION(input), NT_WARNING(input), NT_ERROR(input)],
      expected,
      formatNtStatus(input),
    );
  }
});

Deno.test("NT_SUCCESS() agrees with the severity of every documented status", () => {
  for (const [name, value] of DOCUMENTED) {
    const severity = value >>> 30;
    assert.equal(NT_SUCCESS(value), severity <= 1, name);
    assert.equal(NT_ERROR(value), severity === 3, name);
  }
});

Deno.test("formatNtStatus() writes 0x and eight upper-case hex digits", () => {
  const cases: ReadonlyArray<{ input: number; expected: string }> = [
    { input: 0, expected: "0x00000000" },
    { input: 0x102, expected: "0x00000102" },
    { input: 0x4000000F, expected: "0x4000000F" },
    { input: 0xC0000236, expected: "0xC0000236" },
    { input: 0xC0000236 | 0, expected: "0xC0000236" },
    { input: 0xFFFFFFFF, expected: "0xFFFFFFFF" },
    { input: -1, expected: "0xFFFFFFFF" },
    { input: -0x80000000, expected: "0x80000000" },
  ];
  for (const { input, expected } of cases) {
    assert.equal(formatNtStatus(input), expected);
  }
});

Deno.test("formatNtStatus() throws a RangeError for values that are not 32-bit integers", () => {
  for (const input of [1.5, NaN, Infinity, 0x100000000, -0x80000001]) {
    assert.throws(() => formatNtStatus(input), RangeError, String(input));
  }
});

Deno.test("ntStatusName() names every documented status", () => {
  for (const [name, value] of DOCUMENTED) {
    assert.equal(ntStatusName(value), name);
    assert.equal(ntStatusName(value | 0), name);
  }
});

Deno.test("ntStatusName() falls back to NTSTATUS_ and the hex text for unknown values", () => {
  assert.equal(ntStatusName(0xC0FFEE00), "NTSTATUS_0xC0FFEE00");
  assert.equal(ntStatusName(0x00000001), "NTSTATUS_0x00000001");
  assert.throws(() => ntStatusName(2.5), RangeError);
});

Deno.test("ntStatusFromName() reads names, short names, hex text and fallback names", () => {
  const cases: ReadonlyArray<{ input: string; expected: number | undefined }> = [
    { input: "STATUS_CONNECTION_REFUSED", expected: STATUS_CONNECTION_REFUSED },
    { input: "CONNECTION_REFUSED", expected: STATUS_CONNECTION_REFUSED },
    { input: "connection_refused", expected: STATUS_CONNECTION_REFUSED },
    { input: "Status_Connection_Refused", expected: STATUS_CONNECTION_REFUSED },
    { input: "0xC0000236", expected: STATUS_CONNECTION_REFUSED },
    { input: "0xc0000236", expected: STATUS_CONNECTION_REFUSED },
    { input: "0XC0000236", expected: STATUS_CONNECTION_REFUSED },
    { input: "0x0", expected: STATUS_SUCCESS },
    { input: "0xC0000001", expected: STATUS_UNSUCCESSFUL },
    { input: "0xC0FFEE00", expected: 0xC0FFEE00 },
    { input: "NTSTATUS_0xC0FFEE00", expected: 0xC0FFEE00 },
    { input: "success", expected: STATUS_SUCCESS },
    { input: "STATUS_NO_SUCH_THING", expected: undefined },
    { input: "", expected: undefined },
    { input: "STATUS_", expected: undefined },
    { input: "0x", expected: undefined },
    { input: "0x123456789", expected: undefined },
    { input: "0xC000023G", expected: undefined },
    { input: "C0000236", expected: undefined },
    { input: " STATUS_SUCCESS", expected: undefined },
    { input: "toString", expected: undefined },
    { input: "__proto__", expected: undefined },
  ];
  for (const { input, expected } of cases) {
    assert.equal(ntStatusFromName(input), expected, JSON.stringify(input));
  }
});

Deno.test("ntStatusFromName() reads back every name ntStatusName() gives", () => {
  for (const [name, value] of DOCUMENTED) {
    assert.equal(ntStatusFromName(ntStatusName(value)), value, name);
  }
  assert.equal(ntStatusFromName(ntStatusName(0x80001234)), 0x80001234);
});

/** The severity each documented status has, from the classes of ntstatus.h (by its hex text). */
const SEVERITIES = ["success", "information", "warning", "error"] as const;

Deno.test("every exported status has its documented name, value, text form and severity", () => {
  const exported = exportedStatuses();
  for (const [name, value] of DOCUMENTED) {
    // The text form status lines print, spelled out from the documented value's digits.
    const text = "0x" + value.toString(16).toUpperCase().padStart(8, "0");
    const severity = SEVERITIES[parseInt(text[2]!, 16) >> 2]!;
    const constant = exported.get(name);
    assert.equal(constant, value, `${name} value`);
    assert.equal(formatNtStatus(constant!), text, `${name} text`);
    assert.equal(formatNtStatus(constant! | 0), text, `${name} signed text`);
    assert.equal(ntStatusName(constant!), name, `${name} name`);
    assert.equal(ntStatusFromName(text), value, `${name} read back from ${text}`);
    assert.equal(ntStatusFromName(name.slice("STATUS_".length).toLowerCase()), value, name);
    assert.deepEqual(
      {
        success: NT_SUCCESS(constant!),
        information: NT_INFORMATION(constant!),
        warning: NT_WARNING(constant!),
        error: NT_ERROR(constant!),
      },
      {
        success: severity === "success" || severity === "information",
        information: severity === "information",
        warning: severity === "warning",
        error: severity === "error",
      },
      `${name} severity (${severity})`,
    );
  }
});

import assert from "node:assert/strict";
import { connect as nodeConnect } from "node:net";
import { hostErrorCode, type HostFailure, statusFromError } from "../../provider/_errors.ts";
import {
  ntStatusName,
  STATUS_ACCESS_DENIED,
  STATUS_ADDRESS_ALREADY_EXISTS,
  STATUS_CANCELLED,
  STATUS_CONNECTION_ABORTED,
  STATUS_CONNECTION_REFUSED,
  STATUS_CONNECTION_RESET,
  STATUS_HOST_UNREACHABLE,
  STATUS_INSUFFICIENT_RESOURCES,
  STATUS_INVALID_ADDRESS,
  STATUS_INVALID_DEVICE_STATE,
  STATUS_INVALID_HANDLE,
  STATUS_INVALID_PARAMETER,
  STATUS_IO_TIMEOUT,
  STATUS_NETWORK_UNREACHABLE,
  STATUS_NO_MATCH,
  STATUS_NOT_FOUND,
  STATUS_NOT_SUPPORTED,
  STATUS_UNSUCCESSFUL,
} from "../../provider/status.ts";

// Runs a host call that must fail and returns what it threw.
async function thrownBy(operation: () => Promise<unknown>): Promise<unknown> {
  try {
    await operation();
  } catch (error) {
    return error;
  }
  throw new Error("the host call succeeded, but the test needs it to fail");
}

function assertStatus(failure: HostFailure, expected: number): void {
  assert.equal(ntStatusName(failure.status), ntStatusName(expected));
}

// A loopback port that nothing listens on: bind one, note it, and let it go.
function closedPort(hostname: string): number {
  const listener = Deno.listen({ hostname, port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

Deno.test("statusFromError() maps a real refused IPv4 connect to STATUS_CONNECTION_REFUSED", async () => {
  const port = closedPort("127.0.0.1");
  const error = await thrownBy(() => Deno.connect({ hostname: "127.0.0.1", port }));
  assert.ok(error instanceof Deno.errors.ConnectionRefused);
  const failure = statusFromError(error);
  assertStatus(failure, STATUS_CONNECTION_REFUSED);
  assert.equal(failure.message, error.message);
  assert.equal(failure.cause, error);
  assert.equal(hostErrorCode(error), "ECONNREFUSED");
});

Deno.test("statusFromError() maps a real refused IPv6 connect to STATUS_CONNECTION_REFUSED", async () => {
  const port = closedPort("::1");
  const error = await thrownBy(() => Deno.connect({ hostname: "::1", port }));
  assertStatus(statusFromError(error), STATUS_CONNECTION_REFUSED);
});

Deno.test("statusFromError() maps a node:net refusal to STATUS_CONNECTION_REFUSED by its code", async () => {
  const port = closedPort("127.0.0.1");
  const error = await new Promise<unknown>((resolve) => {
    const socket = nodeConnect({ host: "127.0.0.1", port });
    socket.once("error", (error) => {
      socket.destroy();
      resolve(error);
    });
  });
  assert.equal(error instanceof Deno.errors.ConnectionRefused, false);
  assert.equal(hostErrorCode(error), "ECONNREFUSED");
  assertStatus(statusFromError(error), STATUS_CONNECTION_REFUSED);
});

Deno.test("statusFromError() maps a real second listen on a port to STATUS_ADDRESS_ALREADY_EXISTS", () => {
  using first = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let error: unknown;
  try {
    Deno.listen({ hostname: "127.0.0.1", port: first.addr.port }).close();
  } catch (caught) {
    error = caught;
  }
  assert.ok(error instanceof Deno.errors.AddrInUse);
  assertStatus(statusFromError(error), STATUS_ADDRESS_ALREADY_EXISTS);
  assert.equal(hostErrorCode(error), "EADDRINUSE");
});

Deno.test("statusFromError() maps a real reset by the peer to STATUS_CONNECTION_RESET", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = nodeConnect({ host: "127.0.0.1", port: listener.addr.port });
  await new Promise((resolve) => client.once("connect", resolve));
  using server = await listener.accept();
  const pending = thrownBy(() => server.read(new Uint8Array(16)));
  const closed = new Promise((resolve) => client.once("close", resolve));
  // An abortive close: the peer gets an RST instead of a FIN.
  client.resetAndDestroy();
  await closed;
  const error = await pending;
  assert.ok(error instanceof Deno.errors.ConnectionReset);
  assertStatus(statusFromError(error), STATUS_CONNECTION_RESET);
});

Deno.test("statusFromError() maps a real write after closeWrite() to STATUS_INVALID_DEVICE_STATE", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  using client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  using _server = await listener.accept();
  await client.closeWrite();
  const error = await thrownBy(() => client.write(new Uint8Array(1)));
  assert.ok(error instanceof Deno.errors.BrokenPipe);
  assertStatus(statusFromError(error), STATUS_INVALID_DEVICE_STATE);
});

Deno.test("statusFromError() maps a real read cut short by close() to STATUS_CANCELLED", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  using _server = await listener.accept();
  const pending = thrownBy(() => client.read(new Uint8Array(16)));
  client.close();
  const error = await pending;
  assert.ok(error instanceof Deno.errors.Interrupted);
  assertStatus(statusFromError(error), STATUS_CANCELLED);
});

Deno.test("statusFromError() maps a real accept on a closed listener to STATUS_INVALID_HANDLE", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  listener.close();
  const error = await thrownBy(() => listener.accept());
  assert.ok(error instanceof Deno.errors.BadResource);
  const failure = statusFromError(error);
  assertStatus(failure, STATUS_INVALID_HANDLE);
  assert.equal(hostErrorCode(error), undefined);
});

Deno.test({
  name: "statusFromError() maps a real missing --allow-net to STATUS_ACCESS_DENIED",
  // Only meaningful when the test runs without net access to 127.0.0.2.
  ignore: Deno.permissions.querySync({ name: "net", host: "127.0.0.2:9" }).state === "granted",
  fn: async () => {
    const error = await thrownBy(() => Deno.connect({ hostname: "127.0.0.2", port: 9 }));
    assert.ok(error instanceof Deno.errors.NotCapable);
    assertStatus(statusFromError(error), STATUS_ACCESS_DENIED);
  },
});

Deno.test("statusFromError() maps real argument errors from Deno.connect to STATUS_INVALID_PARAMETER", async () => {
  const cases: ReadonlyArray<{ input: Deno.ConnectOptions; expected: ErrorConstructor }> = [
    { input: { hostname: "127.0.0.1", port: 70000 }, expected: RangeError },
    { input: { hostname: "127.0.0.1", port: 1.5 }, expected: TypeError },
  ];
  for (const { input, expected } of cases) {
    const error = await thrownBy(() => Deno.connect(input));
    assert.ok(error instanceof expected, String(error));
    assertStatus(statusFromError(error), STATUS_INVALID_PARAMETER);
  }
});

Deno.test("statusFromError() maps an AbortSignal.timeout() deadline to STATUS_IO_TIMEOUT", async () => {
  const signal = AbortSignal.timeout(1);
  await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
  const error: unknown = signal.reason;
  assert.ok(error instanceof DOMException);
  assert.equal(error.name, "TimeoutError");
  const failure = statusFromError(error);
  assertStatus(failure, STATUS_IO_TIMEOUT);
  assert.equal(failure.cause, error);
  assert.equal(hostErrorCode(error), undefined);
});

Deno.test("statusFromError() maps an AbortController abort to STATUS_CANCELLED", () => {
  const controller = new AbortController();
  controller.abort();
  const error: unknown = controller.signal.reason;
  assert.ok(error instanceof DOMException);
  assertStatus(statusFromError(error), STATUS_CANCELLED);
});

Deno.test("statusFromError() maps each Deno error class to its status", () => {
  const cases: ReadonlyArray<{ input: Error; expected: number }> = [
    { input: new Deno.errors.ConnectionRefused("x"), expected: STATUS_CONNECTION_REFUSED },
    { input: new Deno.errors.ConnectionReset("x"), expected: STATUS_CONNECTION_RESET },
    { input: new Deno.errors.ConnectionAborted("x"), expected: STATUS_CONNECTION_ABORTED },
    { input: new Deno.errors.TimedOut("x"), expected: STATUS_IO_TIMEOUT },
    { input: new Deno.errors.AddrInUse("x"), expected: STATUS_ADDRESS_ALREADY_EXISTS },
    { input: new Deno.errors.AddrNotAvailable("x"), expected: STATUS_INVALID_ADDRESS },
    { input: new Deno.errors.NetworkUnreachable("x"), expected: STATUS_NETWORK_UNREACHABLE },
    { input: new Deno.errors.PermissionDenied("x"), expected: STATUS_ACCESS_DENIED },
    { input: new Deno.errors.NotCapable("x"), expected: STATUS_ACCESS_DENIED },
    { input: new Deno.errors.NotConnected("x"), expected: STATUS_INVALID_DEVICE_STATE },
    { input: new Deno.errors.BrokenPipe("x"), expected: STATUS_INVALID_DEVICE_STATE },
    { input: new Deno.errors.BadResource("x"), expected: STATUS_INVALID_HANDLE },
    { input: new Deno.errors.Interrupted("x"), expected: STATUS_CANCELLED },
    { input: new Deno.errors.InvalidData("x"), expected: STATUS_INVALID_PARAMETER },
    { input: new Deno.errors.NotSupported("x"), expected: STATUS_NOT_SUPPORTED },
    { input: new Deno.errors.NotFound("x"), expected: STATUS_NOT_FOUND },
    { input: new Deno.errors.AlreadyExists("x"), expected: STATUS_UNSUCCESSFUL },
    { input: new Deno.errors.WouldBlock("x"), expected: STATUS_UNSUCCESSFUL },
    { input: new Deno.errors.UnexpectedEof("x"), expected: STATUS_UNSUCCESSFUL },
  ];
  for (const { input, expected } of cases) {
    assert.equal(ntStatusName(statusFromError(input).status), ntStatusName(expected), input.name);
  }
});

Deno.test("statusFromError() maps node-style code strings to their statuses", () => {
  const cases: ReadonlyArray<{ input: string; expected: number }> = [
    { input: "ECONNREFUSED", expected: STATUS_CONNECTION_REFUSED },
    { input: "ECONNRESET", expected: STATUS_CONNECTION_RESET },
    { input: "ECONNABORTED", expected: STATUS_CONNECTION_ABORTED },
    { input: "ETIMEDOUT", expected: STATUS_IO_TIMEOUT },
    { input: "EHOSTUNREACH", expected: STATUS_HOST_UNREACHABLE },
    { input: "ENETUNREACH", expected: STATUS_NETWORK_UNREACHABLE },
    { input: "EADDRINUSE", expected: STATUS_ADDRESS_ALREADY_EXISTS },
    { input: "EADDRNOTAVAIL", expected: STATUS_INVALID_ADDRESS },
    { input: "EACCES", expected: STATUS_ACCESS_DENIED },
    { input: "EPERM", expected: STATUS_ACCESS_DENIED },
    { input: "ENOTCONN", expected: STATUS_INVALID_DEVICE_STATE },
    { input: "EPIPE", expected: STATUS_INVALID_DEVICE_STATE },
    { input: "EINVAL", expected: STATUS_INVALID_PARAMETER },
    { input: "EMFILE", expected: STATUS_INSUFFICIENT_RESOURCES },
    { input: "ENFILE", expected: STATUS_INSUFFICIENT_RESOURCES },
    { input: "ENOBUFS", expected: STATUS_INSUFFICIENT_RESOURCES },
    { input: "ENOTFOUND", expected: STATUS_NO_MATCH },
    { input: "EAI_NONAME", expected: STATUS_NO_MATCH },
    { input: "EAI_AGAIN", expected: STATUS_NO_MATCH },
    { input: "EAI_FAIL", expected: STATUS_NO_MATCH },
    { input: "ABORT_ERR", expected: STATUS_CANCELLED },
    { input: "ERR_SOCKET_CLOSED", expected: STATUS_INVALID_HANDLE },
    { input: "ERR_SOCKET_CONNECTION_TIMEOUT", expected: STATUS_IO_TIMEOUT },
    { input: "EWHATEVER", expected: STATUS_UNSUCCESSFUL },
  ];
  for (const { input, expected } of cases) {
    const error = Object.assign(new Error(`connect ${input} 127.0.0.1:9`), { code: input });
    const failure = statusFromError(error);
    assert.equal(ntStatusName(failure.status), ntStatusName(expected), input);
    assert.equal(failure.message, `connect ${input} 127.0.0.1:9`);
    assert.equal(hostErrorCode(error), input);
  }
});

Deno.test("statusFromError() prefers the Deno class over a conflicting code", () => {
  const error = Object.assign(new Deno.errors.TimedOut("x"), { code: "ECONNRESET" });
  assertStatus(statusFromError(error), STATUS_IO_TIMEOUT);
});

Deno.test("statusFromError() prefers a known code over the TypeError class", () => {
  const error = Object.assign(new TypeError("closed"), { code: "ERR_SOCKET_CLOSED" });
  assertStatus(statusFromError(error), STATUS_INVALID_HANDLE);
  const unknown = Object.assign(new TypeError("bad"), { code: "ERR_INVALID_ARG_TYPE" });
  assertStatus(statusFromError(unknown), STATUS_INVALID_PARAMETER);
});

Deno.test("statusFromError() maps RangeError, TypeError and URIError to STATUS_INVALID_PARAMETER", () => {
  for (
    const error of [new RangeError("r"), new TypeError("t"), new URIError("invalid empty host: ''")]
  ) {
    assertStatus(statusFromError(error), STATUS_INVALID_PARAMETER);
  }
});

Deno.test("statusFromError() maps a DNS lookup failure message to STATUS_NO_MATCH", () => {
  const cases: ReadonlyArray<{ input: string; expected: number }> = [
    {
      input: "failed to lookup address information: Temporary failure in name resolution",
      expected: STATUS_NO_MATCH,
    },
    {
      input: "failed to lookup address information: Name or service not known",
      expected: STATUS_NO_MATCH,
    },
    { input: "something else failed", expected: STATUS_UNSUCCESSFUL },
  ];
  for (const { input, expected } of cases) {
    const failure = statusFromError(new Error(input));
    assertStatus(failure, expected);
    assert.equal(failure.message, input);
  }
});

Deno.test("statusFromError() completes anything unknown with STATUS_UNSUCCESSFUL and keeps it as cause", () => {
  const bare = Object.create(null);
  const cases: ReadonlyArray<{ input: unknown; message: string }> = [
    { input: 42, message: "42" },
    { input: "mine", message: "mine" },
    { input: undefined, message: "undefined" },
    { input: null, message: "null" },
    { input: "", message: "(no message)" },
    { input: { message: "an error-like object" }, message: "an error-like object" },
    { input: bare, message: "[object Object]" },
    { input: new Error(""), message: "Error" },
    { input: new Error("first line\nsecond line"), message: "first line" },
    { input: new DOMException("gone", "NotFoundError"), message: "gone" },
  ];
  for (const { input, message } of cases) {
    const failure = statusFromError(input);
    assertStatus(failure, STATUS_UNSUCCESSFUL);
    assert.equal(failure.message, message);
    assert.equal(failure.cause, input);
  }
  assert.deepEqual(statusFromError(42), { status: STATUS_UNSUCCESSFUL, message: "42", cause: 42 });
});

Deno.test("statusFromError() and hostErrorCode() survive a throwing code getter", () => {
  const hostile = new Error("boom");
  Object.defineProperty(hostile, "code", {
    get() {
      throw new Error("no code for you");
    },
  });
  assert.equal(hostErrorCode(hostile), undefined);
  assertStatus(statusFromError(hostile), STATUS_UNSUCCESSFUL);
});

Deno.test("hostErrorCode() returns only non-empty string codes", () => {
  const cases: ReadonlyArray<{ input: unknown; expected: string | undefined }> = [
    { input: Object.assign(new Error("x"), { code: "EMFILE" }), expected: "EMFILE" },
    { input: { code: "EPIPE" }, expected: "EPIPE" },
    { input: Object.assign(new Error("x"), { code: 24 }), expected: undefined },
    { input: Object.assign(new Error("x"), { code: "" }), expected: undefined },
    { input: new Error("x"), expected: undefined },
    { input: "ECONNREFUSED", expected: undefined },
    { input: null, expected: undefined },
  ];
  for (const { input, expected } of cases) {
    assert.equal(hostErrorCode(input), expected);
  }
});

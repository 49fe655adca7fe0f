/**
 * Getting a connected socket: WskSocket, WskBind, WskConnect, WskConnectEx, WskSocketConnect and
 * the two address queries, on real loopback sockets. Every address is checked from the peer's
 * side (what its accept() saw), every failure by its status name.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  type AddressFamily,
  AF_INET,
  AF_INET6,
  IPPROTO_TCP,
  SOCK_DGRAM,
  SOCK_STREAM,
  type SockAddr,
  sockAddr,
  sockAddrFromNetAddr,
  STATUS_ACCESS_DENIED,
  STATUS_ADDRESS_ALREADY_EXISTS,
  STATUS_BUFFER_OVERFLOW,
  STATUS_CANCELLED,
  STATUS_CONNECTION_REFUSED,
  STATUS_INVALID_ADDRESS,
  STATUS_INVALID_DEVICE_STATE,
  STATUS_INVALID_HANDLE,
  STATUS_INVALID_PARAMETER,
  STATUS_IO_TIMEOUT,
  STATUS_NOT_SUPPORTED,
  STATUS_SUCCESS,
  wildcard,
  WSK_FLAG_BASIC_SOCKET,
  WSK_FLAG_CONNECTION_SOCKET,
  WSK_FLAG_DATAGRAM_SOCKET,
  WSK_FLAG_LISTEN_SOCKET,
  WSK_FLAG_STREAM_SOCKET,
  WSK_FLAG_WAITALL,
  WSK_PROVIDER_CONNECTION_DISPATCH,
  type WskBuf,
  wskBuf,
  WskCaptureProviderNPI,
  type WskClient,
  type WskCompletion,
  type WskConnectionSocket,
  type WskCreateOptions,
  WskGetOption,
  type WskProviderNpi,
  WskReleaseProviderNPI,
  type WskSocketCompletion,
} from "../../provider/mod.ts";
import {
  assertStatus,
  closedPort,
  connectedPair,
  hex,
  listenLoopback,
  loopbackHost,
  newSocket,
  npi,
  readAll,
  readExactly,
  receive,
  text,
  within,
  wskSocket,
} from "../_helpers.ts";
import { PY_LISTEN, PythonPeer } from "../_python.ts";
import { runProcess } from "../_child.ts";

const D = WSK_PROVIDER_CONNECTION_DISPATCH;
const MOD_URL = new URL("../../provider/mod.ts", import.meta.url).href;

// ---------------------------------------------------------------------------------------------
// Local helpers

/**
 * Runs one dispatch call with a bad argument and returns its completion. A synchronous throw or
 * a rejected promise fails the test with a message saying an exception escaped.
 */
async function settle<T extends WskCompletion>(what: string, run: () => Promise<T>): Promise<T> {
  let pending: Promise<T>;
  try {
    pending = run();
  } catch (error) {
    assert.fail(`${what} threw instead of completing: ${String(error)}`);
  }
  try {
    return await pending;
  } catch (error) {
    assert.fail(`${what} rejected instead of completing: ${String(error)}`);
  }
}

/** The next connection `listener` accepts, within 5 s. */
function accepted(listener: Deno.TcpListener): Promise<Deno.TcpConn> {
  return within(listener.accept(), 5000, "accept");
}

/** Runs `call` and awaits it (at most 10 s): its value and how many ms it took. */
async function timed<T>(
  what: string,
  call: () => Promise<T>,
): Promise<{ result: T; elapsed: number }> {
  const started = performance.now();
  const result = await within(call(), 10_000, what);
  return { result, elapsed: performance.now() - started };
}

/** The arguments of one WskSocketConnect call besides the two addresses. */
interface SocketConnectArgs {
  readonly client?: WskClient;
  readonly type?: number;
  readonly protocol?: number;
  readonly flags?: number;
  readonly context?: unknown;
  readonly options?: WskCreateOptions;
}

/**
 * WskSocketConnect on `from` with SOCK_STREAM, IPPROTO_TCP, flags 0 and no callbacks, unless
 * `args` names another value (bad ones included).
 */
function socketConnect(
  local: SockAddr,
  remote: SockAddr,
  args: SocketConnectArgs = {},
  from: WskProviderNpi = npi,
): Promise<WskSocketCompletion> {
  const a = { client: from.Client, type: SOCK_STREAM, protocol: IPPROTO_TCP, flags: 0, ...args };
  return from.Dispatch.WskSocketConnect(
    a.client,
    a.type,
    a.protocol,
    local,
    remote,
    a.flags,
    a.context,
    null,
    a.options,
  );
}

/** A free loopback port (bound, noted, released): the same thing as closedPort(). */
function freePort(family: AddressFamily = AF_INET): number {
  return closedPort(family);
}

/** A bound IPv4 or IPv6 socket with a wildcard address (either backing can serve it). */
async function boundSocket(
  family: AddressFamily = AF_INET,
  address: SockAddr = wildcard(family),
  options: Parameters<typeof newSocket>[1] = {},
): Promise<WskConnectionSocket> {
  const socket = await newSocket(family, options);
  assertStatus(await D.WskBind(socket, address), STATUS_SUCCESS, "bind");
  assert.equal(socket.state, "BOUND");
  return socket;
}

/** Closes a WSK socket unless the test already did. */
async function closeSocket(socket: WskConnectionSocket): Promise<void> {
  if (socket.state !== "CLOSED") assertStatus(await D.WskCloseSocket(socket), STATUS_SUCCESS);
}

/**
 * A loopback port whose SYNs go unanswered: a listener with a backlog of 0 that never accepts,
 * its accept queue filled by plain clients until one of them can no longer connect (Linux drops
 * a SYN when the accept queue is full).
 */
interface SilentPort extends AsyncDisposable {
  readonly port: number;
}

async function silentPort(): Promise<SilentPort> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0, tcpBacklog: 0 });
  const clients: Deno.TcpConn[] = [];
  let full = false;
  // A handful is plenty: Linux lets backlog + 1 connections wait in the queue.
  for (let i = 0; i < 16 && !full; i++) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 300);
    try {
      clients.push(
        await Deno.connect({
          hostname: "127.0.0.1",
          port: listener.addr.port,
          signal: controller.signal,
        }),
      );
    } catch {
      full = true;
    } finally {
      clearTimeout(timer);
    }
  }
  const dispose = () => {
    for (const client of clients) client.close();
    listener.close();
  };
  if (!full) {
    dispose();
    assert.fail("could not fill the accept queue: every filler connected");
  }
  return {
    port: listener.addr.port,
    [Symbol.asyncDispose]() {
      dispose();
      return Promise.resolve();
    },
  };
}

/** WskConnect (500 ms IRP timeout) to a silentPort(): the completion and the ms it took. */
async function connectUnanswered(
  socket: WskConnectionSocket,
): Promise<{ result: WskCompletion; elapsed: number }> {
  await using silent = await silentPort();
  const target = sockAddr("127.0.0.1", silent.port);
  return await timed("WskConnect", () => D.WskConnect(socket, target, 0, { timeout: 500 }));
}

/** Bytes 0, 1, 2, … modulo 251, so an offset slip shows. */
function pattern(length: number, seed = 0): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i + seed) % 251;
  return bytes;
}

/**
 * Runs a TypeScript snippet in a child Deno with its own `--allow-net` list and returns what it
 * printed as JSON. Used where the test needs the kernel's answer for an address this process
 * has no permission for; the snippet sees the provider module as `m`.
 */
async function runInChildDeno(allowNet: string, body: string): Promise<unknown> {
  const out = await runProcess(
    Deno.execPath(),
    ["run", "--no-config", "--no-lock", "--no-prompt", `--allow-net=${allowNet}`, "-"],
    {
      stdin: `import * as m from ${JSON.stringify(MOD_URL)};\n${body}`,
      env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
      timeoutMs: 20_000,
    },
  );
  assert.equal(out.code, 0, `the child failed: ${out.stderr}`);
  return JSON.parse(out.stdout.trim());
}

// ---------------------------------------------------------------------------------------------
// WskSocket

Deno.test("WskSocket() creates a connection socket in state INIT with no backing yet", async () => {
  const context = { name: "ctx" };
  const made = await wskSocket({ family: AF_INET6, context, dispatch: null });
  assertStatus(made, STATUS_SUCCESS);
  const socket = made.socket;
  assert.ok(socket);
  assert.equal(made.listenSocket, undefined);
  assert.equal(made.basicSocket, undefined);
  assert.equal(socket.state, "INIT");
  assert.equal(socket.family, AF_INET6);
  assert.equal(socket.backing, null);
  assert.equal(socket.context, context);
  assert.equal(socket.Dispatch, WSK_PROVIDER_CONNECTION_DISPATCH);
  await closeSocket(socket);
  assert.equal(socket.state, "CLOSED");
});

Deno.test("WskSocket() creates a listening socket for WSK_FLAG_LISTEN_SOCKET", async () => {
  const made = await wskSocket({ flags: WSK_FLAG_LISTEN_SOCKET });
  assertStatus(made, STATUS_SUCCESS);
  assert.equal(made.socket, undefined);
  const listen = made.listenSocket;
  assert.ok(listen);
  assert.equal(listen.state, "INIT");
  assertStatus(await listen.Dispatch.WskCloseSocket(listen), STATUS_SUCCESS);
  assert.equal(listen.state, "CLOSED");
});

Deno.test("WskSocket() creates a basic socket for flags 0, which refuses client callbacks", async () => {
  const made = await wskSocket({ flags: WSK_FLAG_BASIC_SOCKET });
  assertStatus(made, STATUS_SUCCESS);
  const basic = made.basicSocket;
  assert.ok(basic);
  assert.equal(made.socket, undefined);
  assert.equal(basic.state, "OPEN");
  assertStatus(await basic.Dispatch.WskCloseSocket(basic), STATUS_SUCCESS);

  const withCallbacks = await settle(
    "WskSocket(basic, dispatch)",
    () =>
      wskSocket({
        flags: WSK_FLAG_BASIC_SOCKET,
        dispatch: { WskDisconnectEvent: () => STATUS_SUCCESS },
      }),
  );
  assertStatus(withCallbacks, STATUS_INVALID_PARAMETER);
  assert.equal(withCallbacks.basicSocket, undefined);
});

Deno.test("WskSocket() completes with STATUS_NOT_SUPPORTED for an unsupported address family", async () => {
  for (const family of [0, 1, 3, 10, 24, 99, -2, 2.5, null, "2", undefined]) {
    const made = await settle(
      `WskSocket(family ${String(family)})`,
      () => wskSocket({ family: family as never }),
    );
    assertStatus(made, STATUS_NOT_SUPPORTED, `family ${String(family)}:`);
    assert.equal(made.socket, undefined);
    assert.equal(made.information, 0);
  }
});

Deno.test("WskSocket() completes with STATUS_NOT_SUPPORTED for a socket type or protocol other than TCP", async () => {
  const combos: Array<[unknown, unknown]> = [
    [SOCK_DGRAM, IPPROTO_TCP],
    [SOCK_STREAM, 17],
    [SOCK_STREAM, 0],
    [3, IPPROTO_TCP],
    [-1, -1],
    ["1", "6"],
    [null, null],
  ];
  for (const [type, protocol] of combos) {
    const made = await settle(
      `WskSocket(type ${String(type)}, protocol ${String(protocol)})`,
      () => wskSocket({ type: type as never, protocol: protocol as never }),
    );
    assertStatus(made, STATUS_NOT_SUPPORTED, `type ${String(type)}/${String(protocol)}:`);
    assert.equal(made.socket, undefined);
  }
});

Deno.test("WskSocket() completes with STATUS_NOT_SUPPORTED for a socket category it does not model", async () => {
  const categories = [
    WSK_FLAG_DATAGRAM_SOCKET,
    WSK_FLAG_STREAM_SOCKET,
    WSK_FLAG_LISTEN_SOCKET | WSK_FLAG_CONNECTION_SOCKET,
    0x10,
    0x80000000,
    -1,
  ];
  for (const flags of categories) {
    const made = await settle(
      `WskSocket(flags ${flags})`,
      () => wskSocket({ flags }),
    );
    assertStatus(made, STATUS_NOT_SUPPORTED, `flags 0x${(flags >>> 0).toString(16)}:`);
    assert.equal(made.socket, undefined);
    assert.equal(made.listenSocket, undefined);
    assert.equal(made.basicSocket, undefined);
  }
});

Deno.test("WskSocket() completes with STATUS_INVALID_PARAMETER for a bad client, backing or IRP", async () => {
  const cases: Array<[string, () => ReturnType<typeof npi.Dispatch.WskSocket>]> = [
    ["null client", () => wskSocket({ client: null as never })],
    ["plain-object client", () => wskSocket({ client: {} as never })],
    [
      "unknown backing",
      () => wskSocket({ dispatch: null, options: { backing: "bogus" as never } }),
    ],
    ["negative timeout", () => wskSocket({ dispatch: null, options: { timeout: -1 } })],
    ["null options", () => wskSocket({ dispatch: null, options: null as never })],
    [
      "signal that is not an AbortSignal",
      () => wskSocket({ dispatch: null, options: { signal: "stop" as never } }),
    ],
  ];
  for (const [name, run] of cases) {
    const made = await settle(`WskSocket(${name})`, run);
    assertStatus(made, STATUS_INVALID_PARAMETER, `${name}:`);
    assert.equal(made.socket, undefined, name);
  }
});

Deno.test("WskSocket() completes with STATUS_INVALID_HANDLE after WskReleaseProviderNPI", async () => {
  const released = WskCaptureProviderNPI();
  const before = await wskSocket({}, released);
  assertStatus(before, STATUS_SUCCESS);
  WskReleaseProviderNPI(released);
  const after = await settle("WskSocket on a released NPI", () => wskSocket({}, released));
  assertStatus(after, STATUS_INVALID_HANDLE);
  assert.equal(after.socket, undefined);
  const oneShot = await settle(
    "WskSocketConnect on a released NPI",
    () => socketConnect(sockAddr("127.0.0.1", 0), sockAddr("127.0.0.1", 9), {}, released),
  );
  assertStatus(oneShot, STATUS_INVALID_HANDLE);
  assert.equal(oneShot.socket, undefined);
  // A socket created before the release still works and closes normally.
  await closeSocket(before.socket!);
  // Another capture is not affected.
  const other = await wskSocket();
  assertStatus(other, STATUS_SUCCESS);
  await closeSocket(other.socket!);
});

// ---------------------------------------------------------------------------------------------
// WskBind

for (const family of [AF_INET, AF_INET6] as const) {
  const name = family === AF_INET ? "0.0.0.0:0" : "[::]:0";
  Deno.test(`WskBind() binds the wildcard ${name} and moves INIT to BOUND`, async () => {
    await using socket = await newSocket(family);
    const bound = await D.WskBind(socket, wildcard(family));
    assertStatus(bound, STATUS_SUCCESS);
    assert.equal(bound.information, 0);
    assert.equal(socket.state, "BOUND");
    assert.equal(socket.backing, null);
  });
}

Deno.test("WskBind() binds a specific address with port 0 and WskGetLocalAddress reports a reserved port", async () => {
  for (const family of [AF_INET, AF_INET6] as const) {
    await using socket = await newSocket(family);
    assertStatus(await D.WskBind(socket, sockAddr(loopbackHost(family), 0)), STATUS_SUCCESS);
    assert.equal(socket.state, "BOUND");
    const local = await D.WskGetLocalAddress(socket);
    assertStatus(local, STATUS_SUCCESS);
    assert.equal(local.address?.family, family);
    assert.equal(local.address?.address, loopbackHost(family));
    assert.ok(
      local.address!.port > 0 && local.address!.port <= 65535,
      `port ${local.address?.port}`,
    );
    // Asking again gives the same port: it was fixed by the first query.
    const again = await D.WskGetLocalAddress(socket);
    assert.deepEqual(again.address, local.address);
  }
});

Deno.test("WskBind() binds a specific address and port, which WskGetLocalAddress reports before connecting", async () => {
  const port = freePort();
  await using socket = await newSocket(AF_INET);
  assertStatus(await D.WskBind(socket, sockAddr("127.0.0.1", port)), STATUS_SUCCESS);
  assert.equal(socket.state, "BOUND");
  const local = await D.WskGetLocalAddress(socket);
  assertStatus(local, STATUS_SUCCESS);
  assert.deepEqual(local.address, sockAddr("127.0.0.1", port));
});

Deno.test("WskBind() completes with STATUS_ADDRESS_ALREADY_EXISTS when the port is taken", async () => {
  for (const family of [AF_INET, AF_INET6] as const) {
    using holder = listenLoopback(family);
    await using socket = await newSocket(family);
    const taken = await settle(
      "WskBind(taken port)",
      () => D.WskBind(socket, sockAddr(loopbackHost(family), holder.port)),
    );
    assertStatus(taken, STATUS_ADDRESS_ALREADY_EXISTS);
    assert.equal(taken.information, 0);
    assert.equal(socket.state, "INIT", "a failed bind leaves the socket unbound");
    // The same socket can still be bound elsewhere.
    assertStatus(await D.WskBind(socket, sockAddr(loopbackHost(family), 0)), STATUS_SUCCESS);
    assert.equal(socket.state, "BOUND");
  }
});

Deno.test("WskBind() completes with STATUS_INVALID_ADDRESS for an address that is not local", async () => {
  // The kernel's answer needs net permission for these hosts, so a child asks it. Binding sends
  // nothing: no packet leaves the machine.
  const seen = await runInChildDeno(
    "192.0.2.1,[2001:db8::1]",
    `
    const npi = m.WskCaptureProviderNPI();
    const results = {};
    for (const [family, host] of [[m.AF_INET, "192.0.2.1"], [m.AF_INET6, "2001:db8::1"]]) {
      const made = await npi.Dispatch.WskSocket(
        npi.Client, family, m.SOCK_STREAM, m.IPPROTO_TCP, m.WSK_FLAG_CONNECTION_SOCKET,
      );
      const s = made.socket;
      const c = await s.Dispatch.WskBind(s, m.sockAddr(host, 0));
      results[host] = { status: m.ntStatusName(c.status), state: s.state };
      await s.Dispatch.WskCloseSocket(s);
    }
    console.log(JSON.stringify(results));
    `,
  );
  assert.deepEqual(seen, {
    "192.0.2.1": { status: "STATUS_INVALID_ADDRESS", state: "INIT" },
    "2001:db8::1": { status: "STATUS_INVALID_ADDRESS", state: "INIT" },
  });
});

Deno.test({
  name: "WskBind() completes with STATUS_ACCESS_DENIED for an address this process may not use",
  // The test run may bind only 127.0.0.1 and ::1; the model reports the host's permission check
  // as WSK reports a failed security check. A run granting 127.0.0.2 cannot show it.
  ignore: Deno.permissions.querySync({ name: "net", host: "127.0.0.2" }).state === "granted",
  async fn() {
    await using socket = await newSocket(AF_INET);
    const denied = await settle(
      "WskBind(127.0.0.2)",
      () => D.WskBind(socket, sockAddr("127.0.0.2", 0)),
    );
    assertStatus(denied, STATUS_ACCESS_DENIED);
    assert.equal(socket.state, "INIT");
  },
});

Deno.test("WskBind() completes with STATUS_INVALID_PARAMETER for an address of the wrong family", async () => {
  const cases = [
    { family: AF_INET, name: "v4", wrong: { "::1": sockAddr("::1", 0), "::": wildcard(AF_INET6) } },
    {
      family: AF_INET6,
      name: "v6",
      wrong: { "127.0.0.1": sockAddr("127.0.0.1", 0), "0.0.0.0": wildcard(AF_INET) },
    },
  ] as const;
  for (const { family, name, wrong } of cases) {
    await using socket = await newSocket(family);
    for (const [label, address] of Object.entries(wrong)) {
      assertStatus(
        await settle(`bind ${name} to ${label}`, () => D.WskBind(socket, address)),
        STATUS_INVALID_PARAMETER,
      );
    }
    assert.equal(socket.state, "INIT");
  }
});

Deno.test("WskBind() completes with STATUS_INVALID_PARAMETER for a value that is not a SOCKADDR", async () => {
  const bad: unknown[] = [
    null,
    undefined,
    "127.0.0.1:0",
    42,
    {},
    { family: AF_INET, address: "127.0.0.1" },
    { family: AF_INET, address: "127.0.0.1", port: -1 },
    { family: AF_INET, address: "127.0.0.1", port: 65536 },
    { family: AF_INET, address: "127.0.0.1", port: 1.5 },
    { family: AF_INET, address: "127.0.0.1", port: "80" },
    { family: AF_INET, address: "localhost", port: 0 },
    { family: AF_INET, address: "::1", port: 0 },
    { family: 99, address: "127.0.0.1", port: 0 },
  ];
  await using socket = await newSocket(AF_INET);
  for (const address of bad) {
    const c = await settle(
      `WskBind(${JSON.stringify(address)})`,
      () => D.WskBind(socket, address as never),
    );
    assertStatus(c, STATUS_INVALID_PARAMETER, JSON.stringify(address) ?? "undefined");
    assert.equal(socket.state, "INIT");
  }
});

Deno.test("WskBind() completes with STATUS_INVALID_PARAMETER for non-zero flags", async () => {
  await using socket = await newSocket(AF_INET);
  for (const flags of [1, 2, 0x80000000, -1, 0.5, NaN, "0", null]) {
    const c = await settle(
      `WskBind(flags ${String(flags)})`,
      () => D.WskBind(socket, wildcard(AF_INET), flags as never),
    );
    assertStatus(c, STATUS_INVALID_PARAMETER, `flags ${String(flags)}:`);
    assert.equal(socket.state, "INIT");
  }
  // Flags 0 is fine.
  assertStatus(await D.WskBind(socket, wildcard(AF_INET), 0), STATUS_SUCCESS);
});

Deno.test("WskBind() completes with STATUS_INVALID_PARAMETER for a malformed IRP", async () => {
  await using socket = await newSocket(AF_INET);
  const irps: unknown[] = [
    { timeout: -1 },
    { timeout: NaN },
    { timeout: "100" },
    { signal: {} },
    7,
    null,
  ];
  for (const irp of irps) {
    const c = await settle(
      `WskBind(irp ${String(irp)})`,
      () => D.WskBind(socket, wildcard(AF_INET), 0, irp as never),
    );
    assertStatus(c, STATUS_INVALID_PARAMETER, `irp ${JSON.stringify(irp)}:`);
    assert.equal(socket.state, "INIT");
  }
});

Deno.test("WskBind() completes with STATUS_CANCELLED for an already-aborted IRP and stays unbound", async () => {
  await using socket = await newSocket(AF_INET);
  const c = await D.WskBind(socket, sockAddr("127.0.0.1", 0), 0, { signal: AbortSignal.abort() });
  assertStatus(c, STATUS_CANCELLED);
  assert.equal(socket.state, "INIT");
});

Deno.test("WskBind() completes with STATUS_INVALID_DEVICE_STATE when the socket is already bound", async () => {
  await using socket = await boundSocket(AF_INET);
  const again = await settle("second WskBind", () => D.WskBind(socket, wildcard(AF_INET)));
  assertStatus(again, STATUS_INVALID_DEVICE_STATE);
  assert.equal(socket.state, "BOUND");
  const specific = await D.WskBind(socket, sockAddr("127.0.0.1", 0));
  assertStatus(specific, STATUS_INVALID_DEVICE_STATE);
});

Deno.test("WskBind() completes with STATUS_INVALID_DEVICE_STATE on a connected socket", async () => {
  await using pair = await connectedPair(AF_INET);
  const c = await D.WskBind(pair.socket, wildcard(AF_INET));
  assertStatus(c, STATUS_INVALID_DEVICE_STATE);
  assert.equal(pair.socket.state, "ESTAB");
});

Deno.test("WskBind() completes with STATUS_NOT_SUPPORTED for a specific address on a deno-backed socket", async () => {
  for (
    const address of [
      sockAddr("127.0.0.1", 0),
      sockAddr("127.0.0.1", freePort()),
      wildcard(AF_INET, 4000),
    ]
  ) {
    await using socket = await newSocket(AF_INET, { backing: "deno" });
    const c = await settle("WskBind(deno, specific)", () => D.WskBind(socket, address));
    assertStatus(c, STATUS_NOT_SUPPORTED, `${address.address}:${address.port}`);
    assert.equal(socket.state, "INIT");
  }
  // The wildcard with port 0 is what a deno-backed socket can do.
  await using socket = await newSocket(AF_INET, { backing: "deno" });
  assertStatus(await D.WskBind(socket, wildcard(AF_INET)), STATUS_SUCCESS);
});

// ---------------------------------------------------------------------------------------------
// WskConnect: success, and the addresses on both sides

for (const family of [AF_INET, AF_INET6] as const) {
  const label = family === AF_INET ? "IPv4" : "IPv6";
  Deno.test(`WskConnect() connects over ${label} and the peer's accept() sees WskGetLocalAddress`, async () => {
    using listener = listenLoopback(family);
    await using socket = await boundSocket(family);
    const connecting = D.WskConnect(socket, sockAddr(loopbackHost(family), listener.port), 0, {
      timeout: 5000,
    });
    using peer = await accepted(listener);
    const connected = await connecting;
    assertStatus(connected, STATUS_SUCCESS);
    assert.equal(connected.information, 0);
    assert.equal(socket.state, "ESTAB");
    assert.equal(socket.backing, "deno", "a wildcard bind lets auto pick deno");

    const local = await D.WskGetLocalAddress(socket);
    assertStatus(local, STATUS_SUCCESS);
    assert.deepEqual(local.address, sockAddrFromNetAddr(peer.remoteAddr));
    assert.equal(local.address?.address, loopbackHost(family), "the wildcard became loopback");

    const remote = await D.WskGetRemoteAddress(socket);
    assertStatus(remote, STATUS_SUCCESS);
    assert.deepEqual(remote.address, sockAddrFromNetAddr(peer.localAddr));
    assert.deepEqual(remote.address, sockAddr(loopbackHost(family), listener.port));

    // The connection really carries data.
    await peer.write(text.encode("hi"));
    const got = await receive(socket, 2, WSK_FLAG_WAITALL);
    assertStatus(got.completion, STATUS_SUCCESS);
    assert.equal(got.completion.information, 2);
    assert.equal(text.decode(got.bytes), "hi");
  });
}

Deno.test("WskConnect() with backing node connects from a wildcard bind", async () => {
  using listener = listenLoopback(AF_INET);
  await using socket = await boundSocket(AF_INET, wildcard(AF_INET), { backing: "node" });
  const connecting = D.WskConnect(socket, sockAddr("127.0.0.1", listener.port), 0, {
    timeout: 5000,
  });
  using peer = await accepted(listener);
  assertStatus(await connecting, STATUS_SUCCESS);
  assert.equal(socket.backing, "node");
  const local = await D.WskGetLocalAddress(socket);
  assert.deepEqual(local.address, sockAddrFromNetAddr(peer.remoteAddr));
});

for (const family of [AF_INET, AF_INET6] as const) {
  const label = family === AF_INET ? "127.0.0.1" : "[::1]";
  Deno.test(`WskConnect() sends from the exact source ${label}:<port> given to WskBind`, async () => {
    using listener = listenLoopback(family);
    const port = freePort(family);
    await using socket = await boundSocket(family, sockAddr(loopbackHost(family), port));
    const connecting = D.WskConnect(socket, sockAddr(loopbackHost(family), listener.port), 0, {
      timeout: 5000,
    });
    using peer = await accepted(listener);
    assertStatus(await connecting, STATUS_SUCCESS);
    assert.equal(socket.backing, "node", "a specific bind needs the node backing");
    assert.deepEqual(sockAddrFromNetAddr(peer.remoteAddr), sockAddr(loopbackHost(family), port));
    const local = await D.WskGetLocalAddress(socket);
    assert.deepEqual(local.address, sockAddr(loopbackHost(family), port));
  });
}

Deno.test("WskGetLocalAddress() in BOUND reserves a port that the later connect really uses", async () => {
  using listener = listenLoopback(AF_INET);
  await using socket = await boundSocket(AF_INET, sockAddr("127.0.0.1", 0));
  const reserved = await D.WskGetLocalAddress(socket);
  assertStatus(reserved, STATUS_SUCCESS);
  const port = reserved.address!.port;
  assert.notEqual(port, 0);
  const connecting = D.WskConnect(socket, sockAddr("127.0.0.1", listener.port), 0, {
    timeout: 5000,
  });
  using peer = await accepted(listener);
  assertStatus(await connecting, STATUS_SUCCESS);
  assert.equal(socket.backing, "node");
  assert.equal(peer.remoteAddr.hostname, "127.0.0.1");
  assert.equal(peer.remoteAddr.port, port, "the peer saw the port WskGetLocalAddress reported");
  assert.deepEqual((await D.WskGetLocalAddress(socket)).address, sockAddr("127.0.0.1", port));
});

Deno.test("WskGetLocalAddress() in BOUND after a wildcard bind reports the port the connection uses, for every backing", async () => {
  // Querying a wildcard bind needs permission for 0.0.0.0, which the test run does not grant, so
  // a child with that permission runs the socket; the peer is on 127.0.0.1 in the child.
  const seen = await runInChildDeno(
    "127.0.0.1,0.0.0.0",
    `
    const npi = m.WskCaptureProviderNPI();
    const results = {};
    for (const backing of ["auto", "node", "deno"]) {
      const made = await npi.Dispatch.WskSocket(
        npi.Client, m.AF_INET, m.SOCK_STREAM, m.IPPROTO_TCP, m.WSK_FLAG_CONNECTION_SOCKET,
        undefined, null, { backing },
      );
      const s = made.socket;
      const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      await s.Dispatch.WskBind(s, m.wildcard(m.AF_INET));
      const reserved = await s.Dispatch.WskGetLocalAddress(s);
      const connecting = s.Dispatch.WskConnect(
        s, m.sockAddr("127.0.0.1", listener.addr.port), 0, { timeout: 5000 },
      );
      const peer = await listener.accept();
      const connected = await connecting;
      results[backing] = {
        reserved: m.ntStatusName(reserved.status),
        reservedPort: reserved.address?.port ?? null,
        connected: m.ntStatusName(connected.status),
        peerSawPort: peer.remoteAddr.port,
      };
      peer.close();
      listener.close();
      await s.Dispatch.WskCloseSocket(s);
    }
    console.log(JSON.stringify(results));
    `,
  ) as Record<string, {
    reserved: string;
    reservedPort: number | null;
    connected: string;
    peerSawPort: number;
  }>;
  for (const backing of ["auto", "node", "deno"]) {
    const r = seen[backing]!;
    assert.equal(r.connected, "STATUS_SUCCESS", backing);
    if (r.reserved === "STATUS_SUCCESS") {
      // WSK fixes a TCP port at bind: a port reported in BOUND must be the one used.
      assert.ok(r.reservedPort !== null && r.reservedPort !== 0, `${backing}: reserved port`);
      assert.equal(
        r.peerSawPort,
        r.reservedPort,
        `${backing}: WskGetLocalAddress reported port ${r.reservedPort} in BOUND, ` +
          `but the peer saw port ${r.peerSawPort}`,
      );
    } else {
      // A backing that cannot honour a fixed port must say so rather than report one.
      assert.equal(r.reserved, "STATUS_NOT_SUPPORTED", `${backing}: ${r.reserved}`);
    }
  }
});

Deno.test("WskGetLocalAddress() completes with STATUS_INVALID_DEVICE_STATE before WskBind", async () => {
  await using socket = await newSocket(AF_INET);
  const c = await D.WskGetLocalAddress(socket);
  assertStatus(c, STATUS_INVALID_DEVICE_STATE);
  assert.equal(c.address, undefined);
  assert.equal(c.information, 0);
});

Deno.test("WskGetRemoteAddress() completes with STATUS_INVALID_DEVICE_STATE before the socket is connected", async () => {
  await using socket = await newSocket(AF_INET);
  const init = await D.WskGetRemoteAddress(socket);
  assertStatus(init, STATUS_INVALID_DEVICE_STATE, "INIT:");
  assert.equal(init.address, undefined);
  assertStatus(await D.WskBind(socket, wildcard(AF_INET)), STATUS_SUCCESS);
  const bound = await D.WskGetRemoteAddress(socket);
  assertStatus(bound, STATUS_INVALID_DEVICE_STATE, "BOUND:");
  assert.equal(bound.address, undefined);
});

Deno.test("WskGetLocalAddress() and WskGetRemoteAddress() complete with STATUS_INVALID_PARAMETER for a malformed IRP", async () => {
  await using pair = await connectedPair(AF_INET);
  for (const irp of [{ timeout: -1 }, { signal: 1 }, "irp"]) {
    assertStatus(
      await settle(
        "WskGetLocalAddress(bad irp)",
        () => D.WskGetLocalAddress(pair.socket, irp as never),
      ),
      STATUS_INVALID_PARAMETER,
    );
    assertStatus(
      await settle(
        "WskGetRemoteAddress(bad irp)",
        () => D.WskGetRemoteAddress(pair.socket, irp as never),
      ),
      STATUS_INVALID_PARAMETER,
    );
  }
});

// ---------------------------------------------------------------------------------------------
// WskConnect: failures

for (const backing of ["deno", "node"] as const) {
  Deno.test(`WskConnect() completes with STATUS_CONNECTION_REFUSED and state FAILED when nothing listens (${backing} backing)`, async () => {
    const port = closedPort(AF_INET);
    await using socket = await boundSocket(AF_INET, wildcard(AF_INET), { backing });
    const c = await D.WskConnect(socket, sockAddr("127.0.0.1", port), 0, { timeout: 5000 });
    assertStatus(c, STATUS_CONNECTION_REFUSED);
    assert.equal(c.information, 0);
    assert.equal(socket.state, "FAILED");
    assert.equal(socket.backing, null);
    // FAILED is terminal: no reconnect, no rebind, no remote address.
    using listener = listenLoopback(AF_INET);
    const again = await D.WskConnect(socket, sockAddr("127.0.0.1", listener.port), 0, {
      timeout: 2000,
    });
    assertStatus(again, STATUS_INVALID_DEVICE_STATE, "connect after FAILED:");
    assertStatus(await D.WskBind(socket, wildcard(AF_INET)), STATUS_INVALID_DEVICE_STATE);
    assertStatus(await D.WskGetRemoteAddress(socket), STATUS_INVALID_DEVICE_STATE);
    assert.equal(socket.state, "FAILED");
  });
}

Deno.test("WskConnect() completes with STATUS_CONNECTION_REFUSED over IPv6", async () => {
  const port = closedPort(AF_INET6);
  await using socket = await boundSocket(AF_INET6);
  const c = await D.WskConnect(socket, sockAddr("::1", port), 0, { timeout: 5000 });
  assertStatus(c, STATUS_CONNECTION_REFUSED);
  assert.equal(socket.state, "FAILED");
});

Deno.test("WskConnect() completes with STATUS_INVALID_DEVICE_STATE before WskBind", async () => {
  using listener = listenLoopback(AF_INET);
  await using socket = await newSocket(AF_INET);
  const c = await D.WskConnect(socket, sockAddr("127.0.0.1", listener.port), 0, { timeout: 2000 });
  assertStatus(c, STATUS_INVALID_DEVICE_STATE);
  assert.equal(socket.state, "INIT");
  const ex = await D.WskConnectEx(socket, sockAddr("127.0.0.1", listener.port), null, 0, {
    timeout: 2000,
  });
  assertStatus(ex, STATUS_INVALID_DEVICE_STATE);
  assert.equal(socket.state, "INIT");
});

Deno.test("WskConnect() completes with STATUS_INVALID_DEVICE_STATE when the socket is already connected", async () => {
  await using pair = await connectedPair(AF_INET);
  using other = listenLoopback(AF_INET);
  const c = await D.WskConnect(pair.socket, sockAddr("127.0.0.1", other.port), 0, {
    timeout: 2000,
  });
  assertStatus(c, STATUS_INVALID_DEVICE_STATE);
  const ex = await D.WskConnectEx(
    pair.socket,
    sockAddr("127.0.0.1", other.port),
    wskBuf(text.encode("x")),
  );
  assertStatus(ex, STATUS_INVALID_DEVICE_STATE);
  assert.equal(pair.socket.state, "ESTAB");
  // The existing connection is untouched.
  assertStatus(await D.WskSend(pair.socket, wskBuf(text.encode("ok"))), STATUS_SUCCESS);
  assert.equal(text.decode(await readExactly(pair.peer, 2)), "ok");
});

Deno.test("WskConnect() completes with STATUS_INVALID_DEVICE_STATE while another connect is pending", async () => {
  using listener = listenLoopback(AF_INET);
  await using socket = await boundSocket(AF_INET);
  const target = sockAddr("127.0.0.1", listener.port);
  const first = D.WskConnect(socket, target, 0, { timeout: 5000 });
  assert.equal(socket.state, "CONNECTING");
  const second = await D.WskConnect(socket, target, 0, { timeout: 5000 });
  assertStatus(second, STATUS_INVALID_DEVICE_STATE);
  using peer = await accepted(listener);
  assertStatus(await first, STATUS_SUCCESS);
  assert.equal(socket.state, "ESTAB");
  assert.deepEqual(
    (await D.WskGetLocalAddress(socket)).address,
    sockAddrFromNetAddr(peer.remoteAddr),
  );
});

Deno.test("WskConnect() completes with STATUS_IO_TIMEOUT when the SYN goes unanswered", async () => {
  await using socket = await boundSocket(AF_INET);
  const { result: c, elapsed } = await connectUnanswered(socket);
  assertStatus(c, STATUS_IO_TIMEOUT);
  assert.equal(c.information, 0);
  assert.ok(elapsed >= 400 && elapsed <= 3000, `completed after ${elapsed.toFixed(0)} ms`);
  assert.equal(socket.state, "FAILED");
  assert.equal(socket.backing, null);
});

Deno.test("WskConnect() on a node-backed socket completes with STATUS_IO_TIMEOUT when the SYN goes unanswered", async () => {
  await using socket = await boundSocket(AF_INET, sockAddr("127.0.0.1", 0));
  const { result: c, elapsed } = await connectUnanswered(socket);
  assertStatus(c, STATUS_IO_TIMEOUT);
  assert.ok(elapsed >= 400 && elapsed <= 3000, `completed after ${elapsed.toFixed(0)} ms`);
  assert.equal(socket.state, "FAILED");
});

for (const backing of ["deno", "node"] as const) {
  Deno.test(`WskConnect() completes with STATUS_CANCELLED when its IRP is cancelled (${backing} backing)`, async () => {
    await using silent = await silentPort();
    await using socket = await boundSocket(AF_INET, wildcard(AF_INET), { backing });
    const controller = new AbortController();
    const started = performance.now();
    const connecting = D.WskConnect(socket, sockAddr("127.0.0.1", silent.port), 0, {
      signal: controller.signal,
      timeout: 10_000,
    });
    assert.equal(socket.state, "CONNECTING");
    const timer = setTimeout(() => controller.abort(), 200);
    const c = await within(connecting, 5000, "WskConnect");
    clearTimeout(timer);
    const elapsed = performance.now() - started;
    assertStatus(c, STATUS_CANCELLED);
    assert.equal(c.information, 0);
    assert.ok(elapsed >= 150 && elapsed <= 3000, `completed after ${elapsed.toFixed(0)} ms`);
    assert.equal(socket.state, "FAILED");
    assert.equal(socket.backing, null);
  });
}

Deno.test("WskConnect() completes with STATUS_CANCELLED at once for an already-aborted IRP", async () => {
  using listener = listenLoopback(AF_INET);
  await using socket = await boundSocket(AF_INET);
  const started = performance.now();
  const c = await D.WskConnect(socket, sockAddr("127.0.0.1", listener.port), 0, {
    signal: AbortSignal.abort(),
  });
  assertStatus(c, STATUS_CANCELLED);
  assert.ok(performance.now() - started < 1000);
  assert.equal(socket.backing, null);
  assert.equal(socket.state, "FAILED");
});

Deno.test("WskCloseSocket() completes a pending WskConnect with STATUS_CANCELLED", async () => {
  await using silent = await silentPort();
  const socket = await boundSocket(AF_INET);
  const connecting = D.WskConnect(socket, sockAddr("127.0.0.1", silent.port), 0, {
    timeout: 10_000,
  });
  assert.equal(socket.state, "CONNECTING");
  assertStatus(await D.WskCloseSocket(socket), STATUS_SUCCESS);
  const c = await within(connecting, 5000, "WskConnect");
  assertStatus(c, STATUS_CANCELLED);
  assert.equal(socket.state, "CLOSED");
});

Deno.test("WskConnect() completes with STATUS_INVALID_ADDRESS for remote port 0 or a wildcard remote", async () => {
  using listener = listenLoopback(AF_INET);
  await using socket = await boundSocket(AF_INET);
  const bad = [sockAddr("127.0.0.1", 0), wildcard(AF_INET, listener.port), wildcard(AF_INET)];
  for (const remote of bad) {
    const c = await settle(
      "WskConnect(bad remote)",
      () => D.WskConnect(socket, remote, 0, { timeout: 2000 }),
    );
    assertStatus(c, STATUS_INVALID_ADDRESS, `${remote.address}:${remote.port}`);
    assert.equal(socket.state, "BOUND", "a rejected address leaves the socket bound");
  }
  // The socket can still connect afterwards.
  const connecting = D.WskConnect(socket, sockAddr("127.0.0.1", listener.port), 0, {
    timeout: 5000,
  });
  using _peer = await accepted(listener);
  assertStatus(await connecting, STATUS_SUCCESS);
});

Deno.test("WskConnect() completes with STATUS_INVALID_ADDRESS for an IPv6 wildcard or port 0", async () => {
  await using socket = await boundSocket(AF_INET6);
  assertStatus(await D.WskConnect(socket, wildcard(AF_INET6, 80)), STATUS_INVALID_ADDRESS);
  assertStatus(await D.WskConnect(socket, sockAddr("::1", 0)), STATUS_INVALID_ADDRESS);
  assert.equal(socket.state, "BOUND");
});

Deno.test("WskConnect() completes with STATUS_INVALID_PARAMETER for a malformed IRP", async () => {
  using listener = listenLoopback(AF_INET);
  await using socket = await boundSocket(AF_INET);
  const target = sockAddr("127.0.0.1", listener.port);
  const irps: unknown[] = [
    { timeout: -1 },
    { timeout: NaN },
    { timeout: Infinity },
    { timeout: "500" },
    { signal: new AbortController() },
    "irp",
    null,
  ];
  for (const irp of irps) {
    const c = await settle(
      `WskConnect(irp ${String(irp)})`,
      () => D.WskConnect(socket, target, 0, irp as never),
    );
    assertStatus(c, STATUS_INVALID_PARAMETER, `irp ${String(JSON.stringify(irp))}:`);
    assert.equal(socket.state, "BOUND");
  }
});

Deno.test("WskConnect() completes with STATUS_INVALID_PARAMETER for a bad remote address or non-zero flags", async () => {
  using listener = listenLoopback(AF_INET);
  await using socket = await boundSocket(AF_INET);
  const badRemotes: unknown[] = [
    null,
    undefined,
    `127.0.0.1:${listener.port}`,
    -1,
    { family: AF_INET, address: "127.0.0.1", port: -5 },
    { family: AF_INET, address: "127.0.0.1", port: 70000 },
    sockAddr("::1", listener.port),
  ];
  for (const remote of badRemotes) {
    const c = await settle(
      `WskConnect(${String(JSON.stringify(remote))})`,
      () => D.WskConnect(socket, remote as never, 0, { timeout: 2000 }),
    );
    assertStatus(c, STATUS_INVALID_PARAMETER, String(JSON.stringify(remote)));
    assert.equal(socket.state, "BOUND");
  }
  for (const flags of [1, -1, 0x100, 2.5, "0"]) {
    const c = await settle(
      `WskConnect(flags ${String(flags)})`,
      () =>
        D.WskConnect(socket, sockAddr("127.0.0.1", listener.port), flags as never, {
          timeout: 2000,
        }),
    );
    assertStatus(c, STATUS_INVALID_PARAMETER, `flags ${String(flags)}:`);
    assert.equal(socket.state, "BOUND");
  }
});

// ---------------------------------------------------------------------------------------------
// WskConnectEx

for (const family of [AF_INET, AF_INET6] as const) {
  const label = family === AF_INET ? "IPv4" : "IPv6";
  Deno.test(`WskConnectEx() connects over ${label} and the first data arrives at the peer`, async () => {
    using listener = listenLoopback(family);
    await using socket = await boundSocket(family);
    const head = text.encode("GET / HTTP/1.0\r\n");
    const tail = text.encode("\r\n");
    const connecting = D.WskConnectEx(
      socket,
      sockAddr(loopbackHost(family), listener.port),
      wskBuf(head, tail),
      0,
      { timeout: 5000 },
    );
    using peer = await accepted(listener);
    const c = await connecting;
    assertStatus(c, STATUS_SUCCESS);
    assert.equal(c.information, head.length + tail.length, "information is the bytes sent");
    assert.equal(socket.state, "ESTAB");
    const got = await readExactly(peer, head.length + tail.length);
    assert.equal(text.decode(got), "GET / HTTP/1.0\r\n\r\n");
    assert.deepEqual(
      (await D.WskGetLocalAddress(socket)).address,
      sockAddrFromNetAddr(peer.remoteAddr),
    );
  });
}

Deno.test("WskConnectEx() sends exactly 65535 bytes, honouring the buffer's offset", async () => {
  using listener = listenLoopback(AF_INET);
  await using socket = await boundSocket(AF_INET, sockAddr("127.0.0.1", 0));
  const backingBytes = pattern(65535 + 3);
  const buffer: WskBuf = { Mdl: { Next: null, bytes: backingBytes }, Offset: 3, Length: 65535 };
  const connecting = D.WskConnectEx(socket, sockAddr("127.0.0.1", listener.port), buffer, 0, {
    timeout: 5000,
  });
  using peer = await accepted(listener);
  const c = await connecting;
  assertStatus(c, STATUS_SUCCESS);
  assert.equal(c.information, 65535);
  assert.equal(socket.backing, "node");
  const got = await readExactly(peer, 65535);
  assert.deepEqual(got, backingBytes.subarray(3));
});

Deno.test("WskConnectEx() without a buffer connects like WskConnect with information 0", async () => {
  using listener = listenLoopback(AF_INET);
  await using socket = await boundSocket(AF_INET);
  const connecting = D.WskConnectEx(socket, sockAddr("127.0.0.1", listener.port), null, 0, {
    timeout: 5000,
  });
  using peer = await accepted(listener);
  const c = await connecting;
  assertStatus(c, STATUS_SUCCESS);
  assert.equal(c.information, 0);
  assert.equal(socket.state, "ESTAB");
  // Nothing was sent: the peer sees our FIN first, with no bytes before it.
  assertStatus(await D.WskDisconnect(socket, null, 0, { timeout: 5000 }), STATUS_SUCCESS);
  const all = await within(readAll(peer), 5000, "readAll");
  assert.equal(all.error, null);
  assert.equal(all.bytes.length, 0);
});

Deno.test("WskConnectEx() completes with STATUS_BUFFER_OVERFLOW for more than 65535 bytes", async () => {
  using listener = listenLoopback(AF_INET);
  await using socket = await boundSocket(AF_INET);
  const target = sockAddr("127.0.0.1", listener.port);
  const big = await settle(
    "WskConnectEx(65536 bytes)",
    () => D.WskConnectEx(socket, target, wskBuf(pattern(65536)), 0, { timeout: 2000 }),
  );
  assertStatus(big, STATUS_BUFFER_OVERFLOW);
  assert.equal(big.information, 0);
  assert.equal(socket.state, "BOUND", "no connection was attempted");
  // Split over two MDLs, the total still counts.
  const split = await D.WskConnectEx(socket, target, wskBuf(pattern(40000), pattern(30000)));
  assertStatus(split, STATUS_BUFFER_OVERFLOW);
  assert.equal(socket.state, "BOUND");
  // A legal buffer still connects, and only its bytes arrive.
  const connecting = D.WskConnectEx(socket, target, wskBuf(text.encode("small")), 0, {
    timeout: 5000,
  });
  using peer = await accepted(listener);
  assertStatus(await connecting, STATUS_SUCCESS);
  assertStatus(await D.WskDisconnect(socket, null, 0, { timeout: 5000 }), STATUS_SUCCESS);
  const all = await within(readAll(peer), 5000, "readAll");
  assert.equal(text.decode(all.bytes), "small");
});

Deno.test("WskConnectEx() completes with STATUS_INVALID_PARAMETER for non-zero flags", async () => {
  using listener = listenLoopback(AF_INET);
  await using socket = await boundSocket(AF_INET);
  for (const flags of [1, 2, 0x80000000, -1, 0.5, "0"]) {
    const c = await settle(`WskConnectEx(flags ${String(flags)})`, () =>
      D.WskConnectEx(
        socket,
        sockAddr("127.0.0.1", listener.port),
        wskBuf(text.encode("x")),
        flags as never,
        { timeout: 2000 },
      ));
    assertStatus(c, STATUS_INVALID_PARAMETER, `flags ${String(flags)}:`);
    assert.equal(socket.state, "BOUND");
  }
});

Deno.test("WskConnectEx() completes with STATUS_INVALID_PARAMETER for a malformed buffer", async () => {
  using listener = listenLoopback(AF_INET);
  await using socket = await boundSocket(AF_INET);
  const bytes = new Uint8Array(8);
  const bad: unknown[] = [
    { Mdl: { Next: null, bytes }, Offset: 0, Length: -1 },
    { Mdl: { Next: null, bytes }, Offset: 0, Length: 9 },
    { Mdl: { Next: null, bytes }, Offset: 8, Length: 1 },
    { Mdl: { Next: null, bytes }, Offset: -1, Length: 1 },
    { Mdl: null, Offset: 0, Length: 4 },
    { Mdl: { Next: null, bytes: "abcd" }, Offset: 0, Length: 4 },
    { Mdl: { Next: null, bytes }, Offset: 0, Length: "4" },
    "data",
  ];
  for (const buffer of bad) {
    const c = await settle(
      "WskConnectEx(bad buffer)",
      () =>
        D.WskConnectEx(socket, sockAddr("127.0.0.1", listener.port), buffer as never, 0, {
          timeout: 2000,
        }),
    );
    assertStatus(c, STATUS_INVALID_PARAMETER, JSON.stringify(buffer));
    assert.equal(socket.state, "BOUND");
  }
});

// ---------------------------------------------------------------------------------------------
// WskSocketConnect

for (const family of [AF_INET, AF_INET6] as const) {
  const label = family === AF_INET ? "IPv4" : "IPv6";
  for (const local of ["wildcard", "loopback"] as const) {
    Deno.test(`WskSocketConnect() returns a connected ${label} socket from a ${local} local address`, async () => {
      using listener = listenLoopback(family);
      const localAddress = local === "wildcard"
        ? wildcard(family)
        : sockAddr(loopbackHost(family), 0);
      const connecting = socketConnect(
        localAddress,
        sockAddr(loopbackHost(family), listener.port),
        {
          context: "my-context",
          options: { timeout: 5000 },
        },
      );
      using peer = await accepted(listener);
      const made = await connecting;
      assertStatus(made, STATUS_SUCCESS);
      const socket = made.socket;
      assert.ok(socket);
      try {
        assert.equal(socket.state, "ESTAB");
        assert.equal(socket.family, family);
        assert.equal(socket.context, "my-context");
        assert.equal(socket.backing, local === "wildcard" ? "deno" : "node");
        const localAddr = await D.WskGetLocalAddress(socket);
        assertStatus(localAddr, STATUS_SUCCESS);
        assert.deepEqual(localAddr.address, sockAddrFromNetAddr(peer.remoteAddr));
        const remoteAddr = await D.WskGetRemoteAddress(socket);
        assertStatus(remoteAddr, STATUS_SUCCESS);
        assert.deepEqual(remoteAddr.address, sockAddr(loopbackHost(family), listener.port));
        assert.deepEqual(remoteAddr.address, sockAddrFromNetAddr(peer.localAddr));
      } finally {
        await closeSocket(socket);
      }
    });
  }
}

Deno.test("WskSocketConnect() connects from a specific local port", async () => {
  using listener = listenLoopback(AF_INET);
  const port = freePort();
  const connecting = socketConnect(
    sockAddr("127.0.0.1", port),
    sockAddr("127.0.0.1", listener.port),
    { options: { timeout: 5000 } },
  );
  using peer = await accepted(listener);
  const made = await connecting;
  assertStatus(made, STATUS_SUCCESS);
  await using socket = made.socket!;
  assert.equal(peer.remoteAddr.port, port);
  assert.deepEqual((await D.WskGetLocalAddress(socket)).address, sockAddr("127.0.0.1", port));
});

Deno.test("WskSocketConnect() completes with STATUS_CONNECTION_REFUSED and returns no socket", async () => {
  for (const family of [AF_INET, AF_INET6] as const) {
    const port = closedPort(family);
    const made = await socketConnect(wildcard(family), sockAddr(loopbackHost(family), port), {
      options: { timeout: 5000 },
    });
    assertStatus(made, STATUS_CONNECTION_REFUSED);
    assert.equal(made.socket, undefined);
    assert.equal(made.information, 0);
  }
});

Deno.test("WskSocketConnect() completes with STATUS_ADDRESS_ALREADY_EXISTS and no socket when the local port is taken", async () => {
  using holder = listenLoopback(AF_INET);
  using target = listenLoopback(AF_INET);
  const made = await socketConnect(
    sockAddr("127.0.0.1", holder.port),
    sockAddr("127.0.0.1", target.port),
    { options: { timeout: 5000 } },
  );
  assertStatus(made, STATUS_ADDRESS_ALREADY_EXISTS);
  assert.equal(made.socket, undefined);
});

Deno.test("WskSocketConnect() completes with STATUS_IO_TIMEOUT and no socket when the SYN goes unanswered", async () => {
  await using silent = await silentPort();
  const target = sockAddr("127.0.0.1", silent.port);
  const { result: made, elapsed } = await timed(
    "WskSocketConnect",
    () => socketConnect(wildcard(AF_INET), target, { options: { timeout: 500 } }),
  );
  assertStatus(made, STATUS_IO_TIMEOUT);
  assert.equal(made.socket, undefined);
  assert.ok(elapsed >= 400 && elapsed <= 3000, `completed after ${elapsed.toFixed(0)} ms`);
});

Deno.test("WskSocketConnect() completes with STATUS_CANCELLED and no socket for an already-aborted IRP", async () => {
  using listener = listenLoopback(AF_INET);
  const made = await socketConnect(wildcard(AF_INET), sockAddr("127.0.0.1", listener.port), {
    options: { signal: AbortSignal.abort() },
  });
  assertStatus(made, STATUS_CANCELLED);
  assert.equal(made.socket, undefined);
});

Deno.test("WskSocketConnect() completes with STATUS_INVALID_PARAMETER when the families differ", async () => {
  using listener = listenLoopback(AF_INET);
  using listener6 = listenLoopback(AF_INET6);
  const pairs: Array<[SockAddr, SockAddr]> = [
    [wildcard(AF_INET), sockAddr("::1", listener6.port)],
    [wildcard(AF_INET6), sockAddr("127.0.0.1", listener.port)],
    [sockAddr("::1", 0), sockAddr("127.0.0.1", listener.port)],
  ];
  for (const [local, remote] of pairs) {
    const made = await settle(
      "WskSocketConnect(mixed families)",
      () => socketConnect(local, remote, { options: { timeout: 2000 } }),
    );
    assertStatus(made, STATUS_INVALID_PARAMETER, `${local.address} -> ${remote.address}`);
    assert.equal(made.socket, undefined);
  }
});

Deno.test("WskSocketConnect() completes with a status, never an exception, for bad arguments", async () => {
  using listener = listenLoopback(AF_INET);
  const remote = sockAddr("127.0.0.1", listener.port);
  const local = wildcard(AF_INET);
  const badRemote = { family: AF_INET, address: "127.0.0.1", port: -1 };
  const cases: Array<[string, number, () => Promise<WskSocketCompletion>]> = [
    ["flags 1", STATUS_INVALID_PARAMETER, () => socketConnect(local, remote, { flags: 1 })],
    ["flags -1", STATUS_INVALID_PARAMETER, () => socketConnect(local, remote, { flags: -1 })],
    ["null local", STATUS_INVALID_PARAMETER, () => socketConnect(null as never, remote)],
    [
      "string remote",
      STATUS_INVALID_PARAMETER,
      () => socketConnect(local, `127.0.0.1:${listener.port}` as never),
    ],
    [
      "negative remote port",
      STATUS_INVALID_PARAMETER,
      () => socketConnect(local, badRemote as never),
    ],
    [
      "timeout -1",
      STATUS_INVALID_PARAMETER,
      () => socketConnect(local, remote, { options: { timeout: -1 } }),
    ],
    [
      "null client",
      STATUS_INVALID_PARAMETER,
      () => socketConnect(local, remote, { client: null as never }),
    ],
    ["SOCK_DGRAM", STATUS_NOT_SUPPORTED, () => socketConnect(local, remote, { type: SOCK_DGRAM })],
    ["remote port 0", STATUS_INVALID_ADDRESS, () => socketConnect(local, sockAddr("127.0.0.1", 0))],
    [
      "deno backing with a specific local address",
      STATUS_NOT_SUPPORTED,
      () => socketConnect(sockAddr("127.0.0.1", 0), remote, { options: { backing: "deno" } }),
    ],
  ];
  for (const [name, expected, run] of cases) {
    const made = await settle(`WskSocketConnect(${name})`, run);
    assertStatus(made, expected, `${name}:`);
    assert.equal(made.socket, undefined, name);
  }
});
// ---------------------------------------------------------------------------------------------
// Closed sockets and things that are not sockets

Deno.test("every connection dispatch call on a closed socket completes with STATUS_INVALID_HANDLE", async () => {
  using listener = listenLoopback(AF_INET);
  const target = sockAddr("127.0.0.1", listener.port);
  const fresh = await newSocket(AF_INET);
  assertStatus(await D.WskCloseSocket(fresh), STATUS_SUCCESS);
  const bound = await boundSocket(AF_INET);
  assertStatus(await D.WskCloseSocket(bound), STATUS_SUCCESS);
  const pair = await connectedPair(AF_INET);
  assertStatus(await D.WskCloseSocket(pair.socket), STATUS_SUCCESS);
  await pair[Symbol.asyncDispose]();

  for (const socket of [fresh, bound, pair.socket]) {
    assert.equal(socket.state, "CLOSED");
    const calls: Array<[string, () => Promise<WskCompletion>]> = [
      ["WskBind", () => D.WskBind(socket, wildcard(AF_INET))],
      ["WskConnect", () => D.WskConnect(socket, target, 0, { timeout: 1000 })],
      [
        "WskConnectEx",
        () => D.WskConnectEx(socket, target, wskBuf(text.encode("x")), 0, { timeout: 1000 }),
      ],
      ["WskGetLocalAddress", () => D.WskGetLocalAddress(socket)],
      ["WskGetRemoteAddress", () => D.WskGetRemoteAddress(socket)],
      ["WskSend", () => D.WskSend(socket, wskBuf(text.encode("x")))],
      ["WskReceive", () => D.WskReceive(socket, wskBuf(new Uint8Array(4)), 0, { timeout: 1000 })],
      ["WskDisconnect", () => D.WskDisconnect(socket, null, 0, { timeout: 1000 })],
      [
        "WskControlSocket",
        () => D.WskControlSocket(socket, WskGetOption, 1, 6, null, new Uint8Array(4)),
      ],
      ["WskCloseSocket", () => D.WskCloseSocket(socket)],
    ];
    for (const [name, run] of calls) {
      const c = await settle(`${name} on a closed socket`, run);
      assertStatus(
        c,
        STATUS_INVALID_HANDLE,
        `${name} (closed from ${
          socket === fresh ? "INIT" : socket === bound ? "BOUND" : "ESTAB"
        }):`,
      );
      assert.equal(c.information, 0);
    }
    assert.equal(socket.state, "CLOSED");
  }
});

Deno.test("connection dispatch calls on a value that is not a connection socket complete with STATUS_INVALID_HANDLE", async () => {
  const listen = (await wskSocket({ flags: WSK_FLAG_LISTEN_SOCKET })).listenSocket!;
  const basic = (await wskSocket({ flags: WSK_FLAG_BASIC_SOCKET })).basicSocket!;
  try {
    const target = sockAddr("127.0.0.1", 9);
    const fakes: Array<[string, unknown]> = [
      ["null", null],
      ["undefined", undefined],
      ["a plain object", {}],
      ["an object shaped like a socket", { state: "INIT", Dispatch: D, family: AF_INET }],
      ["a string", "socket"],
      ["a number", 42],
      ["a listening socket", listen],
      ["a basic socket", basic],
    ];
    for (const [label, fake] of fakes) {
      const s = fake as never;
      const calls: Array<[string, () => Promise<WskCompletion>]> = [
        ["WskBind", () => D.WskBind(s, wildcard(AF_INET))],
        ["WskConnect", () => D.WskConnect(s, target)],
        ["WskConnectEx", () => D.WskConnectEx(s, target, null)],
        ["WskGetLocalAddress", () => D.WskGetLocalAddress(s)],
        ["WskGetRemoteAddress", () => D.WskGetRemoteAddress(s)],
        ["WskCloseSocket", () => D.WskCloseSocket(s)],
      ];
      for (const [name, run] of calls) {
        const c = await settle(`${name}(${label})`, run);
        assertStatus(c, STATUS_INVALID_HANDLE, `${name}(${label}):`);
      }
    }
    // The real sockets passed as fakes were not touched.
    assert.equal(listen.state, "INIT");
    assert.equal(basic.state, "OPEN");
  } finally {
    await listen.Dispatch.WskCloseSocket(listen);
    await basic.Dispatch.WskCloseSocket(basic);
  }
});

// ---------------------------------------------------------------------------------------------
// An external peer

// Listens on 127.0.0.1:0, prints its port, accepts one connection, prints the peer address it
// saw, reads to EOF and prints the bytes as hex. Every wait has a 10 s limit.
const PYTHON_PEER = PY_LISTEN + `
conn, addr = srv.accept()
conn.settimeout(10)
print(addr[0], addr[1], flush=True)
data = b""
while True:
    chunk = conn.recv(65536)
    if not chunk:
        break
    data += chunk
print(data.hex(), flush=True)
conn.close()
srv.close()
`;

for (const backing of ["deno", "node"] as const) {
  Deno.test(`WskConnectEx() reaches a python3 peer that sees WskGetLocalAddress and the bytes sent (${backing} backing)`, async () => {
    await using python = await PythonPeer.start(PYTHON_PEER, ["127.0.0.1"]);
    await using socket = await newSocket(AF_INET, { backing });
    const port = python.port;
    assert.ok(Number.isInteger(port) && port > 0, `python printed port ${port}`);
    const local = backing === "deno" ? wildcard(AF_INET) : sockAddr("127.0.0.1", 0);
    assertStatus(await D.WskBind(socket, local), STATUS_SUCCESS);
    const payload = pattern(3000, 7);
    const c = await D.WskConnectEx(socket, sockAddr("127.0.0.1", port), wskBuf(payload), 0, {
      timeout: 5000,
    });
    assertStatus(c, STATUS_SUCCESS);
    assert.equal(c.information, payload.length);
    assert.equal(socket.backing, backing);
    const mine = await D.WskGetLocalAddress(socket);
    assertStatus(mine, STATUS_SUCCESS);
    const [seenHost, seenPort] = (await python.nextLine()).split(" ");
    assert.deepEqual(sockAddr(seenHost!, Number(seenPort)), mine.address);
    const theirs = await D.WskGetRemoteAddress(socket);
    assert.deepEqual(theirs.address, sockAddr("127.0.0.1", port));
    // A graceful disconnect lets python's read loop end; it prints everything it got.
    assertStatus(await D.WskDisconnect(socket, null, 0, { timeout: 5000 }), STATUS_SUCCESS);
    const received = await python.nextLine();
    const expected = hex(payload);
    assert.equal(received.length, expected.length, "python received a different byte count");
    assert.equal(received, expected);
    assert.equal(await python.exitCode(), 0, python.stderr.text());
    await closeSocket(socket);
  });
}

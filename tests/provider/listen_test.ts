import assert from "node:assert/strict";
import {
  type AddressFamily,
  AF_INET,
  AF_INET6,
  NPI_WSK_INTERFACE_ID,
  type NTSTATUS,
  SIO_ADDRESS_LIST_QUERY,
  SIO_WSK_QUERY_IDEAL_SEND_BACKLOG,
  SO_KEEPALIVE,
  SO_RCVBUF,
  SO_REUSEADDR,
  SO_WSK_EVENT_CALLBACK,
  type SockAddr,
  sockAddr,
  sockAddrFromNetAddr,
  SOL_SOCKET,
  STATUS_ADDRESS_ALREADY_EXISTS,
  STATUS_CANCELLED,
  STATUS_INVALID_DEVICE_STATE,
  STATUS_INVALID_HANDLE,
  STATUS_INVALID_PARAMETER,
  STATUS_IO_TIMEOUT,
  STATUS_NOT_SUPPORTED,
  STATUS_REQUEST_NOT_ACCEPTED,
  STATUS_SUCCESS,
  WSK_EVENT_ACCEPT,
  WSK_EVENT_DISABLE,
  WSK_EVENT_DISCONNECT,
  WSK_EVENT_RECEIVE,
  WSK_FLAG_BASIC_SOCKET,
  WSK_FLAG_LISTEN_SOCKET,
  WSK_FLAG_WAITALL,
  type WskAcceptCompletion,
  type WskAcceptEventResult,
  wskBuf,
  type WskClientConnectionDispatch,
  type WskClientListenDispatch,
  type WskConnectionSocket,
  WskGetOption,
  WskIoctl,
  type WskListenSocket,
  WskSetOption,
} from "../../provider/mod.ts";
import {
  assertStatus,
  cancelAfter,
  closedPort,
  enableEvents,
  listenLoopback,
  loopbackHost,
  npi,
  readExactly,
  receive,
  sleep,
  text,
  ulong,
  waitFor,
  wskSocket,
} from "../_helpers.ts";

// ---------------------------------------------------------------------------------------------
// Local helpers

/** A new listening socket (not bound). */
async function newListenSocket(
  family: AddressFamily = AF_INET,
  dispatch: WskClientListenDispatch | null = null,
  context: unknown = undefined,
): Promise<WskListenSocket> {
  const made = await wskSocket({ family, flags: WSK_FLAG_LISTEN_SOCKET, context, dispatch });
  assertStatus(made, STATUS_SUCCESS, "WskSocket(listen):");
  assert.ok(made.listenSocket, "WskSocket returned a listenSocket");
  assert.equal(made.socket, undefined);
  assert.equal(made.listenSocket.state, "INIT");
  return made.listenSocket;
}

/** A listening socket bound to loopback port 0, and the port the kernel gave it. */
async function boundListenSocket(
  family: AddressFamily = AF_INET,
  dispatch: WskClientListenDispatch | null = null,
  context: unknown = undefined,
): Promise<{ listen: WskListenSocket; port: number }> {
  const listen = await newListenSocket(family, dispatch, context);
  assertStatus(await listen.Dispatch.WskBind(listen, sockAddr(loopbackHost(family), 0)), 0);
  const local = await listen.Dispatch.WskGetLocalAddress(listen);
  assertStatus(local, STATUS_SUCCESS);
  assert.ok(local.address && local.address.port > 0);
  return { listen, port: local.address.port };
}

function connectTo(family: AddressFamily, port: number): Promise<Deno.TcpConn> {
  return Deno.connect({ hostname: loopbackHost(family), port });
}

/** Asserts a successful accept and returns its socket. */
function acceptedSocket(c: WskAcceptCompletion): WskConnectionSocket {
  assertStatus(c, STATUS_SUCCESS, "WskAccept:");
  assert.ok(c.socket, "the completion carries the socket");
  return c.socket;
}

function assertSameEndpoint(actual: SockAddr | undefined, expected: Deno.NetAddr, what: string) {
  assert.deepEqual(actual, sockAddrFromNetAddr(expected), what);
}

/**
 * Reads a Deno conn to its end within `ms`. On the deadline the conn is closed (which ends the
 * read) and `timedOut` is set. The conn is closed on return either way.
 */
async function readToEnd(
  conn: Deno.Conn,
  ms: number,
): Promise<{ bytes: number; error: unknown; timedOut: boolean }> {
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    conn.close();
  }, ms);
  let bytes = 0;
  let error: unknown = null;
  try {
    const buf = new Uint8Array(4096);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      bytes += n;
    }
  } catch (e) {
    error = e;
  } finally {
    clearTimeout(timer);
  }
  if (!timedOut) conn.close();
  return { bytes, error, timedOut };
}

/** Records WskAcceptEvent calls and answers them with `answer`. */
function acceptRecorder(answer: (socket: WskConnectionSocket | null) => WskAcceptEventResult) {
  const calls: {
    context: unknown;
    flags: number;
    local: SockAddr;
    remote: SockAddr;
    socket: WskConnectionSocket | null;
    stateDuringCall: string | undefined;
  }[] = [];
  const dispatch: WskClientListenDispatch = {
    WskAcceptEvent(context, flags, local, remote, socket) {
      calls.push({ context, flags, local, remote, socket, stateDuringCall: socket?.state });
      return answer(socket);
    },
  };
  return {
    dispatch,
    calls,
    /** Closes every socket the client took. */
    async close() {
      for (const call of calls) {
        if (call.socket && call.socket.state !== "CLOSED") {
          await call.socket.Dispatch.WskCloseSocket(call.socket);
        }
      }
    },
  };
}

/**
 * A listening socket bound to loopback port 0 whose WskAcceptEvent calls are recorded and
 * answered with `answer`. Dispose closes the sockets the client took, then the listener.
 */
async function recordingListener(
  family: AddressFamily,
  answer: (socket: WskConnectionSocket | null) => WskAcceptEventResult,
  context: unknown = undefined,
) {
  const events = acceptRecorder(answer);
  const { listen, port } = await boundListenSocket(family, events.dispatch, context);
  return {
    listen,
    port,
    events,
    async [Symbol.asyncDispose]() {
      await events.close();
      await listen[Symbol.asyncDispose]();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// WskBind and WskGetLocalAddress

for (const family of [AF_INET, AF_INET6] as const) {
  const name = family === AF_INET ? "IPv4" : "IPv6";
  Deno.test(`WskBind() on a listening socket starts listening on the kernel's port (${name})`, async () => {
    await using listen = await newListenSocket(family);
    const d = listen.Dispatch;
    assertStatus(await d.WskBind(listen, sockAddr(loopbackHost(family), 0)), STATUS_SUCCESS);
    assert.equal(listen.state, "LISTENING");
    const local = await d.WskGetLocalAddress(listen);
    assertStatus(local, STATUS_SUCCESS);
    assert.equal(local.information, 0);
    assert.ok(local.address);
    assert.equal(local.address.family, family);
    assert.equal(local.address.address, loopbackHost(family));
    assert.ok(local.address.port > 0, "the kernel chose a port");
    // A plain host connect succeeds: the kernel is listening there.
    using client = await connectTo(family, local.address.port);
    assert.equal(client.remoteAddr.port, local.address.port);
  });
}

Deno.test("WskBind() on a listening socket keeps a port given explicitly", async () => {
  const port = closedPort(AF_INET);
  await using listen = await newListenSocket(AF_INET);
  assertStatus(await listen.Dispatch.WskBind(listen, sockAddr("127.0.0.1", port)), 0);
  const local = await listen.Dispatch.WskGetLocalAddress(listen);
  assert.deepEqual(local.address, sockAddr("127.0.0.1", port));
  using client = await connectTo(AF_INET, port);
  assert.equal(client.remoteAddr.port, port);
});

Deno.test("WskBind() on a listening socket completes with STATUS_ADDRESS_ALREADY_EXISTS when the port is taken", async () => {
  for (const family of [AF_INET, AF_INET6] as const) {
    using holder = listenLoopback(family);
    await using listen = await newListenSocket(family);
    const d = listen.Dispatch;
    const c = await d.WskBind(listen, sockAddr(loopbackHost(family), holder.port));
    assertStatus(c, STATUS_ADDRESS_ALREADY_EXISTS);
    assert.equal(c.information, 0);
    assert.equal(listen.state, "INIT", "a failed bind leaves the socket unbound");
    assertStatus(await d.WskGetLocalAddress(listen), STATUS_INVALID_DEVICE_STATE);
    assertStatus(
      await d.WskAccept(listen, 0, undefined, null, { timeout: 50 }),
      STATUS_INVALID_DEVICE_STATE,
    );
    // It can still be bound elsewhere.
    assertStatus(await d.WskBind(listen, sockAddr(loopbackHost(family), 0)), STATUS_SUCCESS);
    assert.equal(listen.state, "LISTENING");
  }
});

Deno.test("WskBind() on a listening socket refuses a second bind and a bad address", async () => {
  await using listen = await newListenSocket(AF_INET);
  const d = listen.Dispatch;
  assertStatus(await d.WskBind(listen, sockAddr("::1", 0)), STATUS_INVALID_PARAMETER);
  assertStatus(await d.WskBind(listen, { nonsense: true } as never), STATUS_INVALID_PARAMETER);
  assertStatus(await d.WskBind(listen, sockAddr("127.0.0.1", 0), 1), STATUS_INVALID_PARAMETER);
  assert.equal(listen.state, "INIT");
  assertStatus(await d.WskBind(listen, sockAddr("127.0.0.1", 0)), STATUS_SUCCESS);
  assertStatus(await d.WskBind(listen, sockAddr("127.0.0.1", 0)), STATUS_INVALID_DEVICE_STATE);
});

Deno.test("WskGetLocalAddress() on a listening socket completes with STATUS_INVALID_DEVICE_STATE before bind", async () => {
  await using listen = await newListenSocket(AF_INET6);
  const c = await listen.Dispatch.WskGetLocalAddress(listen);
  assertStatus(c, STATUS_INVALID_DEVICE_STATE);
  assert.equal(c.address, undefined);
});

// ---------------------------------------------------------------------------------------------
// WskAccept

for (const family of [AF_INET, AF_INET6] as const) {
  const name = family === AF_INET ? "IPv4" : "IPv6";
  Deno.test(`WskAccept() returns a connected socket whose addresses match the client's view (${name})`, async () => {
    const { listen, port } = await boundListenSocket(family);
    await using _listen = listen;
    const context = { name: "accepted" };
    const accepting = listen.Dispatch.WskAccept(listen, 0, context, null, { timeout: 5000 });
    using client = await connectTo(family, port);
    const c = await accepting;
    await using socket = acceptedSocket(c);
    assert.equal(c.information, 0);
    assert.equal(socket.state, "ESTAB");
    assert.equal(socket.family, family);
    assert.equal(socket.context, context);
    assertSameEndpoint(c.localAddress, client.remoteAddr, "local address = client's remote");
    assertSameEndpoint(c.remoteAddress, client.localAddr, "remote address = client's local");
    const d = socket.Dispatch;
    const local = await d.WskGetLocalAddress(socket);
    assertStatus(local, STATUS_SUCCESS);
    assertSameEndpoint(local.address, client.remoteAddr, "WskGetLocalAddress");
    const remote = await d.WskGetRemoteAddress(socket);
    assertStatus(remote, STATUS_SUCCESS);
    assertSameEndpoint(remote.address, client.localAddr, "WskGetRemoteAddress");
    assert.equal(local.address?.port, port);

    // Data flows both ways.
    const sent = await d.WskSend(socket, wskBuf(text.encode("from wsk")));
    assertStatus(sent, STATUS_SUCCESS);
    assert.equal(sent.information, 8);
    assert.equal(text.decode(await readExactly(client, 8)), "from wsk");
    await client.write(text.encode("from client"));
    const got = await receive(socket, 11, WSK_FLAG_WAITALL);
    assertStatus(got.completion, STATUS_SUCCESS);
    assert.equal(got.completion.information, 11);
    assert.equal(text.decode(got.bytes), "from client");
  });
}

Deno.test("WskAccept() completes with STATUS_INVALID_DEVICE_STATE before bind", async () => {
  await using listen = await newListenSocket(AF_INET);
  const c = await listen.Dispatch.WskAccept(listen, 0, undefined, null, { timeout: 1000 });
  assertStatus(c, STATUS_INVALID_DEVICE_STATE);
  assert.equal(c.socket, undefined);
  assert.equal(c.information, 0);
});

Deno.test("WskAccept() completes with STATUS_INVALID_PARAMETER for unknown flags", async () => {
  const { listen } = await boundListenSocket(AF_INET);
  await using _listen = listen;
  const c = await listen.Dispatch.WskAccept(listen, 0x1, undefined, null, { timeout: 1000 });
  assertStatus(c, STATUS_INVALID_PARAMETER);
  assert.equal(c.socket, undefined);
});

Deno.test("WskAccept() completes with STATUS_IO_TIMEOUT when no connection arrives in time", async () => {
  const { listen, port } = await boundListenSocket(AF_INET);
  await using _listen = listen;
  const started = Date.now();
  const c = await listen.Dispatch.WskAccept(listen, 0, undefined, null, { timeout: 100 });
  assertStatus(c, STATUS_IO_TIMEOUT);
  assert.equal(c.information, 0);
  assert.equal(c.socket, undefined);
  assert.ok(Date.now() - started >= 90, "it waited for the deadline");

  // The connection that arrives later is not lost: the next WskAccept gets it.
  using client = await connectTo(AF_INET, port);
  const next = await listen.Dispatch.WskAccept(listen, 0, undefined, null, { timeout: 5000 });
  await using socket = acceptedSocket(next);
  assertSameEndpoint(next.remoteAddress, client.localAddr, "the late connection");
  assert.equal(socket.state, "ESTAB");
});

Deno.test("WskAccept() completes with STATUS_CANCELLED when its IRP is cancelled, and the next WskAccept gets the connection", async () => {
  const { listen, port } = await boundListenSocket(AF_INET6);
  await using _listen = listen;
  const c = await cancelAfter(
    20,
    (irp) => listen.Dispatch.WskAccept(listen, 0, undefined, null, irp),
  );
  assertStatus(c, STATUS_CANCELLED);
  assert.equal(c.information, 0);
  assert.equal(c.socket, undefined);

  using client = await connectTo(AF_INET6, port);
  // Give the provider time to take the connection from the kernel for the cancelled request.
  await sleep(50);
  const next = await listen.Dispatch.WskAccept(listen, 0, undefined, null, { timeout: 5000 });
  await using socket = acceptedSocket(next);
  assertSameEndpoint(next.remoteAddress, client.localAddr, "the connection after the cancel");
  await client.write(text.encode("not lost"));
  const got = await receive(socket, 8, WSK_FLAG_WAITALL);
  assertStatus(got.completion, STATUS_SUCCESS);
  assert.equal(text.decode(got.bytes), "not lost");

  // An IRP cancelled before the call never waits.
  const early = new AbortController();
  early.abort();
  const never = await listen.Dispatch.WskAccept(listen, 0, undefined, null, {
    signal: early.signal,
  });
  assertStatus(never, STATUS_CANCELLED);
});

Deno.test("WskCloseSocket() on a listening socket cancels a pending WskAccept", async () => {
  const { listen } = await boundListenSocket(AF_INET);
  const pending = listen.Dispatch.WskAccept(listen, 0, undefined, null, { timeout: 5000 });
  await sleep(20);
  assertStatus(await listen.Dispatch.WskCloseSocket(listen), STATUS_SUCCESS);
  const c = await pending;
  assertStatus(c, STATUS_CANCELLED);
  assert.equal(c.socket, undefined);
  assert.equal(listen.state, "CLOSED");
  // Everything after the close is refused with STATUS_INVALID_HANDLE.
  assertStatus(await listen.Dispatch.WskCloseSocket(listen), STATUS_INVALID_HANDLE);
  assertStatus(
    await listen.Dispatch.WskAccept(listen, 0, undefined, null, { timeout: 100 }),
    STATUS_INVALID_HANDLE,
  );
  assertStatus(await listen.Dispatch.WskGetLocalAddress(listen), STATUS_INVALID_HANDLE);
  assertStatus(await enableEvents(listen, WSK_EVENT_ACCEPT), STATUS_INVALID_HANDLE);
});

for (const waiting of ["idle", "with a WskAccept pending"] as const) {
  Deno.test(`WskCloseSocket() on a listening socket (${waiting}) stops the kernel listening before it completes`, async () => {
    const { listen, port } = await boundListenSocket(AF_INET);
    const pending = waiting === "idle"
      ? null
      : listen.Dispatch.WskAccept(listen, 0, undefined, null, { timeout: 5000 });
    await sleep(20);
    assertStatus(await listen.Dispatch.WskCloseSocket(listen), STATUS_SUCCESS);
    // Right after the close completed, a connect must be refused, not handshaken and reset.
    const refused = await connectTo(AF_INET, port).then(
      (conn) => {
        conn.close();
        return null;
      },
      (error: unknown) => error,
    );
    if (pending) assertStatus(await pending, STATUS_CANCELLED);
    assert.ok(
      refused instanceof Deno.errors.ConnectionRefused,
      `expected ConnectionRefused right after WskCloseSocket, got ${String(refused)}`,
    );
  });
}

Deno.test("WskAccept() several pending at once each get a connection", async () => {
  const { listen, port } = await boundListenSocket(AF_INET);
  await using _listen = listen;
  const count = 4;
  const pending = Array.from(
    { length: count },
    (_, i) => listen.Dispatch.WskAccept(listen, 0, { index: i }, null, { timeout: 5000 }),
  );
  const clients: Deno.TcpConn[] = [];
  try {
    for (let i = 0; i < count; i++) clients.push(await connectTo(AF_INET, port));
    const completions = await Promise.all(pending);
    const sockets = completions.map(acceptedSocket);
    try {
      const remotePorts = completions.map((c) => c.remoteAddress?.port).sort();
      const clientPorts = clients.map((c) => c.localAddr.port).sort();
      assert.deepEqual(remotePorts, clientPorts, "each client was accepted exactly once");
      assert.equal(new Set(sockets).size, count);
      // Each socket keeps the context of the WskAccept that returned it.
      assert.deepEqual(sockets.map((s) => s.context), pending.map((_, i) => ({ index: i })));
    } finally {
      for (const socket of sockets) await socket.Dispatch.WskCloseSocket(socket);
    }
  } finally {
    for (const client of clients) client.close();
  }
});

Deno.test("WskAccept() delivers a connection that is already waiting at once", async () => {
  const { listen, port } = await boundListenSocket(AF_INET);
  await using _listen = listen;
  using client = await connectTo(AF_INET, port);
  await sleep(20);
  const c = await listen.Dispatch.WskAccept(listen, 0, undefined, null, { timeout: 5000 });
  await using socket = acceptedSocket(c);
  assertSameEndpoint(c.remoteAddress, client.localAddr, "the waiting connection");
  assert.equal(socket.state, "ESTAB");
});

Deno.test("WskAccept() sockets do not inherit connection events enabled on the listener", async () => {
  const { listen, port } = await boundListenSocket(AF_INET);
  await using _listen = listen;
  assertStatus(await enableEvents(listen, WSK_EVENT_RECEIVE), STATUS_SUCCESS);
  const indications: number[] = [];
  const dispatch: WskClientConnectionDispatch = {
    WskReceiveEvent(_context, _flags, _list, bytes) {
      indications.push(bytes);
      return STATUS_SUCCESS;
    },
  };
  const accepting = listen.Dispatch.WskAccept(listen, 0, undefined, dispatch, { timeout: 5000 });
  using client = await connectTo(AF_INET, port);
  await using socket = acceptedSocket(await accepting);
  await client.write(text.encode("for receive"));
  await sleep(150);
  assert.deepEqual(indications, [], "events start disabled on a WskAccept socket");
  const got = await receive(socket, 11, WSK_FLAG_WAITALL);
  assertStatus(got.completion, STATUS_SUCCESS);
  assert.equal(text.decode(got.bytes), "for receive");
});

// ---------------------------------------------------------------------------------------------
// WskAcceptEvent

for (const family of [AF_INET, AF_INET6] as const) {
  const name = family === AF_INET ? "IPv4" : "IPv6";
  Deno.test(`WskAcceptEvent() receives the addresses and a connected socket (${name})`, async () => {
    const listenContext = { name: "listener" };
    await using served = await recordingListener(family, () => STATUS_SUCCESS, listenContext);
    const { listen, port, events } = served;
    assertStatus(await enableEvents(listen, WSK_EVENT_ACCEPT), STATUS_SUCCESS);
    using client = await connectTo(family, port);
    await waitFor(() => events.calls.length === 1, "the accept event");
    const call = events.calls[0]!;
    assert.equal(call.context, listenContext);
    assert.equal(call.flags, 0);
    assertSameEndpoint(call.local, client.remoteAddr, "local address");
    assertSameEndpoint(call.remote, client.localAddr, "remote address");
    assert.ok(call.socket);
    assert.equal(call.stateDuringCall, "ESTAB");
    const socket = call.socket;
    assert.equal(socket.state, "ESTAB");
    const remote = await socket.Dispatch.WskGetRemoteAddress(socket);
    assertSameEndpoint(remote.address, client.localAddr, "WskGetRemoteAddress");
    const sent = await socket.Dispatch.WskSend(socket, wskBuf(text.encode("taken")));
    assertStatus(sent, STATUS_SUCCESS);
    assert.equal(text.decode(await readExactly(client, 5)), "taken");
  });
}

Deno.test("WskAcceptEvent() is not called while a WskAccept is queued", async () => {
  await using served = await recordingListener(AF_INET, () => STATUS_SUCCESS);
  const { listen, port, events } = served;
  assertStatus(await enableEvents(listen, WSK_EVENT_ACCEPT), STATUS_SUCCESS);
  const accepting = listen.Dispatch.WskAccept(listen, 0, undefined, null, { timeout: 5000 });
  using first = await connectTo(AF_INET, port);
  await using socket = acceptedSocket(await accepting);
  assertSameEndpoint(
    (await socket.Dispatch.WskGetRemoteAddress(socket)).address,
    first.localAddr,
    "first",
  );
  assert.equal(events.calls.length, 0, "the queued WskAccept was served first");
  using second = await connectTo(AF_INET, port);
  await waitFor(() => events.calls.length === 1, "the accept event for the second client");
  assertSameEndpoint(events.calls[0]!.remote, second.localAddr, "second");
});

Deno.test("WskAcceptEvent() inherited events: the accepted socket indicates data to the dispatch the callback returned", async () => {
  const socketContext = { name: "per-connection" };
  const received: { context: unknown; bytes: string }[] = [];
  const disconnects: { context: unknown; flags: number }[] = [];
  const connectionDispatch: WskClientConnectionDispatch = {
    WskReceiveEvent(context, _flags, list, bytesIndicated) {
      let bytes = "";
      for (let item = list; item !== null; item = item.Next) {
        const b = item.Buffer;
        bytes += text.decode(b.Mdl!.bytes.subarray(b.Offset, b.Offset + b.Length));
      }
      assert.equal(bytes.length, bytesIndicated);
      received.push({ context, bytes });
      return STATUS_SUCCESS;
    },
    WskDisconnectEvent(context, flags) {
      disconnects.push({ context, flags });
      return STATUS_SUCCESS;
    },
  };
  await using served = await recordingListener(AF_INET, () => ({
    status: STATUS_SUCCESS,
    context: socketContext,
    dispatch: connectionDispatch,
  }));
  const { listen, port, events } = served;
  const mask = WSK_EVENT_ACCEPT | WSK_EVENT_RECEIVE | WSK_EVENT_DISCONNECT;
  assertStatus(await enableEvents(listen, mask), STATUS_SUCCESS);
  using client = await connectTo(AF_INET, port);
  await client.write(text.encode("inherited"));
  await waitFor(
    () => received.map((r) => r.bytes).join("") === "inherited",
    "the inherited receive event",
  );
  assert.ok(received.every((r) => r.context === socketContext), "the returned context is used");
  const socket = events.calls[0]!.socket!;
  assert.equal(socket.context, socketContext);
  await client.closeWrite();
  await waitFor(() => disconnects.length === 1, "the inherited disconnect event");
  assert.deepEqual(disconnects, [{ context: socketContext, flags: 0 }]);
  assert.equal(socket.state, "RFIN");
});

for (
  const [label, answer] of [
    ["returning STATUS_REQUEST_NOT_ACCEPTED", () => STATUS_REQUEST_NOT_ACCEPTED],
    ["throwing", (): NTSTATUS => {
      throw new Error("client bug in WskAcceptEvent");
    }],
  ] as const
) {
  Deno.test(`WskAcceptEvent() ${label} makes the provider close the socket`, async () => {
    await using served = await recordingListener(AF_INET, answer);
    const { listen, port, events } = served;
    assertStatus(await enableEvents(listen, WSK_EVENT_ACCEPT), STATUS_SUCCESS);
    const client = await connectTo(AF_INET, port);
    const end = await readToEnd(client, 3000);
    assert.equal(end.timedOut, false, "the client saw the connection end");
    assert.equal(end.bytes, 0);
    assert.ok(
      end.error === null || end.error instanceof Deno.errors.ConnectionReset,
      `EOF or reset, got ${String(end.error)}`,
    );
    assert.equal(events.calls.length, 1);
    assert.equal(events.calls[0]!.socket?.state, "CLOSED");
    // The listener goes on: the next connection is offered too.
    using second = await connectTo(AF_INET, port);
    await waitFor(() => events.calls.length === 2, "the second accept event");
    assertSameEndpoint(events.calls[1]!.remote, second.localAddr, "second");
  });
}

Deno.test("WskAcceptEvent() gets a connection held after a cancelled WskAccept once the event is enabled", async () => {
  await using served = await recordingListener(AF_INET, () => STATUS_SUCCESS);
  const { listen, port, events } = served;
  const timedOut = await listen.Dispatch.WskAccept(listen, 0, undefined, null, { timeout: 30 });
  assertStatus(timedOut, STATUS_IO_TIMEOUT);
  using client = await connectTo(AF_INET, port);
  await sleep(50);
  assert.equal(events.calls.length, 0);
  assertStatus(await enableEvents(listen, WSK_EVENT_ACCEPT), STATUS_SUCCESS);
  await waitFor(() => events.calls.length === 1, "the accept event");
  assertSameEndpoint(events.calls[0]!.remote, client.localAddr, "the held connection");
});

Deno.test("WskControlSocket() on a listening socket checks SO_WSK_EVENT_CALLBACK", async () => {
  const events = acceptRecorder(() => STATUS_SUCCESS);
  await using listen = await newListenSocket(AF_INET, events.dispatch);
  // Listen sockets take events only after bind.
  assertStatus(await enableEvents(listen, WSK_EVENT_ACCEPT), STATUS_INVALID_DEVICE_STATE);
  assertStatus(await listen.Dispatch.WskBind(listen, sockAddr("127.0.0.1", 0)), 0);
  // Enabling takes no IRP.
  assertStatus(
    await enableEvents(listen, WSK_EVENT_ACCEPT, { timeout: 1000 }),
    STATUS_INVALID_PARAMETER,
  );
  // Wrong NpiId.
  assertStatus(
    await listen.Dispatch.WskControlSocket(
      listen,
      WskSetOption,
      SO_WSK_EVENT_CALLBACK,
      SOL_SOCKET,
      {
        NpiId: "00000000-0000-0000-0000-000000000000",
        EventMask: WSK_EVENT_ACCEPT,
      },
    ),
    STATUS_INVALID_PARAMETER,
  );
  assertStatus(await enableEvents(listen, 0), STATUS_INVALID_PARAMETER);
  assertStatus(await enableEvents(listen, WSK_EVENT_ACCEPT), STATUS_SUCCESS);
  // Connection events enabled on a listener cannot be disabled there.
  assertStatus(await enableEvents(listen, WSK_EVENT_RECEIVE), STATUS_SUCCESS);
  assertStatus(
    await enableEvents(listen, WSK_EVENT_RECEIVE | WSK_EVENT_DISABLE),
    STATUS_INVALID_PARAMETER,
  );
  // The accept event can be disabled; connections then wait for WskAccept.
  assertStatus(
    await enableEvents(listen, WSK_EVENT_ACCEPT | WSK_EVENT_DISABLE),
    STATUS_SUCCESS,
  );
  const port = (await listen.Dispatch.WskGetLocalAddress(listen)).address!.port;
  using client = await connectTo(AF_INET, port);
  await sleep(50);
  assert.equal(events.calls.length, 0, "no accept event after the disable");
  const c = await listen.Dispatch.WskAccept(listen, 0, undefined, null, { timeout: 5000 });
  await using _socket = acceptedSocket(c);
  assertSameEndpoint(c.remoteAddress, client.localAddr, "WskAccept after the disable");
});

Deno.test("WskControlSocket() on a listening socket refuses WSK_EVENT_ACCEPT without a WskAcceptEvent callback", async () => {
  const { listen } = await boundListenSocket(AF_INET, null);
  await using _listen = listen;
  assertStatus(await enableEvents(listen, WSK_EVENT_ACCEPT), STATUS_INVALID_PARAMETER);
  const { listen: other } = await boundListenSocket(AF_INET, {});
  await using _other = other;
  assertStatus(await enableEvents(other, WSK_EVENT_ACCEPT), STATUS_INVALID_PARAMETER);
});

Deno.test("WskControlSocket() on a listening socket answers unsupported and unknown requests", async () => {
  const { listen } = await boundListenSocket(AF_INET);
  await using _listen = listen;
  const d = listen.Dispatch;
  for (const code of [SO_RCVBUF, SO_REUSEADDR]) {
    const c = await d.WskControlSocket(listen, WskSetOption, code, SOL_SOCKET, ulong(1), null);
    assertStatus(c, STATUS_NOT_SUPPORTED, `option 0x${code.toString(16)}:`);
    assert.ok(c.message);
  }
  assertStatus(
    await d.WskControlSocket(listen, WskSetOption, 0x7777, SOL_SOCKET, ulong(1), null),
    STATUS_INVALID_PARAMETER,
  );
  assertStatus(
    await d.WskControlSocket(listen, WskIoctl, 0x4f0000ff, 0, null, new Uint8Array(8)),
    STATUS_INVALID_PARAMETER,
  );
  assertStatus(
    await d.WskControlSocket(listen, WskIoctl, SIO_ADDRESS_LIST_QUERY, 0, null, null),
    STATUS_NOT_SUPPORTED,
  );
});

Deno.test("WskControlSocket() on a listening socket sets SO_KEEPALIVE, which accepted sockets inherit", async () => {
  // wsk-semantics §5: SO_KEEPALIVE applies to listen and connection sockets, and accepted
  // sockets inherit the listener's value.
  const { listen, port } = await boundListenSocket(AF_INET);
  await using _listen = listen;
  const d = listen.Dispatch;
  const set = await d.WskControlSocket(listen, WskSetOption, SO_KEEPALIVE, SOL_SOCKET, ulong(1));
  assertStatus(set, STATUS_SUCCESS, "set on the listener:");
  const out = new Uint8Array(4);
  const get = await d.WskControlSocket(listen, WskGetOption, SO_KEEPALIVE, SOL_SOCKET, null, out);
  assertStatus(get, STATUS_SUCCESS, "get on the listener:");
  assert.equal(get.information, 4);
  assert.deepEqual(out, ulong(1));

  const accepting = d.WskAccept(listen, 0, undefined, null, { timeout: 5000 });
  using _client = await connectTo(AF_INET, port);
  await using socket = acceptedSocket(await accepting);
  out.fill(0);
  const inherited = await socket.Dispatch.WskControlSocket(
    socket,
    WskGetOption,
    SO_KEEPALIVE,
    SOL_SOCKET,
    null,
    out,
  );
  assertStatus(inherited, STATUS_SUCCESS);
  assert.deepEqual(out, ulong(1), "the accepted socket inherited SO_KEEPALIVE");
});

// ---------------------------------------------------------------------------------------------
// WskInspectComplete

Deno.test("WskInspectComplete() completes with STATUS_NOT_SUPPORTED", async () => {
  const { listen } = await boundListenSocket(AF_INET);
  await using _listen = listen;
  const c = await listen.Dispatch.WskInspectComplete(listen, { Key: 1, SerialNumber: 1 }, 0);
  assertStatus(c, STATUS_NOT_SUPPORTED);
  assert.equal(c.information, 0);
  assert.ok(c.message);
});

// ---------------------------------------------------------------------------------------------
// Basic sockets

Deno.test("WskSocket() with WSK_FLAG_BASIC_SOCKET makes a socket that only answers control and close", async () => {
  for (const family of [AF_INET, AF_INET6] as const) {
    const made = await wskSocket({ family, flags: WSK_FLAG_BASIC_SOCKET });
    assertStatus(made, STATUS_SUCCESS);
    assert.equal(made.socket, undefined);
    assert.equal(made.listenSocket, undefined);
    const basic = made.basicSocket;
    assert.ok(basic);
    assert.equal(basic.family, family);
    assert.equal(basic.state, "OPEN");
    const d = basic.Dispatch;
    assert.deepEqual(Object.keys(d).sort(), ["WskCloseSocket", "WskControlSocket"]);

    let c = await d.WskControlSocket(basic, WskSetOption, SO_RCVBUF, SOL_SOCKET, ulong(1));
    assertStatus(c, STATUS_NOT_SUPPORTED, "SO_RCVBUF:");
    assert.ok(c.message);
    c = await d.WskControlSocket(basic, WskIoctl, SIO_ADDRESS_LIST_QUERY, 0, null, null);
    assertStatus(c, STATUS_NOT_SUPPORTED, "SIO_ADDRESS_LIST_QUERY:");
    c = await d.WskControlSocket(basic, WskSetOption, 0x7777, SOL_SOCKET, ulong(1));
    assertStatus(c, STATUS_INVALID_PARAMETER, "unknown option:");
    c = await d.WskControlSocket(basic, WskIoctl, SIO_WSK_QUERY_IDEAL_SEND_BACKLOG, 0, null, null);
    assertStatus(c, STATUS_INVALID_PARAMETER, "a connection-only IOCTL:");
    c = await d.WskControlSocket(basic, WskSetOption, SO_WSK_EVENT_CALLBACK, SOL_SOCKET, {
      NpiId: NPI_WSK_INTERFACE_ID,
      EventMask: WSK_EVENT_RECEIVE,
    });
    assertStatus(c, STATUS_INVALID_PARAMETER, "events on a basic socket:");

    assertStatus(await d.WskCloseSocket(basic), STATUS_SUCCESS);
    assert.equal(basic.state, "CLOSED");
    assertStatus(await d.WskCloseSocket(basic), STATUS_INVALID_HANDLE, "second close:");
    c = await d.WskControlSocket(basic, WskSetOption, SO_RCVBUF, SOL_SOCKET, ulong(1));
    assertStatus(c, STATUS_INVALID_HANDLE, "control after close:");
  }
});

Deno.test("WskSocket() with WSK_FLAG_BASIC_SOCKET refuses a callback table", async () => {
  const made = await wskSocket({
    flags: WSK_FLAG_BASIC_SOCKET,
    dispatch: { WskAcceptEvent: () => STATUS_SUCCESS },
  });
  assertStatus(made, STATUS_INVALID_PARAMETER);
  assert.equal(made.basicSocket, undefined);
});

Deno.test("WskCloseSocket() on a basic socket refuses other socket kinds (STATUS_INVALID_HANDLE)", async () => {
  const made = await wskSocket({ flags: WSK_FLAG_BASIC_SOCKET });
  const basic = made.basicSocket!;
  const listen = await newListenSocket(AF_INET);
  assertStatus(await basic.Dispatch.WskCloseSocket(listen as never), STATUS_INVALID_HANDLE);
  assertStatus(await listen.Dispatch.WskCloseSocket(basic as never), STATUS_INVALID_HANDLE);
  assertStatus(await listen.Dispatch.WskCloseSocket(listen), STATUS_SUCCESS);
  assertStatus(await basic.Dispatch.WskCloseSocket(basic), STATUS_SUCCESS);
});

// ---------------------------------------------------------------------------------------------
// WskGetAddressInfo (resolves "localhost" only)

function isLoopback(addr: SockAddr): boolean {
  return addr.family === AF_INET ? addr.address.startsWith("127.") : addr.address === "::1";
}

Deno.test("WskGetAddressInfo() resolves localhost to loopback addresses with the service's port", async () => {
  const c = await npi.Dispatch.WskGetAddressInfo(npi.Client, "localhost", "80", undefined, {
    timeout: 5000,
  });
  assertStatus(c, STATUS_SUCCESS);
  assert.ok(c.addresses && c.addresses.length >= 1, "at least one address");
  for (const addr of c.addresses) {
    assert.ok(isLoopback(addr), `${addr.address} is a loopback address`);
    assert.equal(addr.port, 80);
  }
  npi.Dispatch.WskFreeAddressInfo(npi.Client, c.addresses);

  const v4 = await npi.Dispatch.WskGetAddressInfo(npi.Client, "localhost", "8080", AF_INET, {
    timeout: 5000,
  });
  assertStatus(v4, STATUS_SUCCESS);
  assert.ok(v4.addresses && v4.addresses.length >= 1);
  for (const addr of v4.addresses) {
    assert.equal(addr.family, AF_INET);
    assert.ok(isLoopback(addr));
    assert.equal(addr.port, 8080);
  }

  const noService = await npi.Dispatch.WskGetAddressInfo(npi.Client, "localhost", null, AF_INET, {
    timeout: 5000,
  });
  assertStatus(noService, STATUS_SUCCESS);
  assert.ok(noService.addresses?.every((addr) => addr.port === 0));
});

Deno.test("WskGetAddressInfo() completes with STATUS_INVALID_PARAMETER for a non-numeric service or an empty name", async () => {
  for (const service of ["http", "80a", "-1", "65536", ""]) {
    const c = await npi.Dispatch.WskGetAddressInfo(npi.Client, "localhost", service, undefined, {
      timeout: 5000,
    });
    assertStatus(c, STATUS_INVALID_PARAMETER, `service "${service}":`);
    assert.equal(c.addresses, undefined);
  }
  const empty = await npi.Dispatch.WskGetAddressInfo(npi.Client, "", "80", undefined, {
    timeout: 5000,
  });
  assertStatus(empty, STATUS_INVALID_PARAMETER, "empty name:");
  assert.equal(empty.addresses, undefined);
  const notString = await npi.Dispatch.WskGetAddressInfo(npi.Client, 42 as never, "80");
  assertStatus(notString, STATUS_INVALID_PARAMETER, "a name that is not a string:");
});

Deno.test("WskGetAddressInfo() completes with STATUS_NOT_SUPPORTED for an unknown family", async () => {
  const c = await npi.Dispatch.WskGetAddressInfo(npi.Client, "localhost", "80", 99, {
    timeout: 5000,
  });
  assertStatus(c, STATUS_NOT_SUPPORTED);
  assert.equal(c.addresses, undefined);
});

Deno.test("WskAccept() issued right after another completed still gets the next connection", async () => {
  const { listen, port } = await boundListenSocket(AF_INET);
  await using _listen = listen;
  const sockets: WskConnectionSocket[] = [];
  const clients: Deno.TcpConn[] = [];
  // A server loop that issues each WskAccept the moment the previous one completed, while the
  // clients arrive later, one by one: the accept loop that served the first connection must
  // not be mistaken for one still running.
  const serving = (async () => {
    for (let i = 0; i < 3; i++) {
      const accepted = await listen.Dispatch.WskAccept(listen, 0, undefined, null, {
        timeout: 3000,
      });
      assertStatus(accepted, STATUS_SUCCESS, `accept #${i + 1}`);
      sockets.push(acceptedSocket(accepted));
    }
  })();
  try {
    for (let i = 0; i < 3; i++) {
      await sleep(50);
      clients.push(await connectTo(AF_INET, port));
    }
    await serving;
    assert.deepEqual(
      sockets.map((s) => s.remoteAddress?.port),
      clients.map((c) => c.localAddr.port),
    );
  } finally {
    await serving.catch(() => {});
    for (const socket of sockets) await socket.Dispatch.WskCloseSocket(socket);
    for (const client of clients) client.close();
  }
});

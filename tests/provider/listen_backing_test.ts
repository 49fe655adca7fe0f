// Listening sockets created with `backing: "node"`: node:net listens (allowHalfOpen,
// pauseOnConnect) and hands out node-backed sockets, so an abortive disconnect or a close of a
// live accepted connection is a real RST. Peers are python3 clients (which tell a reset from a
// FIN) and Deno clients.

import assert from "node:assert/strict";
import {
  type AddressFamily,
  AF_INET,
  AF_INET6,
  ntStatusName,
  sockAddr,
  STATUS_ACCESS_DENIED,
  STATUS_ADDRESS_ALREADY_EXISTS,
  STATUS_CANCELLED,
  STATUS_CONNECTION_RESET,
  STATUS_INVALID_PARAMETER,
  STATUS_IO_TIMEOUT,
  STATUS_REQUEST_NOT_ACCEPTED,
  STATUS_SUCCESS,
  WSK_EVENT_ACCEPT,
  WSK_EVENT_DISCONNECT,
  WSK_EVENT_RECEIVE,
  WSK_FLAG_ABORTIVE,
  WSK_FLAG_LISTEN_SOCKET,
  WSK_FLAG_WAITALL,
  type WskAcceptCompletion,
  wskBuf,
  type WskClientListenDispatch,
  type WskConnectionSocket,
  type WskListenSocket,
} from "../../provider/mod.ts";
import { canResetDenoConnections } from "../../provider/mod.ts";
import {
  assertStatus,
  enableEvents,
  hex,
  loopbackHost,
  readAll,
  readExactly,
  receive,
  sleep,
  text,
  within,
  wskSocket,
} from "../_helpers.ts";
import { type ClientHow, type ClientReport, PythonPeer } from "../_python.ts";
import { runProcess } from "../_child.ts";

// ---------------------------------------------------------------------------------------------
// Local helpers

/** A node-backed listening socket bound to loopback port 0, and its port. */
async function nodeListener(
  family: AddressFamily = AF_INET,
  dispatch: WskClientListenDispatch | null = null,
): Promise<{ listen: WskListenSocket; port: number }> {
  const made = await wskSocket({
    family,
    flags: WSK_FLAG_LISTEN_SOCKET,
    dispatch,
    options: { backing: "node" },
  });
  assertStatus(made, STATUS_SUCCESS, "WskSocket(listen, node):");
  const listen = made.listenSocket!;
  assertStatus(await listen.Dispatch.WskBind(listen, sockAddr(loopbackHost(family), 0)), 0);
  assert.equal(listen.state, "LISTENING");
  const local = await listen.Dispatch.WskGetLocalAddress(listen);
  assertStatus(local, STATUS_SUCCESS);
  assert.equal(local.address!.address, loopbackHost(family));
  assert.ok(local.address!.port > 0, "the kernel chose a port");
  return { listen, port: local.address!.port };
}

function accepted(c: WskAcceptCompletion): WskConnectionSocket {
  assertStatus(c, STATUS_SUCCESS, "WskAccept:");
  assert.ok(c.socket);
  assert.equal(c.socket.backing, "node", "a node-backed listener hands out node-backed sockets");
  return c.socket;
}

/** Starts a PY_CLIENT that sends `payload`; ready (its `port` known) once bound. */
function pythonClient(
  family: AddressFamily,
  port: number,
  payload: string,
  how: ClientHow = "close",
): Promise<PythonPeer<ClientReport>> {
  const host = loopbackHost(family);
  return PythonPeer.client(host, host, port, hex(payload), how);
}

// ---------------------------------------------------------------------------------------------
// Tests

for (const family of [AF_INET, AF_INET6] as const) {
  const name = family === AF_INET ? "IPv4" : "IPv6";
  Deno.test(`WskAccept() on a node-backed listener hands out node-backed sockets that move data both ways (${name})`, async () => {
    const { listen, port } = await nodeListener(family);
    await using _listen = listen;
    const pending = listen.Dispatch.WskAccept(listen, 0, undefined, null, { timeout: 5000 });
    const client = await Deno.connect({ hostname: loopbackHost(family), port });
    try {
      const c = await pending;
      await using socket = accepted(c);
      assert.deepEqual(c.remoteAddress, sockAddr(loopbackHost(family), client.localAddr.port));
      assert.deepEqual(c.localAddress, sockAddr(loopbackHost(family), port));
      assert.deepEqual(socket.localAddress, c.localAddress);
      assert.deepEqual(socket.remoteAddress, c.remoteAddress);
      await client.write(text.encode("ping"));
      const got = await receive(socket, 16);
      assertStatus(got.completion, STATUS_SUCCESS);
      assert.equal(text.decode(got.bytes), "ping");
      const d = socket.Dispatch;
      assertStatus(await d.WskSend(socket, wskBuf(text.encode("pong"))), STATUS_SUCCESS);
      assert.equal(text.decode(await readExactly(client, 4)), "pong");
      // Graceful both ways: our FIN reaches the client as EOF, its FIN as a 0-byte receive.
      assertStatus(await d.WskDisconnect(socket, null, 0, { timeout: 5000 }), STATUS_SUCCESS);
      assert.equal(await within(client.read(new Uint8Array(8)), 5000, "client EOF"), null);
      await client.closeWrite();
      const fin = await receive(socket, 16);
      assertStatus(fin.completion, STATUS_SUCCESS);
      assert.equal(fin.completion.information, 0);
      assert.equal(socket.state, "BOTHFIN");
    } finally {
      client.close();
    }
  });
}

Deno.test("WskDisconnect() with WSK_FLAG_ABORTIVE on a socket a node-backed listener accepted sends RST (python sees ECONNRESET)", async () => {
  const { listen, port } = await nodeListener();
  await using _listen = listen;
  const pending = listen.Dispatch.WskAccept(listen, 0, undefined, null, { timeout: 5000 });
  await using python = await pythonClient(AF_INET, port, "hello", "hold");
  const peerPort = python.port;
  await using socket = accepted(await pending);
  assert.equal(socket.remoteAddress!.port, peerPort);
  const got = await receive(socket, 5, WSK_FLAG_WAITALL);
  assert.equal(text.decode(got.bytes), "hello");
  const d = socket.Dispatch;
  assertStatus(await d.WskDisconnect(socket, null, WSK_FLAG_ABORTIVE), STATUS_SUCCESS);
  assert.equal(socket.state, "ABORTED");
  const seen = await python.report();
  assert.deepEqual(seen, { data: "", end: "reset" });
  assert.equal(await python.exitCode(), 0);
});

Deno.test("WskDisconnect() with WSK_FLAG_ABORTIVE on an accepted socket resets a Deno client too (ConnectionReset)", async () => {
  const { listen, port } = await nodeListener();
  await using _listen = listen;
  const pending = listen.Dispatch.WskAccept(listen, 0, undefined, null, { timeout: 5000 });
  using client = await Deno.connect({ hostname: "127.0.0.1", port });
  await using socket = accepted(await pending);
  assertStatus(
    await socket.Dispatch.WskDisconnect(socket, null, WSK_FLAG_ABORTIVE),
    STATUS_SUCCESS,
  );
  const { bytes, error } = await within(readAll(client), 5000, "client read");
  assert.equal(bytes.length, 0);
  assert.ok(error instanceof Deno.errors.ConnectionReset, `expected a reset, got ${error}`);
});

Deno.test("WskCloseSocket() of a live connection a node-backed listener accepted resets it; a shut one closes with FIN", async () => {
  const { listen, port } = await nodeListener();
  await using _listen = listen;
  // Live (ESTAB): the close is abortive.
  const first = listen.Dispatch.WskAccept(listen, 0, undefined, null, { timeout: 5000 });
  await using live = await pythonClient(AF_INET, port, "x", "hold");
  const a = accepted(await first);
  assertStatus(await a.Dispatch.WskCloseSocket(a), STATUS_SUCCESS);
  assert.deepEqual(await live.report(), { data: "", end: "reset" });
  // Shut both ways (BOTHFIN): the close is a plain FIN, and the final data arrives whole.
  const second = listen.Dispatch.WskAccept(listen, 0, undefined, null, { timeout: 5000 });
  await using done = await pythonClient(AF_INET, port, "y");
  const b = accepted(await second);
  const d = b.Dispatch;
  assertStatus(await d.WskDisconnect(b, wskBuf(text.encode("bye")), 0, { timeout: 5000 }), 0);
  const drained = await receive(b, 16);
  assert.equal(text.decode(drained.bytes), "y");
  assert.equal((await receive(b, 16)).completion.information, 0, "the client's FIN");
  assert.equal(b.state, "BOTHFIN");
  assertStatus(await d.WskCloseSocket(b), STATUS_SUCCESS);
  assert.deepEqual(await done.report(), { data: hex("bye"), end: "eof" });
});

Deno.test("WskAcceptEvent() answering STATUS_REQUEST_NOT_ACCEPTED on a node-backed listener resets the peer", async () => {
  const seen: number[] = [];
  const dispatch: WskClientListenDispatch = {
    WskAcceptEvent(_context, _flags, _local, remote) {
      seen.push(remote.port);
      return STATUS_REQUEST_NOT_ACCEPTED;
    },
  };
  const { listen, port } = await nodeListener(AF_INET, dispatch);
  await using _listen = listen;
  assertStatus(await enableEvents(listen, WSK_EVENT_ACCEPT), STATUS_SUCCESS);
  await using python = await pythonClient(AF_INET, port, "", "hold");
  const peerPort = python.port;
  assert.deepEqual(await python.report(), { data: "", end: "reset" });
  assert.deepEqual(seen, [peerPort]);
});

Deno.test("WskAcceptEvent() on a node-backed listener: inherited receive events indicate the data that came with the connection", async () => {
  const indicated: string[] = [];
  let finished!: () => void;
  const fin = new Promise<void>((resolve) => finished = resolve);
  const sockets: WskConnectionSocket[] = [];
  const dispatch: WskClientListenDispatch = {
    WskAcceptEvent(_context, _flags, _local, _remote, socket) {
      sockets.push(socket!);
      return {
        status: STATUS_SUCCESS,
        dispatch: {
          WskReceiveEvent(_c, _f, list) {
            for (let item = list; item !== null; item = item.Next) {
              const { Mdl, Offset, Length } = item.Buffer;
              indicated.push(text.decode(Mdl!.bytes.subarray(Offset, Offset + Length)));
            }
            return STATUS_SUCCESS;
          },
          WskDisconnectEvent(_c, flags) {
            assert.equal(flags, 0, "a graceful disconnect");
            finished();
            return STATUS_SUCCESS;
          },
        },
      };
    },
  };
  const { listen, port } = await nodeListener(AF_INET, dispatch);
  await using _listen = listen;
  assertStatus(
    await enableEvents(listen, WSK_EVENT_ACCEPT | WSK_EVENT_RECEIVE | WSK_EVENT_DISCONNECT),
    STATUS_SUCCESS,
  );
  const client = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await client.write(text.encode("paused until read"));
    await client.closeWrite();
    await within(fin, 5000, "WskDisconnectEvent");
    assert.equal(indicated.join(""), "paused until read");
    assert.equal(sockets.length, 1);
    assert.equal(sockets[0]!.backing, "node");
    assert.equal(sockets[0]!.bytesReceived, 17);
  } finally {
    client.close();
    for (const socket of sockets) await socket.Dispatch.WskCloseSocket(socket);
  }
});

Deno.test("WskAccept() on a node-backed listener gets a connection that arrived while nobody accepted, its data intact", async () => {
  const { listen, port } = await nodeListener();
  await using _listen = listen;
  using client = await Deno.connect({ hostname: "127.0.0.1", port });
  await client.write(text.encode("early bytes"));
  await sleep(50);
  await using socket = accepted(
    await listen.Dispatch.WskAccept(listen, 0, undefined, null, { timeout: 5000 }),
  );
  assert.equal(socket.remoteAddress!.port, client.localAddr.port);
  const got = await receive(socket, 11, WSK_FLAG_WAITALL);
  assert.equal(text.decode(got.bytes), "early bytes");
});

Deno.test("WskAccept() on a node-backed listener completes with STATUS_IO_TIMEOUT when no connection comes", async () => {
  const { listen } = await nodeListener();
  await using _listen = listen;
  const start = performance.now();
  const c = await listen.Dispatch.WskAccept(listen, 0, undefined, null, { timeout: 100 });
  assertStatus(c, STATUS_IO_TIMEOUT);
  assert.equal(c.socket, undefined);
  assert.ok(performance.now() - start >= 90);
});

Deno.test("WskCloseSocket() on a node-backed listener cancels a pending WskAccept and stops listening", async () => {
  const { listen, port } = await nodeListener();
  const pending = listen.Dispatch.WskAccept(listen, 0, undefined, null, { timeout: 5000 });
  await sleep(20);
  assertStatus(await listen.Dispatch.WskCloseSocket(listen), STATUS_SUCCESS);
  assertStatus(await pending, STATUS_CANCELLED);
  assert.equal(listen.state, "CLOSED");
  const refused = await Deno.connect({ hostname: "127.0.0.1", port }).then(
    (conn) => {
      conn.close();
      return null;
    },
    (error: unknown) => error,
  );
  assert.ok(refused instanceof Deno.errors.ConnectionRefused, `got ${String(refused)}`);
});

Deno.test("WskBind() with backing node completes with STATUS_ADDRESS_ALREADY_EXISTS when the port is taken", async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const made = await wskSocket({ flags: WSK_FLAG_LISTEN_SOCKET, options: { backing: "node" } });
  await using listen = made.listenSocket!;
  const bound = await listen.Dispatch.WskBind(listen, sockAddr("127.0.0.1", taken.addr.port));
  assertStatus(bound, STATUS_ADDRESS_ALREADY_EXISTS);
  assert.equal(listen.state, "INIT");
});

Deno.test("WskSocket() refuses an unknown backing for a listening socket", async () => {
  const made = await wskSocket({
    flags: WSK_FLAG_LISTEN_SOCKET,
    options: { backing: "bogus" as never },
  });
  assertStatus(made, STATUS_INVALID_PARAMETER);
  assert.equal(made.listenSocket, undefined);
});

Deno.test("WskBind() with backing node completes with STATUS_ACCESS_DENIED without net permission (no uncaught error)", async () => {
  const provider = new URL("../../provider/mod.ts", import.meta.url).href;
  const script = `
import { AF_INET, IPPROTO_TCP, ntStatusName, sockAddr, SOCK_STREAM, WSK_FLAG_LISTEN_SOCKET,
  WskCaptureProviderNPI } from "${provider}";
const { Client, Dispatch } = WskCaptureProviderNPI();
const made = await Dispatch.WskSocket(Client, AF_INET, SOCK_STREAM, IPPROTO_TCP,
  WSK_FLAG_LISTEN_SOCKET, undefined, null, { backing: "node" });
const l = made.listenSocket;
const bound = await l.Dispatch.WskBind(l, sockAddr("127.0.0.1", 0));
console.log(ntStatusName(bound.status), l.state);
await l.Dispatch.WskCloseSocket(l);
console.log("still running");
`;
  const out = await runProcess(
    Deno.execPath(),
    ["run", "--allow-net=127.0.0.1:1", "--allow-read", "-"],
    { stdin: script, env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" } },
  );
  assert.equal(out.stderr, "");
  assert.equal(
    out.stdout,
    `${ntStatusName(STATUS_ACCESS_DENIED)} INIT\nstill running\n`,
  );
  assert.equal(out.code, 0);
});

Deno.test("WskAccept() on a node-backed listener: a WskReceive cancelled by its deadline keeps later data for the next receive", async () => {
  const { listen, port } = await nodeListener();
  await using _listen = listen;
  const pending = listen.Dispatch.WskAccept(listen, 0, undefined, null, { timeout: 5000 });
  using client = await Deno.connect({ hostname: "127.0.0.1", port });
  await using socket = accepted(await pending);
  const early = await receive(socket, 8, 0, 50);
  assertStatus(early.completion, STATUS_IO_TIMEOUT);
  await client.write(text.encode("late"));
  const late = await receive(socket, 8);
  assertStatus(late.completion, STATUS_SUCCESS);
  assert.equal(text.decode(late.bytes), "late");
});

/**
 * Binds argv[1] (127.0.0.1), prints its port, connects to port argv[2] there, sends a byte and
 * resets the connection (SO_LINGER 0), then prints "reset".
 */
const PYTHON_RESET_AT_ONCE = `
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.settimeout(10)
s.bind((sys.argv[1], 0))
print(s.getsockname()[1], flush=True)
s.connect((sys.argv[1], int(sys.argv[2])))
s.sendall(b"x")
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
print("reset", flush=True)
`;

for (const backing of ["deno", "node"] as const) {
  Deno.test(`WskAccept() (${backing} backing) never fails for a connection the peer reset before it was taken`, async () => {
    const made = await wskSocket({ flags: WSK_FLAG_LISTEN_SOCKET, options: { backing } });
    await using listen = made.listenSocket!;
    assertStatus(await listen.Dispatch.WskBind(listen, sockAddr("127.0.0.1", 0)), 0);
    const port = listen.localAddress!.port;
    let resetPort: number;
    {
      await using python = await PythonPeer.start(PYTHON_RESET_AT_ONCE, [
        "127.0.0.1",
        String(port),
      ]);
      resetPort = python.port;
      assert.equal(await python.nextLine(), "reset");
    }
    await sleep(50);
    using client = await Deno.connect({ hostname: "127.0.0.1", port });
    let c = await listen.Dispatch.WskAccept(listen, 0, undefined, null, { timeout: 5000 });
    assertStatus(c, STATUS_SUCCESS, "the reset connection must not fail the WskAccept:");
    if (c.remoteAddress!.port !== client.localAddr.port) {
      // node:net accepts eagerly, so under load it may have taken the connection before the
      // reset came: then it is delivered with its real address, and a receive sees the reset.
      assert.equal(backing, "node", "Deno.listen accepts only for a waiting WskAccept");
      assert.equal(c.remoteAddress!.port, resetPort, "the reset connection, with its address");
      await using reset = c.socket!;
      let last;
      do last = await receive(reset, 8); while (last.completion.information > 0);
      assertStatus(last.completion, STATUS_CONNECTION_RESET);
      c = await listen.Dispatch.WskAccept(listen, 0, undefined, null, { timeout: 5000 });
      assertStatus(c, STATUS_SUCCESS);
    }
    await using socket = c.socket!;
    assert.equal(socket.backing, backing);
    assert.equal(c.remoteAddress!.port, client.localAddr.port, "the next connection");
  });
}

for (const backing of [undefined, "auto"] as const) {
  const given = backing === undefined ? "the default backing" : `backing "${backing}"`;
  Deno.test(`WskSocket(listen) with abortive and ${given} picks a backing that can reset (node, or deno with --allow-ffi): WSK_FLAG_ABORTIVE resets an accepted connection`, async () => {
    const made = await wskSocket({
      flags: WSK_FLAG_LISTEN_SOCKET,
      options: backing === undefined ? { abortive: true } : { abortive: true, backing },
    });
    assertStatus(made, STATUS_SUCCESS, "WskSocket(listen, abortive):");
    await using listen = made.listenSocket!;
    assertStatus(await listen.Dispatch.WskBind(listen, sockAddr("127.0.0.1", 0)), 0);
    const pending = listen.Dispatch.WskAccept(listen, 0, undefined, null, { timeout: 5000 });
    using client = await Deno.connect({ hostname: "127.0.0.1", port: listen.localAddress!.port });
    const got = await pending;
    assertStatus(got, STATUS_SUCCESS, "WskAccept:");
    await using socket = got.socket!;
    assert.equal(socket.backing, canResetDenoConnections() ? "deno" : "node");
    assertStatus(
      await socket.Dispatch.WskDisconnect(socket, null, WSK_FLAG_ABORTIVE),
      STATUS_SUCCESS,
    );
    assert.equal(socket.state, "ABORTED");
    assert.equal(socket.peerSaw, "RST");
    const { bytes, error } = await within(readAll(client), 5000, "client read");
    assert.equal(bytes.length, 0);
    assert.ok(error instanceof Deno.errors.ConnectionReset, `expected a reset, got ${error}`);
  });
}

Deno.test("WskSocket(listen) with abortive but backing deno keeps the deno backing (an explicit choice wins)", async () => {
  const made = await wskSocket({
    flags: WSK_FLAG_LISTEN_SOCKET,
    options: { abortive: true, backing: "deno" },
  });
  await using listen = made.listenSocket!;
  assertStatus(await listen.Dispatch.WskBind(listen, sockAddr("127.0.0.1", 0)), 0);
  const pending = listen.Dispatch.WskAccept(listen, 0, undefined, null, { timeout: 5000 });
  using _client = await Deno.connect({ hostname: "127.0.0.1", port: listen.localAddress!.port });
  const c = await pending;
  assertStatus(c, STATUS_SUCCESS);
  await using socket = c.socket!;
  assert.equal(socket.backing, "deno");
});

import assert from "node:assert/strict";
import {
  AF_INET,
  AF_INET6,
  IDEAL_SEND_BACKLOG,
  IPPROTO_IPV6,
  IPPROTO_TCP,
  IPV6_V6ONLY,
  NPI_WSK_INTERFACE_ID,
  type NTSTATUS,
  SIO_WSK_QUERY_IDEAL_SEND_BACKLOG,
  SIO_WSK_QUERY_RECEIVE_BACKLOG,
  SO_BROADCAST,
  SO_CONDITIONAL_ACCEPT,
  SO_EXCLUSIVEADDRUSE,
  SO_KEEPALIVE,
  SO_RCVBUF,
  SO_REUSEADDR,
  SO_SNDBUF,
  SO_WSK_EVENT_CALLBACK,
  SO_WSK_SECURITY,
  sockAddr,
  SOL_SOCKET,
  STATUS_BUFFER_TOO_SMALL,
  STATUS_DATA_NOT_ACCEPTED,
  STATUS_INVALID_DEVICE_STATE,
  STATUS_INVALID_HANDLE,
  STATUS_INVALID_PARAMETER,
  STATUS_NOT_SUPPORTED,
  STATUS_PENDING,
  STATUS_SUCCESS,
  TCP_FASTOPEN,
  TCP_KEEPCNT,
  TCP_KEEPIDLE,
  TCP_KEEPINTVL,
  TCP_MAXRT,
  TCP_NODELAY,
  wildcard,
  WSK_EVENT_DISABLE,
  WSK_EVENT_DISCONNECT,
  WSK_EVENT_RECEIVE,
  WSK_EVENT_SEND_BACKLOG,
  WSK_FLAG_ABORTIVE,
  wskBuf,
  type WskClientConnectionDispatch,
  type WskCompletion,
  type WskConnectionSocket,
  type WskDataIndication,
  WskGetOption,
  WskIoctl,
  type WskReceiveEventResult,
  WskSetOption,
} from "../../provider/mod.ts";
import {
  assertStatus,
  concatBytes,
  connectedPair,
  enableEvents,
  listenLoopback,
  loopbackHost,
  newSocket,
  readUlong,
  receive,
  sleep,
  text,
  ulong,
  waitFor,
} from "../_helpers.ts";
import { PY_LISTEN, PythonPeer } from "../_python.ts";
import { runProcess } from "../_child.ts";

// ---------------------------------------------------------------------------------------------
// Local helpers

function readSizeT(bytes: Uint8Array): number {
  return Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
}

/** Copies out the bytes an indication list describes (walking each WSK_BUF's MDL chain). */
function indicationBytes(list: WskDataIndication | null): Uint8Array {
  const chunks: Uint8Array[] = [];
  let item = list;
  for (let i = 0; item !== null && i < 100_000; item = item.Next, i++) {
    let skip = item.Buffer.Offset;
    let left = item.Buffer.Length;
    for (let mdl = item.Buffer.Mdl; mdl !== null && left > 0; mdl = mdl.Next) {
      const part = mdl.bytes.subarray(skip, skip + left);
      skip = 0;
      left -= part.length;
      chunks.push(part.slice());
    }
  }
  return concatBytes(chunks);
}

/** One WskReceiveEvent call as the client saw it. */
interface Indication {
  readonly context: unknown;
  readonly flags: number;
  readonly list: WskDataIndication | null;
  readonly bytesIndicated: number;
  readonly bytes: Uint8Array;
}

/** A client dispatch that records every event and answers WskReceiveEvent with `answer`. */
function recorder(answer: (call: Indication, index: number) => WskReceiveEventResult) {
  const indications: Indication[] = [];
  const disconnects: { context: unknown; flags: number }[] = [];
  const backlogs: { context: unknown; size: number }[] = [];
  const dispatch: WskClientConnectionDispatch = {
    WskReceiveEvent(context, flags, list, bytesIndicated) {
      const call = { context, flags, list, bytesIndicated, bytes: indicationBytes(list) };
      indications.push(call);
      return answer(call, indications.length - 1);
    },
    WskDisconnectEvent(context, flags) {
      disconnects.push({ context, flags });
      return STATUS_SUCCESS;
    },
    WskSendBacklogEvent(context, size) {
      backlogs.push({ context, size });
      return STATUS_SUCCESS;
    },
  };
  return {
    dispatch,
    indications,
    disconnects,
    backlogs,
    indicatedBytes: () => indications.reduce((n, call) => n + call.bytesIndicated, 0),
    allBytes: () => concatBytes(indications.map((call) => call.bytes)),
  };
}

function control(
  socket: WskConnectionSocket,
  requestType: typeof WskSetOption | typeof WskGetOption | typeof WskIoctl,
  code: number,
  level: number,
  input: Uint8Array | { NpiId: string; EventMask: number } | null = null,
  output: Uint8Array | null = null,
  irp?: { timeout?: number },
): Promise<WskCompletion> {
  return socket.Dispatch.WskControlSocket(socket, requestType, code, level, input, output, irp);
}

/** `ss -tnoi` for the established TCP socket whose local port is `port`: its lines, or null. */
async function ssSocketInfo(port: number): Promise<string | null> {
  const output = await runProcess("ss", [
    "-tnoi",
    "state",
    "established",
    `( sport = :${port} )`,
  ]);
  assert.equal(output.code, 0, `ss failed: ${output.stderr}`);
  const lines = output.stdout.split("\n");
  const index = lines.findIndex((line) => new RegExp(`:${port}\\s`).test(line));
  if (index < 0) return null;
  // The socket's line plus its indented detail line.
  return lines.slice(index, index + 2).join("\n");
}

let ssAvailable: boolean | undefined;
async function haveSs(): Promise<boolean> {
  if (ssAvailable === undefined) {
    ssAvailable = (await runProcess("which", ["ss"])).code === 0;
  }
  return ssAvailable;
}

/** Asserts from the kernel (via ss) whether SO_KEEPALIVE is on for the socket at `port`. */
async function assertKernelKeepAlive(port: number, on: boolean): Promise<void> {
  if (!await haveSs()) {
    // deno-lint-ignore no-console
    console.warn("ss (iproute2) is missing: skipping the kernel-side SO_KEEPALIVE assertion");
    return;
  }
  const info = await ssSocketInfo(port);
  assert.ok(info !== null, `ss does not list a socket with local port ${port}`);
  assert.equal(info.includes("timer:(keepalive"), on, `ss -tnoi for port ${port}:\n${info}`);
}

// ---------------------------------------------------------------------------------------------
// SO_KEEPALIVE and TCP_NODELAY

for (const backing of ["deno", "node"] as const) {
  Deno.test(`WskControlSocket() sets SO_KEEPALIVE on a ${backing}-backed socket and the kernel sees it`, async () => {
    await using pair = await connectedPair(AF_INET, { backing });
    const { socket } = pair;
    assert.equal(socket.backing, backing);
    const port = pair.peer.remoteAddr.port;
    const out = new Uint8Array(4).fill(0xee);

    let c = await control(socket, WskGetOption, SO_KEEPALIVE, SOL_SOCKET, null, out);
    assertStatus(c, STATUS_SUCCESS);
    assert.equal(c.information, 4);
    assert.deepEqual(out, new Uint8Array([0, 0, 0, 0]));
    await assertKernelKeepAlive(port, false);

    assertStatus(await control(socket, WskSetOption, SO_KEEPALIVE, SOL_SOCKET, ulong(1)), 0);
    out.fill(0xee);
    c = await control(socket, WskGetOption, SO_KEEPALIVE, SOL_SOCKET, null, out);
    assertStatus(c, STATUS_SUCCESS);
    assert.equal(c.information, 4);
    assert.deepEqual(out, new Uint8Array([1, 0, 0, 0]));
    await assertKernelKeepAlive(port, true);

    assertStatus(await control(socket, WskSetOption, SO_KEEPALIVE, SOL_SOCKET, ulong(0)), 0);
    c = await control(socket, WskGetOption, SO_KEEPALIVE, SOL_SOCKET, null, out);
    assert.equal(c.information, 4);
    assert.equal(readUlong(out), 0);
    await assertKernelKeepAlive(port, false);
  });
}

Deno.test("WskControlSocket() sets TCP_NODELAY and reads it back as a 4-byte ULONG", async () => {
  await using pair = await connectedPair();
  const { socket } = pair;
  const out = new Uint8Array(4).fill(0xee);
  let c = await control(socket, WskGetOption, TCP_NODELAY, IPPROTO_TCP, null, out);
  assertStatus(c, STATUS_SUCCESS);
  assert.equal(c.information, 4);
  assert.equal(readUlong(out), 0);

  // Any non-zero ULONG means TRUE; the value is read little-endian.
  assertStatus(await control(socket, WskSetOption, TCP_NODELAY, IPPROTO_TCP, ulong(0x100)), 0);
  out.fill(0xee);
  c = await control(socket, WskGetOption, TCP_NODELAY, IPPROTO_TCP, null, out);
  assert.equal(c.information, 4);
  assert.deepEqual(out, new Uint8Array([1, 0, 0, 0]));

  assertStatus(await control(socket, WskSetOption, TCP_NODELAY, IPPROTO_TCP, ulong(0)), 0);
  c = await control(socket, WskGetOption, TCP_NODELAY, IPPROTO_TCP, null, out);
  assert.equal(readUlong(out), 0);

  // Data still flows with Nagle off.
  assertStatus(await control(socket, WskSetOption, TCP_NODELAY, IPPROTO_TCP, ulong(1)), 0);
  const sent = await socket.Dispatch.WskSend(socket, wskBuf(text.encode("nodelay")));
  assertStatus(sent, STATUS_SUCCESS);
  assert.equal(sent.information, 7);
  const got = new Uint8Array(7);
  let n = 0;
  for (let i = 0; i < 100 && n < 7; i++) n += (await pair.peer.read(got.subarray(n))) ?? 0;
  assert.equal(text.decode(got), "nodelay");
});

Deno.test("WskControlSocket() records SO_KEEPALIVE and TCP_NODELAY set before connect and applies them at connect", async () => {
  using listener = listenLoopback(AF_INET);
  await using socket = await newSocket(AF_INET);
  const d = socket.Dispatch;
  assert.equal(socket.state, "INIT");
  assertStatus(await control(socket, WskSetOption, SO_KEEPALIVE, SOL_SOCKET, ulong(1)), 0);
  assertStatus(await control(socket, WskSetOption, TCP_NODELAY, IPPROTO_TCP, ulong(1)), 0);
  const out = new Uint8Array(4);
  let c = await control(socket, WskGetOption, SO_KEEPALIVE, SOL_SOCKET, null, out);
  assert.equal(c.information, 4);
  assert.equal(readUlong(out), 1, "SO_KEEPALIVE is recorded in INIT");

  assertStatus(await d.WskBind(socket, wildcard(AF_INET)), 0);
  assert.equal(socket.state, "BOUND");
  c = await control(socket, WskGetOption, TCP_NODELAY, IPPROTO_TCP, null, out);
  assert.equal(readUlong(out), 1, "TCP_NODELAY is recorded in BOUND");

  const connecting = d.WskConnect(socket, sockAddr("127.0.0.1", listener.port), 0, {
    timeout: 5000,
  });
  using peer = await listener.accept();
  assertStatus(await connecting, STATUS_SUCCESS);
  assert.equal(socket.state, "ESTAB");
  c = await control(socket, WskGetOption, SO_KEEPALIVE, SOL_SOCKET, null, out);
  assert.equal(readUlong(out), 1);
  c = await control(socket, WskGetOption, TCP_NODELAY, IPPROTO_TCP, null, out);
  assert.equal(readUlong(out), 1);
  await assertKernelKeepAlive(peer.remoteAddr.port, true);
});

Deno.test("WskControlSocket() completes WskGetOption with STATUS_BUFFER_TOO_SMALL for an output under 4 bytes", async () => {
  await using pair = await connectedPair();
  for (const [code, level] of [[SO_KEEPALIVE, SOL_SOCKET], [TCP_NODELAY, IPPROTO_TCP]] as const) {
    const out = new Uint8Array(3).fill(0xee);
    const c = await control(pair.socket, WskGetOption, code, level, null, out);
    assertStatus(c, STATUS_BUFFER_TOO_SMALL, `option ${code}:`);
    assert.equal(c.information, 0);
    assert.deepEqual(out, new Uint8Array([0xee, 0xee, 0xee]), "nothing is written");
  }
});

Deno.test("WskControlSocket() completes WskSetOption with STATUS_INVALID_PARAMETER for a value that is not 4 bytes", async () => {
  await using pair = await connectedPair();
  const { socket } = pair;
  for (const input of [new Uint8Array(0), new Uint8Array([1]), new Uint8Array(8).fill(1), null]) {
    for (const [code, level] of [[SO_KEEPALIVE, SOL_SOCKET], [TCP_NODELAY, IPPROTO_TCP]] as const) {
      const c = await control(socket, WskSetOption, code, level, input);
      assertStatus(c, STATUS_INVALID_PARAMETER, `option ${code}, input ${input?.length}:`);
      assert.equal(c.information, 0);
    }
  }
  // The refused sets changed nothing.
  const out = new Uint8Array(4);
  await control(socket, WskGetOption, SO_KEEPALIVE, SOL_SOCKET, null, out);
  assert.equal(readUlong(out), 0);
});

// ---------------------------------------------------------------------------------------------
// Unsupported and unknown requests

/** `{ name, level, code }` for each option of `codes` (keyed by its name) at `level`. */
function optionsAt(level: number, codes: Record<string, number>) {
  return Object.entries(codes).map(([name, code]) => ({ name, level, code }));
}

const UNSUPPORTED_OPTIONS: ReadonlyArray<{ name: string; level: number; code: number }> = [
  ...optionsAt(SOL_SOCKET, {
    SO_RCVBUF,
    SO_SNDBUF,
    SO_REUSEADDR,
    SO_EXCLUSIVEADDRUSE,
    SO_CONDITIONAL_ACCEPT,
    SO_BROADCAST,
    SO_WSK_SECURITY,
  }),
  ...optionsAt(IPPROTO_TCP, { TCP_FASTOPEN, TCP_KEEPIDLE, TCP_MAXRT, TCP_KEEPCNT, TCP_KEEPINTVL }),
  ...optionsAt(IPPROTO_IPV6, { IPV6_V6ONLY }),
];

Deno.test("WskControlSocket() completes documented but unsupported options with STATUS_NOT_SUPPORTED and a message", async () => {
  await using pair = await connectedPair(AF_INET6);
  await using fresh = await newSocket(AF_INET6);
  for (const socket of [fresh, pair.socket]) {
    for (const { name, level, code } of UNSUPPORTED_OPTIONS) {
      for (const type of [WskSetOption, WskGetOption] as const) {
        const out = new Uint8Array(8);
        const c = await control(socket, type, code, level, ulong(1), out);
        assertStatus(c, STATUS_NOT_SUPPORTED, `${name} (type ${type}, ${socket.state}):`);
        assert.equal(c.information, 0);
        assert.ok(c.message?.includes(name), `the message names ${name}: ${c.message}`);
      }
    }
  }
});

Deno.test("WskControlSocket() completes an unknown option with STATUS_INVALID_PARAMETER", async () => {
  await using pair = await connectedPair();
  const cases = [
    { level: SOL_SOCKET, code: 0x7777 },
    { level: IPPROTO_TCP, code: 0x7777 },
    // A known code at the wrong level is not that option.
    { level: IPPROTO_TCP, code: SO_KEEPALIVE },
    { level: SOL_SOCKET, code: TCP_NODELAY },
    { level: 0x1234, code: SO_KEEPALIVE },
  ];
  for (const { level, code } of cases) {
    for (const type of [WskSetOption, WskGetOption] as const) {
      const c = await control(pair.socket, type, code, level, ulong(1), new Uint8Array(4));
      assertStatus(c, STATUS_INVALID_PARAMETER, `level 0x${level.toString(16)} code ${code}:`);
      assert.equal(c.information, 0);
      assert.ok(c.message, "a message says why");
    }
  }
  // An unknown request type is refused too.
  const c = await pair.socket.Dispatch.WskControlSocket(
    pair.socket,
    7 as never,
    SO_KEEPALIVE,
    SOL_SOCKET,
    ulong(1),
    null,
  );
  assertStatus(c, STATUS_INVALID_PARAMETER);
});

Deno.test("WskControlSocket() completes an unknown IOCTL with STATUS_INVALID_PARAMETER", async () => {
  await using pair = await connectedPair();
  for (const code of [0x4f0000ff, 0x7777, 0]) {
    const c = await control(pair.socket, WskIoctl, code, 0, null, new Uint8Array(8));
    assertStatus(c, STATUS_INVALID_PARAMETER, `IOCTL 0x${code.toString(16)}:`);
    assert.equal(c.information, 0);
  }
});

Deno.test("WskControlSocket() completes a call on a closed socket with STATUS_INVALID_HANDLE", async () => {
  const socket = await newSocket();
  assertStatus(await socket.Dispatch.WskCloseSocket(socket), STATUS_SUCCESS);
  const out = new Uint8Array(8);
  assertStatus(
    await control(socket, WskSetOption, SO_KEEPALIVE, SOL_SOCKET, ulong(1)),
    STATUS_INVALID_HANDLE,
  );
  assertStatus(
    await control(socket, WskIoctl, SIO_WSK_QUERY_IDEAL_SEND_BACKLOG, 0, null, out),
    STATUS_INVALID_HANDLE,
  );
  assertStatus(await enableEvents(socket, WSK_EVENT_RECEIVE), STATUS_INVALID_HANDLE);
});

// ---------------------------------------------------------------------------------------------
// SIO_WSK_QUERY_RECEIVE_BACKLOG / SIO_WSK_QUERY_IDEAL_SEND_BACKLOG

Deno.test("WskControlSocket() answers SIO_WSK_QUERY_IDEAL_SEND_BACKLOG with an 8-byte SIZE_T", async () => {
  for (const family of [AF_INET, AF_INET6] as const) {
    await using pair = await connectedPair(family);
    const out = new Uint8Array(8).fill(0xee);
    const c = await control(pair.socket, WskIoctl, SIO_WSK_QUERY_IDEAL_SEND_BACKLOG, 0, null, out);
    assertStatus(c, STATUS_SUCCESS);
    assert.equal(c.information, 8);
    assert.equal(readSizeT(out), IDEAL_SEND_BACKLOG);
    assert.ok(IDEAL_SEND_BACKLOG > 0);
  }
});

Deno.test("WskControlSocket() answers SIO_WSK_QUERY_RECEIVE_BACKLOG with the bytes waiting to be received", async () => {
  const events = recorder(() => STATUS_DATA_NOT_ACCEPTED);
  await using pair = await connectedPair(AF_INET, {}, events.dispatch);
  const { socket } = pair;
  const out = new Uint8Array(8).fill(0xee);
  let c = await control(socket, WskIoctl, SIO_WSK_QUERY_RECEIVE_BACKLOG, 0, null, out);
  assertStatus(c, STATUS_SUCCESS);
  assert.equal(c.information, 8);
  assert.equal(readSizeT(out), 0, "nothing received yet");

  // A refused indication leaves its bytes with the provider: that is the receive backlog.
  assertStatus(await enableEvents(socket, WSK_EVENT_RECEIVE), 0);
  await pair.peer.write(text.encode("backlogged"));
  await waitFor(() => events.indications.length === 1, "the indication");
  const refused = events.indications[0]!.bytesIndicated;
  c = await control(socket, WskIoctl, SIO_WSK_QUERY_RECEIVE_BACKLOG, 0, null, out);
  assertStatus(c, STATUS_SUCCESS);
  assert.equal(c.information, 8);
  assert.equal(readSizeT(out), refused);

  const got = await receive(socket, 64);
  assertStatus(got.completion, STATUS_SUCCESS);
  assert.deepEqual(got.bytes, events.indications[0]!.bytes);
  assert.equal(got.completion.information, refused);
  c = await control(socket, WskIoctl, SIO_WSK_QUERY_RECEIVE_BACKLOG, 0, null, out);
  assert.equal(c.information, 8);
  assert.equal(readSizeT(out), 0, "the receive took the backlog");
});

Deno.test("WskControlSocket() completes the backlog IOCTLs with STATUS_INVALID_DEVICE_STATE before connect", async () => {
  await using socket = await newSocket();
  const out = new Uint8Array(8);
  for (const code of [SIO_WSK_QUERY_RECEIVE_BACKLOG, SIO_WSK_QUERY_IDEAL_SEND_BACKLOG]) {
    let c = await control(socket, WskIoctl, code, 0, null, out);
    assertStatus(c, STATUS_INVALID_DEVICE_STATE, `INIT, 0x${code.toString(16)}:`);
    assert.equal(c.information, 0);
    if (socket.state === "INIT") {
      assertStatus(await socket.Dispatch.WskBind(socket, wildcard(AF_INET)), 0);
    }
    c = await control(socket, WskIoctl, code, 0, null, out);
    assertStatus(c, STATUS_INVALID_DEVICE_STATE, `BOUND, 0x${code.toString(16)}:`);
  }
});

Deno.test("WskControlSocket() completes the backlog IOCTLs with STATUS_BUFFER_TOO_SMALL for an output under 8 bytes", async () => {
  await using pair = await connectedPair();
  for (const code of [SIO_WSK_QUERY_RECEIVE_BACKLOG, SIO_WSK_QUERY_IDEAL_SEND_BACKLOG]) {
    const out = new Uint8Array(4).fill(0xee);
    const c = await control(pair.socket, WskIoctl, code, 0, null, out);
    assertStatus(c, STATUS_BUFFER_TOO_SMALL, `0x${code.toString(16)}:`);
    assert.equal(c.information, 0);
    assert.deepEqual(out, new Uint8Array(4).fill(0xee));
  }
});

// ---------------------------------------------------------------------------------------------
// SO_WSK_EVENT_CALLBACK

Deno.test("WskControlSocket() refuses SO_WSK_EVENT_CALLBACK before connect with STATUS_INVALID_DEVICE_STATE", async () => {
  const events = recorder(() => STATUS_SUCCESS);
  await using socket = await newSocket(AF_INET, {}, events.dispatch);
  assertStatus(await enableEvents(socket, WSK_EVENT_RECEIVE), STATUS_INVALID_DEVICE_STATE);
  assertStatus(await socket.Dispatch.WskBind(socket, wildcard(AF_INET)), 0);
  assertStatus(
    await enableEvents(socket, WSK_EVENT_RECEIVE | WSK_EVENT_DISCONNECT),
    STATUS_INVALID_DEVICE_STATE,
  );
});

Deno.test("WskControlSocket() refuses to enable events with an IRP (STATUS_INVALID_PARAMETER)", async () => {
  const events = recorder(() => STATUS_SUCCESS);
  await using pair = await connectedPair(AF_INET, {}, events.dispatch);
  const c = await enableEvents(pair.socket, WSK_EVENT_SEND_BACKLOG, { timeout: 1000 });
  assertStatus(c, STATUS_INVALID_PARAMETER);
  await sleep(20);
  assert.equal(events.backlogs.length, 0, "the refused enable enabled nothing");
  // Disabling may carry an IRP.
  assertStatus(
    await enableEvents(pair.socket, WSK_EVENT_SEND_BACKLOG | WSK_EVENT_DISABLE, { timeout: 1000 }),
    STATUS_SUCCESS,
  );
});

Deno.test("WskControlSocket() refuses to enable an event whose callback is missing (STATUS_INVALID_PARAMETER)", async () => {
  const partial: WskClientConnectionDispatch = { WskReceiveEvent: () => STATUS_SUCCESS };
  await using pair = await connectedPair(AF_INET, {}, partial);
  assertStatus(await enableEvents(pair.socket, WSK_EVENT_DISCONNECT), STATUS_INVALID_PARAMETER);
  assertStatus(await enableEvents(pair.socket, WSK_EVENT_SEND_BACKLOG), STATUS_INVALID_PARAMETER);
  assertStatus(
    await enableEvents(pair.socket, WSK_EVENT_RECEIVE | WSK_EVENT_DISCONNECT),
    STATUS_INVALID_PARAMETER,
  );
  assertStatus(await enableEvents(pair.socket, WSK_EVENT_RECEIVE), STATUS_SUCCESS);

  await using bare = await connectedPair();
  for (const mask of [WSK_EVENT_RECEIVE, WSK_EVENT_DISCONNECT, WSK_EVENT_SEND_BACKLOG]) {
    assertStatus(await enableEvents(bare.socket, mask), STATUS_INVALID_PARAMETER, `0x${mask}:`);
  }
});

Deno.test("WskControlSocket() refuses SO_WSK_EVENT_CALLBACK with a wrong NpiId or mask (STATUS_INVALID_PARAMETER)", async () => {
  const events = recorder(() => STATUS_SUCCESS);
  await using pair = await connectedPair(AF_INET, {}, events.dispatch);
  const { socket } = pair;
  const bad = [
    { NpiId: "00000000-0000-0000-0000-000000000000", EventMask: WSK_EVENT_RECEIVE },
    { NpiId: "", EventMask: WSK_EVENT_RECEIVE },
    // No event at all, and an event a connection socket does not have (WSK_EVENT_ACCEPT).
    { NpiId: NPI_WSK_INTERFACE_ID, EventMask: 0 },
    { NpiId: NPI_WSK_INTERFACE_ID, EventMask: 0x200 },
  ];
  for (const input of bad) {
    const c = await control(socket, WskSetOption, SO_WSK_EVENT_CALLBACK, SOL_SOCKET, input);
    assertStatus(c, STATUS_INVALID_PARAMETER, JSON.stringify(input));
  }
  // Raw bytes are not a WSK_EVENT_CALLBACK_CONTROL, and the option cannot be read.
  assertStatus(
    await control(socket, WskSetOption, SO_WSK_EVENT_CALLBACK, SOL_SOCKET, ulong(0x40)),
    STATUS_INVALID_PARAMETER,
  );
  assertStatus(
    await control(socket, WskGetOption, SO_WSK_EVENT_CALLBACK, SOL_SOCKET, null, ulong(0)),
    STATUS_INVALID_PARAMETER,
  );
});

Deno.test("WskControlSocket() refuses to disable two events in one call (STATUS_INVALID_PARAMETER)", async () => {
  const events = recorder(() => STATUS_SUCCESS);
  await using pair = await connectedPair(AF_INET, {}, events.dispatch);
  assertStatus(await enableEvents(pair.socket, WSK_EVENT_RECEIVE | WSK_EVENT_DISCONNECT), 0);
  assertStatus(
    await enableEvents(pair.socket, WSK_EVENT_RECEIVE | WSK_EVENT_DISCONNECT | WSK_EVENT_DISABLE),
    STATUS_INVALID_PARAMETER,
  );
  // Both are still on: data is indicated and the FIN fires the disconnect event.
  await pair.peer.write(text.encode("still on"));
  await waitFor(() => events.indicatedBytes() === 8, "the indication");
  await pair.peer.closeWrite();
  await waitFor(() => events.disconnects.length === 1, "the disconnect event");
  assert.equal(events.disconnects[0]!.flags, 0);
});

// ---------------------------------------------------------------------------------------------
// WskReceiveEvent

Deno.test("WskReceiveEvent() indicates the peer's data with the socket context", async () => {
  const context = { name: "receive context" };
  const events = recorder(() => STATUS_SUCCESS);
  await using pair = await connectedPair(AF_INET6, {}, events.dispatch, context);
  assertStatus(await enableEvents(pair.socket, WSK_EVENT_RECEIVE), 0);
  const first = text.encode("first indication");
  const second = new Uint8Array(100_000).map((_, i) => (i * 7) & 0xff);
  await pair.peer.write(first);
  await waitFor(() => events.indicatedBytes() === first.length, "the first indication");
  let written = 0;
  while (written < second.length) written += await pair.peer.write(second.subarray(written));
  const total = first.length + second.length;
  await waitFor(() => events.indicatedBytes() >= total, "all data indicated");

  assert.equal(events.indicatedBytes(), total);
  assert.deepEqual(events.allBytes(), concatBytes([first, second]));
  for (const call of events.indications) {
    assert.equal(call.context, context);
    assert.equal(call.bytes.length, call.bytesIndicated, "bytesIndicated is the list's total");
    assert.ok(call.list !== null);
  }
  assert.equal(pair.socket.bytesReceived, total);
});

Deno.test("WskRelease() returns a list kept with STATUS_PENDING once, and refuses a second release", async () => {
  const events = recorder(() => STATUS_PENDING);
  await using pair = await connectedPair(AF_INET, {}, events.dispatch);
  const { socket } = pair;
  assertStatus(await enableEvents(socket, WSK_EVENT_RECEIVE), 0);
  await pair.peer.write(text.encode("kept one"));
  await waitFor(() => events.indicatedBytes() === 8, "the first indication");
  // Events go on while the client keeps lists; several may be held at once.
  await pair.peer.write(text.encode("kept two"));
  await waitFor(() => events.indicatedBytes() === 16, "the second indication");
  assert.equal(socket.heldIndications, events.indications.length);
  const first = events.indications[0]!;
  // A kept list still holds its bytes after later indications (the provider did not reuse them).
  assert.equal(text.decode(indicationBytes(first.list)), text.decode(first.bytes));
  assert.equal(text.decode(events.allBytes()), "kept onekept two");

  const held = socket.heldIndications;
  let c = await socket.Dispatch.WskRelease(socket, first.list!);
  assertStatus(c, STATUS_SUCCESS);
  assert.equal(socket.heldIndications, held - 1);
  c = await socket.Dispatch.WskRelease(socket, first.list!);
  assertStatus(c, STATUS_INVALID_PARAMETER, "second release:");
  assert.equal(socket.heldIndications, held - 1);

  // Something that was never indicated is not a held list.
  const stranger: WskDataIndication = { Next: null, Buffer: wskBuf(text.encode("kept one")) };
  assertStatus(await socket.Dispatch.WskRelease(socket, stranger), STATUS_INVALID_PARAMETER);
  assertStatus(await socket.Dispatch.WskRelease(socket, null as never), STATUS_INVALID_PARAMETER);

  for (const call of events.indications.slice(1)) {
    assertStatus(await socket.Dispatch.WskRelease(socket, call.list!), STATUS_SUCCESS);
  }
  assert.equal(socket.heldIndications, 0);
});

Deno.test("WskReceiveEvent() returning STATUS_DATA_NOT_ACCEPTED stops indications until a WskReceive gets the data", async () => {
  const events = recorder((_call, index) =>
    index === 0 ? STATUS_DATA_NOT_ACCEPTED : STATUS_SUCCESS
  );
  await using pair = await connectedPair(AF_INET, {}, events.dispatch);
  const { socket } = pair;
  assertStatus(await enableEvents(socket, WSK_EVENT_RECEIVE), 0);
  await pair.peer.write(text.encode("refused data"));
  await waitFor(() => events.indications.length === 1, "the first indication");
  const refused = events.indications[0]!.bytes;
  assert.ok(refused.length > 0);

  await pair.peer.write(text.encode(" more data"));
  await sleep(200);
  assert.equal(events.indications.length, 1, "no indication while refused and no receive done");

  const got = await receive(socket, 1024);
  assertStatus(got.completion, STATUS_SUCCESS);
  assert.deepEqual(got.bytes, refused, "WskReceive gets exactly the refused bytes");
  assert.equal(got.completion.information, refused.length);

  // The completed receive restarts events: the rest arrives by indication, nothing lost.
  const total = "refused data more data".length;
  await waitFor(
    () => got.bytes.length + events.indicatedBytes() - refused.length >= total,
    "the rest by indication",
  );
  const afterwards = concatBytes(events.indications.slice(1).map((call) => call.bytes));
  assert.equal(text.decode(concatBytes([got.bytes, afterwards])), "refused data more data");
});

Deno.test("WskReceiveEvent() partial accept leaves the rest for the next WskReceive", async () => {
  const events = recorder((_call, index) =>
    index === 0 ? { status: STATUS_SUCCESS, bytesAccepted: 3 } : STATUS_SUCCESS
  );
  await using pair = await connectedPair(AF_INET, {}, events.dispatch);
  const { socket } = pair;
  assertStatus(await enableEvents(socket, WSK_EVENT_RECEIVE), 0);
  await pair.peer.write(text.encode("abcdefgh"));
  await waitFor(() => events.indications.length === 1, "the indication");
  const first = events.indications[0]!.bytes;
  assert.ok(
    first.length > 3,
    `the test needs more than 3 bytes in one indication (${first.length})`,
  );

  await pair.peer.write(text.encode("ijk"));
  await sleep(200);
  assert.equal(events.indications.length, 1, "events stay off after a partial accept");

  const got = await receive(socket, 1024);
  assertStatus(got.completion, STATUS_SUCCESS);
  assert.deepEqual(got.bytes, first.subarray(3), "the receive starts after the accepted bytes");

  await waitFor(
    () => 3 + got.bytes.length + events.indicatedBytes() - first.length >= 11,
    "the rest by indication",
  );
  const afterwards = concatBytes(events.indications.slice(1).map((call) => call.bytes));
  assert.equal(
    text.decode(concatBytes([first.subarray(0, 3), got.bytes, afterwards])),
    "abcdefghijk",
  );
});

Deno.test("WskReceive() pending takes precedence over WskReceiveEvent", async () => {
  const events = recorder(() => STATUS_SUCCESS);
  await using pair = await connectedPair(AF_INET, {}, events.dispatch);
  const { socket } = pair;
  assertStatus(await enableEvents(socket, WSK_EVENT_RECEIVE), 0);
  const buffer = new Uint8Array(64);
  const pending = socket.Dispatch.WskReceive(socket, wskBuf(buffer), 0, { timeout: 5000 });
  await sleep(20);
  await pair.peer.write(text.encode("for the irp"));
  const c = await pending;
  assertStatus(c, STATUS_SUCCESS);
  assert.equal(text.decode(buffer.subarray(0, c.information)), "for the irp");
  assert.equal(events.indications.length, 0, "the event saw nothing");

  // With no receive pending, the next data goes to the event.
  await pair.peer.write(text.encode("for the event"));
  await waitFor(() => events.indicatedBytes() === 13, "the indication");
  assert.equal(text.decode(events.allBytes()), "for the event");
});

Deno.test("WskControlSocket() disabling WSK_EVENT_RECEIVE stops indications and keeps the data for WskReceive", async () => {
  const events = recorder(() => STATUS_SUCCESS);
  await using pair = await connectedPair(AF_INET, {}, events.dispatch);
  const { socket } = pair;
  assertStatus(await enableEvents(socket, WSK_EVENT_RECEIVE), 0);
  await pair.peer.write(text.encode("on"));
  await waitFor(() => events.indicatedBytes() === 2, "the indication");
  assertStatus(await enableEvents(socket, WSK_EVENT_RECEIVE | WSK_EVENT_DISABLE), STATUS_SUCCESS);

  await pair.peer.write(text.encode("off"));
  await sleep(200);
  assert.equal(events.indicatedBytes(), 2, "no indication after the disable");
  const got = await receive(socket, 64);
  assertStatus(got.completion, STATUS_SUCCESS);
  assert.equal(text.decode(got.bytes), "off");
  assert.equal(events.indicatedBytes(), 2);
});

// ---------------------------------------------------------------------------------------------
// WskDisconnectEvent

Deno.test("WskDisconnectEvent() fires with flags 0 on the peer's FIN and the socket is in RFIN", async () => {
  const context = Symbol("disconnect context");
  const events = recorder(() => STATUS_SUCCESS);
  await using pair = await connectedPair(AF_INET, {}, events.dispatch, context);
  assertStatus(await enableEvents(pair.socket, WSK_EVENT_DISCONNECT), 0);
  await sleep(20);
  assert.equal(events.disconnects.length, 0);
  await pair.peer.closeWrite();
  await waitFor(() => events.disconnects.length > 0, "the disconnect event");
  assert.deepEqual(events.disconnects, [{ context, flags: 0 }]);
  assert.equal(pair.socket.state, "RFIN");
  // RFIN: receives complete with 0 bytes, and we may still send.
  const got = await receive(pair.socket, 16);
  assertStatus(got.completion, STATUS_SUCCESS);
  assert.equal(got.completion.information, 0);
  const sent = await pair.socket.Dispatch.WskSend(pair.socket, wskBuf(text.encode("bye")));
  assertStatus(sent, STATUS_SUCCESS);
  assert.equal(sent.information, 3);
});

Deno.test("WskReceive() completes at once from data read ahead for WskDisconnectEvent, while the model waits for more", async () => {
  const events = recorder(() => STATUS_SUCCESS);
  await using pair = await connectedPair(AF_INET, {}, events.dispatch);
  assertStatus(await enableEvents(pair.socket, WSK_EVENT_DISCONNECT), 0);
  await pair.peer.write(text.encode("early"));
  await waitFor(() => pair.socket.bytesReceived === 5, "the read-ahead");
  // The model now waits in a read for more data; the receive must not wait with it.
  const got = await receive(pair.socket, 16, 0, 1000);
  assertStatus(got.completion, STATUS_SUCCESS);
  assert.equal(text.decode(got.bytes), "early");
  await pair.peer.write(text.encode("later"));
  const next = await receive(pair.socket, 16, 0, 1000);
  assertStatus(next.completion, STATUS_SUCCESS);
  assert.equal(text.decode(next.bytes), "later");
});

/** A python3 peer that listens, accepts one connection, waits for a byte, then resets it. */
const PYTHON_RESETTER = PY_LISTEN + `
conn, _ = srv.accept()
conn.settimeout(10)
got = conn.recv(1)
conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
conn.close()
srv.close()
print("reset after", got.decode(), flush=True)
`;

for (const family of [AF_INET, AF_INET6] as const) {
  Deno.test(`WskDisconnectEvent() fires with WSK_FLAG_ABORTIVE when a python3 peer resets (${family === AF_INET ? "IPv4" : "IPv6"})`, async () => {
    const host = loopbackHost(family);
    await using python = await PythonPeer.start(PYTHON_RESETTER, [host]);
    const events = recorder(() => STATUS_SUCCESS);
    const context = { name: "reset context" };
    await using socket = await newSocket(family, {}, events.dispatch, context);
    const port = python.port;
    assert.ok(port > 0, "the peer printed its port");
    const d = socket.Dispatch;
    assertStatus(await d.WskBind(socket, wildcard(family)), 0);
    assertStatus(await d.WskConnect(socket, sockAddr(host, port), 0, { timeout: 5000 }), 0);
    assertStatus(await enableEvents(socket, WSK_EVENT_DISCONNECT | WSK_EVENT_RECEIVE), 0);
    assertStatus(await d.WskSend(socket, wskBuf(text.encode("x"))), 0);
    assert.equal(await python.nextLine(), "reset after x");
    await waitFor(() => events.disconnects.length > 0, "the disconnect event");
    assert.deepEqual(events.disconnects, [{ context, flags: WSK_FLAG_ABORTIVE }]);
    assert.equal(socket.state, "ABORTED");
    assert.equal(events.indications.length, 0, "no data was indicated");
    assert.equal(await python.exitCode(), 0, `python3 failed: ${python.stderr.text()}`);
  });
}

// ---------------------------------------------------------------------------------------------
// WskSendBacklogEvent

Deno.test("WskSendBacklogEvent() fires with the ideal send backlog after it is enabled", async () => {
  const context = { name: "backlog context" };
  const events = recorder(() => STATUS_SUCCESS);
  await using pair = await connectedPair(AF_INET, {}, events.dispatch, context);
  await sleep(20);
  assert.equal(events.backlogs.length, 0, "nothing before enabling");
  assertStatus(await enableEvents(pair.socket, WSK_EVENT_SEND_BACKLOG), 0);
  await waitFor(() => events.backlogs.length > 0, "the send backlog event");
  assert.deepEqual(events.backlogs[0], { context, size: IDEAL_SEND_BACKLOG });
  // It matches what the IOCTL reports.
  const out = new Uint8Array(8);
  await control(pair.socket, WskIoctl, SIO_WSK_QUERY_IDEAL_SEND_BACKLOG, 0, null, out);
  assert.equal(readSizeT(out), events.backlogs[0]!.size);
});

// ---------------------------------------------------------------------------------------------
// Throwing callbacks

Deno.test("WskControlSocket() events: a throwing client callback does not throw out of the provider", async () => {
  const calls: string[] = [];
  const dispatch: WskClientConnectionDispatch = {
    WskReceiveEvent(): NTSTATUS {
      calls.push("receive");
      throw new Error("client bug in WskReceiveEvent");
    },
    WskDisconnectEvent(): NTSTATUS {
      calls.push("disconnect");
      throw new Error("client bug in WskDisconnectEvent");
    },
    WskSendBacklogEvent(): NTSTATUS {
      calls.push("backlog");
      throw new Error("client bug in WskSendBacklogEvent");
    },
  };
  await using pair = await connectedPair(AF_INET, {}, dispatch);
  const { socket } = pair;
  const enabled = await enableEvents(
    socket,
    WSK_EVENT_RECEIVE | WSK_EVENT_DISCONNECT | WSK_EVENT_SEND_BACKLOG,
  );
  assertStatus(enabled, STATUS_SUCCESS);
  await pair.peer.write(text.encode("data for a broken client"));
  await pair.peer.closeWrite();
  await waitFor(
    () => ["receive", "disconnect", "backlog"].every((name) => calls.includes(name)),
    "all three callbacks",
  );
  assert.equal(socket.state, "RFIN");
  // The throw counted as a refusal: the data waits for WskReceive, then the FIN.
  const got = await receive(socket, 1024);
  assertStatus(got.completion, STATUS_SUCCESS);
  assert.equal(text.decode(got.bytes), "data for a broken client");
  const fin = await receive(socket, 1024);
  assertStatus(fin.completion, STATUS_SUCCESS);
  assert.equal(fin.completion.information, 0);
  // The socket still works for sending.
  const sent = await socket.Dispatch.WskSend(socket, wskBuf(text.encode("ok")));
  assertStatus(sent, STATUS_SUCCESS);
  assert.equal(sent.information, 2);
});

// Edge cases found in review: partial WAITALL receives, sends that cannot be called off,
// callbacks that leave out bytesAccepted, read-ahead bounds and arguments of the wrong type.

import assert from "node:assert/strict";
import {
  SOL_SOCKET,
  STATUS_CONNECTION_ABORTED,
  STATUS_INVALID_PARAMETER,
  STATUS_IO_TIMEOUT,
  STATUS_PENDING,
  STATUS_SUCCESS,
  WSK_EVENT_RECEIVE,
  WSK_FLAG_WAITALL,
  wskBuf,
  type WskClientConnectionDispatch,
  type WskDataIndication,
  WskGetOption,
} from "../../provider/mod.ts";
import { assertStatus, connectedPair, enableEvents, readAll, sleep, text } from "../_helpers.ts";

for (const backing of ["deno", "node"] as const) {
  Deno.test(`WskReceive() with WSK_FLAG_WAITALL that times out gives its bytes to the next receive (${backing} backing)`, async () => {
    await using pair = await connectedPair(undefined, { backing });
    const { socket, peer } = pair;
    const d = socket.Dispatch;
    await peer.write(text.encode("ABCDE"));
    const buffer = new Uint8Array(10);
    const waited = await d.WskReceive(socket, wskBuf(buffer), WSK_FLAG_WAITALL, { timeout: 300 });
    assertStatus(waited, STATUS_IO_TIMEOUT);
    assert.equal(waited.information, 0);
    await peer.write(text.encode("FGH"));
    const next = new Uint8Array(16);
    let got = "";
    for (let i = 0; i < 4 && got.length < 8; i++) {
      const c = await d.WskReceive(socket, wskBuf(next), 0, { timeout: 2000 });
      assertStatus(c, STATUS_SUCCESS);
      got += text.decode(next.subarray(0, c.information));
    }
    assert.equal(got, "ABCDEFGH", "no byte lost, none repeated, order kept");
  });
}

Deno.test("WskSend() on a node-backed socket cancelled part-way aborts the connection with a reset", async () => {
  await using pair = await connectedPair(undefined, { backing: "node" });
  const { socket, peer } = pair;
  const sent = await socket.Dispatch.WskSend(
    socket,
    wskBuf(new Uint8Array(32 * 1024 * 1024)),
    0,
    { timeout: 200 },
  );
  assertStatus(sent, STATUS_IO_TIMEOUT);
  assert.equal(socket.state, "ABORTED");
  const seen = await readAll(peer);
  assert.ok(seen.error instanceof Deno.errors.ConnectionReset, `peer saw ${String(seen.error)}`);
  assert.ok(seen.bytes.length < 32 * 1024 * 1024);
  const after = await socket.Dispatch.WskReceive(socket, wskBuf(new Uint8Array(4)));
  assertStatus(after, STATUS_CONNECTION_ABORTED);
});

Deno.test("WskReceiveEvent() returning { status: STATUS_SUCCESS } without bytesAccepted takes all the data", async () => {
  const seen: number[] = [];
  const dispatch: WskClientConnectionDispatch = {
    WskReceiveEvent(_context, _flags, _indication, bytesIndicated) {
      seen.push(bytesIndicated);
      return { status: STATUS_SUCCESS } as never;
    },
  };
  await using pair = await connectedPair(undefined, {}, dispatch);
  assertStatus(await enableEvents(pair.socket, WSK_EVENT_RECEIVE), STATUS_SUCCESS);
  await pair.peer.write(text.encode("abc"));
  for (let i = 0; i < 100 && seen.length === 0; i++) await sleep(10);
  await pair.peer.write(text.encode("defg"));
  for (let i = 0; i < 100 && seen.reduce((a, b) => a + b, 0) < 7; i++) await sleep(10);
  assert.deepEqual(seen.reduce((a, b) => a + b, 0), 7);
  assert.ok(seen.every(Number.isInteger), `indicated counts ${seen.join(", ")}`);
  const backlog = new Uint8Array(8);
  const query = await pair.socket.Dispatch.WskControlSocket(
    pair.socket,
    2,
    0x4f000004,
    0,
    null,
    backlog,
  );
  assertStatus(query, STATUS_SUCCESS);
  assert.equal(new DataView(backlog.buffer).getBigUint64(0, true), 0n);
});

Deno.test("WskReceiveEvent() lists the client keeps count toward the 1 MiB read-ahead bound until released", async () => {
  const kept: WskDataIndication[] = [];
  let indicated = 0;
  const dispatch: WskClientConnectionDispatch = {
    WskReceiveEvent(_context, _flags, indication, bytesIndicated) {
      if (indication) kept.push(indication);
      indicated += bytesIndicated;
      return STATUS_PENDING;
    },
  };
  await using pair = await connectedPair(undefined, {}, dispatch);
  const { socket, peer } = pair;
  assertStatus(await enableEvents(pair.socket, WSK_EVENT_RECEIVE), STATUS_SUCCESS);
  // 8 MiB offered; the model must stop near 1 MiB while the lists are held.
  const total = 8 * 1024 * 1024;
  const writing = (async () => {
    const chunk = new Uint8Array(256 * 1024);
    for (let sent = 0; sent < total;) {
      sent += await peer.write(chunk.subarray(0, Math.min(chunk.length, total - sent)));
    }
  })();
  await sleep(500);
  const heldWhileKept = indicated;
  assert.ok(heldWhileKept >= 64 * 1024, `only ${heldWhileKept} bytes indicated`);
  assert.ok(heldWhileKept <= (1 << 20) + 64 * 1024, `read ${heldWhileKept} bytes ahead`);
  // Releasing the lists makes room: the rest is indicated, and nothing is lost.
  for (let i = 0; i < 400 && indicated < total; i++) {
    while (kept.length > 0) {
      assertStatus(await socket.Dispatch.WskRelease(socket, kept.shift()!), STATUS_SUCCESS);
    }
    await sleep(10);
  }
  await writing;
  while (kept.length > 0) {
    assertStatus(await socket.Dispatch.WskRelease(socket, kept.shift()!), STATUS_SUCCESS);
  }
  assert.equal(indicated, total);
});

Deno.test("dispatch calls complete with STATUS_INVALID_PARAMETER for arguments of the wrong type", async () => {
  await using pair = await connectedPair();
  const { socket } = pair;
  const d = socket.Dispatch;
  const calls = [
    () => d.WskSend(socket, { Mdl: { bytes: new Uint8Array(2) } as never, Offset: 0, Length: 5 }),
    () =>
      d.WskControlSocket(socket, WskGetOption, 10n as never, SOL_SOCKET, null, new Uint8Array(4)),
    () => d.WskControlSocket(socket, WskGetOption, 8, Symbol() as never, null, new Uint8Array(4)),
    () => d.WskReceive(socket, wskBuf(new Uint8Array(1)), 0, { timeout: 3e9 }),
    () => d.WskDisconnect(socket, "bye" as never),
  ];
  for (const [i, call] of calls.entries()) {
    let completion;
    try {
      completion = await call();
    } catch (error) {
      assert.fail(`call ${i} threw ${String(error)}`);
    }
    assertStatus(completion, STATUS_INVALID_PARAMETER, `call ${i}`);
  }
  assert.equal(socket.state, "ESTAB");
});

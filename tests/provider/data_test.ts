// WskSend, WskReceive, WskDisconnect (and the reserved WskSendEx/WskReceiveEx) on real loopback
// connections, on both backings. Peers are Deno conns (connectedPair) or python3 processes when the
// test needs what Deno cannot do or see: send a reset, or tell a FIN from a reset.

import assert from "node:assert/strict";
import {
  type AddressFamily,
  type BackingPreference,
  type ConnectionState,
  type Mdl,
  sockAddr,
  STATUS_CANCELLED,
  STATUS_CONNECTION_ABORTED,
  STATUS_CONNECTION_RESET,
  STATUS_INVALID_DEVICE_STATE,
  STATUS_INVALID_HANDLE,
  STATUS_INVALID_PARAMETER,
  STATUS_IO_TIMEOUT,
  STATUS_NOT_SUPPORTED,
  STATUS_SUCCESS,
  wildcard,
  WSK_FLAG_ABORTIVE,
  WSK_FLAG_DRAIN,
  WSK_FLAG_NODELAY,
  WSK_FLAG_OOB,
  WSK_FLAG_WAITALL,
  type WskBuf,
  wskBuf,
  type WskConnectionSocket,
} from "../../provider/mod.ts";
import {
  AF_INET,
  AF_INET6,
  assertStatus,
  cancelAfter,
  concatBytes,
  connectedPair,
  hex,
  loopbackHost,
  newSocket,
  readAll,
  readExactly,
  receive,
  sha256,
  sleep,
  text,
  within,
} from "../_helpers.ts";
import { PY_LISTEN, PythonPeer } from "../_python.ts";

const BACKINGS = ["deno", "node"] as const;

// ---------------------------------------------------------------------------------------------
// Helpers local to this file

/** Watches a promise so a test can ask whether it has settled yet. */
function track<T>(
  promise: Promise<T>,
): { readonly settled: boolean; readonly promise: Promise<T> } {
  let settled = false;
  const watched = promise.finally(() => settled = true);
  return {
    get settled() {
      return settled;
    },
    promise: watched,
  };
}

function randomBytes(length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let offset = 0; offset < length; offset += 65536) {
    crypto.getRandomValues(bytes.subarray(offset, Math.min(length, offset + 65536)));
  }
  return bytes;
}

function fromHex(s: string): Uint8Array {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Receives until `length` bytes arrived (each completion must succeed with 1..chunk bytes). */
async function receiveExactly(
  socket: WskConnectionSocket,
  length: number,
  chunk = 256 * 1024,
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let total = 0;
  for (let round = 0; total < length; round++) {
    assert.ok(round < 100_000, "receiveExactly: too many rounds");
    const { completion, bytes } = await receive(socket, Math.min(chunk, length - total));
    assertStatus(completion, STATUS_SUCCESS, `receive after ${total} bytes:`);
    assert.ok(completion.information > 0, `unexpected FIN after ${total} of ${length} bytes`);
    parts.push(bytes.slice());
    total += bytes.length;
  }
  return concatBytes(parts);
}

/** Sends one buffer and checks the completion. */
async function sendAll(socket: WskConnectionSocket, bytes: Uint8Array, flags = 0): Promise<void> {
  const sent = await socket.Dispatch.WskSend(socket, wskBuf(bytes), flags, { timeout: 10_000 });
  assertStatus(sent, STATUS_SUCCESS, "send:");
  assert.equal(sent.information, bytes.length);
}

function assertState(socket: WskConnectionSocket, expected: ConnectionState): void {
  assert.equal(socket.state, expected);
}

// ---------------------------------------------------------------------------------------------
// python3 peers. The scripted peer takes one command per line on stdin and answers each with
// one JSON line; it sees what Deno cannot show (a FIN versus a reset) and can reset a connection
// (SO_LINGER 0 close).

const SCRIPTED_PEER = PY_LISTEN + `
conn = None

def recv_until_end():
    chunks = []
    while True:
        try:
            chunk = conn.recv(65536)
        except ConnectionResetError:
            return chunks, "reset"
        except socket.timeout:
            return chunks, "timeout"
        if not chunk:
            return chunks, "eof"
        chunks.append(chunk.hex())

while True:
    line = sys.stdin.readline()
    if not line:
        break
    cmd, _, arg = line.strip().partition(" ")
    out = {"ok": True}
    try:
        if cmd == "accept":
            conn, addr = srv.accept()
            conn.settimeout(10)
            out["peer"] = [addr[0], addr[1]]
        elif cmd == "send":
            conn.sendall(bytes.fromhex(arg))
        elif cmd == "recv":
            want = int(arg)
            data = b""
            while len(data) < want:
                chunk = conn.recv(want - len(data))
                if not chunk:
                    break
                data += chunk
            out["data"] = data.hex()
        elif cmd == "recvall":
            chunks, end = recv_until_end()
            out["chunks"] = chunks
            out["end"] = end
        elif cmd == "rst":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
        elif cmd == "close":
            conn.close()
        else:
            out = {"ok": False, "error": "unknown command " + cmd}
    except OSError as e:
        out = {"ok": False, "error": type(e).__name__, "errno": e.errno}
    print(json.dumps(out), flush=True)
srv.close()
if conn is not None:
    conn.close()
`;

const ECHO_PEER = PY_LISTEN + `
conn, _ = srv.accept()
srv.close()
conn.settimeout(20)
total = 0
while True:
    data = conn.recv(262144)
    if not data:
        break
    conn.sendall(data)
    total += len(data)
conn.shutdown(socket.SHUT_WR)
print(json.dumps({"ok": True, "echoed": total}), flush=True)
conn.close()
`;

interface PeerReply {
  readonly ok: boolean;
  readonly port?: number;
  readonly peer?: [string, number];
  readonly data?: string;
  readonly chunks?: string[];
  readonly end?: "eof" | "reset" | "timeout";
  readonly echoed?: number;
  readonly error?: string;
}

/** Starts a python3 peer script (SCRIPTED_PEER or ECHO_PEER) that answers in JSON lines. */
function startPeer(script: string, family: AddressFamily): Promise<PythonPeer<PeerReply>> {
  return PythonPeer.start<PeerReply>(script, [loopbackHost(family)], { stdin: true });
}

/** A WSK socket of `backing`, connected to a python peer that accepted it. */
async function connectToPeer(
  peer: PythonPeer<PeerReply>,
  family: AddressFamily,
  backing: BackingPreference,
  acceptCommand = true,
): Promise<WskConnectionSocket> {
  const socket = await newSocket(family, { backing });
  try {
    assertStatus(await socket.Dispatch.WskBind(socket, wildcard(family)), STATUS_SUCCESS, "bind:");
    const accepting = acceptCommand ? peer.ask("accept") : null;
    const connected = await socket.Dispatch.WskConnect(
      socket,
      sockAddr(loopbackHost(family), peer.port),
      0,
      { timeout: 5000 },
    );
    assertStatus(connected, STATUS_SUCCESS, "connect:");
    assert.equal(socket.backing, backing);
    if (accepting !== null) {
      const accepted = await accepting;
      assert.ok(accepted.ok, `python accept failed: ${JSON.stringify(accepted)}`);
      const local = await socket.Dispatch.WskGetLocalAddress(socket);
      assert.deepEqual(accepted.peer, [local.address?.address, local.address?.port]);
    }
    return socket;
  } catch (error) {
    await socket.Dispatch.WskCloseSocket(socket);
    throw error;
  }
}

function peerData(reply: PeerReply): Uint8Array {
  assert.ok(reply.ok, `python peer failed: ${JSON.stringify(reply)}`);
  if (reply.chunks) return concatBytes(reply.chunks.map(fromHex));
  return fromHex(reply.data ?? "");
}

// ---------------------------------------------------------------------------------------------
// WskSend

for (const backing of BACKINGS) {
  Deno.test(`WskSend() delivers the whole buffer and completes with its length (${backing} backing)`, async () => {
    await using pair = await connectedPair(AF_INET, { backing });
    const { socket, peer } = pair;
    assert.equal(socket.backing, backing);
    const data = randomBytes(100_000);
    const reading = readExactly(peer, data.length);
    const sent = await socket.Dispatch.WskSend(socket, wskBuf(data), 0, { timeout: 5000 });
    assertStatus(sent, STATUS_SUCCESS);
    assert.equal(sent.information, data.length);
    assert.deepEqual(await reading, data);
    assertState(socket, "ESTAB");
  });

  Deno.test(`WskSend() sends an MDL chain and only the Offset/Length range of it (${backing} backing)`, async () => {
    await using pair = await connectedPair(AF_INET, { backing });
    const { socket, peer } = pair;
    const a = text.encode("alpha-");
    const b = text.encode("bravo-");
    const c = text.encode("charlie");
    const chained = await socket.Dispatch.WskSend(socket, wskBuf(a, b, c), 0, { timeout: 5000 });
    assertStatus(chained, STATUS_SUCCESS);
    assert.equal(chained.information, 19);
    assert.equal(text.decode(await readExactly(peer, 19)), "alpha-bravo-charlie");

    // Offset 2 into the first MDL, 11 bytes: "pha-" + "bravo-" + "c".
    const chain: Mdl = { Next: { Next: { Next: null, bytes: c }, bytes: b }, bytes: a };
    const ranged = await socket.Dispatch.WskSend(socket, { Mdl: chain, Offset: 2, Length: 11 }, 0, {
      timeout: 5000,
    });
    assertStatus(ranged, STATUS_SUCCESS);
    assert.equal(ranged.information, 11);
    // A range that ends inside the first MDL sends no byte of the rest of the chain.
    const inside = await socket.Dispatch.WskSend(socket, { Mdl: chain, Offset: 1, Length: 3 });
    assertStatus(inside, STATUS_SUCCESS);
    assert.equal(inside.information, 3);
    assert.equal(text.decode(await readExactly(peer, 14)), "pha-bravo-clph");
  });

  Deno.test(`WskSend() of 16 MiB stays pending while the peer does not read and completes with the full count (${backing} backing)`, async () => {
    await using pair = await connectedPair(AF_INET, { backing });
    const { socket, peer } = pair;
    const data = randomBytes(16 * 1024 * 1024);
    const sending = track(socket.Dispatch.WskSend(socket, wskBuf(data), 0, { timeout: 30_000 }));
    // 16 MiB is more than the two kernel buffers hold while nobody reads (tcp_wmem max 4 MiB,
    // and the receive buffer does not grow without reads), so the send cannot be done yet.
    await sleep(300);
    assert.equal(sending.settled, false, "the send completed before the peer read anything");
    const received = await readExactly(peer, data.length, 30_000, 1);
    const sent = await sending.promise;
    assertStatus(sent, STATUS_SUCCESS);
    assert.equal(sent.information, data.length);
    assert.equal(await sha256(received), await sha256(data));
  });

  Deno.test(`WskSend() of zero bytes completes with STATUS_SUCCESS and 0 (${backing} backing)`, async () => {
    await using pair = await connectedPair(AF_INET, { backing });
    const { socket, peer } = pair;
    const empty = await socket.Dispatch.WskSend(socket, wskBuf(), 0, { timeout: 5000 });
    assertStatus(empty, STATUS_SUCCESS);
    assert.equal(empty.information, 0);
    const nullMdl = await socket.Dispatch.WskSend(socket, { Mdl: null, Offset: 0, Length: 0 });
    assertStatus(nullMdl, STATUS_SUCCESS);
    assert.equal(nullMdl.information, 0);
    // Nothing went out: the next bytes the peer sees are the ones sent after.
    await sendAll(socket, text.encode("after"));
    assert.equal(text.decode(await readExactly(peer, 5)), "after");
  });

  Deno.test(`WskSend() accepts WSK_FLAG_NODELAY (${backing} backing)`, async () => {
    await using pair = await connectedPair(AF_INET, { backing });
    const { socket, peer } = pair;
    const sent = await socket.Dispatch.WskSend(
      socket,
      wskBuf(text.encode("now")),
      WSK_FLAG_NODELAY,
      {
        timeout: 5000,
      },
    );
    assertStatus(sent, STATUS_SUCCESS);
    assert.equal(sent.information, 3);
    assert.equal(text.decode(await readExactly(peer, 3)), "now");
  });

  Deno.test(`WskSend() completes with STATUS_NOT_SUPPORTED for WSK_FLAG_OOB and STATUS_INVALID_PARAMETER for unknown flags (${backing} backing)`, async () => {
    await using pair = await connectedPair(AF_INET, { backing });
    const { socket, peer } = pair;
    const d = socket.Dispatch;
    const oob = await d.WskSend(socket, wskBuf(text.encode("urgent")), WSK_FLAG_OOB);
    assertStatus(oob, STATUS_NOT_SUPPORTED);
    assert.equal(oob.information, 0);
    for (const flags of [0x4, 0x8, 0x80000000, WSK_FLAG_NODELAY | 0x100, -1, 1.5, 2 ** 32]) {
      const bad = await d.WskSend(socket, wskBuf(text.encode("bad")), flags);
      assertStatus(bad, STATUS_INVALID_PARAMETER, `flags ${flags}:`);
      assert.equal(bad.information, 0);
    }
    // None of the refused sends put a byte on the wire.
    await sendAll(socket, text.encode("ok"));
    assert.equal(text.decode(await readExactly(peer, 2)), "ok");
    assertState(socket, "ESTAB");
  });

  Deno.test(`WskSend() completes with STATUS_INVALID_PARAMETER for a malformed WSK_BUF (${backing} backing)`, async () => {
    await using pair = await connectedPair(AF_INET, { backing });
    const { socket, peer } = pair;
    const first: Mdl = { Next: { Next: null, bytes: new Uint8Array(4) }, bytes: new Uint8Array(4) };
    const cases: ReadonlyArray<{ name: string; buffer: WskBuf }> = [
      { name: "negative Length", buffer: { Mdl: first, Offset: 0, Length: -1 } },
      { name: "fractional Length", buffer: { Mdl: first, Offset: 0, Length: 1.5 } },
      { name: "NaN Length", buffer: { Mdl: first, Offset: 0, Length: NaN } },
      { name: "negative Offset", buffer: { Mdl: first, Offset: -1, Length: 1 } },
      { name: "Offset at the end of the first MDL", buffer: { Mdl: first, Offset: 4, Length: 1 } },
      { name: "Offset past the first MDL", buffer: { Mdl: first, Offset: 6, Length: 1 } },
      { name: "Length past the chain", buffer: { Mdl: first, Offset: 0, Length: 9 } },
      { name: "Offset + Length past the chain", buffer: { Mdl: first, Offset: 3, Length: 6 } },
      { name: "Mdl null with Length > 0", buffer: { Mdl: null, Offset: 0, Length: 4 } },
    ];
    for (const { name, buffer } of cases) {
      const completion = await socket.Dispatch.WskSend(socket, buffer, 0, { timeout: 5000 });
      assertStatus(completion, STATUS_INVALID_PARAMETER, `${name}:`);
      assert.equal(completion.information, 0, name);
    }
    // A non-object buffer is refused the same way, without an exception.
    const notABuffer = await socket.Dispatch.WskSend(socket, "abc" as unknown as WskBuf);
    assertStatus(notABuffer, STATUS_INVALID_PARAMETER);
    await sendAll(socket, text.encode("fine"));
    assert.equal(text.decode(await readExactly(peer, 4)), "fine");
  });

  Deno.test(`WskSend() completes with STATUS_INVALID_DEVICE_STATE after our graceful disconnect (${backing} backing)`, async () => {
    await using pair = await connectedPair(AF_INET, { backing });
    const { socket, peer } = pair;
    assertStatus(
      await socket.Dispatch.WskDisconnect(socket, null, 0, { timeout: 5000 }),
      STATUS_SUCCESS,
    );
    assertState(socket, "LFIN");
    const late = await socket.Dispatch.WskSend(socket, wskBuf(text.encode("late")));
    assertStatus(late, STATUS_INVALID_DEVICE_STATE);
    assert.equal(late.information, 0);
    const seen = await within(readAll(peer), 5000, "peer readAll");
    assert.equal(seen.error, null);
    assert.equal(seen.bytes.length, 0);
  });

  Deno.test(`WskSend() completes with STATUS_CONNECTION_RESET after the peer reset the connection (${backing} backing)`, async () => {
    await using peer = await startPeer(SCRIPTED_PEER, AF_INET);
    await using socket = await connectToPeer(peer, AF_INET, backing);
    await sendAll(socket, text.encode("hi"));
    assert.equal(text.decode(peerData(await peer.ask("recv 2"))), "hi");
    assert.ok((await peer.ask("rst")).ok);
    await sleep(50);
    const sent = await socket.Dispatch.WskSend(socket, wskBuf(text.encode("into the void")), 0, {
      timeout: 5000,
    });
    assertStatus(sent, STATUS_CONNECTION_RESET);
    assert.equal(sent.information, 0);
    assertState(socket, "ABORTED");
    // Later calls report the same reset.
    assertStatus(
      await socket.Dispatch.WskSend(socket, wskBuf(text.encode("x"))),
      STATUS_CONNECTION_RESET,
    );
  });

  Deno.test(`WskSend() keeps the order of sends issued back to back (${backing} backing)`, async () => {
    await using pair = await connectedPair(AF_INET, { backing });
    const { socket, peer } = pair;
    const sizes = [1, 700_000, 3, 65_536, 1_500_000, 17, 0, 250_000, 2, 1_048_576, 9, 4096];
    const chunks = sizes.map((n) => randomBytes(n));
    const expected = concatBytes(chunks);
    const reading = readExactly(peer, expected.length, 20_000);
    const sends = chunks.map((chunk) =>
      socket.Dispatch.WskSend(socket, wskBuf(chunk), 0, { timeout: 20_000 })
    );
    const completions = await Promise.all(sends);
    completions.forEach((completion, i) => {
      assertStatus(completion, STATUS_SUCCESS, `send ${i}:`);
      assert.equal(completion.information, sizes[i]);
    });
    const received = await reading;
    assert.equal(received.length, expected.length);
    assert.equal(await sha256(received), await sha256(expected));
  });
}

Deno.test("WskSend() completes with STATUS_INVALID_DEVICE_STATE before connect and STATUS_INVALID_HANDLE after close", async () => {
  const socket = await newSocket(AF_INET);
  const d = socket.Dispatch;
  const data = wskBuf(text.encode("early"));
  assertStatus(await d.WskSend(socket, data), STATUS_INVALID_DEVICE_STATE, "INIT:");
  assertStatus(await d.WskBind(socket, wildcard(AF_INET)), STATUS_SUCCESS);
  assertStatus(await d.WskSend(socket, data), STATUS_INVALID_DEVICE_STATE, "BOUND:");
  assertStatus(await d.WskReceive(socket, wskBuf(new Uint8Array(4))), STATUS_INVALID_DEVICE_STATE);
  assertStatus(await d.WskDisconnect(socket), STATUS_INVALID_DEVICE_STATE);
  assertStatus(await d.WskCloseSocket(socket), STATUS_SUCCESS);
  assertStatus(await d.WskSend(socket, data), STATUS_INVALID_HANDLE, "CLOSED:");
  assertStatus(await d.WskDisconnect(socket), STATUS_INVALID_HANDLE, "CLOSED:");
});

Deno.test("WskSend() and WskReceive() carry bytes both ways over IPv6 loopback", async () => {
  await using pair = await connectedPair(AF_INET6);
  const { socket, peer } = pair;
  const local = await socket.Dispatch.WskGetLocalAddress(socket);
  assert.deepEqual(local.address, {
    family: AF_INET6,
    address: "::1",
    port: (peer.remoteAddr as Deno.NetAddr).port,
  });
  assert.equal((peer.remoteAddr as Deno.NetAddr).hostname, "::1");
  const data = randomBytes(200_000);
  const reading = readExactly(peer, data.length);
  await sendAll(socket, data);
  assert.deepEqual(await reading, data);
  const reply = randomBytes(150_000);
  const writing = peer.write(reply).then(() => peer.closeWrite());
  assert.deepEqual(await receiveExactly(socket, reply.length), reply);
  await writing;
  const fin = await receive(socket, 16);
  assertStatus(fin.completion, STATUS_SUCCESS);
  assert.equal(fin.completion.information, 0);
  assertState(socket, "RFIN");
});

// ---------------------------------------------------------------------------------------------
// WskReceive

for (const backing of BACKINGS) {
  Deno.test(`WskReceive() completes with what is available, never more than Length (${backing} backing)`, async () => {
    await using pair = await connectedPair(AF_INET, { backing });
    const { socket, peer } = pair;
    await peer.write(text.encode("hello"));
    const first = await receive(socket, 100);
    assertStatus(first.completion, STATUS_SUCCESS);
    assert.equal(first.completion.information, 5);
    assert.equal(text.decode(first.bytes), "hello");

    await peer.write(text.encode("0123456789"));
    const parts: string[] = [];
    let total = 0;
    for (let round = 0; total < 10 && round < 10; round++) {
      const got = await receive(socket, 4);
      assertStatus(got.completion, STATUS_SUCCESS);
      assert.ok(got.completion.information >= 1 && got.completion.information <= 4);
      parts.push(text.decode(got.bytes));
      total += got.completion.information;
    }
    assert.equal(parts.join(""), "0123456789");
  });

  Deno.test(`WskReceive() with WSK_FLAG_WAITALL fills the buffer across several peer writes (${backing} backing)`, async () => {
    await using pair = await connectedPair(AF_INET, { backing });
    const { socket, peer } = pair;
    const buffer = new Uint8Array(30);
    const receiving = track(
      socket.Dispatch.WskReceive(socket, wskBuf(buffer), WSK_FLAG_WAITALL, { timeout: 5000 }),
    );
    for (const piece of ["aaaaaaaaaa", "bbbbbbbbbb"]) {
      await peer.write(text.encode(piece));
      await sleep(60);
      assert.equal(receiving.settled, false, "WAITALL completed before the buffer was full");
    }
    await peer.write(text.encode("cccccccccc"));
    const done = await receiving.promise;
    assertStatus(done, STATUS_SUCCESS);
    assert.equal(done.information, 30);
    assert.equal(text.decode(buffer), "aaaaaaaaaabbbbbbbbbbcccccccccc");
  });

  Deno.test(`WskReceive() with WSK_FLAG_WAITALL completes short with the bytes so far at the peer's FIN (${backing} backing)`, async () => {
    await using pair = await connectedPair(AF_INET, { backing });
    const { socket, peer } = pair;
    const buffer = new Uint8Array(100);
    const receiving = track(
      socket.Dispatch.WskReceive(socket, wskBuf(buffer), WSK_FLAG_WAITALL, { timeout: 5000 }),
    );
    await peer.write(text.encode("only ten.."));
    await sleep(60);
    assert.equal(receiving.settled, false);
    await peer.closeWrite();
    const done = await receiving.promise;
    assertStatus(done, STATUS_SUCCESS);
    assert.equal(done.information, 10);
    assert.equal(text.decode(buffer.subarray(0, 10)), "only ten..");
    assertState(socket, "RFIN");
    const after = await receive(socket, 100, WSK_FLAG_WAITALL);
    assertStatus(after.completion, STATUS_SUCCESS);
    assert.equal(after.completion.information, 0);
  });

  Deno.test(`WskReceive() with WSK_FLAG_DRAIN discards data and completes with 0 at the peer's FIN (${backing} backing)`, async () => {
    await using pair = await connectedPair(AF_INET, { backing });
    const { socket, peer } = pair;
    const draining = track(
      socket.Dispatch.WskReceive(socket, wskBuf(), WSK_FLAG_DRAIN, { timeout: 10_000 }),
    );
    await peer.write(randomBytes(300_000));
    await sleep(100);
    assert.equal(draining.settled, false, "DRAIN completed before the peer's FIN");
    await peer.closeWrite();
    const drained = await draining.promise;
    assertStatus(drained, STATUS_SUCCESS);
    assert.equal(drained.information, 0);
    assertState(socket, "RFIN");
    // The drained bytes are gone: the next receive sees only the FIN.
    const after = await receive(socket, 1024);
    assertStatus(after.completion, STATUS_SUCCESS);
    assert.equal(after.completion.information, 0);
  });

  Deno.test(`WskReceive() completes with STATUS_INVALID_PARAMETER for DRAIN with a buffer, WAITALL|DRAIN and unknown flags (${backing} backing)`, async () => {
    await using pair = await connectedPair(AF_INET, { backing });
    const { socket, peer } = pair;
    const d = socket.Dispatch;
    const cases: ReadonlyArray<{ name: string; buffer: WskBuf; flags: number }> = [
      { name: "DRAIN with Length 8", buffer: wskBuf(new Uint8Array(8)), flags: WSK_FLAG_DRAIN },
      {
        name: "WAITALL|DRAIN, Length 0",
        buffer: wskBuf(),
        flags: WSK_FLAG_WAITALL | WSK_FLAG_DRAIN,
      },
      {
        name: "WAITALL|DRAIN, Length 8",
        buffer: wskBuf(new Uint8Array(8)),
        flags: WSK_FLAG_WAITALL | WSK_FLAG_DRAIN,
      },
      { name: "flag 0x1", buffer: wskBuf(new Uint8Array(8)), flags: 0x1 },
      { name: "flag 0x8", buffer: wskBuf(new Uint8Array(8)), flags: 0x8 },
      { name: "flag -2", buffer: wskBuf(new Uint8Array(8)), flags: -2 },
      { name: "negative Length", buffer: { Mdl: null, Offset: 0, Length: -1 }, flags: 0 },
      { name: "Mdl null with Length 8", buffer: { Mdl: null, Offset: 0, Length: 8 }, flags: 0 },
    ];
    for (const { name, buffer, flags } of cases) {
      const completion = await d.WskReceive(socket, buffer, flags, { timeout: 5000 });
      assertStatus(completion, STATUS_INVALID_PARAMETER, `${name}:`);
      assert.equal(completion.information, 0);
    }
    // None of them consumed data or changed the socket.
    await peer.write(text.encode("intact"));
    assert.equal(text.decode(await receiveExactly(socket, 6)), "intact");
    assertState(socket, "ESTAB");
  });

  Deno.test(`WskReceive() completes with 0 bytes after the peer's FIN, every time, and sending still works (${backing} backing)`, async () => {
    await using pair = await connectedPair(AF_INET, { backing });
    const { socket, peer } = pair;
    await peer.write(text.encode("last words"));
    await peer.closeWrite();
    assert.equal(text.decode(await receiveExactly(socket, 10)), "last words");
    for (let i = 0; i < 3; i++) {
      const fin = await receive(socket, 64);
      assertStatus(fin.completion, STATUS_SUCCESS, `receive ${i}:`);
      assert.equal(fin.completion.information, 0);
      assertState(socket, "RFIN");
    }
    // RFIN is half-open: we may still send.
    await sendAll(socket, text.encode("still here"));
    assert.equal(text.decode(await readExactly(peer, 10)), "still here");
  });

  Deno.test(`WskReceive() completes receives posted together in FIFO order with the stream in order (${backing} backing)`, async () => {
    await using pair = await connectedPair(AF_INET, { backing });
    const { socket, peer } = pair;
    const lengths = [3, 5, 7, 1, 4];
    const buffers = lengths.map((n) => new Uint8Array(n));
    const order: number[] = [];
    const receives = buffers.map((buffer, i) =>
      socket.Dispatch.WskReceive(socket, wskBuf(buffer), 0, { timeout: 5000 }).then((c) => {
        order.push(i);
        return c;
      })
    );
    await sleep(30);
    assert.deepEqual(order, [], "a receive completed before any data");
    const data = "abcdefghijklmnopqrst";
    await peer.write(text.encode(data));
    const completions = await Promise.all(receives);
    assert.deepEqual(order, [0, 1, 2, 3, 4]);
    let joined = "";
    completions.forEach((completion, i) => {
      assertStatus(completion, STATUS_SUCCESS, `receive ${i}:`);
      assert.equal(completion.information, lengths[i]);
      joined += text.decode(buffers[i]!.subarray(0, completion.information));
    });
    assert.equal(joined, data);
  });

  Deno.test(`WskReceive() completes with STATUS_IO_TIMEOUT and the data that arrives later goes to the next receive (${backing} backing)`, async () => {
    await using pair = await connectedPair(AF_INET, { backing });
    const { socket, peer } = pair;
    const started = Date.now();
    const timedOut = await receive(socket, 64, 0, 150);
    assertStatus(timedOut.completion, STATUS_IO_TIMEOUT);
    assert.equal(timedOut.completion.information, 0);
    assert.ok(Date.now() - started >= 140, "the timeout fired early");
    await peer.write(text.encode("late data"));
    await sleep(50);
    const next = await receive(socket, 64);
    assertStatus(next.completion, STATUS_SUCCESS);
    assert.equal(text.decode(next.bytes), "late data");
    // Nothing was duplicated either.
    await peer.write(text.encode("!"));
    assert.equal(text.decode(await receiveExactly(socket, 1)), "!");
  });

  Deno.test(`WskReceive() does not write into the buffer of a receive that already timed out (${backing} backing)`, async () => {
    await using pair = await connectedPair(AF_INET, { backing });
    const { socket, peer } = pair;
    const stale = new Uint8Array(64);
    const timedOut = await socket.Dispatch.WskReceive(socket, wskBuf(stale), 0, { timeout: 100 });
    assertStatus(timedOut, STATUS_IO_TIMEOUT);
    // The IRP is complete, so the buffer belongs to the client again (it may reuse or free it).
    stale.fill(0xaa);
    await peer.write(text.encode("late data"));
    await sleep(50);
    const next = await receive(socket, 64);
    assertStatus(next.completion, STATUS_SUCCESS);
    assert.equal(text.decode(next.bytes), "late data");
    assert.ok(
      stale.every((b) => b === 0xaa),
      "the provider wrote into a completed receive's buffer",
    );
  });

  Deno.test(`WskReceive() completes with STATUS_CANCELLED when its IRP is cancelled, and loses no data (${backing} backing)`, async () => {
    await using pair = await connectedPair(AF_INET, { backing });
    const { socket, peer } = pair;
    const cancelled = await cancelAfter(
      30,
      (irp) => socket.Dispatch.WskReceive(socket, wskBuf(new Uint8Array(64)), 0, irp),
    );
    assertStatus(cancelled, STATUS_CANCELLED);
    assert.equal(cancelled.information, 0);
    // An IRP cancelled before the call starts completes the same way.
    const before = await socket.Dispatch.WskReceive(socket, wskBuf(new Uint8Array(8)), 0, {
      signal: AbortSignal.abort(),
    });
    assertStatus(before, STATUS_CANCELLED);
    assertState(socket, "ESTAB");
    await peer.write(text.encode("after cancel"));
    assert.equal(text.decode(await receiveExactly(socket, 12)), "after cancel");
  });

  Deno.test(`WskReceive() completes with STATUS_CONNECTION_RESET when the peer resets, and the socket is ABORTED (${backing} backing)`, async () => {
    await using peer = await startPeer(SCRIPTED_PEER, AF_INET);
    await using socket = await connectToPeer(peer, AF_INET, backing);
    const receiving = socket.Dispatch.WskReceive(socket, wskBuf(new Uint8Array(64)), 0, {
      timeout: 5000,
    });
    assert.ok((await peer.ask("rst")).ok);
    const reset = await receiving;
    assertStatus(reset, STATUS_CONNECTION_RESET);
    assert.equal(reset.information, 0);
    assertState(socket, "ABORTED");
    const again = await receive(socket, 64);
    assertStatus(again.completion, STATUS_CONNECTION_RESET);
  });

  Deno.test(`WskReceive() pending at WskCloseSocket completes with STATUS_CANCELLED (${backing} backing)`, async () => {
    await using pair = await connectedPair(AF_INET, { backing });
    const { socket } = pair;
    const receiving = track(
      socket.Dispatch.WskReceive(socket, wskBuf(new Uint8Array(64)), 0, { timeout: 5000 }),
    );
    const waitAll = socket.Dispatch.WskReceive(
      socket,
      wskBuf(new Uint8Array(64)),
      WSK_FLAG_WAITALL,
      { timeout: 5000 },
    );
    await sleep(30);
    assert.equal(receiving.settled, false);
    assertStatus(await socket.Dispatch.WskCloseSocket(socket), STATUS_SUCCESS);
    const first = await receiving.promise;
    assertStatus(first, STATUS_CANCELLED);
    assert.equal(first.information, 0);
    assertStatus(await waitAll, STATUS_CANCELLED);
    assertState(socket, "CLOSED");
    // And any call after the close is refused with STATUS_INVALID_HANDLE.
    assertStatus(
      await socket.Dispatch.WskReceive(socket, wskBuf(new Uint8Array(4))),
      STATUS_INVALID_HANDLE,
    );
  });
}

Deno.test("WskReceive() completes with STATUS_INVALID_HANDLE on a closed socket", async () => {
  await using pair = await connectedPair(AF_INET);
  const { socket, peer } = pair;
  await peer.write(text.encode("unread"));
  assertStatus(await socket.Dispatch.WskCloseSocket(socket), STATUS_SUCCESS);
  const got = await socket.Dispatch.WskReceive(socket, wskBuf(new Uint8Array(16)), 0, {
    timeout: 1000,
  });
  assertStatus(got, STATUS_INVALID_HANDLE);
  assert.equal(got.information, 0);
  assertStatus(await socket.Dispatch.WskCloseSocket(socket), STATUS_INVALID_HANDLE);
});

// ---------------------------------------------------------------------------------------------
// WskDisconnect

for (const backing of BACKINGS) {
  Deno.test(`WskDisconnect() sends the final buffer, then FIN, and receiving still works (${backing} backing)`, async () => {
    await using peer = await startPeer(SCRIPTED_PEER, AF_INET);
    await using socket = await connectToPeer(peer, AF_INET, backing);
    const d = socket.Dispatch;
    await sendAll(socket, text.encode("hello "));
    const watching = peer.ask("recvall");
    const disconnected = await d.WskDisconnect(socket, wskBuf(text.encode("world")), 0, {
      timeout: 5000,
    });
    assertStatus(disconnected, STATUS_SUCCESS);
    assert.equal(disconnected.information, 5);
    assertState(socket, "LFIN");
    // The peer saw every byte, then end of stream (recv() == b""), not a reset.
    const seen = await watching;
    assert.equal(seen.end, "eof");
    assert.equal(text.decode(peerData(seen)), "hello world");
    // Half-open: the peer answers after our FIN, and we still receive it.
    assert.ok((await peer.ask(`send ${hex(text.encode("bye"))}`)).ok);
    assert.ok((await peer.ask("close")).ok);
    assert.equal(text.decode(await receiveExactly(socket, 3)), "bye");
    const fin = await receive(socket, 16);
    assertStatus(fin.completion, STATUS_SUCCESS);
    assert.equal(fin.completion.information, 0);
    assertState(socket, "BOTHFIN");
  });

  Deno.test(`WskDisconnect() with WSK_FLAG_ABORTIVE and a buffer completes with STATUS_INVALID_PARAMETER (${backing} backing)`, async () => {
    await using pair = await connectedPair(AF_INET, { backing });
    const { socket, peer } = pair;
    const bad = await socket.Dispatch.WskDisconnect(
      socket,
      wskBuf(text.encode("no")),
      WSK_FLAG_ABORTIVE,
    );
    assertStatus(bad, STATUS_INVALID_PARAMETER);
    assertState(socket, "ESTAB");
    const unknown = await socket.Dispatch.WskDisconnect(socket, null, 0x2);
    assertStatus(unknown, STATUS_INVALID_PARAMETER);
    assertState(socket, "ESTAB");
    await sendAll(socket, text.encode("alive"));
    assert.equal(text.decode(await readExactly(peer, 5)), "alive");
  });

  Deno.test(`WskDisconnect() a second time completes with STATUS_INVALID_DEVICE_STATE (${backing} backing)`, async () => {
    await using pair = await connectedPair(AF_INET, { backing });
    const { socket, peer } = pair;
    assertStatus(
      await socket.Dispatch.WskDisconnect(socket, null, 0, { timeout: 5000 }),
      STATUS_SUCCESS,
    );
    const again = await socket.Dispatch.WskDisconnect(socket, null, 0, { timeout: 5000 });
    assertStatus(again, STATUS_INVALID_DEVICE_STATE);
    assertState(socket, "LFIN");
    const seen = await within(readAll(peer), 5000, "peer readAll");
    assert.equal(seen.error, null);
    assert.equal(seen.bytes.length, 0);
  });
}

Deno.test("WskDisconnect() with WSK_FLAG_ABORTIVE resets a node-backed connection without a FIN first", async () => {
  await using peer = await startPeer(SCRIPTED_PEER, AF_INET);
  await using socket = await connectToPeer(peer, AF_INET, "node");
  await sendAll(socket, text.encode("ping"));
  assert.equal(text.decode(peerData(await peer.ask("recv 4"))), "ping");
  const watching = peer.ask("recvall");
  await sleep(50);
  const aborted = await socket.Dispatch.WskDisconnect(socket, null, WSK_FLAG_ABORTIVE);
  assertStatus(aborted, STATUS_SUCCESS);
  assertState(socket, "ABORTED");
  // recv() raised ConnectionResetError and returned no b"" before it: a RST, no FIN.
  const seen = await watching;
  assert.equal(seen.end, "reset");
  assert.deepEqual(seen.chunks, []);
});

Deno.test("WskDisconnect() with WSK_FLAG_ABORTIVE ends pending and later data calls with STATUS_CONNECTION_ABORTED", async () => {
  await using pair = await connectedPair(AF_INET, { backing: "node" });
  const { socket, peer } = pair;
  const pending = socket.Dispatch.WskReceive(socket, wskBuf(new Uint8Array(16)), 0, {
    timeout: 5000,
  });
  await sleep(30);
  assertStatus(
    await socket.Dispatch.WskDisconnect(socket, null, WSK_FLAG_ABORTIVE),
    STATUS_SUCCESS,
  );
  assertStatus(await pending, STATUS_CONNECTION_ABORTED);
  const after = await receive(socket, 16);
  assertStatus(after.completion, STATUS_CONNECTION_ABORTED);
  assert.equal(after.completion.information, 0);
  assertStatus(
    await socket.Dispatch.WskSend(socket, wskBuf(text.encode("x"))),
    STATUS_CONNECTION_ABORTED,
  );
  const seen = await within(readAll(peer), 5000, "peer readAll");
  assert.ok(seen.error instanceof Deno.errors.ConnectionReset, `peer saw ${String(seen.error)}`);
});

// The test task grants --allow-ffi, so a deno-backed socket resets through libc (_rst.ts); the
// fallback without it (a close, peer_saw=FIN) is covered by the CLI tests in abort_test.ts.

Deno.test("WskDisconnect() with WSK_FLAG_ABORTIVE sends a real RST on a deno-backed socket", async () => {
  await using pair = await connectedPair(AF_INET, { backing: "deno" });
  const { socket, peer } = pair;
  assert.equal(socket.backing, "deno");
  await sendAll(socket, text.encode("before"));
  assert.equal(text.decode(await readExactly(peer, 6)), "before");
  const aborted = await socket.Dispatch.WskDisconnect(socket, null, WSK_FLAG_ABORTIVE);
  assertStatus(aborted, STATUS_SUCCESS);
  assert.equal(aborted.message, undefined);
  assertState(socket, "ABORTED");
  assert.equal(socket.peerSaw, "RST");
  const seen = await within(readAll(peer), 5000, "peer readAll");
  assert.ok(seen.error instanceof Deno.errors.ConnectionReset, `peer saw ${String(seen.error)}`);
});

Deno.test("WskCloseSocket() of a live deno-backed connection sends a real RST", async () => {
  await using pair = await connectedPair(AF_INET6, { backing: "deno" });
  const { socket, peer } = pair;
  const watching = readAll(peer);
  await sleep(20);
  assertStatus(await socket.Dispatch.WskCloseSocket(socket), STATUS_SUCCESS);
  assert.equal(socket.peerSaw, "RST");
  const seen = await within(watching, 5000, "peer readAll");
  assert.ok(seen.error instanceof Deno.errors.ConnectionReset, `peer saw ${String(seen.error)}`);
});

for (const backing of BACKINGS) {
  Deno.test(`WskSend() blocked on a peer that never reads completes with STATUS_IO_TIMEOUT at its deadline and resets the connection (${backing} backing)`, async () => {
    await using pair = await connectedPair(AF_INET, { backing });
    const { socket, peer } = pair;
    const big = new Uint8Array(64 << 20);
    const start = performance.now();
    const sent = await within(
      socket.Dispatch.WskSend(socket, wskBuf(big), 0, { timeout: 500 }),
      5000,
      "WskSend",
    );
    const took = performance.now() - start;
    assertStatus(sent, STATUS_IO_TIMEOUT);
    assert.ok(took < 600, `completed after ${took.toFixed(0)} ms, bound 500 ms`);
    assert.equal(socket.peerSaw, "RST");
    assertState(socket, "ABORTED");
    // The peer reads what got through, then the reset: never a clean end of a cut stream.
    const seen = await within(readAll(peer), 10_000, "peer readAll");
    assert.ok(seen.bytes.length < big.length, `peer got ${seen.bytes.length} bytes`);
    assert.ok(seen.error instanceof Deno.errors.ConnectionReset, `peer saw ${String(seen.error)}`);
  });

  Deno.test(`WskSend() whose IRP is cancelled while it writes completes with STATUS_CANCELLED at once and resets the connection (${backing} backing)`, async () => {
    await using pair = await connectedPair(AF_INET, { backing });
    const { socket, peer } = pair;
    const controller = new AbortController();
    const sending = track(
      socket.Dispatch.WskSend(socket, wskBuf(new Uint8Array(64 << 20)), 0, {
        signal: controller.signal,
      }),
    );
    await sleep(200);
    assert.equal(sending.settled, false, "the send is blocked on the peer's full window");
    const start = performance.now();
    controller.abort();
    const sent = await within(sending.promise, 5000, "WskSend");
    const took = performance.now() - start;
    assertStatus(sent, STATUS_CANCELLED);
    assert.ok(took < 100, `completed ${took.toFixed(0)} ms after the cancel`);
    assert.equal(socket.peerSaw, "RST");
    const seen = await within(readAll(peer), 10_000, "peer readAll");
    assert.ok(seen.error instanceof Deno.errors.ConnectionReset, `peer saw ${String(seen.error)}`);
  });
}

Deno.test("WskCloseSocket() of a live node-backed connection resets it", async () => {
  await using peer = await startPeer(SCRIPTED_PEER, AF_INET);
  const socket = await connectToPeer(peer, AF_INET, "node");
  try {
    await sendAll(socket, text.encode("x"));
    assert.equal(text.decode(peerData(await peer.ask("recv 1"))), "x");
    const watching = peer.ask("recvall");
    await sleep(50);
    assertStatus(await socket.Dispatch.WskCloseSocket(socket), STATUS_SUCCESS);
    const seen = await watching;
    assert.equal(seen.end, "reset");
    assert.deepEqual(seen.chunks, []);
  } finally {
    if (socket.state !== "CLOSED") await socket.Dispatch.WskCloseSocket(socket);
  }
});

// ---------------------------------------------------------------------------------------------
// Reserved members

Deno.test("WskSendEx() and WskReceiveEx() complete with STATUS_NOT_SUPPORTED", async () => {
  await using pair = await connectedPair(AF_INET);
  const { socket, peer } = pair;
  const sendEx = await socket.Dispatch.WskSendEx(socket, wskBuf(text.encode("x")), 0, 0, null);
  assertStatus(sendEx, STATUS_NOT_SUPPORTED);
  assert.equal(sendEx.information, 0);
  const receiveEx = await socket.Dispatch.WskReceiveEx(socket, wskBuf(new Uint8Array(4)), 0);
  assertStatus(receiveEx, STATUS_NOT_SUPPORTED);
  assert.equal(receiveEx.information, 0);
  // Neither touched the stream.
  await sendAll(socket, text.encode("y"));
  assert.equal(text.decode(await readExactly(peer, 1)), "y");
});

// ---------------------------------------------------------------------------------------------
// A byte-exact round trip through an external echo peer

for (
  const { family, backing } of [
    { family: AF_INET, backing: "deno" },
    { family: AF_INET, backing: "node" },
    { family: AF_INET6, backing: "deno" },
  ] as const
) {
  const label = `${family === AF_INET6 ? "IPv6" : "IPv4"}, ${backing} backing`;
  Deno.test(`WskSend() and WskReceive() round-trip 8 MiB byte-exact through a python3 echo peer (${label})`, async () => {
    await using peer = await startPeer(ECHO_PEER, family);
    await using socket = await connectToPeer(peer, family, backing, false);
    const data = randomBytes(8 * 1024 * 1024);
    const chunk = 1024 * 1024;
    const sending = (async () => {
      for (let offset = 0; offset < data.length; offset += chunk) {
        await sendAll(socket, data.subarray(offset, offset + chunk));
      }
      const fin = await socket.Dispatch.WskDisconnect(socket, null, 0, { timeout: 20_000 });
      assertStatus(fin, STATUS_SUCCESS, "disconnect:");
    })();
    const parts: Uint8Array[] = [];
    let total = 0;
    for (let round = 0; round < 100_000; round++) {
      const { completion, bytes } = await receive(socket, 256 * 1024, 0, 20_000);
      assertStatus(completion, STATUS_SUCCESS, `receive after ${total} bytes:`);
      if (completion.information === 0) break;
      parts.push(bytes.slice());
      total += bytes.length;
    }
    await sending;
    assert.equal(total, data.length);
    assert.equal(await sha256(concatBytes(parts)), await sha256(data));
    const report = await peer.json();
    assert.equal(report.echoed, data.length);
    assertState(socket, "BOTHFIN");
  });
}

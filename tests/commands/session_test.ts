/**
 * End-to-end tests of the session agent: each command is a separate `wsk` process working on a
 * socket the agent holds (`@N`), against python3 peers on loopback. Every test has its own
 * session directory under /tmp (WSK_SESSION_DIR) and stops its agent, killing it if need be,
 * before removing the directory.
 */

import assert from "node:assert/strict";
import { type CliResult, closedPort, runCli, sleep } from "../_helpers.ts";
import { runProcess } from "../_child.ts";
import { PY_LISTEN, PythonPeer } from "../_python.ts";
import { assertLines, failed, jsonLines, ok, okJson } from "./_peer.ts";

/**
 * A python3 peer driven line by line on stdin. It listens (PY_LISTEN) on 127.0.0.1; then each
 * command prints one JSON line:
 *   accept            accept a connection (its index is the count so far): {"peer": "IP:PORT"}
 *   connect PORT      connect to 127.0.0.1:PORT: {"local": "IP:PORT"}
 *   send I TEXT       send TEXT on connection I: {"sent": N}
 *   blob I N          send N bytes of the repeating 0..250 pattern: {"sent": N}
 *   recv I N          read exactly N bytes (fewer at EOF): {"data": TEXT}
 *   recvall I         read until EOF: {"data": TEXT, "end": "eof"}
 *   close I           close connection I: {"closed": true}
 */
const PEER = PY_LISTEN + `
conns = []
def say(obj):
    print(json.dumps(obj), flush=True)
for line in sys.stdin:
    words = line.rstrip("\\n").split(" ", 2)
    cmd = words[0]
    if cmd == "accept":
        conn, addr = srv.accept()
        conn.settimeout(20)
        conns.append(conn)
        say({"peer": "%s:%d" % addr})
    elif cmd == "connect":
        conn = socket.create_connection(("127.0.0.1", int(words[1])), timeout=20)
        conns.append(conn)
        say({"local": "%s:%d" % conn.getsockname()})
    elif cmd == "send":
        conns[int(words[1])].sendall(words[2].encode())
        say({"sent": len(words[2])})
    elif cmd == "blob":
        n = int(words[2])
        conns[int(words[1])].sendall((bytes(range(251)) * (n // 251 + 1))[:n])
        say({"sent": n})
    elif cmd == "recv":
        n, got = int(words[2]), b""
        while len(got) < n:
            chunk = conns[int(words[1])].recv(n - len(got))
            if not chunk:
                break
            got += chunk
        say({"data": got.decode("latin1")})
    elif cmd == "recvall":
        got = b""
        while chunk := conns[int(words[1])].recv(65536):
            got += chunk
        say({"data": got.decode("latin1"), "end": "eof"})
    elif cmd == "close":
        conns[int(words[1])].close()
        say({"closed": True})
for conn in conns:
    conn.close()
`;

/** A python peer of {@linkcode PEER}: `ask()` sends one command and returns its JSON answer. */
type Peer = PythonPeer<Record<string, string | number>>;

/** Starts a {@linkcode PEER} on 127.0.0.1 and waits for its port. */
function startPeer(): Promise<Peer> {
  return PythonPeer.start(PEER, ["127.0.0.1"], { stdin: true });
}

/** Whether process `pid` still runs (a zombie counts as gone); python reads /proc for us. */
async function alive(pid: number): Promise<boolean> {
  const script = `
import sys
try:
    stat = open("/proc/%s/stat" % sys.argv[1]).read()
    print("gone" if stat[stat.rindex(")") + 2] == "Z" else "alive")
except FileNotFoundError:
    print("gone")
`;
  const out = await runProcess("python3", ["-c", script, String(pid)]);
  return out.stdout.trim() === "alive";
}

/** Makes a symbolic link (Deno.symlink needs unscoped read and write permissions). */
async function symlink(target: string, path: string): Promise<void> {
  const script = "import os, sys; os.symlink(sys.argv[1], sys.argv[2])";
  const out = await runProcess("python3", ["-c", script, target, path]);
  assert.equal(out.code, 0, out.stderr);
}

/** Polls `check` every 20 ms for at most `ms`. */
async function until(check: () => Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** One test's session: its directory, the CLI with WSK_SESSION_DIR set, the agents it saw. */
class Session {
  readonly dir = `/tmp/wsk-session-test-${crypto.randomUUID()}`;
  readonly socketPath = `${this.dir}/agent.sock`;
  readonly #env: Record<string, string>;
  readonly #pids = new Set<number>();

  constructor(env: Record<string, string> = {}) {
    this.#env = env;
  }

  /** Runs `wsk ARGS` in this session. */
  wsk(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
    return runCli(args, { env: { WSK_SESSION_DIR: this.dir, ...this.#env, ...env } });
  }

  /** `wsk session status --json`, remembering the pid. */
  async status(): Promise<{ agent: string; pid?: number; sockets?: number }> {
    const result = await this.wsk(["session", "status", "--json"]);
    assert.equal(result.code, 0, result.stderr);
    const status = JSON.parse(result.stdout);
    if (status.pid !== undefined) this.#pids.add(status.pid);
    return status;
  }

  /** `wsk session list --json`, parsed. */
  async list(): Promise<Record<string, unknown>[]> {
    const result = await this.wsk(["session", "list", "--json"]);
    assert.equal(result.code, 0, result.stderr);
    return result.stdout === ""
      ? []
      : result.stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
  }

  /** The list entry of `handle`. */
  async entry(handle: string): Promise<Record<string, unknown> | undefined> {
    return (await this.list()).find((e) => e.handle === handle);
  }

  /** Stops the agent, kills any agent still alive, removes the directory. */
  async cleanup(): Promise<void> {
    try {
      await Deno.chown(this.socketPath, 0, 0).catch(() => {});
      await Deno.chown(this.dir, 0, 0).catch(() => {});
      await Deno.chmod(this.dir, 0o700).catch(() => {});
      await this.wsk(["session", "stop"]);
    } finally {
      for (const pid of this.#pids) {
        if (await alive(pid)) Deno.kill(pid, "SIGKILL");
      }
      await Deno.remove(this.dir, { recursive: true }).catch(() => {});
    }
  }
}

/** Runs `body` with a fresh session that is always cleaned up. */
async function withSession(
  body: (session: Session) => Promise<void>,
  env: Record<string, string> = {},
): Promise<void> {
  const session = new Session(env);
  try {
    await body(session);
  } finally {
    await session.cleanup();
  }
}

/** Asserts a clean exit 0 with nothing on stderr. */
function assertOk(result: CliResult, what: string): void {
  assert.equal(result.code, 0, `${what}: ${result.stderr}${result.stdout}`);
  assert.equal(result.stderr, "", what);
}

/** A successful line on handle @1 (socket 1 of a fresh agent). */
function ok1(call: string, fields: Record<string, string | RegExp> = {}) {
  return ok(call, { handle: "@1", ...fields });
}

Deno.test("session: a whole lifecycle as separate commands against a python3 peer, then stop leaves nothing", async () => {
  await using peer = await startPeer();
  await withSession(async (s) => {
    const made = await s.wsk(["socket", "--session"]);
    assertOk(made, "socket");
    assertLines(made.stdout, [ok1("WskSocket")]);
    const { pid } = await s.status();
    assert.ok(pid && await alive(pid), "the agent runs");

    const bound = await s.wsk(["bind", "@1", "127.0.0.1:0"]);
    assertOk(bound, "bind");
    assertLines(bound.stdout, [ok1("WskBind", { local: "127.0.0.1:0" })]);

    const connected = await s.wsk(["connect", "@1", peer.address]);
    assertOk(connected, "connect");
    const { peer: local } = await peer.ask("accept") as { peer: string };
    const remote = peer.address;
    assertLines(connected.stdout, [ok1("WskConnect", { local, remote })]);

    const sent = await s.wsk(["send", "@1", "--data", "hello"]);
    assertOk(sent, "send");
    assertLines(sent.stdout, [ok1("WskSend", { local, remote, bytes: "5" })]);
    assert.deepEqual(await peer.ask("recv 0 5"), { data: "hello" });

    await peer.ask("send 0 HELLO");
    const received = await s.wsk(["receive", "@1", "--bytes", "5"]);
    assertOk(received, "receive");
    assertLines(received.stdout, [
      ok1("WskReceive", { local, remote, bytes: "5", calls: "1", data: "HELLO" }),
    ]);

    const asked = await s.wsk(["getremoteaddress", "@1", "--json"]);
    assertOk(asked, "getremoteaddress");
    assert.deepEqual(jsonLines(asked.stdout), [
      okJson("WskGetRemoteAddress", { handle: "@1", local, remote }),
    ]);

    const listed = await s.list();
    assert.deepEqual(listed, [{
      handle: "@1",
      kind: "connection",
      state: "ESTAB",
      local,
      remote,
      sent: 5,
      received: 5,
      buffered: 0,
      pending: 0,
    }]);

    const disconnected = await s.wsk(["disconnect", "@1"]);
    assertOk(disconnected, "disconnect");
    assertLines(disconnected.stdout, [ok1("WskDisconnect", { local, remote })]);
    // The peer sees our FIN after exactly what we sent, then replies on its open half.
    assert.deepEqual(await peer.ask("recvall 0"), { data: "", end: "eof" });

    // Illegal after our disconnect: the state machine's status, exit 1, nothing sent.
    const late = await s.wsk(["send", "@1", "--data", "late"]);
    assert.equal(late.code, 1);
    assert.equal(late.stderr, "");
    assertLines(late.stdout, [
      failed("WskSend", "STATUS_INVALID_DEVICE_STATE", "0xC0000184", {
        handle: "@1",
        local,
        remote,
      }),
    ]);

    await peer.ask("send 0 bye");
    assert.deepEqual(await peer.ask("close 0"), { closed: true });
    const reply = await s.wsk(["receive", "@1"]);
    assertOk(reply, "receive after half-close");
    assertLines(reply.stdout, [
      ok1("WskReceive", { local, remote, bytes: "3", calls: /^[12]$/, data: "bye" }),
    ]);

    const closed = await s.wsk(["closesocket", "@1"]);
    assertOk(closed, "closesocket");
    assertLines(closed.stdout, [ok1("WskCloseSocket", { local, remote })]);
    assert.deepEqual(await s.list(), []);

    const stopped = await s.wsk(["session", "stop"]);
    assertOk(stopped, "stop");
    assert.equal(
      stopped.stdout,
      `agent stopped pid=${pid} sockets=0 idle=600000ms dir="${s.dir}"\n`,
    );
    await until(async () => !(await alive(pid)), "the agent to exit");
    assert.equal(await exists(s.socketPath), false, "no socket file is left");
    assert.equal((await s.status()).agent, "not running");
  });
});

Deno.test("session: calls out of order complete with the state machine's status; --status turns them into checks", async () => {
  await withSession(async (s) => {
    assertOk(await s.wsk(["socket", "--session"]), "socket");
    const remote = await s.wsk(["getremoteaddress", "@1"]);
    assert.equal(remote.code, 1);
    assertLines(remote.stdout, [
      failed("WskGetRemoteAddress", "STATUS_INVALID_DEVICE_STATE", "0xC0000184", {
        handle: "@1",
      }),
    ]);
    const send = await s.wsk(["send", "@1", "--data", "x"]);
    assert.equal(send.code, 1);
    assertLines(send.stdout, [
      failed("WskSend", "STATUS_INVALID_DEVICE_STATE", "0xC0000184", { handle: "@1" }),
    ]);
    const checked = await s.wsk(["send", "@1", "--data", "x", "--status", "0xC0000184"]);
    assertOk(checked, "send --status");
    assert.match(checked.stdout.split("\n")[1]!, /^Expect PASSED step=1 line=1 verb=send /);
    const wrong = await s.wsk(["send", "@1", "--data", "x", "--status", "STATUS_SUCCESS"]);
    assert.equal(wrong.code, 3);
    assert.match(
      wrong.stdout.split("\n")[1]!,
      /^Expect FAILED .* actual="STATUS_INVALID_DEVICE_STATE"$/,
    );
    assertOk(await s.wsk(["closesocket", "@1"]), "closesocket");
    // A closed handle is gone: a usage error, as for any unknown handle.
    const after = await s.wsk(["send", "@1", "--data", "x"]);
    assert.equal(after.code, 2);
    assert.equal(after.stdout, "");
    assert.equal(
      after.stderr,
      'error: Cannot find handle "@1": the session agent holds no such socket (see wsk session list)\n',
    );
  });
});

Deno.test("session: unknown, malformed and misused handles are usage errors (exit 2, one line)", async () => {
  await withSession(async (s) => {
    const none = await s.wsk(["send", "@3", "--data", "x"]);
    assert.equal(none.code, 2);
    assert.equal(
      none.stderr,
      `error: Cannot find handle "@3": no session agent is running in "${s.dir}"\n`,
    );
    assert.equal(await exists(s.socketPath), false, "a handle command starts no agent");
    assertOk(await s.wsk(["socket", "--session"]), "socket");
    const cases: [string[], string][] = [
      [["send", "@7", "--data", "x"], 'Cannot find handle "@7"'],
      [["send", "@x"], 'Cannot parse handle "@x"'],
      [["send", "@01"], 'Cannot parse handle "@01"'],
      [["release", "@1"], 'Cannot use handle "@1" with "release"'],
      [["send", "@1", "--socket", "main", "--data", "x"], "unknown option '--socket'"],
      [["send", "@1", "--bogus"], "unknown option '--bogus'"],
      [["accept", "@1"], 'socket "@1" is not a listening socket'],
    ];
    for (const [args, start] of cases) {
      const result = await s.wsk(args);
      assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
      assert.equal(result.stdout, "", args.join(" "));
      assert.ok(result.stderr.startsWith(`error: ${start}`), `${args.join(" ")}: ${result.stderr}`);
      assert.equal(result.stderr.split("\n").length, 2, "one line");
    }
  });
});

Deno.test("session: a listening handle accepts a connection, which gets its own handle", async () => {
  await using peer = await startPeer();
  await withSession(async (s) => {
    const made = await s.wsk(["socket", "--session", "--listen", "--bind", "127.0.0.1:0"]);
    assertOk(made, "socket --listen");
    const [, bind] = assertLines(made.stdout, [
      ok1("WskSocket"),
      ok1("WskBind", { local: /^127\.0\.0\.1:\d+$/ }),
      ok1("WskGetLocalAddress", { local: /^127\.0\.0\.1:\d+$/ }),
    ]);
    const listening = bind!.local!;
    const { local: client } = await peer.ask(`connect ${listening.split(":")[1]}`) as {
      local: string;
    };
    const accepted = await s.wsk(["accept", "@1"]);
    assertOk(accepted, "accept");
    assertLines(accepted.stdout, [
      ok("WskAccept", { socket: "2", handle: "@2", local: listening, remote: client }),
    ]);
    await peer.ask("send 0 hi");
    const got = await s.wsk(["receive", "@2", "--bytes", "2"]);
    assertOk(got, "receive");
    assertLines(got.stdout, [
      ok("WskReceive", {
        socket: "2",
        handle: "@2",
        local: listening,
        remote: client,
        bytes: "2",
        calls: "1",
        data: "hi",
      }),
    ]);
    const list = await s.wsk(["session", "list"]);
    assertOk(list, "list");
    assert.equal(
      list.stdout,
      `@1 listen LISTENING local=${listening} sent=0 received=0 buffered=0 pending=0\n` +
        `@2 connection ESTAB local=${listening} remote=${client} sent=0 received=2 ` +
        "buffered=0 pending=0\n",
    );
  });
});

/** Makes @N connected to the peer's connection N-1. */
async function connectHandle(s: Session, peer: Peer): Promise<void> {
  assertOk(await s.wsk(["socket", "--session"]), "socket");
  const handle = `@${(await s.list()).length}`;
  assertOk(await s.wsk(["connect", handle, peer.address]), "connect");
  await peer.ask("accept");
}

Deno.test("session: commands on two handles run at once; commands on one handle run one after another", async () => {
  await using peer = await startPeer();
  await withSession(async (s) => {
    await connectHandle(s, peer);
    await connectHandle(s, peer);
    // @1 waits for data that has not come (long enough for the commands below on a busy machine).
    const waiting = s.wsk(["receive", "@1", "--bytes", "5", "--json", "--timeout", "60000"]);
    await until(async () => (await s.entry("@1"))?.pending === 1, "@1's receive to be pending");
    // @2 is not held up by it.
    const local2 = await s.wsk(["getlocaladdress", "@2"]);
    assertOk(local2, "getlocaladdress @2");
    assertOk(await s.wsk(["send", "@2", "--data", "two"]), "send @2");
    assert.deepEqual(await peer.ask("recv 1 3"), { data: "two" });
    // A send on @1 queues behind the receive: nothing is sent while the receive waits.
    const queued = s.wsk(["send", "@1", "--data", "one", "--json"]);
    await until(async () => (await s.entry("@1"))?.pending === 2, "the send to queue");
    await sleep(200);
    assert.equal((await s.entry("@1"))?.sent, 0, "the queued send has not run");
    await peer.ask("send 0 hello");
    const [received, sent] = await Promise.all([waiting, queued]);
    assertOk(received, "receive @1");
    assertOk(sent, "send @1");
    assert.equal(jsonLines(received.stdout)[0]!.data, "hello");
    assert.equal(jsonLines(sent.stdout)[0]!.information, 3);
    assert.deepEqual(await peer.ask("recv 0 3"), { data: "one" });
    const entry = await s.entry("@1");
    assert.equal(entry?.pending, 0);
    assert.equal(entry?.sent, 3);
  });
});

Deno.test("session: data that arrives between commands is buffered up to 1 MiB, then TCP pushes back; none is lost", async () => {
  await using peer = await startPeer();
  await withSession(async (s) => {
    await connectHandle(s, peer);
    const total = 16 << 20;
    // python blocks in sendall until wsk has taken it all.
    const sending = peer.ask(`blob 0 ${total}`);
    await until(async () => ((await s.entry("@1"))?.received as number) >= 1 << 20, "1 MiB");
    const first = await s.entry("@1");
    await sleep(300);
    const later = await s.entry("@1");
    assert.deepEqual(later, first, "reading stopped at the bound");
    assert.ok((first!.received as number) < (1 << 20) + (64 << 10), `${first!.received}`);
    assert.equal(first!.buffered, first!.received);
    const got = await s.wsk(["receive", "@1", "--bytes", String(total), "--json"]);
    assertOk(got, "receive");
    const [line] = jsonLines(got.stdout);
    assert.equal(line!.information, total);
    const expected = new Uint8Array(4096).map((_, i) => i % 251);
    const preview = Uint8Array.from(atob(line!.base64 as string), (c) => c.charCodeAt(0));
    assert.deepEqual(preview, expected, "the first bytes, in order");
    assert.deepEqual(await sending, { sent: total });
    const after = await s.entry("@1");
    assert.equal(after?.received, total);
    assert.equal(after?.buffered, 0);
  });
});

Deno.test("session: closesocket shows the bytes the agent read ahead and no receive took (value=unread)", async () => {
  await using peer = await startPeer();
  await withSession(async (s) => {
    await connectHandle(s, peer);
    await peer.ask("send 0 abc");
    await until(async () => (await s.entry("@1"))?.buffered === 3, "3 bytes buffered");
    const closed = await s.wsk(["closesocket", "@1"]);
    assertOk(closed, "closesocket");
    const [, local] = /local=(\S+)/.exec(closed.stdout)!;
    const remote = peer.address;
    assertLines(closed.stdout, [
      ok1("WskReceive", {
        local: local!,
        remote,
        bytes: "3",
        calls: "0",
        value: "unread",
        data: "abc",
      }),
      // The agent's sockets can always reset (node backing without --allow-ffi).
      ok1("WskCloseSocket", { local: local!, remote, peer_saw: "RST" }),
    ]);
  });
});

Deno.test("session: commands started at once share one agent, which starts once", async () => {
  await withSession(async (s) => {
    const results = await Promise.all([1, 2, 3, 4].map(() => s.wsk(["socket", "--session"])));
    const handles = results.map((result) => {
      assertOk(result, "socket");
      return /handle=(@\d+)/.exec(result.stdout)![1];
    });
    assert.deepEqual(handles.toSorted(), ["@1", "@2", "@3", "@4"]);
    assert.equal((await s.status()).sockets, 4);
  });
});

/**
 * Connects to the agent's socket (argv 1), sends one request line (argv 2), never reads from it;
 * ends when its stdin does.
 */
const STALLED_CLIENT = `
import socket, sys
print("ready", flush=True)
sys.stdin.readline()
conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
conn.connect(sys.argv[1])
conn.sendall(sys.argv[2].encode() + b"\\n")
print("sent", flush=True)
sys.stdin.read()
`;

Deno.test("session: a client that stops reading its answer does not keep the agent from its idle exit", async () => {
  await using peer = await startPeer();
  await withSession(async (s) => {
    const size = 2_000_000;
    const request = {
      op: "step",
      verb: "receive",
      handle: 1,
      args: ["--bytes", `${size}`, "--expect-re", "."],
    };
    // A client that sends its request and then never reads (python: the test may not dial).
    // It is started, and ready, before the agent: its start-up must not eat the idle time.
    await using client = await PythonPeer.start(
      STALLED_CLIENT,
      [s.socketPath, JSON.stringify(request)],
      { stdin: true, ready: "line" },
    );
    assert.equal(client.ready, "ready");
    await connectHandle(s, peer);
    const { pid } = await s.status();
    // The whole 2 MB comes back in the answer (a receive that matches keeps its data).
    const sending = peer.ask(`blob 0 ${size}`);
    await client.writeLine("go");
    assert.equal(await client.nextLine(), "sent");
    assert.deepEqual(await sending, { sent: size });
    // The answer is stuck in a socket nobody reads; the idle time (3 s) still ends the agent.
    await until(async () => !(await alive(pid!)), "the agent to exit", 20_000);
    assert.equal(await exists(s.socketPath), false);
  }, { WSK_SESSION_IDLE: "3000" });
});

/** Sends one request (argv 2) to the agent (argv 1) and prints every line of its answer. */
const LINES_CLIENT = `
import socket, sys
conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
conn.connect(sys.argv[1])
conn.sendall(sys.argv[2].encode() + b"\\n")
for line in conn.makefile("rb"):
    print(line.decode().rstrip("\\n"), flush=True)
`;

Deno.test("session: the agent says it is alive every 2 s while a step runs, then answers", async () => {
  await using peer = await startPeer();
  await withSession(async (s) => {
    await connectHandle(s, peer);
    // The peer sends nothing: the receive runs its whole 5 s and times out.
    const request = {
      op: "step",
      handle: 1,
      steps: [{
        verb: "receive",
        line: 1,
        step: 1,
        text: "receive @1 --bytes 5 --timeout 5000",
        socket: "main",
        bytes: 5,
        timeout: 5000,
        waitAll: false,
        drain: false,
        append: false,
        hex: false,
      }],
    };
    await using client = await PythonPeer.start(
      LINES_CLIENT,
      [s.socketPath, JSON.stringify(request)],
      { ready: "none" },
    );
    const lines: string[] = [];
    for (;;) {
      const line = await client.nextLine(15_000);
      lines.push(line);
      if (!line.includes('"alive"')) break;
    }
    const beats = lines.slice(0, -1);
    assert.ok(beats.length >= 2, `heartbeats: ${lines.join(" | ")}`);
    assert.ok(beats.every((line) => line === '{"alive":true}'), lines.join(" | "));
    const answer = JSON.parse(lines.at(-1)!) as {
      ok: boolean;
      outcome?: string;
      items?: { record: { call: string; status: number; message?: string } }[];
    };
    assert.equal(answer.ok, true);
    assert.equal(answer.outcome, "failure");
    const record = answer.items?.[0]?.record;
    assert.equal(record?.call, "WskReceive");
    assert.equal(record?.status, 0xC00000B5, "STATUS_IO_TIMEOUT");
    assert.equal(record?.message, "Timed out after 5000 ms");
  });
});

/**
 * A stand-in for an agent caught stopping: it listens on the session socket (0600, in the 0700
 * directory), answers one request with the stopping refusal, removes its socket file and exits.
 */
const STOPPING_AGENT = `
import json, os, socket, sys
path = sys.argv[1]
os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
os.chmod(os.path.dirname(path), 0o700)
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
os.chmod(path, 0o600)
srv.listen(1)
print("ready", flush=True)
srv.settimeout(20)
conn, _ = srv.accept()
conn.makefile("rb").readline()
answer = {"ok": False, "usage": False, "message": "The session agent is stopping", "stopping": True}
conn.sendall(json.dumps(answer).encode() + b"\\n")
conn.close()
os.unlink(path)
srv.close()
print("answered", flush=True)
`;

Deno.test("session: socket --session that meets a stopping agent starts a fresh one and succeeds", async () => {
  await withSession(async (s) => {
    await using stopping = await PythonPeer.start(STOPPING_AGENT, [s.socketPath], {
      ready: "line",
    });
    assert.equal(stopping.ready, "ready");
    const made = await s.wsk(["socket", "--session", "--json"]);
    assert.equal(await stopping.nextLine(), "answered", "the command met the stopping agent first");
    assertOk(made, "socket --session");
    const line = JSON.parse(made.stdout.trim());
    assert.equal(line.call, "WskSocket");
    assert.equal(line.handle, "@1");
    assert.equal((await s.status()).agent, "running");
  });
});

/** Connects to 127.0.0.1:argv[1] (retrying while nothing listens), prints what it receives. */
const LATE_CLIENT = `
import socket, sys, time
deadline = time.time() + 15
while True:
    try:
        conn = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
        break
    except ConnectionRefusedError:
        if time.time() > deadline:
            raise
        time.sleep(0.05)
print("connected %d" % conn.getsockname()[1], flush=True)
conn.settimeout(15)
print(conn.recv(100).decode(), flush=True)
`;

Deno.test("session: accept LOCAL --hold accepts one connection and keeps both sockets as handles", async () => {
  await withSession(async (s) => {
    const port = closedPort();
    const holding = s.wsk(["accept", `127.0.0.1:${port}`, "--hold", "--json"]);
    await using client = await PythonPeer.start(LATE_CLIENT, [String(port)], { ready: "none" });
    const clientPort = Number((await client.nextLine(20_000)).split(" ")[1]);
    const held = await holding;
    assertOk(held, "accept --hold");
    const lines = held.stdout.trim().split("\n").map((line) => JSON.parse(line));
    assert.deepEqual(lines.map((l) => [l.call, l.status, l.handle]), [
      ["WskSocket", "STATUS_SUCCESS", "@1"],
      ["WskBind", "STATUS_SUCCESS", "@1"],
      ["WskAccept", "STATUS_SUCCESS", "@2"],
    ]);
    assert.equal(lines[2].remote, `127.0.0.1:${clientPort}`);
    assertOk(await s.wsk(["send", "@2", "--data", "held"]), "send on the accepted handle");
    assert.equal(await client.nextLine(), "held");
    const listener = await s.entry("@1");
    assert.equal(listener?.local, `127.0.0.1:${port}`);
    const usageError = await s.wsk(["accept", "--hold", "--json"]);
    assert.equal(usageError.code, 2, usageError.stderr);
  });
});

for (const signal of ["SIGHUP", "SIGTERM", "SIGINT"] as const) {
  Deno.test(`session: ${signal} stops the agent as \`session stop\` does: it exits and leaves no socket file; the next socket starts a fresh agent`, async () => {
    await using peer = await startPeer();
    await withSession(async (s) => {
      await connectHandle(s, peer);
      const { pid } = await s.status();
      Deno.kill(pid!, signal);
      await until(async () => !(await alive(pid!)), `the agent to end on ${signal}`);
      assert.equal(await exists(s.socketPath), false, "no socket file is left");
      const fresh = await s.wsk(["socket", "--session"]);
      assertOk(fresh, `socket after ${signal}`);
      assert.notEqual((await s.status()).pid, pid);
    });
  });
}

Deno.test("session: a killed agent gives a clear error (exit 1) to the command in flight; the next socket starts a fresh agent", async () => {
  await using peer = await startPeer();
  await withSession(async (s) => {
    await connectHandle(s, peer);
    const { pid } = await s.status();
    const waiting = s.wsk(["receive", "@1", "--bytes", "5", "--timeout", "20000"]);
    await until(async () => (await s.entry("@1"))?.pending === 1, "the receive to be pending");
    Deno.kill(pid!, "SIGKILL");
    const cut = await waiting;
    assert.equal(cut.code, 1);
    assert.equal(cut.stdout, "");
    assert.equal(
      cut.stderr,
      "error: The session agent ended before it answered (it was stopped or killed); " +
        "its sockets are gone\n",
    );
    assert.ok(await exists(s.socketPath), "the dead agent left its socket file");
    const gone = await s.wsk(["send", "@1", "--data", "x"]);
    assert.equal(gone.code, 2);
    assert.match(gone.stderr, /^error: Cannot find handle "@1": no session agent is running/);
    const fresh = await s.wsk(["socket", "--session"]);
    assertOk(fresh, "socket after the kill");
    assertLines(fresh.stdout, [ok1("WskSocket")]);
    const next = await s.status();
    assert.notEqual(next.pid, pid);
    assert.equal(next.sockets, 1);
  });
});

Deno.test("session: the agent exits after its idle time, closing its sockets and removing its socket file", async () => {
  await withSession(async (s) => {
    // The pid from start's own answer: a status afterwards could come after the idle exit.
    const started = await s.wsk(["session", "start", "--json"]);
    assertOk(started, "start");
    const { pid } = JSON.parse(started.stdout) as { pid: number };
    assert.ok(pid > 0);
    assertOk(await s.wsk(["socket", "--session"]), "socket");
    await until(async () => !(await alive(pid)), "the idle agent to exit");
    // (A slow machine may have started a second agent for the socket: it idles out too.)
    await until(async () => !(await exists(s.socketPath)), "the socket file to go");
    assert.equal((await s.status()).agent, "not running");
  }, { WSK_SESSION_IDLE: "1000" });
});

/** The refusal test hands files to another owner (chown), which only root may do. */
const RUNNING_AS_ROOT = (() => {
  // The owner of a directory this process makes is this process's user.
  const probe = Deno.makeTempDirSync({ prefix: "wsk-uid-" });
  try {
    return Deno.statSync(probe).uid === 0;
  } finally {
    Deno.removeSync(probe);
  }
})();

Deno.test({
  name:
    "session: the directory is 0700 and the socket 0600; another owner, other modes or a symbolic link are refused",
  ignore: !RUNNING_AS_ROOT,
}, async () => {
  await withSession(async (s) => {
    const started = await s.wsk(["session", "start", "--json"]);
    assertOk(started, "start");
    assert.equal(JSON.parse(started.stdout).agent, "started");
    const dir = await Deno.lstat(s.dir);
    assert.equal(dir.mode! & 0o777, 0o700);
    const socket = await Deno.lstat(s.socketPath);
    assert.ok(socket.isSocket);
    assert.equal(socket.mode! & 0o777, 0o600);
    assert.equal(JSON.parse((await s.wsk(["session", "start", "--json"])).stdout).agent, "running");

    const refused = async (why: string) => {
      for (const args of [["socket", "--session"], ["session", "list"]]) {
        const result = await s.wsk(args);
        assert.equal(result.code, 1, `${args.join(" ")}: ${result.stderr}`);
        assert.equal(result.stdout, "");
        assert.equal(result.stderr, `error: ${why}\n`);
      }
    };
    await Deno.chown(s.socketPath, 65534, 65534);
    await refused(
      `Refusing session socket "${s.socketPath}": it belongs to uid 65534, not to uid 0`,
    );
    await Deno.chown(s.socketPath, 0, 0);
    await Deno.chmod(s.socketPath, 0o666);
    await refused(`Refusing session socket "${s.socketPath}": its mode is 0666; it must be 0600`);
    await Deno.chmod(s.socketPath, 0o600);
    await Deno.chmod(s.dir, 0o755);
    await refused(`Refusing session directory "${s.dir}": its mode is 0755; it must be 0700`);
    await Deno.chmod(s.dir, 0o700);
    await Deno.chown(s.dir, 65534, 65534);
    await refused(`Refusing session directory "${s.dir}": it belongs to uid 65534, not to uid 0`);
    await Deno.chown(s.dir, 0, 0);
    assertOk(await s.wsk(["session", "stop"]), "stop");
    // Someone else's link where the socket goes: never followed, never replaced.
    await symlink(`${s.dir}/elsewhere`, s.socketPath);
    await refused(`Refusing session socket "${s.socketPath}": it is a symbolic link`);
    assert.ok((await Deno.lstat(s.socketPath)).isSymlink, "the link is left alone");
    await Deno.remove(s.socketPath);
  });
});

Deno.test("session: a session directory that cannot be checked, or a bad WSK_SESSION_IDLE, is one error line", async () => {
  await withSession(async (s) => {
    // A path under a regular file: lstat fails with ENOTDIR, not NotFound.
    const file = `${s.dir}.file`;
    await Deno.writeTextFile(file, "");
    try {
      for (
        const args of [["send", "@1", "--data", "x"], ["socket", "--session"], ["session", "list"]]
      ) {
        const result = await s.wsk(args, { WSK_SESSION_DIR: `${file}/wsk` });
        assert.equal(result.code, 1, `${args.join(" ")}: ${result.stderr}`);
        assert.equal(result.stdout, "");
        assert.match(result.stderr, /^error: Cannot check session directory ".*\.file\/wsk": /);
        assert.equal(result.stderr.split("\n").length, 2, `one line: ${result.stderr}`);
      }
    } finally {
      await Deno.remove(file);
    }
    // Longer than a timer can wait: refused before any agent is started.
    const idle = await s.wsk(["socket", "--session"], { WSK_SESSION_IDLE: "3000000000" });
    assert.equal(idle.code, 2, idle.stderr);
    assert.equal(
      idle.stderr,
      'error: Cannot parse WSK_SESSION_IDLE "3000000000": expected milliseconds from 1 to ' +
        "2147483647\n",
    );
    assert.equal(await exists(s.socketPath), false, "no agent was started");
    // A Unix socket path has at most 107 bytes: the agent cannot listen, and the command says
    // so at once (not after waiting for an answer) and where the agent noted why.
    const long = `${s.dir}-${"x".repeat(60)}`;
    try {
      const started = await s.wsk(["socket", "--session"], { WSK_SESSION_DIR: long });
      assert.equal(started.code, 1, started.stderr);
      assert.equal(
        started.stderr,
        `error: Cannot start the session agent: it exited with code 1 (see "${long}/agent.log")\n`,
      );
      assert.match(await Deno.readTextFile(`${long}/agent.log`), /Cannot serve/);
    } finally {
      await Deno.remove(long, { recursive: true }).catch(() => {});
    }
  });
});

Deno.test("session: --json lines carry the handle; human lines say handle=@N", async () => {
  await withSession(async (s) => {
    const made = await s.wsk(["socket", "--session", "--json"]);
    assertOk(made, "socket");
    assert.deepEqual(jsonLines(made.stdout), [okJson("WskSocket", { handle: "@1" })]);
    const list = await s.wsk(["session", "list"]);
    assert.equal(list.stdout, "@1 connection INIT sent=0 received=0 buffered=0 pending=0\n");
    assert.match(
      (await s.wsk(["session", "status"])).stdout,
      new RegExp(
        `^agent running pid=\\d+ sockets=1 idle=600000ms dir="${s.dir}"\\n$`,
      ),
    );
  });
});

Deno.test("session: receive @1 --output - writes the payload raw to stdout; its lines go to stderr", async () => {
  await using peer = await startPeer();
  await withSession(async (s) => {
    await connectHandle(s, peer);
    await peer.ask("send 0 raw\\x01bytes");
    const got = await s.wsk(["receive", "@1", "--bytes", "12", "--output", "-"]);
    assert.equal(got.code, 0, got.stderr);
    assert.equal(got.stdout, "raw\\x01bytes");
    assert.match(got.stderr, /^WskReceive STATUS_SUCCESS 0x00000000 socket=1 handle=@1 .*bytes=12/);
    // Without --output the data is in the line, as in a script.
    await peer.ask("send 0 again");
    const line = await s.wsk(["receive", "@1", "--bytes", "5"]);
    assertOk(line, "receive");
    assert.match(line.stdout, /^WskReceive STATUS_SUCCESS .*bytes=5 .*data="again"/);
  });
});

/**
 * Runs the shell examples of README.md and docs/*.md against real loopback peers.
 *
 * The convention (docs/commands.md, "About the examples", says the same for readers):
 * - A fenced block opened with ```console is an example. A line starting with `$ ` is a command;
 *   the lines up to the next command are what it prints. Other fences are not run.
 * - `$ cat NAME` shows a file: its lines are written to NAME in the block's directory.
 * - `$ wsk ARGS` runs the CLI (`runCli`, the `wsk` task's permissions) in that directory. A
 *   trailing `# exit N` is the exit code it must give (0 when absent). A `&` before it runs the
 *   command in the background: the next command starts once it printed its WskBind line, and it
 *   must have exited with its code when the block ends.
 * - Ports: 7007 is an echo server on 127.0.0.1, 7008 one on [::1], 8080 an HTTP server, 6379 a
 *   Redis-like server (PING, SET, GET), 7010 a server that sends a short reply and closes; 0 and 1
 *   stay as written (nothing listens on port 1). Any other port is a free port, the same one
 *   wherever the block names it; a range A-B becomes F-(F+B-A).
 * - Output: the status lines shown (`Wsk…`, `Summary`, `Expect`, or a JSON object with `call`)
 *   must come back in that order with the same call and status (a background server's in any
 *   order). Any other line shown must appear in the output, where a run of digits stands for any
 *   digits and `…` for any text. With `--json`, every line on stdout must be a JSON object.
 * - Each block has its own session directory; its agent is stopped when the block ends.
 *
 * @module
 */

import assert from "node:assert/strict";
import { split } from "shlex";
import { closedPort, runCli, sleep } from "./_helpers.ts";
import { CliChild } from "./commands/_peer.ts";
import { Collector, within } from "./_child.ts";

const ROOT = new URL("../", import.meta.url);

/** One command of an example, with the lines it shows. */
interface Command {
  readonly line: number;
  readonly words: string;
  readonly exit: number;
  readonly background: boolean;
  readonly shown: string[];
}

/** One ```console block. */
interface Block {
  readonly file: string;
  readonly line: number;
  readonly commands: Command[];
}

/** The ```console blocks of one markdown file, split into commands and their shown output. */
function blocksOf(file: string, markdown: string): Block[] {
  const blocks: Block[] = [];
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== "```console") continue;
    const block: Block = { file, line: i + 1, commands: [] };
    for (i++; i < lines.length && lines[i]!.trim() !== "```"; i++) {
      const line = lines[i]!;
      if (line.startsWith("$ ")) {
        const exit = /\s#\s*exit\s+(\d+)\s*$/.exec(line);
        let words = (exit ? line.slice(0, exit.index) : line).slice(2).trim();
        const background = words.endsWith("&");
        if (background) words = words.slice(0, -1).trim();
        block.commands.push({
          line: i + 1,
          words,
          exit: exit ? Number(exit[1]) : 0,
          background,
          shown: [],
        });
      } else {
        assert.ok(block.commands.length > 0, `${file}:${i + 1}: output before any command`);
        block.commands.at(-1)!.shown.push(line);
      }
    }
    blocks.push(block);
  }
  return blocks;
}

/** The ports of the peers, by the port the examples name. */
type PeerPorts = ReadonlyMap<number, number>;

/**
 * The loopback peers, all in one python3 process (one start-up): echo on 127.0.0.1 and [::1], a
 * one-reply HTTP server, a Redis-like line server, and a server that sends a reply and closes.
 * Its first line is a JSON object of the ports.
 */
const PEERS = String.raw`
import json, socket, sys, threading

def guard(handler, conn):
    conn.settimeout(20)
    try:
        handler(conn)
    except OSError:
        pass
    finally:
        conn.close()

def serve(srv, handler):
    while True:
        try:
            conn, _ = srv.accept()
        except OSError:
            return
        threading.Thread(target=guard, args=(handler, conn), daemon=True).start()

def drain(conn):
    while conn.recv(65536):
        pass

def echo(conn):
    while chunk := conn.recv(262144):
        conn.sendall(chunk)
    conn.shutdown(socket.SHUT_WR)

def http(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    body = b"<html><body>wsk docs</body></html>\n"
    conn.sendall(b"HTTP/1.0 200 OK\r\nServer: docs-peer\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    conn.shutdown(socket.SHUT_WR)
    drain(conn)

def redis(conn):
    store, buf = {}, b""
    while chunk := conn.recv(65536):
        buf += chunk
        while b"\r\n" in buf:
            line, buf = buf.split(b"\r\n", 1)
            words = line.split()
            if not words:
                continue
            verb = words[0].upper()
            if verb == b"PING":
                out = b"+PONG\r\n"
            elif verb == b"SET" and len(words) == 3:
                store[words[1]] = words[2]
                out = b"+OK\r\n"
            elif verb == b"GET" and len(words) == 2:
                value = store.get(words[1])
                out = b"$-1\r\n" if value is None else b"$%d\r\n%s\r\n" % (len(value), value)
            else:
                out = b"-ERR unknown command\r\n"
            conn.sendall(out)
    conn.shutdown(socket.SHUT_WR)

def reply(conn):
    conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\nhello\n")
    conn.shutdown(socket.SHUT_WR)
    drain(conn)

ports = {}
for name, family, host, handler in [
    ("7007", socket.AF_INET, "127.0.0.1", echo),
    ("7008", socket.AF_INET6, "::1", echo),
    ("8080", socket.AF_INET, "127.0.0.1", http),
    ("6379", socket.AF_INET, "127.0.0.1", redis),
    ("7010", socket.AF_INET, "127.0.0.1", reply),
]:
    srv = socket.socket(family, socket.SOCK_STREAM)
    srv.bind((host, 0))
    srv.listen(64)
    ports[name] = srv.getsockname()[1]
    threading.Thread(target=serve, args=(srv, handler), daemon=True).start()
print(json.dumps(ports), flush=True)
sys.stdin.read()
`;

/** Starts the peers and waits for their ports; dispose closes stdin, and python exits. */
async function startPeers(): Promise<PeerPorts & AsyncDisposable> {
  const child = new Deno.Command("python3", {
    args: ["-u", "-c", PEERS],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdin = child.stdin.getWriter();
  const out = new Collector(child.stdout);
  const err = new Collector(child.stderr);
  const dispose = async () => {
    await stdin.close().catch(() => {});
    await within(child.status, 5000, "the peers' exit").catch(() => child.kill("SIGKILL"));
    await child.status;
    await out.cancel();
    await err.cancel();
  };
  try {
    const first = await out.waitFor(() => out.lines()[0], 15_000, "the peers' ports")
      .catch((error) => {
        throw new Error(`${error}; python stderr: ${err.text()}`);
      });
    const ports = new Map(
      Object.entries(JSON.parse(first) as Record<string, number>).map(([k, v]) => [Number(k), v]),
    );
    return Object.assign(ports, { [Symbol.asyncDispose]: dispose });
  } catch (error) {
    await dispose();
    throw error;
  }
}

/** Rewrites the ports a block names: the peers' own, free ports for the rest (kept per block). */
class PortMap {
  readonly #peers: PeerPorts;
  readonly #free = new Map<string, number>();

  constructor(peers: PeerPorts) {
    this.#peers = peers;
  }

  /** One port, or a range `A-B`, as the peers or free ports. */
  #spec(spec: string): string {
    const [first, last] = spec.split("-").map(Number) as [number, number | undefined];
    if (last !== undefined) {
      const from = this.#port(first);
      return `${from}-${from + (last - first)}`;
    }
    return String(this.#port(first));
  }

  #port(port: number): number {
    if (port === 0 || port === 1) return port;
    const peer = this.#peers.get(port);
    if (peer !== undefined) return peer;
    const key = String(port);
    if (!this.#free.has(key)) this.#free.set(key, closedPort());
    return this.#free.get(key)!;
  }

  /** Every loopback address in `text` (`127.0.0.1:P`, `[::1]:P`, port lists) rewritten. */
  text(source: string): string {
    return source.replace(
      /(127\.0\.0\.1|\[::1\]|localhost):(\d+(?:-\d+)?(?:,\d+(?:-\d+)?)*)/g,
      (_, host: string, list: string) =>
        `${host}:${list.split(",").map((spec) => this.#spec(spec)).join(",")}`,
    );
  }

  /** A command's words, with `HOST PORT` (two words) rewritten as well. */
  words(words: string[]): string[] {
    return words.map((word, i) => {
      const before = words[i - 1];
      if (
        /^\d+$/.test(word) && before !== undefined && /^(127\.0\.0\.1|::1|localhost)$/.test(before)
      ) {
        return String(this.#port(Number(word)));
      }
      return this.text(word);
    });
  }
}

/** The call and status of a status line (human or JSON), or undefined for another line. */
function recordOf(line: string): string | undefined {
  const human = /^(Wsk\w+|Summary|Expect) (STATUS_\w+|PASSED|FAILED)\b/.exec(line);
  if (human) return `${human[1]} ${human[2]}`;
  if (!line.startsWith("{")) return undefined;
  try {
    const json = JSON.parse(line) as Record<string, unknown>;
    if (typeof json.call !== "string") return undefined;
    return `${json.call} ${json.status ?? json.result}`;
  } catch {
    return undefined;
  }
}

/** A shown non-status line as a pattern: digit runs free, `…` any text. */
function patternOf(line: string): RegExp {
  const parts = line.trim().split("…").map((part) =>
    part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/\d+/g, "\\d+")
  );
  return new RegExp(parts.join(".*"));
}

/** Checks what one command printed against what the example shows. */
function checkOutput(
  where: string,
  command: Command,
  stdout: string,
  stderr: string,
  anyOrder: boolean,
): void {
  const printed = [...stdout.split("\n"), ...stderr.split("\n")];
  const got = printed.map(recordOf).filter((r) => r !== undefined);
  const expected = command.shown.map(recordOf).filter((r) => r !== undefined);
  const context = `${where}: \`${command.words}\`\nstdout:\n${stdout}\nstderr:\n${stderr}`;
  if (anyOrder) {
    const left = [...got];
    for (const record of expected) {
      const at = left.indexOf(record);
      assert.ok(at >= 0, `${context}\nmissing: ${record}`);
      left.splice(at, 1);
    }
  } else {
    let at = 0;
    for (const record of expected) {
      while (at < got.length && got[at] !== record) at++;
      assert.ok(at < got.length, `${context}\nmissing, or out of order: ${record}`);
      at++;
    }
  }
  for (const line of command.shown) {
    if (recordOf(line) !== undefined || line.trim() === "") continue;
    const pattern = patternOf(line);
    assert.ok(printed.some((p) => pattern.test(p)), `${context}\nno line like: ${line}`);
  }
  if (/(^|\s)--json(\s|$)/.test(command.words) && !/(^|\s)--output\s+-(\s|$)/.test(command.words)) {
    for (const line of stdout.split("\n").filter((l) => l !== "")) {
      assert.doesNotThrow(() => JSON.parse(line), `${context}\nnot JSON on stdout: ${line}`);
    }
  }
}

/** Runs one block in a fresh directory and session; stops its agent and servers at the end. */
async function runBlock(block: Block, peers: PeerPorts): Promise<void> {
  const ports = new PortMap(peers);
  const dir = await Deno.makeTempDir({ prefix: "wsk-docs-" });
  const session = `/tmp/wsk-docs-${crypto.randomUUID().slice(0, 8)}`;
  const env = { WSK_SESSION_DIR: session };
  const servers: { child: CliChild; command: Command }[] = [];
  let usedSession = false;
  try {
    for (const command of block.commands) {
      const where = `${block.file}:${command.line}`;
      if (command.words.startsWith("cat ")) {
        const name = command.words.slice(4).trim();
        await Deno.writeTextFile(`${dir}/${name}`, ports.text(command.shown.join("\n")) + "\n");
        continue;
      }
      assert.ok(command.words.startsWith("wsk "), `${where}: only \`wsk\` and \`cat\` run here`);
      const args = ports.words(split(command.words.slice(4)));
      usedSession ||= args.some((a) => a === "session" || a === "--session" || /^@\d/.test(a));
      if (command.background) {
        const child = new CliChild(args);
        servers.push({ child, command });
        await boundOrExited(child, `${where}: the server's WskBind line`);
        continue;
      }
      const result = await runCli(args, { cwd: dir, env, timeoutMs: 30_000 });
      assert.equal(
        result.code,
        command.exit,
        `${where}: \`${command.words}\` exit ${result.code}, documented ${command.exit}\n` +
          `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`,
      );
      checkOutput(where, command, result.stdout, result.stderr, false);
    }
    for (const { child, command } of servers) {
      const where = `${block.file}:${command.line}`;
      const code = await child.exitCode(15_000);
      assert.equal(
        code,
        command.exit,
        `${where}: the server exited ${code}\n${child.stderr.text()}`,
      );
      checkOutput(where, command, child.stdout.text(), child.stderr.text(), true);
    }
  } finally {
    for (const { child } of servers) await child[Symbol.asyncDispose]();
    if (usedSession) await stopAgent(session);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Waits (at most 15 s) until a background server printed its WskBind line on either stream. */
async function boundOrExited(child: CliChild, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const lines = [...child.stdout.lines(), ...child.stderr.lines()];
    if (lines.some((l) => recordOf(l) === "WskBind STATUS_SUCCESS")) return;
    await sleep(20);
  }
  throw new Error(`${what}: not within 15 s\n${child.stderr.text()}`);
}

/** Stops the session agent of `dir` (killing it if it stays) and removes the directory. */
async function stopAgent(dir: string): Promise<void> {
  const env = { WSK_SESSION_DIR: dir };
  const status = await runCli(["session", "status", "--json"], { env });
  let pid: number | undefined;
  try {
    pid = (JSON.parse(status.stdout) as { pid?: number }).pid;
  } catch {
    pid = undefined;
  }
  await runCli(["session", "stop"], { env });
  if (pid !== undefined) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch {
      // It ended as asked.
    }
  }
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}

/** The files whose examples run: the README and every page of docs/. */
async function documents(): Promise<string[]> {
  const files = ["README.md"];
  for await (const entry of Deno.readDir(new URL("docs/", ROOT))) {
    if (entry.isFile && entry.name.endsWith(".md")) files.push(`docs/${entry.name}`);
  }
  return files.sort();
}

Deno.test("docs: the convention finds commands, exit codes, backgrounds and shown lines", () => {
  const [block] = blocksOf(
    "x.md",
    [
      "```console",
      "$ wsk accept 127.0.0.1:9000 --count 1 &",
      "WskBind STATUS_SUCCESS 0x00000000",
      "$ wsk connect 127.0.0.1 1  # exit 1",
      "WskConnect STATUS_CONNECTION_REFUSED 0xC0000236 …",
      "```",
    ].join("\n"),
  );
  assert.deepEqual(block!.commands.map((c) => [c.words, c.exit, c.background, c.shown.length]), [
    ["wsk accept 127.0.0.1:9000 --count 1", 0, true, 1],
    ["wsk connect 127.0.0.1 1", 1, false, 1],
  ]);
  const map = new PortMap(new Map([[7007, 40001]]));
  assert.deepEqual(map.words(["127.0.0.1", "7007", "[::1]:0", "127.0.0.1:1"]), [
    "127.0.0.1",
    "40001",
    "[::1]:0",
    "127.0.0.1:1",
  ]);
  const range = map.text("127.0.0.1:8000-8010").split(":")[1]!.split("-").map(Number);
  assert.equal(range[1]! - range[0]!, 10);
  assert.ok(
    patternOf("agent stopped pid=25868 sockets=0 …").test("agent stopped pid=7 sockets=0 dir=x"),
  );
  assert.equal(recordOf('{"call":"Expect","result":"PASSED"}'), "Expect PASSED");
});

Deno.test({
  name: "docs: every console example of README.md and docs/ runs as documented",
  async fn(t) {
    await using peers = await startPeers();
    for (const file of await documents()) {
      const markdown = await Deno.readTextFile(new URL(file, ROOT));
      for (const block of blocksOf(file, markdown)) {
        await t.step({
          name: `${file}:${block.line}`,
          fn: () => runBlock(block, peers),
          sanitizeOps: false,
          sanitizeResources: false,
        });
      }
    }
  },
});

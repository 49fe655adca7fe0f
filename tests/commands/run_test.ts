/**
 * End-to-end tests of `wsk run` (dispatch scripts) against python3 servers: passing and failing
 * expectations, negative tests with --status, syntax errors, line protocols, named sockets and
 * JSON output with step and line.
 */

import assert from "node:assert/strict";
import { closedPort, parseLine, runCli } from "../_helpers.ts";
import { PY_LISTEN, PythonPeer } from "../_python.ts";

/**
 * A python server for scripts (PY_LISTEN on 127.0.0.1). argv: HOST MODE COUNT. Modes:
 *   http   read a request up to the blank line, answer "HTTP/1.0 200 OK" with a body, close
 *   redis  answer each "PING\r\n" line with "+PONG\r\n" until EOF, then close
 *   echo   echo until EOF, then close
 *   twolines  send "connN-line1\nconnN-line2\n" (N counts connections from 0), then read to EOF
 *   resetpartial  send "partial ", then reset (SO_LINGER 0)
 *   hold   read until EOF, then keep the connection open for 3 s before closing
 *   blob   send 20 MiB of zeros, then close
 *   bulkecho  echo in 64 KiB reads until EOF, then close; reports only the byte count
 * It serves `count` connections one after another, then reports, per connection, the client's
 * port and the bytes it got.
 */
const SERVER = PY_LISTEN + `
mode, count = args[0], int(args[1])
served = []
for index in range(count):
    conn, addr = srv.accept()
    conn.settimeout(20)
    got = b""
    try:
        if mode == "blob":
            conn.sendall(bytes(20 * 1024 * 1024))
        elif mode == "bulkecho":
            n = 0
            while chunk := conn.recv(65536):
                conn.sendall(chunk)
                n += len(chunk)
            got = b"%d bytes" % n
        elif mode == "resetpartial":
            conn.sendall(b"partial ")
            time.sleep(0.2)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif mode in ("twolines", "hold"):
            if mode == "twolines":
                conn.sendall(b"conn%d-line1\\nconn%d-line2\\n" % (index, index))
            while chunk := conn.recv(4096):
                got += chunk
            if mode == "hold":
                time.sleep(3)
        elif mode == "http":
            while b"\\r\\n\\r\\n" not in got:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                got += chunk
            conn.sendall(b"HTTP/1.0 200 OK\\r\\nContent-Type: text/plain\\r\\n\\r\\nhello\\n")
        else:
            pending = b""
            while chunk := conn.recv(4096):
                got += chunk
                if mode == "echo":
                    conn.sendall(chunk)
                else:
                    pending += chunk
                    while b"\\r\\n" in pending:
                        line, pending = pending.split(b"\\r\\n", 1)
                        conn.sendall(b"+PONG\\r\\n" if line == b"PING" else b"-ERR unknown\\r\\n")
    except (ConnectionResetError, socket.timeout):
        pass
    conn.close()
    served.append({"peer": addr[1], "got": got.decode("latin-1")})
print(json.dumps({"served": served}), flush=True)
`;

interface Served {
  readonly served: { readonly peer: number; readonly got: string }[];
}

function startServer(
  mode: "http" | "redis" | "echo" | "twolines" | "resetpartial" | "hold" | "blob" | "bulkecho",
  count = 1,
) {
  return PythonPeer.start<Served>(SERVER, ["127.0.0.1", mode, String(count)]);
}

function lines(stdout: string): Record<string, string>[] {
  return stdout.trim().split("\n").filter((l) => l !== "").map(parseLine);
}

function calls(stdout: string): string[] {
  return lines(stdout).map((l) => `${l.call} ${l.status}`);
}

Deno.test("run: an HTTP exchange whose expectation holds exits 0, every step reported", async () => {
  await using server = await startServer("http");
  const script = [
    `socketconnect 127.0.0.1:${server.port}`,
    'send "GET / HTTP/1.0\\r\\n\\r\\n"',
    'receive --expect "HTTP/1.0 200"',
    "disconnect",
  ].join("\n");
  const result = await runCli(["run", "-"], { stdin: script });
  assert.equal(result.stderr, "");
  assert.deepEqual(calls(result.stdout), [
    "WskSocketConnect STATUS_SUCCESS",
    "WskSend STATUS_SUCCESS",
    "WskReceive STATUS_SUCCESS",
    "Expect PASSED",
    "WskDisconnect STATUS_SUCCESS",
    "WskReceive STATUS_SUCCESS", // the rest of the reply, read by no step: shown, not dropped
    "WskReceive STATUS_SUCCESS", // the drain until the server's FIN
    "WskCloseSocket STATUS_SUCCESS",
  ]);
  const all = lines(result.stdout);
  assert.equal(all[2]!.data, "HTTP/1.0 200");
  assert.equal(all[5]!.value, "unread");
  assert.equal(all[5]!.data, " OK\r\nContent-Type: text/plain\r\n\r\nhello\n");
  assert.equal(result.code, 0);
  const [served] = (await server.report()).served;
  assert.equal(served!.got, "GET / HTTP/1.0\r\n\r\n");
  assert.equal(served!.peer, Number(all[0]!.local!.split(":")[1]));
});

Deno.test("run: a failed expectation exits 3 and names step, line, expected and actual", async () => {
  await using server = await startServer("http");
  const script = [
    "# an HTTP smoke test that expects the wrong status",
    `socketconnect 127.0.0.1:${server.port}`,
    'send "GET / HTTP/1.0\\r\\n\\r\\n"',
    "",
    'receive --expect "HTTP/1.0 404"',
    "disconnect",
  ].join("\n");
  const result = await runCli(["run", "-"], { stdin: script });
  const all = lines(result.stdout);
  const expectation = all.find((l) => l.call === "Expect")!;
  assert.deepEqual(
    { ...expectation },
    {
      call: "Expect",
      status: "FAILED",
      ntstatus: "step=3",
      step: "3",
      line: "5",
      verb: "receive",
      expected: "HTTP/1.0 404",
      actual: "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello\n",
    },
  );
  // The script stops at the failed step: no WskDisconnect, the socket is just closed.
  assert.deepEqual(calls(result.stdout).slice(-2), [
    "Expect FAILED",
    "WskCloseSocket STATUS_SUCCESS",
  ]);
  assert.equal(result.code, 3);
  await server.report();
});

Deno.test("run: a negative test passes with --status (refused is what the step expects)", async () => {
  const port = closedPort();
  const result = await runCli(["run", "-"], {
    stdin: `connect 127.0.0.1:${port} --status STATUS_CONNECTION_REFUSED\n`,
  });
  assert.deepEqual(calls(result.stdout), [
    "WskSocket STATUS_SUCCESS",
    "WskBind STATUS_SUCCESS",
    "WskConnect STATUS_CONNECTION_REFUSED",
    "Expect PASSED",
    "WskCloseSocket STATUS_SUCCESS",
  ]);
  const expectation = lines(result.stdout).find((l) => l.call === "Expect")!;
  assert.equal(expectation.expected, "STATUS_CONNECTION_REFUSED");
  assert.equal(result.code, 0);
});

Deno.test("run: --status that does not match is a failed expectation (exit 3)", async () => {
  await using server = await startServer("echo");
  const result = await runCli(["run", "-"], {
    stdin: `connect 127.0.0.1:${server.port} --status STATUS_CONNECTION_REFUSED\n`,
  });
  const expectation = lines(result.stdout).find((l) => l.call === "Expect")!;
  assert.equal(expectation.status, "FAILED");
  assert.equal(expectation.expected, "STATUS_CONNECTION_REFUSED");
  assert.equal(expectation.actual, "STATUS_SUCCESS");
  assert.equal(result.code, 3);
});

Deno.test("run: an unexpected error status stops the script with exit 1", async () => {
  const port = closedPort();
  const result = await runCli(["run", "-"], {
    stdin: `connect 127.0.0.1:${port}\nsend "never sent"\n`,
  });
  assert.deepEqual(calls(result.stdout), [
    "WskSocket STATUS_SUCCESS",
    "WskBind STATUS_SUCCESS",
    "WskConnect STATUS_CONNECTION_REFUSED",
    "WskCloseSocket STATUS_SUCCESS",
  ]);
  assert.equal(result.code, 1);
});

Deno.test("run: a line protocol (Redis PING) with --until keeps the rest for the next receive", async () => {
  await using server = await startServer("redis");
  const script = [
    `socketconnect 127.0.0.1:${server.port}`,
    'send "PING\\r\\nPING\\r\\n"',
    'receive --until "\\r\\n" --expect "+PONG"',
    'receive --until "\\r\\n" --expect-re "^\\+PONG\\r\\n$"',
    "disconnect",
    "receive",
  ].join("\n");
  const result = await runCli(["run", "-"], { stdin: script });
  const all = lines(result.stdout);
  const receives = all.filter((l) => l.call === "WskReceive");
  assert.equal(receives[0]!.data, "+PONG\r\n");
  assert.equal(receives[1]!.data, "+PONG\r\n");
  assert.equal(all.filter((l) => l.call === "Expect" && l.status === "PASSED").length, 2);
  assert.equal(result.code, 0, result.stdout);
  assert.equal((await server.report()).served[0]!.got, "PING\r\nPING\r\n");
});

Deno.test("run: a syntax error exits 2 with its line number before any socket opens", async () => {
  await using server = await startServer("echo");
  const cases: { script: string; line: number; says: RegExp }[] = [
    {
      script: `socketconnect 127.0.0.1:${server.port}\nsend "unterminated\n`,
      line: 2,
      says: /quoted/,
    },
    {
      script: `socketconnect 127.0.0.1:${server.port}\nfrobnicate\n`,
      line: 2,
      says: /unknown step "frobnicate"/,
    },
    {
      script: `# comment\n\nsocketconnect 999.1.1.1:80\n`,
      line: 3,
      says: /not a valid IPv4 or IPv6 literal/,
    },
    {
      script: `socketconnect 127.0.0.1:${server.port}\nreceive --bogus\n`,
      line: 2,
      says: /unknown option '--bogus'/,
    },
    { script: `send hello\n`, line: 1, says: /no socket "main" exists/ },
    { script: `socketconnect 127.0.0.1:1 --status NOT_A_STATUS\n`, line: 1, says: /NOT_A_STATUS/ },
    {
      script: `socketconnect 127.0.0.1:1\nreceive --expect-re "("\n`,
      line: 2,
      says: /regular expression/,
    },
  ];
  for (const { script, line, says } of cases) {
    const result = await runCli(["run", "-"], { stdin: script });
    assert.equal(result.code, 2, `${script}: ${result.stderr}`);
    assert.equal(result.stdout, "", "no socket, so no status line");
    const errors = result.stderr.trim().split("\n");
    assert.equal(errors.length, 1, result.stderr);
    assert.match(errors[0]!, new RegExp(`^error: line ${line}: `));
    assert.match(errors[0]!, says);
  }
  // Nothing connected to the server during all that: it still waits for its one client.
  const ok = await runCli(["run", "-"], { stdin: `socketconnect 127.0.0.1:${server.port}\n` });
  assert.equal(ok.code, 0);
  await server.report();
});

Deno.test("run: --json adds step and line to every object, and the expectation is an object too", async () => {
  await using server = await startServer("echo");
  const script =
    `socketconnect 127.0.0.1:${server.port}\nsend "abc"\nreceive --bytes 3 --expect abc\n`;
  const result = await runCli(["run", "--json", "-"], { stdin: script });
  const objects = result.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(
    objects.map((o) => [o.call, o.step, o.line]),
    [
      ["WskSocketConnect", 1, 1],
      ["WskSend", 2, 2],
      ["WskReceive", 3, 3],
      ["Expect", 3, 3],
      ["WskDisconnect", "end", 0],
      ["WskReceive", "end", 0],
      ["WskCloseSocket", "end", 0],
    ],
  );
  assert.equal(objects[2].data, "abc");
  assert.equal(objects[3].result, "PASSED");
  assert.equal(result.code, 0);
  await server.report();
});

Deno.test("run: named sockets: a listening socket step by step, and two connections side by side", async () => {
  const script = [
    "socket --listen --socket srv",
    "bind 127.0.0.1:0 --socket srv",
    "getlocaladdress --socket srv",
  ].join("\n");
  // A listening socket made and bound step by step; its WskGetLocalAddress shows the port.
  const probe = await runCli(["run", "-"], { stdin: script + "\n" });
  assert.equal(probe.code, 0, probe.stdout + probe.stderr);
  const bound = lines(probe.stdout).find((l) => l.call === "WskGetLocalAddress")!;
  assert.match(bound.local!, /^127\.0\.0\.1:[1-9]\d*$/);

  await using server = await startServer("echo", 2);
  const two = [
    `socketconnect 127.0.0.1:${server.port} --socket a`,
    `socketconnect 127.0.0.1:${server.port} --socket b`,
    'send "from-a" --socket a',
    'send "from-b" --socket b',
    "disconnect --socket a",
    "receive --socket a --expect from-a",
    "disconnect --socket b",
    "receive --socket b --expect from-b",
  ].join("\n");
  const result = await runCli(["run", "-"], { stdin: two });
  assert.equal(result.code, 0, result.stdout);
  const all = lines(result.stdout);
  const sockets = new Set(all.filter((l) => l.call === "WskSocketConnect").map((l) => l.socket));
  assert.equal(sockets.size, 2);
  const got = (await server.report()).served.map((c) => c.got).sort();
  assert.deepEqual(got, ["from-a", "from-b"]);
});

Deno.test("run: a script file is read from a path, and an unreadable one is exit 2", async () => {
  const missing = await runCli(["run", "/nonexistent/script.wsk"]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^error: Cannot read script "\/nonexistent\/script\.wsk": /);
  const path = new URL("./fixtures/negative.wsk", import.meta.url).pathname;
  const result = await runCli(["run", "--json", path]);
  const objects = result.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(objects.map((o) => [o.call, o.status ?? o.result, o.line]), [
    ["WskSocket", "STATUS_SUCCESS", 2],
    ["WskBind", "STATUS_SUCCESS", 2],
    ["WskConnect", "STATUS_CONNECTION_REFUSED", 2],
    ["Expect", "PASSED", 2],
    ["WskCloseSocket", "STATUS_SUCCESS", 0],
  ]);
  assert.equal(result.code, 0, result.stdout + result.stderr);
});

Deno.test("run: send --pattern and receive --verify-pattern through an echo server; a wrong stream is STATUS_DATA_ERROR", async () => {
  {
    await using server = await startServer("echo");
    const script = [
      `connect 127.0.0.1:${server.port} --retry-until 2000`,
      "send --pattern 256K",
      "disconnect",
      "receive --verify-pattern 256K",
    ].join("\n");
    const result = await runCli(["run", "-"], { stdin: script });
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const receive = lines(result.stdout).find((l) => l.call === "WskReceive")!;
    assert.equal(receive.status, "STATUS_SUCCESS");
    assert.equal(receive.bytes, String(256 * 1024));
    assert.equal((await server.report()).served[0]!.got.length, 256 * 1024);
  }
  {
    await using server = await startServer("echo");
    const script = [
      `socketconnect 127.0.0.1:${server.port}`,
      'send "not the pattern"',
      "disconnect",
      "receive --verify-pattern",
    ].join("\n");
    const result = await runCli(["run", "-"], { stdin: script });
    const receive = lines(result.stdout).find((l) => l.call === "WskReceive")!;
    assert.equal(receive.status, "STATUS_DATA_ERROR");
    assert.equal(receive.ntstatus, "0xC000003E");
    assert.match(receive.message!, /first mismatch at offset 0/);
    assert.equal(result.code, 1);
    await server.report();
  }
});

Deno.test("run: connect --retry-until gives up with exit 1 when nothing ever listens", async () => {
  const port = closedPort();
  const started = performance.now();
  const result = await runCli(["run", "-"], {
    stdin: `connect 127.0.0.1:${port} --retry-until 600\nsend never\n`,
  });
  const elapsed = performance.now() - started;
  const connect = lines(result.stdout).find((l) => l.call === "WskConnect")!;
  assert.equal(connect.status, "STATUS_CONNECTION_REFUSED");
  assert.ok(Number(connect.calls) > 1, `only ${connect.calls} attempt(s)`);
  assert.equal(result.code, 1);
  assert.ok(elapsed < 5000, `took ${elapsed} ms`);
});

Deno.test("run: bytes left unread on a closed socket are shown at its close, not handed to the next socket of that name", async () => {
  await using server = await startServer("twolines", 2);
  const script = [
    `socketconnect 127.0.0.1:${server.port}`,
    'receive --until "\\n"',
    "closesocket",
    `socketconnect 127.0.0.1:${server.port}`,
    'receive --until "\\n" --expect conn1-line1',
  ].join("\n");
  const result = await runCli(["run", "-"], { stdin: script });
  assert.equal(result.code, 0, result.stdout);
  const receives = lines(result.stdout).filter((l) => l.call === "WskReceive");
  assert.equal(receives[0]!.data, "conn0-line1\n");
  assert.equal(receives[1]!.value, "unread");
  assert.equal(receives[1]!.data, "conn0-line2\n");
  assert.equal(receives[2]!.data, "conn1-line1\n");
  await server.report();
});

Deno.test("run: syntax errors for a live socket made again, clashing families and --help in a step", async () => {
  const cases: { script: string; says: RegExp }[] = [
    {
      script: "socketconnect 127.0.0.1:1\nsocketconnect 127.0.0.1:1\n",
      says: /line 2: socket "main" is still open/,
    },
    {
      script: "connect 127.0.0.1:1 --bind [::1]:0\n",
      says: /line 1: cannot bind "\[::1\]:0" to reach "127\.0\.0\.1:1"/,
    },
    { script: "socketconnect 127.0.0.1:1\nsend --help\n", says: /line 2: unknown option '--help'/ },
  ];
  for (const { script, says } of cases) {
    const result = await runCli(["run", "-"], { stdin: script });
    assert.equal(result.code, 2, result.stderr);
    assert.equal(result.stdout, "");
    assert.match(result.stderr, says);
  }
});

Deno.test("run: --status and --expect together: both must hold", async () => {
  await using server = await startServer("echo");
  const script = [
    `socketconnect 127.0.0.1:${server.port}`,
    "send hello",
    "disconnect",
    "receive --expect NOPE --status STATUS_SUCCESS",
  ].join("\n");
  const result = await runCli(["run", "-"], { stdin: script });
  const expectations = lines(result.stdout).filter((l) => l.call === "Expect");
  assert.deepEqual(expectations.map((e) => [e.status, e.expected]), [
    ["PASSED", "STATUS_SUCCESS"],
    ["FAILED", "NOPE"],
  ]);
  assert.equal(result.code, 3);
  await server.report();
});

Deno.test("run: a reset while waiting for --expect is the call's failure (exit 1), a timeout is the expectation's (exit 3)", async () => {
  {
    await using server = await startServer("resetpartial");
    const result = await runCli(["run", "-"], {
      stdin: `socketconnect 127.0.0.1:${server.port}\nreceive --expect OK\n`,
    });
    const receive = lines(result.stdout).find((l) => l.call === "WskReceive")!;
    assert.equal(receive.status, "STATUS_CONNECTION_RESET");
    assert.equal(lines(result.stdout).some((l) => l.call === "Expect"), false);
    assert.equal(result.code, 1);
    await server.report();
  }
  {
    await using server = await startServer("hold");
    const result = await runCli(["run", "--timeout", "400", "-"], {
      stdin: `socketconnect 127.0.0.1:${server.port}\nreceive --expect OK\n`,
    });
    const receive = lines(result.stdout).find((l) => l.call === "WskReceive")!;
    assert.equal(receive.status, "STATUS_IO_TIMEOUT");
    assert.equal(lines(result.stdout).find((l) => l.call === "Expect")?.status, "FAILED");
    assert.equal(result.code, 3);
  }
});

Deno.test("run: a peer that keeps the connection open after the script ends does not fail it", async () => {
  await using server = await startServer("hold");
  const result = await runCli(["run", "--timeout", "400", "-"], {
    stdin: `socketconnect 127.0.0.1:${server.port}\nsend ping\n`,
  });
  const drain = lines(result.stdout).filter((l) => l.call === "WskReceive").at(-1)!;
  assert.equal(drain.status, "STATUS_IO_TIMEOUT");
  assert.equal(drain.step, undefined);
  assert.equal(result.code, 0, result.stdout);
  assert.equal((await server.report()).served[0]!.got, "ping");
});

Deno.test("run: --verify-pattern honours --status and the step's --timeout; a plain receive has no size cap", async () => {
  {
    await using server = await startServer("echo");
    const result = await runCli(["run", "-"], {
      stdin: [
        `socketconnect 127.0.0.1:${server.port}`,
        "disconnect",
        "receive --verify-pattern 16 --status STATUS_DATA_ERROR",
      ].join("\n"),
    });
    assert.equal(result.code, 0, result.stdout);
    assert.equal(lines(result.stdout).find((l) => l.call === "Expect")?.status, "PASSED");
    await server.report();
  }
  {
    await using server = await startServer("hold");
    const started = performance.now();
    const result = await runCli(["run", "--timeout", "5000", "-"], {
      stdin: `socketconnect 127.0.0.1:${server.port}\nreceive --verify-pattern --timeout 300\n`,
    });
    assert.equal(
      lines(result.stdout).find((l) => l.call === "WskReceive")?.status,
      "STATUS_IO_TIMEOUT",
    );
    assert.equal(result.code, 1);
    assert.ok(performance.now() - started < 4000);
  }
  {
    await using server = await startServer("blob");
    const result = await runCli(["run", "-"], {
      stdin: `socketconnect 127.0.0.1:${server.port}\nreceive\n`,
    });
    assert.equal(result.code, 0, result.stdout);
    const receive = lines(result.stdout).filter((l) => l.call === "WskReceive")[0]!;
    assert.equal(receive.bytes, String(20 * 1024 * 1024));
    await server.report();
  }
});

Deno.test("run: send --pattern 64M then receive --verify-pattern 64M through an echo server completes (the echo is read while the send step runs)", async () => {
  await using server = await startServer("bulkecho");
  const script = [
    `socketconnect 127.0.0.1:${server.port}`,
    "send --pattern 64M",
    "receive --verify-pattern 64M",
  ].join("\n");
  const result = await runCli(["run", "-"], { stdin: script, timeoutMs: 60_000 });
  assert.equal(result.code, 0, result.stdout + result.stderr);
  assert.deepEqual(calls(result.stdout), [
    "WskSocketConnect STATUS_SUCCESS",
    "WskSend STATUS_SUCCESS",
    "WskReceive STATUS_SUCCESS",
    "WskDisconnect STATUS_SUCCESS", // the cleanup: FIN, the drain until the server's FIN, close
    "WskReceive STATUS_SUCCESS",
    "WskCloseSocket STATUS_SUCCESS",
  ]);
  const all = lines(result.stdout);
  assert.equal(all[1]!.bytes, String(64 << 20));
  assert.equal(all[2]!.bytes, String(64 << 20));
  assert.equal(all[4]!.bytes, "0");
  const [served] = (await server.report()).served;
  assert.equal(served!.got, `${64 << 20} bytes`);
});

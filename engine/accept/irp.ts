/**
 * `accept` through IRPs: WskAccept in a loop, each connection served by WskReceive/WskSend
 * calls in the server's mode, refused peers reset.
 *
 * @module
 */

import {
  NT_SUCCESS,
  STATUS_INSUFFICIENT_RESOURCES,
  STATUS_IO_TIMEOUT,
  STATUS_REQUEST_NOT_ACCEPTED,
  wskBuf,
  type WskListenSocket,
} from "../../provider/mod.ts";
import { refusalOf } from "../cidr.ts";
import { PatternVerifier } from "../pattern.ts";
import { Connection, type Handlers } from "./connections.ts";
import { echoLoop, printPayload } from "./modes.ts";
import { serveExec } from "./exec.ts";
import { serveForward } from "./forward.ts";
import type { CallRecord } from "../../report/reporter.ts";
import {
  type AcceptPlan,
  cancelExpected,
  connectionCall,
  disconnectAbortively,
  disconnectGracefully,
  NO_FLAGS,
  receiveToFin,
  type Server,
} from "./server.ts";

/**
 * Serves one connection accepted by WskAccept, in the server's mode. Returns what the mode adds
 * to the connection's Summary line.
 */
async function serveIrp(server: Server, connection: Connection): Promise<Partial<CallRecord>> {
  const { run } = server;
  const socket = connection.socket;
  if (server.tls) {
    // --tls: the handshake first (its own line); the mode then runs on plaintext.
    const tls = server.tls;
    await socket.prepareTls("server");
    const done = await connectionCall(
      server,
      connection,
      "TlsHandshake",
      () => socket.startTls({ role: "server", ...tls }, run.irp()),
    );
    if (!NT_SUCCESS(done.status)) {
      await run.close(socket);
      return {};
    }
  }
  let summary: Partial<CallRecord> = {};
  switch (server.mode) {
    case "echo": {
      const failed = await echoLoop(run, socket, () => cancelExpected(server));
      if (failed !== null) connection.fail(failed);
      else await disconnectGracefully(server, connection);
      break;
    }
    case "reply": {
      const sent = await connectionCall(
        server,
        connection,
        "WskSend",
        () => socket.Dispatch.WskSend(socket, wskBuf(server.reply), NO_FLAGS, run.irp()),
      );
      if (NT_SUCCESS(sent.status)) await disconnectGracefully(server, connection);
      break;
    }
    case "discard":
    case "print": {
      const sink = server.mode === "print"
        ? (bytes: Uint8Array, ms: number) =>
          printPayload(server, connection, bytes, "WskReceive", ms)
        : undefined;
      const fin = await receiveToFin(server, connection, sink ? { sink } : {});
      if (fin) await disconnectGracefully(server, connection);
      break;
    }
    case "verify": {
      const verifier = new PatternVerifier(server.verifyBytes);
      const verified = await receiveToFin(server, connection, { verifier });
      if (verified) await disconnectGracefully(server, connection);
      else if (verifier.mismatch !== null) await disconnectAbortively(server, connection);
      break;
    }
    case "exec": {
      const exit = await serveExec(server, connection, server.exec!);
      if (exit !== null) summary = { exit };
      break;
    }
    case "forward":
      summary = await serveForward(server, connection, server.forward!);
      break;
  }
  await run.close(socket);
  return summary;
}

/** A refused peer: reset (where the backing can) and close, reported as not accepted. */
async function refuseIrp(server: Server, connection: Connection, reason: string): Promise<void> {
  await disconnectAbortively(server, connection);
  await server.run.close(connection.socket);
  connection.failExpected(
    { status: STATUS_REQUEST_NOT_ACCEPTED, information: 0, message: reason },
    "local-close",
  );
  connection.summarize(server.run);
}

/**
 * WskAccept until --count connections were served (refused peers do not count) or it stops. A
 * WskAccept that fails with STATUS_INSUFFICIENT_RESOURCES (the process is out of file
 * descriptors) is reported and issued again: the provider paces the retries (10 ms doubling to
 * 1 s), and the connection waits in the kernel's backlog until a served one frees a descriptor.
 */
export async function acceptWithIrps(
  server: Server,
  listener: WskListenSocket,
  plan: AcceptPlan,
  handlers: Handlers,
): Promise<void> {
  const { run } = server;
  const l = listener.Dispatch;
  let served = 0;
  while (plan.count === null || served < plan.count) {
    // Waiting for a connection is unbounded unless --timeout was given; with --keep-open, a
    // wait that times out (or is stopped) is the planned end. Not CallContext.call: whether a failure
    // was planned is known only once the call completed, and CallContext.call takes it beforehand.
    const start = performance.now();
    const accepted = await l.WskAccept(
      listener,
      NO_FLAGS,
      undefined,
      null,
      run.irp(run.timeoutGiven ? run.timeout : null),
    );
    const planned = server.keepOpen &&
      (accepted.status === STATUS_IO_TIMEOUT || server.stop.aborted);
    run.report(
      "WskAccept",
      accepted.socket ?? listener,
      accepted,
      performance.now() - start,
      {},
      planned ? accepted.status : undefined,
    );
    if (accepted.status === STATUS_INSUFFICIENT_RESOURCES && !server.stop.aborted) continue;
    if (!accepted.socket) break;
    const connection = new Connection(accepted.socket);
    const refusal = refusalOf(accepted.remoteAddress!.address, plan.allow, plan.deny);
    if (refusal !== null) {
      handlers.add(accepted.socket, refuseIrp(server, connection, refusal));
      continue;
    }
    served++;
    handlers.add(
      accepted.socket,
      serveIrp(server, connection).then((summary) =>
        connection.summarize(run, cancelExpected(server), summary)
      ),
    );
  }
}

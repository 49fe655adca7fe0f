/**
 * `accept --mode exec -- CMD ARGS…`: each connection runs its own CMD with the connection on
 * the command's standard input and output, as `ncat -l -c CMD` and socat's `EXEC:` do. What the
 * peer sends goes through the receive pump into the command's standard input; what the command
 * writes is sent with WskSend. The peer's FIN closes the command's input; the end of its output
 * disconnects gracefully. The Summary line adds the command's exit code.
 *
 * @module
 */

import {
  NT_SUCCESS,
  STATUS_ACCESS_DENIED,
  STATUS_CANCELLED,
  STATUS_OBJECT_NAME_NOT_FOUND,
  STATUS_SUCCESS,
  STATUS_UNSUCCESSFUL,
  type WskCompletion,
} from "../../provider/mod.ts";
import { pauseFor } from "../context.ts";
import { ReceivePump } from "../pump.ts";
import { type ByteSource, sendStream } from "../send.ts";
import type { Connection } from "./connections.ts";
import {
  cancelExpected,
  disconnectAbortively,
  type ExecCommand,
  NO_FLAGS,
  sendFin,
  type Server,
  stoppedCompletion,
} from "./server.ts";

/**
 * Why a command could not be started, as a Windows process start would say it: a missing
 * program is STATUS_OBJECT_NAME_NOT_FOUND (CreateProcess's ERROR_FILE_NOT_FOUND), one that may
 * not be run STATUS_ACCESS_DENIED, anything else STATUS_UNSUCCESSFUL; with the host's message.
 */
export function spawnFailure(error: unknown, command: string): WskCompletion {
  const text = error instanceof Error ? error.message.split("\n")[0]! : String(error);
  const status = error instanceof Deno.errors.NotFound
    ? STATUS_OBJECT_NAME_NOT_FOUND
    : error instanceof Deno.errors.PermissionDenied || error instanceof Deno.errors.NotCapable
    ? STATUS_ACCESS_DENIED
    : STATUS_UNSUCCESSFUL;
  return {
    status,
    information: 0,
    message: `Cannot run "${command}": ${text}`,
    cause: error,
  };
}

/**
 * A command's standard output as a {@linkcode ByteSource}: each chunk the stream gives is
 * copied into the reader's buffer (what does not fit waits for the next read).
 */
function streamSource(stream: ReadableStream<Uint8Array>): ByteSource {
  const reader = stream.getReader();
  let rest: Uint8Array | null = null;
  return {
    async read(into: Uint8Array): Promise<number | null> {
      if (rest === null) {
        const next = await reader.read();
        if (next.done) return null;
        rest = next.value;
      }
      const count = Math.min(into.length, rest.length);
      into.set(rest.subarray(0, count));
      rest = count < rest.length ? rest.subarray(count) : null;
      return count;
    },
    close(): void {
      reader.cancel().catch(() => {});
    },
  };
}

/** Ends a process quietly: it may have exited already. */
function killQuietly(child: Deno.ChildProcess): void {
  try {
    child.kill("SIGTERM");
  } catch {
    // Already exited.
  }
}

/**
 * Serves one connection with its own process (see the module). Lines: `Exec` (the process
 * start, `value=` its pid, or the status it failed with), WskReceive (into the command's
 * input), WskSend (its output), WskDisconnect; the caller closes the socket and writes the
 * Summary with the exit code this returns (null when the command did not start).
 *
 * Both directions run at once, without a bound while the other one is still open (a command
 * may think for a while before it answers, and a peer may wait for it). Once the command's
 * output ended and our FIN went out, what the peer still sends is received (each receive
 * bounded by --timeout) until its FIN, and dropped if the command no longer reads. A failed
 * call (the peer's reset) or the server's stop ends the command (SIGTERM).
 */
export async function serveExec(
  server: Server,
  connection: Connection,
  exec: ExecCommand,
): Promise<number | null> {
  const { run } = server;
  const socket = connection.socket;
  const start = performance.now();
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(exec.command, {
      args: [...exec.args],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
  } catch (error) {
    const failed = spawnFailure(error, exec.command);
    run.report("Exec", socket, failed, performance.now() - start, { value: exec.command });
    connection.fail(failed, "local-close");
    // The peer is told at once: nothing will answer it.
    await disconnectAbortively(server, connection);
    return null;
  }
  run.report(
    "Exec",
    socket,
    { status: STATUS_SUCCESS, information: 0 },
    performance.now() - start,
    {
      value: child.pid,
    },
  );
  const stopChild = () => killQuietly(child);
  server.stop.addEventListener("abort", stopChild, { once: true });
  const input = child.stdin.getWriter();
  let inputOpen = true;
  const closeInput = async () => {
    if (!inputOpen) return;
    inputOpen = false;
    await input.close().catch(() => {});
  };
  // A failure on either side stops the other: the receive is called off, the command ended.
  const failed = new AbortController();
  const expected = () =>
    failed.signal.aborted && !server.stop.aborted ? STATUS_CANCELLED : cancelExpected(server);
  const inbound = new ReceivePump(run, socket, {
    timeout: null,
    signal: failed.signal,
    expected,
    // The command may exit without reading all: what it no longer takes is dropped.
    sink: async (bytes) => {
      if (!inputOpen) return;
      try {
        await input.write(bytes);
      } catch {
        inputOpen = false;
      }
    },
  });
  const receiving = inbound.run().then(async (got) => {
    if (!NT_SUCCESS(got.status) && !failed.signal.aborted) {
      if (server.stop.aborted) connection.fail(stoppedCompletion(), "local-close");
      else connection.fail(got.completion);
      failed.abort();
      stopChild();
    }
    await closeInput();
    return got;
  });
  const output = streamSource(child.stdout);
  const sending = sendStream(run, socket, output, NO_FLAGS).then((sent) => {
    if (!NT_SUCCESS(sent.status) && !failed.signal.aborted) {
      connection.fail(sent);
      failed.abort();
      stopChild();
      output.close();
    }
    return sent;
  });
  const sent = await sending;
  if (NT_SUCCESS(sent.status) && !failed.signal.aborted) {
    // The command's output ended: our FIN, then the rest of the peer's data, each receive
    // bounded, up to its FIN.
    await sendFin(server, connection);
    inbound.bound(run.timeout);
  }
  await receiving;
  // Both directions are done. A command that closed its output but runs on gets --timeout to
  // exit by itself, then SIGTERM.
  const waited = new AbortController();
  const exited = await Promise.race([
    child.status,
    pauseFor(run.timeout, AbortSignal.any([server.stop, waited.signal])),
  ]);
  waited.abort();
  if (exited === undefined) stopChild();
  const status = await child.status;
  server.stop.removeEventListener("abort", stopChild);
  return status.code;
}

/**
 * What every `accept` connection handler shares: the server's settings ({@linkcode Server}),
 * the status a stopped server expects, and the calls that end a served connection (a reported
 * call, receiving to the peer's FIN, a graceful or an abortive disconnect).
 *
 * @module
 */

import {
  NT_SUCCESS,
  type NTSTATUS,
  type SockAddr,
  STATUS_CANCELLED,
  STATUS_DATA_ERROR,
  type TlsServerOptions,
  WSK_FLAG_ABORTIVE,
  type WskCompletion,
  type WskConnectionSocket,
} from "../../provider/mod.ts";
import type { CidrRule } from "../cidr.ts";
import type { CallContext } from "../context.ts";
import type { PatternVerifier } from "../pattern.ts";
import { pump } from "../pump.ts";
import type { Connection } from "./connections.ts";

/**
 * The Flags argument of a WSK call with none set: no WSK_FLAG_ABORTIVE (a disconnect is
 * graceful), no WSK_FLAG_WAITALL (a receive completes with what has arrived).
 */
export const NO_FLAGS = 0;

/** What `accept` does with each connection. */
export type AcceptMode = "echo" | "discard" | "print" | "reply" | "verify" | "exec" | "forward";

/** The command `--mode exec` runs per connection (`wsk accept --mode exec -- CMD ARGS…`). */
export interface ExecCommand {
  readonly command: string;
  readonly args: readonly string[];
}

/** What a connection's calls complete with once the server was stopped. */
export function stoppedCompletion(): WskCompletion {
  return { status: STATUS_CANCELLED, information: 0, message: "The server was stopped" };
}

/** Everything a connection handler needs: the run, the options, and the stop signal. */
export interface Server {
  readonly run: CallContext;
  /** Writes received payload to standard output (--mode print). */
  readonly writePayload: (bytes: Uint8Array) => Promise<void>;
  readonly mode: AcceptMode;
  readonly reply: Uint8Array;
  readonly verifyBytes: number | undefined;
  readonly keepOpen: boolean;
  /** `--mode exec`: the command each connection runs. */
  readonly exec: ExecCommand | null;
  /** `--mode forward`: where each connection is relayed to (`--to`, resolved). */
  readonly forward: SockAddr | null;
  /** Aborted by SIGINT or SIGTERM, or when a handler threw (a defect). */
  readonly stop: AbortSignal;
  /** `--tls`: each connection starts with a server handshake. */
  readonly tls?: TlsServerOptions;
}

/** STATUS_CANCELLED is what a --keep-open server expects once it is told to stop. */
export function cancelExpected(server: Server): NTSTATUS | undefined {
  return server.keepOpen && server.stop.aborted ? STATUS_CANCELLED : undefined;
}

/** The live connection states in which WskCloseSocket would abort (RST where it can). */
function isOpen(socket: WskConnectionSocket): boolean {
  return socket.state === "ESTAB" || socket.state === "LFIN" || socket.state === "RFIN";
}

/**
 * Receives until the peer's FIN through the shared pump, handing each chunk to `sink` (if any;
 * false from it ends the loop; a write error it throws ends the connection with the write's
 * status), as one WskReceive line with `calls`. Each call is bounded by --timeout (an idle
 * timeout). With a `verifier`, the first mismatch stops the loop and the line (and the
 * connection) gets STATUS_DATA_ERROR with the verifier's message, as `receive --verify-pattern`
 * reports it. Returns true when the FIN was reached and no mismatch was found.
 */
export async function receiveToFin(
  server: Server,
  connection: Connection,
  options: {
    sink?: (bytes: Uint8Array, elapsedMs: number) => Promise<boolean>;
    show?: boolean;
    verifier?: PatternVerifier;
  } = {},
): Promise<boolean> {
  const { sink, show = false, verifier } = options;
  const got = await pump(server.run, connection.socket, {
    idle: true,
    show,
    ...(sink ? { sink } : {}),
    ...(verifier ? { verify: verifier } : {}),
    expected: () => cancelExpected(server),
  });
  if (got.status === STATUS_DATA_ERROR) connection.fail(got.completion, "local-close");
  else if (!NT_SUCCESS(got.status)) connection.fail(got.completion);
  return got.fin && NT_SUCCESS(got.status);
}

/** One reported call on a served connection; a failure is recorded on the connection. */
export async function connectionCall(
  server: Server,
  connection: Connection,
  call: string,
  issue: () => Promise<WskCompletion>,
  extra: { value?: string } = {},
): Promise<WskCompletion> {
  // STATUS_CANCELLED comes only from the run's signal, that is once the server was stopped, which
  // a --keep-open server expects; so the expected status can be named before the call.
  const expected = server.keepOpen ? STATUS_CANCELLED : undefined;
  const completion = await server.run.call(call, connection.socket, issue, extra, expected);
  if (!NT_SUCCESS(completion.status)) connection.fail(completion);
  return completion;
}

/**
 * Ends a connection without losing data: a graceful WskDisconnect, then (if the peer has not
 * finished) receiving until its FIN, shown in the WskReceive line.
 *
 * Not `Run.finish`: besides waiting for the FIN with an idle timeout per receive (a slow peer
 * still finishing is not cut off) rather than one deadline for the whole drain, this records a
 * failure on the connection for its Summary, expects STATUS_CANCELLED once a --keep-open server
 * is stopped, and leaves WskCloseSocket to the caller.
 */
export async function disconnectGracefully(server: Server, connection: Connection): Promise<void> {
  const sent = await sendFin(server, connection);
  if (sent !== null && !NT_SUCCESS(sent.status)) return;
  if (connection.socket.state === "LFIN") await receiveToFin(server, connection, { show: true });
}

/**
 * Our FIN: a graceful WskDisconnect, unless the connection is already shut or aborted (then
 * null). A failure is recorded on the connection.
 */
export async function sendFin(
  server: Server,
  connection: Connection,
): Promise<WskCompletion | null> {
  const socket = connection.socket;
  if (socket.state !== "ESTAB" && socket.state !== "RFIN") return null;
  const d = socket.Dispatch;
  return await connectionCall(
    server,
    connection,
    "WskDisconnect",
    () => d.WskDisconnect(socket, null, NO_FLAGS, server.run.irp()),
  );
}

/**
 * Aborts a live connection (WSK_FLAG_ABORTIVE): an RST where the backing can send one, else a
 * close that the line reports as `peer_saw=FIN`. WskCloseSocket follows.
 */
export async function disconnectAbortively(server: Server, connection: Connection): Promise<void> {
  const socket = connection.socket;
  if (!isOpen(socket)) return;
  const d = socket.Dispatch;
  await connectionCall(
    server,
    connection,
    "WskDisconnect",
    () => d.WskDisconnect(socket, null, WSK_FLAG_ABORTIVE, server.run.irp()),
    { value: "abortive" },
  );
}

/** What the accept loop was told on the command line. */
export interface AcceptPlan {
  readonly count: number | null;
  readonly allow: readonly CidrRule[];
  readonly deny: readonly CidrRule[];
}

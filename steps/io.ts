/**
 * The process around a command: where lines, payload and input go and come from. The CLI gives
 * the real process's; tests give their own; the session agent gives one that sends payload
 * back to the command that asked.
 *
 * @module
 */

import type { ByteSource } from "../engine/send.ts";
import type { TextSink } from "../report/reporter.ts";

/** The process around the CLI; tests give their own. */
export interface CliContext {
  /** Status lines (and help) for stdout. */
  readonly stdout: TextSink;
  /** Error lines for stderr. */
  readonly stderr: TextSink;
  /** Raw payload bytes to stdout. */
  writePayload(bytes: Uint8Array): Promise<void>;
  /** Standard input, read into the caller's buffers. */
  readonly stdin: () => ByteSource;
  /** Colour the status names. */
  readonly color: boolean;
  /** Set by the command that ran: 0, 1 (a call failed) or 3 (an expectation failed). */
  exitCode: number;
}

/**
 * What a step needs of the process around it: standard input and output for payload, and
 * whether lines are JSON. The CLI gives the process's own; the session agent gives one that
 * sends payload back to the command that asked.
 */
export interface StepIO {
  /** Writes payload bytes to standard output. */
  stdout(bytes: Uint8Array): Promise<void>;
  /** Standard input (`send` with no data, or `--file -`). */
  stdin(): ByteSource;
  /** Lines are JSON Lines (progress is then off). */
  readonly json: boolean;
  /** Payload is about to take standard output: lines move to standard error. */
  payloadOnStdout(): void;
}

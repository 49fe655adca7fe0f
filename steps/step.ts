/**
 * A parsed step: one verb with its checked values, the unit the executor runs. A command line
 * becomes a few steps, a script line one, a handle command one; all three are parsed from the
 * same declaration (see `verb.ts`).
 *
 * @module
 */

import type { AddressFamily, NTSTATUS } from "../provider/mod.ts";
import type { Endpoint, OptionSetting, OptionSpec } from "../syntax/values.ts";

/** What every step may say. */
export interface StepCommon {
  /** 1-based line in the script (1 for a command line or a handle command). */
  readonly line: number;
  /** 1-based step number. */
  readonly step: number;
  /** The step as written (for messages). */
  readonly text: string;
  /** The socket the step works on. */
  readonly socket: string;
  /** The status the step's own dispatch call must complete with (a negative test). */
  readonly status?: NTSTATUS;
  /** Per-call bound for this step, overriding the run's --timeout. */
  readonly timeout?: number;
}

/** A TLS handshake a step asks for (`--tls`, or the `starttls` step). */
export interface TlsStep {
  /** CA certificate files (absolute paths) to trust. */
  readonly ca: readonly string[];
  /** Their PEM text, read by the command when a session agent runs the step (it reads no files). */
  readonly pems?: readonly string[];
  /** The name to send and check; default: the host the connect named. */
  readonly servername?: string;
  /** ALPN protocols to offer. */
  readonly alpn?: readonly string[];
}

/** How a step that connects gets there. */
export interface Connecting {
  readonly remote: Endpoint;
  /** Run a TLS handshake once connected. */
  readonly tls?: TlsStep;
  readonly bind?: Endpoint;
  /** Retry a refused connect with fresh sockets until this many milliseconds have passed. */
  readonly retryUntil?: number;
}

/** Payload options shared by send and receive. */
export interface Traced {
  /** Hex dump every chunk to stderr. */
  readonly hex: boolean;
  /** Progress on stderr: true, false, or undefined for "on a terminal, over 1 MiB". */
  readonly progress?: boolean;
}

/** One parsed step. */
export type Step =
  & StepCommon
  & (
    | {
      readonly verb: "socket";
      readonly family: AddressFamily;
      readonly listen: boolean;
      readonly bind?: Endpoint;
    }
    | { readonly verb: "bind"; readonly local: Endpoint; readonly listen: boolean }
    | (Connecting & {
      readonly verb: "connect";
      /** Make the socket on a backing that can reset (the command line's choice per verb). */
      readonly abortive?: boolean;
      /** Run `--tls` with Deno.startTls, not node:tls (the command line's choice per verb). */
      readonly fastTls?: boolean;
    })
    | (Connecting & { readonly verb: "connectex"; readonly data: Uint8Array })
    | (Connecting & {
      readonly verb: "socketconnect";
      /** A port list: each port is checked and closed at once; no socket is kept. */
      readonly ports?: readonly number[];
    })
    | (Traced & {
      readonly verb: "send";
      readonly data?: Uint8Array;
      /** A file to send (`-`: standard input). */
      readonly file?: string;
      readonly pattern?: number;
      readonly nodelay: boolean;
      /** Full duplex: write what comes back while sending, then half-close, until the FIN. */
      readonly receive: boolean;
    })
    | (Traced & {
      readonly verb: "receive";
      readonly bytes?: number;
      readonly waitAll: boolean;
      readonly drain: boolean;
      readonly until?: Uint8Array;
      readonly expect?: Uint8Array;
      readonly expectRe?: RegExp;
      readonly verifyPattern?: number | true;
      /** Where the payload goes (`-`: standard output); unset: into the WskReceive record. */
      readonly output?: string;
      readonly append: boolean;
    })
    | { readonly verb: "disconnect"; readonly data?: Uint8Array; readonly abortive: boolean }
    | { readonly verb: "getlocaladdress" }
    | { readonly verb: "getremoteaddress" }
    | {
      readonly verb: "controlsocket";
      readonly set: readonly OptionSetting[];
      readonly get: readonly OptionSpec[];
    }
    | {
      readonly verb: "closesocket";
      /** Post a WskReceive first and close under it: it completes with STATUS_CANCELLED. */
      readonly pendingReceive: boolean;
    }
    | { readonly verb: "accept"; readonly listener: string }
    | { readonly verb: "starttls"; readonly tls: TlsStep }
  );

/** The verbs a step can have. */
export type StepVerb = Step["verb"];

/**
 * `accept` from its options to its last line: {@linkcode planAccept} checks what the command
 * line asked for (before any socket opens) and {@linkcode serveAccept} listens, serves
 * connections through IRPs or events, and cleans up.
 *
 * @module
 */

import {
  AF_INET,
  canResetDenoConnections,
  type SockAddr,
  type TlsServerOptions,
} from "../../provider/mod.ts";
import type { CidrRule } from "../cidr.ts";
import { CallContext } from "../context.ts";
import type { Endpoint } from "../../syntax/values.ts";
import { UsageError } from "../../syntax/usage.ts";
import { Handlers, serveUntilDone } from "./connections.ts";
import { acceptWithEvents } from "./events.ts";
import { acceptWithIrps } from "./irp.ts";
import type { AcceptMode, AcceptPlan, ExecCommand, Server } from "./server.ts";

/**
 * Where `accept` listens without a LOCAL: loopback only (nothing outside the machine reaches a
 * test server by accident), on a port the system picks (the WskBind line says which).
 */
const DEFAULT_LOCAL: SockAddr = { family: AF_INET, address: "127.0.0.1", port: 0 };

/** The options `accept` takes, as commander parsed them. */
export interface AcceptOptions {
  readonly count: number;
  readonly keepOpen?: true;
  readonly mode: AcceptMode;
  readonly reply?: Uint8Array;
  readonly replyFile?: string;
  readonly verifyBytes?: number;
  readonly allow?: readonly CidrRule[];
  readonly deny?: readonly CidrRule[];
  readonly backing?: "deno" | "node";
  readonly events?: true;
  readonly tls?: true;
  readonly cert?: string;
  readonly key?: string;
  /** `--to HOST:PORT`: the target of `--mode forward` (implies it). */
  readonly to?: Endpoint;
}

/** A checked `accept`: everything {@linkcode serveAccept} needs, the reply file already read. */
export interface AcceptSettings {
  readonly mode: AcceptMode;
  readonly reply: Uint8Array;
  readonly verifyBytes: number | undefined;
  readonly plan: AcceptPlan;
  readonly backing: "deno" | "node";
  readonly events: boolean;
  /** `--tls`: the certificate and key, read. */
  readonly tls?: TlsServerOptions;
  /** `--mode exec`: the command after `--`. */
  readonly exec: ExecCommand | null;
  /** `--mode forward`: the target, resolved when the server starts. */
  readonly to: Endpoint | null;
}

/** Reads the --reply-file before any socket opens; a usage error when it cannot. */
async function readReplyFile(path: string): Promise<Uint8Array> {
  try {
    if ((await Deno.stat(path)).isDirectory) throw new Error("it is a directory");
    return await Deno.readFile(path);
  } catch (error) {
    throw new UsageError(
      `Cannot read reply file "${path}": ${error instanceof Error ? error.message : error}`,
    );
  }
}

/**
 * Reads `--cert` and `--key` for `--tls` before any socket opens (either alone means `--tls`).
 * TLS is served on node-backed connections only: Deno cannot upgrade an accepted connection
 * (Deno.startTls is client-only). Throws UsageError.
 */
async function planTls(options: AcceptOptions): Promise<TlsServerOptions | undefined> {
  if (!options.tls && options.cert === undefined && options.key === undefined) return undefined;
  if (options.cert === undefined || options.key === undefined) {
    throw new UsageError("accept --tls needs --cert FILE and --key FILE");
  }
  if (options.events) throw new UsageError('Cannot use --tls with "--events"');
  if (options.backing === "deno") {
    throw new UsageError(
      'Cannot use --tls with --backing "deno": Deno cannot start TLS on an accepted connection',
    );
  }
  const read = async (what: string, path: string, marker: RegExp) => {
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (error) {
      throw new UsageError(
        `Cannot read ${what} file "${path}": ${error instanceof Error ? error.message : error}`,
      );
    }
    if (!marker.test(text)) {
      throw new UsageError(`Cannot use ${what} file "${path}": no PEM ${what}`);
    }
    return text;
  };
  return {
    cert: await read("certificate", options.cert, /-----BEGIN CERTIFICATE-----/),
    key: await read("key", options.key, /-----BEGIN [A-Z ]*PRIVATE KEY-----/),
  };
}

/**
 * Checks `accept`'s options and settles the mode and the backing. `explicitMode` is true when
 * the user typed --mode: otherwise --reply/--reply-file imply `reply` and --verify-bytes
 * implies `verify`. Throws {@linkcode UsageError} for a combination that cannot work.
 */
export async function planAccept(
  options: AcceptOptions,
  explicitMode: boolean,
  command: readonly string[] = [],
): Promise<AcceptSettings> {
  let mode = options.mode;
  const wantsReply = options.reply !== undefined || options.replyFile !== undefined;
  if (wantsReply && !explicitMode) mode = "reply";
  if (options.verifyBytes !== undefined && !explicitMode) mode = "verify";
  if (options.to !== undefined && !explicitMode) mode = "forward";
  if (command.length > 0 && !explicitMode) mode = "exec";
  const exec = planExec(mode, command);
  if (options.to !== undefined && mode !== "forward") {
    throw new UsageError(`Cannot use --to with --mode "${mode}"`);
  }
  if (mode === "forward" && options.to === undefined) {
    throw new UsageError("--mode forward needs the target: --to HOST:PORT");
  }
  if (options.events && (mode === "exec" || mode === "forward")) {
    throw new UsageError(`Cannot use --events with --mode "${mode}": it runs on WskAccept IRPs`);
  }
  if (wantsReply && mode !== "reply") {
    throw new UsageError(`Cannot use --reply or --reply-file with --mode "${mode}"`);
  }
  if (options.verifyBytes !== undefined && mode !== "verify") {
    throw new UsageError(`Cannot use --verify-bytes with --mode "${mode}"`);
  }
  const reply = options.replyFile !== undefined
    ? await readReplyFile(options.replyFile)
    : options.reply ?? new Uint8Array(0);
  const plan: AcceptPlan = {
    count: options.keepOpen ? null : options.count,
    allow: options.allow ?? [],
    deny: options.deny ?? [],
  };
  // Refused peers are reset: node-backed accepted sockets always can, deno-backed ones only
  // with --allow-ffi. Everything else keeps the deno backing unless asked: it reads without a
  // copy, and its memory stays flat over long streams (node:net's grows with the bytes moved:
  // 235 MiB after 1 GiB, against 74 MiB); without --allow-ffi its aborts (a failed
  // verification, a deadline) close with a FIN, which the lines say (peer_saw=FIN).
  const tls = await planTls(options);
  // A forwarded connection passes the target's reset on: its client side must be able to
  // reset too.
  const filtering = plan.allow.length > 0 || plan.deny.length > 0;
  const resetting = filtering || mode === "forward";
  const denoResets = resetting && canResetDenoConnections();
  if (filtering && options.backing === "deno" && !denoResets) {
    throw new UsageError(
      'Cannot use --allow or --deny with --backing "deno" without --allow-ffi: refused ' +
        "peers must be reset",
    );
  }
  return {
    mode,
    reply,
    verifyBytes: options.verifyBytes,
    plan,
    backing: options.backing ?? (tls || (resetting && !denoResets) ? "node" : "deno"),
    events: options.events === true,
    exec,
    to: options.to ?? null,
    ...(tls ? { tls } : {}),
  };
}

/**
 * The command of `--mode exec` (the words after `--`), checked before any socket opens: it must
 * be there (and only with that mode), and this process must be allowed to run it (`--allow-run`;
 * only this mode needs it).
 */
function planExec(mode: AcceptMode, command: readonly string[]): ExecCommand | null {
  if (mode !== "exec") {
    if (command.length > 0) {
      throw new UsageError(
        `Cannot run "${command[0]}" with --mode "${mode}": a command is for --mode exec`,
      );
    }
    return null;
  }
  const [name, ...args] = command;
  if (name === undefined || name === "") {
    throw new UsageError("--mode exec needs a command after --: wsk accept --mode exec -- CMD");
  }
  if (Deno.permissions.querySync({ name: "run", command: name }).state !== "granted") {
    throw new UsageError(
      `Cannot run "${name}" for each connection: --mode exec needs --allow-run ` +
        "(deno run --allow-run …, or deno task wsk)",
    );
  }
  return { command: name, args };
}

/**
 * Listens on `local` (default {@linkcode DEFAULT_LOCAL}) and serves connections as `settings`
 * say until the count is reached, `outer`'s signal is aborted (SIGINT/SIGTERM), a --timeout
 * passes with no connection, or a handler throws (a defect: thrown again once every socket was
 * closed). Every call is reported through `outer`'s reporter; `writePayload` takes what
 * --mode print receives.
 */
export async function serveAccept(
  outer: CallContext,
  local: Endpoint | undefined,
  settings: AcceptSettings,
  writePayload: (bytes: Uint8Array) => Promise<void>,
): Promise<void> {
  // A handler that throws stops the server as a signal would.
  const stopper = new AbortController();
  const handlers = new Handlers(() => stopper.abort());
  const run = new CallContext(
    outer.reporter,
    outer.timeout,
    outer.timeoutGiven,
    AbortSignal.any([outer.signal, stopper.signal]),
  );
  let server: Server = {
    run,
    writePayload,
    mode: settings.mode,
    reply: settings.reply,
    verifyBytes: settings.verifyBytes,
    // --keep-open is the plan without a count.
    keepOpen: settings.plan.count === null,
    exec: settings.exec,
    forward: null,
    stop: run.signal,
    ...(settings.tls ? { tls: settings.tls } : {}),
  };
  if (settings.to !== null) {
    // The target is resolved once, before listening: a name that does not resolve stops here.
    const target = await run.resolve(settings.to);
    if (target === null) return;
    server = { ...server, forward: target };
  }
  const address = local ? await run.resolve(local) : DEFAULT_LOCAL;
  if (address === null) return;
  if (settings.events) {
    await acceptWithEvents(server, address, settings.backing, settings.plan, handlers);
    return;
  }
  const listener = await run.listen(address, settings.backing, null);
  if (!listener) return;
  await serveUntilDone(
    run,
    listener,
    handlers,
    () => acceptWithIrps(server, listener, settings.plan, handlers),
  );
}

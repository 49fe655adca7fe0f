/**
 * The step executor: runs parsed steps (see `script.ts`) on named live sockets, each step its own
 * dispatch call, reported and judged. `wsk run` gives it a whole script; the session agent gives
 * it the steps of one command on a handle.
 *
 * @module
 */

import {
  type AddressFamily,
  AF_INET,
  NT_SUCCESS,
  ntStatusName,
  type SockAddr,
  STATUS_IO_TIMEOUT,
  STATUS_SUCCESS,
  wildcard,
  WSK_FLAG_ABORTIVE,
  WSK_FLAG_NODELAY,
  wskBuf,
  type WskClientConnectionDispatch,
  type WskCompletion,
  type WskConnectionSocket,
  WskListenSocket,
} from "../provider/mod.ts";
import { joinBytes, pump, type PumpResult, ReadAhead, Received } from "../engine/pump.ts";
import type { Run } from "../engine/context.ts";
import { type Step } from "./script.ts";
import { PatternVerifier } from "../engine/pattern.ts";
import { sendPattern } from "../engine/send.ts";

/** Most received bytes one receive step keeps for matching and for the next step. */
const MAX_MATCH = 16 << 20;

/** A socket a script step works on. */
export type AnySocket = WskConnectionSocket | WskListenSocket;

/** Why the script stopped early: a failed expectation (exit 3) or an unexpected status (1). */
export type Outcome = "next" | "expectation" | "failure";

/**
 * What a runner keeps between steps. `wsk run` gives each script its own; the session agent
 * shares one across the runners of many commands, so sockets outlive a command.
 */
export interface RunnerState {
  /** Live sockets by name. */
  readonly sockets: Map<string, AnySocket>;
  /** Bytes a receive step took past its stop point, kept for the next receive on the socket. */
  readonly carry: Map<AnySocket, Uint8Array>;
  /** The client dispatch (event callbacks) every new connection socket gets. */
  readonly dispatch: WskClientConnectionDispatch | null;
}

/** A fresh, empty {@linkcode RunnerState} with no event callbacks. */
export function newRunnerState(): RunnerState {
  return { sockets: new Map(), carry: new Map(), dispatch: null };
}

function indexOfBytes(haystack: Uint8Array, needle: Uint8Array, from = 0): number {
  if (needle.length === 0) return 0;
  const first = needle[0]!;
  for (let i = haystack.indexOf(first, from); i >= 0; i = haystack.indexOf(first, i + 1)) {
    if (i + needle.length > haystack.length) return -1;
    let j = 1;
    while (j < needle.length && haystack[i + j] === needle[j]) j++;
    if (j === needle.length) return i;
  }
  return -1;
}

/** Runs the steps of one script (or, in the session agent, of one command). */
export class ScriptRunner {
  #run: Run;
  #sockets: Map<string, AnySocket>;
  #carry: Map<AnySocket, Uint8Array>;
  #dispatch: WskClientConnectionDispatch | null;

  constructor(run: Run, state: RunnerState = newRunnerState()) {
    this.#run = run;
    this.#sockets = state.sockets;
    this.#carry = state.carry;
    this.#dispatch = state.dispatch;
  }

  #irp(step: Step) {
    return this.#run.irp(step.timeout ?? this.#run.timeout);
  }

  #any(step: Step): AnySocket {
    const socket = this.#sockets.get(step.socket);
    if (!socket) throw new StepError(`socket "${step.socket}" does not exist (any more)`);
    return socket;
  }

  #connection(step: Step, name = step.socket): WskConnectionSocket {
    const socket = this.#sockets.get(name);
    if (!socket || socket instanceof WskListenSocket) {
      throw new StepError(`socket "${name}" is not a connection socket`);
    }
    return socket;
  }

  /** Judges the step's own call: its expected status, or success. */
  #judge(step: Step, completion: WskCompletion): Outcome {
    if (step.status !== undefined) {
      const passed = completion.status === step.status;
      this.#run.reporter.expectation({
        passed,
        step: step.step,
        line: step.line,
        verb: step.verb,
        expected: ntStatusName(step.status),
        ...(passed ? {} : { actual: ntStatusName(completion.status) }),
      });
      return passed ? "next" : "expectation";
    }
    return NT_SUCCESS(completion.status) ? "next" : "failure";
  }

  /**
   * Shows bytes an earlier receive took past its stop point that no later step read, as a
   * `WskReceive … calls=0 value=unread` line, so nothing received is dropped silently.
   */
  #flushUnread(socket: AnySocket): void {
    const unread = this.#carry.get(socket);
    this.#carry.delete(socket);
    if (!unread || socket instanceof WskListenSocket) return;
    this.#run.report(
      "WskReceive",
      socket,
      {
        status: STATUS_SUCCESS,
        information: unread.length,
      },
      0,
      { calls: 0, value: "unread", data: unread },
    );
  }

  /** Adds `bytes` after what is already carried for the next receive on `socket`. */
  #keep(socket: AnySocket, bytes: Uint8Array): void {
    const carried = this.#carry.get(socket);
    this.#carry.set(
      socket,
      carried ? joinBytes([carried, bytes], carried.length + bytes.length) : bytes,
    );
  }

  /** Issues the step's own dispatch call, reported and judged. */
  async #main<T extends WskCompletion>(
    step: Step,
    call: string,
    socket: AnySocket | null | ((c: T) => AnySocket | null),
    issue: () => Promise<T>,
    extra = {},
  ): Promise<{ outcome: Outcome; completion: T }> {
    const completion = await this.#run.call(call, socket, issue, extra, step.status);
    return { outcome: this.#judge(step, completion), completion };
  }

  /** Creates a connection socket for `step` when it has none yet (reported). */
  async #ensureSocket(
    step: Step,
    family: AddressFamily = AF_INET,
  ): Promise<WskConnectionSocket | null> {
    const existing = this.#sockets.get(step.socket);
    if (existing) return this.#connection(step);
    const socket = await this.#run.socket(family, { abortive: true }, this.#dispatch);
    if (socket) this.#sockets.set(step.socket, socket);
    return socket;
  }

  async #bindIfNeeded(step: Step, socket: WskConnectionSocket, local: SockAddr): Promise<boolean> {
    if (socket.state !== "INIT") return true;
    const d = socket.Dispatch;
    const bound = await this.#run.call(
      "WskBind",
      socket,
      () => d.WskBind(socket, local, 0, this.#irp(step)),
    );
    return NT_SUCCESS(bound.status);
  }

  /** Runs one step; returns how to go on. */
  async step(step: Step): Promise<Outcome> {
    const run = this.#run;
    switch (step.verb) {
      case "socket": {
        const d = run.npi.Dispatch;
        const { outcome, completion } = await this.#main(
          step,
          "WskSocket",
          (c) => c.socket ?? c.listenSocket ?? null,
          () =>
            d.WskSocket(
              run.npi.Client,
              step.family,
              1,
              6,
              step.listen ? 1 : 2,
              undefined,
              step.listen ? null : this.#dispatch,
              { ...this.#irp(step), abortive: true },
            ),
        );
        const made = completion.socket ?? completion.listenSocket;
        if (made) this.#sockets.set(step.socket, made);
        return outcome;
      }
      case "bind": {
        const existing = this.#sockets.get(step.socket);
        const local = await run.resolve(step.local, existing?.family ?? AF_INET);
        if (local === null) return "failure";
        const socket = existing ?? await this.#ensureSocket(step, local.family);
        if (!socket) return "failure";
        return (await this.#main(
          step,
          "WskBind",
          socket,
          () =>
            socket instanceof WskListenSocket
              ? socket.Dispatch.WskBind(socket, local, 0, this.#irp(step))
              : socket.Dispatch.WskBind(socket, local, 0, this.#irp(step)),
        )).outcome;
      }
      case "connect":
      case "connectex": {
        if (step.verb === "connect" && step.retryUntil !== undefined) {
          // As `wsk connect --retry-until`: fresh sockets until one connects or time is up.
          if (this.#sockets.has(step.socket)) {
            throw new StepError(`--retry-until needs a new socket; "${step.socket}" exists`);
          }
          const made = await run.connectedRetrying(step.remote, step.bind, step.retryUntil);
          if (!made) return "failure";
          this.#sockets.set(step.socket, made);
          return "next";
        }
        const remote = await run.resolve(step.remote);
        if (remote === null) return "failure";
        const socket = await this.#ensureSocket(step, remote.family);
        if (!socket) return "failure";
        const local = step.bind
          ? await run.resolve(step.bind, remote.family)
          : wildcard(remote.family);
        if (local === null || !(await this.#bindIfNeeded(step, socket, local))) return "failure";
        const d = socket.Dispatch;
        return (await this.#main(
          step,
          step.verb === "connect" ? "WskConnect" : "WskConnectEx",
          socket,
          () =>
            step.verb === "connect"
              ? d.WskConnect(socket, remote, 0, this.#irp(step))
              : d.WskConnectEx(socket, remote, wskBuf(step.data), 0, this.#irp(step)),
        )).outcome;
      }
      case "socketconnect": {
        const remote = await run.resolve(step.remote);
        if (remote === null) return "failure";
        const local = step.bind
          ? await run.resolve(step.bind, remote.family)
          : wildcard(remote.family);
        if (local === null) return "failure";
        const d = run.npi.Dispatch;
        await run.prepare({ connect: { local, abortive: true } });
        const { outcome, completion } = await this.#main(
          step,
          "WskSocketConnect",
          (c) => c.socket ?? null,
          () =>
            d.WskSocketConnect(run.npi.Client, 1, 6, local, remote, 0, undefined, this.#dispatch, {
              ...this.#irp(step),
              abortive: true,
            }),
          { remote },
        );
        if (completion.socket) this.#sockets.set(step.socket, completion.socket);
        return outcome;
      }
      case "send": {
        const socket = this.#connection(step);
        const flags = step.nodelay ? WSK_FLAG_NODELAY : 0;
        // While the step sends, what the peer sends back is read ahead (up to READ_AHEAD_MAX)
        // for the next receive: a peer that echoes is never blocked by nobody reading.
        const ahead = socket.state === "ESTAB" || socket.state === "LFIN"
          ? new ReadAhead(run, socket)
          : null;
        try {
          if (step.pattern !== undefined) {
            return this.#judge(step, await sendPattern(run, socket, step.pattern, flags));
          }
          const data = step.data!;
          return (await this.#main(
            step,
            "WskSend",
            socket,
            () => socket.Dispatch.WskSend(socket, wskBuf(data), flags, this.#irp(step)),
          )).outcome;
        } finally {
          const read = await ahead?.stop();
          if (read && read.length > 0) this.#keep(socket, read);
        }
      }
      case "receive":
        return await this.#receive(step);
      case "disconnect": {
        const socket = this.#connection(step);
        const buffer = step.data ? wskBuf(step.data) : null;
        const flags = step.abortive ? WSK_FLAG_ABORTIVE : 0;
        return (await this.#main(
          step,
          "WskDisconnect",
          socket,
          () => socket.Dispatch.WskDisconnect(socket, buffer, flags, this.#irp(step)),
        )).outcome;
      }
      case "getlocaladdress":
      case "getremoteaddress": {
        const socket = this.#any(step);
        const local = step.verb === "getlocaladdress";
        const start = performance.now();
        const got = socket instanceof WskListenSocket
          ? await socket.Dispatch.WskGetLocalAddress(socket, this.#irp(step))
          : local
          ? await socket.Dispatch.WskGetLocalAddress(socket, this.#irp(step))
          : await socket.Dispatch.WskGetRemoteAddress(socket, this.#irp(step));
        run.report(
          local ? "WskGetLocalAddress" : "WskGetRemoteAddress",
          {
            id: socket.id,
            localAddress: local ? got.address ?? null : socket.localAddress,
            remoteAddress: local || socket instanceof WskListenSocket ? null : got.address ?? null,
          },
          got,
          performance.now() - start,
          {},
          step.status,
        );
        return this.#judge(step, got);
      }
      case "controlsocket": {
        const socket = this.#connection(step);
        for (const setting of step.set) {
          const set = await run.setOption(socket, setting, this.#irp(step), step.status);
          const outcome = this.#judge(step, set);
          if (outcome !== "next") return outcome;
        }
        for (const spec of step.get) {
          const got = await run.getOption(socket, spec, this.#irp(step), step.status);
          const outcome = this.#judge(step, got);
          if (outcome !== "next") return outcome;
        }
        return "next";
      }
      case "closesocket": {
        const socket = this.#any(step);
        this.#sockets.delete(step.socket);
        this.#flushUnread(socket);
        return (await this.#main(
          step,
          "WskCloseSocket",
          socket,
          () =>
            socket instanceof WskListenSocket
              ? socket.Dispatch.WskCloseSocket(socket)
              : socket.Dispatch.WskCloseSocket(socket),
        )).outcome;
      }
      case "accept": {
        const listener = this.#sockets.get(step.listener);
        if (!(listener instanceof WskListenSocket)) {
          throw new StepError(`socket "${step.listener}" is not a listening socket`);
        }
        const { outcome, completion } = await this.#main(
          step,
          "WskAccept",
          (c) => c.socket ?? listener,
          () =>
            listener.Dispatch.WskAccept(listener, 0, undefined, this.#dispatch, this.#irp(step)),
        );
        if (completion.socket) this.#sockets.set(step.socket, completion.socket);
        return outcome;
      }
    }
  }

  /**
   * A receive step. With no text to look for it is one loop of WskReceive calls until the peer's
   * FIN or `--bytes` (the shared pump, one line); `--drain` is one WSK_FLAG_DRAIN call;
   * `--verify-pattern` checks the pattern. With `--until`, `--expect` or `--expect-re` the step
   * keeps what it receives (at most 16 MiB) to look in it, stops as soon as its bound has
   * arrived, and keeps any bytes past that point for the next receive. Then `--status` is
   * judged, and the expectations when the status is the expected one.
   */
  async #receive(step: Step & { verb: "receive" }): Promise<Outcome> {
    const run = this.#run;
    const socket = this.#connection(step);
    if (step.drain) {
      this.#flushUnread(socket);
      return this.#judge(step, await run.drain(socket, this.#irp(step), step.status));
    }
    const timeout = step.timeout ?? run.timeout;
    // Bytes taken earlier (read ahead during a send step, or past an earlier match) come first.
    const carried = this.#carry.get(socket);
    this.#carry.delete(socket);
    const common = {
      timeout,
      ...(carried ? { carried } : {}),
      ...(step.status === undefined ? {} : { expected: step.status }),
    };
    if (step.verifyPattern !== undefined) {
      const size = step.verifyPattern === true ? undefined : step.verifyPattern;
      const got = await pump(run, socket, {
        ...common,
        verify: new PatternVerifier(size),
        idle: true,
        ...(size === undefined ? {} : { limit: size }),
      });
      return this.#judge(step, got.completion);
    }
    if (!step.until && !step.expect && !step.expectRe) {
      // Nothing to look for: stream it (no buffering), showing what came in the line.
      const got = await pump(run, socket, {
        ...common,
        show: true,
        waitAll: step.waitAll,
        ...(step.bytes === undefined ? {} : { limit: step.bytes }),
      });
      return this.#judge(step, got.completion);
    }
    return await this.#receiveMatching(step, socket, timeout, carried);
  }

  async #receiveMatching(
    step: Step & { verb: "receive" },
    socket: WskConnectionSocket,
    timeout: number,
    carried: Uint8Array | undefined,
  ): Promise<Outcome> {
    const run = this.#run;
    const stopText = step.until ?? (step.bytes === undefined ? step.expect : undefined);
    const stopRe = step.bytes === undefined && !step.until && !step.expect
      ? step.expectRe
      : undefined;
    const decoder = new TextDecoder();
    let searched = 0;
    /** Where the data this step takes ends (the rest is carried to the next receive). */
    const match = (received: Received): number | null => {
      if (step.bytes !== undefined && received.length >= step.bytes) return step.bytes;
      if (stopText) {
        // Only the new bytes (and the overlap a match could straddle) need looking at.
        const from = Math.max(0, searched - stopText.length + 1);
        searched = received.length;
        const at = indexOfBytes(received.bytes, stopText, from);
        if (at >= 0) return at + stopText.length;
      }
      if (stopRe && stopRe.test(decoder.decode(received.bytes))) return received.length;
      return null;
    };
    // Running out of time while waiting for the expected text fails the expectation (exit 3);
    // any other failure (a reset, say) is the call's own (exit 1).
    const timedOut = (got: PumpResult) =>
      got.status === STATUS_IO_TIMEOUT &&
      (step.expect !== undefined || step.expectRe !== undefined) && step.until === undefined &&
      step.bytes === undefined;
    const got = await pump(run, socket, {
      timeout,
      ...(carried ? { carried } : {}),
      match,
      matchMax: MAX_MATCH,
      bufferSize: 64 * 1024,
      waitAll: step.waitAll,
      ...(step.bytes === undefined ? {} : { limit: step.bytes }),
      expected: (result) => step.status ?? (timedOut(result) ? result.status : undefined),
    });
    if (got.rest) this.#carry.set(socket, got.rest);
    const taken = got.taken!;
    if (step.status !== undefined) {
      const judged = this.#judge(step, got.completion);
      return judged === "next" ? this.#expectations(step, taken) : judged;
    }
    if (!NT_SUCCESS(got.status) && !timedOut(got)) return "failure";
    return this.#expectations(step, taken);
  }

  #expectations(step: Step & { verb: "receive" }, data: Uint8Array): Outcome {
    const checks: { expected: string; passed: boolean }[] = [];
    if (step.expect) {
      checks.push({
        expected: new TextDecoder().decode(step.expect),
        passed: indexOfBytes(data, step.expect) >= 0,
      });
    }
    if (step.expectRe) {
      checks.push({
        expected: `/${step.expectRe.source}/`,
        passed: step.expectRe.test(new TextDecoder().decode(data)),
      });
    }
    let outcome: Outcome = "next";
    for (const check of checks) {
      this.#run.reporter.expectation({
        passed: check.passed,
        step: step.step,
        line: step.line,
        verb: step.verb,
        expected: check.expected,
        ...(check.passed ? {} : { actual: excerpt(data) }),
      });
      if (!check.passed) outcome = "expectation";
    }
    return outcome;
  }

  /**
   * Ends what the script left open. After a clean run, connections end gracefully (FIN, drain
   * until the peer's FIN, close); after a stop, they are closed at once.
   */
  async cleanup(clean: boolean): Promise<void> {
    for (const [name, socket] of this.#sockets) {
      this.#sockets.delete(name);
      this.#flushUnread(socket);
      if (socket.state === "CLOSED") continue;
      if (clean && !(socket instanceof WskListenSocket) && socket.state !== "INIT") {
        // Not a step: a peer that never sends its FIN is shown, but does not fail the script.
        await this.#run.finish(socket, STATUS_IO_TIMEOUT);
      } else await this.#run.close(socket);
    }
  }
}

/** A step that cannot run as written (found while running, e.g. a socket of the wrong kind). */
export class StepError extends Error {
  override name = "StepError";
}

/** The received data as a short excerpt for an expectation line (the line quotes it). */
function excerpt(data: Uint8Array): string {
  const limit = 120;
  const text = new TextDecoder().decode(data.subarray(0, limit));
  return data.length > limit ? `${text}...(+${data.length - limit} bytes)` : text;
}

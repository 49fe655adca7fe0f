/**
 * One direction of a relay: what arrives on one connection is sent on another (or on the same
 * one, which is an echo), through the shared receive pump. `accept --mode echo` relays a
 * connection to itself; `accept --mode forward` runs two relays, client to target and back.
 *
 * @module
 */

import {
  NT_SUCCESS,
  type NTSTATUS,
  STATUS_SUCCESS,
  wskBuf,
  type WskConnectionSocket,
} from "../../provider/mod.ts";
import type { CallContext } from "../context.ts";
import { type PumpOptions, type PumpResult, ReceivePump } from "../pump.ts";
import { NO_FLAGS } from "./server.ts";

/** What a relay takes of the pump's options (its bounds and buffer), and the status it expects. */
export type RelayOptions = Pick<PumpOptions, "bufferSize" | "idle" | "timeout" | "signal"> & {
  /** A failure status both lines expect (asked when each is reported). */
  readonly expected?: () => NTSTATUS | undefined;
};

/**
 * Receives on `from` and sends each chunk on `to` (one WskSend per chunk, completed before the
 * next receive: the pump reuses its buffer, and a slow receiver holds the sender back through
 * TCP). `run()` ends at `from`'s FIN, a failed receive or a failed send, and reports one
 * WskReceive line for `from` and one WskSend line for `to`, each with its call count.
 */
export class Relay {
  /** The receiving side: {@linkcode ReceivePump.bound} bounds a relay that waits unbounded. */
  readonly pump: ReceivePump;
  readonly #run: CallContext;
  readonly #to: WskConnectionSocket;
  readonly #expected: () => NTSTATUS | undefined;
  #sent = 0;
  #sends = 0;

  /** `moved` is told of every chunk passed on (an idle watchdog). */
  constructor(
    run: CallContext,
    from: WskConnectionSocket,
    to: WskConnectionSocket,
    options: RelayOptions = {},
    moved: (bytes: number) => void = () => {},
  ) {
    this.#run = run;
    this.#to = to;
    const { expected = () => undefined, ...bounds } = options;
    this.#expected = expected;
    const d = to.Dispatch;
    this.pump = new ReceivePump(run, from, {
      ...bounds,
      expected: () => expected(),
      sink: async (bytes) => {
        const put = await d.WskSend(to, wskBuf(bytes), NO_FLAGS, run.irp());
        this.#sends++;
        if (NT_SUCCESS(put.status)) {
          this.#sent += put.information;
          run.hex?.dump(">", to.id, bytes.subarray(0, put.information));
          moved(put.information);
        }
        return put;
      },
    });
  }

  /** Relays until the end (see the class); the pump's result, with a failed send in `sinkFailure`. */
  async run(): Promise<PumpResult> {
    const got = await this.pump.run();
    this.#run.report(
      "WskSend",
      this.#to,
      got.sinkFailure ?? { status: STATUS_SUCCESS, information: 0 },
      got.elapsedMs,
      { information: this.#sent, calls: this.#sends },
      this.#expected(),
    );
    return got;
  }
}

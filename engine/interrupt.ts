/**
 * The one way wsk handles a stop signal: the first one asks the work to stop (pending calls are
 * cancelled, closing lines printed, temporary files removed), and the listeners step aside at
 * once, so a second signal ends the process the default way even while the stop is held up
 * (a write to a full pipe, a slow close).
 *
 * @module
 */

/** The signals that stop a command: Ctrl-C (SIGINT) and `kill`/`timeout` (SIGTERM). */
export const STOP_SIGNALS: readonly Deno.Signal[] = ["SIGINT", "SIGTERM"];

/**
 * Calls `stop` on the first of `signals`, then removes every listener it added, so a second
 * signal ends the process. Returns the function that removes them when the work ends first
 * (calling it again does nothing). A signal this runtime cannot listen to (no signal support,
 * e.g. on Windows for some signals) is left to end the process the default way.
 *
 * @example Stop a loop on Ctrl-C
 * ```ts
 * import { onFirstSignal } from "./interrupt.ts";
 *
 * const controller = new AbortController();
 * const release = onFirstSignal(() => controller.abort());
 * try {
 *   // ... work that watches controller.signal ...
 * } finally {
 *   release();
 * }
 * ```
 */
export function onFirstSignal(
  stop: () => void,
  signals: readonly Deno.Signal[] = STOP_SIGNALS,
): () => void {
  const listening: Deno.Signal[] = [];
  const release = () => {
    for (const signal of listening.splice(0)) Deno.removeSignalListener(signal, onSignal);
  };
  const onSignal = () => {
    release();
    stop();
  };
  for (const signal of signals) {
    try {
      Deno.addSignalListener(signal, onSignal);
      listening.push(signal);
    } catch {
      // No support for this signal here (a restricted runtime, another OS): it ends the process.
    }
  }
  return release;
}

/**
 * IRP deadlines, cheap enough for one per send or receive.
 *
 * Calls with the same timeout length share a lane. A lane's deadlines arrive in the order they
 * expire (each is "now + the same length"), so an insertion-ordered Set holds them and one timer,
 * armed for the first, serves them all. Registering and dropping a deadline is a Set insert and
 * delete. When a lane empties its timer is not cleared but unreferenced: it no longer keeps the
 * process alive, and the next call of the same length references it again instead of making a
 * timer (a loop of sends or receives makes one timer, not one per call). A timer that fires early
 * (its deadline was dropped) re-arms for the lane's new first deadline.
 *
 * Many lengths (a loop bounding each call by the time left) would leave many idle lanes, so only
 * {@linkcode IDLE_LANES} idle lanes are kept; older ones are cleared.
 *
 * @module
 */

/** A registered deadline. */
export interface Deadline {
  /** `performance.now()` time at which it expires. */
  readonly at: number;
  readonly expire: () => void;
}

/** Idle lanes (no deadline, timer unreferenced) kept for reuse. */
export const IDLE_LANES = 16;

/** The deadlines of one timeout length, in expiry order, and the timer for the first. */
class Lane {
  readonly ms: number;
  readonly deadlines = new Set<Deadline>();
  /** A Node-style Timeout (Deno 2.9's `setTimeout` returns one), which can be (un)referenced. */
  timer: ReturnType<typeof setTimeout> | undefined;

  constructor(ms: number) {
    this.ms = ms;
  }

  add(deadline: Deadline): void {
    this.deadlines.add(deadline);
    if (this.timer === undefined) this.#arm(deadline.at);
    else if (this.deadlines.size === 1) this.timer.ref();
  }

  /** Drops a deadline; true when the lane became idle. */
  delete(deadline: Deadline): boolean {
    if (!this.deadlines.delete(deadline) || this.deadlines.size > 0) return false;
    this.timer?.unref();
    return true;
  }

  /** Clears the timer (the lane is being forgotten). */
  clear(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  #arm(at: number): void {
    this.timer = setTimeout(() => this.#fire(), Math.max(0, at - performance.now()));
  }

  #fire(): void {
    this.timer = undefined;
    const now = performance.now();
    const due: Deadline[] = [];
    for (const deadline of this.deadlines) {
      if (deadline.at > now) break;
      due.push(deadline);
    }
    for (const deadline of due) this.deadlines.delete(deadline);
    const [next] = this.deadlines;
    if (next !== undefined) this.#arm(next.at);
    else forget(this);
    // Last: an expiry may start a new call of the same length, which must find the lane armed.
    for (const deadline of due) deadline.expire();
  }
}

/** Every lane by timeout length; the idle ones also in `idle`, oldest first. */
const lanes = new Map<number, Lane>();
const idle = new Set<Lane>();

function forget(lane: Lane): void {
  lane.clear();
  idle.delete(lane);
  if (lanes.get(lane.ms) === lane) lanes.delete(lane.ms);
}

/**
 * Calls `expire` once `ms` milliseconds have passed, unless {@linkcode cancelDeadline} drops it
 * first. While it is registered it keeps the process alive, as a timer would.
 */
export function addDeadline(ms: number, expire: () => void): Deadline {
  const deadline: Deadline = { at: performance.now() + ms, expire };
  let lane = lanes.get(ms);
  if (lane === undefined) {
    lane = new Lane(ms);
    lanes.set(ms, lane);
  }
  idle.delete(lane);
  lane.add(deadline);
  return deadline;
}

/** Drops a deadline whose call completed; a no-op when it already expired or was dropped. */
export function cancelDeadline(ms: number, deadline: Deadline): void {
  const lane = lanes.get(ms);
  if (lane === undefined || !lane.delete(deadline)) return;
  idle.add(lane);
  if (idle.size > IDLE_LANES) {
    const [oldest] = idle;
    forget(oldest!);
  }
}

/** How many deadlines are registered, and how many lanes exist (for tests). */
export function deadlineCounts(): { deadlines: number; lanes: number } {
  let deadlines = 0;
  for (const lane of lanes.values()) deadlines += lane.deadlines.size;
  return { deadlines, lanes: lanes.size };
}

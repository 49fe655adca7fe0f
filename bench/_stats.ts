/**
 * Statistics and plain-text tables for the benchmark suite: medians with min–max, ratios of
 * medians with the range of the per-round ratios, and targets judged PASS or MISS.
 *
 * @module
 */

/** Median, extremes and the raw values of a series. */
export interface Stats {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly runs: readonly number[];
}

/**
 * The median and extremes of the finite values of `runs` (a failed round is `NaN` and keeps its
 * place, so runs stay paired by round); null when no round succeeded.
 */
export function stats(runs: readonly number[]): Stats | null {
  const sorted = runs.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, runs: [...runs] };
}

/** Which way a target points. */
export type Direction = "atLeast" | "atMost";

/** A target on a ratio, e.g. wsk/socat ≥ 1.0. */
export interface Target {
  readonly direction: Direction;
  readonly value: number;
}

/** A ratio between two contenders of one scenario. */
export interface Ratio {
  /** e.g. "wsk-stdin→wsk / socat→socat". */
  readonly name: string;
  /** What the ratio isolates, one short phrase. */
  readonly note: string;
  /** median(a) / median(b); null when a contender was skipped or failed. */
  readonly value: number | null;
  /** The smallest and largest ratio of the same round's runs. */
  readonly roundMin: number | null;
  readonly roundMax: number | null;
  readonly target: Target | null;
  /** PASS/MISS against the target; null without a target or a value. */
  readonly pass: boolean | null;
}

/**
 * The ratio of the medians of `a` and `b`, and the range of the per-round ratios (runs paired by
 * index, which is the round: the contenders alternate, so a pair shared the machine's state).
 * For times (lower is better) pass the series as they are: the ratio is then a/b of the times.
 */
export function ratio(
  name: string,
  note: string,
  a: Stats | null,
  b: Stats | null,
  target: Target | null = null,
): Ratio {
  if (!a || !b || b.median === 0) {
    return { name, note, value: null, roundMin: null, roundMax: null, target, pass: null };
  }
  const value = a.median / b.median;
  const paired: number[] = [];
  for (let i = 0; i < Math.min(a.runs.length, b.runs.length); i++) {
    const x = a.runs[i]!;
    const y = b.runs[i]!;
    if (Number.isFinite(x) && Number.isFinite(y) && y > 0) paired.push(x / y);
  }
  const pass = target === null
    ? null
    : target.direction === "atLeast"
    ? value >= target.value
    : value <= target.value;
  return {
    name,
    note,
    value,
    roundMin: paired.length ? Math.min(...paired) : null,
    roundMax: paired.length ? Math.max(...paired) : null,
    target,
    pass,
  };
}

/** "≥ 1.0×" or "≤ 2.0×". */
export function formatTarget(target: Target | null): string {
  if (!target) return "";
  return `${target.direction === "atLeast" ? "≥" : "≤"} ${target.value.toFixed(1)}×`;
}

/** "PASS", "MISS" or "" (no target), or "n/a" when the ratio could not be computed. */
export function verdict(r: Pick<Ratio, "pass" | "target" | "value">): string {
  if (!r.target) return "";
  if (r.value === null || r.pass === null) return "n/a";
  return r.pass ? "PASS" : "MISS";
}

/** A ratio as text: "0.873×". */
export function times(value: number | null, digits = 2): string {
  return value === null ? "—" : `${value.toFixed(digits)}×`;
}

/** Rows of ratios as a table. */
export function ratioTable(ratios: readonly Ratio[]): string {
  return table(
    ["ratio (wsk/contender)", "median", "round range", "target", "result", "what it isolates"],
    ratios.map((r) => [
      r.name,
      times(r.value),
      r.roundMin === null || r.roundMax === null
        ? "—"
        : `${r.roundMin.toFixed(2)}–${r.roundMax.toFixed(2)}`,
      formatTarget(r.target),
      verdict(r),
      r.note,
    ]),
    [1, 2],
  );
}

/**
 * A plain-text table: a header row, a rule, then the rows. Columns listed in `right` are
 * right-aligned (numbers); the rest are left-aligned.
 */
export function table(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  right: readonly number[] = [],
): string {
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length))
  );
  const line = (cells: readonly string[]) =>
    widths.map((w, i) => {
      const cell = cells[i] ?? "";
      return right.includes(i) ? cell.padStart(w) : cell.padEnd(w);
    }).join("  ").trimEnd();
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

const KIB = 1024;
const MIB = 1024 * KIB;
const GIB = 1024 * MIB;

/** 1073741824 → "1 GiB", 8388608 → "8 MiB". */
export function formatBytes(bytes: number): string {
  if (bytes >= GIB && bytes % GIB === 0) return `${bytes / GIB} GiB`;
  if (bytes >= MIB && bytes % MIB === 0) return `${bytes / MIB} MiB`;
  if (bytes >= KIB && bytes % KIB === 0) return `${bytes / KIB} KiB`;
  return `${bytes} B`;
}

/** KiB → "71.2 MiB". */
export function formatKiB(kib: number | null): string {
  return kib === null ? "—" : `${(kib / 1024).toFixed(1)} MiB`;
}

/** A median and range: "1234.5 (1100.2–1300.9)". */
export function formatStats(s: Stats | null, digits = 1): string {
  if (!s) return "—";
  return `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;
}

// Intervals from a bootstrap over documents, not rows: the rows of one document share its facts
// and often its words (two cuts can show the same window), so they are not independent draws.
// Each resample draws the scored documents with replacement, keeps all their rows, and recomputes
// the figures; a change between two NLAs is recomputed on the same resample (a paired bootstrap).
// Used for the world's claim figures (claim-intervals.ts) and for the figures on M's own text
// (model-text-intervals.ts).
import { randInt, rng } from '../util/rng.js';

/** A two-sided percentile interval; NaN ends when too few resamples give a finite figure. */
export type Interval = [lo: number, hi: number];

/** A change between two NLAs scored on the same rows (`after` minus `before`), with its paired interval. */
export interface Change { diff: number; ci: Interval }

export interface BootstrapOptions {
  /** Resamples (default 2,000). */
  resamples?: number;
  seed?: number;
  /** Coverage (default 0.95). */
  level?: number;
  /**
   * Per row, a stratum: documents are resampled within their stratum, each stratum keeping its
   * count of documents (two kinds of text compared with each other, each drawn apart). A
   * document's rows must share one stratum.
   */
  strata?: readonly number[];
}

/**
 * Percentile intervals of the figures `stat` returns, over resamples of the documents `docs`
 * (one per row) drawn with replacement. `stat` gets the row indices of one resample (a row
 * appears once per time its document was drawn) and returns one number per figure; NaN (an
 * empty denominator) is left out of that figure's percentiles, and a figure finite in under
 * half of the resamples gets [NaN, NaN].
 */
export function docBootstrap(docs: readonly number[], stat: (rows: readonly number[]) => number[], o: BootstrapOptions = {}): Interval[] {
  const B = o.resamples ?? 2000, level = o.level ?? 0.95;
  if (!(level > 0 && level < 1)) throw new Error(`docBootstrap: level must be in (0, 1), got ${level}`);
  if (o.strata && o.strata.length !== docs.length) throw new Error(`docBootstrap: ${docs.length} rows but ${o.strata.length} strata`);
  const byDoc = new Map<number, number[]>();
  docs.forEach((d, i) => byDoc.set(d, [...(byDoc.get(d) ?? []), i]));
  const byStratum = new Map<number, number[][]>();
  for (const rows of byDoc.values()) {
    const s = o.strata?.[rows[0]!] ?? 0;
    if (o.strata && rows.some((r) => o.strata![r] !== s)) throw new Error(`docBootstrap: document ${docs[rows[0]!]} has rows in strata ${o.strata[rows[0]!]} and ${o.strata[rows.find((r) => o.strata![r] !== s)!]}`);
    byStratum.set(s, [...(byStratum.get(s) ?? []), rows]);
  }
  const strata = [...byStratum.values()];
  if (!strata.length) return [];
  const rand = rng(o.seed ?? 1);
  const draws: number[][] = [];
  for (let b = 0; b < B; b++) {
    const rows: number[] = [];
    for (const groups of strata) for (let k = 0; k < groups.length; k++) rows.push(...groups[randInt(rand, groups.length)]!);
    stat(rows).forEach((x, j) => {
      if (Number.isFinite(x)) (draws[j] ??= []).push(x);
    });
  }
  const width = stat([...docs.keys()]).length;
  return Array.from({ length: width }, (_, j) => {
    const xs = (draws[j] ?? []).sort((a, b) => a - b);
    if (xs.length < B / 2) return [NaN, NaN] as Interval;
    return [quantile(xs, (1 - level) / 2), quantile(xs, 1 - (1 - level) / 2)] as Interval;
  });
}

/** Linear-interpolated quantile of sorted values. */
function quantile(sorted: readonly number[], q: number): number {
  const at = q * (sorted.length - 1), i = Math.floor(at), f = at - i;
  return i + 1 < sorted.length ? sorted[i]! * (1 - f) + sorted[i + 1]! * f : sorted[i]!;
}

/** "0.104 [0.040, 0.180]" (NaN as "-"). */
export function formatInterval(x: number, ci: Interval, signed = false): string {
  const v = (y: number) => (Number.isFinite(y) ? (signed && y > 0 ? '+' : '') + y.toFixed(3) : '-');
  return `${v(x)} [${v(ci[0])}, ${v(ci[1])}]`;
}

/**
 * The mean of b - a over rows scored by two NLAs (the same rows, the same order), with its paired
 * interval: each resample of the documents recomputes both means. Per-row FVE (1 - mse / Var)
 * averages to the FVE, and a 0/1 per row to a share, so both go through here.
 */
export function pairedMeanChange(docs: readonly number[], a: ArrayLike<number>, b: ArrayLike<number>, o: BootstrapOptions = {}): Change {
  if (a.length !== docs.length || b.length !== docs.length) throw new Error(`pairedMeanChange: ${docs.length} rows, ${a.length} and ${b.length} values`);
  const diff = (rows: readonly number[]) => {
    let s = 0;
    for (const i of rows) s += b[i]! - a[i]!;
    return rows.length ? s / rows.length : NaN;
  };
  return { diff: diff([...docs.keys()]), ci: docBootstrap(docs, (rows) => [diff(rows)], o)[0] ?? [NaN, NaN] };
}

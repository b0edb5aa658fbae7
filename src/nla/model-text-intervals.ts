// How sure are the figures on M's own text? The demo scores 800 rows of 400 held-out documents
// (two cuts each), and issue 10's targets compare those figures with a baseline, a threshold or
// the stories' FVE, so each comes with a 95% interval from a bootstrap over documents
// (doc-bootstrap.ts). Comparisons on the same rows are paired (the NLA against the token lookup;
// after RL against the warm start): each resample recomputes both sides. The gap to the stories
// compares two kinds of text: each kind's documents are resampled apart (strata).
import { docBootstrap, type BootstrapOptions, type Interval } from './doc-bootstrap.js';

export interface TextScores {
  /** Per row of M's text: its document and the normalised MSE of the NLA's greedy reconstruction. */
  docs: readonly number[];
  mse: ArrayLike<number>;
  /** The variance FVE divides by (the NLA's). */
  variance: number;
  /** Per row: the quote is exact; the explanation names a character the text lacks. */
  exact: readonly boolean[];
  invented: readonly boolean[];
  /** The current-token lookup on the same rows: per-row MSE and the variance its FVE divides by. */
  token?: { mse: ArrayLike<number>; variance: number };
  /** The warm-start NLA's per-row MSE on the same rows (RL's paired change). */
  sftMse?: ArrayLike<number>;
  /** The demo's own rows (the generator's stories): documents and per-row MSE, FVE over the same variance. */
  stories?: { docs: readonly number[]; mse: ArrayLike<number> };
}

/**
 * The per-row scores of one greedy evaluation of M's text (evaluateModelText) and its quote
 * check (quoteAccuracy), FVE over `variance`; the demo and `nla eval` add the comparisons.
 */
export function textScores(
  r: { meta: readonly { doc: number }[]; greedy: { examples: readonly { mse: number }[] }; tokenRows?: TextScores['token'] },
  q: { rows: readonly { exact: boolean; inventedNames: readonly string[] }[] },
  variance: number,
): TextScores {
  return {
    docs: r.meta.map((m) => m.doc), mse: r.greedy.examples.map((e) => e.mse), variance,
    exact: q.rows.map((x) => x.exact), invented: q.rows.map((x) => x.inventedNames.length > 0),
    ...(r.tokenRows ? { token: r.tokenRows } : {}),
  };
}

/** 95% intervals (JSON keys as the demo's figures). */
export interface TextIntervals {
  fve: Interval;
  quote_exact: Interval;
  invented_name_rate: Interval;
  /** FVE minus the token lookup's, paired. */
  fve_minus_token?: Interval;
  /** FVE after RL minus at the warm start, paired. */
  rl_minus_sft?: Interval;
  /** The stories' FVE minus M's text's. */
  gap?: Interval;
}

export function modelTextIntervals(s: TextScores, o: BootstrapOptions = {}): TextIntervals {
  const n = s.docs.length;
  for (const [what, len] of [['mse', s.mse.length], ['exact', s.exact.length], ['invented', s.invented.length], ['token mse', s.token?.mse.length ?? n], ['warm-start mse', s.sftMse?.length ?? n]] as const) {
    if (len !== n) throw new Error(`modelTextIntervals: ${n} rows of M's text but ${len} of ${what}`);
  }
  if (s.stories && s.stories.docs.length !== s.stories.mse.length) throw new Error(`modelTextIntervals: ${s.stories.docs.length} story rows but ${s.stories.mse.length} MSEs`);
  // Rows 0..n-1 are M's text; the stories' rows follow, their documents numbered after M's.
  const storyDocs = s.stories?.docs ?? [];
  const offset = s.docs.reduce((m, d) => Math.max(m, d), -1) + 1 - storyDocs.reduce((m, d) => Math.min(m, d), 0);
  const docs = [...s.docs, ...storyDocs.map((d) => d + offset)];
  const strata = docs.map((_, i) => (i < n ? 0 : 1));
  const mean = (rows: readonly number[], x: (i: number) => number) => {
    let a = 0, k = 0;
    for (const i of rows) a += x(i), k++;
    return k ? a / k : NaN;
  };
  const fve = (rows: readonly number[], mse: (i: number) => number, variance: number) => 1 - mean(rows, mse) / variance;
  const figures = (rows: readonly number[]): number[] => {
    const text = rows.filter((i) => i < n), told = rows.filter((i) => i >= n);
    const f = fve(text, (i) => s.mse[i]!, s.variance);
    return [
      f,
      mean(text, (i) => +s.exact[i]!),
      mean(text, (i) => +s.invented[i]!),
      s.token ? f - fve(text, (i) => s.token!.mse[i]!, s.token.variance) : NaN,
      s.sftMse ? f - fve(text, (i) => s.sftMse![i]!, s.variance) : NaN,
      s.stories ? fve(told, (i) => s.stories!.mse[i - n]!, s.variance) - f : NaN,
    ];
  };
  const [fv, qe, inv, tok, rl, gap] = docBootstrap(docs, figures, { ...o, strata });
  return {
    fve: fv!, quote_exact: qe!, invented_name_rate: inv!,
    ...(s.token ? { fve_minus_token: tok! } : {}),
    ...(s.sftMse ? { rl_minus_sft: rl! } : {}),
    ...(s.stories ? { gap: gap! } : {}),
  };
}

// The AR refitted to what the AV writes. The AR's warm start reads true summaries, so it rebuilds
// whatever an explanation states as if it were true: a word the AV misreads (one row in five of
// M's text) comes back as that word's h, a story fact the AV guesses as that fact's. Refitted on
// the warm-started AV's greedy explanations of rows the AV never trained on, each paired with its
// h, the AR learns what the AV's words are worth (the mean h of the rows where the AV writes
// them); the true summaries of the same rows, in the same batches, keep it reading stated content
// literally (docs/experiments.md, "The AR refitted to the AV's explanations"). This is the AR's half of the
// joint RL (the AR trains on the AV's rollouts) done once, on many rows, before RL.
import type { Reconstructor } from './ar.js';
import type { Verbalizer } from './av.js';
import { rowsOf, trainArSft, type SftOptions } from './sft.js';

export interface ArRefitOptions extends Omit<SftOptions, 'lengthPool'> {
  /** How many of the rows to explain and refit on (an even spread over them; 0 = all). */
  rows: number;
  /** Explanation length cap (the evaluation's). */
  maxTokens: number;
  /** Activations per generation call. */
  explainBatch?: number;
  /** Called after each generation call with the rows explained so far. */
  onExplain?: (done: number, total: number) => void;
  /** Also the rows' true summaries, in the same batches (default true; false: the AV's explanations alone). */
  withTrueSummaries?: boolean;
}

/** `k` indices spread evenly over 0..n-1 (all of them when k is 0 or at least n). */
export function evenSpread(n: number, k: number): number[] {
  const m = k > 0 ? Math.min(k, n) : n;
  return [...Array(m).keys()].map((j) => Math.floor((j * n) / m));
}

/**
 * Refit `ar` in place on the AV's greedy explanations of `data`'s rows (which the AV must not have
 * trained on) and their true summaries. Rows whose explanation does not parse keep only their true
 * summary. Returns how many rows were explained and how many of those parsed.
 */
export async function refitArOnAv(av: Verbalizer, ar: Reconstructor, data: { h: Float32Array; summaries: string[] }, o: ArRefitOptions): Promise<{ explained: number; parsed: number }> {
  const d = ar.d;
  const pick = evenSpread(data.summaries.length, o.rows);
  if (!pick.length) throw new Error('ar refit: no rows to explain');
  const h = rowsOf(data.h, d, pick);
  const written: (string | undefined)[] = [];
  const bs = o.explainBatch ?? 512;
  for (let s = 0; s < pick.length; s += bs) {
    const out = await av.explain(h.subarray(s * d, Math.min(pick.length, s + bs) * d), { temperature: 0, maxTokens: o.maxTokens });
    written.push(...out.map((e) => e.explanation));
    o.onExplain?.(written.length, pick.length);
  }
  const parsed = written.flatMap((e, k) => (e === undefined ? [] : [k]));
  const withTrue = o.withTrueSummaries ?? true;
  if (!parsed.length && !withTrue) throw new Error(`ar refit: none of the AV's ${pick.length} explanations parsed`);
  const texts = [...parsed.map((k) => written[k]!), ...(withTrue ? pick.map((i) => data.summaries[i]!) : [])];
  const targets = new Float32Array(texts.length * d);
  targets.set(rowsOf(h, d, parsed));
  if (withTrue) targets.set(h, parsed.length * d);
  await trainArSft(ar, { h: targets, texts }, o);
  return { explained: pick.length, parsed: parsed.length };
}

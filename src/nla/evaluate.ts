// Evaluation on held-out activations: FVE of greedy and sampled explanations, the shuffled
// controls, and how many latent facts the explanations state correctly.
import { generationRows } from '../nn/generate.js';
import type { Reconstructor } from './ar.js';
import type { Explained, Verbalizer } from './av.js';
import { SCORED_FIELDS, scoreFields, type CutTruth } from './corpus.js';
import { normalizedMseHost } from './loss.js';
import type { RowMeta } from './store.js';
import { rowsOf } from './sft.js';

/** Correct and scored counts of one field (a fact, or 'currentWord'). */
export interface FieldCount { correct: number; total: number }

export interface EvalResult {
  fve: number;
  mse: number;
  parseRate: number;
  /** FVE when each explanation is scored against the next row's activation (often a cut of the same story). */
  fveShuffled: number;
  /** FVE when each explanation is scored against a row of another story (the control; NaN with one story). */
  fveOtherStory: number;
  /** Share of known latent fields plus the current word stated correctly (known-answer corpus only). */
  fields?: number;
  /** Share of the known story facts (SCORED_FIELDS) stated correctly, without the current word. */
  facts?: number;
  /** Per field (each of SCORED_FIELDS, and 'currentWord'): rows where it is known, and how many were stated correctly. */
  fieldCounts?: Record<string, FieldCount>;
  /** Per row: the (first) explanation, its MSE, the truth, and the tokens and log-probs that wrote it. */
  examples: { explanation: string | undefined; mse: number; truth?: CutTruth; tokens: number[]; logprobs: number[] }[];
}

export interface EvalOptions {
  /** Sampling temperature (0 = greedy). Dividing logits by a learned scale s: temperature s. */
  temperature: number;
  /** Samples per activation; with bestOf the AR picks the best, else all are averaged. */
  samples?: number;
  bestOf?: boolean;
  maxTokens: number;
  seed?: number;
  /** Activations per generate() call (default: generationRows of the vocabulary over the samples per row). */
  batchSize?: number;
  /** Called after each batch with the rows done. */
  onProgress?: (done: number) => void;
}

/**
 * For each row, a row of another story (-1 if there is no other story). The stories, in order
 * of first appearance, are paired each with the next (cyclically) and a row with the row of the
 * same rank there: a fixed derangement, so every story serves as a control about equally. The
 * next row would mostly be another cut of the same story, which shares its facts.
 */
export function otherStoryRows(meta: readonly Pick<RowMeta, 'doc'>[]): number[] {
  const byDoc = new Map<number, number[]>();
  meta.forEach((m, i) => (byDoc.get(m.doc) ?? byDoc.set(m.doc, []).get(m.doc)!).push(i));
  const stories = [...byDoc.values()];
  if (stories.length < 2) return meta.map(() => -1);
  const out = new Array<number>(meta.length);
  stories.forEach((rows, j) => {
    const partner = stories[(j + 1) % stories.length];
    rows.forEach((r, k) => (out[r] = partner[k % partner.length]));
  });
  return out;
}

/** Pooled shares and per-field counts of the facts (and current word) stated in explanations. */
export function scoreFacts(explanations: readonly (string | undefined)[], truths: readonly CutTruth[]): { fields?: number; facts?: number; fieldCounts: Record<string, FieldCount> } {
  const fieldCounts: Record<string, FieldCount> = {};
  explanations.forEach((e, i) => {
    for (const [f, ok] of Object.entries(scoreFields(e ?? '', truths[i]).perField)) {
      const c = (fieldCounts[f] ??= { correct: 0, total: 0 });
      c.total++;
      if (ok) c.correct++;
    }
  });
  const pool = (keys: readonly string[]) => {
    const cs = keys.map((k) => fieldCounts[k]).filter((c): c is FieldCount => !!c);
    const total = cs.reduce((a, c) => a + c.total, 0);
    return total ? cs.reduce((a, c) => a + c.correct, 0) / total : undefined;
  };
  return { fields: pool([...SCORED_FIELDS, 'currentWord']), facts: pool(SCORED_FIELDS), fieldCounts };
}

export async function evaluate(av: Verbalizer, ar: Reconstructor, h: Float32Array, meta: RowMeta[], variance: number, o: EvalOptions): Promise<EvalResult> {
  const d = av.d, n = h.length / d, k = o.samples ?? 1, bs = o.batchSize ?? Math.max(1, Math.floor(generationRows(av.model.cfg.vocabSize) / k));
  const chosen: Explained[] = [];
  const mses: number[] = [];
  const shuffledMses: number[] = [];
  const otherMses: number[] = [];
  const partner = otherStoryRows(meta);
  let parsed = 0;
  for (let s = 0; s < n; s += bs) {
    const idx = [...Array(Math.min(bs, n - s)).keys()].map((i) => s + i);
    const hb = rowsOf(h, d, idx);
    const outs = await av.explain(hb, { samples: k, temperature: o.temperature, maxTokens: o.maxTokens, seed: (o.seed ?? 0) + s });
    const texts = outs.map((x) => x.explanation ?? '');
    const preds = await ar.predictHost(texts);
    for (let a = 0; a < idx.length; a++) {
      const cands = [...Array(k).keys()].map((j) => a * k + j);
      const score = (c: number) => (outs[c].explanation === undefined ? 2 : normalizedMseHost(preds, hb, d, c, a));
      const pick = o.bestOf ? cands.reduce((b, c) => (score(c) < score(b) ? c : b)) : cands[0];
      const ms = o.bestOf ? [score(pick)] : cands.map(score);
      mses.push(...ms);
      parsed += cands.filter((c) => outs[c].explanation !== undefined).length;
      chosen.push(outs[pick]);
      const against = (row: number) => (outs[pick].explanation === undefined ? 2 : normalizedMseHost(preds, h, d, pick, row));
      shuffledMses.push(against((s + a + 1) % n));
      if (partner[s + a] >= 0) otherMses.push(against(partner[s + a]));
    }
    o.onProgress?.(s + idx.length);
  }
  const mse = avg(mses);
  const facts = meta.every((m) => m.truth) ? scoreFacts(chosen.map((c) => c.explanation), meta.map((m) => m.truth as CutTruth)) : undefined;
  return {
    fve: 1 - mse / variance,
    mse,
    parseRate: parsed / (n * k),
    fveShuffled: 1 - avg(shuffledMses) / variance,
    fveOtherStory: otherMses.length ? 1 - avg(otherMses) / variance : NaN,
    fields: facts?.fields,
    facts: facts?.facts,
    fieldCounts: facts?.fieldCounts,
    examples: chosen.map((c, i) => ({ explanation: c.explanation, mse: o.bestOf || k === 1 ? mses[i] : mses[i * k], truth: meta[i].truth as CutTruth | undefined, tokens: c.tokens, logprobs: c.logprobs })),
  };
}

const avg = (a: number[]) => a.reduce((s, v) => s + v, 0) / Math.max(a.length, 1);

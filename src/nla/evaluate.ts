// Evaluation on held-out activations: FVE of greedy and sampled explanations, the shuffled
// control, and how many latent facts the explanations state correctly.
import type { Reconstructor } from './ar.js';
import type { Explained, Verbalizer } from './av.js';
import { scoreFields, type CutTruth } from './corpus.js';
import { normalizedMseHost } from './loss.js';
import type { RowMeta } from './store.js';
import { rowsOf } from './sft.js';

export interface EvalResult {
  fve: number;
  mse: number;
  parseRate: number;
  /** FVE when each explanation is scored against another row's activation. */
  fveShuffled: number;
  /** Share of known latent fields stated correctly (known-answer corpus only). */
  fields?: number;
  examples: { explanation: string | undefined; mse: number; truth?: CutTruth }[];
}

export interface EvalOptions {
  temperature: number;
  /** Samples per activation; with bestOf the AR picks the best, else all are averaged. */
  samples?: number;
  bestOf?: boolean;
  maxTokens: number;
  seed?: number;
  batchSize?: number;
}

export async function evaluate(av: Verbalizer, ar: Reconstructor, h: Float32Array, meta: RowMeta[], variance: number, o: EvalOptions): Promise<EvalResult> {
  const d = av.d, n = h.length / d, k = o.samples ?? 1, bs = o.batchSize ?? 32;
  const chosen: Explained[] = [];
  const mses: number[] = [];
  const shuffledMses: number[] = [];
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
      // Shuffled control: this explanation against the activation of the row after it.
      const other = (s + a + 1) % n;
      shuffledMses.push(outs[pick].explanation === undefined ? 2 : normalizedMseHost(preds, h, d, pick, other));
    }
  }
  const mse = avg(mses);
  let fields: number | undefined;
  if (meta.every((m) => m.truth)) {
    let correct = 0, total = 0;
    chosen.forEach((c, i) => {
      const sc = scoreFields(c.explanation ?? '', meta[i].truth as CutTruth);
      correct += sc.correct;
      total += sc.total;
    });
    fields = total ? correct / total : undefined;
  }
  return {
    fve: 1 - mse / variance,
    mse,
    parseRate: parsed / (n * k),
    fveShuffled: 1 - avg(shuffledMses) / variance,
    fields,
    examples: chosen.map((c, i) => ({ explanation: c.explanation, mse: o.bestOf || k === 1 ? mses[i] : mses[i * k], truth: meta[i].truth as CutTruth | undefined })),
  };
}

const avg = (a: number[]) => a.reduce((s, v) => s + v, 0) / Math.max(a.length, 1);

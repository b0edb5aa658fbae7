// What the AV's loss saves by running the LM head only on the completion: an AV warm-start
// batch (the compact prompt, 22 tokens, then a summary) scored teacher-forced with the head on
// every position (from 0, as before the twenty-second session) and on the completion alone
// (from P-1, what Verbalizer.completionLogProbs does now), forward and backward, the same rows
// and weights. One process alternates blocks of the two; the first round warms up.
//
// Run: npm run bench -- head-from [--rounds 4] [--steps 10] [--stories 300] [--store DIR --rows 2000]
import { knownAnswerItems } from '../src/nla/dataset.js';
import { ActivationStore } from '../src/nla/store.js';
import { rowsOf } from '../src/nla/sft.js';
import { extractActivations } from '../src/nla/extract.js';
import { Verbalizer, weightedNll } from '../src/nla/av.js';
import { padRight, targetMask } from '../src/nla/batch.js';
import { COMPACT_PROMPTS } from '../src/nla/prompts.js';
import { findModelFile } from '../src/io/model-files.js';
import { loadModel, loadTokenizerFor } from '../src/nn/load.js';
import { sequenceLogProbs } from '../src/nn/generate.js';
import type { Llama } from '../src/nn/llama.js';
import * as T from '../src/tensor/index.js';
import { argCount, argStr, emitter, machineLine, round, summarize } from './common.js';

export async function run(args: string[]): Promise<void> {
  const { emit } = emitter();
  const rounds = argCount(args, 'rounds', 4), steps = argCount(args, 'steps', 10), stories = argCount(args, 'stories', 300), batchSize = 32;
  const file = findModelFile('stories260K.bin');
  const M = (await loadModel(file)).model as Llama;
  const tok = loadTokenizerFor(file);
  const storeDir = argStr(args, 'store');
  let h: Float32Array, texts: string[], rowsFrom: string;
  if (storeDir) {
    const store = ActivationStore.open(storeDir, { layer: 3, d: M.cfg.dim });
    const all = store.readAll();
    const idx = all.meta.map((m, i) => (m.split === 'av' && m.summary ? i : -1)).filter((i) => i >= 0).slice(0, argCount(args, 'rows', 2000));
    h = rowsOf(all.h, M.cfg.dim, idx);
    texts = idx.map((i) => all.meta[i]!.summary!);
    rowsFrom = `${idx.length} av rows of ${storeDir}`;
  } else {
    const items = knownAnswerItems(tok, { stories, cutsPerStory: 4, minTokens: 30, seed: 0 });
    h = await extractActivations(M, 3, items);
    texts = items.flatMap((it) => it.meta.map((m) => m.summary!));
    rowsFrom = `${texts.length} rows of ${stories} stories`;
  }
  const av = new Verbalizer(M, tok, COMPACT_PROMPTS, 8);
  const P = av.prompt.ids.length, d = M.cfg.dim;
  const batches = Array.from({ length: steps }, (_, s) => {
    const rows = Array.from({ length: batchSize }, (_, k) => (s * batchSize + k) % texts.length);
    const batch = padRight(rows.map((r) => [...av.prompt.ids, ...av.targetIds(texts[r]!)]), 0);
    const hb = new Float32Array(batchSize * d);
    rows.forEach((r, k) => hb.set(h.subarray(r * d, (r + 1) * d), k * d));
    return { batch, hb };
  });
  const step = async (from: number, b: (typeof batches)[number]) => {
    const { batch, hb } = b;
    const vectors = av.injection(hb);
    const loss = T.tidy(() => {
      const logp = sequenceLogProbs(M, batch.ids, batch.B, batch.T, { positions: new Array(batch.B).fill(av.prompt.position), vectors }, undefined, from);
      const full = targetMask(batch, new Array(batch.B).fill(P)), Tm = batch.T - 1, n = Tm - from;
      const mask = new Float32Array(batch.B * n);
      for (let r = 0; r < batch.B; r++) mask.set(full.subarray(r * Tm + from, (r + 1) * Tm), r * n);
      const l = weightedNll(logp, T.Tensor.from(mask, [batch.B, n]));
      l.backward();
      return l;
    });
    const v = ((await loss.data()) as Float32Array)[0]!;
    loss.dispose();
    vectors.dispose();
    for (const p of M.w.params()) (p.grad?.dispose(), (p.grad = undefined));
    return v;
  };
  M.w.setTrainable(true);
  const sides = { all: 0, completion: P - 1 };
  const times: Record<string, number[]> = { all: [], completion: [] };
  const losses: Record<string, number> = {};
  for (let r = 0; r <= rounds; r++) {
    for (const [k, from] of Object.entries(sides)) {
      const t0 = performance.now();
      let sum = 0;
      for (const b of batches) sum += await step(from, b);
      if (r > 0) times[k]!.push((performance.now() - t0) / steps);
      losses[k] = sum / steps;
    }
  }
  M.w.setTrainable(false);
  console.log(`# ${machineLine()}; ${rowsFrom}; AV prompt ${P} tokens, batch ${batchSize}; ${rounds} rounds of ${steps} forward+backward passes per side, alternating`);
  const med: Record<string, number> = {};
  for (const k of Object.keys(sides)) {
    const s = summarize(times[k]!);
    med[k] = s.median;
    emit({ bench: 'head-from', head_on: k, rows: rowsFrom, prompt_tokens: P, batch: batchSize, steps, rounds, ms_per_pass: round(s.median, 1), ms_min: round(s.min, 1), ms_max: round(s.max, 1), mean_loss: round(losses[k]!, 6) });
    console.log(`# head on ${k.padEnd(10)} ${s.median.toFixed(1)} ms per forward+backward [${s.min.toFixed(1)} - ${s.max.toFixed(1)}], mean loss ${losses[k]!.toFixed(6)}`);
  }
  emit({ bench: 'head-from', head_on: 'ratio', completion_over_all: round(med.completion! / med.all!, 3) });
  console.log(`# completion / all: ${(med.completion! / med.all!).toFixed(3)}`);
}

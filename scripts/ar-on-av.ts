// Does an AR fitted to what the AV writes rebuild h better than one fitted to the true summaries?
// The warm-start AR learns h from true summaries, so a wrong word from the AV (about one row in
// five of M's text) is rebuilt as that word's h: FVE about -0.08 on those rows. Fitted to the AV's
// own greedy explanations of rows the AV never trained on (split ar), the AR learns the mean h of
// what the AV writes, and can hedge where the AV's word is often wrong. Scores greedy
// explanations of held-out rows (split eval: M's text and the stories apart) with the AR before and
// after, and the AR on the true summaries of the same rows.
//   node --import tsx scripts/ar-on-av.ts --nla DIR(warm start) --store DIR [--steps 400] [--lr 3e-4] [--rows 400] [--train-rows N] [--true-too]
import { loadNLA } from '../src/nla/nla.js';
import { ActivationStore, rowSource } from '../src/nla/store.js';
import { rowsOf } from '../src/nla/sft.js';
import { refitArOnAv } from '../src/nla/ar-refit.js';
import { mseNormalized } from '../src/nla/fve.js';
import * as T from '../src/tensor/index.js';
import { argReader } from './args.js';

const arg = argReader('ar-on-av');
await T.initGpu();
const nla = await loadNLA(arg('nla'));
const d = nla.ar.d, V = nla.meta.variance;
const store = ActivationStore.open(arg('store'), { layer: nla.meta.layer, d });
const all = store.readAll();
const N = Number(arg('rows', '400'));
const pick = (f: (i: number) => boolean) => all.meta.map((_, i) => (f(i) ? i : -1)).filter((i) => i >= 0);
// --train-rows N: an even spread over the split (its rows are in source order).
const arRows = pick((i) => all.meta[i]!.split === 'ar' && !!all.meta[i]!.summary);
const held = {
  model: pick((i) => all.meta[i]!.split === 'eval' && rowSource(all.meta[i]!) === 'model').slice(0, N),
  stories: pick((i) => all.meta[i]!.split === 'eval' && rowSource(all.meta[i]!) === 'known-answer').slice(0, N),
};
async function greedy(rows: number[]): Promise<(string | undefined)[]> {
  const out: (string | undefined)[] = [];
  for (let s = 0; s < rows.length; s += 512) {
    const ex = await nla.av.explain(rowsOf(all.h, d, rows.slice(s, s + 512)), { temperature: 0, maxTokens: nla.meta.maxExplanationTokens });
    out.push(...ex.map((e) => e.explanation));
  }
  return out;
}
const quotation = (t: string | undefined) => (t ? /^"(.*?)"\./s.exec(t)?.[1] : undefined);
const heldText = { model: await greedy(held.model), stories: await greedy(held.stories) };
async function fve(rows: number[], texts: (string | undefined)[], only?: (r: number) => boolean): Promise<number> {
  const keep = rows.map((_, k) => k).filter((k) => !only || only(k));
  const pred = await nla.ar.predictHost(keep.map((k) => texts[k] ?? ''));
  const m = mseNormalized(pred, rowsOf(all.h, d, keep.map((k) => rows[k]!)), d);
  return 1 - keep.reduce((a, k, j) => a + (texts[k] === undefined ? 2 : m[j]!), 0) / Math.max(keep.length, 1) / V;
}
async function scores() {
  const r: Record<string, number> = {};
  for (const kind of ['model', 'stories'] as const) {
    const rows = held[kind], texts = heldText[kind];
    const right = (k: number) => quotation(texts[k]) === quotation(all.meta[rows[k]!]!.summary);
    r[`${kind}_greedy`] = +(await fve(rows, texts)).toFixed(3);
    r[`${kind}_quote_right`] = +(await fve(rows, texts, right)).toFixed(3);
    r[`${kind}_quote_wrong`] = +(await fve(rows, texts, (k) => !right(k))).toFixed(3);
    r[`${kind}_true_summary`] = +(await fve(rows, rows.map((i) => all.meta[i]!.summary))).toFixed(3);
    r[`${kind}_quotes_exact`] = +(rows.filter((_, k) => right(k)).length / rows.length).toFixed(3);
  }
  return r;
}
const before = await scores();
process.stderr.write(`before: ${JSON.stringify(before)}\n`);
const t0 = performance.now();
const STEPS = Number(arg('steps', '400')), LR = Number(arg('lr', '3e-4')), trueToo = process.argv.includes('--true-too');
const src = { h: rowsOf(all.h, d, arRows), summaries: arRows.map((i) => all.meta[i]!.summary!) };
const r = await refitArOnAv(nla.av, nla.ar, src, { rows: Number(arg('train-rows', '0')), steps: STEPS, batchSize: 32, lr: LR, warmup: 20, decaySteps: STEPS, clip: 1, seed: 5, maxTokens: nla.meta.maxExplanationTokens, withTrueSummaries: trueToo });
const after = await scores();
console.log(JSON.stringify({ nla: arg('nla'), store: store.dir, train_rows: r.explained, unparseable: r.explained - r.parsed, true_too: trueToo, steps: STEPS, lr: LR, minutes: +((performance.now() - t0) / 60000).toFixed(2), before, after }));
nla.dispose();

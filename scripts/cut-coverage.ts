// How many of the AV's rows quote each held-out word, under other ways to choose the training cuts
// of M's text. A simulation on the word counts only (no training): the demo's random cuts (the
// store's own av rows) against cut rules that favour word units the rows so far quote less, on the
// same av documents (resampled with their seeds). The held-out rows are the store's eval rows of
// M's text; the stories' av rows count for every rule. Predicted quotes use the eighteenth
// session's accuracy by training count (0, 1, 2-3, 4-10, 11-50, 51+).
// --extra N adds N more av documents (seeds from 100,000; none is a held-out document) and
// --cuts sets the cuts of every av document, to ask what more documents at fewer cuts would cover.
//   node --import tsx scripts/cut-coverage.ts --store DIR [--model FILE] [--cuts 8] [--extra 0]
import { loadModel, loadTokenizerFor } from '../src/nn/load.js';
import type { Llama } from '../src/nn/llama.js';
import { ActivationStore, rowSource } from '../src/nla/store.js';
import { sampleModelText, splitByDoc } from '../src/nla/model-text.js';
import { decodeDoc, describeTextCut } from '../src/nla/text-summary.js';
import { rng, randInt } from '../src/util/rng.js';
import * as T from '../src/tensor/index.js';
import { argReader } from './args.js';

const arg = argReader('cut-coverage');
await T.initGpu();
const file = arg('model', '../shared/models/stories260K.bin');
const M = (await loadModel(file)).model as Llama;
const tok = loadTokenizerFor(file);
const store = ActivationStore.open(arg('store'), { layer: 3, d: M.cfg.dim });
const meta = store.readAll().meta;
const quotation = (t: string | undefined) => (t ? /^"(.*?)"\./s.exec(t)?.[1] : undefined) ?? '';
const src = store.manifest.sources!;
const cuts = Number(arg('cuts', String(src.modelCuts ?? src.cuts)));
const minTokens = src.minTokens;

const storyCounts = new Map<string, number>();
const bump = (m: Map<string, number>, w: string) => m.set(w, (m.get(w) ?? 0) + 1);
for (const m of meta) if (m.split === 'av' && rowSource(m) === 'known-answer') bump(storyCounts, quotation(m.summary));
const randomCounts = new Map(storyCounts);
for (const m of meta) if (m.split === 'av' && rowSource(m) === 'model') bump(randomCounts, quotation(m.summary));
const held = meta.filter((m) => m.split === 'eval' && rowSource(m) === 'model').map((m) => quotation(m.summary));

// The av documents of M's text, resampled (the same seeds and split as the demo at seed 0).
const n = src.model!.count;
const splits = splitByDoc(n, [0.35, 0.35, 0.15, 0.15], 12);
const t0 = Date.now();
const docs = (await sampleModelText(M, tok, { docs: n, seed: src.model!.seedBase, maxTokens: src.model!.maxTokens })).filter((_, i) => splits[i] === 'av');
const extra = Number(arg('extra', '0'));
if (extra) docs.push(...(await sampleModelText(M, tok, { docs: extra, seed: 100_000, maxTokens: src.model!.maxTokens })));
console.error(`sampled ${docs.length} av documents in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
// Each candidate cut's word unit (the summary's quotation).
const cand = docs.map((d) => {
  const doc = decodeDoc(tok, d.ids);
  const out: string[] = [];
  for (let p = minTokens; p < d.ids.length; p++) out.push(describeTextCut(tok, d.ids, p, { lastWordCount: 1, doc, factsWindow: 8 }).lastWords);
  return out;
});
console.error(`described ${cand.reduce((a, c) => a + c.length, 0)} candidate cuts`);

type Rule = (words: string[], counts: Map<string, number>, rand: () => number) => number[];
const pickBy = (weight: (c: number) => number): Rule => (words, counts, rand) => {
  const chosen = new Set<number>();
  while (chosen.size < Math.min(cuts, words.length)) {
    const w = words.map((x, i) => (chosen.has(i) ? 0 : weight(counts.get(x) ?? 0)));
    let r = rand() * w.reduce((a, b) => a + b, 0);
    let i = 0;
    while (i < w.length - 1 && (r -= w[i]!) > 0) i++;
    chosen.add(i);
    bump(counts, words[i]!);
  }
  return [...chosen];
};
const rules: Record<string, Rule> = {
  random: pickBy(() => 1),
  'power 0.5': pickBy((c) => (1 + c) ** -0.5),
  'power 1': pickBy((c) => 1 / (1 + c)),
  'power 2': pickBy((c) => (1 + c) ** -2),
  'under 8': pickBy((c) => (c < 8 ? 1 : 0.02)),
  'under 16': pickBy((c) => (c < 16 ? 1 : 0.02)),
  'under 32': pickBy((c) => (c < 32 ? 1 : 0.02)),
};
const ACC = [0, 0.211, 0.538, 0.91, 0.964, 0.988];
const bin = (c: number) => (c === 0 ? 0 : c === 1 ? 1 : c <= 3 ? 2 : c <= 10 ? 3 : c <= 50 ? 4 : 5);
const report = (name: string, counts: Map<string, number>) => {
  const bins = [0, 0, 0, 0, 0, 0];
  for (const w of held) bins[bin(counts.get(w) ?? 0)]!++;
  const pred = bins.reduce((a, b, i) => a + b * ACC[i]!, 0) / held.length;
  const words = [...counts.keys()].length;
  console.log(`${name.padEnd(22)} words ${String(words).padStart(5)}  held-out rows by count 0/1/2-3/4-10/11-50/51+: ${bins.map((b) => (b / held.length).toFixed(3)).join(' ')}  predicted quotes ${pred.toFixed(3)}`);
};
report('store (demo cuts)', randomCounts);
for (const [name, rule] of Object.entries(rules)) {
  const counts = new Map(storyCounts);
  const r = rng(11);
  const rand = () => randInt(r, 1 << 30) / (1 << 30);
  for (const words of cand) rule(words, counts, rand);
  report(name, counts);
}

// How well does an NLA explain the first tokens of a text? The demo cuts its documents (training
// and held-out alike) at token index >= 30 (`minTokens`), so positions 1..29 of M's text, where
// every TinyStories opening sits ("Once upon a time, there was a little girl named Lily."), are
// never trained on nor scored. This scores an NLA's greedy explanations on held-out samples of M
// cut anywhere from position 1, by position band: FVE, quotes exact, and the token lookup on the
// same rows (fitted on the store's training rows). Prints one JSON line.
//   node --import tsx scripts/early-positions.ts --nla DIR --store DIR [--docs 100] [--cuts 20] [--seed 2000000] [--doc-tokens N] [--split-at S]
import { docBootstrap, pairedMeanChange } from '../src/nla/doc-bootstrap.js';
import { loadNLA } from '../src/nla/nla.js';
import { ActivationStore } from '../src/nla/store.js';
import { evaluateModelText, summaryOptionsOf } from '../src/nla/model-text.js';
import { quoteAccuracy } from '../src/nla/quotes.js';
import { findModelFile } from '../src/io/model-files.js';
import { loadModel } from '../src/nn/load.js';
import type { Llama } from '../src/nn/llama.js';
import * as T from '../src/tensor/index.js';
import { argReader } from './args.js';

const arg = argReader('early-positions');
await T.initGpu();
const nla = await loadNLA(arg('nla'));
const store = ActivationStore.open(arg('store'), { layer: nla.meta.layer, d: nla.ar.d });
const all = store.readAll();
const M = (await loadModel(findModelFile('stories260K.bin'))).model as Llama;
const r = await evaluateModelText({ av: nla.av, ar: nla.ar, tok: nla.tok, layer: nla.meta.layer, variance: nla.meta.variance }, M, { h: all.h, meta: all.meta, dir: store.dir, sources: store.manifest.sources }, {
  docs: Number(arg('docs', '100')), seed: Number(arg('seed', '2000000')), cuts: Number(arg('cuts', '20')), minTokens: 1,
  docTokens: process.argv.includes('--doc-tokens') ? Number(arg('doc-tokens')) : store.manifest.sources?.model?.maxTokens, maxTokens: nla.meta.maxExplanationTokens, summary: summaryOptionsOf(store.manifest.summary),
});
const q = quoteAccuracy(r.greedy.examples.map((e) => e.explanation), r.contexts);
// `--doc-tokens N` samples longer documents than the store's; then positions past the store's cap get a band of their own.
// `--split-at S` puts that boundary at S instead (to compare NLAs trained on documents of different caps on the same bands).
const cap = process.argv.includes('--split-at') ? Number(arg('split-at')) : store.manifest.sources?.model?.maxTokens ?? Infinity;
const bands: [string, (p: number) => boolean][] = [['1-9', (p) => p < 10], ['10-29', (p) => p >= 10 && p < 30], ['30+', (p) => p >= 30 && p <= cap], [`past ${cap}`, (p) => p > cap]];
const v = nla.meta.variance;
const out: Record<string, unknown> = { nla: arg('nla'), rows: r.rows, docs: r.docs };
for (const [name, f] of bands) {
  const rows = r.meta.map((m, i) => (f(m.pos) ? i : -1)).filter((i) => i >= 0);
  if (!rows.length) continue;
  const mean = (x: (i: number) => number) => rows.reduce((a, i) => a + x(i), 0) / rows.length;
  out[name] = {
    rows: rows.length,
    fve: +(1 - mean((i) => r.greedy.examples[i]!.mse) / v).toFixed(3),
    token: r.tokenRows ? +(1 - mean((i) => r.tokenRows!.mse[i]!) / r.tokenRows.variance).toFixed(3) : null,
    quote_exact: +mean((i) => +q.rows[i]!.exact).toFixed(3),
    examples: rows.slice(0, 4).map((i) => `${JSON.stringify(r.contexts[i]!.slice(-30))} -> ${r.greedy.examples[i]!.explanation}`),
  };
}
// All rows together, with 95% intervals over the documents (a bootstrap, paired for the difference with the lookup).
const docs = r.meta.map((m) => m.seed ?? m.doc);
const fveRows = r.greedy.examples.map((e) => 1 - e.mse / v);
const [fveCi] = docBootstrap(docs, (rows) => [rows.reduce((a, i) => a + fveRows[i]!, 0) / rows.length]);
out.all = {
  rows: r.rows,
  fve: +(fveRows.reduce((a, x) => a + x, 0) / r.rows).toFixed(3),
  fve_ci: fveCi!.map((x) => +x.toFixed(3)),
  quote_exact: +(q.rows.reduce((a, x) => a + +x.exact, 0) / r.rows).toFixed(3),
  ...(r.tokenRows ? (() => {
    const tokRows = r.tokenRows.mse.map((m) => 1 - m / r.tokenRows!.variance);
    const c = pairedMeanChange(docs, tokRows, fveRows);
    return { token: +(tokRows.reduce((a, x) => a + x, 0) / r.rows).toFixed(3), fve_minus_token: +c.diff.toFixed(3), fve_minus_token_ci: c.ci.map((x) => +x.toFixed(3)) };
  })() : {}),
};
console.log(JSON.stringify(out));
process.exit(0);

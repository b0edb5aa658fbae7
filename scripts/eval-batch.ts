// Seconds of evaluate() (greedy, or --samples k at temperature 1) on a store's first rows at
// several batch sizes, alternating; greedy FVE is the same whatever the batch. Chose evaluate's
// default batch (generationRows; BENCHMARKS.md, "generate").
//   node --import tsx scripts/eval-batch.ts --nla DIR --store DIR [--rows 200] [--samples 1] [--batches 32,200,32,200]
import { loadNLA } from '../src/nla/nla.js';
import { ActivationStore } from '../src/nla/store.js';
import { evaluate } from '../src/nla/evaluate.js';
import { rowsOf } from '../src/nla/sft.js';
import { argReader } from './args.js';

const arg = argReader('eval-batch');
const nla = await loadNLA(arg('nla'));
const store = ActivationStore.open(arg('store'));
const rows = Number(arg('rows', '200')), k = Number(arg('samples', '1'));
const all = store.readAll();
const idx = all.meta.map((m, i) => (m.split === 'eval' ? i : -1)).filter((i) => i >= 0).slice(0, rows);
const h = rowsOf(all.h, store.manifest.d, idx), meta = idx.map((i) => all.meta[i]!);
for (const bs of arg('batches', '32,200,32,200').split(',').map(Number)) {
  const t = performance.now();
  const e = await evaluate(nla.av, nla.ar, h, meta, nla.meta.variance, { temperature: k === 1 ? 0 : 1, samples: k, maxTokens: nla.meta.maxExplanationTokens, batchSize: bs, seed: 7 });
  console.log(JSON.stringify({ bench: 'eval-batch', batch: bs, rows: idx.length, samples: k, seconds: +((performance.now() - t) / 1000).toFixed(1), fve: +e.fve.toFixed(4) }));
}
process.exit(0);

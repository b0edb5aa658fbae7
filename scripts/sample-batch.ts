// Tokens/s of sampling documents of M (model-text.ts sampleModelText) at several batch sizes,
// alternating, on the same seeds (the documents are the same whatever the batch). Chose the
// demo's batch of 512, then generationRows' 1,024 (BENCHMARKS.md, "generate").
//   node --import tsx scripts/sample-batch.ts [--docs 512] [--tokens 200] [--batches 128,512,128,512]
import { loadModel, loadTokenizerFor } from '../src/nn/load.js';
import { findModelFile } from '../src/io/model-files.js';
import { sampleModelText } from '../src/nla/model-text.js';
import type { Llama } from '../src/nn/llama.js';

const arg = (k: string, d: string) => { const i = process.argv.indexOf(`--${k}`); return i > 0 ? process.argv[i + 1]! : d; };
const docs = Number(arg('docs', '512')), tokens = Number(arg('tokens', '200'));
const batches = arg('batches', '128,512,128,512').split(',').map(Number);
const file = findModelFile('stories260K.bin');
const M = (await loadModel(file)).model as Llama;
const tok = loadTokenizerFor(file);
for (const bs of batches) {
  const t = performance.now();
  const d = await sampleModelText(M, tok, { docs, seed: 0, maxTokens: tokens, batchSize: bs });
  const s = (performance.now() - t) / 1000, n = d.reduce((a, x) => a + x.ids.length - 1, 0);
  console.log(JSON.stringify({ bench: 'sample', batch: bs, docs, tokens: n, seconds: +s.toFixed(1), tokensPerSecond: Math.round(n / s) }));
}
process.exit(0);

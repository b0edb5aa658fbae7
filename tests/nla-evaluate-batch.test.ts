// How many rows evaluate() generates at once is a matter of speed only: greedy explanations and
// their FVE are the same in any batch.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadModel, loadTokenizerFor } from '../src/nn/load.js';
import { generationRows, GENERATION_LOGIT_BYTES } from '../src/nn/generate.js';
import type { Llama } from '../src/nn/llama.js';
import { Reconstructor } from '../src/nla/ar.js';
import { Verbalizer } from '../src/nla/av.js';
import { evaluate } from '../src/nla/evaluate.js';
import { extractActivations } from '../src/nla/extract.js';
import { COMPACT_PROMPTS } from '../src/nla/prompts.js';
import type { RowMeta } from '../src/nla/store.js';
import { modelFile, SKIP_NO_MODEL } from './helpers.js';

test('generationRows: logits of one step under the budget, within 32..1024 rows', () => {
  assert.equal(generationRows(512), 1024); // stories260K: 4,096 would fit; capped
  assert.equal(generationRows(32_000), Math.floor(GENERATION_LOGIT_BYTES / (4 * 32_000)));
  assert.equal(generationRows(32_000), 65);
  assert.equal(generationRows(151_936), 32); // Qwen2.5: 13 would fit; floored at 32
});

test('evaluate: greedy explanations and FVE do not depend on the batch size', { skip: SKIP_NO_MODEL, timeout: 300_000 }, async () => {
  const loaded = await loadModel(modelFile('stories260K.bin'));
  const M = loaded.model as Llama;
  const tok = loadTokenizerFor(modelFile('stories260K.bin'));
  const texts = ['Lily went to the park with her dog.', 'Tom had a red ball and a big box.', 'Once upon a time there was a cat.'];
  const ids = texts.map((t) => tok.encode(t, { bos: true }));
  const items = ids.map((x) => ({ ids: x, positions: [5, 8], meta: [] }));
  const h = await extractActivations(M, 3, items);
  const meta = items.flatMap(() => [{}, {}]) as RowMeta[];
  const av = new Verbalizer(M, tok, COMPACT_PROMPTS, 8);
  const ar = await Reconstructor.fromModel(M, 3, tok, COMPACT_PROMPTS);
  const one = await evaluate(av, ar, h, meta, 0.8, { temperature: 0, maxTokens: 12, batchSize: 1 });
  const all = await evaluate(av, ar, h, meta, 0.8, { temperature: 0, maxTokens: 12 });
  assert.equal(one.examples.length, 6);
  assert.deepEqual(all.examples.map((e) => e.tokens), one.examples.map((e) => e.tokens));
  assert.ok(all.examples.some((e, i) => i > 0 && e.tokens.join() !== all.examples[0].tokens.join()), 'the rows are told apart (else the comparison shows nothing)');
  assert.ok(Math.abs(all.mse - one.mse) < 1e-6, `${all.mse} vs ${one.mse}`);
  ar.model.w.dispose();
});

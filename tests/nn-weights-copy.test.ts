// Weights.copy / clone go one tensor at a time through the host (no host copy of a whole model):
// the copy must hold bit-identical f32 values in the source's order, be fresh trainable
// parameters independent of the source, and keep only what the filter accepts. The AR built
// from M (Reconstructor.fromModel) uses it: M's embedding and blocks 0..K in M's order, then
// the identity head.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../src/tensor/index.js';
import { Weights } from '../src/nn/weights.js';
import type { HostTensor } from '../src/io/host-tensor.js';
import { loadModel, loadTokenizerFor } from '../src/nn/load.js';
import type { Llama } from '../src/nn/llama.js';
import { AR_HEAD, Reconstructor } from '../src/nla/ar.js';
import { DEFAULT_PROMPTS } from '../src/nla/prompts.js';
import { modelFile, SKIP_NO_MODEL } from './helpers.js';

await T.initGpu();

test('copy: values bit-identical, source order, fresh independent trainable parameters, filtered', async () => {
  const names = ['z.weight', 'a.weight', 'm.bias'];
  const host = new Map<string, HostTensor>(names.map((n, i) => [n, { dtype: 'f32', shape: [3, i + 1], data: Float32Array.from({ length: 3 * (i + 1) }, (_, j) => Math.fround(Math.exp(j - i) * (j % 2 ? -1 : 1))) }]));
  const src = Weights.fromHost(host);
  const all = await src.clone(), some = await src.copy((n) => n !== 'a.weight');
  assert.deepEqual([...all.map.keys()], names);
  assert.deepEqual([...some.map.keys()], ['z.weight', 'm.bias']);
  for (const [n, t] of all.map) {
    assert.notEqual(t.storage, src.get(n).storage, `${n} shares storage with the source`);
    assert.ok(t.requiresGrad && t.kept, `${n} is a kept trainable parameter`);
    assert.deepEqual([...t.shape], host.get(n)!.shape);
    assert.deepEqual(await t.data(), host.get(n)!.data);
  }
  // Independent: changing the copy leaves the source alone.
  T.copyInto(all.get('z.weight'), T.fill([3, 1], 7));
  assert.deepEqual(await src.get('z.weight').data(), host.get('z.weight')!.data);
  for (const w of [src, all, some]) w.dispose();
});

test('Reconstructor.fromModel: M\'s embedding and blocks 0..K in M\'s order, values equal, then the identity head', { skip: SKIP_NO_MODEL }, async () => {
  const M = (await loadModel(modelFile('stories260K.bin'))).model as Llama;
  const tok = loadTokenizerFor(modelFile('stories260K.bin'));
  const K = 2;
  const ar = await Reconstructor.fromModel(M, K, tok, DEFAULT_PROMPTS);
  const kept = [...M.w.map.keys()].filter((n) => n === 'model.embed_tokens.weight' || Number(/^model\.layers\.(\d+)\./.exec(n)?.[1] ?? Infinity) <= K);
  assert.deepEqual([...ar.model.w.map.keys()], [...kept, AR_HEAD]);
  for (const n of kept) assert.deepEqual(await ar.model.w.get(n).data(), await M.w.get(n).data(), n);
  const d = M.cfg.dim, head = await ar.model.w.get(AR_HEAD).data();
  assert.ok(head.every((x, i) => x === (Math.floor(i / d) === i % d ? 1 : 0)), 'identity head');
  ar.model.w.dispose();
  M.w.dispose();
});

// The LM Trainer's per-step NaN/Inf check: a model whose logits turn NaN on chosen forward
// passes (the parameters stay finite) makes run() stop naming the loss and the gradients, with
// the weights and the last checkpoint from before the bad step; under 'skip' the bad batches
// are dropped and the run ends bit-identical to one that never saw them; a parameter already
// NaN always stops, and save() refuses to write it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DataLoader, TokenDataset } from '../src/nn/data.js';
import { initLlama, llamaConfig } from '../src/nn/init.js';
import type { Llama } from '../src/nn/llama.js';
import { loadCheckpoint } from '../src/nn/checkpoint.js';
import { Trainer, type TrainOptions } from '../src/nn/train.js';
import { NonFiniteError } from '../src/tensor/optim/finite.js';
import { upload } from '../src/tensor/runtime.js';
import * as T from '../src/tensor/index.js';

const V = 24;
const cfg = llamaConfig({ dim: 16, nLayers: 1, nHeads: 2, vocabSize: V, maxSeqLen: 16, hiddenDim: 32 });
const corpus = new TokenDataset(Array.from({ length: 30 }, (_, i) => [1, ...Array.from({ length: 12 }, (_, t) => 2 + ((i + t) % 20))]), V);
const loader = () => new DataLoader(corpus, { batchSize: 2, seqLen: 8, seed: 5 });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-train-nan-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

/** `model` whose logits are multiplied by NaN on the forward passes numbered in `bad` (1-based). */
function poisoned(model: Llama, bad: (call: number) => boolean): Llama {
  let calls = 0;
  const m = Object.create(model) as Llama;
  m.forward = (ids, opts) => {
    const r = model.forward(ids, opts);
    return bad(++calls) ? { ...r, logits: T.mul(r.logits!, NaN) } : r;
  };
  return m;
}

async function host(model: Llama): Promise<Map<string, Float32Array>> {
  return new Map([...(await model.w.toHost())].map(([k, t]) => [k, t.data as Float32Array]));
}

const opts: TrainOptions = { steps: 6, lr: 5e-3, warmupSteps: 2, logEvery: 1, maxGradNorm: 1 };

test('stop (default): the bad step throws naming loss and gradients; weights and checkpoint are those of the step before', async () => {
  const model = await initLlama(cfg, 7);
  const ck = path.join(dir, 'stop.ck');
  const tr = new Trainer(poisoned(model, (c) => c === 3), loader(), { ...opts, checkpointPath: ck, checkpointEvery: 1 });
  await assert.rejects(tr.run(), (e: Error) => e instanceof NonFiniteError && /^Trainer step 3: NaN or Inf in loss, gradient of model\.embed_tokens\.weight, /.test(e.message) && /update was not applied/.test(e.message));
  assert.equal(tr.step, 2);
  const saved = loadCheckpoint(ck);
  assert.equal(saved.step, 2);
  const now = await host(model);
  for (const [k, t] of Object.entries(saved.weights.model)) assert.deepEqual(now.get(k), t.data, `${k} changed by the refused step`);
  for (const v of now.values()) assert.ok(v.every(Number.isFinite));
  tr.dispose();
  model.w.dispose();
});

test('skip: bad batches are dropped and the run ends bit-identical to one that never drew them', async () => {
  const a = await initLlama(cfg, 9);
  const skips: { step: number; bad: string[] }[] = [];
  const ta = new Trainer(poisoned(a, (c) => c === 3 || c === 4), loader(), { ...opts, onNonFinite: 'skip', onSkip: (m) => skips.push(m) });
  const res = await ta.run();
  assert.equal(res.steps, 6);
  assert.equal(res.skipped, 2);
  assert.deepEqual(skips.map((s) => s.step), [3, 3]);
  assert.ok(skips.every((s) => s.bad[0] === 'loss' && s.bad.some((b) => b.startsWith('gradient of ')) && !s.bad.some((b) => b.startsWith('parameter '))), JSON.stringify(skips));
  // Reference: the same updates with the same batches, the two dropped ones drawn and discarded.
  const b = await initLlama(cfg, 9);
  const data = loader();
  const tb = new Trainer(b, data, opts);
  for (let s = 0; s < 6; s++) {
    if (s === 2) (data.next(), data.next());
    const r = tb.trainStep();
    r.loss.dispose();
  }
  const wa = await host(a), wb = await host(b);
  for (const [k, v] of wb) assert.deepEqual(wa.get(k), v, `${k} differs from the run without the bad batches`);
  // The control can fail: a run that updated on the bad batches ends different (and NaN).
  const c = await initLlama(cfg, 9);
  const tc = new Trainer(poisoned(c, (n) => n === 3), loader(), opts);
  for (let s = 0; s < 3; s++) tc.trainStep().loss.dispose();
  assert.ok([...(await host(c)).values()].some((v) => v.some((x) => !Number.isFinite(x))), 'an unchecked step on a NaN loss poisons the weights');
  for (const t of [ta, tb, tc]) t.dispose();
  for (const m of [a, b, c]) m.w.dispose();
});

test('a parameter already NaN stops even under skip, and save() will not write it; 20 skips in a row stop the run', async () => {
  const model = await initLlama(cfg, 11);
  const tr = new Trainer(model, loader(), { ...opts, onNonFinite: 'skip' });
  const p = model.w.params().find((x) => x.name === 'model.norm.weight')!;
  upload(p.buffer, p.offset * 4, Float32Array.from({ length: p.size }, (_, i) => (i === 3 ? NaN : 1)));
  await assert.rejects(tr.run(), (e: Error) => e instanceof NonFiniteError && /parameter model\.norm\.weight/.test(e.message) && /already poisoned/.test(e.message));
  const ck = path.join(dir, 'poisoned.ck');
  await assert.rejects(tr.save(ck), (e: Error) => e instanceof NonFiniteError && e.message.includes(ck) && /parameter model\.norm\.weight/.test(e.message));
  assert.ok(!fs.existsSync(ck), 'no poisoned checkpoint on disk');
  tr.dispose();
  model.w.dispose();

  const m2 = await initLlama(cfg, 12);
  const t2 = new Trainer(poisoned(m2, () => true), loader(), { ...opts, onNonFinite: 'skip' });
  await assert.rejects(t2.run(), /Trainer step 1: 20 batches in a row skipped/);
  assert.equal(t2.step, 0);
  t2.dispose();
  m2.w.dispose();
});

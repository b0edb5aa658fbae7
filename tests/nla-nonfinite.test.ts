// Numerical faults: a NaN or an infinity in the loss, a gradient or a parameter is found by one
// fused check per step (src/tensor/optim/finite.ts) and named; --on-nan stop throws, skip
// leaves the parameters and optimizer state untouched and goes on; a poisoned checkpoint or
// final model is never written.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadCheckpoint } from '../src/nn/checkpoint.js';
import type { Llama } from '../src/nn/llama.js';
import { loadModel, loadTokenizerFor } from '../src/nn/load.js';
import { Reconstructor } from '../src/nla/ar.js';
import { knownAnswerItems } from '../src/nla/dataset.js';
import { extractActivations } from '../src/nla/extract.js';
import { makeOptimizer, NonFiniteError } from '../src/nla/optim.js';
import { DEFAULT_PROMPTS } from '../src/nla/prompts.js';
import { trainArSft, type SftOptions } from '../src/nla/sft.js';
import * as T from '../src/tensor/index.js';
import { nonFinite } from '../src/tensor/optim/finite.js';
import { modelFile, SKIP_NO_MODEL } from './helpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-nonfinite-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('nonFinite names exactly the tensors holding a NaN or an infinity, wherever it sits', async () => {
  await T.initGpu();
  const big = 3 * 16384 + 5; // several workgroups: the bad value is in the last one's stride
  const at = (n: number, i: number, v: number) => Float32Array.from({ length: n }, (_, k) => (k === i ? v : Math.sin(k)));
  const named: [string, T.Tensor][] = [
    ['clean', T.Tensor.from(at(big, 0, 1))],
    ['extremes', T.Tensor.from(Float32Array.of(3.4028234e38, -3.4028234e38, 1e-45, -0, 0))],
    ['nan-last', T.Tensor.from(at(big, big - 1, NaN))],
    ['inf-first', T.Tensor.from(at(7, 0, Infinity))],
    ['neg-inf', T.Tensor.from(at(100, 50, -Infinity))],
  ];
  // A view: only its own elements count (the NaN before its offset is outside it).
  const base = T.Tensor.from(Float32Array.of(NaN, 1, 2, 3, Infinity, 5));
  named.push(['view-clean', base.slice(0, 1, 4)], ['view-bad', base.slice(0, 3, 6)]);
  assert.deepEqual(await nonFinite(named), ['nan-last', 'inf-first', 'neg-inf', 'view-bad']);
  for (const [, t] of named) t.dispose();
  base.dispose();
});

test('the optimizer step: stop names the loss and the gradient, skip leaves parameters and moments untouched, a poisoned parameter always stops', async () => {
  await T.initGpu();
  const w = T.param(T.Tensor.from([1, 2, 3]), 'w');
  const v = T.param(T.Tensor.from([4, 5]), 'v');
  const lossOf = (x: number[]) => T.tidy(() => {
    const l = T.add(T.sum(T.mul(w, T.Tensor.from(x))), T.sum(v));
    l.backward();
    return l.detach();
  });
  for (const onNonFinite of ['stop', 'skip'] as const) {
    const opt = makeOptimizer([w, v], { lr: 0.1, onNonFinite }, 'toy');
    const ok = lossOf([1, 1, 1]);
    assert.deepEqual(await opt.step(0, ok), { lr: 0.1, skipped: false });
    ok.dispose();
    const before = [...((await w.data()) as Float32Array)];
    const m = await opt.adam.state();
    const bad = lossOf([1, NaN, 1]);
    if (onNonFinite === 'stop') {
      await assert.rejects(opt.step(1, bad), (e: Error) => e instanceof NonFiniteError && /^toy step 1: NaN or Inf in loss, gradient of w; the update was not applied/.test(e.message));
    } else {
      assert.deepEqual(await opt.step(1, bad), { lr: 0.1, skipped: true });
    }
    bad.dispose();
    assert.deepEqual([...((await w.data()) as Float32Array)], before, `${onNonFinite}: w unchanged`);
    assert.deepEqual(await opt.adam.state(), m, `${onNonFinite}: moments and step counts unchanged`);
    assert.equal(w.grad, undefined, 'gradients cleared');
    opt.dispose();
  }
  // A parameter that already holds an infinity stops even a skipping run.
  T.noGrad(() => T.copyInto(v, T.Tensor.from([4, Infinity])));
  const opt = makeOptimizer([w, v], { lr: 0.1, onNonFinite: 'skip' }, 'toy');
  const l = lossOf([1, 1, 1]);
  await assert.rejects(opt.step(5, l), /toy step 5: NaN or Inf in loss, parameter v; the parameters are already poisoned/);
  l.dispose();
  opt.dispose();
  w.dispose();
  v.dispose();
});

test('AR SFT on a store with a NaN row: stop throws before any poisoned checkpoint; skip skips exactly the steps that drew it', { skip: SKIP_NO_MODEL }, async () => {
  const file = modelFile('stories260K.bin');
  const M = (await loadModel(file)).model as Llama;
  const tok = loadTokenizerFor(file);
  const items = knownAnswerItems(tok, { stories: 3, cutsPerStory: 2, minTokens: 20, seed: 3 });
  const h = await extractActivations(M, 3, items);
  const texts = items.flatMap((it) => it.meta.map((m) => m.summary!));
  const n = texts.length, d = M.cfg.dim;
  h[4 * d + 7] = NaN; // row 4
  const base: SftOptions = { steps: 6, batchSize: 2, lr: 1e-3, warmup: 1, seed: 5, logEvery: 1 };
  const ckpt = path.join(tmp, 'stop.ckpt');

  const A = await Reconstructor.fromModel(M, 3, tok, DEFAULT_PROMPTS);
  const saved: number[] = [];
  await assert.rejects(
    trainArSft(A, { h, texts }, { ...base, checkpoint: { file: ckpt, every: 1 }, onCheckpoint: (s) => saved.push(s) }),
    (e: Error) => e instanceof NonFiniteError && /^sft-ar step (\d+): NaN or Inf in loss, gradient of /.test(e.message),
  );
  const failedAt = saved.length; // steps 0..failedAt-1 were checkpointed, step failedAt threw
  if (saved.length) assert.equal(loadCheckpoint(ckpt).step, failedAt, 'the last checkpoint is the last clean step');
  A.model.w.dispose();

  const B = await Reconstructor.fromModel(M, 3, tok, DEFAULT_PROMPTS);
  const skipped: number[] = [];
  const logged: number[] = [];
  await trainArSft(B, { h, texts }, { ...base, onNonFinite: 'skip', onSkip: (s) => skipped.push(s), onLog: (m) => logged.push(m.step), checkpoint: { file: path.join(tmp, 'skip.ckpt'), every: 2 } });
  assert.ok(skipped.length >= 1 && skipped.includes(failedAt), `skipped ${skipped} includes the step stop failed at (${failedAt})`);
  assert.deepEqual([...logged, ...skipped].sort((a, b) => a - b), [...Array(base.steps).keys()], 'every step either logged or skipped');
  // Row 4 is the only bad one: 6 rows make epochs of 3 batches, each epoch has one bad step.
  assert.equal(n, 6);
  assert.equal(skipped.length, 2);
  assert.deepEqual(await nonFinite(B.model.w.params().map((p) => [p.name!, p])), [], 'the weights stayed finite');
  assert.equal(loadCheckpoint(path.join(tmp, 'skip.ckpt')).step, base.steps);
  B.model.w.dispose();
  M.w.dispose();
});

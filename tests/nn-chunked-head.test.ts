// The training losses with the head run a vocabulary chunk at a time (what a big vocabulary
// takes, forced here on stories260K) give the same values and gradients as the one-product path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sequenceLogProbs } from '../src/nn/generate.js';
import { loadModel } from '../src/nn/load.js';
import { IGNORE_INDEX } from '../src/nn/data.js';
import { lmLoss } from '../src/nn/train.js';
import * as T from '../src/tensor/index.js';
import { SeededRng } from '../src/util/rng.js';

const { model } = await loadModel('stories260K.bin');
const B = 3, Tn = 9, V = model.cfg.vocabSize;
const rand = new SeededRng(5).fn();
const ids = Int32Array.from({ length: B * Tn }, () => Math.floor(rand() * V));
const probe = model.w.get('model.layers.2.self_attn.q_proj.weight');

async function run(fn: () => T.Tensor): Promise<{ value: Float32Array; grad: Float32Array }> {
  model.w.setTrainable(true);
  try {
    const y = T.tidy(() => {
      const out = fn();
      T.sum(out).backward();
      return out;
    });
    const value = (await y.data()) as Float32Array;
    y.dispose();
    return { value, grad: (await probe.grad!.data()) as Float32Array };
  } finally {
    for (const p of model.w.params()) (p.grad?.dispose(), (p.grad = undefined));
    model.w.setTrainable(false);
  }
}

function close(a: Float32Array, b: Float32Array, tol: number, what: string) {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / (1e-3 + Math.abs(b[i])));
  assert.ok(worst < tol, `${what}: worst relative difference ${worst}`);
}

test('sequenceLogProbs: head in vocabulary chunks equals the logits path (values and a weight gradient)', async () => {
  const whole = await run(() => sequenceLogProbs(model, ids, B, Tn, undefined, false));
  const chunked = await run(() => sequenceLogProbs(model, ids, B, Tn, undefined, true));
  close(chunked.value, whole.value, 1e-4, 'log-probs');
  close(chunked.grad, whole.grad, 1e-3, 'q_proj gradient');
  assert.ok(whole.grad.some((v) => v !== 0));
});

test('lmLoss with ignored targets: head in vocabulary chunks equals the fused cross-entropy', async () => {
  const targets = Int32Array.from(ids, (t, i) => (i % 4 === 3 ? IGNORE_INDEX : (t + 1) % V));
  const batch = { inputs: ids, targets, B, T: Tn, count: targets.filter((t) => t !== IGNORE_INDEX).length };
  const whole = await run(() => lmLoss(model, batch, false));
  const chunked = await run(() => lmLoss(model, batch, true));
  close(chunked.value, whole.value, 1e-5, 'loss');
  close(chunked.grad, whole.grad, 1e-3, 'q_proj gradient');
});

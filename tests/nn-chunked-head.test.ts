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

test('sequenceLogProbs from a position: the head skips the positions before it, values and gradients as the whole sequence gives them', async () => {
  // Reference: the model's own logits, log-softmax in float64 on the host.
  const logits = T.noGrad(() => model.forward(T.Tensor.from(ids, [B, Tn], 'i32')).logits!);
  const z = (await logits.data()) as Float32Array;
  logits.dispose();
  const ref = (b: number, t: number) => {
    const row = z.subarray((b * Tn + t) * V, (b * Tn + t + 1) * V);
    let m = -Infinity;
    for (const v of row) m = Math.max(m, v);
    let s = 0;
    for (const v of row) s += Math.exp(v - m);
    return row[ids[b * Tn + t + 1]] - m - Math.log(s);
  };
  const from = 4, n = Tn - 1 - from;
  const keep = new Float32Array(B * (Tn - 1));
  for (let b = 0; b < B; b++) for (let t = from; t < Tn - 1; t++) keep[b * (Tn - 1) + t] = 1;
  for (const chunked of [false, true]) {
    const part = await run(() => sequenceLogProbs(model, ids, B, Tn, undefined, chunked, from));
    assert.equal(part.value.length, B * n);
    const want = Float32Array.from({ length: B * n }, (_, i) => ref(Math.floor(i / n), from + (i % n)));
    close(part.value, want, 1e-4, `log-probs from ${from} (chunked ${chunked})`);
    // The gradient of their sum: the whole sequence's log-probs with the positions before `from` masked out.
    const masked = await run(() => T.mul(sequenceLogProbs(model, ids, B, Tn, undefined, chunked), T.Tensor.from(keep, [B, Tn - 1])));
    close(part.grad, masked.grad, 1e-3, `q_proj gradient from ${from} (chunked ${chunked})`);
    assert.ok(part.grad.some((v) => v !== 0));
  }
  assert.throws(() => sequenceLogProbs(model, ids, B, Tn, undefined, false, Tn - 1), /from 8 outside 0..7/);
});

// Memory stays flat over a training loop, and a small MLP actually learns.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../src/tensor/index.js';
import { randomNd } from '../src/testing/property.js';

function mlp(seed: number) {
  const w1 = T.param(T.Tensor.from(randomNd([2, 32], seed, -1, 1).data, [2, 32]), 'w1');
  const b1 = T.param(T.zeros([32]), 'b1');
  const w2 = T.param(T.Tensor.from(randomNd([32, 1], seed + 1, -0.3, 0.3).data, [32, 1]), 'w2');
  const b2 = T.param(T.zeros([1]), 'b2');
  const params = [w1, b1, w2, b2];
  const forward = (x: T.Tensor) => x.matmul(w1).add(b1).tanh().matmul(w2).add(b2);
  return { params, forward };
}

/** Synthetic task: y = sin(2 x0) * x1, on [-1,1]^2. */
function batch(n: number, seed: number) {
  const x = randomNd([n, 2], seed, -1, 1);
  const y = Float32Array.from({ length: n }, (_, i) => Math.sin(2 * x.data[2 * i]) * x.data[2 * i + 1]);
  return { x: T.Tensor.from(x.data, [n, 2]), y: T.Tensor.from(y, [n, 1]) };
}

function sgdStep(params: T.Tensor[], lr: number) {
  T.noGrad(() => {
    for (const p of params) {
      const next = p.sub(p.grad!.mul(lr));
      T.copyInto(p, next);
      next.dispose();
    }
  });
  T.zeroGrad(params);
}

test('200 training steps keep live buffers and bytes constant after warm-up', async () => {
  await T.initGpu();
  const { params, forward } = mlp(1);
  const data = batch(64, 7);
  let after: ReturnType<typeof T.poolStats> | undefined;
  for (let step = 0; step < 200; step++) {
    T.tidy(() => {
      const loss = forward(data.x).sub(data.y).square().mean();
      loss.backward();
      sgdStep(params, 0.1);
    });
    if (step % 50 === 49) await T.sync();
    if (step === 10) after = T.poolStats();
  }
  await T.sync();
  const end = T.poolStats();
  assert.equal(end.liveBuffers, after!.liveBuffers, 'live buffers grew');
  assert.equal(end.liveBytes, after!.liveBytes, 'live bytes grew');
  assert.equal(end.created, after!.created, 'buffers were created after warm-up instead of reused');
  for (const p of params) p.dispose();
  data.x.dispose();
  data.y.dispose();
});

test('an MLP learns a synthetic regression task below a loss bound', async () => {
  await T.initGpu();
  const { params, forward } = mlp(3);
  const test = batch(256, 99);
  const lossOf = (d: { x: T.Tensor; y: T.Tensor }) => T.tidy(() => forward(d.x).sub(d.y).square().mean());
  const initial = await lossOf(test).item();
  for (let step = 0; step < 300; step++) {
    const d = batch(64, 1000 + step);
    T.tidy(() => {
      forward(d.x).sub(d.y).square().mean().backward();
      sgdStep(params, 0.3);
    });
    d.x.dispose();
    d.y.dispose();
  }
  const final = await lossOf(test).item();
  assert.ok(final < 0.01 && final < initial / 5, `test MSE ${final} (initial ${initial}) should fall below 0.01`);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as T from '../src/tensor/index.js';
import * as nn from '../src/tensor/reference/nn.js';
import * as core from '../src/tensor/reference/core.js';
import { arbShape, checkOp, property, randomInts, randomNd } from '../src/testing/property.js';

const arbEmb = fc.tuple(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 7 }), arbShape({ minRank: 1, maxRank: 2, maxDim: 6 }), fc.integer({ min: 1, max: 1e6 }));

test('embedding gathers rows; gradient (deterministic CSR scatter-add, repeated ids) matches finite differences', async () => {
  await property(arbEmb, async ([V, D, idShape, seed]) => {
    await checkOp({
      name: 'embedding', inputs: [randomNd([V, D], seed), randomInts(idShape, seed + 1, 0, V)], dtypes: ['f32', 'i32'],
      gpu: ([w, ids]) => T.embedding(w, ids), ref: ([w, ids]) => nn.embedding(w, ids), atol: 0, rtol: 0, grad: [0],
    });
  }, { numRuns: 10 });
});

test('embedding gradient without a host copy of the ids (atomic fallback) matches too', async () => {
  await property(arbEmb, async ([V, D, idShape, seed]) => {
    await checkOp({
      name: 'embedding atomic', inputs: [randomNd([V, D], seed), randomInts(idShape, seed + 1, 0, V)], dtypes: ['f32', 'i32'],
      gpu: ([w, ids]) => T.embedding(w, ids.reshape([-1]).reshape(idShape)), ref: ([w, ids]) => nn.embedding(w, ids), atol: 0, rtol: 0, grad: [0],
    });
  }, { numRuns: 6 });
});

test('the deterministic embedding gradient sums each row in position order (bitwise reproducible)', async () => {
  await T.initGpu();
  const V = 3, D = 5, n = 400;
  const ids = T.Tensor.from(Int32Array.from({ length: n }, (_, i) => (i * 7) % V));
  const w = T.param(T.Tensor.from(new Float32Array(V * D), [V, D]));
  const seed = T.Tensor.from(Float32Array.from({ length: n * D }, (_, i) => Math.sin(i) * 1e3), [n, D]);
  const grads: number[][] = [];
  for (let k = 0; k < 3; k++) {
    T.embedding(w, ids).backward(seed);
    grads.push(Array.from(await w.grad!.data()));
    T.zeroGrad([w]);
  }
  assert.deepEqual(grads[1], grads[0]);
  assert.deepEqual(grads[2], grads[0]);
  // Same order as a sequential f32 loop over positions.
  const sd = await seed.data(), want = new Float32Array(V * D);
  for (let r = 0; r < n; r++) for (let d = 0; d < D; d++) want[((r * 7) % V) * D + d] = Math.fround(want[((r * 7) % V) * D + d] + sd[r * D + d]);
  assert.deepEqual(grads[0], Array.from(want));
});

test('embedding of a [V, a, b] table and indexSelect along axes 0 and 1, with gradients', async () => {
  await checkOp({ name: 'embedding 3d', inputs: [randomNd([5, 2, 3], 1), randomInts([4], 2, 0, 5)], dtypes: ['f32', 'i32'], gpu: ([w, i]) => T.embedding(w, i), ref: ([w, i]) => nn.embedding(w, i), grad: [0] });
  const x = randomNd([4, 6, 3], 3);
  await checkOp({ name: 'indexSelect 0', inputs: [x, randomInts([5], 4, 0, 4)], dtypes: ['f32', 'i32'], gpu: ([a, i]) => T.indexSelect(a, 0, i), ref: ([a, i]) => nn.embedding(a, i), grad: [0] });
  await checkOp({
    name: 'indexSelect 1', inputs: [x, randomInts([7], 5, 0, 6)], dtypes: ['f32', 'i32'], gpu: ([a, i]) => T.indexSelect(a, 1, i),
    ref: ([a, i]) => core.permute(nn.embedding(core.permute(a, [1, 0, 2]), i), [1, 0, 2]), grad: [0],
  });
});

test('takeAlong / gatherRows pick one element per row, gradient scatters back', async () => {
  await property(fc.tuple(arbShape({ minRank: 1, maxRank: 2, maxDim: 6 }), fc.integer({ min: 1, max: 11 }), fc.integer({ min: 1, max: 1e6 })), async ([lead, V, seed]) => {
    await checkOp({
      name: 'takeAlong', inputs: [randomNd([...lead, V], seed), randomInts(lead, seed + 1, 0, V)], dtypes: ['f32', 'i32'],
      gpu: ([x, i]) => T.takeAlong(x, i), ref: ([x, i]) => nn.takeAlong(x, i), atol: 0, rtol: 0, grad: [0],
    });
  }, { numRuns: 8 });
  await checkOp({ name: 'gatherRows+sum', inputs: [randomNd([4, 5], 9), randomInts([4], 10, 0, 5)], dtypes: ['f32', 'i32'], gpu: ([x, i]) => T.gatherRows(x, i).sum(), ref: ([x, i]) => core.sum(nn.takeAlong(x, i), [0]), grad: [0] });
});

test('out-of-range indices: a clear error with a host copy, a clamped (never out-of-bounds) read without', async () => {
  await T.initGpu();
  const w = T.Tensor.from([1, 2, 3, 4, 5, 6], [3, 2]);
  assert.throws(() => T.embedding(w, T.Tensor.from(new Int32Array([0, 3]))), /embedding: index 3 at position 1 is out of range for weight \[3,2\] \(valid 0\.\.2\)/);
  assert.throws(() => T.indexSelect(w, 1, T.Tensor.from(new Int32Array([-1]))), /indexSelect: index -1 at position 0 is out of range for axis 1 of \[3,2\]/);
  assert.throws(() => T.takeAlong(w, T.Tensor.from(new Int32Array([0, 2, 1]))), /takeAlong: index 2 at position 1 is out of range for last axis of \[3,2\]/);
  assert.throws(() => T.embedding(w, T.Tensor.from([0, 1])), /embedding: indices \[2\] must be i32, got f32/);
  assert.throws(() => T.takeAlong(w, T.Tensor.from(new Int32Array([0, 1]))), /takeAlong: indices \[2\] must match the leading dims of \[3,2\]/);
  const noHost = T.Tensor.from(new Int32Array([7, -4])).reshape([2]);
  assert.deepEqual(Array.from(await T.embedding(w, noHost).data()), [5, 6, 1, 2]);
});

test('embedding of an f16 table keeps f16; crossEntropy reads f16 logits', async () => {
  const g = await T.initGpu();
  if (!g.hasF16) return;
  const w = T.Tensor.from([1, 2, 3, 4, 5, 6], [3, 2], 'f16');
  const e = T.embedding(w, T.Tensor.from(new Int32Array([2, 0])));
  assert.equal(e.dtype, 'f16');
  assert.deepEqual(Array.from(await e.data()), [5, 6, 1, 2]);
  await checkOp({
    name: 'crossEntropy f16', inputs: [randomNd([4, 9], 3, -2, 2).map((v) => Math.round(v * 64) / 64), randomInts([4], 4, 0, 9)], dtypes: ['f16', 'i32'],
    gpu: ([x, t]) => T.crossEntropy(x, t), ref: ([x, t]) => nn.crossEntropy(x, t), atol: 1e-5, grad: [0],
  });
});

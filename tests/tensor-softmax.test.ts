import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as T from '../src/tensor/index.js';
import * as nn from '../src/tensor/reference/nn.js';
import * as core from '../src/tensor/reference/core.js';
import { arbShape, checkOp, property, randomNd } from '../src/testing/property.js';

for (const name of ['softmax', 'logSoftmax'] as const) {
  test(`${name}: last axis matches the float64 reference, gradient matches finite differences`, async () => {
    await property(fc.tuple(arbShape({ minRank: 1, maxRank: 3, maxDim: 9 }), fc.integer({ min: 1, max: 1e6 })), async ([shape, seed]) => {
      await checkOp({ name, inputs: [randomNd(shape, seed, -4, 4)], gpu: ([x]) => T[name](x), ref: ([x]) => nn[name](x), atol: 2e-6, rtol: 2e-5, grad: true });
    }, { numRuns: 10 });
  });
}

test('softmax over a wide row (many lanes per thread) and a large dynamic range', async () => {
  await checkOp({ name: 'softmax wide', inputs: [randomNd([3, 1001], 3, -30, 30)], gpu: ([x]) => T.softmax(x), ref: ([x]) => nn.softmax(x), atol: 1e-6, rtol: 1e-4, grad: true });
  await checkOp({ name: 'logSoftmax wide', inputs: [randomNd([2, 777], 4, -30, 30)], gpu: ([x]) => T.logSoftmax(x), ref: ([x]) => nn.logSoftmax(x), atol: 2e-5, rtol: 1e-5, grad: true });
});

test('softmax over a non-last axis and of a strided view', async () => {
  const x = randomNd([4, 5, 3], 7);
  await checkOp({ name: 'softmax axis 1', inputs: [x], gpu: ([a]) => T.softmax(a, 1), ref: ([a]) => core.permute(nn.softmax(core.permute(a, [0, 2, 1])), [0, 2, 1]), grad: true });
  await checkOp({ name: 'logSoftmax(transpose)', inputs: [x], gpu: ([a]) => T.logSoftmax(a.transpose()), ref: ([a]) => nn.logSoftmax(core.transpose(a)), grad: true });
});

test('masked (-inf) entries get zero probability; fully masked rows give zeros, not NaN', async () => {
  await T.initGpu();
  const x = T.Tensor.from([0, -Infinity, 1, -Infinity, -Infinity, -Infinity], [2, 3]);
  const y = Array.from(await T.softmax(x).data());
  const e = Math.exp(1) / (1 + Math.exp(1));
  assert.ok(Math.abs(y[0] - (1 - e)) < 1e-6 && y[1] === 0 && Math.abs(y[2] - e) < 1e-6, `got ${y}`);
  assert.deepEqual(y.slice(3), [0, 0, 0]);
});

test('softmax errors name the op', async () => {
  await T.initGpu();
  assert.throws(() => T.softmax(T.Tensor.scalar(1)), /softmax: needs at least one axis/);
  assert.throws(() => T.softmax(T.Tensor.from(new Int32Array([1, 2]))), /softmax: integer input \[2\]/);
  const x = T.Tensor.from([1, 2]);
  x.dispose();
  assert.throws(() => T.logSoftmax(x), /logSoftmax: tensor .* used after dispose/);
});

test('chain methods delegate to the nn ops', async () => {
  await T.initGpu();
  const x = T.Tensor.from([1, 2, 3, 0, -1, 5], [2, 3]), t = T.Tensor.from(new Int32Array([2, 0]));
  const same = async (a: T.Tensor, b: T.Tensor) => assert.deepEqual(Array.from(await a.data()), Array.from(await b.data()));
  await same(x.softmax(), T.softmax(x));
  await same(x.logSoftmax(0), T.logSoftmax(x, 0));
  await same(x.crossEntropy(t, { reduction: 'none' }), T.crossEntropy(x, t, { reduction: 'none' }));
  await same(x.tokenLogProbs(t), T.tokenLogProbs(x, t));
  await same(x.takeAlong(t), T.takeAlong(x, t));
  const w = T.Tensor.from([1, 2, 3]);
  await same(x.rmsNorm(w), T.rmsNorm(x, w));
  await same(x.layerNorm(w, w, 1e-3), T.layerNorm(x, w, w, 1e-3));
  const q = x.reshape([1, 1, 3, 2]);
  await same(q.rope({ start: 3 }), T.rope(q, { positions: 3 }));
});

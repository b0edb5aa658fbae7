import { test } from 'node:test';
import { Float16Array } from '@petamoriken/float16';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as T from '../src/tensor/index.js';
import * as nn from '../src/tensor/reference/nn.js';
import * as core from '../src/tensor/reference/core.js';
import { arbShape, checkOp, property, randomNd } from '../src/testing/property.js';

const arbNorm = fc.tuple(arbShape({ minRank: 1, maxRank: 3, maxDim: 9 }), fc.integer({ min: 1, max: 1e6 }));

test('rmsNorm matches the reference; gradients for x and weight match finite differences', async () => {
  await property(arbNorm, async ([shape, seed]) => {
    const D = shape[shape.length - 1];
    await checkOp({
      name: 'rmsNorm', inputs: [randomNd(shape, seed, -2, 2), randomNd([D], seed + 1, 0.5, 1.5)],
      gpu: ([x, w]) => T.rmsNorm(x, w, 1e-5), ref: ([x, w]) => nn.rmsNorm(x, w, 1e-5), atol: 1e-5, rtol: 1e-4, grad: true,
    });
  }, { numRuns: 10 });
});

test('layerNorm (with and without bias) matches the reference; gradients for x, weight, bias', async () => {
  await property(fc.tuple(arbNorm, fc.boolean()), async ([[shape, seed], withBias]) => {
    const D = shape[shape.length - 1];
    const inputs = [randomNd(shape, seed, -2, 2), randomNd([D], seed + 1, 0.5, 1.5), ...(withBias ? [randomNd([D], seed + 2)] : [])];
    await checkOp({
      name: `layerNorm${withBias ? '+bias' : ''}`, inputs,
      gpu: ([x, w, b]) => T.layerNorm(x, w, b, 1e-5), ref: ([x, w, b]) => nn.layerNorm(x, w, b, 1e-5), atol: 2e-5, rtol: 1e-4, grad: true, gradAtol: 5e-3,
    });
  }, { numRuns: 10 });
});

test('norms over many rows (several dweight blocks) and wide rows, and of a strided view', async () => {
  const x = randomNd([300, 7], 3, -2, 2), w = randomNd([7], 4, 0.5, 1.5), b = randomNd([7], 5);
  await checkOp({ name: 'rmsNorm many rows', inputs: [x, w], gpu: ([a, c]) => T.rmsNorm(a, c), ref: ([a, c]) => nn.rmsNorm(a, c, 1e-5), atol: 1e-5, rtol: 1e-4, grad: true, gradAtol: 1e-2 });
  await checkOp({ name: 'layerNorm many rows', inputs: [x, w, b], gpu: ([a, c, d]) => T.layerNorm(a, c, d), ref: ([a, c, d]) => nn.layerNorm(a, c, d, 1e-5), atol: 1e-5, rtol: 1e-4, grad: true, gradAtol: 1e-2 });
  const wide = randomNd([3, 500], 6, -2, 2).map((v) => v + 10); // large mean: two-pass variance matters
  await checkOp({ name: 'layerNorm wide', inputs: [wide, randomNd([500], 7, 0.5, 1.5)], gpu: ([a, c]) => T.layerNorm(a, c), ref: ([a, c]) => nn.layerNorm(a, c, undefined, 1e-5), atol: 1e-4, rtol: 1e-3, grad: true, gradAtol: 1e-2 });
  const sq = randomNd([5, 6], 8);
  await checkOp({ name: 'rmsNorm(transpose)', inputs: [sq, randomNd([5], 9)], gpu: ([a, c]) => T.rmsNorm(a.transpose(), c), ref: ([a, c]) => nn.rmsNorm(core.transpose(a), c, 1e-5), atol: 1e-5, rtol: 1e-4, grad: true });
});

test('norm errors name the op and shapes', async () => {
  await T.initGpu();
  const x = T.Tensor.from(new Float32Array(6), [2, 3]);
  assert.throws(() => T.rmsNorm(x, T.Tensor.from([1, 1])), /rmsNorm: weight \[2\] must be \[3\] for input \[2,3\]/);
  assert.throws(() => T.layerNorm(x, T.Tensor.from([1, 1, 1]), T.Tensor.from([1])), /layerNorm: bias \[1\] must be \[3\]/);
});

test('f16 inputs (activations and weights stored as half) are read and computed in f32', async () => {
  const g = await T.initGpu();
  if (!g.hasF16) return;
  const h = (x: ReturnType<typeof randomNd>) => x.map((v) => new Float32Array(new Float16Array([v]))[0]);
  const x = h(randomNd([5, 12], 1, -2, 2)), w = h(randomNd([12], 2, 0.5, 1.5));
  await checkOp({ name: 'rmsNorm f16', inputs: [x, w], dtypes: ['f16', 'f16'], gpu: ([a, b]) => T.rmsNorm(a, b), ref: ([a, b]) => nn.rmsNorm(a, b, 1e-5), atol: 1e-5, rtol: 1e-4, grad: true });
  await checkOp({ name: 'layerNorm f16 x', inputs: [x, w, w], dtypes: ['f16', 'f32', 'f32'], gpu: ([a, b, c]) => T.layerNorm(a, b, c), ref: ([a, b, c]) => nn.layerNorm(a, b, c, 1e-5), atol: 1e-5, rtol: 1e-4 });
  await checkOp({ name: 'softmax f16', inputs: [x], dtypes: ['f16'], gpu: ([a]) => T.softmax(a), ref: ([a]) => nn.softmax(a), atol: 1e-6, rtol: 1e-5, grad: true });
  await checkOp({ name: 'rope f16', inputs: [x.reshape([1, 5, 2, 6])], dtypes: ['f16'], gpu: ([a]) => T.rope(a, { positions: 2 }), ref: ([a]) => nn.rope(a, 2, 10000, 'interleaved'), atol: 1e-5, grad: true });
});

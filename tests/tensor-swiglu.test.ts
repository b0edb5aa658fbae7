import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as T from '../src/tensor/index.js';
import * as nn from '../src/tensor/reference/nn.js';
import { arbShape, checkOp, property, randomNd } from '../src/testing/property.js';

test('swiglu on packed [gate | up] matches the float64 reference; gradient matches finite differences', async () => {
  // Odd F and row counts (the kernel walks 8 outputs per thread across row ends).
  await property(fc.tuple(arbShape({ minRank: 1, maxRank: 3, maxDim: 9 }), fc.integer({ min: 1, max: 1e6 })), async ([shape, seed]) => {
    const packed = [...shape.slice(0, -1), 2 * shape[shape.length - 1]];
    await checkOp({
      name: 'swiglu', inputs: [randomNd(packed, seed, -4, 4)],
      gpu: ([y]) => T.swiglu(y), ref: ([y]) => nn.swiglu(y), atol: 1e-5, rtol: 1e-4, grad: true,
    });
  }, { numRuns: 12 });
});

test('swiglu equals silu(gate) * up of the unfused ops, also on a strided view, forward and backward', async () => {
  await T.initGpu();
  const rows = 37, F = 45;
  const base = T.Tensor.from(randomNd([2 * F + 3, rows], 5, -3, 3).data, [2 * F + 3, rows]);
  const y = T.slice(base.transpose(), 1, 1, 2 * F + 1); // [rows, 2F], non-contiguous
  y.requiresGrad = true;
  const fused = T.swiglu(y);
  const plain = T.mul(T.silu(T.slice(y, 1, 0, F)), T.slice(y, 1, F, 2 * F));
  const a = await fused.data(), b = await plain.data();
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= 1e-6 * (1 + Math.abs(b[i])), `forward ${i}: ${a[i]} vs ${b[i]}`);
  const seed = T.Tensor.from(randomNd([rows, F], 9).data, [rows, F]);
  fused.backward(seed);
  const g1 = await y.grad!.data();
  y.grad!.dispose(); y.grad = undefined;
  plain.backward(seed);
  const g2 = await y.grad!.data();
  for (let i = 0; i < g1.length; i++) assert.ok(Math.abs(g1[i] - g2[i]) <= 1e-5 * (1 + Math.abs(g2[i])), `grad ${i}: ${g1[i]} vs ${g2[i]}`);
  assert.throws(() => T.swiglu(T.zeros([3, 5])), /last dim of \[3,5\] must be even/);
  for (const t of [base, y, fused, plain, seed, y.grad!]) t.dispose();
});

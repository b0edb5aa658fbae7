import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as T from '../src/tensor/index.js';
import * as ref from '../src/tensor/reference/core.js';
import { arbBroadcastPair, arbShape, checkOp, property, randomNd } from '../src/testing/property.js';

const unaryDomains: Record<string, [number, number]> = {
  neg: [-2, 2], exp: [-3, 3], log: [0.1, 3], sqrt: [0.1, 3], rsqrt: [0.2, 3], tanh: [-3, 3], sigmoid: [-4, 4],
  relu: [-2, 2], geluTanh: [-3, 3], gelu: [-3, 3], silu: [-4, 4], abs: [-2, 2], square: [-2, 2],
};

for (const [name, [lo, hi]] of Object.entries(unaryDomains)) {
  test(`${name}: forward matches float64 reference and gradient matches finite differences`, async () => {
    const op = (T as unknown as Record<string, (x: T.Tensor) => T.Tensor>)[name];
    await property(fc.tuple(arbShape({ maxRank: 3, maxDim: 11 }), fc.integer({ min: 1, max: 1e6 })), async ([shape, seed]) => {
      await checkOp({ name, inputs: [randomNd(shape, seed, lo, hi)], gpu: ([x]) => op(x), ref: ([x]) => ref.unary(name, x), atol: 1e-5, rtol: 2e-5, grad: true });
    }, { numRuns: 6 });
  });
}

for (const name of ['add', 'sub', 'mul', 'div', 'maximum', 'minimum', 'pow']) {
  test(`${name}: broadcasting forward and gradients (summed over broadcast dims)`, async () => {
    const op = (T as unknown as Record<string, (a: T.Tensor, b: T.Tensor) => T.Tensor>)[name];
    await property(fc.tuple(arbBroadcastPair(), fc.boolean(), fc.integer({ min: 1, max: 1e6 })), async ([[sa, sb], swap, seed]) => {
      const [s0, s1] = swap ? [sb, sa] : [sa, sb];
      const lo = name === 'pow' || name === 'div' ? 0.5 : -2;
      await checkOp({ name, inputs: [randomNd(s0, seed, lo, 2), randomNd(s1, seed + 1, lo, 2)], gpu: ([a, b]) => op(a, b), ref: ([a, b]) => ref.binary(name, a, b), grad: true });
    }, { numRuns: 8 });
  });
}

test('comparisons return 0/1 masks with broadcasting', async () => {
  for (const name of ['lt', 'le', 'gt', 'ge', 'eq', 'ne']) {
    const op = (T as unknown as Record<string, (a: T.Tensor, b: T.Tensor) => T.Tensor>)[name];
    const a = randomNd([3, 5], 3, -1, 1), b = randomNd([5], 4, -1, 1);
    b.data[2] = a.data[2]; // an exact tie
    await checkOp({ name, inputs: [a, b], gpu: ([x, y]) => op(x, y), ref: ([x, y]) => ref.binary(name, x, y), atol: 0, rtol: 0 });
  }
});

test('where selects with broadcasting and routes gradients to the chosen side', async () => {
  await property(fc.tuple(arbBroadcastPair(), fc.integer({ min: 1, max: 1e6 })), async ([[sa, sb], seed]) => {
    const cond = randomNd(sb, seed, 0, 1).map((v) => +(v > 0.5));
    await checkOp({ name: 'where', inputs: [cond, randomNd(sa, seed + 1), randomNd(sb, seed + 2)], gpu: ([c, a, b]) => T.where(c, a, b), ref: ([c, a, b]) => ref.where(c, a, b), grad: [1, 2] });
  }, { numRuns: 8 });
});

test('clamp, scalar arithmetic and cast', async () => {
  const x = randomNd([4, 7], 5, -2, 2);
  await checkOp({ name: 'clamp', inputs: [x], gpu: ([a]) => T.clamp(a, -0.5, 0.7), ref: ([a]) => ref.clamp(a, -0.5, 0.7), grad: true });
  await checkOp({ name: 'scalar affine', inputs: [x], gpu: ([a]) => a.mul(3).add(-1).div(2).sub(0.25), ref: ([a]) => a.map((v) => (v * 3 - 1) / 2 - 0.25), grad: true });
  await checkOp({ name: 'pow scalar', inputs: [x.map(Math.abs)], gpu: ([a]) => T.pow(a, 3), ref: ([a]) => a.map((v) => v ** 3), grad: true });
  const ints = await T.cast(T.Tensor.from([1.4, -2.6, 3], [3]), 'i32').data();
  assert.deepEqual(Array.from(ints), [1, -3, 3]);
});

test('elementwise ops read strided views (transposed, sliced, expanded) without copying first', async () => {
  const x = randomNd([5, 6], 9);
  await checkOp({ name: 'exp(transpose)', inputs: [x], gpu: ([a]) => a.transpose().exp(), ref: ([a]) => ref.unary('exp', ref.transpose(a)), grad: true });
  await checkOp({ name: 'slice+mul', inputs: [x], gpu: ([a]) => a.slice(1, 2, 5).mul(a.slice(1, 0, 3)), ref: ([a]) => ref.binary('mul', ref.slice(a, 1, 2, 5), ref.slice(a, 1, 0, 3)), grad: true });
});

test('bad input names the op and the shapes', async () => {
  await T.initGpu();
  const a = T.Tensor.from([1, 2, 3], [3]), b = T.Tensor.from([1, 2], [2]);
  assert.throws(() => T.add(a, b), /add: shapes \[3\] and \[2\] do not broadcast/);
  a.dispose();
  assert.throws(() => T.exp(a), /used after dispose/);
  b.dispose();
});

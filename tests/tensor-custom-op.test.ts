import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as T from '../src/tensor/index.js';
import { arbShape, checkOp, Nd, property, randomInts, randomNd } from '../src/testing/property.js';
import { defineSwish } from '../examples/custom-op.js';

test('the example op (swish with beta) passes checkOp over random odd shapes', async () => {
  const swish = await defineSwish();
  await property(fc.tuple(arbShape({ maxRank: 3, maxDim: 11 }), fc.double({ min: 0.1, max: 3, noNaN: true }), fc.integer({ min: 1, max: 1e6 })), async ([shape, beta, seed]) => {
    const b = Math.fround(beta);
    await checkOp({ name: 'swishBeta', inputs: [randomNd(shape, seed, -3, 3)], gpu: ([x]) => swish(x, [b]), ref: (xs) => swish.reference(xs, [b]), atol: 1e-5, rtol: 1e-5, grad: true });
  }, { numRuns: 8 });
});

test('a two-input op with a backward composed of built-in ops, on strided inputs', async () => {
  // Squared-ReLU gate: y = relu(a)^2 * b.
  const sqReluGate = await T.defineOp({
    name: 'sqReluGate', inputs: 2,
    forward: { wgsl: `fn kernel(i: u32) { let r = max(in0[i], 0.0); out[i] = r * r * in1[i]; }` },
    backward: ([a, b], _y, gy) => [T.mul(T.mul(gy, b), T.relu(a).mul(2)), T.mul(gy, T.square(T.relu(a)))],
    reference: ([a, b]) => new Nd([...a.shape], a.data.map((v, i) => Math.max(v, 0) ** 2 * b.data[i])),
  });
  const x = randomNd([4, 6], 3, -1, 1), y = randomNd([6, 4], 4);
  const yt = new Nd([4, 6], Float64Array.from({ length: 24 }, (_, i) => y.data[(i % 6) * 4 + Math.floor(i / 6)]));
  await checkOp({ name: 'sqReluGate', inputs: [x, y], gpu: ([a, b]) => sqReluGate([a, b.transpose()]), ref: ([a]) => sqReluGate.reference([a, yt]), grad: [0] });
  await checkOp({ name: 'sqReluGate both', inputs: [x, yt], gpu: (xs) => sqReluGate(xs), ref: (xs) => sqReluGate.reference(xs), grad: true });
});

test('an op with an i32 input, a custom output shape and thread count (row gather)', async () => {
  const pick = await T.defineOp({
    name: 'pickRow', inputs: 2, inputDtypes: ['f32', 'i32'],
    outputShape: ([x, idx]) => [idx[0], x[1]],
    forward: { wgsl: `fn kernel(i: u32) { let d = dim(0u, 1u); let r = i / d; out[i] = in0[u32(in1[r]) * d + i % d]; }` },
    backward: [{
      // One thread per row of x: sum the gradient rows that picked it (deterministic).
      threads: ([x]) => x[0],
      wgsl: `fn kernel(i: u32) {
  let d = dim(0u, 1u);
  for (var c = 0u; c < d; c++) {
    var acc = 0.0;
    for (var r = 0u; r < numel(1u); r++) { if (u32(in1[r]) == i) { acc += gy[r * d + c]; } }
    out[i * d + c] = acc;
  }
}`,
    }, null],
    reference: ([x, idx]) => {
      const d = x.shape[1];
      return new Nd([idx.size, d], Float64Array.from({ length: idx.size * d }, (_, i) => x.data[idx.data[Math.floor(i / d)] * d + (i % d)]));
    },
  });
  await checkOp({ name: 'pickRow', inputs: [randomNd([5, 3], 1), randomInts([7], 2, 0, 5)], dtypes: ['f32', 'i32'], gpu: (xs) => pick(xs), ref: (xs) => pick.reference(xs), grad: [0] });
});

test('a WGSL compile error throws at definition, naming the op, the kernel and the user line', async () => {
  await assert.rejects(
    T.defineOp({ name: 'broken', inputs: 1, forward: { wgsl: `fn kernel(i: u32) {\n  out[i] = in0[i] * undefined_thing;\n}` }, reference: ([x]) => x }),
    /defineOp "broken": the forward WGSL does not compile:\n\s+line 2:\d+: .*undefined_thing/,
  );
  await assert.rejects(
    T.defineOp({ name: 'brokenGrad', inputs: 1, forward: { wgsl: 'fn kernel(i: u32) { out[i] = in0[i]; }' }, backward: [{ wgsl: 'fn kernel(i: u32) { out[i] = gy[i] +; }' }], reference: ([x]) => x }),
    /defineOp "brokenGrad": the backward\[0\] WGSL does not compile/,
  );
});

test('bad calls name the op', async () => {
  const swish = await defineSwish();
  const x = T.Tensor.from([1, 2]);
  assert.throws(() => swish(x), /swishBeta: expects 1 param\(s\), got 0/);
  assert.throws(() => swish([x, x], [1]), /swishBeta: expects 1 input\(s\), got 2/);
  assert.throws(() => swish(T.Tensor.from(new Int32Array([1])), [1]), /swishBeta: input 0 \[1\] must be f32, got i32/);
  x.dispose();
  assert.throws(() => swish(x, [1]), /swishBeta: tensor .* used after dispose/);
  const fwdOnly = await T.defineOp({ name: 'double', inputs: 1, forward: { wgsl: 'fn kernel(i: u32) { out[i] = 2.0 * in0[i]; }' }, reference: ([a]) => a.map((v) => 2 * v) });
  const p = T.param(T.Tensor.from([1, 2]));
  assert.throws(() => fwdOnly(p), /double: input 0 \[2\] requires grad but the op defines no backward for it/);
  assert.deepEqual(Array.from(await T.noGrad(() => fwdOnly(p)).data()), [2, 4]);
});

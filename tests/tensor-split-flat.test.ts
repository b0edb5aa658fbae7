// Elementwise ops, copies, matmul and the optimizers over tensors bigger than one storage
// binding, with the engine told the limit is 16 KiB (setBindingLimit) so a few thousand
// elements take the paths a 0.5B model's embedding takes at 128 MiB: element ranges for
// elementwise work and the optimizers, operand ranges for matmul. Each case asserts that a
// tensor is over the limit; values and gradients against float64 over random shapes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as T from '../src/tensor/index.js';
import * as nn from '../src/tensor/reference/nn.js';
import * as core from '../src/tensor/reference/core.js';
import { broadcastMap } from '../src/tensor/reference/nd.js';
import { setBindingLimit } from '../src/tensor/binding.js';
import { checkOp, property, randomNd } from '../src/testing/property.js';

const LIMIT = 16 * 1024;
await T.initGpu();
setBindingLimit(LIMIT);
const over = (shape: number[]) => assert.ok(shape.reduce((a, b) => a * b, 1) * 4 > LIMIT, `${shape} is not above the lowered limit`);

test('elementwise with broadcasting, and copies of permuted views, beyond one binding match float64, gradients too', async () => {
  await property(fc.tuple(fc.integer({ min: 1, max: 50 }), fc.integer({ min: 1, max: 3000 }), fc.integer({ min: 1, max: 1e6 })), async ([n, extra, seed]) => {
    const rows = Math.ceil(LIMIT / 4 / n) + extra;
    over([rows, n]);
    const a = randomNd([rows, n], seed, -2, 2), b = randomNd([n], seed + 1, 0.5, 2);
    await checkOp({ name: 'x * w + x', inputs: [a, b], gpu: ([x, w]) => T.add(T.mul(x, w), x), ref: ([x, w]) => broadcastMap([x, w], (p, q) => p * q + p), atol: 1e-6, grad: true, maxFdCoords: 40 });
    await checkOp({ name: 'contiguous(transpose)', inputs: [a], gpu: ([x]) => T.contiguous(x.transpose()), ref: ([x]) => core.transpose(x), atol: 0, grad: true, maxFdCoords: 40 });
  }, { numRuns: 8 });
});

test('matmul with operands and output beyond one binding matches float64, gradients too', async () => {
  await property(fc.tuple(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 600 }), fc.constantFrom('a', 'b', 'out'), fc.integer({ min: 1, max: 1e6 })), async ([k, small, extra, big, seed]) => {
    // One of A [m, k], B [k, n] or the output [m, n] is the big one.
    const m = big === 'a' ? Math.ceil(LIMIT / 4 / k) + extra : big === 'out' ? Math.ceil(LIMIT / 4 / small) + extra : small;
    const n = big === 'b' ? Math.ceil(LIMIT / 4 / k) + extra : small;
    over(big === 'a' ? [m, k] : big === 'b' ? [k, n] : [m, n]);
    await checkOp({ name: `matmul ${m}x${k}x${n}`, inputs: [randomNd([m, k], seed), randomNd([k, n], seed + 1)], gpu: ([x, y]) => T.matmul(x, y), ref: ([x, y]) => core.matmul(x, y), atol: 1e-5, rtol: 1e-4, grad: true, maxFdCoords: 40 });
  }, { numRuns: 8 });
});

test('AdamW, SGD and clipGradNorm over parameters beyond one binding match float64 over 3 steps', async () => {
  await property(fc.tuple(fc.integer({ min: 1, max: 9000 }), fc.integer({ min: 1, max: 200 }), fc.integer({ min: 1, max: 1e6 })), async ([extra, small, seed]) => {
    const shapes = [[LIMIT / 4 + extra], [small]];
    over(shapes[0]);
    const init = shapes.map((s, i) => randomNd(s, seed + i));
    const grads = (step: number) => shapes.map((s, i) => randomNd(s, seed * 31 + step * 7 + i, -2, 2));
    for (const kind of ['adamw', 'sgd'] as const) {
      const params = init.map((x, i) => T.param(T.Tensor.from(x.data, x.shape), `p${i}`));
      const opt = kind === 'adamw' ? new T.AdamW(params, { lr: 0.01, weightDecay: 0.1, betas: [0.9, 0.95], eps: 1e-8 }) : new T.SGD(params, { lr: 0.1, momentum: 0.9, nesterov: false, weightDecay: 0.01 });
      const ref = init.map((x) => ({ p: x.data.slice(), m: new Float64Array(x.size), v: new Float64Array(x.size) }));
      for (let step = 0; step < 3; step++) {
        const gs = grads(step);
        params.forEach((p, i) => { p.grad?.dispose(); p.grad = T.keep(T.Tensor.from(gs[i].data, gs[i].shape)); });
        // Clip to half the global norm: the sum of squares is split by element range too.
        const norm2 = gs.reduce((s, g) => s + g.data.reduce((a, v) => a + v * v, 0), 0);
        const got = await T.clipGradNorm(params, Math.sqrt(norm2) / 2).item();
        assert.ok(Math.abs(got - Math.sqrt(norm2)) <= 1e-4 * Math.sqrt(norm2), `global norm ${got} vs ${Math.sqrt(norm2)}`);
        const scaled = gs.map((g) => g.data.map((v) => v / 2));
        ref.forEach((r, i) => kind === 'adamw'
          ? nn.adamwStep(r.p, scaled[i], r.m, r.v, step + 1, { lr: 0.01, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 })
          : nn.sgdStep(r.p, scaled[i], r.m, step === 0, { lr: 0.1, momentum: 0.9, weightDecay: 0.01, nesterov: false }));
        opt.step();
      }
      for (let i = 0; i < params.length; i++) {
        const got = await params[i].data();
        for (let j = 0; j < got.length; j++) assert.ok(Math.abs(got[j] - ref[i].p[j]) <= 1e-5 * (1 + Math.abs(ref[i].p[j])), `${kind} param ${i}[${j}]: ${got[j]} vs ${ref[i].p[j]}`);
      }
      opt.dispose();
      params.forEach((p) => { p.grad?.dispose(); p.dispose(); });
    }
  }, { numRuns: 5 });
});

// Linear RoPE scaling (rope_scaling {"rope_type": "linear", "factor": f}: Gemma 3's global
// layers, some Llama/Qwen fine-tunes): the angle of pair k at position p is p * theta^(-2k/Dh) / f.
// Checked against a float64 rotation written here, forward and gradient.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as T from '../src/tensor/index.js';
import { checkOp, Nd, property, randomNd } from '../src/testing/property.js';

/** x [B, T, H, Dh] rotated rotate-half style at positions start + t, angle p * theta^(-2k/Dh) / factor, in float64. */
function scaledRope(x: Nd, start: number, theta: number, factor: number): Nd {
  const [B, Tn, H, Dh] = x.shape;
  const half = Dh / 2;
  const out = x.clone();
  for (let b = 0; b < B; b++)
    for (let t = 0; t < Tn; t++)
      for (let h = 0; h < H; h++)
        for (let k = 0; k < half; k++) {
          const a = ((start + t) * theta ** (-(2 * k) / Dh)) / factor;
          const base = ((b * Tn + t) * H + h) * Dh;
          const [v0, v1] = [x.data[base + k], x.data[base + k + half]];
          out.data[base + k] = v0 * Math.cos(a) - v1 * Math.sin(a);
          out.data[base + k + half] = v0 * Math.sin(a) + v1 * Math.cos(a);
        }
  return out;
}

test('rope with a linear factor matches the float64 rotation at positions / factor (forward and gradient)', async () => {
  const arb = fc.record({
    B: fc.integer({ min: 1, max: 2 }), Tn: fc.integer({ min: 1, max: 9 }), H: fc.integer({ min: 1, max: 3 }), half: fc.integer({ min: 1, max: 8 }),
    start: fc.integer({ min: 0, max: 40 }), factor: fc.constantFrom(2, 4, 8, 0.5, 3.5), theta: fc.constantFrom(10000, 1e6), seed: fc.integer({ min: 1, max: 1e6 }),
  });
  await property(arb, async (c) => {
    await checkOp({
      name: `rope factor ${JSON.stringify(c)}`, inputs: [randomNd([c.B, c.Tn, c.H, 2 * c.half], c.seed)],
      gpu: ([x]) => T.rope(x, { start: c.start, theta: c.theta, layout: 'half', factor: c.factor }),
      ref: ([x]) => scaledRope(x, c.start, c.theta, c.factor),
      // float32 angles (as transformers computes them) against float64 ones: |angle| <= 50, so ~1e-5.
      atol: 3e-5, rtol: 1e-4, grad: true,
    });
  }, { numRuns: 10 });
});

test('factor 2 at position 2p equals factor 1 at position p; a bad factor is refused', async () => {
  const x = T.Tensor.from(Float32Array.from({ length: 2 * 8 }, (_, i) => Math.sin(i + 1)), [1, 1, 2, 8]);
  for (const p of [1, 3, 10]) {
    const a = await T.rope(x, { start: 2 * p, layout: 'half', factor: 2 }).data();
    const b = await T.rope(x, { start: p, layout: 'half' }).data();
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-5, `p=${p} [${i}]: ${a[i]} vs ${b[i]}`);
  }
  assert.throws(() => T.rope(x, { factor: 0 }), /factor 0 must be a positive number/);
  x.dispose();
});

// Attention-score soft-capping (Gemma 2's attn_logit_softcapping: s -> c * tanh(s / c) after
// the scale, before the mask) in the fused kernels: forward, both backward passes and decode,
// against the float64 reference over random shapes, caps and windows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as T from '../src/tensor/index.js';
import { attention as refAttention } from '../src/tensor/reference/attention.js';
import { checkOp, property, randomNd } from '../src/testing/property.js';

const arbCase = fc.record({
  B: fc.integer({ min: 1, max: 2 }),
  heads: fc.constantFrom<[number, number]>([1, 1], [2, 1], [4, 2]),
  Tq: fc.integer({ min: 1, max: 33 }),
  extraKeys: fc.integer({ min: 0, max: 5 }),
  D: fc.constantFrom(4, 8, 16),
  cap: fc.constantFrom(0.5, 1, 3, 50),
  window: fc.option(fc.integer({ min: 1, max: 20 }), { nil: undefined }),
  seed: fc.integer({ min: 1, max: 1e6 }),
});

test('soft-capped attention forward and gradients match the float64 reference (random shapes, caps, windows)', async () => {
  await property(arbCase, async (c) => {
    const [H, Hkv] = c.heads;
    const Tk = c.Tq + c.extraKeys;
    // Inputs up to +-3 so that scores reach several times the smaller caps.
    const inputs = [randomNd([c.B, H, c.Tq, c.D], c.seed, -3, 3), randomNd([c.B, Hkv, Tk, c.D], c.seed + 1, -3, 3), randomNd([c.B, Hkv, Tk, c.D], c.seed + 2)];
    await checkOp({
      name: `attention(softcap, ${JSON.stringify(c)})`,
      inputs,
      gpu: ([q, k, v]) => T.attention(q, k, v, { causal: true, softcap: c.cap, window: c.window }),
      ref: ([q, k, v]) => refAttention(q, k, v, { causal: true, softcap: c.cap, window: c.window }).out,
      atol: 3e-5,
      grad: [0, 1, 2],
      seed: c.seed,
    });
  }, { numRuns: 16 });
});

test('the cap changes the result, and a cap far above the scores changes nothing', async () => {
  const q = randomNd([1, 2, 9, 8], 3, -3, 3), k = randomNd([1, 2, 9, 8], 4, -3, 3), v = randomNd([1, 2, 9, 8], 5);
  const [tq, tk, tv] = [q, k, v].map((x) => T.Tensor.from(Float32Array.from(x.data), x.shape));
  const plain = await T.attention(tq, tk, tv, { causal: true }).data();
  const capped = await T.attention(tq, tk, tv, { causal: true, softcap: 1 }).data();
  const loose = await T.attention(tq, tk, tv, { causal: true, softcap: 1e6 }).data();
  assert.ok(plain.some((x, i) => Math.abs(x - capped[i]) > 1e-2), 'cap 1 changes the output');
  plain.forEach((x, i) => assert.ok(Math.abs(x - loose[i]) < 1e-5, `cap 1e6 at ${i}: ${loose[i]} vs ${x}`));
  for (const t of [tq, tk, tv]) t.dispose();
});

test('soft-capped decode (flat path, split cache) and the no-subgroup kernels agree with the reference', async () => {
  for (const [B, H, Hkv, Tn, D, cap] of [[2, 4, 2, 11, 16, 2], [1, 2, 1, 700, 32, 5]] as const) {
    const q = randomNd([B, H, 1, D], 40 + Tn, -3, 3), k = randomNd([B, Hkv, Tn, D], 41 + Tn, -3, 3), v = randomNd([B, Hkv, Tn, D], 42 + Tn);
    await checkOp({
      name: `attentionDecode(softcap ${cap}, T ${Tn})`, inputs: [q, k, v], atol: 3e-5,
      gpu: ([a, b, c]) => T.attentionDecode(a, b, c, Tn, { softcap: cap }),
      ref: ([a, b, c]) => refAttention(a, b, c, { causal: true, softcap: cap }).out,
    });
  }
  const prev = process.env.NLA_ATTN_SUBGROUPS;
  process.env.NLA_ATTN_SUBGROUPS = '0';
  try {
    const q = randomNd([1, 4, 21, 8], 51, -3, 3), k = randomNd([1, 2, 21, 8], 52, -3, 3), v = randomNd([1, 2, 21, 8], 53);
    await checkOp({
      name: 'attention(softcap 2, window 5, no subgroups)', inputs: [q, k, v], grad: true, atol: 3e-5,
      gpu: ([a, b, c]) => T.attention(a, b, c, { causal: true, softcap: 2, window: 5 }),
      ref: ([a, b, c]) => refAttention(a, b, c, { causal: true, softcap: 2, window: 5 }).out,
    });
  } finally {
    if (prev === undefined) delete process.env.NLA_ATTN_SUBGROUPS;
    else process.env.NLA_ATTN_SUBGROUPS = prev;
  }
  const x = T.zeros([1, 1, 2, 4]);
  assert.throws(() => T.attention(x, x, x, { causal: true, softcap: 0 }), /softcap 0 must be a positive number/);
  x.dispose();
});

// Sliding-window attention (Mistral, Gemma 3 local layers): the fused kernels' forward, both
// backward passes and the KV-cache decode path against the float64 reference, over random
// shapes and windows (including windows of 1, and windows past the sequence).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as T from '../src/tensor/index.js';
import { permute } from '../src/tensor/reference/core.js';
import { attention as refAttention } from '../src/tensor/reference/attention.js';
import { checkOp, Nd, property, randomNd, rng } from '../src/testing/property.js';

const HEADS: [number, number][] = [[1, 1], [2, 1], [4, 2], [4, 1]];

const arbCase = fc.record({
  B: fc.integer({ min: 1, max: 2 }),
  heads: fc.constantFrom(...HEADS),
  Tq: fc.integer({ min: 1, max: 41 }),
  extraKeys: fc.integer({ min: 0, max: 9 }), // Tk = Tq + extra: queries are the newest positions (a prefix cache)
  D: fc.constantFrom(4, 8, 16),
  window: fc.integer({ min: 1, max: 48 }),
  mask: fc.constantFrom('none', 'keys', 'lengths'),
  permuted: fc.boolean(),
  seed: fc.integer({ min: 1, max: 1e6 }),
});

test('windowed attention forward and gradients match the float64 reference (random shapes, windows, masks)', async () => {
  await property(arbCase, async (c) => {
    const [H, Hkv] = c.heads;
    const Tk = c.Tq + c.extraKeys;
    const r = rng(c.seed + 5);
    const mask = new Nd([c.B, Tk], Float64Array.from({ length: c.B * Tk }, () => +(r() > 0.2)));
    const lengths = Array.from({ length: c.B }, () => Math.floor(r() * (Tk + 1)));
    const lay = (h: number, t: number) => (c.permuted ? [c.B, t, h, c.D] : [c.B, h, t, c.D]);
    const view = (x: T.Tensor) => (c.permuted ? x.permute([0, 2, 1, 3]) : x);
    const viewRef = (x: Nd) => (c.permuted ? permute(x, [0, 2, 1, 3]) : x);
    const inputs = [randomNd(lay(H, c.Tq), c.seed, -2, 2), randomNd(lay(Hkv, Tk), c.seed + 1, -2, 2), randomNd(lay(Hkv, Tk), c.seed + 2)];
    const lens = c.mask === 'lengths' ? lengths : undefined;
    await checkOp({
      name: `attention(window, ${JSON.stringify(c)})`,
      inputs: c.mask === 'keys' ? [...inputs, mask] : inputs,
      gpu: ([q, k, v, m]) => T.attention(view(q), view(k), view(v), { causal: true, window: c.window, keyMask: m, lengths: lens }),
      ref: ([q, k, v, m]) => refAttention(viewRef(q), viewRef(k), viewRef(v), { causal: true, window: c.window, keyMask: m, lengths: lens }).out,
      atol: 2e-5,
      grad: [0, 1, 2],
      seed: c.seed,
    });
  }, { numRuns: 20 });
});

test('the window changes the result (a window smaller than the sequence is not full attention)', async () => {
  const q = randomNd([1, 2, 12, 8], 3), k = randomNd([1, 2, 12, 8], 4), v = randomNd([1, 2, 12, 8], 5);
  const [tq, tk, tv] = [q, k, v].map((x) => T.Tensor.from(Float32Array.from(x.data), x.shape));
  const full = await T.attention(tq, tk, tv, { causal: true }).data();
  const w4 = await T.attention(tq, tk, tv, { causal: true, window: 4 }).data();
  const wBig = await T.attention(tq, tk, tv, { causal: true, window: 12 }).data();
  const want4 = refAttention(q, k, v, { causal: true, window: 4 }).out;
  let diff = 0;
  for (let i = 0; i < full.length; i++) {
    diff = Math.max(diff, Math.abs(full[i] - w4[i]));
    assert.ok(Math.abs(w4[i] - want4.data[i]) < 2e-5, `w4[${i}] ${w4[i]} vs ${want4.data[i]}`);
    assert.ok(Math.abs(wBig[i] - full[i]) < 1e-6, `window = T must equal full causal attention at ${i}`);
  }
  assert.ok(diff > 1e-2, `window 4 of 12 changed nothing (max diff ${diff})`);
  // Query 0..3 see all their keys in both: rows before the window bites are identical.
  for (let i = 0; i < 4 * 8; i++) assert.ok(Math.abs(full[i] - w4[i]) < 1e-6);
});

test('decode against a KV cache with a window equals the reference (one and two queries, long split cache)', async () => {
  for (const [B, H, Hkv, Tn, D, window, Tq] of [[2, 4, 2, 13, 16, 5, 1], [1, 2, 1, 700, 32, 100, 1], [2, 2, 2, 30, 8, 7, 2], [1, 4, 4, 9, 8, 1, 1]] as const) {
    const q = randomNd([B, H, Tq, D], 21 + Tn), k = randomNd([B, Hkv, Tn, D], 22 + Tn), v = randomNd([B, Hkv, Tn, D], 23 + Tn);
    const want = refAttention(q, k, v, { causal: true, window }).out;
    const [tq, tk, tv] = [q, k, v].map((x) => T.Tensor.from(Float32Array.from(x.data), x.shape));
    // Rows past the length hold NaN: a correct kernel never reads them.
    const kc = T.fill([B, Hkv, Tn + 3, D], NaN), vc = T.fill([B, Hkv, Tn + 3, D], NaN);
    T.writeKV(kc, tk, 0);
    T.writeKV(vc, tv, 0);
    const got = await T.attentionDecode(tq, kc, vc, Tn, { window }).data();
    assert.equal(got.length, want.size);
    for (let i = 0; i < want.size; i++) assert.ok(Math.abs(got[i] - want.data[i]) < 2e-5, `decode B${B} T${Tn} w${window} [${i}]: ${got[i]} vs ${want.data[i]}`);
    for (const t of [tq, tk, tv, kc, vc]) t.dispose();
  }
});

test('windowed kernels without subgroups (plain loads) agree with the reference', async () => {
  const prev = process.env.NLA_ATTN_SUBGROUPS;
  process.env.NLA_ATTN_SUBGROUPS = '0';
  try {
    const q = randomNd([2, 4, 29, 8], 51), k = randomNd([2, 2, 29, 8], 52), v = randomNd([2, 2, 29, 8], 53);
    await checkOp({
      name: 'attention(window 6, no subgroups)', inputs: [q, k, v], grad: true, atol: 2e-5,
      gpu: ([a, b, c]) => T.attention(a, b, c, { causal: true, window: 6 }),
      ref: ([a, b, c]) => refAttention(a, b, c, { causal: true, window: 6 }).out,
    });
  } finally {
    if (prev === undefined) delete process.env.NLA_ATTN_SUBGROUPS;
    else process.env.NLA_ATTN_SUBGROUPS = prev;
  }
});

test('a window needs causal attention and a positive integer; per-batch decode lengths refuse it', () => {
  const x = T.zeros([1, 1, 3, 4]);
  assert.throws(() => T.attention(x, x, x, { window: 2 }), /window 2 needs causal: true/);
  assert.throws(() => T.attention(x, x, x, { causal: true, window: 0 }), /window 0 needs causal/);
  assert.throws(() => T.attention(x, x, x, { causal: true, window: 1.5 }), /window 1.5/);
  assert.throws(() => T.attentionDecode(x.slice(2, 0, 1), x, x, [3], { window: 2 }), /sliding window needs one length/);
  x.dispose();
});

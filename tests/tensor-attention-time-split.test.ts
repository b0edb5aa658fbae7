// Attention whose one kv head of one batch row is still beyond one storage binding: split over
// the time axis (query ranges independent; key ranges combined through their logsumexps,
// flash-style; backward per range pair from the global O and L). The engine is told the binding
// limit is 4 KiB, so a few hundred positions take the path a long context takes at 128 MiB;
// every case asserts it is over that limit per head. Values and gradients (q, k, v) against the
// float64 reference over random shapes, masks, causal rules, windows and soft caps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as T from '../src/tensor/index.js';
import * as core from '../src/tensor/reference/core.js';
import { bindingLimit, setBindingLimit } from '../src/tensor/binding.js';
import { checkOp, property, randomInts, randomNd } from '../src/testing/property.js';
import { Nd } from '../src/tensor/reference/nd.js';
import { attention as refAttention } from '../src/tensor/reference/attention.js';

const LIMIT = 4096;
await T.initGpu();
setBindingLimit(LIMIT);

test('attention split over the time axis matches float64 (causal, windows, soft caps, masks, decode), gradients too', async () => {
  assert.equal(bindingLimit(), LIMIT);
  const arb = fc.record({
    B: fc.integer({ min: 1, max: 2 }), heads: fc.constantFrom<[number, number]>([1, 1], [2, 1], [3, 1], [4, 2]), D: fc.constantFrom(4, 8),
    Tq: fc.integer({ min: 1, max: 260 }), extraK: fc.integer({ min: 0, max: 120 }), causal: fc.boolean(), window: fc.option(fc.integer({ min: 1, max: 90 }), { nil: undefined }),
    softcap: fc.option(fc.constantFrom(3, 20), { nil: undefined }), mask: fc.constantFrom('none', 'keys', 'lengths'), permuted: fc.boolean(), seed: fc.integer({ min: 1, max: 1e6 }),
  });
  let cases = 0;
  await property(arb, async (c) => {
    const [H, Hkv] = c.heads, G = H / Hkv, D = c.D, Tq = c.Tq;
    // Long enough that one head's keys (dK|dV side by side) or queries (O with its logsumexp) exceed the limit.
    const Tk = Math.max(Tq + c.extraK, Math.ceil(LIMIT / (8 * D)) + 1 + c.extraK);
    assert.ok(8 * Tk * D > LIMIT || 4 * G * Tq * (D + 1) > LIMIT, `one head of ${JSON.stringify(c)} fits the limit`);
    const window = c.causal ? c.window : undefined;
    const r = randomInts([c.B * Tk], c.seed + 5, 0, 4);
    const mask = new Nd([c.B, Tk], Float64Array.from(r.data, (x, i) => +(x > 0 || i % Tk === 0)));
    // Row 0 may see no key at all (length 0): output 0, gradients 0.
    const lengths = Array.from({ length: c.B }, (_, b) => (b === 0 ? c.seed % 3 === 0 ? 0 : 1 + (c.seed % Tk) : Tk - (c.seed % 7)));
    const opts = (m: T.Tensor): T.AttentionOptions => ({ causal: c.causal, window, softcap: c.softcap, keyMask: c.mask === 'keys' ? m : undefined, lengths: c.mask === 'lengths' ? lengths : undefined });
    const refOpts = (m: Nd) => ({ causal: c.causal, window, softcap: c.softcap, keyMask: c.mask === 'keys' ? m : undefined, lengths: c.mask === 'lengths' ? lengths : undefined });
    const lay = (h: number, t: number) => (c.permuted ? [c.B, t, h, D] : [c.B, h, t, D]);
    const view = (x: T.Tensor) => (c.permuted ? x.permute([0, 2, 1, 3]) : x);
    const viewRef = (x: Nd) => (c.permuted ? core.permute(x, [0, 2, 1, 3]) : x);
    await checkOp({
      name: `attention time split ${JSON.stringify({ ...c, Tk })}`,
      inputs: [randomNd(lay(H, Tq), c.seed, -2, 2), randomNd(lay(Hkv, Tk), c.seed + 1, -2, 2), randomNd(lay(Hkv, Tk), c.seed + 2), mask],
      gpu: ([q, k, v, m]) => T.attention(view(q), view(k), view(v), opts(m)),
      ref: ([q, k, v, m]) => refAttention(viewRef(q), viewRef(k), viewRef(v), refOpts(m)).out,
      atol: 2e-5, rtol: 2e-4, grad: [0, 1, 2], maxFdCoords: 16, seed: c.seed,
    });
    cases++;
  }, { numRuns: 12 }).catch((e: Error & { cause?: Error }) => {
    throw new Error(`${e.message}\n${e.cause?.stack ?? ''}`); // fast-check keeps the case's own error as the cause
  });
  assert.ok(cases >= 12, `${cases} cases ran`);
});

test('attentionLse over the time split: the logsumexp matches float64 (fully masked rows -3e38)', async () => {
  const D = 8, Tq = 150, Tk = 200, seed = 7;
  const q = randomNd([1, 2, Tq, D], seed, -2, 2), k = randomNd([1, 1, Tk, D], seed + 1, -2, 2), v = randomNd([1, 1, Tk, D], seed + 2);
  // Causal with qStart -3: the first three queries see no key.
  const want = refAttention(q, k, v, { causal: true, qStart: -3, window: 40 });
  const [tq, tk, tv] = [q, k, v].map((x) => T.Tensor.from(Float32Array.from(x.data), x.shape));
  const { out, lse } = T.attentionLse(tq, tk, tv, { causal: true, qStart: -3, window: 40 });
  const [o, l] = [await out.data(), await lse.data()];
  for (let i = 0; i < o.length; i++) assert.ok(Math.abs(o[i] - want.out.data[i]) <= 2e-5 + 2e-4 * Math.abs(want.out.data[i]), `out ${i}: ${o[i]} vs ${want.out.data[i]}`);
  for (let i = 0; i < l.length; i++) {
    const w = want.lse.data[i];
    if (w === -Infinity) assert.ok(l[i] <= -3e38, `lse ${i}: ${l[i]} for a row that sees nothing`);
    else assert.ok(Math.abs(l[i] - w) <= 1e-4 * Math.max(1, Math.abs(w)), `lse ${i}: ${l[i]} vs ${w}`);
  }
  for (const t of [out, lse, tq, tk, tv]) t.dispose();
});

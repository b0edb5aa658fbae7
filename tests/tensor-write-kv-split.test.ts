// writeKV with positions on the GPU (an i32 tensor) into a cache beyond one storage binding, and
// with rows beyond one: written in blocks that each bind only part of the cache (a block skips
// rows landing outside its time range). At a lowered binding limit of 4 KiB; every case asserts
// the cache is over it. Compared exactly with the same writes done on the host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as T from '../src/tensor/index.js';
import { setBindingLimit } from '../src/tensor/binding.js';
import { property } from '../src/testing/property.js';

const LIMIT = 4096;
await T.initGpu();
setBindingLimit(LIMIT);

test('writeKV at tensor positions into a cache (and from rows) beyond one binding matches the host writes', async () => {
  const arb = fc.record({
    B: fc.integer({ min: 1, max: 3 }), Hkv: fc.integer({ min: 1, max: 3 }), D: fc.constantFrom(4, 8), extra: fc.integer({ min: 0, max: 200 }),
    Tn: fc.integer({ min: 1, max: 300 }), view: fc.constantFrom('dense', 'permuted', 'slice'), seed: fc.integer({ min: 1, max: 1e6 }),
  });
  let cases = 0;
  await property(arb, async (c) => {
    const { B, Hkv, D } = c;
    const Tn = c.Tn, Tmax = Math.max(Tn, Math.ceil(LIMIT / (4 * B * Hkv * D))) + c.extra;
    assert.ok(B * Hkv * Tmax * D * 4 > LIMIT, `cache of ${JSON.stringify(c)} fits the limit`);
    // Positions: most in range, one (when B > 1) running past Tmax (those rows are dropped).
    const pos = Array.from({ length: B }, (_, b) => (b === 1 ? Tmax - Math.max(1, Tn >> 1) : (c.seed * (b + 3)) % (Tmax - Tn + 1)));
    const init = Float32Array.from({ length: B * Hkv * Tmax * D }, (_, i) => -1 - (i % 97));
    const rowVals = Float32Array.from({ length: B * Hkv * Tn * D }, (_, i) => (i * 7 + c.seed) % 1009);
    const want = Float32Array.from(init);
    for (let b = 0; b < B; b++) for (let h = 0; h < Hkv; h++) for (let t = 0; t < Tn; t++) {
      const p = pos[b] + t;
      if (p >= Tmax) continue;
      for (let d = 0; d < D; d++) want[((b * Hkv + h) * Tmax + p) * D + d] = rowVals[((b * Hkv + h) * Tn + t) * D + d];
    }
    const cache = T.Tensor.from(init, [B, Hkv, Tmax, D]);
    // Rows as given, as a permuted [B,Tn,Hkv,D] projection, or as a slice of a longer tensor.
    const rowsOf = (): { rows: T.Tensor; owner: T.Tensor } => {
      if (c.view === 'dense') { const r = T.Tensor.from(rowVals, [B, Hkv, Tn, D]); return { rows: r, owner: r }; }
      if (c.view === 'permuted') {
        const tm = new Float32Array(rowVals.length);
        for (let b = 0; b < B; b++) for (let h = 0; h < Hkv; h++) for (let t = 0; t < Tn; t++) for (let d = 0; d < D; d++) tm[((b * Tn + t) * Hkv + h) * D + d] = rowVals[((b * Hkv + h) * Tn + t) * D + d];
        const o = T.Tensor.from(tm, [B, Tn, Hkv, D]);
        return { rows: o.permute([0, 2, 1, 3]), owner: o };
      }
      const longer = new Float32Array(B * Hkv * (Tn + 3) * D);
      for (let b = 0; b < B; b++) for (let h = 0; h < Hkv; h++) for (let t = 0; t < Tn; t++) for (let d = 0; d < D; d++) longer[((b * Hkv + h) * (Tn + 3) + t + 2) * D + d] = rowVals[((b * Hkv + h) * Tn + t) * D + d];
      const o = T.Tensor.from(longer, [B, Hkv, Tn + 3, D]);
      return { rows: o.slice(2, 2, 2 + Tn), owner: o };
    };
    const { rows, owner } = rowsOf();
    const pt = T.Tensor.from(Int32Array.from(pos), [B], 'i32');
    T.writeKV(cache, rows, pt);
    const got = await cache.data();
    for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) assert.fail(`${JSON.stringify({ ...c, Tmax, pos })}: element ${i}: ${got[i]}, want ${want[i]}`);
    for (const t of new Set([cache, rows, owner, pt])) t.dispose();
    cases++;
  }, { numRuns: 20 });
  assert.ok(cases >= 20);
});

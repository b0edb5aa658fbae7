import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { confusionCost } from '../src/nla/confusion-cost.js';

test('confusionCost: FVE lost by naming the closest other value, on normalised class means', () => {
  // d 4: a and c point the same way (c is 3x longer: normalisation removes the length), b is orthogonal.
  const h = [1, 0, 0, 0, 3, 0, 0, 0, 0, 1, 0, 0, 9, 9, 9, 9];
  const r = confusionCost(h, ['a', 'c', 'b', undefined], 4, 0.5)!;
  assert.deepEqual(r.pair, ['a', 'c']);
  assert.equal(r.min, 0);
  // a and b normalised to norm 2: |(2,0,0,0) - (0,2,0,0)|^2 / 4 / 0.5 = 4; pairs a-c 0, a-b 4, c-b 4.
  assert.ok(Math.abs(r.mean - 8 / 3) < 1e-12, `mean ${r.mean}`);
  assert.equal(r.values, 3);
  assert.equal(confusionCost(h, ['a', 'a', undefined, undefined], 4, 0.5), undefined);
});

test('confusionCost: a row\'s length does not matter, and the cost is the squared distance of the class means', () => {
  fc.assert(fc.property(
    fc.integer({ min: 2, max: 6 }),
    fc.array(fc.tuple(fc.float({ min: -2, max: 2, noNaN: true }), fc.float({ min: -2, max: 2, noNaN: true }), fc.float({ min: Math.fround(0.1), max: 10, noNaN: true }), fc.boolean()), { minLength: 2, maxLength: 12 }),
    (d, rows) => {
      // Two classes; each row gets an offset so its norm is never 0.
      const h: number[] = [], hs: number[] = [], label: string[] = [];
      rows.forEach(([x, y, s, cls], i) => {
        const v = Array.from({ length: d }, (_, j) => (j === 0 ? x + 3 : j === 1 ? y : (i + j) % 3));
        h.push(...v);
        hs.push(...v.map((u) => u * s));
        label.push(cls ? 'p' : 'q');
      });
      if (new Set(label).size < 2) return;
      const a = confusionCost(h, label, d, 0.7)!, b = confusionCost(hs, label, d, 0.7)!;
      assert.ok(Math.abs(a.min - b.min) < 1e-6 * (1 + a.min));
      // Independent reference: normalise each row to norm sqrt(d), average per class, squared distance / d / var.
      const mean = (c: string) => {
        const m = new Array(d).fill(0);
        let n = 0;
        label.forEach((l, i) => {
          if (l !== c) return;
          const v = h.slice(i * d, (i + 1) * d), norm = Math.hypot(...v);
          v.forEach((u, j) => (m[j] += (u * Math.sqrt(d)) / norm));
          n++;
        });
        return m.map((u) => u / n);
      };
      const p = mean('p'), q = mean('q');
      const want = p.reduce((s, u, j) => s + (u - q[j]) ** 2, 0) / d / 0.7;
      assert.ok(Math.abs(a.min - want) < 1e-9 * (1 + want), `${a.min} vs ${want}`);
      assert.equal(a.mean, a.min);
    },
  ), { numRuns: 100 });
});

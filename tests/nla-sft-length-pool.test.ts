// epochOrder (sft.ts): the warm starts' row order, plain or in length pools.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { epochOrder } from '../src/nla/sft.js';
import { SeededRng } from '../src/util/rng.js';

const batchesOf = (order: number[], bs: number) => Array.from({ length: Math.ceil(order.length / bs) }, (_, k) => order.slice(k * bs, (k + 1) * bs));
const padded = (order: number[], bs: number, L: number[]) => batchesOf(order, bs).reduce((a, b) => a + b.length * Math.max(...b.map((i) => L[i]!)), 0);

test('epochOrder: every row exactly once, with or without pools', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 10 }), fc.integer({ min: 0, max: 1e6 }), (n, bs, pool, seed) => {
      const L = Array.from({ length: n }, (_, i) => (i * 7919) % 53);
      const o = epochOrder(n, bs, new SeededRng(seed), { pool, lengths: L });
      assert.deepEqual([...o].sort((a, b) => a - b), [...Array(n).keys()]);
    }),
  );
});

test('epochOrder: pools make batches of like length and pad less; the order follows the seed', () => {
  const n = 1000, bs = 32;
  const r = new SeededRng(5);
  const L = Array.from({ length: n }, () => 40 + Math.floor(r.next() * 60));
  const plain = epochOrder(n, bs, new SeededRng(1));
  const pooled = epochOrder(n, bs, new SeededRng(1), { pool: 8, lengths: L });
  const real = L.reduce((a, b) => a + b, 0);
  // Uniform lengths 40..99: a random batch of 32 pads to ~97; a pool of 256 sorted into 8 batches to within ~8 of each row.
  assert.ok(padded(plain, bs, L) > 1.35 * real, `plain ${padded(plain, bs, L)} vs ${real}`);
  assert.ok(padded(pooled, bs, L) < 1.1 * real, `pooled ${padded(pooled, bs, L)} vs ${real}`);
  for (const b of batchesOf(pooled, bs).slice(0, -1)) assert.ok(Math.max(...b.map((i) => L[i]!)) - Math.min(...b.map((i) => L[i]!)) <= 20, 'a pooled batch spans a narrow range of lengths');
  assert.deepEqual(epochOrder(n, bs, new SeededRng(1), { pool: 8, lengths: L }), pooled);
  assert.notDeepEqual(epochOrder(n, bs, new SeededRng(2), { pool: 8, lengths: L }), pooled);
  // Pools of one batch, or none, are the plain shuffle.
  assert.deepEqual(epochOrder(n, bs, new SeededRng(1), { pool: 1, lengths: L }), plain);
});

test('epochOrder: the short batch of an epoch comes last, so no full batch straddles two', () => {
  const n = 100, bs = 32, L = Array.from({ length: n }, (_, i) => i);
  const o = epochOrder(n, bs, new SeededRng(3), { pool: 8, lengths: L });
  const batches = batchesOf(o, bs);
  // One pool of 100 rows sorted: batches [0..31], [32..63], [64..95] in some order, then [96..99].
  assert.deepEqual(batches.at(-1)!.sort((a, b) => a - b), [96, 97, 98, 99]);
  for (const b of batches.slice(0, -1)) {
    const s = [...b].sort((a, c) => a - c);
    assert.equal(s.at(-1)! - s[0]!, bs - 1, 'a full batch is one run of 32 consecutive lengths');
  }
});

// evaluate()'s best-of-k: each row keeps the sample whose AR reconstruction is closest to its own
// h (an unparseable sample counts as MSE 2), and reports that sample's MSE; without bestOf the k
// samples are all averaged. A stub AV and AR make the candidates and reconstructions known.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluate } from '../src/nla/evaluate.js';
import type { Verbalizer, Explained } from '../src/nla/av.js';
import type { Reconstructor } from '../src/nla/ar.js';
import type { RowMeta } from '../src/nla/store.js';

// d = 2: the AR rebuilds "east" as (1, 0), "north" as (0, 1), "west" as (-1, 0).
const dirs: Record<string, [number, number]> = { east: [1, 0], north: [0, 1], west: [-1, 0] };
const samples = ['east', 'north', undefined, 'west']; // every row gets these 4 (one unparseable)
const av = {
  d: 2,
  async explain(h: Float32Array, o: { samples?: number }) {
    const k = o.samples ?? 1;
    return [...Array(h.length / 2)].flatMap(() => samples.slice(0, k).map((e): Explained => ({ text: e ?? 'garbage', explanation: e, tokens: [], logprobs: [], stopped: e !== undefined }) as Explained));
  },
} as unknown as Verbalizer;
const ar = {
  async predictHost(texts: string[]) {
    return Float32Array.from(texts.flatMap((t) => dirs[t] ?? [0.6, 0.8]));
  },
} as unknown as Reconstructor;
// Normalised MSE with both rows scaled to norm sqrt(2): 2 (1 - cos).
const mse = (a: [number, number], b: [number, number]) => 2 * (1 - (a[0] * b[0] + a[1] * b[1]) / Math.hypot(...a) / Math.hypot(...b));

test('best of k keeps, per row, the sample the AR rebuilds closest to that row\'s h', async () => {
  const h = Float32Array.from([3, 0.1, -0.2, 5, -4, -1]); // nearest: east, north, west
  const meta = [0, 1, 2].map((doc) => ({ doc }) as RowMeta);
  const best = await evaluate(av, ar, h, meta, 1, { temperature: 1, samples: 4, bestOf: true, maxTokens: 8, batchSize: 2 });
  assert.deepEqual(best.examples.map((e) => e.explanation), ['east', 'north', 'west']);
  const rows: [number, number][] = [[3, 0.1], [-0.2, 5], [-4, -1]];
  const want = [mse([1, 0], rows[0]), mse([0, 1], rows[1]), mse([-1, 0], rows[2])];
  best.examples.forEach((e, i) => assert.ok(Math.abs(e.mse - want[i]) < 1e-6, `row ${i}: ${e.mse} vs ${want[i]}`));
  assert.ok(Math.abs(best.mse - want.reduce((a, b) => a + b) / 3) < 1e-6);
  assert.equal(best.parseRate, 3 / 4);
  // Without bestOf: every sample counts, the unparseable one at 2.
  const all = await evaluate(av, ar, h, meta, 1, { temperature: 1, samples: 4, maxTokens: 8, batchSize: 2 });
  const every = rows.flatMap((r) => [mse([1, 0], r), mse([0, 1], r), 2, mse([-1, 0], r)]);
  assert.ok(Math.abs(all.mse - every.reduce((a, b) => a + b) / every.length) < 1e-6, `${all.mse}`);
  assert.ok(best.mse < all.mse);
});

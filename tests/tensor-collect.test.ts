// The runtime's periodic full collection (src/tensor/collect.ts): after COLLECT_EVERY native objects made and dropped
// it runs a full GC even without --expose-gc, so garbage that holds native memory (Dawn's object
// wrappers) is freed; before that it does nothing. The soak's RSS figures are in BENCHMARKS.md.
import { test } from 'node:test';
import assert from 'node:assert/strict';

process.env.NLA_COLLECT_EVERY = '10';
const { collectStats, countNative } = await import('../src/tensor/collect.js');

test('a full collection after every 10 native objects (NLA_COLLECT_EVERY), none before; garbage is gone after it', async () => {
  assert.equal((globalThis as { gc?: unknown }).gc, undefined, 'this test runs without --expose-gc');
  const ref = (() => new WeakRef({ payload: new Float64Array(1 << 16) }))();
  // A WeakRef's target lives until the current job ends.
  await new Promise((r) => setTimeout(r, 0));
  countNative(4);
  countNative(5);
  assert.equal(collectStats.collections, 0);
  countNative(1);
  assert.equal(collectStats.collections, 1);
  assert.equal(ref.deref(), undefined, 'the unreachable object was collected');
  countNative(25);
  assert.equal(collectStats.collections, 2, 'one collection per call at most; the count starts again');
  assert.ok(collectStats.ms > 0);
});

// The short soak (bench/soak.ts; the 2,000-step figures are in BENCHMARKS.md): 64 steps of a
// tiny joint-RL run. GPU buffers alive between steps stay exactly constant (no tensor leaks per
// step), the pool stops growing once every size has been seen, and the native objects that made
// RSS creep are no longer made per dispatch or readback: bind groups come from the cache (a miss
// is rare once warm), staging buffers from their pool (none made after warm-up). RSS stays bounded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { soak } from '../bench/soak.js';
import { MAX_CACHED } from '../src/tensor/bind-groups.js';
import { SKIP_NO_MODEL } from './helpers.js';

test('soak: 64 RL steps with flat GPU live buffers and bytes, a pool that stops growing, bind groups and staging buffers reused, bounded RSS', { skip: SKIP_NO_MODEL, timeout: 600_000 }, async () => {
  const s = await soak(64, 8);
  assert.deepEqual(s.map((x) => x.step), [1, 8, 16, 24, 32, 40, 48, 56, 64]);
  const warm = s.slice(1);
  for (const x of warm) {
    assert.equal(x.liveBuffers, warm[0].liveBuffers, `live buffers at step ${x.step}`);
    assert.equal(x.liveBytes, warm[0].liveBytes, `live bytes at step ${x.step}`);
  }
  const late = s.filter((x) => x.step >= 16);
  assert.ok(late.every((x) => x.pooledBytes === late[0].pooledBytes), `pooled bytes after step 16: ${late.map((x) => x.pooledBytes)}`);
  assert.ok(late.every((x) => x.stagingCreated === late[0].stagingCreated), `staging buffers made after step 16: ${late.map((x) => x.stagingCreated)}`);
  // Before the cache every dispatch made a bind group (~1,570 per step); now a miss is rare.
  const [a, b] = [late[0], late[late.length - 1]];
  const made = b.bindGroupsCreated - a.bindGroupsCreated, dispatched = b.dispatches - a.dispatches;
  assert.ok(made < 0.1 * dispatched, `bind groups made ${made} for ${dispatched} dispatches after step 16`);
  assert.ok(late.every((x) => x.bindGroupsCached <= MAX_CACHED));
  const rss = late.map((x) => x.rssMiB);
  assert.ok(Math.max(...rss) - rss[0] < 96, `RSS after step 16 (MiB): ${rss}`);
});

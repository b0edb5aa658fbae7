// The short soak (bench/soak.ts; the long one's figures are in BENCHMARKS.md): 24 steps of a
// tiny joint-RL run. GPU buffers alive between steps stay exactly constant (no tensor leaks per
// step), the pool stops growing once every size has been seen, and RSS stays bounded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { soak } from '../bench/soak.js';
import { SKIP_NO_MODEL } from './helpers.js';

test('soak: 24 RL steps with flat GPU live buffers and bytes, a pool that stops growing, bounded RSS', { skip: SKIP_NO_MODEL, timeout: 600_000 }, async () => {
  const s = await soak(24, 4);
  assert.deepEqual(s.map((x) => x.step), [1, 4, 8, 12, 16, 20, 24]);
  const warm = s.slice(1);
  for (const x of warm) {
    assert.equal(x.liveBuffers, warm[0].liveBuffers, `live buffers at step ${x.step}`);
    assert.equal(x.liveBytes, warm[0].liveBytes, `live bytes at step ${x.step}`);
  }
  const late = s.filter((x) => x.step >= 8);
  assert.ok(late.every((x) => x.pooledBytes === late[0].pooledBytes), `pooled bytes after step 8: ${late.map((x) => x.pooledBytes)}`);
  const rss = late.map((x) => x.rssMiB);
  assert.ok(Math.max(...rss) - rss[0] < 96, `RSS after step 8 (MiB): ${rss}`);
});

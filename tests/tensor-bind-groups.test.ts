// Bind groups reused from a cache (src/tensor/bind-groups.ts) with the uniform block at a
// dynamic offset, and staging buffers reused across readbacks (src/tensor/staging.ts): each
// dispatch still sees its own uniforms, a bind group is made once per (pipeline, buffers), the
// cache stays bounded, and trimPool (which destroys buffers) empties it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initGpu } from '../src/tensor/device.js';
import { acquire, release, trimPool } from '../src/tensor/pool.js';
import { dispatch, readback, runtimeStats, upload, type KernelSpec } from '../src/tensor/runtime.js';
import { cachedBindGroups, MAX_CACHED } from '../src/tensor/bind-groups.js';

await initGpu();
const N = 64;
// y[k*N + i] = x[i] * k for the k in the uniforms: every dispatch writes its own row.
const spec = (x: GPUBuffer | { buffer: GPUBuffer; offset: number; size: number }, y: GPUBuffer, k: number): KernelSpec => ({
  key: 'test-bind-groups-scale',
  source: () => `struct U { k: u32, n: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  if (g.x < u.n) { y[u.k * u.n + g.x] = x[g.x] * f32(u.k); }
}`,
  buffers: [x, y],
  uniforms: new Uint32Array([k, N]),
  workgroups: [1],
});

test('70 dispatches over the same buffers share one bind group, each with its own uniforms; other buffers get another', async () => {
  const x = acquire(4 * N), y = acquire(4 * N * 70), x2 = acquire(4 * N);
  const xs = Float32Array.from({ length: N }, (_, i) => i - 20);
  upload(x, 0, xs);
  upload(x2, 0, xs.map((v) => -v));
  const before = runtimeStats().bindGroupsCreated;
  // 70 dispatches span three submits (one per 32): the arena slots differ, the group does not.
  for (let k = 0; k < 70; k++) dispatch(spec(x, y, k));
  assert.equal(runtimeStats().bindGroupsCreated - before, 1);
  const out = new Float32Array(await readback(y, 0, 4 * N * 70));
  for (let k = 0; k < 70; k++) for (let i = 0; i < N; i++) assert.equal(out[k * N + i], xs[i] * k, `row ${k} element ${i}`);
  dispatch(spec(x2, y, 3));
  dispatch(spec(x, y, 4));
  assert.equal(runtimeStats().bindGroupsCreated - before, 2, 'x2 made one more; x again reused the first');
  const out2 = new Float32Array(await readback(y, 0, 4 * N * 5));
  assert.equal(out2[3 * N + 21], -1 * 3);
  assert.equal(out2[4 * N + 21], 1 * 4);
  for (const b of [x, y, x2]) release(b);
});

test('readbacks of one size reuse one staging buffer', async () => {
  const b = acquire(4 * N);
  upload(b, 0, Float32Array.from({ length: N }, (_, i) => i));
  const before = runtimeStats().stagingCreated;
  for (let r = 0; r < 5; r++) assert.deepEqual([...new Float32Array(await readback(b, 4 * r, 12))], [r, r + 1, r + 2]);
  assert.equal(runtimeStats().stagingCreated - before, 1);
  release(b);
});

test(`the cache holds at most ${MAX_CACHED} bind groups; trimPool empties it`, async () => {
  // Distinct ranges of one buffer are distinct bindings: MAX_CACHED + 100 of them.
  const count = MAX_CACHED + 100, align = 256;
  const x = acquire(align * count), y = acquire(4 * N * 2);
  upload(x, 0, new Float32Array((align * count) / 4).fill(2));
  for (let c = 0; c < count; c++) dispatch(spec({ buffer: x, offset: c * align, size: 4 * N }, y, 1));
  assert.equal(cachedBindGroups(), MAX_CACHED);
  assert.deepEqual([...new Float32Array(await readback(y, 4 * N, 8))], [2, 2]);
  release(x);
  release(y);
  trimPool();
  assert.equal(cachedBindGroups(), 0);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ActivationStore, StoreWriter } from '../src/nla/store.js';
import { rng } from '../src/util/rng.js';

function makeStore(dtype: 'f16' | 'f32', n: number, d: number, shardSize: number) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-store-'));
  const w = new StoreWriter(dir, { model: { name: 'm', dim: d, nLayers: 2 }, layer: 1, dtype, d }, shardSize);
  const r = rng(1);
  const rows: Float32Array[] = [];
  for (let i = 0; i < n; i++) {
    const h = Float32Array.from({ length: d }, () => r() * 4 - 2);
    rows.push(h);
    w.add(h, { doc: i, pos: i % 7, token: i % 11, prevToken: -1 });
  }
  return { dir, manifest: w.finish(), rows };
}

test('store round trip (f32 exact, f16 within half precision), sharded, streamed in batches', () => {
  for (const dtype of ['f32', 'f16'] as const) {
    const { dir, manifest, rows } = makeStore(dtype, 23, 5, 10);
    assert.equal(manifest.shards.length, 3);
    const s = ActivationStore.open(dir, { layer: 1, d: 5, model: 'm' });
    const all = s.readAll();
    assert.equal(all.meta.length, 23);
    rows.forEach((r, i) => r.forEach((v, k) => assert.ok(Math.abs(all.h[i * 5 + k] - v) <= (dtype === 'f32' ? 0 : 2e-3), `${dtype} row ${i}`)));
    let seen = 0;
    for (const b of s.batches(4, rng(3))) seen += b.meta.length;
    assert.equal(seen, 23);
  }
});

test('manifest Var equals the mean squared distance of the normalised rows from their mean', () => {
  const { manifest, rows } = makeStore('f32', 40, 6, 100);
  const d = 6;
  const u = rows.map((r) => { const n = Math.hypot(...r); return Array.from(r, (v) => (v * Math.sqrt(d)) / n); });
  const m = Array.from({ length: d }, (_, k) => u.reduce((a, x) => a + x[k], 0) / u.length);
  const v = u.reduce((a, x) => a + x.reduce((s, xv, k) => s + (xv - m[k]) ** 2, 0) / d, 0) / u.length;
  assert.ok(Math.abs(manifest.variance - v) < 1e-9, `${manifest.variance} vs ${v}`);
});

test('opening a store from another model, layer or width fails naming the file and field', () => {
  const { dir } = makeStore('f32', 3, 4, 10);
  assert.throws(() => ActivationStore.open(dir, { layer: 2 }), /manifest\.json: activations are from layer 1, not layer 2/);
  assert.throws(() => ActivationStore.open(dir, { model: 'other' }), /from model "m", not "other"/);
  assert.throws(() => ActivationStore.open(path.join(dir, 'nope')), /no activation store here/);
  fs.truncateSync(path.join(dir, 'shard-00000.f32'), 8);
  assert.throws(() => ActivationStore.open(dir).readShard(0), /shard-00000\.f32: 8 bytes, manifest says 3 rows/);
});

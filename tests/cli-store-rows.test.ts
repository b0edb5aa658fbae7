// storeRows, as `nla eval --split/--source` reads a mixed store: dev and test halve each source's
// held-out documents apart, `auto` scores the known-answer stories when the split has any, and a
// source the split lacks is an error naming what it has.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { StoreWriter, ActivationStore, type RowMeta } from '../src/nla/store.js';
import { parseSource, storeRows } from '../src/cli/nla-dir.js';

test('nla eval\'s rows of a mixed store: per-source halves, auto = the stories, errors name the sources', () => {
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nla-store-rows-')), 'store');
  const w = new StoreWriter(dir, { model: { name: 'm', dim: 2, nLayers: 1 }, layer: 0, dtype: 'f32', d: 2 }, 4);
  // Stories 0..3 (eval: 2, 3), then samples of M 4..7 (eval: 6, 7), one row each; row i has h = (i, 1).
  const rows: Partial<RowMeta>[] = [0, 1, 2, 3, 4, 5, 6, 7].map((doc) => ({ doc, split: doc % 4 < 2 ? 'av' : 'eval', ...(doc >= 4 ? { source: 'model' as const, seed: doc } : {}) }));
  rows.forEach((m, i) => w.add(Float32Array.from([i, 1]), { pos: 1, token: 1, prevToken: 0, summary: 's', ...m } as RowMeta));
  w.finish();
  const store = ActivationStore.open(dir);
  const docs = (r: { meta: RowMeta[] }) => r.meta.map((m) => m.doc);
  assert.deepEqual(docs(storeRows(store, 'dev', 'all')), [2, 6]);
  assert.deepEqual(docs(storeRows(store, 'test', 'all')), [3, 7]);
  const auto = storeRows(store, 'test', 'auto');
  assert.equal(auto.source, 'known-answer');
  assert.deepEqual(docs(auto), [3]);
  assert.deepEqual(Array.from(auto.h), [3, 1], 'h of the chosen row');
  assert.deepEqual(docs(storeRows(store, 'test', 'model')), [7]);
  assert.equal(storeRows(store, 'av', 'auto').source, 'known-answer');
  assert.throws(() => storeRows(store, 'test', 'text'), /no rows of source "text" in split "test" \(its rows are of: known-answer, model; or use --source all\)/);
  assert.throws(() => parseSource('stories'), /--source: expected one of known-answer, model, text, jsonl, all or auto, got "stories"/);
  fs.rmSync(path.dirname(dir), { recursive: true, force: true });
});

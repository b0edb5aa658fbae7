// Checkpoint format 2 (src/nn/checkpoint.ts): tensors as raw sections written one at a time,
// a JSON header with offsets and CRC-32s, a trailer. Round trips of random contents, deferred
// tensors fetched one at a time in order, atomicity when a fetch fails, format 1 still read,
// every damaged byte refused naming the file, and re-checksummed header edits checked field
// by field against the file size.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import { pack } from 'msgpackr';
import type { HostTensor } from '../src/io/host-tensor.js';
import { loadCheckpoint, saveCheckpoint, saveCheckpointStreamed, type Checkpoint } from '../src/nn/checkpoint.js';
import { fcRuns } from '../src/testing/runs.js';
import { check, cleanReadOf, editJson, jsonEditsArb, mutate, mutationArb, rejectsNaming, Tally, toJsonText } from './fuzz.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-ckpt-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
let serial = 0;
const fresh = () => path.join(tmp, `c-${serial++}.ckpt`);

const tensorArb: fc.Arbitrary<HostTensor> = fc
  .tuple(fc.constantFrom<'f32' | 'i32'>('f32', 'i32'), fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 3 }), fc.integer())
  .map(([dtype, shape, seed]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    let s = seed >>> 0;
    const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0), s);
    const data = dtype === 'i32' ? Int32Array.from({ length: n }, () => next() | 0) : Float32Array.from({ length: n }, () => (next() / 2 ** 32 - 0.5) * 1e3);
    return { dtype, shape, data };
  });

const ckArb = fc.record({
  step: fc.nat(),
  weights: fc.dictionary(fc.string({ minLength: 1, maxLength: 6 }), fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), tensorArb, { maxKeys: 4 }), { maxKeys: 3 }),
  optimizer: fc.record({ kind: fc.constant('adamw'), stepCount: fc.nat(), params: fc.array(fc.record({ name: fc.string(), step: fc.nat(), slots: fc.record({ m: tensorArb, v: tensorArb }) }), { maxLength: 3 }) }),
  rngState: fc.nat(),
  extra: fc.record({ kind: fc.string(), order: fc.array(fc.nat(), { maxLength: 8 }) }),
});

function sameTensor(a: HostTensor, b: HostTensor, where: string): void {
  assert.equal(a.dtype, b.dtype, where);
  assert.deepEqual(a.shape, b.shape, where);
  assert.deepEqual([...a.data], [...b.data], where);
  assert.equal(a.data.constructor, b.data.constructor, where);
}

test('round trip: any weights, optimizer slots and extras read back equal (sync and streamed writers)', async () => {
  await check(
    fc.asyncProperty(ckArb, fc.boolean(), async (ck, streamed) => {
      const f = fresh();
      if (streamed) {
        const deferred = Object.fromEntries(Object.entries(ck.weights).map(([g, m]) => [g, Object.fromEntries(Object.entries(m).map(([k, t]) => [k, { dtype: t.dtype as 'f32' | 'i32', shape: t.shape, fetch: async () => t.data }]))]));
        await saveCheckpointStreamed(f, { ...ck, weights: deferred });
      } else saveCheckpoint(f, ck);
      const got = loadCheckpoint(f);
      assert.equal(got.format, 'nla-checkpoint/2');
      assert.equal(got.step, ck.step);
      assert.equal(got.rngState, ck.rngState);
      assert.deepEqual(got.extra, { ...ck.extra, order: [...ck.extra.order] });
      assert.deepEqual(Object.keys(got.weights).sort(), Object.keys(ck.weights).sort());
      for (const [g, m] of Object.entries(ck.weights)) {
        assert.deepEqual(Object.keys(got.weights[g]).sort(), Object.keys(m).sort());
        for (const [k, t] of Object.entries(m)) sameTensor(got.weights[g][k], t, `${g}/${k}`);
      }
      const opt = got.optimizer as typeof ck.optimizer;
      assert.equal(opt.stepCount, ck.optimizer.stepCount);
      assert.equal(opt.params.length, ck.optimizer.params.length);
      ck.optimizer.params.forEach((p, i) => {
        assert.equal(opt.params[i].name, p.name);
        sameTensor(opt.params[i].slots.m, p.slots.m, `slot m ${i}`);
        sameTensor(opt.params[i].slots.v, p.slots.v, `slot v ${i}`);
      });
    }),
    { seed: 1313, numRuns: fcRuns(60) },
  );
});

test('streamed writer: tensors are fetched in order, at most a window of bytes ahead of the writer', async () => {
  const f = fresh();
  const log: string[] = [];
  const big = (name: string, n: number) => ({
    dtype: 'f32' as const,
    shape: [n],
    fetch: async () => {
      log.push(`fetch ${name} (file ${fs.readdirSync(tmp).filter((x) => x.includes(path.basename(f)) && x.includes('.tmp-')).map((x) => fs.statSync(path.join(tmp, x)).size).join()} bytes)`);
      return Float32Array.from({ length: n }, (_, i) => i + n);
    },
  });
  const body = { step: 1, weights: { a: { x: big('x', 10), y: big('y', 20) } }, optimizer: { o: { slot: big('z', 5) } } };
  await saveCheckpointStreamed(f, body, { prefetchBytes: 0 });
  // No prefetch: the temp file grows by each tensor before the next is fetched: 8 bytes of magic, then 40, then 80.
  assert.deepEqual(log, ['fetch x (file 8 bytes)', 'fetch y (file 48 bytes)', 'fetch z (file 128 bytes)']);
  // A window of 120 bytes: x and y (120 bytes) are fetched before anything is written, z once x is written.
  log.length = 0;
  await saveCheckpointStreamed(f, body, { prefetchBytes: 120 });
  assert.deepEqual(log, ['fetch x (file 8 bytes)', 'fetch y (file 8 bytes)', 'fetch z (file 48 bytes)']);
  const ck = loadCheckpoint(f);
  assert.deepEqual([...ck.weights.a.y.data].slice(0, 3), [20, 21, 22]);
  assert.deepEqual([...((ck.optimizer!.o as { slot: HostTensor }).slot.data)], [5, 6, 7, 8, 9]);
});

test('a failed write leaves the previous checkpoint and no temp file', async () => {
  const f = fresh();
  saveCheckpoint(f, { step: 3, weights: { m: { a: { dtype: 'f32', shape: [2], data: Float32Array.from([1, 2]) } } } });
  const before = fs.readFileSync(f);
  await assert.rejects(
    saveCheckpointStreamed(f, { step: 4, weights: { m: { a: { dtype: 'f32', shape: [2], data: Float32Array.from([3, 4]) }, b: { dtype: 'f32', shape: [1], fetch: async () => { throw new Error('device lost'); } } } } }),
    /device lost/,
  );
  assert.deepEqual(fs.readFileSync(f), before);
  assert.deepEqual(fs.readdirSync(tmp).filter((x) => x.startsWith(`.${path.basename(f)}.tmp-`)), []);
  assert.equal(loadCheckpoint(f).step, 3);
});

test('format 1 (one msgpack map) is still read', () => {
  const f = fresh();
  const bytes = (a: Float32Array) => new Uint8Array(a.buffer);
  fs.writeFileSync(f, pack({ format: 'nla-checkpoint/1', step: 5, weights: { m: { a: { dtype: 'f32', shape: [3], data: bytes(Float32Array.from([1.5, -2, 3])) } } }, optimizer: { m: { kind: 'adamw' } }, rngState: 9 }));
  const ck = loadCheckpoint(f);
  assert.equal(ck.format, 'nla-checkpoint/1');
  assert.equal(ck.step, 5);
  assert.deepEqual([...ck.weights.m.a.data], [1.5, -2, 3]);
});

test('lazy reads: a tensor is re-read and re-checked at each access; a replaced file is refused', () => {
  const f = fresh();
  saveCheckpoint(f, { step: 1, weights: { m: { a: { dtype: 'f32', shape: [4], data: Float32Array.from([1, 2, 3, 4]) } } } });
  const ck = loadCheckpoint(f);
  const d1 = ck.weights.m.a.data, d2 = ck.weights.m.a.data;
  assert.notEqual(d1, d2, 'not cached: each access is a fresh read');
  assert.deepEqual([...d2], [1, 2, 3, 4]);
  saveCheckpoint(f, { step: 2, weights: { m: { a: { dtype: 'f32', shape: [4], data: Float32Array.from([5, 6, 7, 8]) } } } });
  assert.throws(() => ck.weights.m.a.data, (e: Error) => e.message.includes(f) && e.message.includes('changed since it was opened'));
});

// A small valid file, its header and data, to damage.
const VALID = fresh();
saveCheckpoint(VALID, {
  step: 12,
  weights: { model: { a: { dtype: 'f32', shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }, i: { dtype: 'i32', shape: [2], data: Int32Array.from([4, 5]) } } },
  optimizer: { model: { kind: 'adamw', stepCount: 12, params: [{ step: 12, slots: { m: { dtype: 'f32', shape: [3], data: Float32Array.from([7, 8, 9]) } } }] } },
  rngState: 77,
});
const CK = new Uint8Array(fs.readFileSync(VALID));
const TR = Buffer.from(CK.subarray(CK.length - 24));
const H_OFF = Number(TR.readBigUInt64LE(0));
const HEADER = JSON.parse(Buffer.from(CK.subarray(H_OFF, CK.length - 24)).toString('utf8'));

/** The valid file's data with `headerText` as its header, the trailer recomputed (so the CRC passes). */
function withHeader(headerText: string): Uint8Array {
  const h = Buffer.from(headerText, 'utf8');
  const tr = Buffer.alloc(24);
  tr.writeBigUInt64LE(BigInt(H_OFF), 0);
  tr.writeBigUInt64LE(BigInt(h.length), 8);
  tr.writeUInt32LE(crc32(h) >>> 0, 16);
  tr.write('NLAE', 20, 'latin1');
  return Uint8Array.from([...CK.subarray(0, H_OFF), ...h, ...tr]);
}

/** Loads, then reads every tensor (so a lazy read's failure counts); iterative: edits nest deeply. */
function readAll(f: string): Checkpoint {
  const ck = loadCheckpoint(f);
  const todo: unknown[] = [ck];
  while (todo.length) {
    const x = todo.pop();
    if (x && typeof x === 'object' && !ArrayBuffer.isView(x)) todo.push(...Object.values(x));
  }
  return ck;
}

test('byte mutations: every change to the file is refused with an error naming it', async () => {
  await check(
    fc.asyncProperty(mutationArb(CK.length), async (muts) => {
      const bytes = mutate(CK, muts);
      const o = await cleanReadOf(fresh(), bytes, readAll);
      const same = bytes.length === CK.length && bytes.every((b, i) => b === CK[i]);
      assert.equal(o.ok, same, same ? 'the unchanged file must load' : 'a changed file loaded');
    }),
    { seed: 1414, numRuns: fcRuns(500) },
  );
});

test('header edits with a valid CRC: a clean read or an error naming the file; ranges checked against the file size', async () => {
  const t = new Tally();
  await check(
    fc.asyncProperty(jsonEditsArb, async (edits) => {
      // Each value cloned on its own: two edits may share one value, and editJson would nest it in itself.
      const own = edits.map((e) => ({ ...e, value: structuredClone(e.value) }));
      const o = await cleanReadOf(fresh(), withHeader(toJsonText(editJson(HEADER, own))), readAll);
      t.add(o);
    }),
    { seed: 1415, numRuns: fcRuns(500) },
  );
  assert.ok(t.ok > 0 && t.errors > 0, `fuzz reached both outcomes (ok ${t.ok}, errors ${t.errors})`);
});

test('regression: damaged header fields are named', async () => {
  const f = fresh();
  const bad = (edit: (h: typeof HEADER) => void) => {
    const h = structuredClone(HEADER);
    edit(h);
    fs.writeFileSync(f, withHeader(JSON.stringify(h)));
    return () => readAll(f);
  };
  await rejectsNaming(bad((h) => (h.tensors[0].offset = CK.length)), f, 'tensor "weights/model/a"', 'outside the data');
  await rejectsNaming(bad((h) => (h.tensors[1].offset = h.tensors[0].offset + 4)), f, 'overlap');
  await rejectsNaming(bad((h) => (h.tensors[0].shape = [2, 4])), f, 'field "bytes" is 24', 'needs 32');
  await rejectsNaming(bad((h) => (h.tensors[0].dtype = 'f64')), f, 'field "dtype"');
  await rejectsNaming(bad((h) => (h.tensors[0].crc32 ^= 1)), f, 'CRC-32 does not match');
  await rejectsNaming(bad((h) => (h.weights.model.i = { $t: 0 })), f, 'referenced twice');
  await rejectsNaming(bad((h) => (h.weights.model.i = { $t: 9 })), f, 'weights/model/i', 'tensor index below 3');
  await rejectsNaming(bad((h) => (h.weights.model.i = 4)), f, 'tensor "model/i"', 'not a tensor reference');
  await rejectsNaming(bad((h) => (h.step = -1)), f, 'field "step"');
  await rejectsNaming(bad((h) => delete h.tensors), f, 'field "tensors"');
  fs.writeFileSync(f, CK.subarray(0, CK.length - 1));
  await rejectsNaming(() => loadCheckpoint(f), f, 'truncated');
});

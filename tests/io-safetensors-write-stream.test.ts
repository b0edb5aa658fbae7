// Streamed safetensors writing: the header first (from names, dtypes and shapes), then each
// tensor read, encoded and written one at a time. Files must be byte-identical to the
// whole-host writer's for the same tensors (any mix of dtypes and stored dtypes), reads must
// come one after another in file order, and a failed read must leave no file behind. Then the
// GPU side: a model's weights and a whole NLA saved this way equal the old host-copy bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { serializeSafetensors, writeSafetensors, type SaveDType, type TensorToSave } from '../src/io/safetensors.js';
import { writeSafetensorsStreamed } from '../src/io/safetensors-write-stream.js';
import { property } from '../src/testing/property.js';
import * as T from '../src/tensor/index.js';
import { Weights } from '../src/nn/weights.js';
import { writeWeights } from '../src/nn/weights-save.js';
import type { HostTensor } from '../src/io/host-tensor.js';
import { SKIP_NO_MODEL } from './helpers.js';
import { untrainedStoriesNla } from './stories-nla.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'st-write-stream-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
const concat = (chunks: Uint8Array[]) => Buffer.concat(chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength)));

const arbTensor = fc.record({
  shape: fc.array(fc.integer({ min: 0, max: 6 }), { maxLength: 3 }),
  int: fc.boolean(), saveAs: fc.constantFrom<SaveDType | undefined>(undefined, 'f32', 'f16', 'bf16'), seed: fc.integer({ min: 1, max: 1e6 }),
});

test('streamed files are byte-identical to the whole-host writer, reading one tensor at a time in file order', async () => {
  let n = 0;
  await property(fc.tuple(fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9._]{0,11}$/), { minLength: 1, maxLength: 7 }), fc.array(arbTensor, { minLength: 7, maxLength: 7 })), async ([names, specs]) => {
    const tensors: Record<string, TensorToSave> = {};
    names.forEach((name, i) => {
      const s = specs[i], size = s.shape.reduce((a, b) => a * b, 1);
      const data = s.int ? Int32Array.from({ length: size }, (_, j) => (j * 7919 + s.seed) % 200003 - 100000) : Float32Array.from({ length: size }, (_, j) => Math.sin(j + s.seed) * 10 ** ((j % 9) - 4));
      tensors[name] = s.int ? { dtype: 'i32', shape: s.shape, data } : { dtype: 'f32', shape: s.shape, data, saveAs: s.saveAs };
    });
    const meta = { note: `case ${n}` };
    const want = concat(serializeSafetensors(tensors, meta));
    const file = path.join(tmp, `case-${n++}.safetensors`);
    const order: string[] = [];
    let pending = false;
    await writeSafetensorsStreamed(file, Object.entries(tensors).map(([name, t]) => ({
      name, dtype: t.saveAs ?? t.dtype, shape: t.shape,
      read: async () => {
        assert.ok(!pending, `${name} read while another read was outstanding`);
        pending = true;
        order.push(name);
        await new Promise((r) => setImmediate(r));
        pending = false;
        return { dtype: t.dtype, shape: t.shape, data: t.data };
      },
    })), meta);
    assert.ok(fs.readFileSync(file).equals(want), 'bytes differ from serializeSafetensors');
    // File order: the header's data offsets increase in the order the tensors were read.
    const header = JSON.parse(want.subarray(8, 8 + Number(want.readBigUInt64LE(0))).toString()) as Record<string, { data_offsets: number[] }>;
    const byOffset = names.slice().sort((a, b) => header[a].data_offsets[0] - header[b].data_offsets[0] || header[a].data_offsets[1] - header[b].data_offsets[1]);
    assert.deepEqual(order.map((x) => header[x].data_offsets), byOffset.map((x) => header[x].data_offsets));
    assert.equal(order.length, names.length);
  }, { numRuns: 30 });
});

test('a failed read leaves neither the file nor a temp file; a shape that changes is refused by name', async () => {
  const dir = fs.mkdtempSync(path.join(tmp, 'fail-'));
  const file = path.join(dir, 'x.safetensors');
  const ok = (shape: number[]) => async (): Promise<HostTensor> => ({ dtype: 'f32', shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
  await assert.rejects(writeSafetensorsStreamed(file, [
    { name: 'a', dtype: 'f32', shape: [2], read: ok([2]) },
    { name: 'b', dtype: 'f32', shape: [3], read: async () => { throw new Error('readback failed'); } },
  ]), /readback failed/);
  assert.deepEqual(fs.readdirSync(dir), []);
  await assert.rejects(writeSafetensorsStreamed(file, [{ name: 'w', dtype: 'bf16', shape: [2, 3], read: ok([3, 2]) }]), /x\.safetensors.*tensor "w": read as \[3,2\], listed as \[2,3\]/s);
  await assert.rejects(writeSafetensorsStreamed(file, [{ name: 'w', dtype: 'f32', shape: [1], read: ok([1]) }, { name: 'w', dtype: 'f32', shape: [1], read: ok([1]) }]), /tensor "w" listed twice/);
  assert.deepEqual(fs.readdirSync(dir), []);
});

test('writeWeights (stored f32 / bf16, a parameter left out, a transform) equals writeSafetensors of the host copy, byte for byte', async () => {
  await T.initGpu();
  const host = new Map<string, HostTensor>([
    ['model.embed_tokens.weight', { dtype: 'f32', shape: [37, 8], data: Float32Array.from({ length: 296 }, (_, i) => Math.cos(i) * 3) }],
    ['model.norm.weight', { dtype: 'f32', shape: [8], data: Float32Array.from({ length: 8 }, (_, i) => 1 + i / 100) }],
    ['head', { dtype: 'f32', shape: [2, 8], data: Float32Array.from({ length: 16 }, (_, i) => i - 7.5) }],
  ]);
  const w = Weights.fromHost(host);
  const neg = (k: string, t: HostTensor): HostTensor => (k.endsWith('norm.weight') ? { ...t, data: t.data.map((x) => -x) } : t);
  for (const saveAs of ['f32', 'bf16', 'f16'] as const) {
    const a = path.join(tmp, `w-${saveAs}.safetensors`), b = path.join(tmp, `w-${saveAs}-old.safetensors`);
    await writeWeights(a, w, { saveAs, omit: ['head'], transform: neg });
    const old = await w.toHost();
    old.delete('head');
    writeSafetensors(b, Object.fromEntries([...old].map(([k, t]) => [k, { ...neg(k, t), saveAs }])));
    assert.ok(fs.readFileSync(a).equals(fs.readFileSync(b)), `stored ${saveAs}: bytes differ`);
  }
  w.dispose();
});

test('NLA.save writes av/ar byte-identical to the host-copy writer (stories260K)', { skip: SKIP_NO_MODEL }, async () => {
  const dir = fs.mkdtempSync(path.join(tmp, 'nla-'));
  const { nla, av, ar } = await untrainedStoriesNla();
  await nla.save(dir);
  for (const [name, w] of [['av', av.model.w], ['ar', ar.model.w]] as const) {
    const old = concat(serializeSafetensors(Object.fromEntries(await w.toHost())));
    const got = fs.readFileSync(path.join(dir, `${name}.safetensors`));
    assert.ok(w.map.size > 5 && got.length > 100_000, `${name}: ${w.map.size} tensors, ${got.length} B`);
    assert.ok(got.equals(old), `${name}.safetensors differs from the host-copy writer's bytes`);
  }
  nla.dispose();
});

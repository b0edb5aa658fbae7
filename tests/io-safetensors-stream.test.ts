// Streaming safetensors reads (src/io/safetensors-stream.ts): any element range of any tensor,
// read as f32 / f16 bits / bf16 bits, equals the whole-file reader's decoded values converted
// the same way; spans of sharded directories match the index; bad ranges name file and tensor.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { decodeBf16, decodeF16, encodeBf16, encodeF16 } from '../src/io/half.js';
import { readSafetensors, writeSafetensors, type TensorToSave } from '../src/io/safetensors.js';
import { bf16ToF16, listSafetensors, listSafetensorsDir, SpanReader, type ReadAs } from '../src/io/safetensors-stream.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-st-stream-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

/** What a reader must return: the f32 values in `as`'s representation. */
function convert(values: Float32Array, as: ReadAs): Float32Array | Uint16Array {
  return as === 'f32' ? values : as === 'f16' ? encodeF16(values) : encodeBf16(values);
}

describe('streamed safetensors reads', () => {
  test('any range of any tensor, read as f32/f16/bf16, equals the whole-file decode converted', () => {
    const dtypes = ['f32', 'f16', 'bf16'] as const;
    let n = 0;
    fc.assert(
      fc.property(
        fc.array(fc.record({ shape: fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 3 }), dtype: fc.constantFrom(...dtypes), seed: fc.integer() }), { minLength: 1, maxLength: 4 }),
        fc.constantFrom<ReadAs>('f32', 'f16', 'bf16'),
        fc.nat(),
        (specs, as, pick) => {
          const tensors: Record<string, TensorToSave> = {};
          specs.forEach((s, i) => {
            const len = s.shape.reduce((a, b) => a * b, 1);
            // Values spanning f16's subnormals to beyond its range, so conversions are exercised.
            const data = Float32Array.from({ length: len }, (_, j) => Math.sin(s.seed + 31 * j) * 10 ** ((j % 13) - 7));
            tensors[`t${i}`] = { dtype: s.dtype, shape: s.shape, data };
          });
          const file = path.join(tmp, `r${n++}.safetensors`);
          writeSafetensors(file, tensors);
          const whole = readSafetensors(file);
          const spans = listSafetensors(file);
          assert.deepEqual(spans.map((s) => s.name).sort(), Object.keys(tensors).sort());
          const reader = new SpanReader();
          try {
            for (const span of spans) {
              const ref = whole.get(span.name)!;
              assert.equal(span.dtype, ref.dtype);
              assert.deepEqual(span.shape, ref.shape);
              const len = ref.data.length;
              const start = pick % len, count = (pick >> 4) % (len - start + 1);
              const got = reader.read(span, start, count, as);
              const want = span.dtype === 'bf16' && as === 'f16' ? bf16ToF16(encodeBf16(ref.data as Float32Array)) : convert(ref.data as Float32Array, as);
              assert.deepEqual(Array.from(got), Array.from(want.subarray(start, start + count)), `${span.name} ${span.dtype} as ${as} [${start}, +${count})`);
            }
          } finally {
            reader.close();
          }
          fs.rmSync(file);
        },
      ),
      { numRuns: 60, seed: 13 },
    );
  });

  test('bf16 -> f16 bits: exact inside f16\'s normal range, nearest below it, inf above, NaN stays NaN', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const f32 = decodeBf16(all), back = decodeF16(bf16ToF16(all));
    for (let i = 0; i < 65536; i++) {
      const x = f32[i]!, y = back[i]!;
      if (Number.isNaN(x)) assert.ok(Number.isNaN(y), `bits ${i}`);
      else if (Math.abs(x) >= 2 ** -14 && Math.abs(x) <= 65504) assert.equal(y, x, `bits ${i}: ${x}`);
      else if (Math.abs(x) > 65520) assert.equal(y, Math.sign(x) * Infinity, `bits ${i}: ${x}`);
      else assert.ok(Math.abs(y - x) <= 2 ** -25 || Math.abs(y - x) <= Math.abs(x) * 2 ** -11, `bits ${i}: ${x} -> ${y}`);
    }
  });

  test('sharded directories: every tensor of the index, with its shard; a bad range names file and tensor', () => {
    const dir = path.join(tmp, 'sharded');
    fs.mkdirSync(dir);
    const a = Float32Array.from({ length: 6 }, (_, i) => i + 0.5), b = Float32Array.from({ length: 4 }, (_, i) => -i);
    writeSafetensors(path.join(dir, 's1.safetensors'), { a: { dtype: 'bf16', shape: [2, 3], data: a } });
    writeSafetensors(path.join(dir, 's2.safetensors'), { b: { dtype: 'f32', shape: [4], data: b } });
    fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { a: 's1.safetensors', b: 's2.safetensors' } }));
    const spans = listSafetensorsDir(dir);
    assert.deepEqual(spans.map((s) => [s.name, path.basename(s.file), s.dtype]), [['a', 's1.safetensors', 'bf16'], ['b', 's2.safetensors', 'f32']]);
    const r = new SpanReader();
    try {
      assert.deepEqual(Array.from(r.read(spans[0]!, 1, 4, 'f32')), [1.5, 2.5, 3.5, 4.5]);
      assert.deepEqual(Array.from(r.read(spans[1]!, 0, 4, 'f32')), [-0, -1, -2, -3]);
      assert.throws(() => r.read(spans[1]!, 2, 3, 'f32'), /s2\.safetensors: tensor "b" has 4 elements; cannot read \[2, 5\)/);
    } finally {
      r.close();
    }
    fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { a: 's1.safetensors', c: 's2.safetensors' } }));
    assert.throws(() => listSafetensorsDir(dir), /weight_map says "c" is in .*s2\.safetensors but that shard has no such tensor/);
  });
});

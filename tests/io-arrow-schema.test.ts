// ARROW:schema (arrow-schema.ts) against pyarrow: a flatbuffer reader written here from
// Schema.fbs/Message.fbs is first checked on the bytes pyarrow 25.0.1 wrote for the reference's
// base columns (the constant below), then reads nla's encoding of the same columns: the two
// decode to the same fields and types. A parquet file carrying pyarrow's exact schema (a
// fixed_size_list activation_vector) is read by nla's reader.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parquetMetadata } from 'hyparquet';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { arrowSchemaMetadata, type ArrowField } from '../src/io/arrow-schema.js';
import { readReferenceDataset, writeBaseDataset } from '../src/nla/reference-dataset.js';

// python3: pq.write_table(pa.table({n_raw_tokens int64, detokenized_text_truncated str,
// activation_vector list_(float32, 3), activation_layer int64, doc_id str})); metadata[b'ARROW:schema']
const PYARROW_BASE =
  '/////6gBAAAQAAAAAAAKAAwABgAFAAgACgAAAAABBAAMAAAACAAIAAAABAAIAAAABAAAAAUAAAA4AQAA5AAAAHAAAAAwAAAABAAAAOz+//8AAAEFEAAAABgAAAAEAAAAAAAAAAYAAABkb2NfaWQAABj///8U////AAABAhAAAAAkAAAABAAAAAAAAAAQAAAAYWN0aXZhdGlvbl9sYXllcgAAAAAI////AAAAAUAAAABQ////AAABEBQAAAAsAAAABAAAAAEAAAAoAAAAEQAAAGFjdGl2YXRpb25fdmVjdG9yAAYACAAEAAYAAAADAAAAkP///wAAAQMQAAAAHAAAAAQAAAAAAAAABAAAAGl0ZW0AAAYACAAGAAYAAAAAAAEAwP///wAAAQUQAAAAMAAAAAQAAAAAAAAAGgAAAGRldG9rZW5pemVkX3RleHRfdHJ1bmNhdGVkAAAEAAQABAAAABAAFAAIAAYABwAMAAAAEAAQAAAAAAABAhAAAAAoAAAABAAAAAAAAAAMAAAAbl9yYXdfdG9rZW5zAAAAAAgADAAIAAcACAAAAAAAAAFAAAAA';

/** Decode an IPC-encapsulated Schema message to plain fields (a reader independent of the writer). */
function decode(b64: string): unknown {
  const buf = Buffer.from(b64, 'base64');
  assert.equal(buf.readUInt32LE(0), 0xffffffff, 'continuation marker');
  const len = buf.readInt32LE(4);
  const fb = buf.subarray(8, 8 + len);
  const table = (pos: number) => {
    const vt = pos - fb.readInt32LE(pos);
    const n = (fb.readUInt16LE(vt) - 4) / 2;
    const at = (slot: number) => (slot < n ? fb.readUInt16LE(vt + 4 + 2 * slot) : 0);
    return {
      u8: (s: number, dflt = 0) => (at(s) ? fb.readUInt8(pos + at(s)) : dflt),
      i16: (s: number, dflt = 0) => (at(s) ? fb.readInt16LE(pos + at(s)) : dflt),
      i32: (s: number, dflt = 0) => (at(s) ? fb.readInt32LE(pos + at(s)) : dflt),
      ref: (s: number) => (at(s) ? pos + at(s) + fb.readUInt32LE(pos + at(s)) : -1),
    };
  };
  const str = (p: number) => fb.subarray(p + 4, p + 4 + fb.readUInt32LE(p)).toString('utf8');
  const vec = (p: number) => (p < 0 ? [] : Array.from({ length: fb.readUInt32LE(p) }, (_, i) => p + 4 + 4 * i + fb.readUInt32LE(p + 4 + 4 * i)));
  const field = (p: number): unknown => {
    const t = table(p), tag = t.u8(2), ty = table(t.ref(3));
    const type = tag === 2 ? { int: ty.i32(0), signed: ty.u8(1) === 1 } : tag === 3 ? { float: ty.i16(0) } : tag === 16 ? { fixedSizeList: ty.i32(0) } : { tag };
    return { name: str(t.ref(0)), nullable: t.u8(1) === 1, type, children: vec(t.ref(5)).map(field) };
  };
  const msg = table(fb.readUInt32LE(0));
  assert.deepEqual([msg.i16(0), msg.u8(1)], [4, 1], 'MetadataVersion V5, header Schema');
  const schema = table(msg.ref(2));
  return { endianness: schema.i16(0), fields: vec(schema.ref(1)).map(field) };
}

const base: ArrowField[] = [
  { name: 'n_raw_tokens', type: { kind: 'int64' } },
  { name: 'detokenized_text_truncated', type: { kind: 'utf8' } },
  { name: 'activation_vector', type: { kind: 'fixedSizeList', size: 3, item: { name: 'item', type: { kind: 'float32' } } } },
  { name: 'activation_layer', type: { kind: 'int64' } },
  { name: 'doc_id', type: { kind: 'utf8' } },
];
const leaf = (name: string, type: unknown) => ({ name, nullable: true, type, children: [] });
const EXPECTED = {
  endianness: 0,
  fields: [
    leaf('n_raw_tokens', { int: 64, signed: true }),
    leaf('detokenized_text_truncated', { tag: 5 }),
    { name: 'activation_vector', nullable: true, type: { fixedSizeList: 3 }, children: [leaf('item', { float: 1 })] },
    leaf('activation_layer', { int: 64, signed: true }),
    leaf('doc_id', { tag: 5 }),
  ],
};

test('nla\'s ARROW:schema decodes to what pyarrow writes for the reference\'s base columns', () => {
  assert.deepEqual(decode(PYARROW_BASE), EXPECTED, 'the test\'s reader reads pyarrow\'s bytes');
  assert.deepEqual(decode(arrowSchemaMetadata(base)), EXPECTED);
  // The av_sft prompt column: list<struct<role, content>>.
  const msgs = decode(arrowSchemaMetadata([{ name: 'prompt', type: { kind: 'list', item: { name: 'item', type: { kind: 'struct', fields: [{ name: 'role', type: { kind: 'utf8' } }, { name: 'content', type: { kind: 'utf8' } }] } } } }]));
  assert.deepEqual(msgs, { endianness: 0, fields: [{ name: 'prompt', nullable: true, type: { tag: 12 }, children: [{ name: 'item', nullable: true, type: { tag: 13 }, children: [leaf('role', { tag: 5 }), leaf('content', { tag: 5 })] }] }] });
});

test('a fixed_size_list file as pyarrow writes it is read; nla\'s own files carry the same schema', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-arrow-'));
  try {
    const str = (name: string) => ({ name, type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' });
    const file = path.join(tmp, 'fsl.parquet');
    fs.writeFileSync(file, new Uint8Array(parquetWriteBuffer({
      columnData: [
        { name: 'n_raw_tokens', data: [51n, 60n] }, { name: 'detokenized_text_truncated', data: ['a', 'b'] },
        { name: 'activation_vector', data: [[1, 2, 3], [-1, 0.5, 4]] }, { name: 'activation_layer', data: [20n, 20n] }, { name: 'doc_id', data: ['c:s:0', 'c:s:1'] },
      ],
      schema: [
        { name: 'schema', num_children: 5 }, { name: 'n_raw_tokens', type: 'INT64', repetition_type: 'OPTIONAL' }, str('detokenized_text_truncated'),
        { name: 'activation_vector', repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 }, { name: 'list', repetition_type: 'REPEATED', num_children: 1 }, { name: 'element', type: 'FLOAT', repetition_type: 'OPTIONAL' },
        { name: 'activation_layer', type: 'INT64', repetition_type: 'OPTIONAL' }, str('doc_id'),
      ] as never,
      kvMetadata: [{ key: 'ARROW:schema', value: PYARROW_BASE }],
    })));
    const r = await readReferenceDataset(file);
    assert.deepEqual([r.d, Array.from(r.vectors), r.stage], [3, [1, 2, 3, -1, 0.5, 4], 'base']);

    const own = path.join(tmp, 'own.parquet');
    writeBaseDataset(own, [0, 1].map((i) => ({ nRawTokens: 5, text: 'x', vector: Float32Array.from([i, 1, 2]), layer: 2, docId: `c:s:${i}` })), { baseModel: 'm', dModel: 3, layerIndex: 2, corpus: 'c', corpusSlice: { start: 0, length: 2 }, positionsPerDoc: 1 });
    const bytes = fs.readFileSync(own);
    const kv = parquetMetadata(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)).key_value_metadata ?? [];
    assert.deepEqual(decode(kv.find((x) => x.key === 'ARROW:schema')!.value!), EXPECTED);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

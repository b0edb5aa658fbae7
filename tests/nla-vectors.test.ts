// `nla explain --vectors`: vectors from .npy (written here byte by byte from NumPy's format
// description), .safetensors, .jsonl and the reference's parquet read to the same rows; the CLI
// explains them with a reference pair (tests/reference-fixture.ts) exactly as the library does
// for those rows, whatever the file type.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeSafetensors } from '../src/io/safetensors.js';
import { loadNLA } from '../src/nla/nla.js';
import { writeBaseDataset } from '../src/nla/reference-dataset.js';
import { readVectors } from '../src/nla/vectors.js';
import { okCli, runCli } from './cli-helpers.js';
import { SKIP_NO_MODEL } from './helpers.js';
import { buildReferencePair } from './reference-fixture.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-vectors-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
const d = 64;
const V = Float32Array.from({ length: 2 * d }, (_, i) => Math.sin(0.7 * i) * (i < d ? 3 : 0.5) + (i % 5 === 0 ? 1 : 0));

/** A .npy file: magic, version 1.0, u16 header length, the header dict padded to 64 bytes with "\n", data. */
function npy(file: string, descr: string, shape: number[], data: ArrayBufferView, fortran = false): void {
  let header = `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  head.writeUInt8(0x93, 0);
  head.write('NUMPY', 1, 'latin1');
  head.writeUInt8(1, 6);
  head.writeUInt8(0, 7);
  head.writeUInt16LE(header.length, 8);
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}

const f = (n: string) => path.join(tmp, n);

function writeAll(): void {
  npy(f('v.npy'), '<f4', [2, d], V);
  npy(f('one.npy'), '<f8', [d], Float64Array.from(V.subarray(0, d)));
  writeSafetensors(f('v.safetensors'), { directions: { dtype: 'f32', shape: [2, d], data: V }, other: { dtype: 'f32', shape: [3], data: Float32Array.of(1, 2, 3) } });
  fs.writeFileSync(f('v.jsonl'), [0, 1].map((r) => JSON.stringify(Array.from(V.subarray(r * d, (r + 1) * d)))).join('\n') + '\n');
  fs.writeFileSync(f('obj.jsonl'), [0, 1].map((r) => JSON.stringify({ name: `f${r}`, dir: Array.from(V.subarray(r * d, (r + 1) * d)) })).join('\n'));
  writeBaseDataset(f('v.parquet'), [0, 1].map((r) => ({ nRawTokens: 5 + r, text: 'x', vector: V.slice(r * d, (r + 1) * d), layer: 2, docId: `c:av:${r}` })), { baseModel: 'm', dModel: d, layerIndex: 2, corpus: 'c', corpusSlice: { start: 0, length: 2 }, positionsPerDoc: 1 });
}

test('.npy, .safetensors, .jsonl and .parquet read to the same rows; errors name the file and what is wrong', async () => {
  writeAll();
  for (const [file, opts] of [['v.npy', {}], ['v.safetensors', { tensor: 'directions' }], ['v.jsonl', {}], ['obj.jsonl', { field: 'dir' }], ['v.parquet', {}]] as const) {
    const v = await readVectors(f(file), opts);
    assert.deepEqual([v.n, v.d], [2, d], file);
    assert.deepEqual(v.data, V, file);
  }
  const one = await readVectors(f('one.npy'));
  assert.deepEqual([one.n, one.d], [1, d]);
  assert.deepEqual(one.data, V.slice(0, d));
  assert.deepEqual((await readVectors(f('v.parquet'))).labels, ['c:av:0@5', 'c:av:1@6']);
  assert.deepEqual((await readVectors(f('v.jsonl'))).labels, [`${f('v.jsonl')}:1`, `${f('v.jsonl')}:2`]);

  npy(f('fortran.npy'), '<f4', [2, d], V, true);
  await assert.rejects(readVectors(f('fortran.npy')), /fortran\.npy: fortran_order is True/);
  npy(f('big.npy'), '>f4', [2, d], V);
  await assert.rejects(readVectors(f('big.npy')), /big\.npy: descr ">f4" is not supported/);
  await assert.rejects(readVectors(f('v.safetensors')), /v\.safetensors: holds 2 tensors \(directions, other\); name one with --tensor/);
  fs.writeFileSync(f('bad.jsonl'), '[1, 2]\n{"vector": "x"}\n');
  await assert.rejects(readVectors(f('bad.jsonl')), /bad\.jsonl:2: expected an array of numbers/);
  await assert.rejects(readVectors(f('v.txt')), /file not found/);
});

test('nla explain --vectors: the same explanations from every file type, equal to the library\'s for those rows', { skip: SKIP_NO_MODEL, timeout: 300_000 }, async () => {
  writeAll();
  const pair = await buildReferencePair(path.join(tmp, 'pair'), 'qwen2');
  const nla = await loadNLA(pair.nla);
  nla.meta.maxExplanationTokens = 4;
  const want = await nla.explainActivations(V);
  // A reference pair carries no Var: FVE is relative to the evaluated vectors' own spread.
  const { variance } = nla.statsOf(V);
  nla.dispose();
  // (An untrained AV's few greedy tokens need not differ between vectors; that the AV reads the
  // injected vector is tested on its log-probs in nla-reference.test.ts.)
  const args = ['explain', '--nla', pair.nla, '--max-tokens', '4', '--json'];
  for (const [file, extra] of [['v.npy', []], ['v.parquet', []], ['v.safetensors', ['--tensor', 'directions']]] as const) {
    const out = JSON.parse((await okCli([...args, '--vectors', f(file), ...extra], 120_000)).stdout);
    assert.equal(out.layer, pair.K);
    assert.deepEqual(out.vectors.map((r: { index: number }) => r.index), [0, 1]);
    assert.deepEqual(out.vectors.map((r: { label: string }) => r.label), file === 'v.parquet' ? ['c:av:0@5', 'c:av:1@6'] : file === 'v.npy' ? ['array[0]', 'array[1]'] : ['directions[0]', 'directions[1]']);
    assert.deepEqual(out.vectors.map((r: { explanations: { text: string; mse: number }[] }) => r.explanations.map((e) => [e.text, e.mse])), want.map((ex) => ex.map((e) => [e.text, e.mse])), file);
    assert.equal(out.variance, variance);
    assert.match(out.variance_note, /^Var \d\.\d{3} computed over the 2 vector\(s\) of .*: the reference sidecars carry no Var/);
    for (const [i, r] of (out.vectors as { explanations: { mse: number; fve: number }[] }[]).entries()) assert.equal(r.explanations[0].fve, 1 - want[i][0].mse / variance);
  }
  const wrong = await runCli([...args, '--vectors', f('v.safetensors'), '--tensor', 'other']);
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.stderr, /v\.safetensors: vectors of 3 values, the NLA reads d = 64/);
});

// The reference's dataset stages after base (NLA-REFERENCE-FORMAT.md §4).
// 1. Reading: fixtures written here column by column with hyparquet-writer and sidecars typed
//    out as YAML, following the format document (not nla's writer): stage, explanations and
//    vectors come back; a file that breaks the format is refused naming file, row and column.
// 2. Writing: `nla extract --format reference` on the known-answer stories writes splits/*_raw,
//    splits/*_explained, av_sft, ar_sft, rl and *_shuf with the columns in the document's order,
//    the documents split by the reference's rule (recomputed here), and nla reads them back
//    (explanations = the store's summaries).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { parse as parseYaml } from 'yaml';
import { readReferenceDataset } from '../src/nla/reference-dataset.js';
import { ActivationStore } from '../src/nla/store.js';
import { PyRandom } from '../src/util/py-random.js';
import { okCli } from './cli-helpers.js';
import { modelFile, SKIP_NO_MODEL } from './helpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-ref-stages-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

const ACTOR = 'Describe the vector.\n\n<concept>{injection_char}</concept>\n\nPlease provide an explanation.';
const CRITIC = 'Summary of the following text: <text>{explanation}</text> <summary>';
const SIDECAR = (stage: string, rows: number, withTokens = true) => `dataset_id: 0a1b2c3d
stage: ${stage}
row_count: ${rows}
extraction:
  base_model: Qwen/Qwen2.5-7B
  d_model: 3
  layer_index: 20
  norm: none
  corpus: fineweb
  corpus_slice:
    start: 0
    length: 2
  positions_per_doc: 10
kind: nla_dataset
schema_version: 1
keep_debug_metadata: false
${withTokens ? `tokens:
  injection_char: "\\u320E"
  injection_token_id: 149705
  injection_left_neighbor_id: 29
  injection_right_neighbor_id: 522
  critic_suffix_ids: [1318, 29, 366, 1708, 29]
` : ''}prompt_templates:
  actor: ${JSON.stringify(ACTOR)}
  critic: ${JSON.stringify(CRITIC)}
parent_datasets: []
created_at: '2026-01-01T00:00:00'
created_by: test
git_commit: abc
`;

const str = (name: string) => ({ name, type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' });
const i64 = (name: string) => ({ name, type: 'INT64', repetition_type: 'OPTIONAL' });
const vec = [
  { name: 'activation_vector', repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
  { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
  { name: 'element', type: 'FLOAT', repetition_type: 'OPTIONAL' },
];
const messages = [
  { name: 'prompt', repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
  { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
  { name: 'element', repetition_type: 'OPTIONAL', num_children: 2 },
  str('role'),
  str('content'),
];
const V = [[1, 2, 3], [-1, 0.5, 4]];
const userMsg = (content: string) => [{ role: 'user', content }];
const INJ = ACTOR.replace('{injection_char}', '<INJECT>');

function write(name: string, columnData: { name: string; data: unknown[] }[], schema: unknown[], sidecar?: string): string {
  const file = path.join(tmp, name);
  const buf = parquetWriteBuffer({ columnData, schema: [{ name: 'schema', num_children: columnData.length }, ...schema] as never });
  fs.writeFileSync(file, new Uint8Array(buf));
  if (sidecar !== undefined) fs.writeFileSync(`${file}.nla_meta.yaml`, sidecar);
  return file;
}

const avSftColumns = (prompts: unknown[], responses: unknown[]) => [
  { name: 'prompt', data: prompts },
  { name: 'response', data: responses },
  { name: 'activation_vector', data: V },
  { name: 'n_raw_tokens', data: [51n, 60n] },
  { name: 'activation_layer', data: [20n, 20n] },
  { name: 'doc_id', data: ['fineweb:train:0', 'fineweb:train:1'] },
];
const avSftSchema = [...messages, str('response'), ...vec, i64('n_raw_tokens'), i64('activation_layer'), str('doc_id')];

test('reference stage files written by the format document are read: stage, explanations, vectors; broken ones refused naming the field', async () => {
  const av = write('av_sft.parquet', avSftColumns([userMsg(INJ), userMsg(INJ)], ['<explanation>\nA cat.\n</explanation>', '<explanation>\nDogs bark.\n\nA park.\n</explanation>']), avSftSchema, SIDECAR('av_sft', 2));
  const a = await readReferenceDataset(av);
  assert.deepEqual([a.stage, a.d, Array.from(a.vectors), a.explanations], ['av_sft', 3, V.flat(), ['A cat.', 'Dogs bark.\n\nA park.']]);

  const rl = write('rl.parquet', avSftColumns([userMsg(INJ), userMsg(INJ)], ['', '']).filter((c) => c.name !== 'response'), avSftSchema.filter((s) => (s as { name: string }).name !== 'response'), SIDECAR('rl', 2));
  const r = await readReferenceDataset(rl);
  assert.deepEqual([r.stage, r.explanations], ['rl', undefined]);

  const arRows = ['Lily ran.', 'A red\nball.'].map((e) => CRITIC.replace('{explanation}', e));
  const ar = write('ar_sft.parquet', [{ name: 'prompt', data: arRows }, { name: 'activation_vector', data: V }, { name: 'provenance', data: ['x', 'y'] }], [str('prompt'), ...vec, str('provenance')], SIDECAR('ar_sft', 2));
  assert.deepEqual((await readReferenceDataset(ar)).explanations, ['Lily ran.', 'A red\nball.']);

  const ex = write('av_explained.parquet', [
    { name: 'n_raw_tokens', data: [51n, 60n] }, { name: 'detokenized_text_truncated', data: ['a', 'b'] }, { name: 'activation_vector', data: V },
    { name: 'activation_layer', data: [20n, 20n] }, { name: 'doc_id', data: ['c:s:0', 'c:s:1'] }, { name: 'api_explanation', data: ['one', 'two'] },
  ], [i64('n_raw_tokens'), str('detokenized_text_truncated'), ...vec, i64('activation_layer'), str('doc_id'), str('api_explanation')], SIDECAR('base', 2, false));
  assert.deepEqual([(await readReferenceDataset(ex)).stage, (await readReferenceDataset(ex)).explanations], ['base', ['one', 'two']]);

  // Without a sidecar there is no contract: the vectors are read, the stage inferred, no explanations.
  const loose = write('loose.parquet', [{ name: 'prompt', data: ['anything', 'at all'] }, { name: 'activation_vector', data: V }], [str('prompt'), ...vec]);
  const l = await readReferenceDataset(loose);
  assert.deepEqual([l.stage, Array.from(l.vectors), l.explanations], ['ar_sft', V.flat(), undefined]);

  // Broken files, each refused naming what is wrong.
  const bad = async (name: string, cols: { name: string; data: unknown[] }[], schema: unknown[], sidecar: string | undefined, re: RegExp) => {
    await assert.rejects(readReferenceDataset(write(name, cols, schema, sidecar)), re);
  };
  await bad('b1.parquet', avSftColumns([userMsg(INJ), userMsg('no marker here')], ['<explanation>a</explanation>', '<explanation>b</explanation>']), avSftSchema, SIDECAR('av_sft', 2), /b1\.parquet: row 1: column "prompt" holds 0 <INJECT>, expected 1/);
  await bad('b2.parquet', avSftColumns([userMsg(INJ), userMsg(INJ)], ['<explanation>a</explanation>', 'no tags']), avSftSchema, SIDECAR('av_sft', 2), /b2\.parquet: row 1: column "response" has no <explanation>/);
  await bad('b3.parquet', avSftColumns([userMsg(INJ), userMsg(INJ)], ['<explanation>a</explanation>', '<explanation>b</explanation>']), avSftSchema, SIDECAR('av_sft', 2, false), /b3\.parquet\.nla_meta\.yaml: field "tokens" is missing; stage av_sft/);
  await bad('b4.parquet', avSftColumns([userMsg('Other words <INJECT>'), userMsg(INJ)], ['<explanation>a</explanation>', '<explanation>b</explanation>']), avSftSchema, SIDECAR('av_sft', 2), /b4\.parquet: row 0: column "prompt" is not prompt_templates\.actor/);
  await bad('b5.parquet', [{ name: 'prompt', data: [arRows[0], 'Summary: nope'] }, { name: 'activation_vector', data: V }, { name: 'provenance', data: ['x', 'y'] }], [str('prompt'), ...vec, str('provenance')], SIDECAR('ar_sft', 2), /b5\.parquet: row 1: column "prompt" is not prompt_templates\.critic filled/);
  await bad('b6.parquet', [{ name: 'prompt', data: arRows }, { name: 'activation_vector', data: V }], [str('prompt'), ...vec], SIDECAR('sft', 2), /field "stage" is "sft"/);
});

test('extract --format reference writes the stages after base; the split is the reference\'s; nla reads them back', { skip: SKIP_NO_MODEL, timeout: 300_000 }, async () => {
  const out = path.join(tmp, 'act');
  const r = await okCli(['extract', '--model', modelFile('stories260K.bin'), '--layer', '2', '--out', out, '--stories', '12', '--cuts', '2', '--min-tokens', '5', '--format', 'reference'], 240_000);
  assert.match(r.stdout, /wrote the reference's later stages/);
  const store = ActivationStore.open(out);
  const { h, meta } = store.readAll();
  const d = store.manifest.d;
  const read = async (rel: string) => {
    const bytes = fs.readFileSync(path.join(out, rel));
    const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    return { names: parquetMetadata(buf).schema.filter((s) => s.name !== 'schema' && s.name !== 'list' && s.name !== 'element' && s.name !== 'role' && s.name !== 'content').map((s) => s.name), rows: (await parquetReadObjects({ file: buf })) as Record<string, unknown>[] };
  };
  const sidecar = (rel: string) => parseYaml(fs.readFileSync(path.join(out, `${rel}.nla_meta.yaml`), 'utf8')) as Record<string, unknown>;

  // The reference's split, recomputed: sorted doc ids, random.Random(42).shuffle, int(n * 0.25) av, int(n * 0.25) ar, the rest.
  const docId = (i: number) => `known-answer:${meta[i].split}:${meta[i].doc}`;
  const ids = new PyRandom(42).shuffle([...new Set(meta.map((_, i) => docId(i)))].sort());
  const nq = Math.floor(ids.length * 0.25);
  const part = new Map(ids.map((id, i) => [id, i < nq ? 'av' : i < 2 * nq ? 'ar' : 'rest']));
  const rowsOf = (p: string) => meta.map((_, i) => i).filter((i) => part.get(docId(i)) === p);
  assert.ok(nq >= 2 && rowsOf('rest').length > 0, `${ids.length} documents`);

  const BASE = ['n_raw_tokens', 'detokenized_text_truncated', 'activation_vector', 'activation_layer', 'doc_id'];
  for (const p of ['av', 'ar', 'rest']) {
    const f = await read(`splits/${p}_raw.parquet`);
    assert.deepEqual(f.names, BASE);
    assert.deepEqual(f.rows.map((x) => x.doc_id), rowsOf(p).map(docId), `${p}_raw rows`);
  }
  const av = await read('splits/av_explained.parquet');
  assert.deepEqual(av.names, [...BASE, 'api_explanation']);
  assert.deepEqual(av.rows.map((x) => x.api_explanation), rowsOf('av').map((i) => meta[i].summary));

  const sft = await read('av_sft.parquet');
  assert.deepEqual(sft.names, ['prompt', 'response', 'activation_vector', 'n_raw_tokens', 'activation_layer', 'doc_id', 'detokenized_text_truncated']);
  const actor = 'Explain the thought.\n<concept>{injection_char}</concept>\n<explanation>\n';
  sft.rows.forEach((x, k) => {
    const i = rowsOf('av')[k];
    assert.deepEqual(x.prompt, [{ role: 'user', content: actor.replace('{injection_char}', '<INJECT>') }]);
    assert.equal(x.response, `<explanation>\n${meta[i].summary}\n</explanation>`);
    assert.deepEqual(Float32Array.from(x.activation_vector as number[]), h.slice(i * d, (i + 1) * d));
    assert.equal(x.n_raw_tokens, BigInt(meta[i].pos + 1));
  });
  const arSft = await read('ar_sft.parquet');
  assert.deepEqual(arSft.names, ['prompt', 'activation_vector', 'provenance']);
  assert.deepEqual(arSft.rows.map((x) => x.prompt), rowsOf('ar').map((i) => `Summary of the following text: ${meta[i].summary}`));
  const rl = await read('rl.parquet');
  assert.deepEqual(rl.names, ['prompt', 'activation_vector', 'n_raw_tokens', 'activation_layer', 'doc_id', 'detokenized_text_truncated']);
  assert.deepEqual(rl.rows.map((x) => x.doc_id), rowsOf('rest').map(docId));
  // *_shuf: the same rows in random.Random(42)'s order.
  const shuf = await read('av_sft_shuf.parquet');
  assert.deepEqual(shuf.rows.map((x) => x.response), new PyRandom(42).shuffle(sft.rows.map((x) => x.response)));

  // Sidecars: stage, row count, and the training stages' tokens and templates (nla's default prompts).
  const s = sidecar('av_sft.parquet');
  assert.deepEqual([s.stage, s.row_count, s.kind, s.schema_version], ['av_sft', sft.rows.length, 'nla_dataset', 1]);
  assert.deepEqual((s.prompt_templates as Record<string, unknown>).actor, actor);
  assert.deepEqual(s.tokens, { injection_char: '\u007f', injection_token_id: 130, injection_left_neighbor_id: 505, injection_right_neighbor_id: 504, critic_suffix_ids: null });
  assert.deepEqual([sidecar('ar_sft.parquet').stage, sidecar('rl.parquet').stage, sidecar('splits/av_raw.parquet').stage], ['ar_sft', 'rl', 'base']);
  assert.equal(sidecar('splits/av_raw.parquet').tokens, undefined);

  // nla reads them back: SFT data (vectors + explanations) equal to the store's rows.
  const back = await readReferenceDataset(path.join(out, 'av_sft.parquet'));
  assert.deepEqual([back.stage, back.explanations], ['av_sft', rowsOf('av').map((i) => meta[i].summary)]);
  const backAr = await readReferenceDataset(path.join(out, 'ar_sft.parquet'));
  assert.deepEqual(backAr.explanations, rowsOf('ar').map((i) => meta[i].summary));
  assert.deepEqual(backAr.vectors, Float32Array.from(rowsOf('ar').flatMap((i) => Array.from(h.slice(i * d, (i + 1) * d)))));
});

// `nla extract --format reference`: beside the store, base.parquet in the reference's dataset
// layout (NLA-REFERENCE-FORMAT.md §4) and its sidecar. The parquet is checked at the level of
// its schema elements (read with hyparquet's metadata reader) and row by row against the store;
// the sidecar key by key, with the dataset id recomputed here from the reference's formula.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import { parse as parseYaml } from 'yaml';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { readReferenceDataset } from '../src/nla/reference-dataset.js';
import { ActivationStore } from '../src/nla/store.js';
import { okCli, runCli } from './cli-helpers.js';
import { modelFile, SKIP_NO_MODEL } from './helpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-extract-ref-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

test('extract --format reference writes base.parquet (schema, rows = the store) and its sidecar', { skip: SKIP_NO_MODEL, timeout: 240_000 }, async () => {
  const out = path.join(tmp, 'act');
  await okCli(['extract', '--model', modelFile('stories260K.bin'), '--layer', '2', '--out', out, '--stories', '6', '--cuts', '2', '--min-tokens', '5', '--format', 'reference'], 180_000);
  const file = path.join(out, 'base.parquet');
  const bytes = fs.readFileSync(file);
  const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const schema = parquetMetadata(buf).schema.map((s) => [s.name, s.type ?? null, s.converted_type ?? null, s.repetition_type ?? null]);
  assert.deepEqual(schema.slice(1), [
    ['n_raw_tokens', 'INT64', null, 'OPTIONAL'],
    ['detokenized_text_truncated', 'BYTE_ARRAY', 'UTF8', 'OPTIONAL'],
    ['activation_vector', null, 'LIST', 'OPTIONAL'],
    ['list', null, null, 'REPEATED'],
    ['element', 'FLOAT', null, 'OPTIONAL'],
    ['activation_layer', 'INT64', null, 'OPTIONAL'],
    ['doc_id', 'BYTE_ARRAY', 'UTF8', 'OPTIONAL'],
  ]);
  const rows = (await parquetReadObjects({ file: buf })) as { n_raw_tokens: bigint; detokenized_text_truncated: string; activation_vector: number[]; activation_layer: bigint; doc_id: string }[];
  const store = ActivationStore.open(out);
  const { h, meta } = store.readAll();
  const d = store.manifest.d;
  assert.equal(rows.length, store.manifest.count);
  assert.ok(rows.length >= 6, `${rows.length} rows`);
  const tok = loadTokenizer(modelFile('tok512.bin'));
  rows.forEach((r, i) => {
    assert.deepEqual(Float32Array.from(r.activation_vector), h.slice(i * d, (i + 1) * d), `row ${i}: vector`);
    assert.equal(r.n_raw_tokens, BigInt(meta[i].pos + 1));
    assert.equal(r.activation_layer, 2n);
    assert.equal(r.doc_id, `known-answer:${meta[i].split}:${meta[i].doc}`);
    // The text of the first n_raw_tokens tokens: it re-encodes (BOS first) to that many tokens, the last one the row's token.
    const ids = tok.encode(r.detokenized_text_truncated, { bos: true });
    assert.equal(ids.length, meta[i].pos + 1, `row ${i}: ${JSON.stringify(r.detokenized_text_truncated)}`);
    assert.equal(ids[ids.length - 1], meta[i].token);
  });
  // The sidecar: keys in the reference's order, null keys (tokens, api_summaries) omitted.
  const sc = parseYaml(fs.readFileSync(`${file}.nla_meta.yaml`, 'utf8')) as Record<string, unknown>;
  assert.deepEqual(Object.keys(sc), ['dataset_id', 'stage', 'row_count', 'extraction', 'kind', 'schema_version', 'keep_debug_metadata', 'prompt_templates', 'parent_datasets', 'created_at', 'created_by', 'git_commit']);
  const docs = new Set(meta.map((m) => m.doc)).size;
  const extraction = { base_model: 'stories260K', d_model: d, layer_index: 2, norm: 'none', corpus: 'the built-in known-answer stories', corpus_slice: { start: 0, length: docs }, positions_per_doc: 2 };
  assert.deepEqual([sc.stage, sc.row_count, sc.extraction, sc.kind, sc.schema_version], ['base', rows.length, extraction, 'nla_dataset', 1]);
  const id = createHash('sha256').update(`stories260K|2|the built-in known-answer stories|{'start': 0, 'length': ${docs}}`).digest('hex').slice(0, 8);
  assert.equal(sc.dataset_id, id);
  // nla's reader gives the same vectors.
  const back = await readReferenceDataset(file);
  assert.equal(back.d, d);
  assert.deepEqual(back.vectors, h);

  // A sidecar that disagrees with its parquet is refused naming the field.
  fs.writeFileSync(`${file}.nla_meta.yaml`, fs.readFileSync(`${file}.nla_meta.yaml`, 'utf8').replace(/^row_count: \d+$/m, 'row_count: 3'));
  await assert.rejects(readReferenceDataset(file), /nla_meta\.yaml: field "row_count" is 3/);
});

test('extract --format reference refuses --dtype f16 (the reference stores raw fp32)', { skip: SKIP_NO_MODEL, timeout: 60_000 }, async () => {
  const r = await runCli(['extract', '--model', modelFile('stories260K.bin'), '--layer', '2', '--out', path.join(tmp, 'f16'), '--format', 'reference', '--dtype', 'f16']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /--format reference writes raw fp32 vectors/);
});

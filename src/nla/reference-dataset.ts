// Activation datasets in the reference implementation's layout (../shared/docs/NLA-REFERENCE-FORMAT.md
// §4; reference: nla/datagen/stage0_extract.py, nla/datagen/sidecar.py): a parquet file of rows
//   n_raw_tokens int64 | detokenized_text_truncated string | activation_vector list<float32> |
//   activation_layer int64 | doc_id string
// (the "base" stage, raw fp32 vectors, never fp16) and its sidecar X.parquet.nla_meta.yaml.
// The reference writes activation_vector as Arrow fixed_size_list<float32>[d]; parquet itself
// has no fixed-size list (pyarrow records it in Arrow schema metadata), so it is written here
// as a parquet LIST of FLOAT, which the reference's loaders accept as the legacy list<float>.
// Written with hyparquet-writer, read with hyparquet.
import * as fs from 'node:fs';
import { createHash } from 'node:crypto';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { writeFileAtomic } from '../io/atomic-write.js';
import { readParquetRows } from './parquet-worker.js';

export interface BaseRow {
  /** Position + 1 (tokens up to and including the one whose activation this is). */
  nRawTokens: number;
  /** Those tokens decoded, special tokens skipped. */
  text: string;
  /** The raw activation (output of block K), fp32. */
  vector: Float32Array;
  layer: number;
  /** `{corpus}:{split}:{index}`. */
  docId: string;
}

export interface DatasetExtraction {
  baseModel: string;
  dModel: number;
  layerIndex: number;
  corpus: string;
  corpusSlice: { start: number; length: number };
  positionsPerDoc: number;
}

export const DATASET_SCHEMA_VERSION = 1;
export const datasetSidecarPath = (parquet: string): string => `${parquet}.nla_meta.yaml`;

/** The reference's dataset id: sha256("{base_model}|{layer}|{corpus}|{corpus_slice}")[:8], with Python's dict repr. */
export function datasetId(e: DatasetExtraction): string {
  const slice = `{'start': ${e.corpusSlice.start}, 'length': ${e.corpusSlice.length}}`;
  return createHash('sha256').update(`${e.baseModel}|${e.layerIndex}|${e.corpus}|${slice}`).digest('hex').slice(0, 8);
}

/** Write a base-stage dataset and its sidecar (keys in the order the reference writes them; null keys omitted). */
export function writeBaseDataset(file: string, rows: BaseRow[], e: DatasetExtraction, createdBy = 'nla extract --format reference'): void {
  for (const [i, r] of rows.entries()) {
    if (r.vector.length !== e.dModel) throw new Error(`${file}: row ${i} has a vector of ${r.vector.length} values, d_model is ${e.dModel}`);
  }
  const buf = parquetWriteBuffer({
    columnData: [
      { name: 'n_raw_tokens', data: rows.map((r) => BigInt(r.nRawTokens)) },
      { name: 'detokenized_text_truncated', data: rows.map((r) => r.text) },
      { name: 'activation_vector', data: rows.map((r) => Array.from(r.vector)) },
      { name: 'activation_layer', data: rows.map((r) => BigInt(r.layer)) },
      { name: 'doc_id', data: rows.map((r) => r.docId) },
    ],
    schema: [
      { name: 'schema', num_children: 5 },
      { name: 'n_raw_tokens', type: 'INT64', repetition_type: 'OPTIONAL' },
      { name: 'detokenized_text_truncated', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
      // pyarrow's layout of a list column: <name> (LIST) / list (repeated) / element.
      { name: 'activation_vector', repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
      { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
      { name: 'element', type: 'FLOAT', repetition_type: 'OPTIONAL' },
      { name: 'activation_layer', type: 'INT64', repetition_type: 'OPTIONAL' },
      { name: 'doc_id', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
    ],
  });
  writeFileAtomic(file, [new Uint8Array(buf)]);
  const sidecar = {
    dataset_id: datasetId(e),
    stage: 'base',
    row_count: rows.length,
    extraction: {
      base_model: e.baseModel,
      d_model: e.dModel,
      layer_index: e.layerIndex,
      norm: 'none', // raw vectors: normalisation is the trainer's business
      corpus: e.corpus,
      corpus_slice: { start: e.corpusSlice.start, length: e.corpusSlice.length },
      positions_per_doc: e.positionsPerDoc,
    },
    kind: 'nla_dataset',
    schema_version: DATASET_SCHEMA_VERSION,
    keep_debug_metadata: false,
    // tokens and api_summaries are null for a base dataset (no injection token chosen yet), so omitted.
    prompt_templates: {},
    parent_datasets: [],
    created_at: new Date().toISOString(),
    created_by: createdBy,
    git_commit: '',
  };
  writeFileAtomic(datasetSidecarPath(file), [new TextEncoder().encode(toYaml(sidecar, { lineWidth: 0 }))]);
}

export interface DatasetRows {
  /** Row-major [n * d] fp32 vectors. */
  vectors: Float32Array;
  d: number;
  /** The other columns, as read. */
  rows: Record<string, unknown>[];
  sidecar?: Record<string, unknown>;
}

/**
 * Read a reference activation parquet (any stage: only activation_vector is required, as
 * fixed_size_list, list<float> or list<double>) and its sidecar when present (kind must be
 * nla_dataset, schema_version 1).
 */
export async function readReferenceDataset(file: string, opts: { deadlineMs?: number } = {}): Promise<DatasetRows> {
  const bytes = fs.readFileSync(file);
  const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const { names, rows } = await readParquetRows(buf, file, 'activation_vector', opts.deadlineMs);
  if (!rows) throw new Error(`${file}: no column "activation_vector" (columns: ${names.slice(0, 12).join(', ')}${names.length > 12 ? ', …' : ''})`);
  const first = rows[0]?.activation_vector;
  const d = Array.isArray(first) || ArrayBuffer.isView(first) ? (first as ArrayLike<number>).length : 0;
  const vectors = new Float32Array(rows.length * d);
  rows.forEach((r, i) => {
    const v = r.activation_vector as ArrayLike<number> | null;
    if (!v || v.length !== d) throw new Error(`${file}: row ${i}: column "activation_vector" has ${v ? v.length : 'no'} values, row 0 has ${d}`);
    vectors.set(Array.from(v), i * d);
  });
  let sidecar: Record<string, unknown> | undefined;
  const sc = datasetSidecarPath(file);
  if (fs.existsSync(sc)) {
    try {
      sidecar = parseYaml(fs.readFileSync(sc, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new Error(`${sc}: not valid YAML (${(e as Error).message})`);
    }
    if (sidecar?.kind !== 'nla_dataset') throw new Error(`${sc}: field "kind" is ${JSON.stringify(sidecar?.kind)}, expected "nla_dataset"`);
    if (sidecar.schema_version !== DATASET_SCHEMA_VERSION) throw new Error(`${sc}: field "schema_version" is ${JSON.stringify(sidecar.schema_version)}, expected ${DATASET_SCHEMA_VERSION}`);
    const ext = sidecar.extraction as Record<string, unknown> | undefined;
    if (ext && ext.d_model !== d && rows.length) throw new Error(`${sc}: field "extraction.d_model" is ${JSON.stringify(ext.d_model)}, the vectors have ${d} values`);
    if (sidecar.row_count !== undefined && sidecar.row_count !== rows.length) throw new Error(`${sc}: field "row_count" is ${JSON.stringify(sidecar.row_count)}, ${file} has ${rows.length} rows`);
  }
  return { vectors, d, rows, sidecar };
}

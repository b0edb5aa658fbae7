// Activation datasets in the reference implementation's layout (../shared/docs/NLA-REFERENCE-FORMAT.md
// §4; reference: nla/datagen/stage0_extract.py, nla/datagen/sidecar.py): a parquet file of rows
//   n_raw_tokens int64 | detokenized_text_truncated string | activation_vector
//   fixed_size_list<float32>[d] | activation_layer int64 | doc_id string
// (the "base" stage, raw fp32 vectors, never fp16) and its sidecar X.parquet.nla_meta.yaml;
// the later stages are in reference-stages.ts. Parquet itself has no fixed-size list: pyarrow
// writes a LIST of FLOAT and records fixed_size_list in the Arrow schema it stores in the
// file's metadata (ARROW:schema), and so does this writer (arrow-schema.ts). Written with
// hyparquet-writer, read with hyparquet (which reads the LIST whatever the Arrow schema says).
import * as fs from 'node:fs';
import { createHash } from 'node:crypto';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { parse as parseYaml } from 'yaml';
import { arrowSchemaMetadata, type ArrowField } from '../io/arrow-schema.js';
import { writeFileAtomic } from '../io/atomic-write.js';
import { readParquetRows } from './parquet-worker.js';
import { yamlText } from './reference-sidecar.js';

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

/** Column kinds of the reference's datasets and their parquet layout (as pyarrow writes them). */
export type ColumnKind = 'int64' | 'string' | 'vector' | 'messages';
export interface DatasetColumn {
  name: string;
  kind: ColumnKind;
  /** int64: numbers; string: strings; vector: Float32Array rows; messages: {role, content}[] rows. */
  data: unknown[];
}

function schemaOf(c: DatasetColumn): Record<string, unknown>[] {
  const utf8 = (name: string) => ({ name, type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' });
  switch (c.kind) {
    case 'int64':
      return [{ name: c.name, type: 'INT64', repetition_type: 'OPTIONAL' }];
    case 'string':
      return [utf8(c.name)];
    case 'vector': // pyarrow's layout of a list column: <name> (LIST) / list (repeated) / element
      return [
        { name: c.name, repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
        { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
        { name: 'element', type: 'FLOAT', repetition_type: 'OPTIONAL' },
      ];
    case 'messages': // list<struct<role: string, content: string>>
      return [
        { name: c.name, repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
        { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
        { name: 'element', repetition_type: 'OPTIONAL', num_children: 2 },
        utf8('role'),
        utf8('content'),
      ];
  }
}

/** The Arrow type pyarrow would give each column kind (vector: fixed_size_list<float32>[d]). */
function arrowField(c: DatasetColumn, d: number): ArrowField {
  const utf8 = (name: string): ArrowField => ({ name, type: { kind: 'utf8' } });
  switch (c.kind) {
    case 'int64':
      return { name: c.name, type: { kind: 'int64' } };
    case 'string':
      return utf8(c.name);
    case 'vector':
      return { name: c.name, type: { kind: 'fixedSizeList', size: d, item: { name: 'item', type: { kind: 'float32' } } } };
    case 'messages':
      return { name: c.name, type: { kind: 'list', item: { name: 'item', type: { kind: 'struct', fields: [utf8('role'), utf8('content')] } } } };
  }
}

/**
 * One parquet file of the given columns, in order. `activation_vector` is stored as parquet's
 * LIST of FLOAT with the Arrow schema (ARROW:schema) saying fixed_size_list<float32>[d], as
 * pyarrow writes the reference's files; readers that ignore that key see list<float>.
 */
export function writeDatasetParquet(file: string, columns: DatasetColumn[], d: number): void {
  const n = columns[0]?.data.length ?? 0;
  for (const c of columns) if (c.data.length !== n) throw new Error(`${file}: column "${c.name}" has ${c.data.length} rows, "${columns[0].name}" ${n}`);
  for (const c of columns) if (c.kind === 'vector') c.data.forEach((v, i) => {
    if ((v as Float32Array).length !== d) throw new Error(`${file}: row ${i}: column "${c.name}" has ${(v as Float32Array).length} values, d_model is ${d}`);
  });
  const buf = parquetWriteBuffer({
    columnData: columns.map((c) => ({
      name: c.name,
      data: c.kind === 'int64' ? c.data.map((x) => BigInt(x as number)) : c.kind === 'vector' ? c.data.map((v) => Array.from(v as Float32Array)) : c.data,
    })),
    schema: [{ name: 'schema', num_children: columns.length }, ...columns.flatMap(schemaOf)] as unknown as Parameters<typeof parquetWriteBuffer>[0]['schema'],
    kvMetadata: [{ key: 'ARROW:schema', value: arrowSchemaMetadata(columns.map((c) => arrowField(c, d))) }],
  });
  writeFileAtomic(file, [new Uint8Array(buf)]);
}

export interface DatasetSidecar {
  stage: 'base' | 'av_sft' | 'ar_sft' | 'rl';
  rowCount: number;
  extraction: DatasetExtraction;
  /** As the model sidecar's tokens (§1); training stages need them. */
  tokens?: Record<string, unknown>;
  /** actor / critic templates. */
  templates?: { actor?: string; critic?: string };
  parents?: string[];
  createdBy: string;
}

/** X.parquet.nla_meta.yaml, keys in the order the reference writes them, null keys omitted. */
export function writeDatasetSidecar(parquet: string, s: DatasetSidecar): void {
  const e = s.extraction;
  const doc = {
    dataset_id: datasetId(e),
    stage: s.stage,
    row_count: s.rowCount,
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
    ...(s.tokens ? { tokens: s.tokens } : {}),
    prompt_templates: s.templates ?? {},
    // api_summaries: nla's summaries come from its own data generation, not an API call: omitted (null).
    parent_datasets: s.parents ?? [],
    created_at: new Date().toISOString(),
    created_by: s.createdBy,
    git_commit: '',
  };
  writeFileAtomic(datasetSidecarPath(parquet), [new TextEncoder().encode(yamlText(doc))]);
}

/** The base schema's columns for rows (base, splits/*_raw), in the reference's order. */
export function baseColumns(rows: BaseRow[]): DatasetColumn[] {
  return [
    { name: 'n_raw_tokens', kind: 'int64', data: rows.map((r) => r.nRawTokens) },
    { name: 'detokenized_text_truncated', kind: 'string', data: rows.map((r) => r.text) },
    { name: 'activation_vector', kind: 'vector', data: rows.map((r) => r.vector) },
    { name: 'activation_layer', kind: 'int64', data: rows.map((r) => r.layer) },
    { name: 'doc_id', kind: 'string', data: rows.map((r) => r.docId) },
  ];
}

/** Write a base-stage dataset and its sidecar (keys in the order the reference writes them; null keys omitted). */
export function writeBaseDataset(file: string, rows: BaseRow[], e: DatasetExtraction, createdBy = 'nla extract --format reference'): void {
  for (const [i, r] of rows.entries()) {
    if (r.vector.length !== e.dModel) throw new Error(`${file}: row ${i} has a vector of ${r.vector.length} values, d_model is ${e.dModel}`);
  }
  writeDatasetParquet(file, baseColumns(rows), e.dModel);
  // tokens and api_summaries are null for a base dataset (no injection token chosen yet), so omitted.
  writeDatasetSidecar(file, { stage: 'base', rowCount: rows.length, extraction: e, createdBy });
}

export interface DatasetRows {
  /** Row-major [n * d] fp32 vectors. */
  vectors: Float32Array;
  d: number;
  /** The other columns, as read. */
  rows: Record<string, unknown>[];
  sidecar?: Record<string, unknown>;
  /** The sidecar's stage, else what the columns say (av_sft: response; rl: prompt list; ar_sft: prompt string; else base). */
  stage: 'base' | 'av_sft' | 'ar_sft' | 'rl';
  /**
   * The explanation of each row where the stage holds one (files with a sidecar): *_explained api_explanation,
   * av_sft's response inside <explanation> tags, ar_sft's prompt with the critic template's
   * text around {explanation} removed. With `vectors` it is SFT data (trainAvSft/trainArSft).
   */
  explanations?: string[];
}

const RESPONSE_RE = /<explanation>\s*([\s\S]*?)\s*<\/explanation>/;
const INJECT_LITERAL = '<INJECT>';

/** Stage checks and explanations of a read dataset (§4): every failure names the file, row and column. */
function stageOf(file: string, rows: Record<string, unknown>[], names: string[], sidecar: Record<string, unknown> | undefined): Pick<DatasetRows, 'stage' | 'explanations'> {
  const sc = datasetSidecarPath(file);
  const declared = sidecar?.stage;
  if (declared !== undefined && !['base', 'av_sft', 'ar_sft', 'rl'].includes(declared as string)) throw new Error(`${sc}: field "stage" is ${JSON.stringify(declared)}, expected base, av_sft, ar_sft or rl`);
  const has = (c: string) => names.includes(c);
  const inferred = has('response') ? 'av_sft' : has('prompt') ? (typeof rows[0]?.prompt === 'string' ? 'ar_sft' : 'rl') : 'base';
  const stage = (declared as DatasetRows['stage'] | undefined) ?? inferred;
  // Without a sidecar there is no contract to check rows against (any parquet with an
  // activation_vector column serves as vectors, e.g. for nla explain --vectors).
  if (!sidecar) return { stage };
  const need = (c: string) => {
    if (!has(c)) throw new Error(`${file}: stage ${stage} needs a column "${c}" (columns: ${names.join(', ')})`);
  };
  const templates = (sidecar?.prompt_templates ?? {}) as Record<string, unknown>;
  const template = (k: 'actor' | 'critic'): string | undefined => {
    const t = templates[k] ?? templates[k === 'actor' ? 'av' : 'ar'];
    if (stage !== 'base' && typeof t !== 'string') throw new Error(`${sc}: field "prompt_templates.${k}" is missing; stage ${stage} needs it`);
    return typeof t === 'string' ? t : undefined;
  };
  if (stage !== 'base' && (typeof sidecar.tokens !== 'object' || sidecar.tokens === null)) throw new Error(`${sc}: field "tokens" is missing; stage ${stage} needs the injection token ids`);
  if (stage === 'av_sft' || stage === 'rl') {
    need('prompt');
    const actor = template('actor');
    const want = actor?.split('{injection_char}').join(INJECT_LITERAL);
    rows.forEach((r, i) => {
      const p = r.prompt as { role?: unknown; content?: unknown }[] | null;
      if (!Array.isArray(p) || p.length !== 1 || p[0]?.role !== 'user' || typeof p[0]?.content !== 'string') throw new Error(`${file}: row ${i}: column "prompt" is not one user message`);
      const content = p[0].content as string;
      if (content.split(INJECT_LITERAL).length !== 2) throw new Error(`${file}: row ${i}: column "prompt" holds ${content.split(INJECT_LITERAL).length - 1} ${INJECT_LITERAL}, expected 1`);
      if (want !== undefined && content !== want) throw new Error(`${file}: row ${i}: column "prompt" is not prompt_templates.actor with ${INJECT_LITERAL} (${JSON.stringify(content.slice(0, 60))}…)`);
    });
  }
  if (stage === 'av_sft') {
    need('response');
    return {
      stage,
      explanations: rows.map((r, i) => {
        const m = typeof r.response === 'string' ? RESPONSE_RE.exec(r.response) : null;
        if (!m) throw new Error(`${file}: row ${i}: column "response" has no <explanation>...</explanation>`);
        return m[1];
      }),
    };
  }
  if (stage === 'ar_sft') {
    need('prompt');
    const critic = template('critic');
    if (!critic) throw new Error(`${sc}: field "prompt_templates.critic" is missing; stage ar_sft needs it`);
    const [pre, post] = critic.split('{explanation}');
    return {
      stage,
      explanations: rows.map((r, i) => {
        const p = r.prompt;
        if (typeof p !== 'string' || !p.startsWith(pre) || !p.endsWith(post) || p.length < pre.length + post.length) throw new Error(`${file}: row ${i}: column "prompt" is not prompt_templates.critic filled`);
        return p.slice(pre.length, p.length - post.length);
      }),
    };
  }
  if (has('api_explanation')) {
    return {
      stage,
      explanations: rows.map((r, i) => {
        if (typeof r.api_explanation !== 'string') throw new Error(`${file}: row ${i}: column "api_explanation" is not a string`);
        return r.api_explanation;
      }),
    };
  }
  return { stage };
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
  return { vectors, d, rows, sidecar, ...stageOf(file, rows, names, sidecar) };
}

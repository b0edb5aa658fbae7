// Validation of an activation store as read back: the manifest field by field and each shard's
// row metadata, so a damaged or hand-edited store fails naming the file and field instead of a
// TypeError later, a read outside the store directory, or rows quietly misaligned with their
// metadata (a token id past the vocabulary would index an embedding out of range).
import { FormatError } from '../io/errors.js';
import { ROW_SOURCES, type RowMeta, type StoreManifest } from './store.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: unknown): string => (typeof v === 'string' && v.length > 80 ? JSON.stringify(v.slice(0, 80)) + '…' : JSON.stringify(v) ?? String(v));
// Widths past this are no model's; it also bounds what a lying "d" makes us allocate.
const MAX_D = 1 << 20;

function int(o: Obj, key: string, file: string, where: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const v = o[key];
  if (!Number.isSafeInteger(v) || (v as number) < min || (v as number) > max) {
    throw new FormatError(file, `${where}${key}`, `field "${where}${key}" is ${show(v)}, expected an integer in ${min}..${max}`);
  }
  return v as number;
}

function fileName(o: Obj, key: string, file: string, where: string): string {
  const v = o[key];
  // Shard files sit beside the manifest: a path would read outside the store.
  if (typeof v !== 'string' || !/^[\w.-]+$/.test(v) || v === '.' || v === '..') {
    throw new FormatError(file, `${where}${key}`, `field "${where}${key}" is ${show(v)}, expected a file name in the store directory`);
  }
  return v;
}

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Throws a FormatError naming `file` and the field unless `m` is a well-formed store manifest. */
export function checkManifest(m: unknown, file: string): asserts m is StoreManifest {
  if (!isObj(m)) throw new FormatError(file, 'json', 'the manifest is not a JSON object');
  if (m.format !== 'nla-activations/1') throw new FormatError(file, 'format', `field "format" is ${show(m.format)}, expected "nla-activations/1"`);
  for (const k of ['layer', 'd', 'count', 'variance'] as const) if (typeof m[k] !== 'number') throw new FormatError(file, k, `field "${k}" missing or not a number`);
  if (!isObj(m.model) || typeof m.model.name !== 'string') throw new FormatError(file, 'model', `field "model" is ${show(m.model)}, expected {"name": ..., "dim": ..., "nLayers": ...}`);
  if (m.model.sha256 !== undefined && typeof m.model.sha256 !== 'string') throw new FormatError(file, 'model.sha256', `field "model.sha256" is ${show(m.model.sha256)}, expected a string`);
  int(m.model, 'dim', file, 'model.', 1, MAX_D);
  int(m.model, 'nLayers', file, 'model.', 1);
  int(m, 'layer', file, '');
  const d = int(m, 'd', file, '', 1, MAX_D);
  const count = int(m, 'count', file, '');
  if (m.dtype !== 'f16' && m.dtype !== 'f32') throw new FormatError(file, 'dtype', `field "dtype" is ${show(m.dtype)}, expected "f16" or "f32"`);
  if (!finite(m.variance)) throw new FormatError(file, 'variance', `field "variance" is ${show(m.variance)}, expected a finite number`);
  if (!Array.isArray(m.mean) || m.mean.length !== d || !m.mean.every(finite)) throw new FormatError(file, 'mean', `field "mean" must be ${d} finite numbers (d = ${d})`);
  if (!isObj(m.norms) || !['q25', 'q50', 'q75', 'q95'].every((q) => finite((m.norms as Obj)[q]))) throw new FormatError(file, 'norms', `field "norms" is ${show(m.norms)}, expected finite q25, q50, q75, q95`);
  if (m.sources !== undefined && !isObj(m.sources)) throw new FormatError(file, 'sources', `field "sources" is ${show(m.sources)}, expected an object`);
  const sm = m.summary;
  if (sm !== undefined) {
    if (!isObj(sm)) throw new FormatError(file, 'summary', `field "summary" is ${show(sm)}, expected {"quote", "quoteWords", "factsWindow"?}`);
    if (sm.quote !== 'words' && sm.quote !== 'token') throw new FormatError(file, 'summary.quote', `field "summary.quote" is ${show(sm.quote)}, expected "words" or "token"`);
    int(sm, 'quoteWords', file, 'summary.', 1);
    if (sm.factsWindow !== undefined) int(sm, 'factsWindow', file, 'summary.', 0);
  }
  if (!Array.isArray(m.shards)) throw new FormatError(file, 'shards', `field "shards" is ${show(m.shards)}, expected a list`);
  let total = 0;
  m.shards.forEach((s, i) => {
    const where = `shards[${i}].`;
    if (!isObj(s)) throw new FormatError(file, `shards[${i}]`, `field "shards[${i}]" is ${show(s)}, expected {"file", "meta", "count"}`);
    fileName(s, 'file', file, where);
    fileName(s, 'meta', file, where);
    total += int(s, 'count', file, where);
  });
  if (total !== count) throw new FormatError(file, 'count', `field "count" is ${count} but the shards hold ${total} rows`);
}

/** Throws a FormatError naming `file` unless `meta` is `count` rows of metadata. */
export function checkRowMeta(meta: unknown, count: number, file: string): asserts meta is RowMeta[] {
  if (!Array.isArray(meta)) throw new FormatError(file, 'rows', `row metadata is ${show(meta)}, expected a list`);
  if (meta.length !== count) throw new FormatError(file, 'rows', `${meta.length} rows, manifest says ${count}`);
  meta.forEach((r, i) => {
    if (!isObj(r)) throw new FormatError(file, `[${i}]`, `row ${i} is ${show(r)}, expected an object`);
    for (const k of ['doc', 'pos', 'token']) int(r, k, file, `[${i}].`);
    int(r, 'prevToken', file, `[${i}].`, -1); // -1: the row is at position 0
    if (r.source != null && !(ROW_SOURCES as readonly unknown[]).includes(r.source)) throw new FormatError(file, `[${i}].source`, `field "[${i}].source" is ${show(r.source)}, expected one of ${ROW_SOURCES.join(', ')}`);
    for (const k of ['summary', 'split']) if (r[k] != null && typeof r[k] !== 'string') throw new FormatError(file, `[${i}].${k}`, `field "[${i}].${k}" is ${show(r[k])}, expected a string`);
    if (r.seed != null && !Number.isSafeInteger(r.seed)) throw new FormatError(file, `[${i}].seed`, `field "[${i}].seed" is ${show(r.seed)}, expected an integer`);
    if (r.truth != null && !(isObj(r.truth) && isObj(r.truth.known) && typeof r.truth.currentWord === 'string')) throw new FormatError(file, `[${i}].truth`, `field "[${i}].truth" is ${show(r.truth)}, expected {"known": {...}, "currentWord": ...}`);
  });
}

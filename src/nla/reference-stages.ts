// The reference's dataset stages after `base` (NLA-REFERENCE-FORMAT.md §4), written from rows
// nla extracted with their summaries (nla's warm-start explanations):
//   splits/{av,ar,rest}_raw.parquet      base columns; documents split as the reference does:
//                                        sorted doc_ids shuffled by random.Random(42), sliced
//                                        av | ar | rest at int(n * frac)
//   splits/{av,ar}_explained.parquet     + api_explanation (rows without a summary dropped)
//   av_sft.parquet   prompt [{role: user, content: actor template with <INJECT>}], response
//                    "<explanation>\n" + e + "\n</explanation>", activation_vector, n_raw_tokens,
//                    activation_layer, doc_id, detokenized_text_truncated   (from av_explained)
//   ar_sft.parquet   prompt (the filled critic template), activation_vector, provenance (doc_id)
//                                                                          (from ar_explained)
//   rl.parquet       av_sft's columns minus response                       (from rest_raw)
//   {av_sft,ar_sft,rl}_shuf.parquet   the same rows shuffled by random.Random(42)
// each with its X.parquet.nla_meta.yaml. Inferred, not given by the format document: these
// file names beyond the patterns it lists, the `stage` of split files (base), provenance as a
// string, the parents as file names, and the seed of the *_shuf shuffle.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PyRandom } from '../util/py-random.js';
import { baseColumns, writeDatasetParquet, writeDatasetSidecar, type BaseRow, type DatasetColumn, type DatasetExtraction } from './reference-dataset.js';

/** The literal the reference's av_sft/rl prompts hold in place of the injection char. */
export const INJECT = '<INJECT>';
/** The shipped configs' split fractions (av, ar; the rest is RL's). */
export const REFERENCE_FRACS = { av: 0.25, ar: 0.25 };

export type SplitPart = 'av' | 'ar' | 'rest';

/** Python's sorted() on str: by code point (JS sort compares UTF-16 units). */
function byCodePoint(a: string, b: string): number {
  const x = [...a].map((c) => c.codePointAt(0)!), y = [...b].map((c) => c.codePointAt(0)!);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

/** The reference's document split: sorted ids, random.Random(42).shuffle, av | ar | rest at int(n * frac). */
export function referenceSplit(docIds: string[], fracs = REFERENCE_FRACS): Map<string, SplitPart> {
  const ids = new PyRandom(42).shuffle([...new Set(docIds)].sort(byCodePoint));
  const nAv = Math.floor(ids.length * fracs.av), nAr = Math.floor(ids.length * fracs.ar);
  return new Map(ids.map((id, i) => [id, i < nAv ? 'av' : i < nAv + nAr ? 'ar' : 'rest']));
}

export interface StageRow extends BaseRow {
  /** nla's summary for this row (the warm-start explanation), when it has one. */
  explanation?: string;
}

export interface StageContract {
  /** The sidecar's tokens block (injection char, its id and neighbours, critic_suffix_ids). */
  tokens: Record<string, unknown>;
  templates: { actor: string; critic: string };
}

export function avSftPrompt(actor: string): { role: string; content: string }[] {
  return [{ role: 'user', content: actor.split('{injection_char}').join(INJECT) }];
}
export const avSftResponse = (e: string): string => `<explanation>\n${e}\n</explanation>`;

/** Write every stage after base into `dir`; returns the files written with their row counts. */
export function writeReferenceStages(dir: string, rows: StageRow[], e: DatasetExtraction, c: StageContract, opts: { fracs?: typeof REFERENCE_FRACS; createdBy?: string } = {}): { file: string; rows: number }[] {
  if (!c.templates.actor.includes('{injection_char}')) throw new Error('prompt_templates.actor has no {injection_char} slot');
  if (!c.templates.critic.includes('{explanation}')) throw new Error('prompt_templates.critic has no {explanation} slot');
  const createdBy = opts.createdBy ?? 'nla extract --format reference';
  const part = referenceSplit(rows.map((r) => r.docId), opts.fracs);
  const of = (p: SplitPart) => rows.filter((r) => part.get(r.docId) === p);
  const explained = (p: SplitPart) => of(p).filter((r) => r.explanation !== undefined && r.explanation.trim() !== '');
  const written: { file: string; rows: number }[] = [];
  const write = (rel: string, cols: DatasetColumn[], stage: 'base' | 'av_sft' | 'ar_sft' | 'rl', parents: string[], training: boolean) => {
    const file = path.join(dir, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    writeDatasetParquet(file, cols, e.dModel);
    const n = cols[0].data.length;
    writeDatasetSidecar(file, { stage, rowCount: n, extraction: e, parents, createdBy, ...(training ? { tokens: c.tokens, templates: c.templates } : {}) });
    written.push({ file: rel, rows: n });
  };
  const shuffled = <T>(xs: T[]): T[] => new PyRandom(42).shuffle([...xs]);

  for (const p of ['av', 'ar', 'rest'] as const) write(`splits/${p}_raw.parquet`, baseColumns(of(p)), 'base', ['base.parquet'], false);
  for (const p of ['av', 'ar'] as const) {
    const rs = explained(p);
    write(`splits/${p}_explained.parquet`, [...baseColumns(rs), { name: 'api_explanation', kind: 'string', data: rs.map((r) => r.explanation!) }], 'base', [`splits/${p}_raw.parquet`], false);
  }
  const avCols = (rs: StageRow[], response: boolean): DatasetColumn[] => [
    { name: 'prompt', kind: 'messages', data: rs.map(() => avSftPrompt(c.templates.actor)) },
    ...(response ? [{ name: 'response', kind: 'string' as const, data: rs.map((r) => avSftResponse(r.explanation!)) }] : []),
    { name: 'activation_vector', kind: 'vector', data: rs.map((r) => r.vector) },
    { name: 'n_raw_tokens', kind: 'int64', data: rs.map((r) => r.nRawTokens) },
    { name: 'activation_layer', kind: 'int64', data: rs.map((r) => r.layer) },
    { name: 'doc_id', kind: 'string', data: rs.map((r) => r.docId) },
    { name: 'detokenized_text_truncated', kind: 'string', data: rs.map((r) => r.text) },
  ];
  const arCols = (rs: StageRow[]): DatasetColumn[] => [
    { name: 'prompt', kind: 'string', data: rs.map((r) => c.templates.critic.split('{explanation}').join(r.explanation!)) },
    { name: 'activation_vector', kind: 'vector', data: rs.map((r) => r.vector) },
    { name: 'provenance', kind: 'string', data: rs.map((r) => r.docId) },
  ];
  const stages: [string, StageRow[], (rs: StageRow[]) => DatasetColumn[], 'av_sft' | 'ar_sft' | 'rl', string][] = [
    ['av_sft', explained('av'), (rs) => avCols(rs, true), 'av_sft', 'splits/av_explained.parquet'],
    ['ar_sft', explained('ar'), arCols, 'ar_sft', 'splits/ar_explained.parquet'],
    ['rl', of('rest'), (rs) => avCols(rs, false), 'rl', 'splits/rest_raw.parquet'],
  ];
  for (const [name, rs, cols, stage, parent] of stages) {
    write(`${name}.parquet`, cols(rs), stage, [parent], true);
    write(`${name}_shuf.parquet`, cols(shuffled(rs)), stage, [`${name}.parquet`], true);
  }
  return written;
}

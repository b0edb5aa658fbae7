// Validation of nla.json as read back, field by field, before anything is built from it: a
// lying model config would size GPU tensors and RoPE tables, and the tokenizer name is joined to
// the NLA directory. Errors name the file and the field.
import { FormatError } from '../io/errors.js';
import type { NlaMeta } from './nla.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: unknown): string => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 80 ? s.slice(0, 80) + '…' : s;
};
// Bounds far above any model nla trains an NLA for; they stop a lying size before it allocates.
const MAX = { dim: 1 << 16, hiddenDim: 1 << 18, nLayers: 1024, nHeads: 1024, nKvHeads: 1024, vocabSize: 1 << 22, maxSeqLen: 1 << 20 } as const;

/** Throws a FormatError naming `file` and the field unless `m` is a well-formed nla.json. */
export function checkNlaMeta(m: unknown, file: string): asserts m is NlaMeta {
  const fail = (field: string, what: string): never => {
    throw new FormatError(file, field, `field "${field}" ${what}`);
  };
  if (!isObj(m)) throw new FormatError(file, 'json', 'nla.json is not a JSON object');
  if (m.format !== 'nla/1') fail('format', `is ${show(m.format)}, expected "nla/1"`);
  for (const k of ['layer', 'alpha', 'variance', 'placeholderId', 'maxExplanationTokens'] as const) {
    if (typeof m[k] !== 'number') fail(k, 'missing or not a number');
  }
  const model = m.model;
  if (!isObj(model) || typeof model.name !== 'string') return fail('model', `is ${show(model)}, expected {"name", "path", "sha256", "config"}`);
  for (const k of ['path', 'sha256']) if (model[k] !== undefined && typeof model[k] !== 'string') fail(`model.${k}`, `is ${show(model[k])}, expected a string`);
  const c = model.config;
  if (!isObj(c) || c.arch !== 'llama') return fail('model.config', `is ${show(c)}, expected a Llama-family config ("arch": "llama")`);
  for (const [k, max] of Object.entries(MAX)) {
    const v = c[k];
    if (!Number.isSafeInteger(v) || (v as number) < 1 || (v as number) > max) fail(`model.config.${k}`, `is ${show(v)}, expected an integer in 1..${max}`);
  }
  const n = (k: string) => c[k] as number;
  if (n('dim') % n('nHeads') !== 0 || (n('dim') / n('nHeads')) % 2 !== 0) fail('model.config.nHeads', `${n('nHeads')} heads do not split dim ${n('dim')} into even head sizes`);
  if (n('nHeads') % n('nKvHeads') !== 0) fail('model.config.nKvHeads', `${n('nKvHeads')} does not divide nHeads ${n('nHeads')}`);
  for (const k of ['normEps', 'ropeTheta']) if (typeof c[k] !== 'number' || !Number.isFinite(c[k]) || (c[k] as number) <= 0) fail(`model.config.${k}`, `is ${show(c[k])}, expected a positive number`);
  if (c.ropeLayout !== 'interleaved' && c.ropeLayout !== 'half') fail('model.config.ropeLayout', `is ${show(c.ropeLayout)}, expected "interleaved" or "half"`);
  for (const k of ['tieEmbeddings', 'qkvBias']) if (typeof c[k] !== 'boolean') fail(`model.config.${k}`, `is ${show(c[k])}, expected true or false`);
  // The tokenizer sits in the NLA directory: a path would read a file outside it.
  if (typeof m.tokenizer !== 'string' || !/^[\w.-]+$/.test(m.tokenizer) || m.tokenizer === '..' || m.tokenizer === '.') fail('tokenizer', `is ${show(m.tokenizer)}, expected a file name in the NLA directory`);
  if (!Number.isSafeInteger(m.layer) || (m.layer as number) < 0 || (m.layer as number) >= n('nLayers')) fail('layer', `is ${show(m.layer)}, expected a block index in 0..${n('nLayers') - 1}`);
  for (const k of ['alpha', 'variance'] as const) if (!Number.isFinite(m[k]) || (m[k] as number) <= 0) fail(k, `is ${show(m[k])}, expected a positive number`);
  if (!Number.isSafeInteger(m.placeholderId) || (m.placeholderId as number) < 0 || (m.placeholderId as number) >= n('vocabSize')) fail('placeholderId', `is ${show(m.placeholderId)}, expected a token id below vocabSize ${n('vocabSize')}`);
  if (!Number.isSafeInteger(m.maxExplanationTokens) || (m.maxExplanationTokens as number) < 1 || (m.maxExplanationTokens as number) > n('maxSeqLen')) fail('maxExplanationTokens', `is ${show(m.maxExplanationTokens)}, expected 1..${n('maxSeqLen')}`);
  if (!Array.isArray(m.mean) || m.mean.length !== n('dim') || !m.mean.every((x) => typeof x === 'number' && Number.isFinite(x))) fail('mean', `must be ${n('dim')} finite numbers (the model's width)`);
  const p = m.prompts;
  if (!isObj(p)) return fail('prompts', `is ${show(p)}, expected {"av", "placeholder", "explanationEnd", "ar"}`);
  for (const k of ['av', 'placeholder', 'explanationEnd', 'ar']) if (typeof p[k] !== 'string') fail(`prompts.${k}`, `is ${show(p[k])}, expected a string`);
  if (!(p.av as string).includes('{concept}')) fail('prompts.av', 'has no {concept} marker for the activation');
  if (!(p.ar as string).includes('{explanation}')) fail('prompts.ar', 'has no {explanation} marker');
  if (m.training !== undefined && !isObj(m.training)) fail('training', `is ${show(m.training)}, expected an object`);
}

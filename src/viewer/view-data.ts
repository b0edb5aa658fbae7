// What the page shows, computed with the library's NLA API and nothing else: per document, its
// tokens, each with the explanations the AV writes for that token's activation (best first by
// the AR's reconstruction, FVE = 1 - MSE/Var) and the text-free baselines there. The same JSON
// is inlined into a report and returned by the server, so both pages draw from one shape.
import type { Tokenizer } from '../io/tokenizer.js';
import type { ClaimMark } from '../nla/claims.js';
import { tokenizeWithOffsets } from '../nla/extract.js';
import { knownPerToken, markScored, type Facts } from '../nla/fact-marks.js';
import type { NLA, NlaMeta } from '../nla/nla.js';
import type { Vectors } from '../nla/vectors.js';
import type { MetricsView } from './metrics.js';
import { positionBaselines, type BaselineFit, type PositionBaselines } from './position-baselines.js';

export interface ViewSettings {
  samples: number;
  temperature: number;
  seed: number;
}

export interface ViewToken {
  position: number;
  id: number;
  token: string;
  /**
   * Best first (lowest MSE); an unparseable AV output scores MSE 2. With known facts, `claims`
   * marks each fact the explanation states true or false (none for an unparseable output).
   */
  explanations: { text: string; mse: number; fve: number; quoteP?: number; claims?: ClaimMark[] }[];
  baselines: PositionBaselines;
  /** With known facts: those read once this token has been read. */
  known?: Facts;
}

export interface ViewDoc {
  text: string;
  tokens: ViewToken[];
  /** The text's latent facts, when it is known-answer text (--data rows with "facts"). */
  facts?: Facts;
}

/** One text to explain, with its latent facts when it is known-answer text. */
export interface ViewInput {
  text: string;
  facts?: Facts;
}

export interface NlaSummary {
  dir: string;
  layer: number;
  variance: number;
  /** Where Var came from when the NLA carries none (a reference pair). */
  varianceNote?: string;
  /** Set for a reference pair: its AV and AR directories. */
  reference?: { av: string; ar: string };
  model: string;
  maxSeqLen: number;
  maxExplanationTokens: number;
}

export interface ViewData {
  format: 'nla-view/1';
  nla: NlaSummary;
  settings?: ViewSettings;
  docs: ViewDoc[];
  /** Vectors from a file (nla explain --vectors formats), each with its explanations. */
  vectors?: { file: string; rows: ViewVector[] };
  /** Where the token baselines were fitted, or why only the floor is shown. */
  baselines: { store?: string; note: string };
  metrics?: MetricsView;
}

export interface ViewVector {
  index: number;
  /** Where the row came from (file:line, tensor[i], a parquet row's doc_id). */
  label: string;
  explanations: { text: string; mse: number; fve: number; quoteP?: number }[];
}

/** An input the page can show as a message (HTTP 400), as opposed to a failure of the server. */
export class InputError extends Error {}

export function summarize(nla: NLA | { meta: NlaMeta }, dir: string, varianceNote?: string): NlaSummary {
  const m = nla.meta;
  const out: NlaSummary = { dir, layer: m.layer, variance: m.variance, model: m.model.name, maxSeqLen: m.model.config.maxSeqLen, maxExplanationTokens: m.maxExplanationTokens };
  if (varianceNote) out.varianceNote = varianceNote;
  if (m.reference) out.reference = { av: m.reference.av, ar: m.reference.ar };
  return out;
}

/** Token ids of `text` (BOS first), or an InputError naming what is wrong with it. */
export function checkText(tok: Tokenizer, ctx: number, text: unknown, what = 'text'): number[] {
  if (typeof text !== 'string') throw new InputError(`${what}: expected a string`);
  if (!text.trim()) throw new InputError(`${what}: empty; type or paste some text to explain`);
  // As NLA.textIds: BOS when the tokenizer has one (a Qwen2 tokenizer has none).
  const ids = tok.encode(text, { bos: tok.bosId >= 0 });
  if (ids.length > ctx) throw new InputError(`${what}: ${ids.length} tokens (with BOS), longer than the model's context of ${ctx} (nla.json field "model.config.maxSeqLen"); shorten it`);
  return ids;
}

export function checkSettings(s: { samples?: unknown; temperature?: unknown; seed?: unknown }, where = ''): ViewSettings {
  const num = (v: unknown, name: string, def: number, ok: (x: number) => boolean, rule: string): number => {
    if (v === undefined || v === null || v === '') return def;
    const x = typeof v === 'number' ? v : Number(v);
    if (!Number.isFinite(x) || !ok(x)) throw new InputError(`${where}${name}: ${JSON.stringify(v)} is not ${rule}`);
    return x;
  };
  const samples = num(s.samples, 'samples', 1, (x) => Number.isInteger(x) && x >= 1 && x <= 16, 'an integer from 1 to 16');
  // One sample is the greedy explanation unless a temperature is given, as in `nla explain`.
  const temperature = num(s.temperature, 'temperature', samples > 1 ? 1 : 0, (x) => x >= 0 && x <= 5, 'a number from 0 to 5');
  const seed = num(s.seed, 'seed', 0, (x) => Number.isInteger(x) && x >= 0, 'a non-negative integer');
  return { samples, temperature, seed };
}

/**
 * Explain every token of `text`. Positions go to the AV in batches of about 32 generations
 * (as `nla explain --batch 32` does), batch b seeded with seed + its first position, and
 * `progress` hears after each batch.
 */
export async function explainDoc(nla: NLA, input: ViewInput, settings: ViewSettings, fit: BaselineFit | undefined, progress?: (done: number, total: number) => void): Promise<ViewDoc> {
  const { text, facts } = input;
  const ids = checkText(nla.tok, nla.meta.model.config.maxSeqLen, text);
  const { h } = await nla.activations(text);
  const d = nla.ar.d;
  const pieces = nla.tok.pieces(ids);
  const batch = Math.max(1, Math.floor(32 / settings.samples));
  const explanations: ViewToken['explanations'][] = [];
  progress?.(0, ids.length);
  for (let i = 0; i < ids.length; i += batch) {
    const end = Math.min(ids.length, i + batch);
    explanations.push(...(await nla.explainActivations(h.slice(i * d, end * d), { samples: settings.samples, temperature: settings.temperature, seed: settings.seed + i })));
    progress?.(end, ids.length);
  }
  const base = positionBaselines(h, ids, nla.meta, fit);
  const known = facts ? knownAt(nla.tok, text, ids, facts) : undefined;
  const tokens: ViewToken[] = ids.map((id, p) => ({ position: p, id, token: pieces[p], explanations: explanations[p], baselines: base[p] }));
  if (facts && known) {
    tokens.forEach((t, p) => {
      t.known = known[p];
      for (const e of t.explanations) e.claims = markScored(e, known[p], facts);
    });
  }
  return facts ? { text, tokens, facts } : { text, tokens };
}

/** Explain vector rows in batches of about 32 generations (as explainDoc), batch b seeded with seed + its first row. */
export async function explainVectors(nla: NLA, vecs: Vectors, settings: ViewSettings, progress?: (done: number, total: number) => void): Promise<ViewVector[]> {
  const d = vecs.d, batch = Math.max(1, Math.floor(32 / settings.samples));
  const out: ViewVector[] = [];
  progress?.(0, vecs.n);
  for (let i = 0; i < vecs.n; i += batch) {
    const end = Math.min(vecs.n, i + batch);
    const ex = await nla.explainActivations(vecs.data.slice(i * d, end * d), { samples: settings.samples, temperature: settings.temperature, seed: settings.seed + i });
    ex.forEach((e, k) => out.push({ index: i + k, label: vecs.labels[i + k], explanations: e }));
    progress?.(end, vecs.n);
  }
  return out;
}

/** The facts read at each token of `ids` (the text's tokens as explained). */
function knownAt(tok: Tokenizer, text: string, ids: number[], facts: Facts): Facts[] {
  const { ids: again, offsets } = tokenizeWithOffsets(tok, text);
  if (again.length !== ids.length || again.some((x, i) => x !== ids[i])) throw new InputError('facts: this tokenizer\'s tokens do not map back to characters of the text (facts are marked for tokenizers with a BOS, as tok512)');
  return knownPerToken(text, offsets, facts);
}

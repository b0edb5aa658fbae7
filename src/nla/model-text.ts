// Text from the studied model's own distribution, and cut points of any text: documents sampled
// from M (BOS, then temperature-1 sampling until EOS/BOS or a length cap; one recorded seed per
// document, so each document can be regenerated and held-out seeds can be checked disjoint from
// training seeds), documents read from a text or JSONL file, and their cuts as extraction items
// with a summary of the text before the cut (describeTextCut). Also the evaluation of an NLA on
// fresh samples of M that no training row came from.
import * as fs from 'node:fs';
import type { Tokenizer } from '../io/tokenizer.js';
import { StreamDecoder } from '../io/tokenizer.js';
import { generate, generationRows } from '../nn/generate.js';
import type { LanguageModel } from '../nn/model.js';
import { randInt, rng, shuffled, type Rng } from '../util/rng.js';
import type { Reconstructor } from './ar.js';
import type { Verbalizer } from './av.js';
import { fveBigram, fveFloor, fveToken, type TokenRows } from './baselines.js';
import { randomCuts, type QuoteUnit, type SummaryFormat } from './corpus.js';
import { SPLITS } from './dataset.js';
import { evaluate, type EvalResult } from './evaluate.js';
import { extractActivations, type ExtractItem } from './extract.js';
import { mseNormalized } from './fve.js';
import { probePredictGpu } from './probe-gpu.js';
import { rowsOf } from './sft.js';
import type { RowMeta, RowSource, SourceMix } from './store.js';
import { decodeDoc, decodePieces, describeTextCut } from './text-summary.js';

export interface ModelDoc {
  /** BOS, then the sampled tokens (the stop token dropped). */
  ids: number[];
  text: string;
  seed: number;
  /** Whether sampling ended at EOS/BOS (false: it hit the length cap). */
  stopped: boolean;
}

export interface SampleOptions {
  docs: number;
  /** Base seed: document i is sampled with seed docSeed(base, i). */
  seed: number;
  /** Tokens after BOS (default min(256, context - 1)). */
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
}

/** The sampling seed of document i of a base seed (base + i: ranges are easy to state and to check for overlap). */
export const docSeed = (base: number, i: number): number => base + i;

/** Sample documents from M, batched, each with its own seed (temperature 1 and no truncation unless set). */
export async function sampleModelText(M: LanguageModel, tok: Tokenizer, o: SampleOptions): Promise<ModelDoc[]> {
  if (!Number.isInteger(o.docs) || o.docs < 0) throw new Error(`sampleModelText: docs must be a non-negative integer, got ${o.docs}`);
  if (!Number.isInteger(o.seed) || o.seed < 0) throw new Error(`sampleModelText: seed must be a non-negative integer, got ${o.seed}`);
  if (tok.bosId < 0) throw new Error('sampleModelText: the tokenizer has no BOS token to start documents from');
  const maxTokens = o.maxTokens ?? Math.min(256, M.cfg.maxSeqLen - 1);
  if (maxTokens < 1 || maxTokens > M.cfg.maxSeqLen - 1) throw new Error(`sampleModelText: maxTokens ${maxTokens} must be 1..${M.cfg.maxSeqLen - 1} (the model's context minus BOS)`);
  const stops = [tok.bosId, tok.eosId].filter((t) => t >= 0);
  // Each document has its own seed: its text does not depend on the batch.
  const bs = o.batchSize ?? generationRows(M.cfg.vocabSize);
  const out: ModelDoc[] = [];
  for (let s = 0; s < o.docs; s += bs) {
    const seeds = [...Array(Math.min(bs, o.docs - s)).keys()].map((k) => docSeed(o.seed, s + k));
    const g = await generate(M, seeds.map(() => [tok.bosId]), { maxNewTokens: maxTokens, temperature: o.temperature ?? 1, topP: o.topP ?? 1, topK: 0, seeds, stopTokens: stops });
    seeds.forEach((seed, b) => {
      const body = g.stopped[b] ? g.tokens[b].slice(0, -1) : g.tokens[b];
      const ids = [tok.bosId, ...body];
      out.push({ ids, text: decodeIds(tok, ids), seed, stopped: g.stopped[b] });
    });
    o.onProgress?.(s + seeds.length, o.docs);
  }
  return out;
}

/** Text of ids (BOS first) as a streaming decoder prints it (what the model "wrote"). */
export function decodeIds(tok: Tokenizer, ids: number[]): string {
  const dec = new StreamDecoder(tok, ids[0]);
  let text = '';
  for (let i = 1; i < ids.length; i++) text += dec.push(ids[i]);
  return text + dec.end();
}

// ---------------------------------------------------------------- documents from files

/** Lines of a UTF-8 file; invalid UTF-8 is an error naming the file and line. */
function readLines(file: string): string[] {
  if (!fs.existsSync(file)) throw new Error(`${file}: file not found`);
  const buf = fs.readFileSync(file);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(buf).replace(/\r\n/g, '\n').split('\n');
  } catch {
    const lines = new TextDecoder('utf-8').decode(buf).split('\n');
    const bad = lines.findIndex((l) => l.includes('\uFFFD'));
    throw new Error(`${file}:${bad + 1}: not valid UTF-8 (convert the file to UTF-8)`);
  }
}

/** Plain text: documents separated by blank lines (a document may span lines). */
export function readTextDocs(file: string): string[] {
  const docs = readLines(file).join('\n').split(/\n\s*\n/).map((s) => s.trim()).filter((s) => s.length > 0);
  if (!docs.length) throw new Error(`${file}: empty corpus (no documents; documents are separated by blank lines)`);
  return docs;
}

/** JSONL: one JSON object per line with the document in `field`; blank lines skipped. Errors name file:line. */
export function readJsonlDocs(file: string, field = 'text'): string[] {
  const docs: string[] = [];
  readLines(file).forEach((line, i) => {
    if (!line.trim()) return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      throw new Error(`${file}:${i + 1}: not valid JSON (${(e as Error).message})`);
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${file}:${i + 1}: expected a JSON object with a "${field}" field`);
    const t = (v as Record<string, unknown>)[field];
    if (typeof t !== 'string') throw new Error(`${file}:${i + 1}: field "${field}" missing or not a string${t === undefined ? ` (fields: ${Object.keys(v).join(', ') || 'none'}; choose one with --jsonl-field)` : ''}`);
    if (t.trim()) docs.push(t);
  });
  if (!docs.length) throw new Error(`${file}: empty corpus (no documents; expected JSONL lines {"${field}": "..."})`);
  return docs;
}

// ---------------------------------------------------------------- cut points

export interface TextDoc {
  ids: number[];
  source: Exclude<RowSource, 'known-answer'>;
  seed?: number;
}

/** Split of each of n documents: a seeded permutation cut at the cumulative shares (av, ar, rl, eval). */
export function splitByDoc(n: number, shares: readonly number[], seed: number): string[] {
  const perm = shuffled(rng(seed), [...Array(n).keys()]);
  const bounds = shares.map((_, i) => Math.round(n * shares.slice(0, i + 1).reduce((a, b) => a + b, 0)));
  const out = new Array<string>(n);
  perm.forEach((doc, rank) => (out[doc] = SPLITS[bounds.findIndex((b) => rank < b)] ?? 'eval'));
  return out;
}

/**
 * Where the training cuts of a document fall. 'random': uniform over token indices >= minTokens.
 * 'balanced': each cut drawn with probability proportional to 1 / (1 + n), n the rows of the same
 * split so far whose summary quotes the word this cut would quote, so the rows cover more of the
 * words the text reads instead of repeating its commonest ones (an AV quotes a word only after
 * about four rows of it: docs/experiments.md, "Which words the AV misses"). Held-out documents (split 'eval',
 * or none) are always cut at random: they measure the text as it comes. Not the demo's default:
 * the AV's prior over words flattens with its rows and its quotes did not rise on two dev seeds
 * (docs/experiments.md, "Cuts spread over the words").
 */
export const CUT_RULES = ['random', 'balanced'] as const;
export type CutRule = (typeof CUT_RULES)[number];

/**
 * `count` distinct indices into `words` (the word each candidate cut would quote), ascending,
 * drawn one at a time with probability proportional to 1 / (1 + counts[word]); counts gains each
 * pick, so a later draw (in this document or the next) sees it.
 */
export function balancedCuts(words: readonly string[], counts: Map<string, number>, count: number, rand: Rng): number[] {
  const chosen = new Set<number>();
  const weight = words.map((w) => 1 / (1 + (counts.get(w) ?? 0)));
  while (chosen.size < Math.min(count, words.length)) {
    let r = rand() * weight.reduce((a, b) => a + b, 0);
    let k = 0;
    // The last candidate with weight absorbs rounding at the top of the range.
    while (k < words.length - 1 && (weight[k] === 0 || (r -= weight[k]!) >= 0)) k++;
    while (weight[k] === 0) k--;
    chosen.add(k);
    const w = words[k]!;
    counts.set(w, (counts.get(w) ?? 0) + 1);
    weight[k] = 0;
    for (let j = 0; j < words.length; j++) if (weight[j] && words[j] === w) weight[j] = 1 / (1 + counts.get(w)!);
  }
  return [...chosen].sort((a, b) => a - b);
}

/**
 * `count` distinct cut positions of a document of `length` tokens (indices >= minTokens),
 * ascending: `opening` of them drawn uniformly from the opening (indices below `below`), the rest
 * uniformly over the whole document. Whole documents of M run to a median of about 350 tokens, so
 * cuts uniform over them give the opening half the rows 200-token documents did, and a text's
 * first nine tokens fell from 0.93 to 0.82 FVE on dev; one opening cut per document kept them
 * (docs/experiments.md, "Whole documents of M").
 */
export function openingCuts(length: number, minTokens: number, count: number, opening: { cuts: number; below: number }, rand: Rng): number[] {
  const chosen = new Set(randomCuts(Math.min(length, opening.below), minTokens, Math.min(opening.cuts, count), rand));
  const candidates = length - minTokens;
  while (chosen.size < Math.min(count, candidates)) chosen.add(minTokens + randInt(rand, candidates));
  return [...chosen].sort((a, b) => a - b);
}

/**
 * Extraction items at cut points (token index >= minTokens; `cutRule`, default random) of
 * documents, each row with the summary of the text up to and including the cut token. Doc ids
 * start at docBase; splits[i] is document i's split (undefined: none). `opening`: that many of
 * each training document's random cuts fall in its opening (openingCuts); held-out documents
 * (split 'eval', or none) are cut uniformly either way.
 */
export function textCutItems(tok: Tokenizer, docs: TextDoc[], o: { cuts: number; minTokens: number; rand: Rng; docBase: number; splits?: (string | undefined)[]; lastWordCount?: number; quote?: QuoteUnit; factsWindow?: number; cutRule?: CutRule; opening?: { cuts: number; below: number } }): ExtractItem[] {
  if (o.opening?.cuts && o.cutRule === 'balanced') throw new Error('textCutItems: opening cuts place random cuts; they do not combine with the balanced cut rule');
  const items: ExtractItem[] = [];
  const quoted = new Map<string, Map<string, number>>();
  docs.forEach((d, i) => {
    const split = o.splits?.[i];
    const doc = decodeDoc(tok, d.ids);
    const describe = (p: number) => describeTextCut(tok, d.ids, p, { lastWordCount: o.lastWordCount, quote: o.quote, factsWindow: o.factsWindow, doc });
    let positions: number[];
    if (o.cutRule === 'balanced' && split && split !== 'eval') {
      const counts = quoted.get(split) ?? new Map<string, number>();
      quoted.set(split, counts);
      const words = [...Array(Math.max(0, d.ids.length - o.minTokens)).keys()].map((k) => describe(o.minTokens + k).lastWords);
      positions = balancedCuts(words, counts, o.cuts, o.rand).map((k) => o.minTokens + k);
    } else if (o.opening?.cuts && split && split !== 'eval') positions = openingCuts(d.ids.length, o.minTokens, o.cuts, o.opening, o.rand);
    else positions = randomCuts(d.ids.length, o.minTokens, o.cuts, o.rand);
    if (!positions.length) return;
    items.push({
      ids: d.ids,
      positions,
      meta: positions.map((p) => ({
        doc: o.docBase + i,
        summary: describe(p).summary,
        ...(split ? { split } : {}),
        source: d.source,
        ...(d.seed !== undefined ? { seed: d.seed } : {}),
      })),
    });
  });
  return items;
}

// ---------------------------------------------------------------- held-out evaluation

/** Every sampling seed a store's rows came from (rows of source 'model'). */
export function storeSeeds(meta: readonly RowMeta[]): Set<number> {
  const s = new Set<number>();
  for (const m of meta) if (m.seed !== undefined) s.add(m.seed);
  return s;
}

/** Throw unless the seeds of n documents from base are disjoint from `used`. */
export function assertSeedsDisjoint(base: number, n: number, used: ReadonlySet<number>, where: string): void {
  const clash = [...Array(n).keys()].map((i) => docSeed(base, i)).filter((s) => used.has(s));
  if (clash.length) {
    const max = Math.max(...used);
    throw new Error(`held-out model text: seeds ${base}..${base + n - 1} overlap ${clash.length} seed(s) of ${where} (e.g. ${clash.slice(0, 5).join(', ')}); these documents were trained on. Choose a base seed above ${max} (the default)`);
  }
}

/** Default held-out base seed: above every seed used (a gap of 1,000,000 from 0 when none). */
export const heldOutSeed = (used: ReadonlySet<number>): number => (used.size ? Math.max(...used) + 1 : 1_000_000);

/** textCutItems' summary options for a store's recorded format (a store from before it was recorded: 3 words, every fact). */
export function summaryOptionsOf(f: SummaryFormat | undefined): { lastWordCount: number; quote?: QuoteUnit; factsWindow?: number } {
  return f ? { lastWordCount: f.quoteWords, quote: f.quote, factsWindow: f.factsWindow } : { lastWordCount: 3 };
}

export interface ModelTextEvalOptions {
  docs: number;
  seed?: number;
  cuts?: number;
  minTokens?: number;
  /** Tokens per sampled document (default min(256, context - 1)). */
  docTokens?: number;
  /** Explanation length cap. */
  maxTokens: number;
  batchSize?: number;
  evalSeed?: number;
  /** How the training summaries were written (textCutItems): the held-out rows' true summaries use the same. */
  summary?: { lastWordCount?: number; quote?: QuoteUnit; factsWindow?: number };
  /** Also fit linear probes of the current and the previous token on the store's training rows (tokenProbes in the result). */
  tokenProbes?: boolean;
  /** Also the AR's best of `samples` explanations per row sampled at `temperature` (bestOf in the result). */
  bestOf?: { samples: number; temperature: number };
  onProgress?: (stage: string, done: number, total: number) => void;
}

export interface ModelTextEvalResult {
  seeds: { base: number; count: number };
  docs: number;
  rows: number;
  greedy: EvalResult;
  /**
   * The AR's pick of k samples per row (options.bestOf): the explanation that rebuilds this h best.
   * It reads h through the AR, so it is a decoder that uses the answer's own check, reported
   * beside greedy, never in its place.
   */
  bestOf?: EvalResult;
  token?: number;
  /** The token lookup per row (normalised MSE) and the variance its FVE divides by: for paired intervals. */
  tokenRows?: { mse: Float64Array; variance: number };
  bigram?: number;
  floor?: number;
  /**
   * Linear probes on h (fitted on the store's training rows, scored on these rows): the share
   * of rows whose current token, previous token, and both, a linear readout of h gets right.
   * What a quote of the last words needs, as far as a linear reader can get it; the AV is not
   * linear, so this is a reference, not a bound.
   */
  tokenProbes?: { token: number; prevToken: number; both: number };
  /** FVE of the AR reading each row's true summary (describeTextCut): the AR's ceiling, apart from the AV. */
  arTrueSummary: number;
  /** The held-out rows (for quote checks and examples), and their activations ([rows*d], host). */
  meta: RowMeta[];
  h: Float32Array;
  /** Decoded context (BOS .. cut token) of each row, as describeTextCut reads it. */
  contexts: string[];
}

/**
 * The token probes' fit: 300 Adam steps on mini-batches of 4,096 rows. Full batches over the
 * demo's 30,600 training rows took about two minutes for the two probes; these take an eighth
 * of that and read the tokens as well (BENCHMARKS.md, "probe fits").
 */
export const TOKEN_PROBE_FIT = { iters: 300, batchSize: 4096 } as const;

/** Linear probes of the current and previous token fitted on `train`, scored on `test` (alone and jointly). Rows with no previous token (h at the first token) use class `vocab` for it. */
export async function tokenProbes(train: TokenRows, test: TokenRows, vocab: number): Promise<{ token: number; prevToken: number; both: number }> {
  const cls = (ids: ArrayLike<number> | undefined) => Int32Array.from(ids ?? [], (t) => (t < 0 ? vocab : t));
  const cur = await probePredictGpu(train.h, train.ids, test.h, vocab, TOKEN_PROBE_FIT);
  const prev = await probePredictGpu(train.h, cls(train.prevIds), test.h, vocab + 1, TOKEN_PROBE_FIT);
  const prevTest = cls(test.prevIds);
  let a = 0, b = 0, both = 0;
  for (let i = 0; i < cur.length; i++) {
    const x = cur[i] === test.ids[i], y = prev[i] === prevTest[i];
    a += +x; b += +y; both += +(x && y);
  }
  const n = Math.max(cur.length, 1);
  return { token: a / n, prevToken: b / n, both: both / n };
}

/**
 * FVE of greedy explanations on held-out samples of M whose seeds no store row came from
 * (asserted), with the token / bigram / floor baselines fitted on the store's training rows
 * (splits av, ar, rl) and measured on the same held-out rows.
 */
export async function evaluateModelText(
  nla: { av: Verbalizer; ar: Reconstructor; tok: Tokenizer; layer: number; variance: number },
  M: LanguageModel,
  store: { h: Float32Array; meta: RowMeta[]; dir: string; sources?: SourceMix },
  o: ModelTextEvalOptions,
): Promise<ModelTextEvalResult> {
  const used = storeSeeds(store.meta);
  // Also every seed the extraction sampled (documents too short to cut left no row, but were drawn).
  const m = store.sources?.model;
  if (m) for (let i = 0; i < m.count; i++) used.add(docSeed(m.seedBase, i));
  const base = o.seed ?? heldOutSeed(used);
  assertSeedsDisjoint(base, o.docs, used, `the store ${store.dir}`);
  const tok = nla.tok, d = nla.ar.d;
  const docs = await sampleModelText(M, tok, { docs: o.docs, seed: base, maxTokens: o.docTokens, batchSize: o.batchSize, onProgress: (a, b) => o.onProgress?.('sample', a, b) });
  const items = textCutItems(
    tok,
    docs.map((x) => ({ ids: x.ids, source: 'model' as const, seed: x.seed })),
    { cuts: o.cuts ?? 4, minTokens: o.minTokens ?? 30, rand: rng(base + 1), docBase: 0, splits: docs.map(() => 'eval'), ...o.summary },
  );
  if (!items.length) throw new Error(`held-out model text: none of the ${o.docs} samples reached ${o.minTokens ?? 30} tokens; lower the cut minimum or sample more`);
  const h = await extractActivations(M, nla.layer, items, { batchSize: o.batchSize });
  const meta: RowMeta[] = items.flatMap((it) => it.positions.map((p, k) => ({ ...it.meta[k], pos: p, token: it.ids[p], prevToken: p > 0 ? it.ids[p - 1] : -1 }) as RowMeta));
  const contexts = items.flatMap((it) => {
    const pieces = decodePieces(tok, it.ids);
    return it.positions.map((p) => pieces.slice(0, p + 1).join(''));
  });
  const greedy = await evaluate(nla.av, nla.ar, h, meta, nla.variance, { temperature: 0, maxTokens: o.maxTokens, seed: o.evalSeed ?? 0, batchSize: o.batchSize, onProgress: (n) => o.onProgress?.('explain', n, meta.length) });
  const bestOf = o.bestOf && (await evaluate(nla.av, nla.ar, h, meta, nla.variance, { temperature: o.bestOf.temperature, samples: o.bestOf.samples, bestOf: true, maxTokens: o.maxTokens, seed: o.evalSeed ?? 0, batchSize: o.batchSize, onProgress: (n) => o.onProgress?.('best-of', n, meta.length) }));
  const truePred = await nla.ar.predictHost(meta.map((m) => m.summary!));
  const trueMse = mseNormalized(truePred, h, d);
  const arTrueSummary = 1 - trueMse.reduce((a, v) => a + v, 0) / Math.max(trueMse.length, 1) / nla.variance;
  const trainIdx = store.meta.map((m, i) => (m.split === 'av' || m.split === 'ar' || m.split === 'rl' ? i : -1)).filter((i) => i >= 0);
  const res: ModelTextEvalResult = { seeds: { base, count: o.docs }, docs: items.length, rows: meta.length, greedy, ...(bestOf ? { bestOf } : {}), arTrueSummary, meta, h, contexts };
  if (trainIdx.length) {
    const train: TokenRows = { h: rowsOf(store.h, d, trainIdx), ids: Int32Array.from(trainIdx.map((i) => store.meta[i].token)), prevIds: Int32Array.from(trainIdx.map((i) => store.meta[i].prevToken)) };
    const test: TokenRows = { h, ids: Int32Array.from(meta.map((m) => m.token)), prevIds: Int32Array.from(meta.map((m) => m.prevToken)) };
    const token = fveToken(train, test, d);
    res.token = token.fve;
    res.tokenRows = { mse: token.rowMse, variance: token.variance };
    res.bigram = fveBigram(train, test, d).fve;
    res.floor = fveFloor(train, test, d).fve;
    if (o.tokenProbes) res.tokenProbes = await tokenProbes(train, test, tok.vocabSize);
  }
  return res;
}

// The built-in known-answer dataset: generated stories, cut at random token positions, each
// cut with a summary written from the story's latents and the words just read, and the ground
// truth to score explanations against. Documents are split between AV-SFT, AR-SFT, RL and
// evaluation so no story is seen by two stages; the evaluation stories are halved again into
// dev (tuning) and test (reported only).
import type { Tokenizer } from '../io/tokenizer.js';
import { cutPoints, generateStories, type QuoteUnit } from './corpus.js';
import { tokenizeWithOffsets, type ExtractItem } from './extract.js';
import { rowSource, type RowMeta, type RowSource } from './store.js';
import { rng } from '../util/rng.js';

export const SPLITS = ['av', 'ar', 'rl', 'eval'] as const;
export type Split = (typeof SPLITS)[number];

export interface KnownAnswerOptions {
  stories: number;
  cutsPerStory: number;
  minTokens: number;
  seed: number;
  /** Share of stories per split, in SPLITS order. */
  shares?: [number, number, number, number];
  /** Word units the summaries quote (corpus.ts describeCut; default 3). */
  lastWordCount?: number;
  /** 'words' (default) or 'token' (corpus.ts QuoteUnit). */
  quote?: QuoteUnit;
}

export function knownAnswerItems(tok: Tokenizer, opts: KnownAnswerOptions): ExtractItem[] {
  const stories = generateStories(opts.stories, opts.seed);
  const rand = rng(opts.seed + 1);
  const shares = opts.shares ?? [0.35, 0.35, 0.15, 0.15];
  const bounds = shares.map((_, i) => Math.round(opts.stories * shares.slice(0, i + 1).reduce((a, b) => a + b, 0)));
  const items: ExtractItem[] = [];
  stories.forEach((story, doc) => {
    const split = SPLITS[bounds.findIndex((b) => doc < b)] ?? 'eval';
    const cuts = cutPoints(story, (s) => tokenizeWithOffsets(tok, s), opts.minTokens, rand, opts.cutsPerStory, { lastWordCount: opts.lastWordCount, quote: opts.quote });
    if (!cuts.length) return;
    const ids = tok.encode(story.text, { bos: true });
    items.push({
      ids,
      positions: cuts.map((c) => c.tokenIndex),
      meta: cuts.map((c) => ({ doc, summary: c.summary, truth: { known: c.known as Record<string, string>, currentWord: c.currentWord }, split })),
    });
  });
  return items;
}

/** The two halves of the held-out ('eval') rows: dev for choosing settings, test for reporting. */
export const HELD_OUT_PARTS = ['dev', 'test'] as const;
export type HeldOutPart = (typeof HELD_OUT_PARTS)[number];

/**
 * Indices (into `meta`) of the eval rows in one half, split by document and halved within each
 * source: a source's eval documents sorted by doc id, the first half (rounded up) dev, the rest
 * test. Per source because a mixed store numbers the known-answer stories before the samples of
 * M, so halving all eval documents at once put every story in dev and every sample in test. By
 * order rather than by a fresh seed because the built-in stories are already independent seeded
 * draws, and because every demo setting so far was chosen on the first eval rows, which this
 * keeps in dev.
 */
export function heldOutRows(meta: readonly Pick<RowMeta, 'doc' | 'split' | 'source'>[], part: HeldOutPart): number[] {
  const key = (m: Pick<RowMeta, 'doc' | 'source'>) => `${rowSource(m)}:${m.doc}`;
  const bySource = new Map<RowSource, Set<number>>();
  for (const m of meta) if (m.split === 'eval') (bySource.get(rowSource(m)) ?? bySource.set(rowSource(m), new Set()).get(rowSource(m))!).add(m.doc);
  const dev = new Set<string>();
  for (const [src, docs] of bySource) {
    const sorted = [...docs].sort((a, b) => a - b);
    for (const doc of sorted.slice(0, Math.ceil(sorted.length / 2))) dev.add(`${src}:${doc}`);
  }
  return meta.map((m, i) => (m.split === 'eval' && dev.has(key(m)) === (part === 'dev') ? i : -1)).filter((i) => i >= 0);
}

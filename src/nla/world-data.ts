// NLA data on the known-answer world: world stories cut at random tokens, each cut with its
// summary (corpus.ts describeCut: the words just read, the facts read so far, the next word) and
// its truth, split by story between AV-SFT, AR-SFT, RL and evaluation exactly as the built-in
// corpus is (dataset.ts), so the whole chain (sft-ar, sft-av, rl, eval) runs on world-M unchanged.
import type { Tokenizer } from '../io/tokenizer.js';
import { rng } from '../util/rng.js';
import { cutPoints, describeCut, type Field } from './corpus.js';
import { SPLITS, type KnownAnswerOptions } from './dataset.js';
import { tokenizeWithOffsets, type ExtractItem } from './extract.js';
import { worldStory, type WorldOptions } from './world.js';
import { cueCuts, type CutRule } from './world-probe.js';

/**
 * What a cue cut's warm-start summary states: 'all' facts read so far (as the built-in corpus),
 * or 'cued': only the fact recalled next, the one world-M's last layer provably holds there
 * (README, issue 11: a probe reads it >= 0.94, the other facts ~0.4-0.56), so SFT does not teach
 * the AV to state facts h does not hold; or 'held': the cued fact plus the others a confident
 * probe on h reads (world-held.ts; written here as 'cued', restated after extraction). Random
 * cuts always state every fact read.
 */
export type WorldSummary = 'all' | 'cued' | 'held';

/** Key of a row (document, token index) in the `cued` map worldItems fills. */
export const cueKey = (doc: number, pos: number) => `${doc}:${pos}`;

/**
 * Story i of `seed` for i < stories; rows carry source 'known-answer' (they have latents).
 * at 'random': cuts at random tokens (as the built-in corpus); 'cue': right before recalled
 * words, where world-M's last layer provably holds the recalled fact (README, issue 11).
 */
export function worldItems(tok: Tokenizer, opts: KnownAnswerOptions & { world?: WorldOptions; at?: CutRule; summary?: WorldSummary; cued?: Map<string, Field> }): ExtractItem[] {
  const rand = rng(opts.seed + 1);
  const shares = opts.shares ?? [0.35, 0.35, 0.15, 0.15];
  const bounds = shares.map((_, i) => Math.round(opts.stories * shares.slice(0, i + 1).reduce((a, b) => a + b, 0)));
  const items: ExtractItem[] = [];
  for (let doc = 0; doc < opts.stories; doc++) {
    const story = worldStory(opts.seed, doc, opts.world);
    const split = SPLITS[bounds.findIndex((b) => doc < b)] ?? 'eval';
    const cuts = opts.at === 'cue' ? cueCuts(tok, story, opts.minTokens, rand, opts.cutsPerStory) : cutPoints(story, (s) => tokenizeWithOffsets(tok, s), opts.minTokens, rand, opts.cutsPerStory);
    if (!cuts.length) continue;
    for (const c of cuts) {
      const cued = (c as { cued?: Field }).cued;
      if (cued === undefined) continue;
      opts.cued?.set(cueKey(doc, c.tokenIndex), cued);
      // 'cued' and 'held' (restated later): only the recalled fact, as if the story had mentioned no other.
      const spans = opts.summary === 'cued' || opts.summary === 'held' ? story.spans.filter((sp) => sp.field === cued) : story.spans;
      c.summary = describeCut({ ...story, spans }, c.endChar, { lastWordCount: opts.lastWordCount }).summary;
    }
    items.push({
      ids: tok.encode(story.text, { bos: true }),
      positions: cuts.map((c) => c.tokenIndex),
      meta: cuts.map((c) => ({ doc, summary: c.summary, truth: { known: c.known as Record<string, string>, currentWord: c.currentWord }, split, source: 'known-answer' as const })),
    });
  }
  return items;
}

// NLA data on the known-answer world: world stories cut at random tokens, each cut with its
// summary (corpus.ts describeCut: the words just read, the facts read so far, the next word) and
// its truth, split by story between AV-SFT, AR-SFT, RL and evaluation exactly as the built-in
// corpus is (dataset.ts), so the whole chain (sft-ar, sft-av, rl, eval) runs on world-M unchanged.
import type { Tokenizer } from '../io/tokenizer.js';
import { rng } from '../util/rng.js';
import { cutPoints } from './corpus.js';
import { SPLITS, type KnownAnswerOptions } from './dataset.js';
import { tokenizeWithOffsets, type ExtractItem } from './extract.js';
import { worldStory, type WorldOptions } from './world.js';
import { cueCuts, type CutRule } from './world-probe.js';

/**
 * Story i of `seed` for i < stories; rows carry source 'known-answer' (they have latents).
 * at 'random': cuts at random tokens (as the built-in corpus); 'cue': right before recalled
 * words, where world-M's last layer provably holds the recalled fact (README, issue 11).
 */
export function worldItems(tok: Tokenizer, opts: KnownAnswerOptions & { world?: WorldOptions; at?: CutRule }): ExtractItem[] {
  const rand = rng(opts.seed + 1);
  const shares = opts.shares ?? [0.35, 0.35, 0.15, 0.15];
  const bounds = shares.map((_, i) => Math.round(opts.stories * shares.slice(0, i + 1).reduce((a, b) => a + b, 0)));
  const items: ExtractItem[] = [];
  for (let doc = 0; doc < opts.stories; doc++) {
    const story = worldStory(opts.seed, doc, opts.world);
    const split = SPLITS[bounds.findIndex((b) => doc < b)] ?? 'eval';
    const cuts = opts.at === 'cue' ? cueCuts(tok, story, opts.minTokens, rand, opts.cutsPerStory) : cutPoints(story, (s) => tokenizeWithOffsets(tok, s), opts.minTokens, rand, opts.cutsPerStory);
    if (!cuts.length) continue;
    items.push({
      ids: tok.encode(story.text, { bos: true }),
      positions: cuts.map((c) => c.tokenIndex),
      meta: cuts.map((c) => ({ doc, summary: c.summary, truth: { known: c.known as Record<string, string>, currentWord: c.currentWord }, split, source: 'known-answer' as const })),
    });
  }
  return items;
}

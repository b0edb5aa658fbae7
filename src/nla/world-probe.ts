// What world-M's activations hold (issue 11): at random cut points of held-out world stories,
// a linear probe per fact and per layer (trained on some stories, tested on others), and the
// token / bigram / constant FVE baselines per layer. The probe accuracy at layer K is the
// ceiling an NLA's explanations of layer K are measured against: an explanation cannot state
// reliably what a linear read-out of h cannot find.
import type { Tokenizer } from '../io/tokenizer.js';
import type { Llama } from '../nn/llama.js';
import * as T from '../tensor/index.js';
import { type Rng, rng as seeded, shuffled } from '../util/rng.js';
import { padRight } from './batch.js';
import { fveBigram, fveFloor, fveToken } from './baselines.js';
import { cutPoints, describeCut, FIELD_VALUES, FIELDS, type Field, type TokenCut } from './corpus.js';
import { tokensOf } from './world-model.js';
import { tokenizeWithOffsets } from './extract.js';
import { probeValues } from './probe-gpu.js';
import { rowsOf } from './sft.js';
import { worldStory, type WorldOptions, type WorldStory } from './world.js';

export interface WorldCutRow {
  story: number;
  cut: TokenCut;
  token: number;
  prevToken: number;
  /** Cue cuts: the field whose recalled word comes next. */
  cued?: Field;
}

/**
 * Where to cut: 'random' = `cuts` random token indices >= minTokens per story (as the NLA data
 * is cut); 'cue' = the token just before each recalled word (where the model must bring the
 * fact back to predict the next token), `cuts` of them per story at most.
 */
export type CutRule = 'random' | 'cue';

/** Cut points of stories i = 0..n-1 of `seed`. */
export function worldCuts(tok: Tokenizer, seed: number, n: number, cuts: number, minTokens: number, world: WorldOptions = {}, at: CutRule = 'random'): { rows: WorldCutRow[]; docs: number[][] } {
  const rand = seeded(seed + 5);
  const rows: WorldCutRow[] = [];
  const docs: number[][] = [];
  for (let i = 0; i < n; i++) {
    const story = worldStory(seed, i, world);
    const tokenize = (s: string) => tokenizeWithOffsets(tok, s);
    const cs: (TokenCut & { cued?: Field })[] = at === 'random' ? cutPoints(story, tokenize, minTokens, rand, cuts) : cueCuts(tok, story, minTokens, rand, cuts);
    const ids = tok.encode(story.text, { bos: true });
    docs.push(ids);
    for (const c of cs) rows.push({ story: i, cut: c, token: ids[c.tokenIndex]!, prevToken: c.tokenIndex > 0 ? ids[c.tokenIndex - 1]! : -1, cued: c.cued });
  }
  return { rows, docs };
}

/** Up to `count` cuts of a story at the token right before a recalled word (index >= minTokens), each with the field recalled next. */
export function cueCuts(tok: Tokenizer, story: WorldStory, minTokens: number, rand: Rng, count: number): (TokenCut & { cued: Field })[] {
  const { ids, offsets } = tokenizeWithOffsets(tok, story.text);
  const before = new Map<number, Field>();
  for (const m of story.mentions) if (m.recall) before.set(tokensOf(offsets, story.text.length, m.start, m.end)[0]! - 1, m.field);
  const chosen = shuffled(rand, [...before.keys()].filter((p) => p >= minTokens)).slice(0, count).sort((a, b) => a - b);
  return chosen.map((p) => ({ ...describeCut(story, offsets[p + 1] ?? story.text.length), tokenIndex: p, ids: ids.slice(0, p + 1), cued: before.get(p)! }));
}

/** The residual stream after every block at the rows' cut positions: layers[l] is [rows × d]. */
export async function allLayerActivations(model: Llama, docs: number[][], rows: readonly { story: number; cut: Pick<TokenCut, 'tokenIndex'> }[], onProgress?: (done: number, total: number) => void): Promise<Float32Array[]> {
  const L = model.cfg.nLayers, d = model.cfg.dim;
  const layers = Array.from({ length: L }, () => new Float32Array(rows.length * d));
  const byStory = new Map<number, number[]>();
  rows.forEach((r, i) => (byStory.get(r.story) ?? byStory.set(r.story, []).get(r.story)!).push(i));
  const stories = [...byStory.keys()];
  const bs = 16;
  for (let s = 0; s < stories.length; s += bs) {
    const group = stories.slice(s, s + bs);
    const seqs = group.map((k) => docs[k]!.slice(0, Math.max(...byStory.get(k)!.map((i) => rows[i]!.cut.tokenIndex)) + 1));
    const batch = padRight(seqs, 0);
    const caps = T.noGrad(() =>
      T.tidy(() => {
        const r = model.forward(T.Tensor.from(batch.ids, [batch.B, batch.T], 'i32'), { untilLayer: L - 1, capture: [...Array(L).keys()] });
        return [...Array(L).keys()].map((l) => r.captured.get(l)!);
      }),
    );
    for (let l = 0; l < L; l++) {
      const h = (await caps[l]!.data()) as Float32Array;
      group.forEach((k, b) => {
        for (const i of byStory.get(k)!) {
          const p = rows[i]!.cut.tokenIndex;
          layers[l]!.set(h.subarray((b * batch.T + p) * d, (b * batch.T + p + 1) * d), i * d);
        }
      });
    }
    for (const c of caps) c.dispose();
    onProgress?.(Math.min(s + bs, stories.length), stories.length);
  }
  return layers;
}

export interface LayerReport {
  layer: number;
  /** Held-out probe accuracy per fact, on test rows where the fact has been read; n = those rows. */
  probe: Record<string, { acc: number; n: number }>;
  /** Cue cuts only: the probe of each fact on the rows where that fact's recalled word comes next. */
  probeCued?: Record<string, { acc: number; n: number }>;
  fveToken: number;
  fveBigram: number;
  fveFloor: number;
}

export interface WorldProbeReport {
  trainRows: number;
  testRows: number;
  /** Per fact: 1 / number of values. */
  chance: Record<string, number>;
  layers: LayerReport[];
}

/**
 * Probes and baselines per layer. Rows of the first `trainShare` of the stories train, the rest
 * test (split by story, so no story's facts are in both).
 */
export async function probeWorld(layers: Float32Array[], rows: WorldCutRow[], d: number, o: { trainShare?: number; fields?: readonly Field[]; iters?: number; onLayer?: (r: LayerReport) => void } = {}): Promise<WorldProbeReport> {
  const stories = Math.max(...rows.map((r) => r.story)) + 1;
  const cut = Math.round(stories * (o.trainShare ?? 0.7));
  const trainIdx = rows.map((r, i) => (r.story < cut ? i : -1)).filter((i) => i >= 0);
  const testIdx = rows.map((r, i) => (r.story >= cut ? i : -1)).filter((i) => i >= 0);
  if (!trainIdx.length || !testIdx.length) throw new Error(`probeWorld: ${stories} stories leave an empty train or test side`);
  const fields = o.fields ?? FIELDS;
  const out: LayerReport[] = [];
  const trainSet = new Set(trainIdx), testSet = new Set(testIdx);
  const tokRows = (h: Float32Array, idx: number[]) => ({ h: rowsOf(h, d, idx), ids: Int32Array.from(idx.map((i) => rows[i]!.token)), prevIds: Int32Array.from(idx.map((i) => rows[i]!.prevToken)) });
  for (let l = 0; l < layers.length; l++) {
    const h = layers[l]!;
    const probeOn = async (keep: (i: number, f: Field) => boolean) => {
      const out: Record<string, { acc: number; n: number }> = {};
      for (const f of fields) {
        const value = (side: ReadonlySet<number>) => rows.map((r, i) => (side.has(i) && keep(i, f) ? r.cut.known[f] : undefined));
        const r = await probeValues(h, value(trainSet), h, value(testSet), d, { iters: o.iters });
        if (r) out[f] = r;
      }
      return out;
    };
    const probe = await probeOn(() => true);
    const probeCued = rows.some((r) => r.cued) ? await probeOn((i, f) => rows[i]!.cued === f) : undefined;
    const train = tokRows(h, trainIdx), test = tokRows(h, testIdx);
    const r: LayerReport = { layer: l, probe, ...(probeCued ? { probeCued } : {}), fveToken: fveToken(train, test, d).fve, fveBigram: fveBigram(train, test, d).fve, fveFloor: fveFloor(train, test, d).fve };
    o.onLayer?.(r);
    out.push(r);
  }
  return { trainRows: trainIdx.length, testRows: testIdx.length, chance: Object.fromEntries(fields.map((f) => [f, 1 / FIELD_VALUES[f].length])), layers: out };
}

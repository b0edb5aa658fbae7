// 'held' summaries of cue cuts (issue 11): the cued fact, plus every other fact read so far that
// the activation itself provably holds at that row, so that the warm start teaches the AV to
// state what h holds and only that. "Provably holds" = a linear probe on h names the true value
// with a confidence above the threshold that makes the probe right 9 times in 10
// (probe-precision.ts). Training rows are judged out of fold (the probe never saw the row's
// story); held-out rows by a probe fitted on every training row. The cued fact is always stated:
// world-M's layer holds it (probe at the cue 1.0), and the cut's next word names it.
import type { Llama } from '../nn/llama.js';
import type { Tokenizer } from '../io/tokenizer.js';
import { FIELD_VALUES, FIELDS, describeCut, type Field } from './corpus.js';
import type { ExtractItem } from './extract.js';
import { tokenizeWithOffsets } from './extract.js';
import type { ProbeFit } from './probe.js';
import { trainProbeGpu } from './probe-gpu.js';
import { thresholdForPrecision, topClass } from './probe-precision.js';
import { rowsOf } from './sft.js';
import { allLayerActivations } from './world-probe.js';
import { worldStory, type WorldOptions } from './world.js';

export const HELD_FOLDS = 4;

/** The residual at `layer` at every cut of `items`, rows in item order then position order. */
export async function itemActivations(model: Llama, items: readonly ExtractItem[], layer: number): Promise<Float32Array> {
  const rows = items.flatMap((it, story) => it.positions.map((p) => ({ story, cut: { tokenIndex: p } })));
  const layers = await allLayerActivations(model, items.map((it) => Array.from(it.ids)), rows);
  return layers[layer]!;
}

/**
 * Per row, the facts a confident linear probe on h reads rightly (the cued one included when it
 * does; the caller adds the cued fact in any case).
 * `rows` gives each row's document, whether it is a training row, and its known facts. `fit`
 * trains each probe (default: on the engine; about 30 fits in the world demo).
 */
export async function heldFacts(h: Float32Array, d: number, rows: readonly { doc: number; train: boolean; known: Partial<Record<Field, string>> }[], precision = 0.9, fit: ProbeFit = trainProbeGpu): Promise<{ held: Set<Field>[]; thresholds: Partial<Record<Field, number>> }> {
  const held = rows.map(() => new Set<Field>());
  const thresholds: Partial<Record<Field, number>> = {};
  for (const f of FIELDS) {
    const values = FIELD_VALUES[f] as readonly string[];
    const known = rows.map((r, i) => (r.known[f] === undefined ? -1 : i)).filter((i) => i >= 0);
    const train = known.filter((i) => rows[i]!.train);
    const test = known.filter((i) => !rows[i]!.train);
    if (train.length < HELD_FOLDS * values.length) continue;
    const label = (i: number) => values.indexOf(rows[i]!.known[f]!);
    // Out-of-fold confidence and rightness of the top class.
    const judge = async (fitRows: number[], on: number[]) => {
      const top = topClass(await fit(rowsOf(h, d, fitRows), fitRows.map(label), values.length), rowsOf(h, d, on), on.map(label));
      return on.map((i, k) => ({ i, conf: top.conf[k]!, right: top.right[k]! }));
    };
    const oof: { i: number; conf: number; right: boolean }[] = [];
    for (let k = 0; k < HELD_FOLDS; k++) {
      const on = train.filter((i) => rows[i]!.doc % HELD_FOLDS === k);
      if (on.length) oof.push(...(await judge(train.filter((i) => rows[i]!.doc % HELD_FOLDS !== k), on)));
    }
    const t = thresholdForPrecision(oof.map((r) => r.conf), oof.map((r) => r.right), precision);
    thresholds[f] = t;
    for (const r of [...oof, ...(test.length ? await judge(train, test) : [])]) if (r.right && r.conf >= t) held[r.i]!.add(f);
  }
  return { held, thresholds };
}

/**
 * Rewrite each cue cut's summary to state `fields(row)` (row = running index over the items'
 * cuts): the story's other first mentions are left out, as worldItems' 'cued' summaries do.
 */
export function restateSummaries(tok: Tokenizer, items: ExtractItem[], o: { seed: number; world?: WorldOptions; lastWordCount?: number }, fields: (row: number) => ReadonlySet<Field>): void {
  let row = 0;
  for (const it of items) {
    const doc = it.meta[0]!.doc;
    const story = worldStory(o.seed, doc, o.world);
    const { offsets } = tokenizeWithOffsets(tok, story.text);
    it.positions.forEach((p, k) => {
      const keep = fields(row++);
      const endChar = offsets[p + 1] ?? story.text.length;
      it.meta[k]!.summary = describeCut({ ...story, spans: story.spans.filter((sp) => keep.has(sp.field)) }, endChar, { lastWordCount: o.lastWordCount }).summary;
    });
  }
}

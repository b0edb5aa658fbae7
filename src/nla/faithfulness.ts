// Does the explanation say what the activation holds, and only that? (issue 11) Per fact field:
// the claims of greedy explanations on held-out rows (claims.ts: precision, recall,
// confabulation), next to chance and to the ceiling a linear probe on the same activations
// reaches (trained on the store's training rows, tested on the scored rows).
import type { NLA } from './nla.js';
import { chanceClaims, extractClaims, scoreClaims, type ClaimReport } from './claims.js';
import { claimIntervals } from './claim-intervals.js';
import type { Interval } from './doc-bootstrap.js';
import { claimConfidences, confidentCounts } from './claim-confidence.js';
import { ablations, fieldLabels, type AblationReport, type SwapProbes } from './ablations.js';
import { FIELD_VALUES, FIELDS, type CutTruth, type Field } from './corpus.js';
import { probeRecallAtPrecision, type RecallAtPrecision } from './probe-precision.js';
import { rng } from '../util/rng.js';
import { evaluate } from './evaluate.js';
import { probeValues, trainProbeGpu } from './probe-gpu.js';
import { rowsOf } from './sft.js';
import { confusionCost, type ConfusionCost } from './confusion-cost.js';
import type { RowMeta } from './store.js';

export interface FieldFaithfulness {
  precision: number;
  recall: number;
  confab: number;
  /** A random value of the field on every row. */
  chance_precision: number;
  chance_recall: number;
  /** Held-out accuracy of a linear probe on h where the fact has been read: the recall ceiling. */
  probe: number;
  /**
   * The recall of a linear probe held to the precision target (0.9; probe-precision.ts): what an
   * explainer that must be right 9 times in 10 could state. Set by faithfulnessReport.
   */
  probe_recall_p90?: number;
  /** That probe's precision on the scored rows (its threshold was chosen on training rows). */
  probe_precision_p90?: number;
  /** Rows where the fact has been read; rows where the explanation claims a value. */
  known: number;
  stated: number;
  /**
   * Only the claims the AV wrote with confidence >= CONFIDENT (0.9; claim-confidence.ts): what a
   * reader who takes the AV's sure claims alone would be told. Precision NaN when none.
   */
  stated_confident: number;
  precision_confident: number;
  recall_confident: number;
  /** 95% intervals by a bootstrap over the scored documents (claim-intervals.ts). */
  precision_ci: Interval;
  recall_ci: Interval;
  confab_ci: Interval;
}

export interface Faithfulness {
  rows: number;
  /** Documents (stories) the rows come from: the unit the intervals resample. */
  docs: number;
  fve: number;
  /** Share of explanations with no false claim on any field; share with any claim. */
  no_false_claim: number;
  no_false_claim_ci: Interval;
  any_claim: number;
  fields: Record<string, FieldFaithfulness>;
  examples: { explanation: string | null; truth: Partial<Record<Field, string>> }[];
}

/** Probe accuracy per field: trained on (trainH, trainMeta) where known, tested on (testH, testMeta) where known. */
export async function probeCeilings(trainH: Float32Array, trainMeta: readonly RowMeta[], testH: Float32Array, testMeta: readonly RowMeta[], d: number, fields: readonly Field[] = FIELDS): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const f of fields) {
    const value = (m: RowMeta) => m.truth?.known[f];
    out[f] = (await probeValues(trainH, trainMeta.map(value), testH, testMeta.map(value), d))?.acc ?? NaN;
  }
  return out;
}

/** Claims of the NLA's greedy explanations of (h, meta) beside chance and the probe ceilings. */
export async function faithfulness(nla: NLA, h: Float32Array, meta: RowMeta[], probe: Record<string, number>, o: { maxTokens?: number; batchSize?: number; onProgress?: (done: number) => void } = {}): Promise<Faithfulness & { claims: ClaimReport; examplesAll: (string | undefined)[]; claimsPerRow: Record<string, string[]>[]; confidences: Partial<Record<Field, number>>[] }> {
  if (!meta.every((m) => m.truth)) throw new Error('faithfulness: every row needs its truth (a known-answer or world store)');
  const truths = meta.map((m) => m.truth as CutTruth);
  const ev = await evaluate(nla.av, nla.ar, h, meta, nla.meta.variance, { temperature: 0, maxTokens: o.maxTokens ?? nla.meta.maxExplanationTokens, batchSize: o.batchSize, onProgress: o.onProgress });
  const explanations = ev.examples.map((e) => e.explanation);
  const claims = scoreClaims(explanations, truths);
  const chance = chanceClaims(truths);
  const perRow = explanations.map((e) => (e === undefined ? {} : extractClaims(e)));
  const known = truths.map((t) => t.known);
  const ci = claimIntervals({ claims: perRow, known, docs: meta.map((m) => m.doc) });
  const confidences = ev.examples.map((e) => {
    if (e.explanation === undefined) return {};
    const body = nla.av.stopIds.includes(e.tokens.at(-1)!) ? e.tokens.slice(0, -1) : e.tokens;
    const { text, starts } = nla.av.decodeWithStarts(body);
    return claimConfidences(e.explanation, text, starts, e.logprobs);
  });
  const fields: Record<string, FieldFaithfulness> = {};
  for (const f of FIELDS) {
    const c = claims.fields[f]!, iv = ci.fields[f]!, sure = confidentCounts(perRow, confidences, known, f);
    fields[f] = {
      precision: c.precision, recall: c.recall, confab: c.confab, chance_precision: chance[f]!.precision, chance_recall: chance[f]!.recall, probe: probe[f] ?? NaN, known: c.known, stated: c.stated,
      stated_confident: sure.stated, precision_confident: sure.right / sure.stated, recall_confident: sure.right / sure.known,
      precision_ci: iv.precision, recall_ci: iv.recall, confab_ci: iv.confab,
    };
  }
  return {
    rows: meta.length,
    docs: new Set(meta.map((m) => m.doc)).size,
    fve: ev.fve,
    no_false_claim: claims.noFalseClaim,
    no_false_claim_ci: ci.no_false_claim,
    any_claim: claims.anyClaim,
    fields,
    examples: ev.examples.slice(0, 10).map((e) => ({ explanation: e.explanation ?? null, truth: (e.truth?.known ?? {}) as Partial<Record<Field, string>> })),
    claims,
    examplesAll: explanations,
    claimsPerRow: perRow,
    confidences,
  };
}

/** The precision target: the probe ceiling for recall is the probe held to it. */
export const PRECISION_TARGET = 0.9;

/** Every CALIB_EVERY-th training story chooses that probe's confidence threshold; the others fit it. */
const CALIB_EVERY = 4;

/** Fewer stated rows than this per value of a field: its swap is read with the every-row probe only. */
const MIN_STATED_ROWS_PER_VALUE = 4;

/** The row's reference summary names the fact's true value outside its quotations. */
function summaryStates(m: RowMeta, f: Field): boolean {
  const said = m.summary === undefined ? [] : (extractClaims(m.summary, [f])[f] ?? []);
  return said.length === 1 && said[0] === m.truth?.known[f];
}

/**
 * claims_per_row: per scored row, the values each field's claim names (extractClaims; {} when
 * unparseable); explanations_per_row: the greedy explanations themselves (undefined: unparseable).
 */
export type FaithfulnessReport = Faithfulness & {
  ablations: AblationReport;
  claims_per_row: Record<string, string[]>[];
  explanations_per_row: (string | undefined)[];
  /** Per scored row, per stated field: the AV's confidence in the value it wrote (claim-confidence.ts). */
  confidences_per_row: Partial<Record<Field, number>>[];
  /** Per field, on the rows the swap probe is fitted on: the FVE lost by naming another value (confusion-cost.ts). */
  confusion_cost: Record<string, ConfusionCost>;
};

/**
 * What faithfulnessReport reads from the store alone, the same for every NLA scored on the same
 * rows (a caller scoring the warm start and RL computes it once): probe ceilings, swap probes,
 * the probe held to the precision target, and the FVE lost by naming another value.
 */
export interface StoreProbes {
  ceilings: Record<string, number>;
  swap: Partial<Record<Field, SwapProbes>>;
  p90: Partial<Record<Field, RecallAtPrecision>>;
  costs: Record<string, ConfusionCost>;
}

/**
 * Probes trained on the store's training rows (every split but eval) of `all`, scored on the
 * rows (h, meta). Swap probes: classes in FIELD_VALUES order, one on the rows whose reference
 * summary states the field, one on every row where the fact has been read.
 */
export async function storeProbes(all: { h: Float32Array; meta: RowMeta[] }, h: Float32Array, meta: RowMeta[], d: number, variance: number): Promise<StoreProbes> {
  const trainIdx = all.meta.map((m, i) => (m.split !== 'eval' && m.truth ? i : -1)).filter((i) => i >= 0);
  const trainMeta = trainIdx.map((i) => all.meta[i]!);
  const ceilings = await probeCeilings(rowsOf(all.h, d, trainIdx), trainMeta, h, meta, d);
  const swap: Partial<Record<Field, SwapProbes>> = {};
  const p90: Partial<Record<Field, RecallAtPrecision>> = {};
  const costs: Record<string, ConfusionCost> = {};
  for (const f of FIELDS) {
    const y = fieldLabels(trainMeta.map((m) => m.truth as CutTruth), f);
    const fit = (keep: number[]) => trainProbeGpu(rowsOf(all.h, d, keep.map((k) => trainIdx[k]!)), keep.map((k) => y[k]!), FIELD_VALUES[f].length);
    const known = Array.from(y, (v, k) => (v >= 0 ? k : -1)).filter((k) => k >= 0);
    if (!known.length) continue;
    const stated = known.filter((k) => summaryStates(trainMeta[k]!, f));
    const useStated = stated.length >= MIN_STATED_ROWS_PER_VALUE * FIELD_VALUES[f].length;
    swap[f] = { known: await fit(known), ...(useStated ? { stated: await fit(stated) } : {}) };
    const testKnown = meta.map((m, i) => (m.truth?.known[f] === undefined ? -1 : i)).filter((i) => i >= 0);
    const calib = (k: number) => trainMeta[k]!.doc % CALIB_EVERY === CALIB_EVERY - 1;
    if (testKnown.length && known.some(calib) && !known.every(calib)) {
      p90[f] = await probeRecallAtPrecision(rowsOf(all.h, d, known.map((k) => trainIdx[k]!)), known.map((k) => y[k]!), known.map((k) => trainMeta[k]!.doc), rowsOf(h, d, testKnown), Array.from(fieldLabels(testKnown.map((i) => meta[i]!.truth as CutTruth), f)), FIELD_VALUES[f].length, PRECISION_TARGET, { calibEvery: CALIB_EVERY });
    }
    const rows = useStated ? stated : known;
    const cost = confusionCost(rowsOf(all.h, d, rows.map((k) => trainIdx[k]!)), rows.map((k) => FIELD_VALUES[f][y[k]!]), d, variance);
    if (cost) costs[f] = cost;
  }
  return { ceilings, swap, p90, costs };
}

/**
 * The whole issue-11 measure of one NLA on rows (h, meta) of a store whose rows are `all`: the
 * claims of the greedy explanations beside the store's probes (storeProbes; pass `probes` when
 * already computed for these rows), and the content ablations on them. `nla faithfulness` and
 * `nla demo --world` both print this.
 */
export async function faithfulnessReport(nla: NLA, all: { h: Float32Array; meta: RowMeta[] }, h: Float32Array, meta: RowMeta[], o: { batchSize?: number; onProgress?: (done: number) => void; probes?: StoreProbes } = {}): Promise<FaithfulnessReport> {
  const d = nla.ar.d;
  const sp = o.probes ?? (await storeProbes(all, h, meta, d, nla.meta.variance));
  const r = await faithfulness(nla, h, meta, sp.ceilings, o);
  for (const [f, p] of Object.entries(sp.p90)) if (r.fields[f]) r.fields[f] = { ...r.fields[f]!, probe_recall_p90: p.recall, probe_precision_p90: p.precision };
  const ab = await ablations((t) => nla.ar.predictHost(t), h, r.examplesAll, d, nla.meta.variance, sp.swap, rng(1));
  const { claims: _claims, examplesAll: _all, claimsPerRow, confidences, ...out } = r;
  return { ...out, ablations: ab, claims_per_row: claimsPerRow, explanations_per_row: r.examplesAll, confidences_per_row: confidences, confusion_cost: sp.costs };
}

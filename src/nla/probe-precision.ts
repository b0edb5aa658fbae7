// The recall ceiling of an explainer held to a precision: a linear probe that states a value
// only when it is confident, with the confidence threshold chosen so that it is right at least
// `precision` of the time. A probe's plain accuracy counts its low-confidence right guesses; an
// explainer asked for precision >= 0.9 cannot make those guesses, so its recall is compared with
// the probe's recall at the same precision (issue 11: like with like).
//
// The probe is fitted on one part of the training rows, the threshold is chosen on the other
// part (split by document, so a story's rows do not make the probe look surer than it is), and
// both are then applied to the scored rows.
import type { Rows } from './fve.js';
import { probeProbabilities, type Probe, type ProbeFit, type ProbeOptions } from './probe.js';
import { trainProbeGpu } from './probe-gpu.js';

export interface RecallAtPrecision {
  /** Scored rows where the probe is confident and right / scored rows. */
  recall: number;
  /** Scored rows where it is confident and right / scored rows where it is confident. */
  precision: number;
  /** The lowest top-class probability at which the probe states a value (Infinity: never). */
  threshold: number;
  /** Scored rows. */
  n: number;
}

/** Per row, the probe's top-class probability and whether that class is the label. */
export function topClass(probe: Probe, rows: Rows, labels: ArrayLike<number>): { conf: Float64Array; right: boolean[] } {
  const k = probe.nClasses;
  const p = probeProbabilities(probe, rows);
  const conf = new Float64Array(labels.length);
  const right: boolean[] = [];
  for (let i = 0; i < labels.length; i++) {
    let best = 0;
    for (let c = 1; c < k; c++) if (p[i * k + c]! > p[i * k + best]!) best = c;
    conf[i] = p[i * k + best]!;
    right.push(best === labels[i]);
  }
  return { conf, right };
}

/**
 * The threshold on top-class probability with the most stated rows whose precision is still
 * >= `target`, over rows given as (confidence, right); Infinity when no threshold reaches it.
 */
export function thresholdForPrecision(conf: ArrayLike<number>, right: ArrayLike<boolean>, target: number): number {
  const order = Array.from({ length: conf.length }, (_, i) => i).sort((a, b) => conf[b]! - conf[a]!);
  let best = Infinity;
  let hits = 0;
  for (let k = 0; k < order.length; k++) {
    if (right[order[k]!]) hits++;
    const next = order[k + 1];
    // A threshold can only fall between distinct confidences.
    if (next !== undefined && conf[next]! === conf[order[k]!]!) continue;
    if (hits / (k + 1) >= target) best = conf[order[k]!]!;
  }
  return best;
}

/**
 * Recall at a precision of a probe of labels `y` (class indices < nClasses) on rows `x` (width
 * d): fitted on the training rows whose group (a document) is not calibration, threshold chosen
 * on the others (every `calibEvery`-th group), scored on (testX, testY). `fit` trains the probe
 * (default: on the engine; trainProbe is the CPU reference).
 */
export async function probeRecallAtPrecision(
  x: Rows,
  y: ArrayLike<number>,
  groups: ArrayLike<number>,
  testX: Rows,
  testY: ArrayLike<number>,
  nClasses: number,
  target: number,
  o: ProbeOptions & { calibEvery?: number; fit?: ProbeFit } = {},
): Promise<RecallAtPrecision> {
  const every = o.calibEvery ?? 4;
  const d = x.length / y.length;
  const fitIdx: number[] = [];
  const calIdx: number[] = [];
  for (let i = 0; i < y.length; i++) (groups[i]! % every === every - 1 ? calIdx : fitIdx).push(i);
  if (!fitIdx.length || !calIdx.length) throw new Error(`probeRecallAtPrecision: ${fitIdx.length} fitting and ${calIdx.length} calibration rows; both must be non-empty (groups ${every} or more)`);
  const take = (idx: number[]) => {
    const out = new Float64Array(idx.length * d);
    idx.forEach((i, k) => out.set(x.subarray(i * d, (i + 1) * d), k * d));
    return out;
  };
  const probe = await (o.fit ?? trainProbeGpu)(take(fitIdx), fitIdx.map((i) => y[i]!), nClasses, o);
  const cal = topClass(probe, take(calIdx), calIdx.map((i) => y[i]!));
  const threshold = thresholdForPrecision(cal.conf, cal.right, target);
  const test = topClass(probe, testX, testY);
  let stated = 0;
  let hits = 0;
  for (let i = 0; i < testY.length; i++) {
    if (test.conf[i]! < threshold) continue;
    stated++;
    if (test.right[i]) hits++;
  }
  return { recall: testY.length ? hits / testY.length : NaN, precision: stated ? hits / stated : NaN, threshold, n: testY.length };
}

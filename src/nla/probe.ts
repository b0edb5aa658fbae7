// Linear probes: is a story fact linearly readable from one activation? If not, no AV can be
// expected to state it (NLA-METHOD.md: on stories260K layer 3 only the event is, clearly).
// Multinomial logistic regression, full-batch Adam in float64, L2 on the weights. The caller
// passes normalised h and drops samples where the fact has not been read yet.

import type { Rows } from './fve.js';

export interface ProbeOptions {
  iters?: number;
  lr?: number;
  l2?: number;
  /**
   * trainProbeGpu only: rows per Adam step, the rows dealt once into fixed mini-batches by a
   * seeded shuffle and cycled through (default: every row, full batch, as trainProbe).
   */
  batchSize?: number;
}
/** A probe trainer: trainProbe here, or trainProbeGpu (probe-gpu.ts) where many are fitted. */
export type ProbeFit = (x: Rows, y: ArrayLike<number>, nClasses: number, opts?: ProbeOptions) => Probe | Promise<Probe>;
export interface Probe {
  d: number;
  nClasses: number;
  /** nClasses×d weights on standardised inputs, and biases. */
  w: Float64Array;
  b: Float64Array;
  mean: Float64Array;
  std: Float64Array;
}

function checkXY(x: Rows, y: ArrayLike<number>, nClasses: number, what: string): number {
  if (y.length === 0) throw new Error(`${what}: no samples`);
  const d = x.length / y.length;
  if (!Number.isInteger(d)) throw new Error(`${what}: x length ${x.length} is not a multiple of ${y.length} labels`);
  for (let i = 0; i < y.length; i++) {
    const c = y[i]!;
    if (!Number.isInteger(c) || c < 0 || c >= nClasses) throw new Error(`${what}: label ${c} at ${i} not in [0, ${nClasses})`);
  }
  return d;
}

// Class scores for row i of x, written into `out`.
function logits(p: Probe, x: Rows, i: number, out: Float64Array): void {
  const { d, nClasses, w, b, mean, std } = p;
  for (let c = 0; c < nClasses; c++) {
    let s = b[c]!;
    for (let j = 0; j < d; j++) s += w[c * d + j]! * ((x[i * d + j]! - mean[j]!) / std[j]!);
    out[c] = s;
  }
}

/** Fit a probe. Inputs are standardised with the training mean and std so one lr suits all. */
export function trainProbe(x: Rows, y: ArrayLike<number>, nClasses: number, opts: ProbeOptions = {}): Probe {
  const { iters = 300, lr = 0.05, l2 = 1e-3 } = opts;
  const d = checkXY(x, y, nClasses, 'trainProbe');
  const n = y.length;
  const mean = new Float64Array(d);
  const std = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j]! += x[i * d + j]! / n;
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) std[j]! += (x[i * d + j]! - mean[j]!) ** 2 / n;
  for (let j = 0; j < d; j++) std[j] = Math.sqrt(std[j]!) || 1;
  // Standardise once, not in every iteration.
  const z = new Float64Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) z[i * d + j] = (x[i * d + j]! - mean[j]!) / std[j]!;

  const nW = nClasses * d;
  const params = new Float64Array(nW + nClasses); // weights then biases
  const grad = new Float64Array(params.length);
  const m1 = new Float64Array(params.length);
  const m2 = new Float64Array(params.length);
  const prob = new Float64Array(nClasses);
  const [beta1, beta2, eps] = [0.9, 0.999, 1e-8];
  for (let t = 1; t <= iters; t++) {
    grad.fill(0);
    for (let i = 0; i < n; i++) {
      let max = -Infinity;
      for (let c = 0; c < nClasses; c++) {
        let s = params[nW + c]!;
        for (let j = 0; j < d; j++) s += params[c * d + j]! * z[i * d + j]!;
        prob[c] = s;
        if (s > max) max = s;
      }
      let sum = 0;
      for (let c = 0; c < nClasses; c++) sum += (prob[c] = Math.exp(prob[c]! - max));
      // d(mean cross-entropy)/d(logit_c) = (p_c − [c = y]) / n
      for (let c = 0; c < nClasses; c++) {
        const g = (prob[c]! / sum - (c === y[i] ? 1 : 0)) / n;
        grad[nW + c]! += g;
        for (let j = 0; j < d; j++) grad[c * d + j]! += g * z[i * d + j]!;
      }
    }
    for (let k = 0; k < nW; k++) grad[k]! += l2 * params[k]!;
    const c1 = 1 - beta1 ** t;
    const c2 = 1 - beta2 ** t;
    for (let k = 0; k < params.length; k++) {
      m1[k] = beta1 * m1[k]! + (1 - beta1) * grad[k]!;
      m2[k] = beta2 * m2[k]! + (1 - beta2) * grad[k]! ** 2;
      params[k]! -= (lr * (m1[k]! / c1)) / (Math.sqrt(m2[k]! / c2) + eps);
    }
  }
  return { d, nClasses, w: params.slice(0, nW), b: params.slice(nW), mean, std };
}

/** Most likely class per row. */
export function predictProbe(p: Probe, x: Rows): Int32Array {
  const n = x.length / p.d;
  const out = new Int32Array(n);
  const s = new Float64Array(p.nClasses);
  for (let i = 0; i < n; i++) {
    logits(p, x, i, s);
    let best = 0;
    for (let c = 1; c < p.nClasses; c++) if (s[c]! > s[best]!) best = c;
    out[i] = best;
  }
  return out;
}

/** Class probabilities per row (softmax of the probe's scores), row-major [rows, nClasses]. */
export function probeProbabilities(p: Probe, x: Rows): Float64Array {
  const n = x.length / p.d;
  const out = new Float64Array(n * p.nClasses);
  const s = new Float64Array(p.nClasses);
  for (let i = 0; i < n; i++) {
    logits(p, x, i, s);
    const max = Math.max(...s);
    let sum = 0;
    for (let c = 0; c < p.nClasses; c++) sum += (s[c] = Math.exp(s[c]! - max));
    for (let c = 0; c < p.nClasses; c++) out[i * p.nClasses + c] = s[c]! / sum;
  }
  return out;
}

/** Held-out accuracy of a probe trained on (trainX, trainY). */
export function probeAccuracy(
  trainX: Rows,
  trainY: ArrayLike<number>,
  testX: Rows,
  testY: ArrayLike<number>,
  nClasses: number,
  opts: ProbeOptions = {},
): number {
  const p = trainProbe(trainX, trainY, nClasses, opts);
  if (checkXY(testX, testY, nClasses, 'probeAccuracy test') !== p.d) {
    throw new Error(`probeAccuracy: test width ${testX.length / testY.length} differs from train width ${p.d}`);
  }
  const pred = predictProbe(p, testX);
  let hits = 0;
  for (let i = 0; i < pred.length; i++) if (pred[i] === testY[i]) hits++;
  return hits / pred.length;
}

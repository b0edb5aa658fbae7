// The same linear probe as probe.ts (multinomial logistic regression on standardised inputs,
// full-batch Adam, 300 iterations), run on the engine. The float64 CPU version is the reference
// and stays the one the tests pin down; this one exists because the demos fit dozens of probes on
// ~5,000 rows (up to a few hundred classes): about half the CPU's time each. Over tens of
// thousands of rows, mini-batches (opts.batchSize) take the same number of steps for a fraction
// of the work.
// Difference from the CPU version: the L2 penalty is AdamW's decoupled weight decay.
import * as T from '../tensor/index.js';
import { predictProbe, type Probe, type ProbeOptions } from './probe.js';
import { rowsOf } from './sft.js';
import { SeededRng } from '../util/rng.js';
import type { Tensor } from '../tensor/tensor.js';

/** Held-out accuracy of a probe trained on (trainX, trainY); see probeAccuracy in probe.ts. */
export async function probeAccuracyGpu(
  trainX: ArrayLike<number>,
  trainY: ArrayLike<number>,
  testX: ArrayLike<number>,
  testY: ArrayLike<number>,
  nClasses: number,
  opts: ProbeOptions = {},
): Promise<number> {
  if (testX.length !== testY.length * (trainX.length / Math.max(trainY.length, 1))) throw new Error(`probeAccuracyGpu: x widths do not match the labels (${trainX.length}/${trainY.length}, ${testX.length}/${testY.length})`);
  for (let i = 0; i < testY.length; i++) if (!(testY[i]! >= 0 && testY[i]! < nClasses)) throw new Error(`probeAccuracyGpu: label ${testY[i]} at ${i} not in [0, ${nClasses})`);
  const pred = await probePredictGpu(trainX, trainY, testX, nClasses, opts);
  let hits = 0;
  for (let i = 0; i < pred.length; i++) if (pred[i] === testY[i]) hits++;
  return pred.length ? hits / pred.length : 0;
}

/** The class a probe trained on (trainX, trainY) predicts for each row of testX (for joint accuracies over several probes). */
export async function probePredictGpu(
  trainX: ArrayLike<number>,
  trainY: ArrayLike<number>,
  testX: ArrayLike<number>,
  nClasses: number,
  opts: ProbeOptions = {},
): Promise<Int32Array> {
  const p = await trainProbeGpu(trainX, trainY, nClasses, opts);
  if (testX.length % p.d !== 0) throw new Error(`probePredictGpu: test x length ${testX.length} is not a multiple of the width ${p.d}`);
  return predictProbe(p, testX instanceof Float32Array || testX instanceof Float64Array ? testX : Float64Array.from(testX));
}

/**
 * trainProbe (probe.ts) on the engine: the same model, returned in the same form (weights on
 * standardised inputs, float64 on the host), so its probabilities, predictions and thresholds
 * are computed by the CPU code the tests pin down. Used where a run fits dozens of probes.
 */
export async function trainProbeGpu(x: ArrayLike<number>, y: ArrayLike<number>, nClasses: number, opts: ProbeOptions = {}): Promise<Probe> {
  const { iters = 300, lr = 0.05, l2 = 1e-3 } = opts;
  const n = y.length, d = x.length / n;
  if (!n) throw new Error('trainProbeGpu: no samples');
  if (!Number.isInteger(d)) throw new Error(`trainProbeGpu: x length ${x.length} is not a multiple of ${n} labels`);
  for (let i = 0; i < n; i++) if (!(Number.isInteger(y[i]) && y[i]! >= 0 && y[i]! < nClasses)) throw new Error(`trainProbeGpu: label ${y[i]} at ${i} not in [0, ${nClasses})`);
  const bs = opts.batchSize ?? n;
  if (!(Number.isInteger(bs) && bs >= 1)) throw new Error(`trainProbeGpu: batchSize ${bs} is not a positive whole number`);
  const { mean, std } = standardiser(x, d);
  const W = T.param(T.zeros([d, nClasses]), 'probe.w');
  const b = T.param(T.zeros([nClasses]), 'probe.b');
  const opt = new T.AdamW([{ params: [W], weightDecay: l2 / lr }, { params: [b], weightDecay: 0 }], { lr });
  const batches = miniBatches(standardise(x, d, mean, std), y, d, bs);
  try {
    for (let t = 0; t < iters; t++) {
      const { xs, ys } = batches[t % batches.length]!;
      // The bias inside the loss: the [n, classes] biased logits are never written.
      T.tidy(() => T.crossEntropy(xs.matmul(W), ys, { bias: b }).backward());
      opt.step();
      opt.zeroGrad();
    }
    const wt = (await W.data()) as Float32Array; // [d, nClasses]
    const w = new Float64Array(nClasses * d);
    for (let j = 0; j < d; j++) for (let c = 0; c < nClasses; c++) w[c * d + j] = wt[j * nClasses + c]!;
    return { d, nClasses, w, b: Float64Array.from((await b.data()) as Float32Array), mean, std };
  } finally {
    opt.dispose();
    for (const t of [W, b, ...batches.flatMap((m) => [m.xs, m.ys])]) t.dispose();
  }
}

/**
 * Standardised rows and labels on the GPU in batches of `bs`: one batch of every row in order
 * when bs >= n (full batch), else the rows shuffled once (a fixed seed, so a probe is the same
 * on every run) and cut into batches of bs, the last one shorter.
 */
function miniBatches(z: Float32Array, y: ArrayLike<number>, d: number, bs: number): { xs: Tensor; ys: Tensor }[] {
  const n = y.length;
  const order = [...Array(n).keys()];
  if (bs < n) {
    const r = new SeededRng(0x70be);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(r.next() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
  }
  const out: { xs: Tensor; ys: Tensor }[] = [];
  for (let s = 0; s < n; s += bs) {
    const idx = order.slice(s, s + bs);
    out.push({ xs: T.keep(T.Tensor.from(bs < n ? rowsOf(z, d, idx) : z, [idx.length, d])), ys: T.keep(T.Tensor.from(Int32Array.from(idx, (i) => y[i]!), [idx.length], 'i32')) });
  }
  return out;
}

function standardiser(x: ArrayLike<number>, d: number) {
  const n = x.length / d, mean = new Float64Array(d), std = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j]! += x[i * d + j]! / n;
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) std[j]! += (x[i * d + j]! - mean[j]!) ** 2 / n;
  for (let j = 0; j < d; j++) std[j] = Math.sqrt(std[j]!) || 1;
  return { mean, std };
}

function standardise(x: ArrayLike<number>, d: number, mean: Float64Array, std: Float64Array): Float32Array {
  const z = new Float32Array(x.length);
  for (let i = 0; i < z.length; i++) z[i] = (x[i]! - mean[i % d]!) / std[i % d]!;
  return z;
}

/**
 * A probe of a named value (a story fact, a word) read from rows of h (width d): trained on the
 * training rows whose value is defined, scored on the test rows whose value is. The classes are
 * the values training saw; a test row whose value it never saw counts as wrong. Undefined when
 * training saw fewer than two values or no test row has one.
 */
export async function probeValues(
  trainH: Float32Array,
  trainValues: readonly (string | undefined)[],
  testH: Float32Array,
  testValues: readonly (string | undefined)[],
  d: number,
  opts: ProbeOptions = {},
): Promise<{ acc: number; n: number } | undefined> {
  const tr = trainValues.flatMap((v, i) => (v === undefined ? [] : [i]));
  const te = testValues.flatMap((v, i) => (v === undefined ? [] : [i]));
  const classes = [...new Set(tr.map((i) => trainValues[i]!))].sort();
  if (classes.length < 2 || !te.length) return undefined;
  const index = new Map(classes.map((c, k) => [c, k]));
  const seen = te.filter((i) => index.has(testValues[i]!));
  const acc = seen.length
    ? await probeAccuracyGpu(rowsOf(trainH, d, tr), Int32Array.from(tr, (i) => index.get(trainValues[i]!)!), rowsOf(testH, d, seen), Int32Array.from(seen, (i) => index.get(testValues[i]!)!), classes.length, opts)
    : 0;
  return { acc: (acc * seen.length) / te.length, n: te.length };
}

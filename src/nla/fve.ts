// Fraction of variance explained on L2-normalised vectors (NLA-METHOD.md, "Vectors, loss, FVE").
// Vectors are n rows of width d stored row-major in one array. Everything accumulates in
// float64: sums over d and over thousands of rows lose digits in float32.

export type Rows = Float32Array | Float64Array;

function rowCount(x: Rows, d: number): number {
  if (!Number.isInteger(d) || d <= 0) throw new Error(`width d must be a positive integer, got ${d}`);
  if (x.length % d !== 0) throw new Error(`array length ${x.length} is not a multiple of d=${d}`);
  return x.length / d;
}

/** Each row scaled to norm √d (a zero row stays zero: it has no direction). */
export function normalizeRows(x: Rows, d: number): Float64Array {
  const n = rowCount(x, d);
  const out = new Float64Array(x.length);
  const target = Math.sqrt(d);
  for (let i = 0; i < n; i++) {
    let ss = 0;
    for (let j = 0; j < d; j++) ss += x[i * d + j]! * x[i * d + j]!;
    const s = ss > 0 ? target / Math.sqrt(ss) : 0;
    for (let j = 0; j < d; j++) out[i * d + j] = x[i * d + j]! * s;
  }
  return out;
}

/** Per row: mean over d of the squared difference, after normalising both (= 2(1 − cos)). */
export function mseNormalized(pred: Rows, target: Rows, d: number): Float64Array {
  const n = rowCount(pred, d);
  if (target.length !== pred.length) throw new Error(`pred has ${n} rows, target ${target.length / d}`);
  const p = normalizeRows(pred, d);
  const t = normalizeRows(target, d);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) {
      const e = p[i * d + j]! - t[i * d + j]!;
      s += e * e;
    }
    out[i] = s / d;
  }
  return out;
}

/** Mean row (float64). */
export function meanRow(x: Rows, d: number): Float64Array {
  const n = rowCount(x, d);
  const m = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) m[j]! += x[i * d + j]!;
  for (let j = 0; j < d; j++) m[j]! /= Math.max(1, n);
  return m;
}

/**
 * Var = mean over rows of MSE(v_norm, mean(v_norm)). The mean of the normalised vectors is
 * used as is, not renormalised: Var is the spread around the centroid, the denominator FVE
 * is defined with (so the mean predictor, if it were allowed to be unnormalised, scores 0).
 */
export function varianceNormalized(vectors: Rows, d: number): number {
  const n = rowCount(vectors, d);
  if (n === 0) throw new Error('varianceNormalized: no rows');
  const v = normalizeRows(vectors, d);
  const m = meanRow(v, d);
  let s = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) s += (v[i * d + j]! - m[j]!) ** 2;
  return s / (n * d);
}

/** FVE = 1 − MSE / Var; `mse` may be per-row values (averaged) or already a mean. */
export function fve(mse: number | ArrayLike<number>, variance: number): number {
  let m: number;
  if (typeof mse === 'number') m = mse;
  else {
    if (mse.length === 0) throw new Error('fve: no MSE values');
    m = 0;
    for (let i = 0; i < mse.length; i++) m += mse[i]!;
    m /= mse.length;
  }
  return 1 - m / variance;
}

/** q-quantile (linear interpolation) of the raw row norms: q = 0.75 gives the AV's α. */
export function normQuantile(vectors: Rows, d: number, q: number): number {
  const n = rowCount(vectors, d);
  if (n === 0) throw new Error('normQuantile: no rows');
  if (!(q >= 0 && q <= 1)) throw new Error(`normQuantile: q must be in [0, 1], got ${q}`);
  const norms = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let ss = 0;
    for (let j = 0; j < d; j++) ss += vectors[i * d + j]! ** 2;
    norms[i] = Math.sqrt(ss);
  }
  norms.sort();
  const pos = q * (n - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(n - 1, lo + 1);
  return norms[lo]! + (pos - lo) * (norms[hi]! - norms[lo]!);
}

/**
 * The closed-form FVE of the best constant direction on the set the mean is taken from:
 * predictions are normalised, so MSE = 2 − 2‖v̄‖/√d and FVE = 1 − that / Var (< 0 in general).
 */
export function floorFveFormula(vectors: Rows, d: number): number {
  const m = meanRow(normalizeRows(vectors, d), d);
  let ss = 0;
  for (let j = 0; j < d; j++) ss += m[j]! ** 2;
  return 1 - (2 - (2 * Math.sqrt(ss)) / Math.sqrt(d)) / varianceNormalized(vectors, d);
}

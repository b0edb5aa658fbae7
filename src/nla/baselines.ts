// Text-free baselines an NLA must beat (NLA-METHOD.md, "Measured on stories260K"): at layer 3
// of stories260K the current token alone explains FVE ≈ 0.74 and the (previous, current) pair
// ≈ 0.96, while the best constant direction scores below 0. Fitted on training activations,
// measured on held-out ones. Predictions are normalised before the MSE, as the AR's are.

import { type Rows, fve, meanRow, mseNormalized, normalizeRows, varianceNormalized } from './fve.js';

/** Activations (raw, n×d row-major) with the token id at each row and the one before it. */
export interface TokenRows {
  h: Rows;
  ids: ArrayLike<number>;
  /** Previous token id per row; -1 (or missing) where there is none, e.g. the first token. */
  prevIds?: ArrayLike<number>;
}

export interface BaselineResult {
  fve: number;
  mse: number;
  variance: number;
  /** Per test row, the normalised MSE (for intervals over documents). */
  rowMse: Float64Array;
}

function checkRows(x: TokenRows, d: number, what: string): number {
  const n = x.h.length / d;
  if (!Number.isInteger(n)) throw new Error(`${what}: h length ${x.h.length} is not a multiple of d=${d}`);
  if (x.ids.length !== n) throw new Error(`${what}: ${n} rows but ${x.ids.length} token ids`);
  if (x.prevIds && x.prevIds.length !== n) throw new Error(`${what}: ${n} rows but ${x.prevIds.length} previous ids`);
  return n;
}

// Mean normalised h per key; keys are numbers so the tables stay Maps of plain arrays.
function groupMeans(v: Float64Array, d: number, keys: (i: number) => number, n: number): Map<number, Float64Array> {
  const sums = new Map<number, Float64Array>();
  const counts = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const k = keys(i);
    let s = sums.get(k);
    if (!s) sums.set(k, (s = new Float64Array(d)));
    for (let j = 0; j < d; j++) s[j]! += v[i * d + j]!;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  for (const [k, s] of sums) {
    const c = counts.get(k)!;
    for (let j = 0; j < d; j++) s[j]! /= c;
  }
  return sums;
}

// The pair key: ids are far below 2^26, so prev·2^26 + cur is exact in a double.
const pairKey = (prev: number, cur: number) => prev * 67108864 + cur;
const prevAt = (x: TokenRows, i: number) => (x.prevIds ? x.prevIds[i]! : -1);

function score(pred: Float64Array, test: TokenRows, d: number, variance: number): BaselineResult {
  const per = mseNormalized(pred, test.h, d);
  let mse = 0;
  for (const e of per) mse += e;
  mse /= per.length;
  return { fve: fve(mse, variance), mse, variance, rowMse: per };
}

function predict(test: TokenRows, d: number, n: number, lookup: (i: number) => Float64Array): Float64Array {
  const pred = new Float64Array(n * d);
  for (let i = 0; i < n; i++) pred.set(lookup(i), i * d);
  return pred;
}

/** Predict the mean normalised h of the current token (unseen token → the global mean). */
export function fveToken(train: TokenRows, test: TokenRows, d: number): BaselineResult {
  const nTrain = checkRows(train, d, 'fveToken train');
  const nTest = checkRows(test, d, 'fveToken test');
  const v = normalizeRows(train.h, d);
  const global = meanRow(v, d);
  const byToken = groupMeans(v, d, (i) => train.ids[i]!, nTrain);
  const pred = predict(test, d, nTest, (i) => byToken.get(test.ids[i]!) ?? global);
  return score(pred, test, d, varianceNormalized(train.h, d));
}

/** Predict from the (previous, current) pair; back off to the token mean, then the global mean. */
export function fveBigram(train: TokenRows, test: TokenRows, d: number): BaselineResult {
  const nTrain = checkRows(train, d, 'fveBigram train');
  const nTest = checkRows(test, d, 'fveBigram test');
  const v = normalizeRows(train.h, d);
  const global = meanRow(v, d);
  const byToken = groupMeans(v, d, (i) => train.ids[i]!, nTrain);
  const byPair = groupMeans(v, d, (i) => pairKey(prevAt(train, i), train.ids[i]!), nTrain);
  const pred = predict(test, d, nTest, (i) => {
    const cur = test.ids[i]!;
    return byPair.get(pairKey(prevAt(test, i), cur)) ?? byToken.get(cur) ?? global;
  });
  return score(pred, test, d, varianceNormalized(train.h, d));
}

/** The best constant direction: the normalised global training mean, for every test row. */
export function fveFloor(train: TokenRows | Rows, test: TokenRows | Rows, d: number): BaselineResult {
  const trainH = 'h' in train ? train.h : train;
  const testH = 'h' in test ? test.h : test;
  const global = meanRow(normalizeRows(trainH, d), d);
  const n = testH.length / d;
  const pred = new Float64Array(n * d);
  for (let i = 0; i < n; i++) pred.set(global, i * d);
  return score(pred, { h: testH, ids: new Int32Array(n) }, d, varianceNormalized(trainH, d));
}

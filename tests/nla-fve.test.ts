import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  floorFveFormula,
  fve,
  meanRow,
  mseNormalized,
  normQuantile,
  normalizeRows,
  varianceNormalized,
} from '../src/nla/fve.js';
import { fveFloor } from '../src/nla/baselines.js';
import { rng } from '../src/util/rng.js';
import { fcRuns } from '../src/testing/runs.js';

const close = (a: number, b: number, tol = 1e-9) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

function randomRows(seed: number, n: number, d: number, bias = 0): Float64Array {
  const r = rng(seed);
  return Float64Array.from({ length: n * d }, (_, k) => r() * 2 - 1 + (k % d === 0 ? bias : 0));
}

test('normalizeRows gives every nonzero row norm √d and keeps its direction', () => {
  const d = 5;
  const x = randomRows(1, 7, d);
  const v = normalizeRows(x, d);
  for (let i = 0; i < 7; i++) {
    let ss = 0;
    for (let j = 0; j < d; j++) ss += v[i * d + j]! ** 2;
    close(Math.sqrt(ss), Math.sqrt(d));
    close(v[i * d]! / x[i * d]!, v[i * d + 1]! / x[i * d + 1]!);
  }
  assert.deepEqual([...normalizeRows(new Float64Array(3), 3)], [0, 0, 0]);
});

test('mseNormalized = 2(1 − cos), checked against a float64 hand computation', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 16 }),
      fc.integer({ min: 1, max: 6 }),
      fc.integer({ min: 0, max: 1e6 }),
      (d, n, seed) => {
        const p = randomRows(seed, n, d, 0.5);
        const t = randomRows(seed + 1, n, d, 0.5);
        const mse = mseNormalized(Float32Array.from(p), Float32Array.from(t), d);
        for (let i = 0; i < n; i++) {
          let dot = 0;
          let pp = 0;
          let tt = 0;
          for (let j = 0; j < d; j++) {
            const a = Math.fround(p[i * d + j]!);
            const b = Math.fround(t[i * d + j]!);
            dot += a * b;
            pp += a * a;
            tt += b * b;
          }
          close(mse[i]!, 2 * (1 - dot / Math.sqrt(pp * tt)), 1e-9);
          assert.ok(mse[i]! >= -1e-12 && mse[i]! <= 4 + 1e-12);
        }
      },
    ),
    { numRuns: fcRuns(100) },
  );
  // orthogonal vectors score 2, opposite ones 4
  close(mseNormalized(new Float64Array([1, 0]), new Float64Array([0, 3]), 2)[0]!, 2);
  close(mseNormalized(new Float64Array([1, 1]), new Float64Array([-2, -2]), 2)[0]!, 4);
});

test('varianceNormalized uses the mean of the normalised vectors, not renormalised', () => {
  // (1,0) and (0,1) → (√2,0), (0,√2); mean (√2/2, √2/2); each MSE = (1/2 + 1/2)/2 = 0.5.
  // A renormalised mean (1,1) would give ((√2−1)² + 1)/2 ≈ 0.586.
  close(varianceNormalized(new Float64Array([1, 0, 0, 5]), 2), 0.5, 1e-12);
  // identical directions have no variance
  close(varianceNormalized(new Float64Array([1, 2, 3, 2, 4, 6]), 3), 0, 1e-12);
});

test('fve is 1 for an exact prediction and 0 when the MSE equals the variance', () => {
  const d = 8;
  const x = randomRows(3, 50, d, 1);
  const v = varianceNormalized(x, d);
  close(fve(mseNormalized(x, x, d), v), 1, 1e-12);
  // a prediction with another norm but the same direction is still exact
  close(fve(mseNormalized(x.map((a) => a * 3), x, d), v), 1, 1e-12);
  close(fve(v, v), 0, 1e-15);
  // the unnormalised mean as a predictor, scored without normalising, has MSE = Var by definition
  const vn = normalizeRows(x, d);
  const m = meanRow(vn, d);
  let s = 0;
  for (let i = 0; i < 50; i++) for (let j = 0; j < d; j++) s += (vn[i * d + j]! - m[j]!) ** 2;
  close(fve(s / (50 * d), v), 0, 1e-12);
});

test('fveFloor matches the closed form 1 − (2 − 2‖v̄‖/√d)/Var and is below 0', () => {
  for (const [seed, bias] of [[4, 0.3], [5, 1], [6, 0]] as const) {
    const d = 16;
    const x = randomRows(seed, 400, d, bias);
    const floor = fveFloor(x, x, d);
    const m = meanRow(normalizeRows(x, d), d);
    const normMean = Math.sqrt(m.reduce((a, b) => a + b * b, 0));
    const byHand = 1 - (2 - (2 * normMean) / Math.sqrt(d)) / varianceNormalized(x, d);
    close(floor.fve, byHand, 1e-9);
    close(floorFveFormula(x, d), byHand, 1e-12);
    assert.ok(floor.fve < 0, `floor ${floor.fve}`);
  }
});

test('normQuantile interpolates the raw row norms', () => {
  const rows = new Float32Array([3, 4, 0, 1, 0, 2, 5, 0, 0, 3]); // norms 5, 1, 2, 5, 3 (d = 2)
  close(normQuantile(rows, 2, 0.5), 3);
  close(normQuantile(rows, 2, 0), 1);
  close(normQuantile(rows, 2, 1), 5);
  close(normQuantile(rows, 2, 0.75), 5);
  close(normQuantile(rows, 2, 0.375), 2.5);
  assert.throws(() => normQuantile(rows, 3, 0.5), /multiple of d=3/);
});

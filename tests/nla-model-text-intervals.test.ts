// Intervals for the figures on M's own text (model-text-intervals.ts) and the stratified
// resampling they use for the gap (doc-bootstrap.ts). Checked on cases whose answer is known
// without a bootstrap: constant figures, paired sides that differ by a constant, a gap whose
// other side is constant (its interval is the mirror of M's text's, end for end), and strata
// that keep their document counts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { docBootstrap, pairedMeanChange } from '../src/nla/doc-bootstrap.js';
import { modelTextIntervals } from '../src/nla/model-text-intervals.js';

test('docBootstrap with strata: every resample keeps each stratum\'s count of documents', () => {
  // 30 documents of stratum 0 with 1 row each, 10 of stratum 1 with 2 rows each.
  const docs = [...Array.from({ length: 30 }, (_, i) => i), ...Array.from({ length: 20 }, (_, i) => 100 + Math.floor(i / 2))];
  const strata = docs.map((d) => (d >= 100 ? 1 : 0));
  const count = (rows: readonly number[]) => [rows.filter((i) => strata[i] === 1).length, rows.length];
  assert.deepEqual(docBootstrap(docs, count, { strata, seed: 4 }), [[20, 20], [50, 50]]);
  // Without strata the count of stratum-1 rows varies from resample to resample.
  const [[lo, hi]] = docBootstrap(docs, count) as [[number, number]];
  assert.ok(lo < 20 && hi > 20, `unstratified: [${lo}, ${hi}]`);
  assert.throws(() => docBootstrap([0, 0, 1], count, { strata: [0, 1, 1] }), /document 0 has rows in strata 0 and 1/);
  assert.throws(() => docBootstrap([0, 1], count, { strata: [0] }), /2 rows but 1 strata/);
});

// 50 documents of 2 rows each; per-row MSEs spread over [0.2, 1.6].
const n = 100, docs = Array.from({ length: n }, (_, i) => Math.floor(i / 2)), variance = 0.8;
const mse = Array.from({ length: n }, (_, i) => 0.2 + ((i * 37) % 100) / 100 * 1.4);
const fveOf = (xs: number[]) => 1 - xs.reduce((a, x) => a + x, 0) / xs.length / variance;
const exact = Array.from({ length: n }, (_, i) => i % 5 !== 0), invented = Array.from({ length: n }, () => false);

test('modelTextIntervals: each interval holds its figure; constant figures have zero width', () => {
  const iv = modelTextIntervals({ docs, mse, variance, exact, invented }, { seed: 2 });
  const f = fveOf(mse);
  assert.ok(iv.fve[0] < f && f < iv.fve[1], `fve ${f} in [${iv.fve}]`);
  assert.ok(iv.quote_exact[0] < 0.8 && 0.8 < iv.quote_exact[1], `quotes 0.8 in [${iv.quote_exact}]`);
  assert.deepEqual(iv.invented_name_rate, [0, 0]);
  assert.equal(iv.fve_minus_token, undefined);
  assert.equal(iv.gap, undefined);
  const flat = modelTextIntervals({ docs, mse: mse.map(() => 0.4), variance, exact, invented }).fve;
  assert.ok(flat.every((x) => Math.abs(x - 0.5) < 1e-12), `constant FVE 0.5: [${flat}]`);
});

test('modelTextIntervals pairs the rows: a token lookup worse by a constant gives a zero-width difference', () => {
  // Token MSE = the NLA's + 0.16 on every row, over the same variance: FVE - token FVE = 0.2 in every resample.
  const iv = modelTextIntervals({ docs, mse, variance, exact, invented, token: { mse: mse.map((x) => x + 0.16), variance }, sftMse: mse });
  assert.ok(Math.abs(iv.fve_minus_token![0] - 0.2) < 1e-12 && Math.abs(iv.fve_minus_token![1] - 0.2) < 1e-12, `[${iv.fve_minus_token}]`);
  assert.deepEqual(iv.rl_minus_sft, [0, 0]);
  // Unpaired, the same two sides would differ by the spread of either: the FVE interval is wide.
  assert.ok(iv.fve[1] - iv.fve[0] > 0.1, `fve interval [${iv.fve}]`);
});

test('modelTextIntervals: the gap to constant stories mirrors M\'s text\'s interval, end for end', () => {
  const stories = { docs: Array.from({ length: 40 }, (_, i) => Math.floor(i / 4)), mse: Array.from({ length: 40 }, () => 0.12) };
  const iv = modelTextIntervals({ docs, mse, variance, exact, invented, stories }, { seed: 9 });
  const s = 1 - 0.12 / variance;
  assert.ok(Math.abs(iv.gap![0] - (s - iv.fve[1])) < 1e-12 && Math.abs(iv.gap![1] - (s - iv.fve[0])) < 1e-12, `gap [${iv.gap}] vs ${s} - [${iv.fve}]`);
  // Story documents numbered like M's (both from 0) are still documents of their own.
  const f = fveOf(mse);
  assert.ok(iv.gap![0] < s - f && s - f < iv.gap![1]);
  assert.throws(() => modelTextIntervals({ docs, mse: mse.slice(1), variance, exact, invented }), /100 rows of M's text but 99 of mse/);
  assert.throws(() => modelTextIntervals({ docs, mse, variance, exact, invented, token: { mse: [1], variance } }), /but 1 of token mse/);
});

test('pairedMeanChange: the same scores change by 0 exactly; one row changed moves the mean by its share', () => {
  const a = mse.map((x) => 1 - x / variance);
  assert.deepEqual(pairedMeanChange(docs, a, a), { diff: 0, ci: [0, 0] });
  const b = a.map((x, i) => (i === 7 ? x + 0.5 : x));
  const ch = pairedMeanChange(docs, a, b, { seed: 3 });
  assert.ok(Math.abs(ch.diff - 0.5 / n) < 1e-12, `diff ${ch.diff}`);
  // Row 7's document is drawn 0, 1, 2... times: the interval runs from 0 up, and never below.
  assert.ok(ch.ci[0] >= 0 && ch.ci[1] > ch.diff, `[${ch.ci}]`);
  assert.throws(() => pairedMeanChange(docs, a, b.slice(1)), /100 rows, 100 and 99 values/);
});

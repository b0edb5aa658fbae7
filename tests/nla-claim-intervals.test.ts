// Intervals for the claim figures (claim-intervals.ts): a bootstrap over documents (doc-bootstrap.ts). Checked on
// cases whose answer is known without a bootstrap: a constant figure, a binomial share (the normal
// approximation's interval), rows cloned within documents (the interval widens by sqrt(cluster)),
// and paired changes that are exactly zero or come from one known row.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { claimChanges, claimIntervals } from '../src/nla/claim-intervals.js';
import { docBootstrap, formatInterval } from '../src/nla/doc-bootstrap.js';

const mean = (xs: readonly number[], rows: readonly number[]) => rows.reduce((a, i) => a + xs[i]!, 0) / rows.length;

test('docBootstrap: a constant figure has a zero-width interval; a share has about the binomial interval', () => {
  const docs = Array.from({ length: 60 }, (_, i) => i);
  assert.deepEqual(docBootstrap(docs, () => [0.25]), [[0.25, 0.25]]);
  // 400 independent rows, 120 of them 1: 0.3 +- 1.96 * sqrt(0.3 * 0.7 / 400) = [0.255, 0.345].
  const xs = Array.from({ length: 400 }, (_, i) => (i % 10 < 3 ? 1 : 0));
  const [[lo, hi]] = docBootstrap(xs.map((_, i) => i), (rows) => [mean(xs, rows)], { seed: 3 }) as [[number, number]];
  const se = Math.sqrt((0.3 * 0.7) / 400);
  assert.ok(Math.abs(lo - (0.3 - 1.96 * se)) < 0.012 && Math.abs(hi - (0.3 + 1.96 * se)) < 0.012, `[${lo}, ${hi}] vs [${0.3 - 1.96 * se}, ${0.3 + 1.96 * se}]`);
});

test('docBootstrap resamples documents: four copies of each row in one document widen the interval by about 2', () => {
  const base = Array.from({ length: 100 }, (_, i) => (i % 10 < 3 ? 1 : 0));
  const width = (xs: number[], docs: number[]) => { const [[lo, hi]] = docBootstrap(docs, (rows) => [mean(xs, rows)], { seed: 5 }) as [[number, number]]; return hi - lo; };
  const cloned = base.flatMap((x) => [x, x, x, x]);
  const asRows = width(cloned, cloned.map((_, i) => i)); // 400 "independent" rows
  const asDocs = width(cloned, cloned.map((_, i) => Math.floor(i / 4))); // 100 documents of 4
  assert.ok(asDocs / asRows > 1.7 && asDocs / asRows < 2.3, `document / row width ${asDocs / asRows}`);
  // The same seed gives the same interval; NaN figures are left out, and a mostly-NaN figure has none.
  assert.deepEqual(docBootstrap([0, 1, 2], (r) => [r.length], { seed: 9 }), docBootstrap([0, 1, 2], (r) => [r.length], { seed: 9 }));
  const [a, b] = docBootstrap([0, 1, 2, 3], (r) => [r.includes(0) ? 1 : NaN, NaN]);
  assert.deepEqual(a, [1, 1]);
  assert.ok(Number.isNaN(b![0]) && Number.isNaN(b![1]));
});

// 40 documents of 2 rows; every row knows name Lily. Rows 0..59 say Lily, 60..69 say Tom, the rest say nothing.
const n = 80, docs = Array.from({ length: n }, (_, i) => Math.floor(i / 2));
const known = Array.from({ length: n }, () => ({ name: 'Lily' }));
const claims: Record<string, string[]>[] = Array.from({ length: n }, (_, i) => (i < 60 ? { name: ['Lily'] } : i < 70 ? { name: ['Tom'] } : {}) as Record<string, string[]>);

test('claimIntervals: each interval holds its figure; a field never stated has none', () => {
  const iv = claimIntervals({ claims, known, docs }, { fields: ['name', 'place'] });
  const [plo, phi] = iv.fields.name!.precision, [clo, chi] = iv.fields.name!.confab, [rlo, rhi] = iv.fields.name!.recall;
  assert.ok(plo < 60 / 70 && 60 / 70 < phi && phi <= 1, `precision ${60 / 70} in [${plo}, ${phi}]`);
  assert.ok(Math.abs(plo + chi - 1) < 1e-9 && Math.abs(phi + clo - 1) < 1e-9, 'confab = 1 - precision, end for end');
  assert.ok(rlo < 60 / 80 && 60 / 80 < rhi, `recall in [${rlo}, ${rhi}]`);
  assert.ok(iv.fields.place!.precision.every(Number.isNaN), 'nothing stated: no precision interval');
  const [nlo, nhi] = iv.no_false_claim;
  assert.ok(nlo < 70 / 80 && 70 / 80 < nhi, `no false claim ${70 / 80} in [${nlo}, ${nhi}]`);
});

test('claimChanges: no change is exactly 0 with a zero-width interval; one added false claim is its exact difference', () => {
  const same = claimChanges(claims, claims, { known, docs }, { fields: ['name'] });
  assert.equal(same.fields.name!.confab.diff, 0);
  assert.deepEqual(same.fields.name!.confab.ci, [0, 0]);
  assert.deepEqual(same.no_false_claim.ci, [0, 0]);
  // After: row 75 (stated nothing) now says Tom. Confab 10/70 -> 11/71; no false claim 70/80 -> 69/80.
  const after = claims.map((c, i) => (i === 75 ? { name: ['Tom'] } : c));
  const ch = claimChanges(claims, after, { known, docs }, { fields: ['name'] });
  assert.ok(Math.abs(ch.fields.name!.confab.diff - (11 / 71 - 10 / 70)) < 1e-12);
  assert.ok(Math.abs(ch.no_false_claim.diff - -1 / 80) < 1e-12);
  assert.equal(ch.fields.name!.recall.diff, 0);
  // The changed document is left out of some resamples (change 0) and drawn twice in others: the interval holds 0 and the change.
  const [lo, hi] = ch.fields.name!.confab.ci;
  assert.ok(lo === 0 && hi > ch.fields.name!.confab.diff, `[${lo}, ${hi}]`);
  assert.throws(() => claimChanges(claims, claims.slice(1), { known, docs }), /79 after/);
  assert.equal(formatInterval(0.0412, [-0.01, 0.1], true), '+0.041 [-0.010, +0.100]');
});

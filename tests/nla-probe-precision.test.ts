// Recall at a precision of a confident probe: constructed rows where half carry the class
// clearly and half are noise with random labels. A plain probe's accuracy counts its lucky
// guesses on the noise (about clean + noise/k); the probe held to precision 0.9 states the clean
// rows and few noise rows, so its recall is about the clean share.
import test from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { probeRecallAtPrecision, thresholdForPrecision } from '../src/nla/probe-precision.js';
import { probeAccuracy, trainProbe } from '../src/nla/probe.js';
import { initGpu } from '../src/tensor/index.js';
import { rng } from '../src/util/rng.js';
import { fcRuns } from '../src/testing/runs.js';

test('thresholdForPrecision: the lowest confidence whose stated rows keep the precision (brute force)', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 9 }), fc.boolean()), { minLength: 1, maxLength: 30 }), fc.constantFrom(0.5, 0.75, 0.9, 1), (rows, target) => {
      const conf = rows.map(([c]) => c / 10);
      const right = rows.map(([, r]) => r);
      // Brute force over every candidate threshold: keep the one stating the most rows.
      let want = Infinity;
      let wantStated = 0;
      for (const t of new Set(conf)) {
        const stated = conf.map((c, i) => (c >= t ? i : -1)).filter((i) => i >= 0);
        const hits = stated.filter((i) => right[i]).length;
        if (hits / stated.length >= target && stated.length > wantStated) [want, wantStated] = [t, stated.length];
      }
      assert.equal(thresholdForPrecision(conf, right, target), want);
    }),
    { numRuns: fcRuns(200) },
  );
  assert.equal(thresholdForPrecision([0.9, 0.8], [false, false], 0.9), Infinity);
  assert.equal(thresholdForPrecision([0.9, 0.8, 0.7], [true, false, true], 0.6), 0.7); // 2 of 3
});

function rows(n: number, d: number, k: number, cleanShare: number, seed: number) {
  const r = rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  const x = new Float32Array(n * d);
  const y: number[] = [];
  const clean: boolean[] = [];
  for (let i = 0; i < n; i++) {
    const c = Math.floor(r() * k);
    const isClean = r() < cleanShare;
    for (let j = 0; j < d; j++) x[i * d + j] = 0.5 * gauss() + (isClean && j === c ? 4 : 0);
    y.push(c);
    clean.push(isClean);
  }
  return { x, y, clean };
}

for (const [how, fit] of [['engine', undefined], ['CPU', trainProbe]] as const)
test(`probeRecallAtPrecision (${how} fit): about the clean share at precision 0.9, where plain accuracy counts the guesses`, async () => {
  await initGpu();
  const [d, k] = [12, 8];
  const tr = rows(2400, d, k, 0.5, 1);
  const te = rows(1200, d, k, 0.5, 2);
  const cleanTest = te.clean.filter(Boolean).length / te.clean.length;
  const groups = tr.y.map((_, i) => Math.floor(i / 3)); // three rows per "document"
  const r = await probeRecallAtPrecision(tr.x, tr.y, groups, te.x, te.y, k, 0.9, { fit });
  assert.equal(r.n, 1200);
  assert.ok(r.precision >= 0.85, `precision ${r.precision}`);
  assert.ok(Math.abs(r.recall - cleanTest) < 0.06, `recall ${r.recall} vs clean share ${cleanTest}`);
  assert.ok(r.threshold > 1 / k && r.threshold < 1, `threshold ${r.threshold}`);
  // The plain probe's accuracy is above the confident recall by about the noise rows' guesses.
  const acc = probeAccuracy(tr.x, tr.y, te.x, te.y, k);
  assert.ok(acc > r.recall + 0.03, `accuracy ${acc} vs recall at 0.9 ${r.recall}`);
  // Asked for precision 1 on noisy rows it states fewer; asked for 0 it states everything.
  const loose = await probeRecallAtPrecision(tr.x, tr.y, groups, te.x, te.y, k, 0, { fit });
  assert.ok(Math.abs(loose.recall - acc) < 0.03, `recall at precision 0 ${loose.recall} vs accuracy ${acc}`);
});

test('probeRecallAtPrecision: pure noise states nothing (recall 0), and names what is missing', async () => {
  await initGpu();
  const tr = rows(800, 6, 4, 0, 3);
  const te = rows(200, 6, 4, 0, 4);
  const r = await probeRecallAtPrecision(tr.x, tr.y, tr.y.map((_, i) => i), te.x, te.y, 4, 0.9);
  assert.ok(r.recall < 0.03, `recall ${r.recall}`);
  await assert.rejects(probeRecallAtPrecision(tr.x, tr.y, tr.y.map(() => 0), te.x, te.y, 4, 0.9), /0 calibration rows/);
});

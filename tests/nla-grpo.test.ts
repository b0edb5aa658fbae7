import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as T from '../src/tensor/index.js';
import { Nd } from '../src/tensor/reference/nd.js';
import { checkOp, property, randomNd, rng } from '../src/testing/property.js';
import { groupAdvantages, grpoLoss } from '../src/nla/grpo.js';

/** Float64 reference of the objective, written straight from the formulas. */
function grpoRef(logp: Nd, old: Nd, ref: Nd, adv: Nd, mask: Nd, eps: number, beta: number, normalize: 'token' | 'sequence'): number {
  const [B, Tn] = logp.shape;
  let num = 0, den = 0, seqSum = 0;
  for (let b = 0; b < B; b++) {
    let sb = 0, mb = 0;
    for (let t = 0; t < Tn; t++) {
      const i = b * Tn + t, A = adv.data[b];
      const rho = Math.exp(logp.data[i] - old.data[i]);
      const pg = -Math.min(rho * A, Math.min(Math.max(rho, 1 - eps), 1 + eps) * A);
      const d = Math.min(Math.max(ref.data[i] - logp.data[i], -20), 20);
      const kl = Math.min(Math.exp(d) - d - 1, 10);
      const v = mask.data[i] * (pg + beta * kl);
      num += v; den += mask.data[i]; sb += v; mb += mask.data[i];
    }
    seqSum += sb / Math.max(mb, 1);
  }
  return normalize === 'token' ? num / Math.max(den, 1) : seqSum / B;
}

test('group advantages: zero mean, unit (unbiased) std per group, epsilon guards equal rewards', () => {
  const a = groupAdvantages([1, 2, 3, 4, 5, 5, 5, 5], 4);
  const g1 = a.slice(0, 4);
  assert.ok(Math.abs(g1.reduce((x, y) => x + y)) < 1e-12);
  const sd = Math.sqrt(g1.reduce((x, y) => x + y * y, 0) / 3);
  assert.ok(Math.abs(sd - 1) < 1e-3, `std ${sd}`);
  assert.deepEqual(a.slice(4), [0, 0, 0, 0]);
  assert.throws(() => groupAdvantages([1, 2, 3], 2), /do not split/);
  // Dr. GRPO: centred only, so the wider group keeps its larger advantages.
  assert.deepEqual(groupAdvantages([1, 3, 10, 20], 2, 'none'), [-1, 1, -5, 5]);
});

test('GRPO+KL loss and its gradient match the float64 reference (both clip branches, clamped KL, padding)', async () => {
  await property(fc.tuple(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 1e6 }), fc.constantFrom('token', 'sequence') as fc.Arbitrary<'token' | 'sequence'>), async ([B, Tn, seed, normalize]) => {
    const r = rng(seed);
    const logp = randomNd([B, Tn], seed, -3, -0.1);
    // old differs from logp by up to +-0.5 so rho spans both sides of the clip range [0.8, 1.2].
    const old = logp.map((v) => Math.fround(v + (r() - 0.5)));
    // ref sometimes far away (|d| > 20 clamps, large d hits the D <= 10 clamp).
    const ref = logp.map((v, i) => Math.fround(i % 7 === 3 ? v + 25 : i % 5 === 1 ? v + 3 : v + (r() - 0.5)));
    const adv = randomNd([B], seed + 3, -2, 2);
    const mask = new Nd([B, Tn], Float64Array.from({ length: B * Tn }, (_, i) => (i % Tn < Math.max(1, Tn - (i % 3)) ? 1 : 0)));
    const eps = 0.2, beta = 0.05;
    await checkOp({
      name: `grpo(${normalize})`,
      inputs: [logp, old, ref, adv, mask],
      gpu: ([lp, o, rf, a, m]) => grpoLoss(lp, o, rf, a, m, { epsilon: eps, beta, normalize }).loss,
      ref: ([lp, o, rf, a, m]) => new Nd([], Float64Array.of(grpoRef(lp, o, rf, a, m, eps, beta, normalize))),
      grad: [0],
      atol: 1e-5,
      rtol: 1e-4,
      fdEps: 1e-4,
    });
  }, { numRuns: 12 });
});

test('with logp_old = logp and logp_ref = logp the loss is -mean(A) and the KL is 0', async () => {
  await T.initGpu();
  const lp = T.Tensor.from([-1, -2, -0.5, -0.7], [2, 2]);
  const { loss, kl } = grpoLoss(lp, lp, lp, T.Tensor.from([1, -3], [2]), T.ones([2, 2]));
  assert.ok(Math.abs((await loss.item()) - 1) < 1e-6);
  assert.equal(await kl.item(), 0);
});

// headSample: a token per row drawn by Gumbel-max over vocabulary chunks of h @ W^T, against
// the same computation in float64 on the host with the same noise (gumbelNoise): equal tokens
// wherever the host's top two perturbed values differ by more than float32 rounding can move
// them; greedy equals the float64 argmax; log p(token) equals float64 log-softmax. A chi-square
// test checks that the draws follow softmax(l / T).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { gumbelNoise } from '../src/kernels/head-sample.js';
import * as T from '../src/tensor/index.js';
import { property, randomNd } from '../src/testing/property.js';

/** Float64 logits h w^T of f32 inputs. */
function hostLogits(h: Float64Array, w: Float64Array, rows: number, d: number, V: number): Float64Array {
  const out = new Float64Array(rows * V);
  for (let r = 0; r < rows; r++) for (let v = 0; v < V; v++) {
    let s = 0;
    for (let k = 0; k < d; k++) s += h[r * d + k] * w[v * d + k];
    out[r * V + v] = s;
  }
  return out;
}

function logSoftmaxAt(row: Float64Array, j: number): number {
  let m = -Infinity;
  for (const x of row) m = Math.max(m, x);
  let s = 0;
  for (const x of row) s += Math.exp(x - m);
  return row[j] - m - Math.log(s);
}

const arb = fc.record({
  rows: fc.integer({ min: 1, max: 6 }),
  d: fc.integer({ min: 1, max: 12 }),
  V: fc.integer({ min: 1, max: 300 }),
  chunks: fc.integer({ min: 1, max: 5 }),
  temperature: fc.constantFrom(0, 0.25, 1, 3),
  bf16: fc.boolean(),
  seed: fc.integer({ min: 1, max: 1e6 }),
});

test('headSample over vocabulary chunks draws the float64 Gumbel-max token (greedy: the argmax) and its log-probability', async () => {
  await T.initGpu();
  let compared = 0, total = 0;
  await property(arb, async ({ rows, d, V, chunks, temperature, bf16, seed }) => {
    const h = randomNd([rows, d], seed, -2, 2).data;
    let w = randomNd([V, d], seed + 1, -2, 2).data;
    // bf16 weights: values on a 1/16 grid in [-2, 2] are exact in bf16, so the host sees what the GPU reads.
    if (bf16) w = w.map((x) => Math.round(x * 16) / 16);
    const seeds = Uint32Array.from({ length: rows }, (_, r) => (seed * 7919 + r * 104729) >>> 0);
    const ht = T.Tensor.from(Float32Array.from(h), [rows, d]);
    const wt = T.Tensor.from(Float32Array.from(w), [V, d], bf16 ? 'bf16' : 'f32');
    const got = await T.headSample(ht, wt, { temperature, seeds, chunk: Math.ceil(V / chunks) });
    ht.dispose();
    wt.dispose();
    const logits = hostLogits(h, w, rows, d, V);
    for (let r = 0; r < rows; r++) {
      const row = logits.subarray(r * V, (r + 1) * V);
      const pert = Array.from(row, (x, j) => (temperature > 0 ? x / temperature + gumbelNoise(seeds[r], j) : x));
      let best = 0;
      for (let j = 1; j < V; j++) if (pert[j] > pert[best]) best = j;
      const second = Math.max(-Infinity, ...pert.filter((_, j) => j !== best));
      total++;
      const where = `row ${r} of ${rows}, V ${V}, T ${temperature}, chunk ${Math.ceil(V / chunks)}${bf16 ? ', bf16' : ''}`;
      // f32 logits (|l| <= 48) and f32 logs move a value by ~1e-5; closer calls are not decided by this test.
      if (pert[best] - second > 1e-3) {
        compared++;
        assert.equal(got.tokens[r], best, `${where}: token`);
      }
      assert.ok(Math.abs(got.logprobs[r] - logSoftmaxAt(row, got.tokens[r])) < 1e-4 * (1 + Math.abs(got.logprobs[r])), `${where}: log p ${got.logprobs[r]} vs ${logSoftmaxAt(row, got.tokens[r])}`);
    }
  }, { numRuns: 25 });
  assert.ok(compared >= 0.9 * total, `only ${compared} of ${total} rows were clear of near ties`);
});

test('headSample draws follow softmax(l / T): chi-square over 3000 seeds', async () => {
  await T.initGpu();
  // One-hot h picks rows of w as logits: l = [1.2, 0, -0.7, 2.1, 0.3, -2].
  const l = [1.2, 0, -0.7, 2.1, 0.3, -2], V = l.length, rows = 3000, temperature = 1.5;
  const h = T.Tensor.from(new Float32Array(rows).fill(1), [rows, 1]);
  const w = T.Tensor.from(Float32Array.from(l), [V, 1]);
  const seeds = Uint32Array.from({ length: rows }, (_, i) => i);
  const got = await T.headSample(h, w, { temperature, seeds, chunk: 4 });
  h.dispose();
  w.dispose();
  const z = l.map((x) => Math.exp(x / temperature)), sum = z.reduce((a, b) => a + b);
  const counts = new Array(V).fill(0);
  for (const t of got.tokens) counts[t]++;
  const chi2 = counts.reduce((a, c, j) => a + (c - (rows * z[j]) / sum) ** 2 / ((rows * z[j]) / sum), 0);
  // 5 degrees of freedom: P(chi2 > 20.5) = 0.001.
  assert.ok(chi2 < 20.5, `chi-square ${chi2.toFixed(2)} (counts ${counts}, expected ${z.map((x) => ((rows * x) / sum).toFixed(0))})`);
  // A draw depends on its seed alone: the same seeds in another batch give the same tokens.
  const h2 = T.Tensor.from(new Float32Array(5).fill(1), [5, 1]);
  const w2 = T.Tensor.from(Float32Array.from(l), [V, 1]);
  const again = await T.headSample(h2, w2, { temperature, seeds: seeds.subarray(100, 105), chunk: V });
  h2.dispose();
  w2.dispose();
  assert.deepEqual([...again.tokens], [...got.tokens.subarray(100, 105)]);
});

test('headSample refuses a temperature without seeds and NaN logits, naming them', async () => {
  await T.initGpu();
  const h = T.Tensor.from(Float32Array.from([1, 2]), [1, 2]), w = T.Tensor.from(Float32Array.from([NaN, 1, NaN, 0]), [2, 2]);
  await assert.rejects(T.headSample(h, w, { temperature: 1 }), /needs one seed per row \(1\)/);
  await assert.rejects(T.headSample(h, w, { temperature: 0 }), /no token drawn for row 0 \(its logits are NaN\)/);
  h.dispose();
  w.dispose();
});

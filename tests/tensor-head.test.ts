// headLogProbs: log p(target) of an LM head over vocabulary chunks (streaming logsumexp, the
// backward recomputing each chunk), against log-softmax(h @ w^T) in float64, with gradients
// in h and w by finite differences; chunk widths from 1 to past V, so edges are crossed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as T from '../src/tensor/index.js';
import { matmul, permute } from '../src/tensor/reference/core.js';
import * as nn from '../src/tensor/reference/nn.js';
import { checkOp, property, randomInts, randomNd } from '../src/testing/property.js';

const arb = fc.record({ rows: fc.integer({ min: 1, max: 7 }), d: fc.integer({ min: 1, max: 9 }), V: fc.integer({ min: 1, max: 23 }), chunk: fc.integer({ min: 1, max: 30 }), seed: fc.integer({ min: 1, max: 1e6 }) });

test('headLogProbs over vocabulary chunks equals log-softmax(h w^T) at the targets; gradients in h and w match finite differences', async () => {
  await property(arb, async ({ rows, d, V, chunk, seed }) => {
    await checkOp({
      name: `headLogProbs chunk ${chunk}`,
      inputs: [randomNd([rows, d], seed, -1.5, 1.5), randomNd([V, d], seed + 1, -1.5, 1.5), randomInts([rows], seed + 2, 0, V)],
      dtypes: ['f32', 'f32', 'i32'],
      gpu: ([h, w, t]) => T.headLogProbs(h, w, t, { chunk }),
      ref: ([h, w, t]) => nn.tokenLogProbs(matmul(h, permute(w, [1, 0])), t),
      atol: 1e-5, rtol: 1e-5, grad: [0, 1],
    });
  }, { numRuns: 12 });
});

test('headLogProbs refuses targets out of range and targets without a host copy, naming them', async () => {
  await T.initGpu();
  const h = T.zeros([2, 3]), w = T.zeros([4, 3]);
  assert.throws(() => T.headLogProbs(h, w, T.Tensor.from(Int32Array.from([1, 4]))), /target 4 at row 1 is out of range for a vocabulary of 4/);
  const noHost = T.cast(T.zeros([2]), 'i32');
  assert.throws(() => T.headLogProbs(h, w, noHost), /targets must be i32 \[2\] made with Tensor.from/);
  [h, w, noHost].forEach((t) => t.dispose());
});

// Row ops and reductions over a tensor in several buffers (src/tensor/pieces.ts): with maxBufferSize
// lowered to 16 KiB (setBufferLimit), an [N, D] f32 input of a few thousand elements lives in 2-6
// pieces. rmsNorm, layerNorm, softmax, logSoftmax, SwiGLU, cross-entropy / token log-probs and
// takeAlong run once per one-buffer range of rows and concatenate (an output above the limit in
// pieces); sum / max / logsumexp / mean reduce each piece's rows and combine the partials. Values against the float64 references and gradients (inputs in pieces
// included) against finite differences of them, through checkOp, over random shapes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as T from '../src/tensor/index.js';
import * as nn from '../src/tensor/reference/nn.js';
import * as core from '../src/tensor/reference/core.js';
import { setBufferLimit } from '../src/tensor/pool.js';
import { isMulti } from '../src/tensor/pieces.js';
import { checkOp, property as prop, randomInts, randomNd, type Nd } from '../src/testing/property.js';

const property: typeof prop = (arb, fn, opts) => prop(arb, async (v) => { try { await fn(v); } catch (e) { console.error(e); throw e; } }, opts);

const LIMIT = 16 * 1024;
await T.initGpu();
setBufferLimit(LIMIT);

/** [N, D] (or [N, 2, D / 2]) above the limit: 2 to ~6 pieces. */
const arbCase = fc.record({ D: fc.integer({ min: 4, max: 48 }), extra: fc.integer({ min: 1, max: 300 }), seed: fc.integer({ min: 1, max: 1e6 }) })
  .map((c) => ({ ...c, N: Math.ceil(LIMIT / (4 * c.D)) + c.extra }));

function inPieces(t: T.Tensor, what: string, yes = true): T.Tensor {
  if (yes) assert.ok(isMulti(t) && t.storage.pieces!.length >= 2, `${what} ${t.shape} is not in several buffers`);
  else assert.ok(!isMulti(t), `${what} ${t.shape} is in several buffers`);
  return t;
}

test('rmsNorm and layerNorm over an input in pieces: values, and gradients of input, weight and bias', async () => {
  await property(fc.tuple(arbCase, fc.boolean()), async ([{ N, D, seed }, layer]) => {
    const x = randomNd([N, D], seed, -2, 2), w = randomNd([D], seed + 1, 0.5, 1.5), b = randomNd([D], seed + 2);
    await checkOp({
      name: layer ? 'layerNorm' : 'rmsNorm',
      inputs: layer ? [x, w, b] : [x, w],
      gpu: ([xi, wi, bi]) => inPieces(layer ? T.layerNorm(inPieces(xi, 'x'), wi, bi, 1e-5) : T.rmsNorm(inPieces(xi, 'x'), wi, 1e-5), 'output'),
      ref: ([xi, wi, bi]) => (layer ? nn.layerNorm(xi, wi, bi, 1e-5) : nn.rmsNorm(xi, wi, 1e-5)),
      grad: true, maxFdCoords: 40, seed,
    });
  }, { numRuns: 8 });
});

test('softmax and logSoftmax over the last axis of an input in pieces (rank 2 and 3), with gradient', async () => {
  await property(fc.tuple(arbCase, fc.boolean(), fc.boolean()), async ([{ N, D, seed }, log, rank3]) => {
    const shape = rank3 && D % 2 === 0 ? [N, 2, D / 2] : [N, D];
    const x = randomNd(shape, seed, -3, 3);
    await checkOp({
      name: log ? 'logSoftmax' : 'softmax',
      inputs: [x],
      gpu: ([xi]) => inPieces(log ? T.logSoftmax(inPieces(xi, 'x')) : T.softmax(inPieces(xi, 'x')), 'output'),
      ref: ([xi]) => (log ? nn.logSoftmax(xi) : nn.softmax(xi)),
      grad: true, maxFdCoords: 40, seed,
    });
  }, { numRuns: 8 });
});

test('sum, mean, max and logsumexp of a tensor in pieces, over axis 0, the last axis and all, with gradient', async () => {
  await property(fc.tuple(arbCase, fc.constantFrom('sum', 'mean', 'max', 'logsumexp'), fc.constantFrom<number[] | undefined>([0], [1], undefined)), async ([{ N, D, seed }, op, axes]) => {
    const x = randomNd([N, D], seed, -2, 2);
    const all = axes ?? [0, 1];
    const refs: Record<string, (v: Nd) => Nd> = {
      sum: (v) => core.sum(v, all), mean: (v) => core.mean(v, all), max: (v) => core.max(v, all), logsumexp: (v) => core.logsumexp(v, all),
    };
    const gpus: Record<string, (t: T.Tensor) => T.Tensor> = {
      sum: (t) => T.sum(t, axes), mean: (t) => T.mean(t, axes), max: (t) => T.max(t, axes), logsumexp: (t) => T.logsumexp(t, axes),
    };
    await checkOp({
      name: op, inputs: [x],
      gpu: ([xi]) => gpus[op](inPieces(xi, 'x')),
      ref: ([xi]) => refs[op](xi),
      // Sums of thousands of f32 terms: absolute rounding grows with the count.
      atol: 1e-4, rtol: 1e-4,
      grad: op !== 'max', maxFdCoords: 40, seed,
    });
  }, { numRuns: 12 });
});

for (const op of ['ceMean', 'ceSum', 'tokenLogProbs', 'takeAlong', 'swiglu'] as const) test(`${op} over an input in pieces, with gradient (ceMean: cross-entropy with ignored rows; ceSum: with a mask)`, async () => {
  await property(arbCase, async ({ N, D, seed }) => {
    const V = D % 2 === 0 ? D : D + 1;
    const x = randomNd([N, V], seed, -3, 3);
    const t = randomInts([N], seed + 1, 0, V);
    if (op === 'ceMean') for (let i = 0; i < N; i += 3) t.data[i] = -100; // ignored rows
    const mask = randomInts([N], seed + 2, 0, 2);
    const spec = {
      ceMean: { gpu: (a: T.Tensor[]) => T.crossEntropy(a[0], a[1], { ignoreIndex: -100 }), ref: (a: Nd[]) => nn.crossEntropy(a[0], a[1], { ignoreIndex: -100 }) },
      ceSum: { gpu: (a: T.Tensor[]) => T.crossEntropy(a[0], a[1], { reduction: 'sum', mask: a[2] }), ref: (a: Nd[]) => nn.crossEntropy(a[0], a[1], { reduction: 'sum', mask: a[2] }) },
      tokenLogProbs: { gpu: (a: T.Tensor[]) => inPieces(T.tokenLogProbs(a[0], a[1]), 'log-probs', false), ref: (a: Nd[]) => nn.tokenLogProbs(a[0], a[1]) },
      takeAlong: { gpu: (a: T.Tensor[]) => T.takeAlong(a[0], a[1]), ref: (a: Nd[]) => nn.takeAlong(a[0], a[1]) },
      swiglu: { gpu: (a: T.Tensor[]) => T.swiglu(a[0]), ref: (a: Nd[]) => nn.swiglu(a[0]) },
    }[op];
    const withMask = op === 'ceSum';
    await checkOp({
      name: op,
      inputs: op === 'swiglu' ? [x] : withMask ? [x, t, mask] : [x, t],
      dtypes: op === 'swiglu' ? ['f32'] : withMask ? ['f32', 'i32', 'f32'] : ['f32', 'i32'],
      gpu: (a) => spec.gpu([inPieces(a[0], 'x'), ...a.slice(1)]),
      ref: spec.ref,
      atol: 1e-4, rtol: 1e-4,
      grad: [0], maxFdCoords: 40, seed,
    });
  }, { numRuns: 4 });
});

test('concat along axis 0 beyond the limit gives a tensor in pieces; its gradient goes back to each part', async () => {
  await property(arbCase, async ({ N, D, seed }) => {
    const h = Math.floor(N / 2);
    const a = randomNd([h, D], seed), b = randomNd([N - h, D], seed + 1);
    await checkOp({
      name: 'concat', inputs: [a, b],
      gpu: ([ai, bi]) => inPieces(T.mul(inPieces(T.concat([ai, bi], 0), 'concat'), 2), 'output'),
      ref: ([ai, bi]) => core.concat([ai, bi], 0).map((v) => 2 * v),
      grad: true, maxFdCoords: 30, seed,
    });
  }, { numRuns: 6 });
});

test('a row op along axis 0 of a tensor in pieces (its rows straddle the pieces) is refused by name', async () => {
  const x = T.Tensor.from(new Float32Array(600 * 8), [600, 8]);
  inPieces(x, 'x');
  assert.throws(() => T.tidy(() => T.softmax(x, 0)), /softmax.*\[8,600\] f32 \(19200 B\) lives in 2 buffers/);
  x.dispose();
});

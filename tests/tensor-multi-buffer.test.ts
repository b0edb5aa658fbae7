// Tensors above maxBufferSize live in several buffers of whole rows (src/tensor/pieces.ts). The
// engine is told the buffer limit is 4 KiB (setBufferLimit), so weights of a few thousand
// elements take the path a 7B model's embedding takes at 4 GiB; every case asserts its weight is
// in several buffers (f32, bf16, f16). Values against float64 references over random shapes:
// upload/readback, the embedding gather, linear/matmul, headLogProbs and headSample (greedy).
// Other ops, and gradients into such a weight, are refused by name before dispatch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as T from '../src/tensor/index.js';
import * as nn from '../src/tensor/reference/nn.js';
import * as core from '../src/tensor/reference/core.js';
import { Nd } from '../src/tensor/reference/nd.js';
import { setBindingLimit } from '../src/tensor/binding.js';
import { bufferLimit, setBufferLimit } from '../src/tensor/pool.js';
import { isMulti } from '../src/tensor/pieces.js';
import { property as prop, randomInts, randomNd } from '../src/testing/property.js';

// fast-check keeps only the counterexample: print the failure itself too.
const property: typeof prop = (arb, fn, opts) => prop(arb, async (v) => { try { await fn(v); } catch (e) { console.error(e); throw e; } }, opts);

const LIMIT = 4096;
await T.initGpu();
setBufferLimit(LIMIT);

/** A [V, D] weight of `dtype` above the lowered limit (in 2 to ~6 pieces), and its values as stored (16-bit rounded). */
const arbWeight = fc.record({ D: fc.integer({ min: 1, max: 40 }), extra: fc.integer({ min: 1, max: 300 }), seed: fc.integer({ min: 1, max: 1e6 }), dtype: fc.constantFrom('f32' as const, 'bf16' as const, 'f16' as const) });

async function weight({ D, extra, seed, dtype }: { D: number; extra: number; seed: number; dtype: 'f32' | 'bf16' | 'f16' }) {
  const bytes = dtype === 'f32' ? 4 : 2;
  const V = Math.ceil(LIMIT / (D * bytes)) + extra;
  const ref = randomNd([V, D], seed, -2, 2);
  const w = T.Tensor.from(Float32Array.from(ref.data), [V, D], dtype);
  assert.ok(isMulti(w) && w.storage.pieces!.length >= 2, `[${V}, ${D}] ${dtype} is not in several buffers`);
  for (const p of w.storage.pieces!) assert.ok(p.storage.buffer.size <= LIMIT, `a piece of ${p.storage.buffer.size} B is above the limit`);
  const stored = new Nd([V, D], Float64Array.from((await w.data()) as Float32Array));
  return { w, V, D, stored };
}

/** Run fn with room for ordinary outputs (a [rows, V] product is bigger than the lowered limit), the weight staying in its pieces. */
function roomy<T>(fn: () => T): T {
  setBufferLimit(2 ** 20);
  try {
    return fn();
  } finally {
    setBufferLimit(LIMIT);
  }
}

const close = (got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string) => {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= tol * (1 + Math.abs(want[i])), `${what}[${i}]: ${got[i]} vs ${want[i]}`);
};

test('upload and readback over pieces are exact (f32; bf16 and f16 to their rounding), and pieces are freed', async () => {
  assert.equal(bufferLimit().bytes, LIMIT);
  const before = T.poolStats().liveBuffers;
  await property(arbWeight, async (a) => {
    const { w, V, D, stored } = await weight(a);
    const ref = randomNd([V, D], a.seed, -2, 2);
    close(stored.data, ref.data, a.dtype === 'f32' ? 0 : a.dtype === 'f16' ? 2 ** -11 : 2 ** -8, 'readback');
    // A row slice inside one piece is an ordinary tensor; one across pieces still reads back.
    const cut = w.storage.pieces![0].end / D;
    const inOne = T.slice(w, 0, 0, cut), across = T.slice(w, 0, cut - 1, cut + 1);
    assert.ok(!isMulti(inOne) && isMulti(across));
    close((await across.data()) as Float32Array, stored.data.subarray((cut - 1) * D, (cut + 1) * D), 0, 'across');
    for (const t of [w, inOne, across]) t.dispose();
  }, { numRuns: 12 });
  assert.equal(T.poolStats().liveBuffers, before);
});

test('embedding gathers over pieces (and pieces bound in ranges) matches float64', async () => {
  await property(fc.tuple(arbWeight, fc.integer({ min: 1, max: 25 }), fc.boolean()), async ([a, n, ranges]) => {
    if (ranges) setBindingLimit(1024); // pieces above the binding limit too: each gathered a range at a time
    try {
      const { w, V, stored } = await weight(a);
      const ids = randomInts([n], a.seed + 1, 0, V);
      const got = T.noGrad(() => T.embedding(w, T.Tensor.from(Int32Array.from(ids.data), [n], 'i32')));
      close((await got.data()) as Float32Array, nn.embedding(stored, ids).data, 0, 'embedding');
      got.dispose();
      w.dispose();
    } finally {
      setBindingLimit(undefined);
    }
  }, { numRuns: 12 });
});

test('linear (x @ w^T) and w @ y over pieces match float64', async () => {
  await property(fc.tuple(arbWeight, fc.integer({ min: 1, max: 9 })), async ([a, rows]) => {
    const { w, V, D, stored } = await weight(a);
    const x = randomNd([2, rows, D], a.seed + 2, -1, 1), y = randomNd([D, 3], a.seed + 3);
    const got = roomy(() => T.noGrad(() => T.linear(T.Tensor.from(Float32Array.from(x.data), x.shape), w)));
    assert.deepEqual(got.shape, [2, rows, V]);
    close((await got.data()) as Float32Array, core.matmul(x, core.permute(stored, [1, 0])).data, 1e-5, 'linear');
    const left = roomy(() => T.noGrad(() => T.matmul(w, T.Tensor.from(Float32Array.from(y.data), y.shape))));
    close((await left.data()) as Float32Array, core.matmul(stored, y).data, 1e-5, 'w @ y');
    for (const t of [got, left, w]) t.dispose();
  }, { numRuns: 10 });
});

test('headLogProbs and greedy headSample over a weight in pieces match float64', async () => {
  await property(fc.tuple(arbWeight, fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 400 })), async ([a, rows, chunk]) => {
    const { w, V, D, stored } = await weight(a);
    const x = randomNd([rows, D], a.seed + 4, -1, 1), tg = randomInts([rows], a.seed + 5, 0, V);
    const logits = core.matmul(x, core.permute(stored, [1, 0]));
    const want = nn.tokenLogProbs(logits, tg).data;
    const h = T.Tensor.from(Float32Array.from(x.data), [rows, D]);
    const lp = roomy(() => T.noGrad(() => T.headLogProbs(h, w, T.Tensor.from(Int32Array.from(tg.data), [rows], 'i32'), { chunk })));
    // f32 logits (|l| <= 80) and f32 logs move a value by ~1e-5, as in tensor-head-sample's tolerances.
    close((await lp.data()) as Float32Array, want, 1e-4, 'headLogProbs');
    setBufferLimit(2 ** 20);
    const s = await T.headSample(h, w, { temperature: 0, chunk }).finally(() => setBufferLimit(LIMIT));
    for (let r = 0; r < rows; r++) {
      const row = Array.from(logits.data.subarray(r * V, (r + 1) * V));
      const order = row.map((v, i) => [v, i]).sort((p, q) => q[0] - p[0] || p[1] - q[1]);
      const lse = nn.logsumexpRow(row);
      if (order[0][0] - order[1][0] > 1e-3) assert.equal(s.tokens[r], order[0][1], `row ${r}: greedy token`);
      close([s.logprobs[r]], [row[s.tokens[r]] - lse], 1e-4, `row ${r} logprob`);
    }
    for (const t of [lp, h, w]) t.dispose();
  }, { numRuns: 10 });
});

test('ops that do not work over pieces refuse a tensor in pieces by name, size and limit, before dispatch', async () => {
  const { w } = await weight({ D: 8, extra: 100, seed: 7, dtype: 'f32' });
  roomy(() => T.tidy(() => T.rope(T.zeros([1, 228, 1, 8])))); // rope keeps its cos/sin table: made before counting
  const before = T.poolStats().liveBuffers;
  const named = (op: string, shape = '228,8') => new RegExp(`${op}.*\\[${shape}\\] f32 \\(7296 B\\) lives in 2 buffers, beyond this GPU's maxBufferSize of 4096 B`);
  // Inside tidy (as a training step or generation runs), a refusal leaves nothing allocated.
  // Outputs get room (an output above the limit is refused where it is created, before this check).
  // Elementwise ops, reductions, norms, softmax, SwiGLU, cross-entropy, takeAlong and gradients work over pieces (tensor-multi-buffer-grad, -ops).
  const refused = (fn: () => unknown, re: RegExp) => assert.throws(() => roomy(() => T.tidy(fn)), re);
  refused(() => T.matmul(T.transpose(w), T.Tensor.from(new Float32Array(228 * 2), [228, 2])), named('matmul', '8,228'));
  refused(() => T.contiguous(T.transpose(w)), named('contiguous', '8,228')); // rows of the transpose straddle the pieces
  refused(() => T.sum(T.transpose(w), [1]), named('sum', '8,228'));
  refused(() => T.crossEntropy(T.transpose(w), T.Tensor.from(new Int32Array(8), [8], 'i32')), named('crossEntropy', '8,228'));
  refused(() => T.rope(T.reshape(w, [1, 228, 1, 8])), named('rope', '1,228,1,8'));
  refused(() => T.softmax(w, 0), named('softmax', '8,228')); // along axis 0: moved last, the rows straddle the pieces
  await T.sync(); // a WebGPU validation error, had anything been dispatched, would surface here
  assert.equal(T.poolStats().liveBuffers, before);
  // An op's output above the limit is not put in pieces: it is refused where it is created.
  const x = T.Tensor.from(new Float32Array(600), [600, 1]);
  assert.throws(() => T.tidy(() => T.matmul(x, T.Tensor.from(new Float32Array(2), [1, 2]))), /matmul.*a tensor \[600,2\] f32 needs 4\.7 KiB|matmul.*a tensor \[600,2\] f32 needs/);
  x.dispose();
  assert.equal(T.poolStats().liveBuffers, before);
  w.dispose();
});

// Training a tensor in several buffers (src/tensor/pieces.ts). The engine is told maxBufferSize is
// 16 KiB (setBufferLimit), so a [V, D] f32 weight of a few thousand elements lives in 2-6 pieces
// as a 7B model's embedding does at 4 GiB, and its gradient, its AdamW/SGD moments and every
// elementwise result over it are made in pieces too (asserted). Values and whole gradients against
// float64 references (analytic, over every element) over random shapes: the embedding's
// scatter-add (CSR and atomic), linear's weight gradient (per piece, no copy), headLogProbs' weight
// gradient, a tied weight that gets both, elementwise ops with broadcasting, copies; AdamW and SGD
// steps with clipping by the global norm over pieces.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as T from '../src/tensor/index.js';
import * as nn from '../src/tensor/reference/nn.js';
import * as core from '../src/tensor/reference/core.js';
import { Nd } from '../src/tensor/reference/nd.js';
import { bufferLimit, setBufferLimit } from '../src/tensor/pool.js';
import { isMulti } from '../src/tensor/pieces.js';
import { nonFinite } from '../src/tensor/optim/finite.js';
import { property as prop, randomInts, randomNd } from '../src/testing/property.js';

// fast-check keeps only the counterexample: print the failure itself too.
const property: typeof prop = (arb, fn, opts) => prop(arb, async (v) => { try { await fn(v); } catch (e) { console.error(e); throw e; } }, opts);

const LIMIT = 16 * 1024;
await T.initGpu();
setBufferLimit(LIMIT);

/** A [V, D] f32 shape above the lowered limit (2 to ~6 pieces), and a row count whose [rows, V] logits stay in one buffer. */
const arbCase = fc.record({ D: fc.integer({ min: 8, max: 40 }), extra: fc.integer({ min: 1, max: 400 }), rows: fc.integer({ min: 1, max: 5 }), seed: fc.integer({ min: 1, max: 1e6 }) })
  .map((c) => ({ ...c, V: Math.ceil(LIMIT / (4 * c.D)) + c.extra }));

function inPieces(t: T.Tensor, what: string): void {
  assert.ok(isMulti(t) && t.storage.pieces!.length >= 2, `${what} ${t.shape} is not in several buffers`);
  for (const p of t.storage.pieces!) assert.ok(p.storage.buffer.size <= LIMIT, `${what}: a piece of ${p.storage.buffer.size} B is above the limit`);
}

const close = (got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string) => {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= tol * (1 + Math.abs(want[i])), `${what}[${i}]: ${got[i]} vs ${want[i]}`);
};

const f32 = (x: Nd, dtype: T.DType = 'f32') => T.Tensor.from(Float32Array.from(x.data), x.shape, dtype);
const ints = (x: Nd) => T.Tensor.from(Int32Array.from(x.data), x.shape, 'i32');

/** float64 d/dW of sum(R * (x @ W^T)) = R^T x, for x [rows, D], R [rows, V]. */
const linearGradW = (x: Nd, R: Nd) => core.matmul(core.transpose(R), x);

/** float64 d/dW of sum(R * embedding(W, ids)): R's rows added at their ids. */
function embeddingGradW(V: number, D: number, ids: Nd, R: Nd): Nd {
  const out = new Nd([V, D]);
  for (let r = 0; r < ids.size; r++) for (let d = 0; d < D; d++) out.data[ids.data[r] * D + d] += R.data[r * D + d];
  return out;
}

/** float64 d/dW of sum(R * log softmax(x W^T)[targets]): R_r (onehot(t_r) - softmax_r) outer x_r. */
function headGradW(x: Nd, W: Nd, targets: Nd, R: Nd): Nd {
  const [rows, D] = x.shape, V = W.shape[0];
  const logits = core.matmul(x, core.transpose(W));
  const out = new Nd([V, D]);
  for (let r = 0; r < rows; r++) {
    const row = Array.from(logits.data.subarray(r * V, (r + 1) * V));
    const lse = nn.logsumexpRow(row);
    for (let v = 0; v < V; v++) {
      const c = R.data[r] * ((v === targets.data[r] ? 1 : 0) - Math.exp(row[v] - lse));
      for (let d = 0; d < D; d++) out.data[v * D + d] += c * x.data[r * D + d];
    }
  }
  return out;
}

test('embedding backward scatters into a gradient in pieces (CSR with host ids, atomic without) = float64', async () => {
  await property(fc.tuple(arbCase, fc.integer({ min: 1, max: 40 }), fc.boolean()), async ([c, n, hostIds]) => {
    const { V, D, seed } = c;
    const Wn = randomNd([V, D], seed, -1, 1), ids = randomInts([n], seed + 1, 0, V), R = randomNd([n, D], seed + 2);
    const w = T.param(f32(Wn));
    inPieces(w, 'weight');
    T.tidy(() => {
      // Ids made by an op have no host copy: the atomic scatter path.
      const id = hostIds ? ints(ids) : T.cast(f32(ids), 'i32');
      assert.equal(!!id.host, hostIds);
      const y = T.embedding(w, id);
      T.sum(T.mul(y, f32(R))).backward();
    });
    inPieces(w.grad!, 'gradient');
    close((await w.grad!.data()) as Float32Array, embeddingGradW(V, D, ids, R).data, 1e-6, 'dW');
    w.grad!.dispose();
    w.dispose();
  }, { numRuns: 12 });
});

test('linear (x @ w^T) and headLogProbs: the weight gradient over pieces, and both into one tied weight with the embedding, = float64', async () => {
  const before = T.poolStats().liveBuffers;
  await property(fc.tuple(arbCase, fc.integer({ min: 1, max: 400 })), async ([c, chunk]) => {
    const { V, D, rows, seed } = c;
    const Wn = randomNd([V, D], seed, -0.5, 0.5), x = randomNd([rows, D], seed + 1, -1, 1);
    const R = randomNd([rows, V], seed + 2), Rh = randomNd([rows], seed + 3), tg = randomInts([rows], seed + 4, 0, V);
    const ids = randomInts([rows], seed + 5, 0, V), Re = randomNd([rows, D], seed + 6);
    const w = T.param(f32(Wn));
    // linear: the gradient comes back per piece and becomes the pieces of w.grad.
    T.tidy(() => T.sum(T.mul(T.linear(f32(x), w), f32(R))).backward());
    inPieces(w.grad!, 'linear gradient');
    const lin = linearGradW(x, R);
    close((await w.grad!.data()) as Float32Array, lin.data, 1e-5, 'linear dW');
    T.zeroGrad([w]);
    // headLogProbs (chunks of 1-400 entries, cut at the pieces).
    T.tidy(() => T.sum(T.mul(T.headLogProbs(f32(x), w, ints(tg), { chunk }), f32(Rh))).backward());
    inPieces(w.grad!, 'head gradient');
    const head = headGradW(x, Wn, tg, Rh);
    close((await w.grad!.data()) as Float32Array, head.data, 1e-4, 'head dW');
    T.zeroGrad([w]);
    // A tied embedding: the input embedding and the head both add into one gradient in pieces.
    T.tidy(() => {
      const e = T.embedding(w, ints(ids));
      const lp = T.headLogProbs(T.add(f32(x), e), w, ints(tg), { chunk });
      T.add(T.sum(T.mul(lp, f32(Rh))), T.sum(T.mul(e, f32(Re)))).backward();
    });
    inPieces(w.grad!, 'tied gradient');
    // d/dW: the head's term at h = x + W[ids], plus what flows back into W[ids] through h and directly.
    const h = core.binary('add', x, nn.embedding(Wn, ids));
    const want = headGradW(h, Wn, tg, Rh);
    const logits = core.matmul(h, core.transpose(Wn));
    for (let r = 0; r < rows; r++) {
      const row = Array.from(logits.data.subarray(r * V, (r + 1) * V));
      const lse = nn.logsumexpRow(row);
      for (let d = 0; d < D; d++) {
        let dh = Re.data[r * D + d];
        for (let v = 0; v < V; v++) dh += Rh.data[r] * ((v === tg.data[r] ? 1 : 0) - Math.exp(row[v] - lse)) * Wn.data[v * D + d];
        want.data[ids.data[r] * D + d] += dh;
      }
    }
    close((await w.grad!.data()) as Float32Array, want.data, 1e-4, 'tied dW');
    T.zeroGrad([w]);
    w.dispose();
  }, { numRuns: 10 });
  assert.equal(T.poolStats().liveBuffers, before, 'the gradients and their pieces are freed');
});

test('elementwise ops, copies and contiguous over pieces (f32 and f16 inputs, broadcast operands) = float64, with gradients in pieces', async () => {
  await property(fc.tuple(arbCase, fc.constantFrom('f32' as const, 'f16' as const)), async ([c, dtype]) => {
    const { V, D, seed } = c;
    const an = randomNd([V, D], seed, -2, 2), bn = randomNd([V, D], seed + 1, 0.5, 2), rowv = randomNd([D], seed + 2), col = randomNd([V, 1], seed + 3);
    // A 16-bit weight (in one buffer or in pieces) cast to f32, per piece, is in pieces.
    const a16 = dtype === 'f16' ? f32(an, 'f16') : undefined;
    const a = a16 ? T.cast(a16, 'f32') : f32(an), b = f32(bn);
    a16?.dispose();
    inPieces(a, 'a');
    inPieces(b, 'b');
    const A = new Nd([V, D], Float64Array.from((await a.data()) as Float32Array)); // as stored (f16 rounded)
    const check = async (t: T.Tensor, want: Nd, what: string, tol = 1e-6) => {
      // In pieces exactly when above the limit (a column range may fit one buffer).
      if (want.size * 4 > LIMIT) inPieces(t, what);
      else assert.ok(!isMulti(t), `${what} fits one buffer but is in pieces`);
      close((await t.data()) as Float32Array, want.data, tol, what);
      t.dispose();
    };
    await check(T.mul(a, b), core.binary('mul', A, bn), 'a * b');
    await check(T.add(a, f32(rowv)), core.binary('add', A, rowv), 'a + row');
    await check(T.sub(f32(col), b), core.binary('sub', col, bn), 'col - b');
    await check(T.affine(b, 3, -1), bn.map((v) => 3 * v - 1), 'affine');
    await check(T.exp(a), core.unary('exp', A), 'exp', 1e-5);
    await check(T.where(T.gt(a, 0), a, b), core.where(core.binary('gt', A, new Nd([], Float64Array.of(0))), A, bn), 'where');
    await check(T.zeros([V, D], 'f32', true), new Nd([V, D]), 'zeros in pieces');
    // A strided view (a column range) along the rows, made dense; and a copy into pieces.
    const cols = T.slice(b, 1, 1, D);
    await check(T.contiguous(cols), core.slice(bn, 1, 1, D), 'contiguous of a column range');
    cols.dispose();
    const dst = T.zeros([V, D], 'f32', true);
    T.copyInto(dst, a);
    await check(dst, A, 'copyInto');
    // Gradients through elementwise ops come back in pieces.
    if (dtype === 'f32') {
      const p = T.param(f32(an));
      T.tidy(() => T.sum(T.mul(T.exp(T.mul(p, b)), f32(rowv))).backward());
      const want = new Nd([V, D], an.data.map((v, i) => rowv.data[i % D] * bn.data[i] * Math.exp(v * bn.data[i])));
      await check(p.grad!, want, 'd/dp sum(row * exp(p * b))', 1e-5);
      p.dispose();
    }
    a.dispose();
    b.dispose();
  }, { numRuns: 8 });
});

test('AdamW and SGD (momentum) steps with global-norm clipping over a parameter, gradient and moments in pieces = float64', async () => {
  await property(fc.tuple(arbCase, fc.constantFrom('adamw' as const, 'sgd' as const), fc.constantFrom(0.05, 1e9)), async ([c, kind, maxNorm]) => {
    const { V, D, seed } = c;
    const Wn = randomNd([V, D], seed, -1, 1), small = randomNd([D], seed + 1);
    const w = T.param(f32(Wn)), s = T.param(f32(small));
    inPieces(w, 'parameter');
    const h = { lr: 0.01, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 };
    const opt = kind === 'adamw'
      ? new T.AdamW([w, s], { lr: h.lr, betas: [h.beta1, h.beta2], eps: h.eps, weightDecay: h.weightDecay, maxGradNorm: maxNorm })
      : new T.SGD([w, s], { lr: h.lr, momentum: 0.9, weightDecay: h.weightDecay, maxGradNorm: maxNorm });
    const ref = [Float64Array.from(Wn.data), Float64Array.from(small.data)];
    const m = ref.map((p) => new Float64Array(p.length)), v = ref.map((p) => new Float64Array(p.length));
    for (let step = 1; step <= 3; step++) {
      const G = [randomNd([V, D], seed + 10 * step), randomNd([D], seed + 10 * step + 1)];
      // Gradients by backward (in pieces for w): d/dw sum(w * G) = G.
      T.tidy(() => T.add(T.sum(T.mul(w, f32(G[0]))), T.sum(T.mul(s, f32(G[1])))).backward());
      inPieces(w.grad!, 'gradient');
      const norm = Math.sqrt(G.reduce((a, g) => a + g.data.reduce((q, x) => q + x * x, 0), 0));
      const coef = Math.min(1, maxNorm / (norm + 1e-6));
      const got = opt.step();
      close([await got!.item()], [norm], 1e-5, 'the global gradient norm over pieces');
      opt.zeroGrad();
      ref.forEach((p, i) => {
        const g = G[i].data.map((x) => x * coef);
        if (kind === 'adamw') nn.adamwStep(p, g, m[i], v[i], step, h);
        else nn.sgdStep(p, g, m[i], step === 1, { lr: h.lr, momentum: 0.9, weightDecay: h.weightDecay, nesterov: false });
      });
    }
    close((await w.data()) as Float32Array, ref[0], 1e-5, `${kind} parameter in pieces`);
    close((await s.data()) as Float32Array, ref[1], 1e-5, `${kind} small parameter`);
    const st = await opt.state();
    for (const [name, slot] of Object.entries(st.params[0].slots)) close(slot, (name === 'v' ? v : m)[0], 1e-5, `${kind} moment ${name}`);
    assert.deepEqual(await nonFinite([['w', w]]), []);
    opt.dispose();
    w.dispose();
    s.dispose();
  }, { numRuns: 10 });
});

test('a NaN in one piece of a gradient is found by nonFinite; the buffer limit is back after the tests', async () => {
  const V = Math.ceil(LIMIT / 32) + 50, D = 8;
  const host = new Float32Array(V * D);
  host[(V - 3) * D + 5] = NaN; // in the last piece
  const t = T.Tensor.from(host, [V, D]);
  inPieces(t, 'tensor');
  assert.deepEqual(await nonFinite([['t', t]]), ['t']);
  t.dispose();
  assert.equal(bufferLimit().bytes, LIMIT);
});

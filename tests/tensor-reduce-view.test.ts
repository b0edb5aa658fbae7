import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as T from '../src/tensor/index.js';
import * as ref from '../src/tensor/reference/core.js';
import { Nd, unravel } from '../src/tensor/reference/nd.js';
import { contiguousStrides, numel, viewStrides } from '../src/tensor/shape.js';
import { colSumChunks } from '../src/tensor/ops/reduce.js';
import { rng } from '../src/testing/property.js';
import { arbShape, checkOp, fcRuns, property, randomNd } from '../src/testing/property.js';

// A shape plus a non-empty sorted subset of its axes.
const shapeAndAxes = arbShape({ minRank: 1, maxRank: 4, maxDim: 7 }).chain((s) =>
  fc.tuple(fc.constant(s), fc.subarray(s.map((_, i) => i), { minLength: 1 }), fc.boolean(), fc.integer({ min: 1, max: 1e6 })),
);

for (const name of ['sum', 'mean', 'max', 'min', 'logsumexp'] as const) {
  test(`${name} over any axes (keepdims or not) matches the reference, with gradient`, async () => {
    await property(shapeAndAxes, async ([shape, axes, keep, seed]) => {
      await checkOp({
        name: `${name}(${axes})`,
        inputs: [randomNd(shape, seed, -2, 2)],
        gpu: ([x]) => T[name](x, axes, keep),
        ref: ([x]) => ref[name](x, axes, keep),
        grad: true,
      });
    }, { numRuns: 10 });
  });
}

// A shape with one zero-size dim (at a random place), and a non-empty sorted subset of its axes.
const zeroShapeAndAxes = arbShape({ minRank: 1, maxRank: 3, maxDim: 5 }).chain((s) =>
  fc.integer({ min: 0, max: s.length }).chain((z) => {
    const shape = [...s.slice(0, z), 0, ...s.slice(z)];
    return fc.tuple(fc.constant(shape), fc.constant(z), fc.subarray(shape.map((_, i) => i), { minLength: 1 }), fc.boolean());
  }),
);

test('reductions with a zero-size dim: sum over it is 0 (gradient empty), other axes give empty results; max/min/logsumexp over it are errors', async () => {
  await property(zeroShapeAndAxes, async ([shape, z, axes, keep]) => {
    const overEmpty = axes.includes(z);
    await checkOp({ name: `sum(${axes}) of [${shape}]`, inputs: [randomNd(shape, 1)], gpu: ([x]) => T.sum(x, axes, keep), ref: ([x]) => ref.sum(x, axes, keep), grad: true });
    // The values themselves: zeros when the empty axis is summed over, else nothing at all.
    const x = T.zeros(shape);
    x.requiresGrad = true;
    const y = T.sum(x, axes, keep);
    const kept = shape.map((d, i) => (axes.includes(i) ? 1 : d)).filter((_, i) => keep || !axes.includes(i));
    assert.deepEqual(y.shape, kept);
    assert.deepEqual([...(await y.data())], overEmpty ? new Array(numel(kept)).fill(0) : []);
    if (y.size > 0) {
      y.sum().backward();
      assert.deepEqual(x.grad!.shape, shape, 'gradient has the input\'s (empty) shape');
      x.grad!.dispose();
    }
    y.dispose();
    x.dispose();
    for (const name of ['mean', 'max', 'min', 'logsumexp'] as const) {
      if (overEmpty) {
        // mean of nothing has no value; max/min/logsumexp have no element to pick.
        if (name !== 'mean') assert.throws(() => T[name](T.zeros(shape), axes, keep), new RegExp(`${name === 'logsumexp' ? 'lse' : name}: reducing an empty axis of \\[${shape}\\]`));
        continue;
      }
      await checkOp({ name: `${name}(${axes}) of [${shape}]`, inputs: [randomNd(shape, 2)], gpu: ([x]) => T[name](x, axes, keep), ref: ([x]) => ref[name](x, axes, keep), grad: true });
    }
  }, { numRuns: 10 });
  await T.initGpu();
  const whole = T.sum(T.zeros([0]));
  assert.deepEqual([whole.shape, [...(await whole.data())]], [[], [0]]);
  whole.dispose();
});

test('variance (population and unbiased) matches the reference, with gradient', async () => {
  await property(shapeAndAxes, async ([shape, axes, keep, seed]) => {
    const n = axes.reduce((a, i) => a * shape[i], 1);
    const corr = n > 1 ? 1 : 0;
    await checkOp({ name: 'var', inputs: [randomNd(shape, seed)], gpu: ([x]) => T.variance(x, axes, keep, corr), ref: ([x]) => ref.variance(x, axes, keep, corr), grad: true });
  }, { numRuns: 8 });
});

test('reductions over long rows (more than one workgroup stride) and many rows', async () => {
  await checkOp({ name: 'sum long', inputs: [randomNd([3, 1000], 1)], gpu: ([x]) => T.sum(x, 1), ref: ([x]) => ref.sum(x, [1]), atol: 1e-4 });
  await checkOp({ name: 'lse long', inputs: [randomNd([2, 777], 2, -5, 5)], gpu: ([x]) => T.logsumexp(x, -1), ref: ([x]) => ref.logsumexp(x, [1]), atol: 1e-4 });
  await checkOp({ name: 'column sum', inputs: [randomNd([513, 5], 3)], gpu: ([x]) => T.sum(x, 0), ref: ([x]) => ref.sum(x, [0]), atol: 1e-4 });
});

test('column sums of tall blocks (in chunks of rows, then the chunks) match the reference, with gradient', async () => {
  // Around both thresholds (one pass up to 512 rows or 2^18 elements), past a partial last chunk,
  // and widths across a workgroup of columns.
  const check = (n: number, cols: number, seed: number) =>
    checkOp({ name: `sum(0) of [${n},${cols}]`, inputs: [randomNd([n, cols], seed)], gpu: ([x]) => T.sum(x, 0), ref: ([x]) => ref.sum(x, [0]), atol: 1e-3, grad: true });
  for (const [n, cols] of [[512, 3], [513, 64], [4097, 64], [4096, 65], [600, 437], [5000, 130]]) await check(n!, cols!, n!);
  await property(fc.tuple(fc.integer({ min: 1, max: 6000 }), fc.integer({ min: 1, max: 140 }), fc.integer({ min: 1, max: 1e6 })), ([n, cols, seed]) => check(n, cols, seed), { numRuns: 10 });
});

test('tall column sums stay within the dispatch limit of 65,535 workgroup rows', () => {
  assert.deepEqual(colSumChunks(5000), { chunk: 256, k: 20 });
  for (const n of [65535 * 256, 65535 * 256 + 1, 50_000_000]) {
    const { chunk, k } = colSumChunks(n);
    assert.ok(k <= 65535 && chunk * k >= n && chunk * (k - 1) < n, `n ${n}: chunk ${chunk}, k ${k}`);
  }
});

test('views: permute, transpose, slice, expand, reshape of a view, with gradients', async () => {
  await property(fc.tuple(arbShape({ minRank: 2, maxRank: 4, maxDim: 6 }), fc.integer({ min: 1, max: 1e6 })), async ([shape, seed]) => {
    const perm = shape.map((_, i) => i).reverse();
    await checkOp({ name: 'permute', inputs: [randomNd(shape, seed)], gpu: ([x]) => x.permute(perm).mul(1), ref: ([x]) => ref.permute(x, perm), grad: true });
    const ax = shape.length - 1, n = shape[ax];
    const [s, e] = [Math.floor(n / 3), Math.max(Math.floor(n / 3) + 1, n - 1)];
    await checkOp({ name: 'slice', inputs: [randomNd(shape, seed + 1)], gpu: ([x]) => x.slice(ax, s, e).exp(), ref: ([x]) => ref.unary('exp', ref.slice(x, ax, s, e)), grad: true });
    await checkOp({ name: 'transpose+reshape', inputs: [randomNd(shape, seed + 2)], gpu: ([x]) => x.transpose().reshape([-1]), ref: ([x]) => ref.transpose(x).reshape([x.size]), grad: true });
  }, { numRuns: 8 });
  const big = [3, 4, 5];
  await checkOp({ name: 'expand', inputs: [randomNd([4, 1], 5)], gpu: ([x]) => x.expand(big).mul(1), ref: ([x]) => ref.expand(x, big), grad: true });
});

test('concat, split and stack round trip with gradients', async () => {
  await property(fc.tuple(arbShape({ minRank: 1, maxRank: 3, maxDim: 6 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 1e6 })), async ([shape, extra, seed]) => {
    const ax = shape.length - 1;
    const other = [...shape];
    other[ax] = extra;
    await checkOp({ name: 'concat', inputs: [randomNd(shape, seed), randomNd(other, seed + 1)], gpu: ([a, b]) => T.concat([a, b], ax), ref: ([a, b]) => ref.concat([a, b], ax), grad: true });
    await checkOp({
      name: 'split->concat reversed',
      inputs: [randomNd([...shape.slice(0, -1), shape[ax] + extra], seed + 2)],
      gpu: ([x]) => { const [p, q] = T.split(x, [shape[ax], extra], ax); return T.concat([q, p], ax); },
      ref: ([x]) => ref.concat([ref.slice(x, ax, shape[ax], shape[ax] + extra), ref.slice(x, ax, 0, shape[ax])], ax),
      grad: true,
    });
  }, { numRuns: 8 });
  await checkOp({ name: 'stack', inputs: [randomNd([2, 3], 1), randomNd([2, 3], 2)], gpu: ([a, b]) => T.stack([a, b], 1), ref: ([a, b]) => ref.concat([a.reshape([2, 1, 3]), b.reshape([2, 1, 3])], 1), grad: true });
});

test('concat and split with zero-length parts (first, middle, last, all), with gradients', async () => {
  const a = randomNd([2, 3], 1), b = randomNd([2, 4], 2);
  for (const where of [0, 1, 2]) {
    const parts = (x: T.Tensor, y: T.Tensor, e: T.Tensor) => (where === 0 ? [e, x, y] : where === 1 ? [x, e, y] : [x, y, e]);
    const refParts = (x: Nd, y: Nd, e: Nd) => (where === 0 ? [e, x, y] : where === 1 ? [x, e, y] : [x, y, e]);
    await checkOp({
      name: `concat with an empty part at ${where}`, inputs: [a, b, new Nd([2, 0])],
      gpu: ([x, y, e]) => T.concat(parts(x, y, e), 1), ref: ([x, y, e]) => ref.concat(refParts(x, y, e), 1), grad: true,
    });
  }
  // The result is exactly the non-empty parts side by side.
  await T.initGpu();
  const got = T.concat([T.Tensor.from([1, 2], [2, 1]), T.zeros([2, 0]), T.Tensor.from([3, 4], [2, 1])], 1);
  assert.deepEqual([got.shape, [...(await got.data())]], [[2, 2], [1, 3, 2, 4]]);
  const none = T.concat([T.zeros([0, 3]), T.zeros([0, 3])], 0);
  assert.deepEqual([none.shape, none.size], [[0, 3], 0]);
  const [p, q, r] = T.split(T.Tensor.from([1, 2, 3], [3]), [0, 3, 0]);
  assert.deepEqual([p.shape, [...(await q.data())], r.shape], [[0], [1, 2, 3], [0]]);
  [got, none, p, q, r].forEach((t) => t.dispose());
});

test('slice gradients assemble: a split covering the axis, gaps, overlaps, slices on two axes, mixed with a dense use', async () => {
  await property(fc.tuple(arbShape({ minRank: 2, maxRank: 3, maxDim: 7 }), fc.integer({ min: 1, max: 1e6 })), async ([shape, seed]) => {
    const ax = shape.length - 1, n = shape[ax] + 2;
    const full = [...shape.slice(0, -1), n];
    const cut = 1 + (seed % (n - 1)); // 1 .. n-1
    const w = (k: number) => k + 1; // distinct weights so every piece's gradient differs
    await checkOp({
      name: 'split parts used apart', inputs: [randomNd(full, seed)],
      gpu: ([x]) => { const [p, q] = T.split(x, [cut, n - cut], ax); return T.concat([p.exp().mul(w(0)), q.mul(w(1))], ax); },
      ref: ([x]) => ref.concat([ref.unary('exp', ref.slice(x, ax, 0, cut)).map((v) => v * w(0)), ref.slice(x, ax, cut, n).map((v) => v * w(1))], ax),
      grad: true,
    });
    // Overlapping slices, a gap (nothing reads column 0), a slice on another axis and the whole tensor too.
    await checkOp({
      name: 'overlapping and gapped slices', inputs: [randomNd(full, seed + 1)],
      gpu: ([x]) => T.add(T.add(x.slice(ax, 1, n).sum(), x.slice(ax, 1, 2).exp().sum()), T.add(x.slice(0, 0, 1).mul(3).sum(), x.square().sum())),
      ref: ([x]) => {
        const s = (t: { data: Float64Array }) => t.data.reduce((a, v) => a + v, 0);
        const total = s(ref.slice(x, ax, 1, n)) + s(ref.unary('exp', ref.slice(x, ax, 1, 2))) + 3 * s(ref.slice(x, 0, 0, 1)) + s(ref.unary('square', x));
        return Nd.from([], [total]);
      },
      grad: true,
    });
  }, { numRuns: 8 });
});

test('viewStrides: whenever it returns strides, they read the view in row-major order (random permuted and sliced views, random regroupings)', () => {
  fc.assert(fc.property(arbShape({ minRank: 1, maxRank: 4, maxDim: 5 }), fc.integer({ min: 0, max: 1e6 }), (shape, seed) => {
    const r = rng(seed);
    // A view of a dense base: permute, then maybe slice one axis.
    const perm = shape.map((_, i) => i).sort(() => r() - 0.5);
    const baseStrides = contiguousStrides(perm.map((p) => shape[p]));
    const vShape = shape.slice(), vStrides = perm.map((_, i) => baseStrides[perm.indexOf(i)]);
    let offset = 0;
    const ax = Math.floor(r() * shape.length);
    if (shape[ax] > 1 && r() < 0.5) { vShape[ax] -= 1; offset = vStrides[ax]; }
    // Regroup into a random factorisation of the element count.
    const n = numel(vShape);
    const target: number[] = [];
    let rest = n;
    while (rest > 1) {
      const divs = Array.from({ length: rest }, (_, i) => i + 1).filter((d) => rest % d === 0 && d > 1);
      const d = divs[Math.floor(r() * divs.length)];
      target.push(d);
      rest /= d;
    }
    if (r() < 0.3) target.splice(Math.floor(r() * (target.length + 1)), 0, 1);
    const st = viewStrides(vShape, vStrides, target);
    if (!st) return;
    const addr = (idx: number[], str: number[]) => offset + idx.reduce((a, v, i) => a + v * str[i], 0);
    for (let f = 0; f < n; f++) {
      const got = addr(unravel(f, target), st);
      const want = addr(unravel(f, vShape), vStrides);
      if (got !== want) throw new Error(`viewStrides(${vShape}, ${vStrides}, ${target}) = ${st}: element ${f} at ${got}, view has it at ${want}`);
    }
  }), { numRuns: fcRuns(300), seed: 42 });
});

test('reshape of a strided view is a view when the strides allow (column slice split into heads), a copy otherwise', async () => {
  await T.initGpu();
  const x = T.Tensor.from(randomNd([2, 3, 12], 4).data, [2, 3, 12]);
  const cols = x.slice(2, 4, 12); // [2, 3, 8], row stride 12
  const heads = cols.reshape([2, 3, 2, 4]);
  assert.equal(heads.buffer, x.buffer, 'splitting the last dim of a column slice needs no copy');
  assert.deepEqual(heads.strides, [36, 12, 4, 1]);
  const xr = Nd.from([2, 3, 12], await x.data());
  assert.deepEqual([...(await heads.data())], [...ref.slice(xr, 2, 4, 12).data]);
  const merged = x.permute([1, 0, 2]).reshape([3, 24]); // merging permuted dims needs a copy
  assert.notEqual(merged.buffer, x.buffer);
  assert.deepEqual([...(await merged.data())], [...ref.permute(xr, [1, 0, 2]).data]);
  for (const t of [x, cols, heads, merged]) t.dispose();
});

test('empty tensors: zero-size dims reduce to zeros and copy to nothing', async () => {
  await T.initGpu();
  const e = T.zeros([0, 3]);
  assert.deepEqual(Array.from(await T.sum(e, 0).data()), [0, 0, 0]);
  assert.equal((await T.concat([e, T.ones([2, 3])], 0).data()).length, 6);
});

test('view errors name the op and shapes', async () => {
  await T.initGpu();
  const x = T.zeros([2, 3]);
  assert.throws(() => x.reshape([4]), /reshape: \[2,3\] \(6 elements\) cannot become \[4\]/);
  assert.throws(() => x.permute([0, 0]), /permute/);
  assert.throws(() => x.slice(1, 2, 5), /slice: \[2, 5\) out of range/);
  assert.throws(() => x.expand([3, 3]), /expand/);
  assert.throws(() => T.matmul(x, x), /matmul: inner dims differ: \[2,3\] @ \[2,3\]/);
});

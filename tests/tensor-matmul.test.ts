import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Float16Array } from '@petamoriken/float16';
import { decodeBf16, encodeBf16 } from '../src/io/half.js';
import * as T from '../src/tensor/index.js';
import * as ref from '../src/tensor/reference/core.js';
import { checkOp, fcRuns, Nd, property, randomNd, rng } from '../src/testing/property.js';
import { allMatmulVariants, pickMatmul } from '../src/kernels/matmul/select.js';
import { aModeOf, bModeOf, softwareSubgroupLanes, type AMode, type BMode } from '../src/kernels/matmul/common.js';
import { launchTiled, type TileConfig } from '../src/kernels/matmul/register-tiled.js';
import { REGISTER_TILE } from '../src/kernels/matmul/register-vec4.js';
import { subgroupConfig } from '../src/kernels/matmul/subgroup-vec4.js';
import type { MatmulProblem, MatmulVariant, MatOperand } from '../src/kernels/matmul/types.js';

// ---- problems built by hand, so every variant can be forced directly ------------------------

/** One operand's storage: logical [b, rows, cols], stored [b, sRows, ld] (transposed if t), viewed at column `start`. */
interface OperandSpec { b: number; rows: number; cols: number; t: boolean; start: number; ld: number }
interface Case { batch: number; m: number; n: number; k: number; a: OperandSpec; b: OperandSpec; dt: Half; acc: boolean; seed: number }

type Half = 'f32' | 'f16' | 'bf16';
/** Values as the 16-bit storage holds them, so the float64 reference multiplies the same numbers. */
const round16 = (x: Float64Array, dt: Half) => (dt === 'f16' ? Float64Array.from(new Float16Array(x)) : Float64Array.from(decodeBf16(encodeBf16(Float32Array.from(x)))));

/** Upload an operand and return the view's MatOperand plus its logical values as an Nd [b, rows, cols]. */
function makeOperand(s: OperandSpec, seed: number, dtype: Half): { op: MatOperand; nd: Nd; t: T.Tensor[] } {
  const sRows = s.t ? s.cols : s.rows, sCols = s.t ? s.rows : s.cols;
  let store = randomNd([s.b, sRows, s.ld], seed);
  if (dtype !== 'f32') store = new Nd(store.shape, round16(store.data, dtype));
  const base = T.Tensor.from(store.data, store.shape, dtype);
  const sliced = base.slice(2, s.start, s.start + sCols);
  const view = s.t ? sliced.transpose(1, 2) : sliced;
  const op: MatOperand = {
    buffer: view.buffer, dtype, offset: view.offset,
    batchStride: s.b === 1 ? 0 : view.strides[0], rowStride: view.strides[1], colStride: view.strides[2],
  };
  const nd = new Nd([s.b, s.rows, s.cols]);
  for (let bi = 0; bi < s.b; bi++)
    for (let r = 0; r < s.rows; r++)
      for (let c = 0; c < s.cols; c++) nd.data[(bi * s.rows + r) * s.cols + c] = store.get(bi, s.t ? c : r, s.start + (s.t ? r : c));
  return { op, nd, t: [view, sliced, base] };
}

const arbOperandLayout = fc.record({ t: fc.boolean(), start: fc.integer({ min: 0, max: 5 }), extra: fc.integer({ min: 0, max: 3 }), align: fc.boolean(), bcast: fc.boolean() });
type Layout = { t: boolean; start: number; extra: number; align: boolean; bcast: boolean };

function spec(l: Layout, batch: number, rows: number, cols: number): OperandSpec {
  const inner = l.t ? rows : cols; // stored row length
  // align: offset and leading dim multiples of 4, so vec4 reads qualify.
  const start = l.align ? (l.start >= 3 ? 4 : 0) : l.start;
  const ld0 = start + inner + l.extra;
  return { b: l.bcast ? 1 : batch, rows, cols, t: l.t, start, ld: l.align ? Math.ceil(ld0 / 4) * 4 : ld0 };
}

/** Sizes off every tile (1..70) half the time, multiples of 4 (4..64) the other half. */
const arbDim = fc.oneof(fc.integer({ min: 1, max: 70 }), fc.integer({ min: 1, max: 16 }).map((x) => 4 * x));

/** Problems whose operand layouts are each vec4-aligned or not (aligned: both always). */
function arbCase(aligned: 'both' | 'mixed'): fc.Arbitrary<Case> {
  return fc
    .record({
      batch: fc.integer({ min: 1, max: 3 }), m: arbDim, n: arbDim, k: arbDim,
      la: arbOperandLayout, lb: arbOperandLayout, allAligned: fc.boolean(), dt: fc.constantFrom<Half>('f32', 'f16', 'bf16'), acc: fc.boolean(), seed: fc.integer({ min: 1, max: 1e6 }),
    })
    .map(({ batch, m, n, k, la, lb, allAligned, dt, acc, seed }) => {
      // Half the mixed cases have both layouts aligned, so the vec4 paths get as many as the scalar ones.
      const al = aligned === 'both' || allAligned;
      return {
        batch, m, n, k, dt, acc, seed,
        a: spec({ ...la, align: al || la.align }, batch, m, k), b: spec({ ...lb, align: al || lb.align, bcast: lb.bcast && !la.bcast }, batch, k, n),
      };
    });
}

/** The view makeOperand builds, without the GPU: slice(2, start, ...) of [b, sRows, ld], transposed if t. */
function layoutOf(s: OperandSpec, dtype: Half): MatOperand {
  const sRows = s.t ? s.cols : s.rows;
  return {
    buffer: undefined as unknown as GPUBuffer, dtype, offset: s.start,
    batchStride: s.b === 1 ? 0 : sRows * s.ld, rowStride: s.t ? 1 : s.ld, colStride: s.t ? s.ld : 1,
  };
}

function hostProblem(c: Case): MatmulProblem {
  const dt = c.dt;
  return { batch: c.batch, m: c.m, n: c.n, k: c.k, a: layoutOf(c.a, dt), b: layoutOf(c.b, dt), out: undefined as unknown as GPUBuffer, accumulate: c.acc };
}

/** Both operands readable as vec4 (what the vec4-only variants need). */
const vec4Layout = (p: MatmulProblem) => aModeOf(p) !== 's' && bModeOf(p) !== 's';

const describeCase = (c: Case) =>
  `batch ${c.batch} m ${c.m} n ${c.n} k ${c.k} A{b${c.a.b}${c.a.t ? ' T' : ''} start ${c.a.start} ld ${c.a.ld}} B{b${c.b.b}${c.b.t ? ' T' : ''} start ${c.b.start} ld ${c.b.ld}}${c.dt === 'f32' ? '' : ` ${c.dt}`}${c.acc ? ' accumulate' : ''}`;

/** Run `launch` on the case and compare with the float64 reference; returns false if `accept` rejects the problem. */
async function runCase(c: Case, launch: (p: MatmulProblem) => void, accept: (p: MatmulProblem) => boolean = () => true): Promise<boolean> {
  const dtype = c.dt;
  const A = makeOperand(c.a, c.seed, dtype), B = makeOperand(c.b, c.seed + 1, dtype);
  const c0 = randomNd([c.batch, c.m, c.n], c.seed + 2);
  const out = c.acc ? T.Tensor.from(c0.data, c0.shape) : T.Tensor.empty([c.batch, c.m, c.n]);
  try {
    const p: MatmulProblem = { batch: c.batch, m: c.m, n: c.n, k: c.k, a: A.op, b: B.op, out: out.buffer, accumulate: c.acc };
    // The host-side layout (used to pick problems a variant accepts) must be the one uploaded.
    const h = hostProblem(c);
    for (const [x, y] of [[h.a, p.a], [h.b, p.b]]) assert.deepEqual([x.offset, x.batchStride, x.rowStride, x.colStride], [y.offset, y.batchStride, y.rowStride, y.colStride], describeCase(c));
    if (!accept(p)) return false;
    launch(p);
    const got = await out.data();
    const want = ref.matmul(A.nd, B.nd);
    if (c.acc) want.data.forEach((v, i) => (want.data[i] = v + c0.data[i]));
    for (let i = 0; i < want.size; i++) {
      const tol = 1e-5 * (c.k + 1) + 1e-5 * Math.abs(want.data[i]);
      if (!(Math.abs(got[i] - want.data[i]) <= tol)) {
        throw new Error(`${describeCase(c)}: element ${i} of [${want.shape}]: got ${got[i]}, reference ${want.data[i]} (read modes ${aModeOf(p)}/${bModeOf(p)})`);
      }
    }
    return true;
  } finally {
    [...A.t, ...B.t, out].forEach((t) => t.dispose());
  }
}

const VARIANT_RUNS = 50;

for (const v of allMatmulVariants()) {
  test(`matmul variant ${v.name}: ${VARIANT_RUNS} random problems (aligned and unaligned shapes and layouts where accepted; broadcast batch, offsets, f16 and bf16 operands, accumulate) vs float64 reference`, async (t) => {
    await T.initGpu();
    if (v.name.startsWith('subgroup') && softwareSubgroupLanes() === 0) return t.skip('no llvmpipe subgroups on this adapter: the subgroup variants cannot run');
    // A variant that reads any layout gets every kind of problem; a vec4-only one gets aligned layouts.
    const unaligned: Case = { batch: 1, m: 5, n: 6, k: 7, dt: 'f32', acc: false, seed: 1, a: { b: 1, rows: 5, cols: 7, t: false, start: 1, ld: 9 }, b: { b: 1, rows: 7, cols: 6, t: false, start: 0, ld: 6 } };
    const general = v.supports(hostProblem(unaligned));
    // Aligned storage can still be scalar (a 1 x 1 operand has no unit stride); the filter keeps what the variant takes.
    const arb = arbCase(general ? 'mixed' : 'both').filter((c) => v.supports(hostProblem(c)));
    const seen = { vec4: 0, scalar: 0, offTile: 0, onTile: 0 };
    await property(arb, async (c) => {
      assert.ok(await runCase(c, (p) => v.launch(p), (p) => v.supports(p)), `${v.name} rejected ${describeCase(c)} on the GPU but accepted its host layout`);
      seen[vec4Layout(hostProblem(c)) ? 'vec4' : 'scalar']++;
      seen[[c.m, c.n, c.k].every((d) => d % 4 === 0) ? 'onTile' : 'offTile']++;
    }, { numRuns: VARIANT_RUNS });
    const runs = fcRuns(VARIANT_RUNS), some = Math.min(5, Math.floor(runs / 10));
    assert.equal(seen.vec4 + seen.scalar, runs, 'every generated problem ran');
    assert.ok(seen.vec4 >= some, `vec4-readable layouts: ${JSON.stringify(seen)}`);
    assert.ok(general ? seen.scalar >= some : seen.scalar === 0, `scalar-only layouts (${general ? 'accepted' : 'rejected'} by ${v.name}): ${JSON.stringify(seen)}`);
    assert.ok(seen.onTile >= some && seen.offTile >= some, `sizes on and off the tile: ${JSON.stringify(seen)}`);
  });
}

test('register tile: every A/B read mode (vec4 along either dim, scalar) in subgroup and per-thread forms', async () => {
  await T.initGpu();
  const lanes = softwareSubgroupLanes();
  const cfgs: TileConfig[] = [REGISTER_TILE];
  if (lanes) cfgs.push(subgroupConfig(lanes));
  const aModes: [AMode, boolean][] = [['vk', false], ['vm', true], ['s', false], ['s', true]];
  const bModes: [BMode, boolean][] = [['vn', false], ['vk', true], ['s', true]];
  for (const cfg of cfgs)
    for (const [am, at] of aModes)
      for (const [bm, bt] of bModes) {
        // K % 4 != 0 (masked K loop), M, N off the tile, padded aligned storage so vec4 reads are legal.
        const c: Case = {
          batch: 2, m: 37, n: 42, k: 23, dt: am === 's' && bm === 's' ? 'f16' : am === 'vk' ? 'bf16' : 'f32', acc: bm === 'vk', seed: 11,
          a: { b: 2, rows: 37, cols: 23, t: at, start: 4, ld: at ? 44 : 28 }, b: { b: 2, rows: 23, cols: 42, t: bt, start: 0, ld: bt ? 24 : 44 },
        };
        const ok = await runCase(c, (p) => launchTiled(p, cfg, am, bm), (p) => (am === 's' || aModeOf(p) === am) && (bm === 's' || bModeOf(p) === bm));
        assert.ok(ok, `modes ${am}/${bm} not applicable to the test layout`);
      }
});

test('the chosen variant accepts the problem; vec4 layouts prefer a vec4 variant on lavapipe', async () => {
  await T.initGpu();
  const a = T.Tensor.from(new Float32Array(64 * 32), [64, 32]), b = T.Tensor.from(new Float32Array(32 * 16), [32, 16]);
  const y = T.Tensor.empty([64, 16]);
  const op = (t: T.Tensor): MatOperand => ({ buffer: t.buffer, dtype: t.dtype, offset: t.offset, batchStride: 0, rowStride: t.strides[0], colStride: t.strides[1] });
  const p: MatmulProblem = { batch: 1, m: 64, n: 16, k: 32, a: op(a), b: op(b), out: y.buffer };
  const v: MatmulVariant = pickMatmul(p);
  assert.ok(v.supports(p));
  if (softwareSubgroupLanes()) assert.equal(v.name, 'subgroup-vec4');
  [a, b, y].forEach((t) => t.dispose());
});

// ---- the matmul op: broadcasting, views, gradients -----------------------------------------

/** Batch shapes that broadcast: b drops leading dims of a and sets some to 1. */
const arbBatchPair = fc
  .tuple(fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 0, maxLength: 2 }), fc.integer({ min: 0, max: 2 }), fc.array(fc.boolean(), { minLength: 2, maxLength: 2 }))
  .map(([a, drop, ones]) => [a, a.slice(Math.min(drop, a.length)).map((d, i) => (ones[i] ? 1 : d))] as [number[], number[]]);

test('matmul op: forward and gradients with broadcast batch dims and transposed views', async () => {
  await property(
    fc.tuple(arbBatchPair, fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 40 }), fc.boolean(), fc.boolean(), fc.boolean(), fc.integer({ min: 1, max: 1e6 })),
    async ([[ba, bb], m, n, k, swap, ta, tb, seed]) => {
      const [sa, sb] = swap ? [bb, ba] : [ba, bb];
      // Inputs are stored transposed when ta/tb and viewed back with .transpose().
      const A = randomNd(ta ? [...sa, k, m] : [...sa, m, k], seed), B = randomNd(tb ? [...sb, n, k] : [...sb, k, n], seed + 1);
      await checkOp({
        name: 'matmul', inputs: [A, B],
        gpu: ([a, b]) => T.matmul(ta ? a.transpose() : a, tb ? b.transpose() : b),
        ref: ([a, b]) => ref.matmul(ta ? ref.transpose(a) : a, tb ? ref.transpose(b) : b),
        atol: 2e-5 * k, rtol: 1e-4, grad: true, gradAtol: 5e-3, gradRtol: 5e-3,
      });
    },
    { numRuns: 12 },
  );
});

test('matmul op: a sliced operand (nonzero offset, padded rows) and K = 1', async () => {
  const x = randomNd([9, 13], 3), w = randomNd([7, 5], 4);
  await checkOp({
    name: 'matmul(slice)', inputs: [x, w],
    gpu: ([a, b]) => T.matmul(a.slice(1, 2, 9), b.slice(0, 0, 7)),
    ref: ([a, b]) => ref.matmul(ref.slice(a, 1, 2, 9), b),
    grad: true,
  });
  await checkOp({ name: 'matmul(K=1)', inputs: [randomNd([6, 1], 5), randomNd([1, 9], 6)], gpu: ([a, b]) => T.matmul(a, b), ref: ([a, b]) => ref.matmul(a, b), grad: true });
  await checkOp({ name: 'matmul(M=N=1)', inputs: [randomNd([1, 33], 7), randomNd([33, 1], 8)], gpu: ([a, b]) => T.matmul(a, b), ref: ([a, b]) => ref.matmul(a, b), grad: true });
});

test('matmul op: 1-D operands act as row / column vectors and are squeezed back', async () => {
  const v = randomNd([6], 1), m = randomNd([6, 4], 2), m2 = randomNd([2, 3, 6], 3), u = randomNd([6], 4);
  await checkOp({ name: 'vec@mat', inputs: [v, m], gpu: ([a, b]) => T.matmul(a, b), ref: ([a, b]) => ref.matmul(a.reshape([1, 6]), b).reshape([4]), grad: true });
  await checkOp({ name: 'mat@vec', inputs: [m2, u], gpu: ([a, b]) => T.matmul(a, b), ref: ([a, b]) => ref.matmul(a, b.reshape([6, 1])).reshape([2, 3]), grad: true });
  await checkOp({ name: 'vec@vec', inputs: [v, u], gpu: ([a, b]) => T.matmul(a, b), ref: ([a, b]) => ref.matmul(a.reshape([1, 6]), b.reshape([6, 1])).reshape([]), grad: true });
});

test('matmul op: large odd shape against the reference (several tiles, K not a multiple of 4)', async () => {
  const r = rng(9);
  const m = 97 + Math.floor(r() * 3), n = 131, k = 203;
  await checkOp({ name: 'matmul(large)', inputs: [randomNd([m, k], 1), randomNd([k, n], 2)], gpu: ([a, b]) => T.matmul(a, b), ref: ([a, b]) => ref.matmul(a, b), atol: 1e-4, rtol: 1e-4 });
  await checkOp({ name: 'linear(large)', inputs: [randomNd([m, k], 3), randomNd([n, k], 4)], gpu: ([a, b]) => T.linear(a, b), ref: ([a, b]) => ref.matmul(a, ref.transpose(b)), atol: 1e-4, rtol: 1e-4 });
});

test('matmul op with a zero-size dim: k = 0 gives zeros, m, n or batch = 0 an empty result; gradients have the operands\' shapes', async () => {
  for (const [sa, sb] of [[[3, 0], [0, 4]], [[2, 3, 0], [0, 5]], [[0, 5], [5, 4]], [[3, 5], [5, 0]], [[0, 3, 5], [5, 2]], [[1, 0], [0, 1]]]) {
    await checkOp({ name: 'matmul(zero dim)', inputs: [randomNd(sa, 1), randomNd(sb, 2)], gpu: ([a, b]) => T.matmul(a, b), ref: ([a, b]) => ref.matmul(a, b), grad: true });
  }
  // The values and gradient shapes themselves (checkOp compares against the reference, which could share a mistake).
  await T.initGpu();
  const a = T.param(T.Tensor.from(new Float32Array(0), [3, 0])), b = T.param(T.Tensor.from(new Float32Array(0), [0, 4]));
  const y = T.matmul(a, b);
  assert.deepEqual([y.shape, [...(await y.data())]], [[3, 4], new Array(12).fill(0)]);
  y.sum().backward();
  assert.deepEqual([a.grad!.shape, b.grad!.shape], [[3, 0], [0, 4]]);
  const w = T.param(T.Tensor.from([1, 2, 3, 4, 5, 6], [3, 2]));
  const e = T.matmul(T.Tensor.from(new Float32Array(0), [0, 3]), w);
  assert.deepEqual([e.shape, e.size], [[0, 2], 0]);
  e.sum().backward();
  assert.deepEqual([...(await w.grad!.data())], [0, 0, 0, 0, 0, 0], 'no rows: zero gradient for the weight');
  [a, b, y, w, e].forEach((t) => { t.grad?.dispose(); t.dispose(); });
});

test('matmul op: shape errors name both shapes', async () => {
  await T.initGpu();
  const a = T.Tensor.from(new Float32Array(6), [2, 3]), b = T.Tensor.from(new Float32Array(20), [4, 5]);
  assert.throws(() => T.matmul(a, b), /matmul: inner dims differ: \[2,3\] @ \[4,5\] \(3 vs 4\)/);
  const c = T.Tensor.from(new Float32Array(2 * 3 * 4), [2, 3, 4]), d = T.Tensor.from(new Float32Array(3 * 4 * 5), [3, 4, 5]);
  assert.throws(() => T.matmul(c, d), /matmul.*\[2\].*\[3\]/);
  [a, b, c, d].forEach((t) => t.dispose());
});

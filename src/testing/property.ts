// Property-test helpers shared by nla's own kernel tests and by users' custom ops: run an op on
// the GPU and on its float64 reference, compare forward values, and compare autograd gradients
// with central finite differences of the float64 reference (the reference gradient).
import fc from 'fast-check';
import { Nd } from '../tensor/reference/nd.js';
import type { DType } from '../tensor/dtype.js';
import { fmt } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { tidy } from '../tensor/scope.js';
import { initGpu } from '../tensor/device.js';
import '../tensor/methods.js';
import { rng } from '../util/rng.js';
import { fcRuns } from './runs.js';

export { Nd };

export { rng, fcRuns };

/** A float64 array of uniform values in [lo, hi), rounded to f32 so GPU and reference see the same inputs. */
export function randomNd(shape: number[], seed: number, lo = -1, hi = 1): Nd {
  const r = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return new Nd(shape, Float64Array.from({ length: n }, () => Math.fround(lo + (hi - lo) * r())));
}

export function randomInts(shape: number[], seed: number, lo: number, hiExclusive: number): Nd {
  const r = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return new Nd(shape, Float64Array.from({ length: n }, () => lo + Math.floor(r() * (hiExclusive - lo))));
}

/** Shapes with odd sizes (never only tile multiples) and size-1 dims. */
export function arbShape(opts: { minRank?: number; maxRank?: number; maxDim?: number } = {}): fc.Arbitrary<number[]> {
  const { minRank = 1, maxRank = 3, maxDim = 9 } = opts;
  return fc.array(fc.integer({ min: 1, max: maxDim }), { minLength: minRank, maxLength: maxRank });
}

/** Two shapes that broadcast together: the second drops leading dims and sets some to 1. */
export function arbBroadcastPair(opts: { maxRank?: number; maxDim?: number } = {}): fc.Arbitrary<[number[], number[]]> {
  return arbShape({ minRank: 1, maxRank: opts.maxRank ?? 3, maxDim: opts.maxDim ?? 7 }).chain((a) =>
    fc.tuple(fc.constant(a), fc.integer({ min: 0, max: a.length - 1 }), fc.array(fc.boolean(), { minLength: a.length, maxLength: a.length })).map(
      ([s, drop, ones]) => [s, s.slice(drop).map((d, i) => (ones[i + drop] ? 1 : d))] as [number[], number[]],
    ),
  );
}

export interface CheckSpec {
  name: string;
  inputs: Nd[];
  /** Storage dtype per input (default f32). i32 inputs never get gradients. */
  dtypes?: DType[];
  gpu: (xs: Tensor[]) => Tensor;
  ref: (xs: Nd[]) => Nd;
  atol?: number;
  rtol?: number;
  /** Inputs whose gradient to check (true: every f32 input). */
  grad?: boolean | number[];
  gradAtol?: number;
  gradRtol?: number;
  fdEps?: number;
  /** Finite differences on at most this many coordinates per input (sampled). */
  maxFdCoords?: number;
  seed?: number;
}

function close(a: number, b: number, atol: number, rtol: number): boolean {
  if (Number.isNaN(b)) return Number.isNaN(a);
  if (!Number.isFinite(b)) return a === b;
  return Math.abs(a - b) <= atol + rtol * Math.abs(b);
}

function compare(what: string, got: ArrayLike<number>, want: Nd, atol: number, rtol: number): void {
  if (got.length !== want.size) throw new Error(`${what}: got ${got.length} values, reference has ${want.size} (shape ${fmt(want.shape)})`);
  for (let i = 0; i < want.size; i++) {
    if (!close(got[i], want.data[i], atol, rtol)) {
      throw new Error(`${what}: element ${i} of ${fmt(want.shape)}: got ${got[i]}, reference ${want.data[i]} (atol ${atol}, rtol ${rtol})`);
    }
  }
}

const dot = (a: Nd, b: Nd) => a.data.reduce((s, v, i) => s + v * b.data[i], 0);

/** Check an op's forward against its reference and, if asked, its gradient against finite differences. */
export async function checkOp(spec: CheckSpec): Promise<void> {
  await initGpu();
  const { atol = 1e-5, rtol = 1e-4, gradAtol = 2e-3, gradRtol = 2e-3, fdEps = 1e-3, maxFdCoords = 24, seed = 1 } = spec;
  const dtypes = spec.dtypes ?? spec.inputs.map(() => 'f32' as DType);
  const shapes = spec.inputs.map((x) => fmt(x.shape)).join(', ');
  const label = `${spec.name}(${shapes})`;
  const gradIdx = spec.grad === true ? spec.inputs.map((_, i) => i).filter((i) => dtypes[i] !== 'i32') : spec.grad || [];
  const want = spec.ref(spec.inputs);
  const R = randomNd(want.shape, seed + 99);
  const { out, grads } = await (async () => {
    const xs = tidy(() => spec.inputs.map((x, i) => Tensor.from(x.data, x.shape, dtypes[i])));
    xs.forEach((x, i) => (x.requiresGrad = gradIdx.includes(i)));
    try {
      const y = spec.gpu(xs);
      if (y.dtype !== 'f32' && y.dtype !== 'i32') throw new Error(`${label}: output dtype ${y.dtype}`);
      if (fmt(y.shape) !== fmt(want.shape)) throw new Error(`${label}: output shape ${fmt(y.shape)}, reference ${fmt(want.shape)}`);
      const out = await y.data();
      let grads: (Float32Array | Int32Array)[] = [];
      if (gradIdx.length) {
        if (!y.requiresGrad) throw new Error(`${label}: output does not require grad`);
        const seedT = Tensor.from(Float32Array.from(R.data), R.shape);
        y.backward(seedT);
        seedT.dispose();
        grads = await Promise.all(gradIdx.map((i) => xs[i].grad!.data()));
      }
      y.dispose();
      return { out, grads };
    } finally {
      for (const x of xs) {
        x.grad?.dispose();
        x.dispose();
      }
    }
  })();
  compare(`${label} forward`, out, want, atol, rtol);
  gradIdx.forEach((i, gi) => {
    const x = spec.inputs[i];
    const r = rng(seed + 7 * i);
    const n = x.size;
    const coords = n <= maxFdCoords ? [...Array(n).keys()] : Array.from({ length: maxFdCoords }, () => Math.floor(r() * n));
    for (const j of coords) {
      const plus = spec.inputs.map((v) => v.clone());
      const minus = spec.inputs.map((v) => v.clone());
      plus[i].data[j] += fdEps;
      minus[i].data[j] -= fdEps;
      const fd = (dot(spec.ref(plus), R) - dot(spec.ref(minus), R)) / (2 * fdEps);
      const got = grads[gi][j];
      if (!close(got, fd, gradAtol, gradRtol)) {
        throw new Error(`${label} gradient wrt input ${i}, element ${j}: autograd ${got}, finite differences of the float64 reference ${fd}`);
      }
    }
  });
}

/**
 * fast-check runner with nla's defaults: a fixed seed (override with FC_SEED) and few runs (each
 * run compiles/reads back on the GPU): numRuns (default 25) scaled by FC_RUNS (see fcRuns).
 */
export async function property<T>(arb: fc.Arbitrary<T>, fn: (v: T) => Promise<void>, opts: { numRuns?: number } = {}): Promise<void> {
  const seed = process.env.FC_SEED ? Number(process.env.FC_SEED) : 42;
  await fc.assert(fc.asyncProperty(arb, fn), { numRuns: fcRuns(opts.numRuns ?? 25), seed, endOnFailure: true });
}

// References for the core op families: elementwise, reductions, matmul, views.
import { broadcastMap, Nd, reduceAxes, unravel } from './nd.js';
import { contiguousStrides, numel } from '../shape.js';

const erf = (x: number): number => {
  // High-precision erf (series / continued fraction) for the float64 reference.
  const t = Math.abs(x);
  if (t < 3) {
    let sum = t, term = t, k = 0;
    while (Math.abs(term) > 1e-17 * Math.abs(sum)) {
      k++;
      term *= (-t * t) / k;
      sum += term / (2 * k + 1);
      if (k > 200) break;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc continued fraction for large |x|.
  let f = 0;
  for (let n = 60; n >= 1; n--) f = n / 2 / (t + f);
  return Math.sign(x) * (1 - Math.exp(-t * t) / Math.sqrt(Math.PI) / (t + f));
};
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const GC = Math.sqrt(2 / Math.PI);

export const unaryRef: Record<string, (x: number) => number> = {
  neg: (x) => -x,
  exp: Math.exp,
  log: Math.log,
  sqrt: Math.sqrt,
  rsqrt: (x) => 1 / Math.sqrt(x),
  tanh: Math.tanh,
  sigmoid,
  relu: (x) => Math.max(x, 0),
  geluTanh: (x) => 0.5 * x * (1 + Math.tanh(GC * (x + 0.044715 * x ** 3))),
  gelu: (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
  silu: (x) => x * sigmoid(x),
  abs: Math.abs,
  square: (x) => x * x,
};

export const binaryRef: Record<string, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  pow: (a, b) => a ** b,
  maximum: Math.max,
  minimum: Math.min,
  lt: (a, b) => +(a < b),
  le: (a, b) => +(a <= b),
  gt: (a, b) => +(a > b),
  ge: (a, b) => +(a >= b),
  eq: (a, b) => +(a === b),
  ne: (a, b) => +(a !== b),
};

export const unary = (name: string, x: Nd) => x.map(unaryRef[name]);
export const binary = (name: string, a: Nd, b: Nd) => broadcastMap([a, b], binaryRef[name]);
export const where = (c: Nd, a: Nd, b: Nd) => broadcastMap([c, a, b], (cv, av, bv) => (cv !== 0 ? av : bv));
export const clamp = (x: Nd, lo: number, hi: number) => x.map((v) => Math.min(Math.max(v, lo), hi));

function squeezeAxes(r: Nd, axes: number[], keepdims: boolean): Nd {
  return keepdims ? r : r.reshape(r.shape.filter((_, i) => !axes.includes(i)));
}
export const sum = (x: Nd, axes: number[], keepdims = false) => squeezeAxes(reduceAxes(x, axes, 0, (a, v) => a + v), axes, keepdims);
export const mean = (x: Nd, axes: number[], keepdims = false) => squeezeAxes(reduceAxes(x, axes, 0, (a, v) => a + v, (a, n) => a / n), axes, keepdims);
export const max = (x: Nd, axes: number[], keepdims = false) => squeezeAxes(reduceAxes(x, axes, -Infinity, Math.max), axes, keepdims);
export const min = (x: Nd, axes: number[], keepdims = false) => squeezeAxes(reduceAxes(x, axes, Infinity, Math.min), axes, keepdims);
export function logsumexp(x: Nd, axes: number[], keepdims = false): Nd {
  const m = reduceAxes(x, axes, -Infinity, Math.max);
  const e = broadcastMap([x, m], (v, mv) => Math.exp(v - mv));
  const s = reduceAxes(e, axes, 0, (a, v) => a + v);
  return squeezeAxes(broadcastMap([s, m], (sv, mv) => mv + Math.log(sv)), axes, keepdims);
}
export function variance(x: Nd, axes: number[], keepdims = false, correction = 0): Nd {
  const mu = reduceAxes(x, axes, 0, (a, v) => a + v, (a, n) => a / n);
  const d2 = broadcastMap([x, mu], (v, m) => (v - m) ** 2);
  return squeezeAxes(reduceAxes(d2, axes, 0, (a, v) => a + v, (a, n) => a / Math.max(n - correction, 1)), axes, keepdims);
}

/** Batched matmul with broadcast batch dims. */
export function matmul(a: Nd, b: Nd): Nd {
  const [m, k] = a.shape.slice(-2), n = b.shape[b.rank - 1];
  const ba = a.shape.slice(0, -2), bb = b.shape.slice(0, -2);
  const rank = Math.max(ba.length, bb.length);
  const batch = new Array<number>(rank).fill(1).map((_, i) => {
    const x = ba[i - (rank - ba.length)] ?? 1, y = bb[i - (rank - bb.length)] ?? 1;
    // A size-1 dim takes the other's size, 0 included (max would make 1 vs 0 one batch, not none).
    return x === 1 ? y : x;
  });
  const out = new Nd([...batch, m, n]);
  const nb = numel(batch);
  const bIdx = (shape: number[], c: number[]) => {
    let o = 0;
    const st = contiguousStrides(shape);
    for (let i = 0; i < shape.length; i++) o += (shape[i] === 1 ? 0 : c[rank - shape.length + i]) * st[i];
    return o;
  };
  for (let bi = 0; bi < nb; bi++) {
    const c = unravel(bi, batch);
    const ao = bIdx(ba, c) * m * k, bo = bIdx(bb, c) * k * n, oo = bi * m * n;
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += a.data[ao + i * k + p] * b.data[bo + p * n + j];
        out.data[oo + i * n + j] = s;
      }
  }
  return out;
}

export function permute(x: Nd, perm: number[]): Nd {
  const shape = perm.map((p) => x.shape[p]);
  const out = new Nd(shape);
  for (let i = 0; i < out.size; i++) {
    const c = unravel(i, shape);
    const src = new Array<number>(x.rank);
    perm.forEach((p, k) => (src[p] = c[k]));
    out.data[i] = x.data[x.index(src)];
  }
  return out;
}

export const transpose = (x: Nd) => permute(x, [...x.shape.keys()].map((i, _, a) => (i === a.length - 2 ? a.length - 1 : i === a.length - 1 ? a.length - 2 : i)));

export function slice(x: Nd, axis: number, start: number, end: number): Nd {
  const shape = [...x.shape];
  shape[axis] = end - start;
  const out = new Nd(shape);
  for (let i = 0; i < out.size; i++) {
    const c = unravel(i, shape);
    c[axis] += start;
    out.data[i] = x.data[x.index(c)];
  }
  return out;
}

export function concat(xs: Nd[], axis: number): Nd {
  const shape = [...xs[0].shape];
  shape[axis] = xs.reduce((s, x) => s + x.shape[axis], 0);
  const out = new Nd(shape);
  for (let i = 0; i < out.size; i++) {
    const c = unravel(i, shape);
    let k = 0, a = c[axis];
    while (a >= xs[k].shape[axis]) a -= xs[k++].shape[axis];
    c[axis] = a;
    out.data[i] = xs[k].data[xs[k].index(c)];
  }
  return out;
}

export function expand(x: Nd, shape: number[]): Nd {
  return broadcastMap([x, Nd.fill(shape, 0)], (v) => v);
}

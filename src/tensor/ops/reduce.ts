// Reductions over any set of axes: sum, mean, max, min, logsumexp, var.
import { colSumKernel, rowReduceKernel, ROW_WG, type ReduceOp } from '../../kernels/reduce.js';
import { Uniforms } from '../../kernels/uniforms.js';
import { withGrad } from '../autograd.js';
import { bindingLimit, offsetAlign, rowSplit, type Binding } from '../binding.js';
import { BYTES } from '../dtype.js';
import { dispatch, grid } from '../runtime.js';
import { axisOf, fmt, numel, sameShape, type Shape } from '../shape.js';
import { Tensor } from '../tensor.js';
import { contiguous, copyInto } from './copy.js';
import { add, affine, launchElementwise, mul, sub } from './elementwise.js';
import { rowsOf } from './softmax.js';
import { concat, expand, permute, reshape, slice } from './view.js';
import { isMulti, multiError, rowPieceRanges, rowsView } from '../pieces.js';

export type Axes = number | number[] | undefined;

function normAxes(op: string, x: Tensor, axes: Axes): number[] {
  if (axes === undefined) return x.shape.map((_, i) => i);
  const list = (Array.isArray(axes) ? axes : [axes]).map((a) => axisOf(op, a, x.rank));
  if (new Set(list).size !== list.length) throw new Error(`${op}: repeated axis in ${JSON.stringify(axes)}`);
  return list.sort((a, b) => a - b);
}

function keptShape(x: Tensor, axes: number[]): number[] {
  return x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

// Rows per chunk of a column sum: a chunk per workgroup row keeps both cores busy on tall, wide
// blocks (a probe's [20,400, 513] logits: 35 ms in one pass of 9 workgroups, 18 ms in chunks,
// per NLA_PROFILE); under CHUNKED_FROM elements one pass is cheaper than a second dispatch.
const COL_CHUNK = 256;
const CHUNKED_FROM = 1 << 18;

/** Rows per chunk and chunks of a tall column sum: 256 rows, more when 65,535 workgroup rows (the dispatch limit) would not cover n. */
export function colSumChunks(n: number): { chunk: number; k: number } {
  const chunk = Math.max(COL_CHUNK, Math.ceil(n / 65535));
  return { chunk, k: Math.ceil(n / chunk) };
}

/** out[cols] = the column sums of the dense [n, cols] block at `offset` of `buf` (two passes when n is tall). */
function colSums(dtype: Tensor['dtype'], buf: Binding, offset: number, n: number, cols: number, out: Tensor): void {
  const groups = Math.ceil(cols / 64);
  if (n <= 2 * COL_CHUNK || n * cols < CHUNKED_FROM) {
    const u = new Uniforms(4).set(0, n).set(1, cols).set(2, offset).set(3, Math.max(n, 1));
    dispatch({ ...colSumKernel(dtype), buffers: [buf, out.buffer], uniforms: u.u32, workgroups: [groups] });
    return;
  }
  const { chunk, k } = colSumChunks(n);
  const part = Tensor.empty([k, cols], 'f32');
  const u = new Uniforms(4).set(0, n).set(1, cols).set(2, offset).set(3, chunk);
  dispatch({ ...colSumKernel(dtype), buffers: [buf, part.buffer], uniforms: u.u32, workgroups: [groups, k] });
  const u2 = new Uniforms(4).set(0, k).set(1, cols).set(2, 0).set(3, k);
  dispatch({ ...colSumKernel('f32'), buffers: [part.buffer, out.buffer], uniforms: u2.u32, workgroups: [groups] });
  part.dispose();
}

/** Raw reduction without autograd; returns the keepdims shape. */
function reduceRaw(op: ReduceOp, x: Tensor, axes: number[]): Tensor {
  x.assertAlive(op);
  const outShape = keptShape(x, axes);
  const kept = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const rows = numel(kept.map((i) => x.shape[i]));
  const n = numel(axes.map((i) => x.shape[i]));
  if (n === 0 && op !== 'sum') throw new Error(`${op}: reducing an empty axis of ${fmt(x.shape)}`);
  if (isMulti(x) && rows * n > 0) return reduceOverPieces(op, x, axes);
  const out = Tensor.empty(outShape, 'f32');
  if (rows === 0) return out;
  const leading = axes.every((a, i) => a === i);
  const trailing = axes.every((a, i) => a === x.rank - axes.length + i);
  if (op === 'sum' && leading && x.isContiguous && rows > 1) {
    // Column sums of [n, rows]; beyond one binding, per chunk of the n leading rows, then added.
    let acc: Tensor | undefined;
    for (const c of rowSplit('sum', n, [rowsOf(x, rows)])) {
      const part = acc ? Tensor.empty(outShape, 'f32') : out;
      colSums(x.dtype, c.bindings[0], c.offsets[0], c.hi - c.lo, rows, part);
      if (acc) {
        const s = add(acc, part);
        if (acc !== out) acc.dispose();
        part.dispose();
        acc = s;
      } else acc = out;
    }
    if (acc !== out) out.dispose();
    return acc!;
  }
  let src = x;
  if (!(trailing && x.isContiguous)) src = contiguous(permute(x, [...kept, ...axes]));
  const rowBytes = n * BYTES[src.dtype];
  if (rowBytes > bindingLimit() - offsetAlign()) {
    // One reduced row is beyond a binding (the sum of a whole big tensor): reduce column ranges
    // to partials [rows, k], then the partials (sum, max, min and logsumexp all compose so).
    out.dispose();
    const flat = reshape(src, [rows, n]);
    const width = Math.floor((bindingLimit() - 2 * offsetAlign()) / BYTES[src.dtype]);
    const k = Math.ceil(n / width);
    const parts = Tensor.empty([rows, k], 'f32');
    for (let j = 0; j < k; j++) {
      const cols = slice(flat, 1, j * width, Math.min(n, (j + 1) * width));
      const dense = contiguous(cols);
      const p = reduceRaw(op, dense, [1]);
      const dst = slice(parts, 1, j, j + 1);
      copyInto(dst, p);
      for (const t of [cols, dense, p, dst]) t.dispose();
    }
    flat.dispose();
    if (src !== x) src.dispose();
    const r = reduceRaw(op, parts, [1]);
    parts.dispose();
    const shaped = reshape(r, outShape);
    r.dispose();
    return shaped;
  }
  // Rows beyond one binding go a chunk of whole rows at a time.
  for (const c of rowSplit(op, rows, [rowsOf(src, n), rowsOf(out, 1)])) {
    const u = new Uniforms(4).set(0, c.hi - c.lo).set(1, n).set(2, c.offsets[0]).set(3, c.offsets[1]);
    dispatch({ ...rowReduceKernel(op, src.dtype), buffers: c.bindings, uniforms: u.u32, workgroups: grid(c.hi - c.lo) });
  }
  if (src !== x) src.dispose();
  void ROW_WG;
  return out;
}

/**
 * x in several buffers (pieces.ts): each range of rows (axis 0) inside one buffer is reduced on
 * its own. Reduced along axis 0, the partials combine by the same op (sum, max, min and
 * logsumexp all compose so); otherwise they are the output's rows.
 */
function reduceOverPieces(op: ReduceOp, x: Tensor, axes: number[]): Tensor {
  const parts = rowPieceRanges([x], x.shape[0]).map(([lo, hi]) => {
    const v = rowsView(x, lo, hi);
    try {
      if (isMulti(v)) throw multiError(`${op} (rows of a strided view across pieces)`, v);
      return reduceRaw(op, v, axes);
    } finally {
      v.dispose();
    }
  });
  const all = parts.length === 1 ? parts[0] : concat(parts, 0);
  if (all !== parts[0]) for (const p of parts) p.dispose();
  if (!axes.includes(0) || all.shape[0] === 1) return all;
  const r = reduceRaw(op, all, [0]);
  all.dispose();
  return r;
}

function finish(y: Tensor, x: Tensor, axes: number[], keepdims: boolean): Tensor {
  return keepdims ? y : reshape(y, x.shape.filter((_, i) => !axes.includes(i)));
}

export function sum(x: Tensor, axes?: Axes, keepdims = false): Tensor {
  const ax = normAxes('sum', x, axes);
  const y = withGrad('sum', reduceRaw('sum', x, ax), [x], (g) => [expand(g, x.shape)]);
  return finish(y, x, ax, keepdims);
}

export function mean(x: Tensor, axes?: Axes, keepdims = false): Tensor {
  const ax = normAxes('mean', x, axes);
  const n = numel(ax.map((i) => x.shape[i]));
  return affine(sum(x, ax, keepdims), 1 / Math.max(n, 1));
}

function extremum(op: 'max' | 'min', x: Tensor, axes: Axes, keepdims: boolean): Tensor {
  const ax = normAxes(op, x, axes);
  const r = reduceRaw(op, x, ax);
  const y = withGrad(op, r, [x], (g) => [launchElementwise(`${op}_grad`, 'select(0.0, x0, x1 == x2)', [g, x, r], 'f32', [], [...x.shape])]);
  return finish(y, x, ax, keepdims);
}
export const max = (x: Tensor, axes?: Axes, keepdims = false) => extremum('max', x, axes, keepdims);
export const min = (x: Tensor, axes?: Axes, keepdims = false) => extremum('min', x, axes, keepdims);

export function logsumexp(x: Tensor, axes?: Axes, keepdims = false): Tensor {
  const ax = normAxes('logsumexp', x, axes);
  const r = reduceRaw('lse', x, ax);
  const y = withGrad('logsumexp', r, [x], (g) => [launchElementwise('lse_grad', 'x0 * exp(x1 - x2)', [g, x, r], 'f32', [], [...x.shape])]);
  return finish(y, x, ax, keepdims);
}

/** Population variance (divide by n), or unbiased with correction=1. */
export function variance(x: Tensor, axes?: Axes, keepdims = false, correction = 0): Tensor {
  const ax = normAxes('var', x, axes);
  const n = numel(ax.map((i) => x.shape[i]));
  const d = sub(x, mean(x, ax, true));
  const s = sum(mul(d, d), ax, keepdims);
  return affine(s, 1 / Math.max(n - correction, 1));
}

/** Sum a broadcast gradient back down to `shape` (the inverse of broadcasting). */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.rank - shape.length;
  if (lead < 0) throw new Error(`sumTo: cannot reduce ${fmt(g.shape)} to higher rank ${fmt(shape)}`);
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  const s = axes.length ? sum(g, axes, true) : g;
  return reshape(s, shape);
}

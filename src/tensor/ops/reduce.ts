// Reductions over any set of axes: sum, mean, max, min, logsumexp, var.
import { colSumKernel, rowReduceKernel, ROW_WG, type ReduceOp } from '../../kernels/reduce.js';
import { Uniforms } from '../../kernels/uniforms.js';
import { withGrad } from '../autograd.js';
import { bindElements, type Binding } from '../binding.js';
import { BYTES } from '../dtype.js';
import { dispatch, grid } from '../runtime.js';
import { axisOf, fmt, numel, sameShape, type Shape } from '../shape.js';
import { Tensor } from '../tensor.js';
import { contiguous } from './copy.js';
import { affine, launchElementwise, mul, sub } from './elementwise.js';
import { expand, permute, reshape } from './view.js';

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

/** Raw reduction without autograd; returns the keepdims shape. */
function reduceRaw(op: ReduceOp, x: Tensor, axes: number[]): Tensor {
  x.assertAlive(op);
  const outShape = keptShape(x, axes);
  const kept = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const rows = numel(kept.map((i) => x.shape[i]));
  const n = numel(axes.map((i) => x.shape[i]));
  if (n === 0 && op !== 'sum') throw new Error(`${op}: reducing an empty axis of ${fmt(x.shape)}`);
  const out = Tensor.empty(outShape, 'f32');
  if (rows === 0) return out;
  const leading = axes.every((a, i) => a === i);
  const trailing = axes.every((a, i) => a === x.rank - axes.length + i);
  const u = new Uniforms(4);
  // A view into a tensor bigger than one binding binds just the range it covers.
  const bind = (t: Tensor): { b: Binding; offset: number } => {
    const r = bindElements(t.buffer, BYTES[t.dtype], t.offset, t.offset + rows * n);
    return r ? { b: r.binding, offset: t.offset - r.base } : { b: t.buffer, offset: t.offset };
  };
  if (op === 'sum' && leading && x.isContiguous && rows > 1) {
    const s = bind(x);
    u.set(0, n).set(1, rows).set(2, s.offset);
    dispatch({ ...colSumKernel(x.dtype), buffers: [s.b, out.buffer], uniforms: u.u32, workgroups: [Math.ceil(rows / 64)] });
    return out;
  }
  let src = x;
  if (!(trailing && x.isContiguous)) src = contiguous(permute(x, [...kept, ...axes]));
  const s = bind(src);
  u.set(0, rows).set(1, n).set(2, s.offset);
  dispatch({ ...rowReduceKernel(op, src.dtype), buffers: [s.b, out.buffer], uniforms: u.u32, workgroups: grid(rows) });
  if (src !== x) src.dispose();
  void ROW_WG;
  return out;
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

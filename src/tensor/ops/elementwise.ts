// Elementwise ops with broadcasting, each gradient rule beside its op.
import { elementwiseKernel, ewLayout, ewTuning, EW_WG, odoKernel, odoUniforms, planElementwise, type EwStream } from '../../kernels/elementwise.js';
import { Uniforms } from '../../kernels/uniforms.js';
import { bindElements, bindingLimit, boundBytes, spanOf, type Binding } from '../binding.js';
import { gpu } from '../device.js';
import { BYTES, type DType } from '../dtype.js';
import { dispatch, grid } from '../runtime.js';
import { broadcastShapes, numel } from '../shape.js';
import { Tensor } from '../tensor.js';
import { withGrad } from '../autograd.js';
import { isMulti, rowPieceRanges, rowsView } from '../pieces.js';
import { sumTo } from './reduce.js';

export type Scalar = number;
type P = [number?, number?, number?];

/** Broadcast strides of t against `shape`: aligned right, 0 where t has size 1 or lacks the dim. */
export function broadcastStream(t: Tensor, shape: readonly number[]): EwStream {
  const rank = shape.length;
  const st = new Array<number>(rank).fill(0);
  for (let i = 0; i < t.rank; i++) {
    const j = rank - t.rank + i;
    st[j] = t.shape[i] === 1 && shape[j] !== 1 ? 0 : t.strides[i];
  }
  return { strides: st, offset: t.offset, dtype: t.dtype };
}

/**
 * Dispatch an elementwise kernel writing `out` (dense when outStream is undefined, else the
 * strided view described by outStream) from input streams over `shape`. `family` names the
 * kernel in profiles ('ew', 'copy').
 */
export function dispatchElementwise(
  family: string, expr: string, inputs: { buffer: Binding; stream: EwStream }[], out: { buffer: Binding; dtype: DType; stream?: EwStream },
  shape: readonly number[], params: P = [],
): void {
  const n = numel(shape);
  if (n === 0) return;
  if ([...inputs, out].some((s) => boundBytes(s.buffer) > bindingLimit())) return dispatchInRanges(family, expr, inputs, out, shape, params);
  const variant = ewTuning.force ?? (gpu().info.isSoftware ? 'odo' : 'flat');
  const streams = inputs.map((i) => i.stream);
  // bf16 inputs (two to a packed word) are read one element at a time; a bf16 output is refused by storage().
  const plan = planElementwise(shape, streams, out.stream, ewTuning.vec && !streams.some((st) => st.dtype === 'bf16'));
  const dts = streams.map((s) => s.dtype);
  const buffers = [...inputs.map((i) => i.buffer), out.buffer];
  if (variant === 'odo' || out.stream) {
    // Strided outputs (copyInto) always take the odometer kernel.
    const per = plan.vec === 4 ? ewTuning.per4 : ewTuning.per1;
    const u = odoUniforms(plan, params);
    const k = odoKernel(expr, dts, out.dtype, plan, per, family);
    dispatch({ ...k, buffers, uniforms: u, workgroups: grid(Math.ceil(u[0] / per / EW_WG)) });
    return;
  }
  const rank = plan.shape.length;
  const linear = rank === 1 && plan.strides.every((s) => s[0] === 1);
  const L = ewLayout(rank, inputs.length);
  const u = new Uniforms(L.words);
  u.set(0, n);
  params.forEach((p, i) => u.setF(1 + i, p ?? 0));
  u.setAll(L.shape, plan.shape);
  plan.strides.forEach((st, k) => u.setAll(L.input(k), st).set(L.input(k) + rank, plan.offsets[k]));
  const k = elementwiseKernel(expr, dts, out.dtype, rank, linear);
  dispatch({ ...k, buffers, uniforms: u.u32, workgroups: grid(Math.ceil(n / EW_WG)) });
}

/**
 * An elementwise launch over a tensor bigger than one binding: every stream is bound as the
 * range it touches; when one range is still too big, the work is halved along its outermost
 * dimension (each half touches a part of every stream), recursively.
 */
function dispatchInRanges(
  family: string, expr: string, inputs: { buffer: Binding; stream: EwStream }[], out: { buffer: Binding; dtype: DType; stream?: EwStream },
  shape: readonly number[], params: P,
): void {
  const dense: number[] = [];
  for (let d = shape.length - 1, acc = 1; d >= 0; d--) { dense[d] = acc; acc *= shape[d]; }
  const all = [...inputs, { buffer: out.buffer, stream: out.stream ?? { strides: dense, offset: 0, dtype: out.dtype } }];
  const bound = all.map(({ buffer, stream }) => {
    if ('buffer' in buffer) throw new Error(`elementwise: a stream is already a range binding (${family} ${expr})`);
    const [s, e] = spanOf(shape, stream.strides, stream.offset);
    const b = bindElements(buffer, BYTES[stream.dtype], s, e);
    return b && { buffer: b.binding, stream: { ...stream, offset: stream.offset - b.base } };
  });
  if (bound.every((b) => b !== undefined)) {
    const o = bound.pop()!;
    return dispatchElementwise(family, expr, bound as { buffer: Binding; stream: EwStream }[], { buffer: o.buffer, dtype: out.dtype, stream: o.stream }, shape, params);
  }
  // Halve the dimension that spans the most elements in some stream (a transpose's input spans
  // its whole buffer along the inner output dimension: halving the outer one first would go
  // down to single elements).
  const reach = shape.map((x, i) => (x - 1) * Math.max(...all.map((t) => Math.abs(t.stream.strides[i] ?? 0))));
  const d = reach.indexOf(Math.max(...reach));
  if (shape[d] <= 1) throw new Error(`elementwise ${family} "${expr}": one element does not fit one binding`);
  const h = Math.floor(shape[d] / 2);
  for (const [start, len] of [[0, h], [h, shape[d] - h]]) {
    const part = shape.map((x, i) => (i === d ? len : x));
    const shift = (st: EwStream) => ({ ...st, offset: st.offset + start * st.strides[d] });
    dispatchInRanges(family, expr, all.slice(0, -1).map((i) => ({ buffer: i.buffer, stream: shift(i.stream) })), { buffer: out.buffer, dtype: out.dtype, stream: shift(all[all.length - 1].stream) }, part, params);
  }
}

/**
 * Launch an elementwise kernel over already-broadcast-compatible inputs. The output lives in
 * pieces (pieces.ts) when it is above the buffer limit and an input does, or an input is an
 * expanded view of its whole shape, or `pieces` asks (zeros for a parameter in pieces, casts).
 */
export function launchElementwise(op: string, expr: string, inputs: Tensor[], outDtype: DType = 'f32', params: P = [], outShape?: number[], pieces = false): Tensor {
  for (const t of inputs) t.assertAlive(op);
  const shape = outShape ?? broadcastShapes(op, ...inputs.map((t) => t.shape));
  const multi = inputs.some(isMulti);
  // An expanded view of the output's whole shape (a reduction's gradient over a tensor in pieces)
  // commits to that size already: its result may live in pieces as well.
  const expanded = inputs.some((t) => t.rank === shape.length && t.shape.every((d, i) => d === shape[i]) && t.strides.some((st, i) => st === 0 && t.shape[i] > 1));
  const out = Tensor.empty(shape, outDtype, op, multi || pieces || expanded);
  if (numel(shape) === 0) return out;
  if (multi || isMulti(out)) {
    launchOverPieces(expr, inputs, out, params);
    return out;
  }
  const ins = inputs.map((t) => ({ buffer: t.buffer, stream: broadcastStream(t, shape) }));
  dispatchElementwise('ew', expr, ins, { buffer: out.buffer, dtype: outDtype }, shape, params);
  return out;
}

/**
 * An elementwise launch with operands in pieces: one launch per range of rows (axis 0) that lies in
 * one buffer of the output and of every input running along axis 0. An input broadcast along axis
 * 0 is read whole, so it cannot be in pieces (its buffer getter refuses it by the op's name).
 */
function launchOverPieces(expr: string, inputs: Tensor[], out: Tensor, params: P): void {
  const shape = out.shape, rows = shape[0];
  const along = inputs.map((t) => t.rank === shape.length && t.shape[0] === rows);
  for (const [lo, hi] of rowPieceRanges([out, ...inputs.filter((_, i) => along[i])], rows)) {
    const part = [hi - lo, ...shape.slice(1)];
    const ins = inputs.map((t, i) => (along[i] ? rowsView(t, lo, hi) : t));
    const o = rowsView(out, lo, hi);
    try {
      const streams = ins.map((t) => ({ buffer: t.buffer, stream: broadcastStream(t, part) }));
      dispatchElementwise('ew', expr, streams, { buffer: o.buffer, dtype: out.dtype, stream: { strides: o.strides, offset: o.offset, dtype: o.dtype } }, part, params);
    } finally {
      ins.forEach((t, i) => t !== inputs[i] && t.dispose());
      o.dispose();
    }
  }
}

// ---- unary ----------------------------------------------------------------------------------

const un = (op: string, expr: string, grad?: (x: Tensor, y: Tensor, g: Tensor) => Tensor) => (x: Tensor): Tensor => {
  const y = launchElementwise(op, expr, [x]);
  return grad ? withGrad(op, y, [x], (g) => [grad(x, y, g)]) : y;
};

export const neg = un('neg', '-x0', (_x, _y, g) => neg(g));
export const exp = un('exp', 'exp(x0)', (_x, y, g) => mul(g, y));
export const log = un('log', 'log(x0)', (x, _y, g) => div(g, x));
export const sqrt = un('sqrt', 'sqrt(x0)', (_x, y, g) => launchElementwise('sqrt_grad', '0.5 * x0 / x1', [g, y]));
export const rsqrt = un('rsqrt', 'inverseSqrt(x0)', (_x, y, g) => launchElementwise('rsqrt_grad', '-0.5 * x0 * x1 * x1 * x1', [g, y]));
export const tanh = un('tanh', 'tanh_(x0)', (_x, y, g) => launchElementwise('tanh_grad', 'x0 * (1.0 - x1 * x1)', [g, y]));
export const sigmoid = un('sigmoid', 'sigmoid_(x0)', (_x, y, g) => launchElementwise('sigmoid_grad', 'x0 * x1 * (1.0 - x1)', [g, y]));
export const relu = un('relu', 'max(x0, 0.0)', (x, _y, g) => launchElementwise('relu_grad', 'select(0.0, x0, x1 > 0.0)', [g, x]));
export const geluTanh = un('gelu_tanh', 'gelu_tanh_(x0)', (x, _y, g) => launchElementwise('gelu_tanh_grad', 'x0 * gelu_tanh_grad_(x1)', [g, x]));
export const gelu = un('gelu_erf', 'gelu_erf_(x0)', (x, _y, g) => launchElementwise('gelu_erf_grad', 'x0 * gelu_erf_grad_(x1)', [g, x]));
export const silu = un('silu', 'x0 * sigmoid_(x0)', (x, _y, g) => launchElementwise('silu_grad', 'x0 * silu_grad_(x1)', [g, x]));
export const abs = un('abs', 'abs(x0)', (x, _y, g) => launchElementwise('abs_grad', 'x0 * sign(x1)', [g, x]));
export const square = un('square', 'x0 * x0', (x, _y, g) => launchElementwise('square_grad', '2.0 * x0 * x1', [g, x]));

export function clamp(x: Tensor, lo: number, hi: number): Tensor {
  if (lo > hi) throw new Error(`clamp: lo ${lo} > hi ${hi}`);
  const y = launchElementwise('clamp', 'clamp(x0, p0, p1)', [x], 'f32', [lo, hi]);
  return withGrad('clamp', y, [x], (g) => [launchElementwise('clamp_grad', 'select(0.0, x0, x1 >= p0 && x1 <= p1)', [g, x], 'f32', [lo, hi])]);
}

/** x * s + b with scalars (one kernel; the workhorse of scalar arithmetic). */
export function affine(x: Tensor, s: number, b = 0): Tensor {
  const y = launchElementwise('affine', 'x0 * p0 + p1', [x], 'f32', [s, b]);
  return withGrad('affine', y, [x], (g) => [s === 1 ? g : launchElementwise('scale', 'x0 * p0', [g], 'f32', [s])]);
}

export function cast(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype) return x.view(x.shape, x.strides, x.offset);
  // A 16-bit weight cast to f32 doubles: beyond the buffer limit, the result lives in pieces (pieces.ts).
  const y = launchElementwise('cast', dtype === 'i32' ? 'round(x0)' : 'x0', [x], dtype, [], undefined, true);
  // bf16 tensors are weights read as they are: no gradient flows back into one.
  return dtype === 'i32' ? y : withGrad('cast', y, [x], (g) => [x.dtype === 'i32' || x.dtype === 'bf16' ? null : cast(g, x.dtype)]);
}

// ---- binary ---------------------------------------------------------------------------------

function bin(op: string, expr: string, scalarExpr: string | undefined, grad: (a: Tensor, b: Tensor, y: Tensor, g: Tensor) => [Tensor | null, Tensor | null]) {
  return (a: Tensor | Scalar, b: Tensor | Scalar): Tensor => {
    if (typeof a === 'number' && typeof b === 'number') throw new Error(`${op}: at least one argument must be a Tensor`);
    if (typeof b === 'number' && scalarExpr) return scalarOp(op, scalarExpr, a as Tensor, b);
    const ta = typeof a === 'number' ? Tensor.scalar(a) : a;
    const tb = typeof b === 'number' ? Tensor.scalar(b) : b;
    const y = launchElementwise(op, expr, [ta, tb]);
    return withGrad(op, y, [ta, tb], (g) => {
      const [ga, gb] = grad(ta, tb, y, g);
      return [ga && sumTo(ga, ta.shape), gb && sumTo(gb, tb.shape)];
    });
  };
}

function scalarOp(op: string, expr: string, a: Tensor, s: number): Tensor {
  switch (op) {
    case 'add': return affine(a, 1, s);
    case 'sub': return affine(a, 1, -s);
    case 'mul': return affine(a, s, 0);
    case 'div': return affine(a, 1 / s, 0);
  }
  const y = launchElementwise(op, expr, [a], 'f32', [s]);
  const rule: Record<string, string> = {
    pow: 'x0 * p0 * pow(x1, p0 - 1.0)',
    maximum: 'select(0.0, x0, x1 >= p0)',
    minimum: 'select(0.0, x0, x1 <= p0)',
  };
  if (!rule[op]) throw new Error(`${op}: no scalar form`);
  return withGrad(op, y, [a], (g) => [launchElementwise(`${op}_scalar_grad`, rule[op], [g, a], 'f32', [s])]);
}

export const add = bin('add', 'x0 + x1', 'x0 + p0', (_a, _b, _y, g) => [g, g]);
export const sub = bin('sub', 'x0 - x1', 'x0 - p0', (_a, _b, _y, g) => [g, neg(g)]);
export const mul = bin('mul', 'x0 * x1', 'x0 * p0', (a, b, _y, g) => [mul(g, b), mul(g, a)]);
export const div = bin('div', 'x0 / x1', 'x0 / p0', (_a, b, y, g) => [div(g, b), launchElementwise('div_grad_b', '-x0 * x1 / x2', [g, y, b])]);
/** a^b; for tensor exponents a must be positive (gradient uses log a). */
export const pow = bin('pow', 'pow(x0, x1)', 'pow(x0, p0)', (a, b, y, g) => [
  launchElementwise('pow_grad_a', 'x0 * x2 * pow(x1, x2 - 1.0)', [g, a, b]),
  launchElementwise('pow_grad_b', 'x0 * x1 * log(x2)', [g, y, a]),
]);
export const maximum = bin('maximum', 'max(x0, x1)', 'max(x0, p0)', (a, b, _y, g) => [
  launchElementwise('max_grad_a', 'select(0.0, x0, x1 >= x2)', [g, a, b]),
  launchElementwise('max_grad_b', 'select(0.0, x0, x1 < x2)', [g, a, b]),
]);
export const minimum = bin('minimum', 'min(x0, x1)', 'min(x0, p0)', (a, b, _y, g) => [
  launchElementwise('min_grad_a', 'select(0.0, x0, x1 <= x2)', [g, a, b]),
  launchElementwise('min_grad_b', 'select(0.0, x0, x1 > x2)', [g, a, b]),
]);

// Comparisons return f32 0/1 masks (usable directly in arithmetic); no gradient.
const cmp = (op: string, sym: string) => (a: Tensor, b: Tensor | Scalar): Tensor =>
  typeof b === 'number' ? launchElementwise(op, `b2f(x0 ${sym} p0)`, [a], 'f32', [b]) : launchElementwise(op, `b2f(x0 ${sym} x1)`, [a, b]);
export const lt = cmp('lt', '<');
export const le = cmp('le', '<=');
export const gt = cmp('gt', '>');
export const ge = cmp('ge', '>=');
export const eq = cmp('eq', '==');
export const ne = cmp('ne', '!=');

/** cond ? a : b, with cond a 0/1 mask (nonzero is true); broadcasts all three. */
export function where(cond: Tensor, a: Tensor | Scalar, b: Tensor | Scalar): Tensor {
  const ta = typeof a === 'number' ? Tensor.scalar(a) : a;
  const tb = typeof b === 'number' ? Tensor.scalar(b) : b;
  const y = launchElementwise('where', 'select(x2, x1, x0 != 0.0)', [cond, ta, tb]);
  return withGrad('where', y, [cond, ta, tb], (g) => [
    null,
    sumTo(launchElementwise('where_grad_a', 'select(0.0, x1, x0 != 0.0)', [cond, g], 'f32', [], broadcastShapes('where', cond.shape, g.shape)), ta.shape),
    sumTo(launchElementwise('where_grad_b', 'select(x1, 0.0, x0 != 0.0)', [cond, g], 'f32', [], broadcastShapes('where', cond.shape, g.shape)), tb.shape),
  ]);
}

// rmsNorm and layerNorm over the last axis, fused forward and backward (kernels/norm.ts).
import { colSumKernel } from '../../kernels/reduce.js';
import { rowLaunch } from '../../kernels/softmax.js';
import { normBackwardDwKernel, normBackwardDxKernel, normForwardKernel, NORM_COL_WG, type NormKind } from '../../kernels/norm.js';
import { Uniforms } from '../../kernels/uniforms.js';
import { withGrad } from '../autograd.js';
import { dispatch, grid } from '../runtime.js';
import { fmt, numel } from '../shape.js';
import { Tensor } from '../tensor.js';
import { denseRows, rowsOf, wholeOf } from './softmax.js';
import { add } from './elementwise.js';
import { rowSplit, type Binding } from '../binding.js';
import { isMulti } from '../pieces.js';
import { overRowPieces } from './row-pieces.js';
import type { DType } from '../dtype.js';

// Row blocks for the dweight partial sums: enough workgroups to keep every core busy, few
// enough that the second (column) pass is short.
const MAX_BLOCKS = 64;

function check(op: string, x: Tensor, w: Tensor, b?: Tensor): void {
  for (const t of [x, w, b]) t?.assertAlive(op);
  if (x.rank < 1) throw new Error(`${op}: input must have a feature axis, got ${fmt(x.shape)}`);
  const D = x.shape[x.rank - 1];
  for (const [name, t] of [['weight', w], ['bias', b]] as const) {
    if (!t) continue;
    if (t.rank !== 1 || t.shape[0] !== D) throw new Error(`${op}: ${name} ${fmt(t.shape)} must be [${D}] for input ${fmt(x.shape)}`);
    if (t.dtype === 'i32') throw new Error(`${op}: ${name} must be floating point, got i32`);
  }
  if (x.dtype === 'i32') throw new Error(`${op}: input ${fmt(x.shape)} must be floating point, got i32`);
  if (D === 0) throw new Error(`${op}: empty feature axis in ${fmt(x.shape)}`);
}

function norm(kind: NormKind, op: string, x: Tensor, w: Tensor, b: Tensor | undefined, eps: number): Tensor {
  check(op, x, w, b);
  // An input in several buffers (pieces.ts): each one-buffer range of rows normalised on its own.
  if (isMulti(x) && x.rank >= 2) return overRowPieces(op, x, (r) => norm(kind, op, r, w, b, eps));
  const D = x.shape[x.rank - 1];
  const rows = numel(x.shape) / D;
  const y = Tensor.empty(x.shape, 'f32');
  if (rows === 0) return y;
  const stats = Tensor.empty([rows, kind === 'rms' ? 1 : 2], 'f32');
  const xs = denseRows(op, x), ws = denseRows(op, w), bs = b && denseRows(op, b);
  if (bs && bs.t.dtype !== ws.t.dtype) throw new Error(`${op}: weight (${ws.t.dtype}) and bias (${bs.t.dtype}) dtypes differ`);
  const S = kind === 'rms' ? 1 : 2; // statistics per row
  // Rows beyond one binding go a chunk of whole rows at a time (the weight and bias read whole).
  for (const c of rowSplit(op, rows, [rowsOf(xs.t, D), wholeOf(ws.t), ...(bs ? [wholeOf(bs.t)] : []), rowsOf(y, D), rowsOf(stats, S)])) {
    const u = new Uniforms(8).set(0, c.hi - c.lo).set(1, D).set(2, c.offsets[0]).set(3, c.offsets[1]).setF(4, eps).set(5, bs ? c.offsets[2] : 0).set(6, c.offsets[bs ? 3 : 2]).set(7, c.offsets[bs ? 4 : 3]);
    const rl = rowLaunch(c.hi - c.lo, D);
    dispatch({ ...normForwardKernel(kind, xs.t.dtype, ws.t.dtype, !!bs, rl.mode), buffers: c.bindings, readOnly: c.bindings.map((_, i) => i < c.bindings.length - 2), uniforms: u.u32, workgroups: rl.workgroups });
  }
  if (bs?.owned) bs.t.dispose();
  const out = withGrad(op, y, b ? [x, w, b] : [x, w], (g) => {
    for (const t of [xs.t, ws.t, stats]) t.assertAlive(`${op} backward (saved tensor disposed)`);
    const gd = denseRows(`${op} backward`, g, true);
    let dx: Tensor | null = null, dw: Tensor | null = null, db: Tensor | null = null;
    if (x.requiresGrad) {
      dx = Tensor.empty(x.shape, 'f32');
      for (const c of rowSplit(`${op} backward`, rows, [rowsOf(xs.t, D), wholeOf(ws.t), rowsOf(gd.t, D), rowsOf(stats, S), rowsOf(dx, D)])) {
        const ub = new Uniforms(8).set(0, c.hi - c.lo).set(1, D).set(2, c.offsets[0]).set(3, c.offsets[1]).set(4, c.offsets[2]).set(5, c.offsets[3]).set(6, c.offsets[4]);
        const rl = rowLaunch(c.hi - c.lo, D);
        dispatch({ ...normBackwardDxKernel(kind, xs.t.dtype, ws.t.dtype, rl.mode), buffers: c.bindings, uniforms: ub.u32, workgroups: rl.workgroups });
      }
    }
    if (w.requiresGrad || b?.requiresGrad) {
      // Per chunk of rows, then the chunks' sums added (one chunk when everything fits a binding).
      for (const c of rowSplit(`${op} backward`, rows, [rowsOf(xs.t, D), rowsOf(gd.t, D), rowsOf(stats, S)])) {
        const [pw, pb] = paramGrads(kind, xs.t.dtype, c.bindings, c.offsets, c.hi - c.lo, D, !!b);
        dw = dw ? addInto(dw, pw) : pw;
        db = db && pb ? addInto(db, pb) : pb;
      }
    }
    if (gd.owned) gd.t.dispose();
    return [dx, dw, db];
  });
  if (!out.requiresGrad) {
    stats.dispose();
    if (xs.owned) xs.t.dispose();
    if (ws.owned) ws.t.dispose();
  }
  return out;
}

/** dweight (and dbias): block partial sums then a column sum over the blocks. */
function paramGrads(kind: NormKind, xDtype: DType, bindings: Binding[], offsets: number[], rows: number, D: number, bias: boolean): [Tensor, Tensor | null] {
  const blocks = Math.min(rows, MAX_BLOCKS);
  const rb = Math.ceil(rows / blocks);
  const nb = Math.ceil(rows / rb);
  const pw = Tensor.empty(nb === 1 ? [D] : [nb, D], 'f32');
  const pb = bias ? Tensor.empty(nb === 1 ? [D] : [nb, D], 'f32') : undefined;
  const u = new Uniforms(8).set(0, rows).set(1, D).set(2, offsets[0]).set(3, offsets[1]).set(4, rb).set(5, offsets[2]);
  dispatch({
    ...normBackwardDwKernel(kind, xDtype, bias),
    buffers: [...bindings, pw.buffer, ...(pb ? [pb.buffer] : [])],
    readOnly: [true, true, true, false, false],
    uniforms: u.u32,
    workgroups: [Math.ceil(D / NORM_COL_WG), nb],
  });
  if (nb === 1) return [pw, pb ?? null];
  const colSum = (p: Tensor): Tensor => {
    const out = Tensor.empty([D], 'f32');
    const uc = new Uniforms(4).set(0, nb).set(1, D).set(2, 0).set(3, nb);
    dispatch({ ...colSumKernel('f32'), buffers: [p.buffer, out.buffer], uniforms: uc.u32, workgroups: [Math.ceil(D / 64)] });
    p.dispose();
    return out;
  };
  return [colSum(pw), pb ? colSum(pb) : null];
}

/** a + b, disposing both (sums of the per-chunk parameter gradients). */
function addInto(a: Tensor, b: Tensor): Tensor {
  const s = add(a, b);
  a.dispose();
  b.dispose();
  return s;
}

/** x * rsqrt(mean(x^2, -1) + eps) * weight; x [..., D], weight [D]. (llama2.c uses eps 1e-5.) */
export function rmsNorm(x: Tensor, weight: Tensor, eps = 1e-5): Tensor {
  return norm('rms', 'rmsNorm', x, weight, undefined, eps);
}

/** (x - mean) * rsqrt(var + eps) * weight + bias over the last axis (biased variance, as PyTorch). */
export function layerNorm(x: Tensor, weight: Tensor, bias?: Tensor, eps = 1e-5): Tensor {
  return norm('layer', 'layerNorm', x, weight, bias, eps);
}

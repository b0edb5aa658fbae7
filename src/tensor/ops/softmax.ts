// softmax / logSoftmax over one axis (fused row kernels; other axes are moved last first).
import { isMulti } from '../pieces.js';
import { overRowPieces } from './row-pieces.js';
import { rowLaunch, softmaxBackwardKernel, softmaxKernel } from '../../kernels/softmax.js';
import { Uniforms } from '../../kernels/uniforms.js';
import { withGrad } from '../autograd.js';
import { rowSplit, type RowOperand } from '../binding.js';
import { BYTES } from '../dtype.js';
import { dispatch, grid } from '../runtime.js';
import { axisOf, fmt, numel } from '../shape.js';
import { Tensor } from '../tensor.js';
import { contiguous } from './copy.js';
import { cast } from './elementwise.js';
import { permute } from './view.js';

/**
 * A dense view of `t` whose rows of the last axis are contiguous (offset may be non-zero),
 * optionally converted to f32. Returns the tensor and whether the caller owns (must dispose) it.
 */
export function denseRows(op: string, t: Tensor, f32 = false): { t: Tensor; owned: boolean } {
  t.assertAlive(op);
  let d = t;
  if (f32 && d.dtype !== 'f32') d = cast(d, 'f32');
  if (!d.isContiguous) {
    const c = contiguous(d);
    if (d !== t) d.dispose();
    d = c;
  }
  return { t: d, owned: d !== t };
}

/** `t`'s rows of `n` elements as an operand of rowSplit (indexed through its offset uniform). */
export const rowsOf = (t: Tensor, n: number): RowOperand => ({ buffer: t.buffer, bytesPer: BYTES[t.dtype], offset: t.offset, rowElems: n });
/** A tensor every row reads in full (a norm's weight). */
export const wholeOf = (t: Tensor): RowOperand => ({ buffer: t.buffer, bytesPer: BYTES[t.dtype], offset: t.offset, whole: t.size });

function rowOp(op: 'softmax' | 'logSoftmax', x: Tensor, axis: number): Tensor {
  x.assertAlive(op);
  if (x.rank === 0) throw new Error(`${op}: needs at least one axis, got a scalar`);
  if (x.dtype === 'i32') throw new Error(`${op}: integer input ${fmt(x.shape)} (cast to f32 first)`);
  const a = axisOf(op, axis, x.rank);
  // An input in several buffers (pieces.ts): each one-buffer range of rows on its own.
  if (isMulti(x) && a > 0) return overRowPieces(op, x, (r) => rowOp(op, r, a));
  if (a !== x.rank - 1) {
    // Move the axis last, run the row kernel, move it back (autograd flows through the permutes).
    const perm = x.shape.map((_, i) => i).filter((i) => i !== a).concat(a);
    const inv = perm.map((_, i) => perm.indexOf(i));
    return permute(rowOp(op, permute(x, perm), -1), inv);
  }
  const log = op === 'logSoftmax';
  const n = x.shape[a];
  const rows = numel(x.shape) / Math.max(n, 1);
  const y = Tensor.empty(x.shape, 'f32');
  if (numel(x.shape) === 0) return y;
  const src = denseRows(op, x);
  // Rows beyond one binding (a [B*T, V] logits tensor) go a chunk of whole rows at a time.
  for (const c of rowSplit(op, rows, [rowsOf(src.t, n), rowsOf(y, n)])) {
    const u = new Uniforms(4).set(0, c.hi - c.lo).set(1, n).set(2, c.offsets[0]).set(3, c.offsets[1]);
    const rl = rowLaunch(c.hi - c.lo, n);
    dispatch({ ...softmaxKernel(log, src.t.dtype, rl.mode), buffers: c.bindings, uniforms: u.u32, workgroups: rl.workgroups });
  }
  if (src.owned) src.t.dispose();
  return withGrad(op, y, [x], (g) => {
    y.assertAlive(`${op} backward (its output was disposed before backward)`);
    const gd = denseRows(`${op} backward`, g, true);
    const dx = Tensor.empty(x.shape, 'f32');
    for (const c of rowSplit(`${op} backward`, rows, [rowsOf(y, n), rowsOf(gd.t, n), rowsOf(dx, n)])) {
      const ub = new Uniforms(8).set(0, c.hi - c.lo).set(1, n).set(2, c.offsets[0]).set(3, c.offsets[1]).set(4, c.offsets[2]);
      dispatch({ ...softmaxBackwardKernel(log, rowLaunch(c.hi - c.lo, n).mode), buffers: c.bindings, uniforms: ub.u32, workgroups: rowLaunch(c.hi - c.lo, n).workgroups });
    }
    if (gd.owned) gd.t.dispose();
    return [dx];
  });
}

/** exp(x - logsumexp(x)) along `axis` (default last); numerically stable, fully masked (-inf) rows give 0. */
export const softmax = (x: Tensor, axis = -1): Tensor => rowOp('softmax', x, axis);
/** x - logsumexp(x) along `axis` (default last). */
export const logSoftmax = (x: Tensor, axis = -1): Tensor => rowOp('logSoftmax', x, axis);

// Dense copies and constant tensors.
import { copyKernel, copyLayout, COPY_WG } from '../../kernels/copy.js';
import { ewTuning } from '../../kernels/elementwise.js';
import { Uniforms } from '../../kernels/uniforms.js';
import { bindingLimit } from '../binding.js';
import type { DType } from '../dtype.js';
import { gpu } from '../device.js';
import { dispatch, grid } from '../runtime.js';
import { fmt, numel, sameShape, type Shape } from '../shape.js';
import { registerContiguous, Tensor } from '../tensor.js';
import { withGrad } from '../autograd.js';
import { isMulti, multiError, rowPieceRanges, rowsView } from '../pieces.js';
import { dispatchElementwise, launchElementwise } from './elementwise.js';

/** A tensor filled with `value`; `pieces`: in several buffers beyond the buffer limit (pieces.ts), as for a parameter's gradient or moments. */
export function fill(shape: Shape, value: number, dtype: DType = 'f32', pieces = false): Tensor {
  return launchElementwise('fill', 'p0', [], dtype, [value], [...shape], pieces);
}
export const zeros = (shape: Shape, dtype: DType = 'f32', pieces = false) => fill(shape, 0, dtype, pieces);
export const ones = (shape: Shape, dtype: DType = 'f32', pieces = false) => fill(shape, 1, dtype, pieces);

/** Dense row-major copy of any view (a no-op view when already dense). */
export function contiguous(x: Tensor): Tensor {
  x.assertAlive('contiguous');
  // Already dense: a view, still on the graph (a gradient must reach x through it).
  if (x.isContiguous) return withGrad('contiguous', x.view(x.shape, x.strides, x.offset), [x], (g) => [g]);
  const y = launchElementwise('contiguous', 'x0', [x], x.dtype);
  return withGrad('contiguous', y, [x], (g) => [g]);
}
registerContiguous(contiguous);

/** Write src into the view dst (same shape). Not differentiable: used to assemble outputs. */
export function copyInto(dst: Tensor, src: Tensor): void {
  dst.assertAlive('copyInto');
  src.assertAlive('copyInto');
  if (!sameShape(dst.shape, src.shape)) throw new Error(`copyInto: shapes ${fmt(dst.shape)} and ${fmt(src.shape)} differ`);
  const n = numel(src.shape);
  if (n === 0) return;
  if (isMulti(dst) || isMulti(src)) {
    // Either side in pieces (pieces.ts): one copy per row range inside one buffer of both.
    for (const [lo, hi] of rowPieceRanges([dst, src], dst.shape[0])) {
      const d = rowsView(dst, lo, hi), s = rowsView(src, lo, hi);
      try {
        if (isMulti(d) || isMulti(s)) throw multiError('copyInto (rows of a strided view across pieces)', isMulti(d) ? d : s);
        copyInto(d, s);
      } finally {
        d.dispose();
        s.dispose();
      }
    }
    return;
  }
  if (src.buffer === dst.buffer) {
    // One buffer cannot be bound both read-only and writable in a dispatch: stage through a copy.
    const tmp = launchElementwise('contiguous', 'x0', [src], src.dtype);
    copyInto(dst, tmp);
    tmp.dispose();
    return;
  }
  // Tensors beyond one binding take the odometer path too: it binds the ranges it touches.
  const big = Math.max(src.buffer.size, dst.buffer.size) > bindingLimit();
  if (big || ewTuning.force === 'odo' || (ewTuning.force !== 'flat' && gpu().info.isSoftware)) {
    const stream = (t: Tensor) => ({ strides: t.strides, offset: t.offset, dtype: t.dtype });
    dispatchElementwise('copy', 'x0', [{ buffer: src.buffer, stream: stream(src) }], { buffer: dst.buffer, dtype: dst.dtype, stream: stream(dst) }, src.shape);
    return;
  }
  const rank = Math.max(1, src.rank);
  const L = copyLayout(rank);
  const u = new Uniforms(L.words);
  u.set(0, n);
  const pad = (a: readonly number[], fillv: number) => (a.length ? [...a] : [fillv]);
  u.setAll(L.shape, pad(src.shape, 1));
  u.setAll(L.src, pad(src.strides, 0)).set(L.src + rank, src.offset);
  u.setAll(L.dst, pad(dst.strides, 0)).set(L.dst + rank, dst.offset);
  const k = copyKernel(src.dtype, dst.dtype, rank);
  dispatch({ ...k, buffers: [src.buffer, dst.buffer], uniforms: u.u32, workgroups: grid(Math.ceil(n / COPY_WG)) });
}

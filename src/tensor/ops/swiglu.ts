// SwiGLU on a packed [..., 2F] tensor [gate | up]: silu(gate) * up, the Llama MLP's activation
// after one product with the stacked gate and up weights. Forward and backward are one
// kernel each (src/kernels/swiglu.ts).
import { swigluBackwardKernel, swigluGroups, swigluKernel } from '../../kernels/swiglu.js';
import { Uniforms } from '../../kernels/uniforms.js';
import { withGrad } from '../autograd.js';
import { dispatch, grid } from '../runtime.js';
import { fmt, numel } from '../shape.js';
import { Tensor } from '../tensor.js';
import { denseRows, rowsOf } from './softmax.js';
import { rowSplit } from '../binding.js';
import { isMulti } from '../pieces.js';
import { overRowPieces } from './row-pieces.js';

/** silu(y[..., :F]) * y[..., F:] for y [..., 2F]; returns [..., F]. Differentiable in y. */
export function swiglu(y: Tensor): Tensor {
  y.assertAlive('swiglu');
  if (y.rank < 1 || y.shape[y.rank - 1] % 2 !== 0) throw new Error(`swiglu: last dim of ${fmt(y.shape)} must be even ([gate | up])`);
  if (y.dtype !== 'f32') throw new Error(`swiglu: input ${fmt(y.shape)} must be f32, got ${y.dtype}`);
  // An input in several buffers (pieces.ts): each one-buffer range of rows on its own.
  if (isMulti(y) && y.rank >= 2) return overRowPieces('swiglu', y, swiglu);
  const F = y.shape[y.rank - 1] / 2;
  const shape = [...y.shape.slice(0, -1), F];
  const n = numel(shape);
  const out = Tensor.empty(shape);
  if (n === 0) return out;
  const ys = denseRows('swiglu', y);
  const rows = n / F;
  // Beyond one binding ([B*T, 2F] of a big batch) a chunk of whole rows at a time.
  for (const c of rowSplit('swiglu', rows, [rowsOf(ys.t, 2 * F), rowsOf(out, F)])) {
    const m = (c.hi - c.lo) * F;
    const u = new Uniforms(4).set(0, m).set(1, F).set(2, c.offsets[0]).set(3, c.offsets[1]);
    dispatch({ ...swigluKernel(), buffers: c.bindings, uniforms: u.u32, workgroups: grid(swigluGroups(m)) });
  }
  if (ys.owned) ys.t.dispose();
  return withGrad('swiglu', out, [y], (g) => {
    const yd = denseRows('swiglu backward', y), gd = denseRows('swiglu backward', g);
    const dy = Tensor.empty([...y.shape]);
    for (const c of rowSplit('swiglu backward', rows, [rowsOf(yd.t, 2 * F), rowsOf(gd.t, F), rowsOf(dy, 2 * F)])) {
      const m = (c.hi - c.lo) * F;
      const ub = new Uniforms(8).set(0, m).set(1, F).set(2, c.offsets[0]).set(3, c.offsets[1]).set(4, c.offsets[2]);
      dispatch({ ...swigluBackwardKernel(), buffers: c.bindings, uniforms: ub.u32, workgroups: grid(swigluGroups(m)) });
    }
    if (yd.owned) yd.t.dispose();
    if (gd.owned) gd.t.dispose();
    return [dy];
  });
}

// SwiGLU on a packed [..., 2F] tensor [gate | up]: silu(gate) * up, the Llama MLP's activation
// after one product with the stacked gate and up weights. Forward and backward are one
// kernel each (src/kernels/swiglu.ts).
import { swigluBackwardKernel, swigluGroups, swigluKernel } from '../../kernels/swiglu.js';
import { Uniforms } from '../../kernels/uniforms.js';
import { withGrad } from '../autograd.js';
import { dispatch, grid } from '../runtime.js';
import { fmt, numel } from '../shape.js';
import { Tensor } from '../tensor.js';
import { denseRows } from './softmax.js';

/** silu(y[..., :F]) * y[..., F:] for y [..., 2F]; returns [..., F]. Differentiable in y. */
export function swiglu(y: Tensor): Tensor {
  y.assertAlive('swiglu');
  if (y.rank < 1 || y.shape[y.rank - 1] % 2 !== 0) throw new Error(`swiglu: last dim of ${fmt(y.shape)} must be even ([gate | up])`);
  if (y.dtype !== 'f32') throw new Error(`swiglu: input ${fmt(y.shape)} must be f32, got ${y.dtype}`);
  const F = y.shape[y.rank - 1] / 2;
  const shape = [...y.shape.slice(0, -1), F];
  const n = numel(shape);
  const out = Tensor.empty(shape);
  if (n === 0) return out;
  const ys = denseRows('swiglu', y);
  const u = new Uniforms(4).set(0, n).set(1, F).set(2, ys.t.offset);
  dispatch({ ...swigluKernel(), buffers: [ys.t.buffer, out.buffer], uniforms: u.u32, workgroups: grid(swigluGroups(n)) });
  if (ys.owned) ys.t.dispose();
  return withGrad('swiglu', out, [y], (g) => {
    const yd = denseRows('swiglu backward', y), gd = denseRows('swiglu backward', g);
    const dy = Tensor.empty([...y.shape]);
    const ub = new Uniforms(4).set(0, n).set(1, F).set(2, yd.t.offset).set(3, gd.t.offset);
    dispatch({ ...swigluBackwardKernel(), buffers: [yd.t.buffer, gd.t.buffer, dy.buffer], uniforms: ub.u32, workgroups: grid(swigluGroups(n)) });
    if (yd.owned) yd.t.dispose();
    if (gd.owned) gd.t.dispose();
    return [dy];
  });
}

// SwiGLU over a packed [rows, 2F] input y = [gate | up] (one x @ [Wg; Wu]^T product):
// out = silu(gate) * up, and the backward writes both halves of dy in the same pass. Unfused,
// the MLP's activation is silu + mul forward and mul, mul, silu_grad backward: on lavapipe,
// where every storage access is a bounds-checked per-lane load, that is ~2x the accesses.
// Each thread walks SWIGLU_PER consecutive outputs (one division per thread, not per element).
import { storage, uniformBlock } from './uniforms.js';

export const SWIGLU_WG = 256;
export const SWIGLU_PER = 8;
export const swigluGroups = (n: number): number => Math.ceil(Math.ceil(n / SWIGLU_PER) / SWIGLU_WG);

const helpers = `fn sig(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }\n`;

/** Thread loop over outputs i < u(0) = rows * F, F = u(1): row r, column c; y offset u(2). */
const walk = (body: string) => `@compute @workgroup_size(${SWIGLU_WG})
fn main(@builtin(global_invocation_id) g: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let total = u(0u); let F = u(1u); let yo = u(2u);
  var i = (g.x + g.y * nw.x * ${SWIGLU_WG}u) * ${SWIGLU_PER}u;
  if (i >= total) { return; }
  var r = i / F; var c = i % F;
  for (var e = 0u; e < ${SWIGLU_PER}u && i < total; e++) {
    let ya = yo + r * 2u * F + c;
    ${body}
    i++; c++;
    if (c == F) { c = 0u; r++; }
  }
}
`;

/** out[r, c] = silu(y[r, c]) * y[r, F + c]. Uniforms: [0]=rows*F, [1]=F, [2]=y offset, [3]=out offset. */
export function swigluKernel() {
  const source = () =>
    uniformBlock(4) + storage(1, 'y', 'f32', false) + storage(2, 'out', 'f32', true) + helpers +
    walk(`let a = y[ya]; out[u(3u) + i] = a * sig(a) * y[ya + F];`);
  return { key: 'swiglu', source };
}

/** dy[r, c] = g * up * silu'(gate), dy[r, F + c] = g * silu(gate) (dy dense [rows, 2F]).
 * Uniforms: [0]=rows*F, [1]=F, [2]=y offset, [3]=g offset, [4]=dy offset. */
export function swigluBackwardKernel() {
  const source = () =>
    uniformBlock(8) + storage(1, 'y', 'f32', false) + storage(2, 'gy', 'f32', false) + storage(3, 'dy', 'f32', true) + helpers +
    walk(`let a = y[ya]; let b = y[ya + F]; let gv = gy[u(3u) + i]; let s = sig(a);
    let o = u(4u) + r * 2u * F + c;
    dy[o] = gv * b * s * (1.0 + a * (1.0 - s));
    dy[o + F] = gv * a * s;`);
  return { key: 'swiglu_bwd', source };
}

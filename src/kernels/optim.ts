// Optimizer kernels. Each update is ONE dispatch per parameter that rewrites the parameter and
// its state in place. The gradient is multiplied by s[1], where s is the [norm, coef] output of
// the global-norm kernels (or a constant [1, 1]), so clipping costs no extra pass per parameter.
import { ROW_HELPERS, RW } from './softmax.js';
import { storage, uniformBlock } from './uniforms.js';

export const OPT_WG = 256;
/** Elements per thread (strided by OPT_WG within a workgroup's block): lavapipe charges per invocation. */
export const OPT_PER = 4;
export const optGroups = (n: number): number => Math.ceil(n / (OPT_WG * OPT_PER));

/** Entry point running `body` for each of this thread's element indices `gid` < u(0). */
const EACH = (body: string) => `@compute @workgroup_size(${OPT_WG})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nw: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let base = (wg.x + wg.y * nw.x) * ${OPT_WG * OPT_PER}u + lid.x;
  for (var e = 0u; e < ${OPT_PER}u; e++) {
    let gid = base + e * ${OPT_WG}u;
    if (gid >= u(0u)) { break; }
${body}
  }
}
`;

/** AdamW (PyTorch semantics). Uniforms: [0]=n, [1]=p offset, [2]=g offset, [3]=beta1, [4]=beta2, [5]=eps,
 * [6]=decay factor 1 - lr*wd, [7]=step size lr/bc1, [8]=sqrt(bc2), [9]=m/v offset. */
export function adamwKernel() {
  const key = 'adamw';
  const source = () =>
    uniformBlock(12) +
    storage(1, 'p', 'f32', true) + storage(2, 'gy', 'f32', false) + storage(3, 'm', 'f32', true) + storage(4, 'v', 'f32', true) + storage(5, 's', 'f32', false) +
    EACH(`    let b1 = uf(3u); let b2 = uf(4u);
    let gv = gy[u(2u) + gid] * s[1];
    let k = u(9u) + gid;
    let mm = b1 * m[k] + (1.0 - b1) * gv;
    let vv = b2 * v[k] + (1.0 - b2) * gv * gv;
    m[k] = mm; v[k] = vv;
    let i = u(1u) + gid;
    p[i] = p[i] * uf(6u) - uf(7u) * mm / (sqrt(vv) / uf(8u) + uf(5u));`);
  return { key, source };
}

/** SGD (PyTorch semantics: L2 decay added to the gradient, dampening 0). Uniforms: [0]=n, [1]=p offset,
 * [2]=g offset, [3]=lr, [4]=momentum, [5]=weight decay, [6]=nesterov, [7]=buf offset. */
export function sgdKernel(momentum: boolean) {
  const key = `sgd|${momentum ? 'mom' : 'plain'}`;
  const source = () =>
    uniformBlock(8) +
    storage(1, 'p', 'f32', true) + storage(2, 'gy', 'f32', false) + storage(3, 's', 'f32', false) + (momentum ? storage(4, 'buf', 'f32', true) : '') +
    EACH(`    let i = u(1u) + gid;
    var d = gy[u(2u) + gid] * s[1] + uf(5u) * p[i];
${momentum ? `    let k = u(7u) + gid;
    let b = uf(4u) * buf[k] + d;
    buf[k] = b;
    d = select(b, d + uf(4u) * b, u(6u) != 0u);
` : ''}    p[i] = p[i] - uf(3u) * d;`);
  return { key, source };
}

/**
 * Partial sums of squares, one per thread and no barriers (on lavapipe a workgroup barrier
 * switches all its invocations, which made this pass ~5x slower): thread t of the K*OPT_WG
 * launched sums x[t], x[t + K*OPT_WG], ... into part[slot + t]. Uniforms: [0]=n, [1]=offset,
 * [2]=slot, [3]=K (workgroups).
 */
export function sumSquaresKernel() {
  const key = 'sumsq_partial';
  const source = () =>
    uniformBlock(4) + storage(1, 'x', 'f32', false) + storage(2, 'part', 'f32', true) +
    `@compute @workgroup_size(${OPT_WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let t = gid.x; let n = u(0u); let stride = u(3u) * ${OPT_WG}u;
  var acc = 0.0;
  for (var i = t; i < n; i += stride) { let v = x[u(1u) + i]; acc += v * v; }
  part[u(2u) + t] = acc;
}
`;
  return { key, source };
}

/** out = [norm, min(1, maxNorm / (norm + 1e-6))] from the partials (one workgroup). Uniforms: [0]=count, [1]=maxNorm. */
export function clipFinalizeKernel() {
  const key = 'clip_finalize';
  const source = () =>
    uniformBlock(4) + storage(1, 'part', 'f32', false) + storage(2, 'out', 'f32', true) + ROW_HELPERS +
    `@compute @workgroup_size(${RW})
fn main(@builtin(local_invocation_id) lid: vec3u) {
  let l = lid.x;
  var acc = 0.0;
  for (var i = l; i < u(0u); i += RW) { acc += part[i]; }
  let norm = sqrt(wg_sum(l, acc));
  if (l == 0u) { out[0] = norm; out[1] = min(1.0, uf(1u) / (norm + 1e-6)); }
}
`;
  return { key, source };
}

/**
 * flags[slot] = 1 if x[offset .. offset+n) holds a NaN or an infinity (exponent bits all ones,
 * tested on the bits: WGSL lets a compiler assume floats are finite, so x != x may fold away).
 * Grid-stride over K workgroups; many threads may store the same 1. Uniforms: [0]=n, [1]=offset,
 * [2]=slot, [3]=K.
 */
export function nonFiniteKernel() {
  const key = 'nonfinite_flags';
  const source = () =>
    uniformBlock(4) + storage(1, 'x', 'f32', false) + storage(2, 'flags', 'i32', true) +
    `@compute @workgroup_size(${OPT_WG})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let n = u(0u); let stride = u(3u) * ${OPT_WG}u;
  var bad = false;
  for (var i = gid.x; i < n; i += stride) { bad = bad || (bitcast<u32>(x[u(1u) + i]) & 0x7f800000u) == 0x7f800000u; }
  if (bad) { flags[u(2u)] = 1; }
}
`;
  return { key, source };
}

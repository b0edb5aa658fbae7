// Baseline variant: any strides, any dtype. Each thread owns a 4x4 block of C and reads
// operands with scalar loads. Correct everywhere; the fallback for layouts the tiled
// variants do not take.
import { dispatch } from '../../tensor/runtime.js';
import { storage, uniformBlock, Uniforms } from "../uniforms.js";
import type { MatmulProblem, MatmulVariant } from './types.js';

const WG = 8;
const T = 4;

function kernel(ad: string, bd: string, acc: boolean) {
  const key = `mm_naive|${ad}|${bd}|${acc}`;
  const source = () => {
    let s = (ad === 'f16' || bd === 'f16' ? 'enable f16;\n' : '') + uniformBlock(16);
    s += storage(1, 'A', ad, false) + storage(2, 'B', bd, false) + storage(3, 'C', 'f32', true);
    s += `@compute @workgroup_size(${WG}, ${WG}, 1)
fn main(@builtin(global_invocation_id) g: vec3u) {
  let M = u(0u); let N = u(1u); let K = u(2u);
  let r0 = g.y * ${T}u; let c0 = g.x * ${T}u; let b = g.z;
  if (r0 >= M || c0 >= N) { return; }
  let aBase = u(3u) + b * u(4u); let aRs = u(5u); let aCs = u(6u);
  let bBase = u(7u) + b * u(8u); let bRs = u(9u); let bCs = u(10u);
  var acc: array<array<f32, ${T}>, ${T}>;
  for (var kk = 0u; kk < K; kk++) {
    var av: array<f32, ${T}>; var bv: array<f32, ${T}>;
    for (var i = 0u; i < ${T}u; i++) {
      av[i] = select(0.0, f32(A[aBase + min(r0 + i, M - 1u) * aRs + kk * aCs]), r0 + i < M);
      bv[i] = select(0.0, f32(B[bBase + kk * bRs + min(c0 + i, N - 1u) * bCs]), c0 + i < N);
    }
    for (var i = 0u; i < ${T}u; i++) { for (var j = 0u; j < ${T}u; j++) { acc[i][j] += av[i] * bv[j]; } }
  }
  let cBase = b * M * N;
  for (var i = 0u; i < ${T}u; i++) {
    if (r0 + i >= M) { break; }
    for (var j = 0u; j < ${T}u; j++) {
      if (c0 + j < N) { let o = cBase + (r0 + i) * N + c0 + j; C[o] = ${acc ? 'C[o] + ' : ''}acc[i][j]; }
    }
  }
}
`;
    return s;
  };
  return { key, source };
}

export const naiveStrided: MatmulVariant = {
  name: 'naive-strided-4x4',
  supports: () => true,
  launch(p: MatmulProblem) {
    const u = new Uniforms(16);
    u.setAll(0, [p.m, p.n, p.k, p.a.offset, p.a.batchStride, p.a.rowStride, p.a.colStride, p.b.offset, p.b.batchStride, p.b.rowStride, p.b.colStride]);
    const k = kernel(p.a.dtype, p.b.dtype, !!p.accumulate);
    dispatch({ ...k, buffers: [p.a.buffer, p.b.buffer, p.out], uniforms: u.u32, workgroups: [Math.ceil(p.n / (WG * T)), Math.ceil(p.m / (WG * T)), p.batch] });
  },
};

// Baseline variant: any strides, any storage dtype. Each thread owns a 4x4 block of C and reads
// operands with scalar loads. Correct everywhere; the last-resort fallback and the reference
// point in the benchmarks.
import { dispatch } from '../../tensor/runtime.js';
import { storage, uniformBlock, Uniforms } from '../uniforms.js';
import { batchChunks, halfHelpers, loader } from './common.js';
import type { MatmulProblem, MatmulVariant } from './types.js';

const WG = 8;
const T = 4;

function kernel(ad: string, bd: string, acc: boolean) {
  const key = `mm_naive|${ad}|${bd}|${acc}`;
  const source = () => {
    const la = loader('A', ad, false), lb = loader('B', bd, false);
    let s = uniformBlock(12);
    s += storage(1, 'A', la.type, false) + storage(2, 'B', lb.type, false) + storage(3, 'C', 'f32', true);
    s += halfHelpers([['A', ad, false], ['B', bd, false]]);
    s += `@compute @workgroup_size(${WG}, ${WG}, 1)
fn main(@builtin(global_invocation_id) g: vec3u) {
  let M = u(0u); let N = u(1u); let K = u(2u);
  let r0 = g.y * ${T}u; let c0 = g.x * ${T}u; let b = g.z + u(3u);
  if (r0 >= M || c0 >= N) { return; }
  let aBase = u(4u) + b * u(5u); let aRs = u(6u); let aCs = u(7u);
  let bBase = u(8u) + b * u(9u); let bRs = u(10u); let bCs = u(11u);
  var acc: array<array<f32, ${T}>, ${T}>;
  for (var kk = 0u; kk < K; kk++) {
    var av: array<f32, ${T}>; var bv: array<f32, ${T}>;
    for (var i = 0u; i < ${T}u; i++) {
      av[i] = select(0.0, ${la.load('aBase + min(r0 + i, M - 1u) * aRs + kk * aCs')}, r0 + i < M);
      bv[i] = select(0.0, ${lb.load('bBase + kk * bRs + min(c0 + i, N - 1u) * bCs')}, c0 + i < N);
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
  describe: '4x4 per thread, scalar loads, any layout (universal fallback)',
  supports: () => true,
  launch(p: MatmulProblem) {
    const k = kernel(p.a.dtype, p.b.dtype, !!p.accumulate);
    for (const [start, count] of batchChunks(p.batch)) {
      const u = new Uniforms(12);
      u.setAll(0, [p.m, p.n, p.k, start, p.a.offset, p.a.batchStride, p.a.rowStride, p.a.colStride, p.b.offset, p.b.batchStride, p.b.rowStride, p.b.colStride]);
      dispatch({ ...k, buffers: [p.a.buffer, p.b.buffer, p.out], uniforms: u.u32, workgroups: [Math.ceil(p.n / (WG * T)), Math.ceil(p.m / (WG * T)), count] });
    }
  },
};

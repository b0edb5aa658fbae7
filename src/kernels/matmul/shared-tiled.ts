// Workgroup-memory tiled matmul for real GPUs: a 16x16 workgroup stages a 64x16 panel of A and
// a 16x64 panel of B in workgroup memory per step, then each invocation accumulates a 4x4 block
// from vec4 reads of the staged panels. Operands are read with scalar strided loads (any
// layout, offset and storage dtype), out-of-range elements staged as zero. On llvmpipe every
// barrier is a coroutine switch and staging costs per-lane scalar loads, so it is slow there
// (see BENCHMARKS.md); select.ts prefers it only on hardware adapters.
import { dispatch } from '../../tensor/runtime.js';
import { storage, uniformBlock, Uniforms } from '../uniforms.js';
import { batchChunks, halfHelpers, loader } from './common.js';
import type { MatmulProblem, MatmulVariant } from './types.js';

const TS = 64; // output tile edge
const TK = 16; // k per stage

function source(ad: string, bd: string, acc: boolean): string {
  const la = loader('A', ad, false), lb = loader('B', bd, false);
  let s = uniformBlock(12);
  s += storage(1, 'A', la.type, false) + storage(2, 'B', lb.type, false) + storage(3, 'C', 'f32', true);
  s += halfHelpers([['A', ad, false], ['B', bd, false]]);
  s += `var<workgroup> As: array<vec4<f32>, ${(TK * TS) / 4}>; // As[kk][r/4]: 4 consecutive rows
var<workgroup> Bs: array<vec4<f32>, ${(TK * TS) / 4}>; // Bs[kk][c/4]: 4 consecutive columns
@compute @workgroup_size(16, 16, 1)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let M = u(0u); let N = u(1u); let K = u(2u); let bi = wid.z + u(3u);
  let aB = u(4u) + bi * u(5u); let aRs = u(6u); let aCs = u(7u);
  let bB = u(8u) + bi * u(9u); let bRs = u(10u); let bCs = u(11u);
  let r0 = wid.y * ${TS}u; let c0 = wid.x * ${TS}u;
  let t = lid.y * 16u + lid.x;
  var acc: array<vec4<f32>, 4>;
  for (var k0 = 0u; k0 < K; k0 += ${TK}u) {
    // Stage: 256 invocations x 4 vec4 = the 64x16 A panel and the 16x64 B panel.
    for (var e = 0u; e < 4u; e++) {
      let idx = t + 256u * e;          // 0..1023
      let kk = idx / 64u; let x = idx % 64u;
      let k = k0 + kk;
      let r = r0 + x; let c = c0 + x;
      let av = select(0.0, ${la.load('aB + min(r, M - 1u) * aRs + min(k, K - 1u) * aCs')}, r < M && k < K);
      let bv = select(0.0, ${lb.load('bB + min(k, K - 1u) * bRs + min(c, N - 1u) * bCs')}, c < N && k < K);
      As[kk * 16u + x / 4u][x % 4u] = av;
      Bs[kk * 16u + x / 4u][x % 4u] = bv;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${TK}u; kk++) {
      let a = As[kk * 16u + lid.y];
      let b = Bs[kk * 16u + lid.x];
      acc[0] += a.x * b; acc[1] += a.y * b; acc[2] += a.z * b; acc[3] += a.w * b;
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let r = r0 + lid.y * 4u + i;
    if (r >= M) { break; }
    for (var j = 0u; j < 4u; j++) {
      let c = c0 + lid.x * 4u + j;
      if (c < N) { let o = (bi * M + r) * N + c; C[o] = ${acc ? 'C[o] + ' : ''}acc[i][j]; }
    }
  }
}
`;
  return s;
}

export const sharedTiled: MatmulVariant = {
  name: 'shared-16x16',
  describe: '16x16 workgroup, 64x64 tile staged in workgroup memory (k step 16), 4x4 per invocation, any layout',
  supports: () => true,
  launch(p: MatmulProblem) {
    const key = `mm_shared|${p.a.dtype}|${p.b.dtype}|${!!p.accumulate}`;
    const src = () => source(p.a.dtype, p.b.dtype, !!p.accumulate);
    for (const [start, count] of batchChunks(p.batch)) {
      const u = new Uniforms(12);
      u.setAll(0, [p.m, p.n, p.k, start, p.a.offset, p.a.batchStride, p.a.rowStride, p.a.colStride, p.b.offset, p.b.batchStride, p.b.rowStride, p.b.colStride]);
      dispatch({ key, source: src, buffers: [p.a.buffer, p.b.buffer, p.out], uniforms: u.u32, workgroups: [Math.ceil(p.n / TS), Math.ceil(p.m / TS), count] });
    }
  },
};

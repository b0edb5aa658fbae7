// Sampling fused with a chunked LM head: Gumbel-max over one vocabulary chunk of logits at a
// time, merged into a running (best value, token, raw logit) per row, so a token is drawn
// without reading [rows, V] logits back. argmax_j(l_j / T + G_j), G_j = -log(-log U_j) i.i.d.
// Gumbel, is an exact draw from softmax(l / T); the noise U_j is a counter-based hash of
// (seed of the row, token id), so it does not depend on the chunking and the host can
// recompute it (gumbelNoise below). T = 0 is greedy: the noise is skipped.
import { storage, uniformBlock } from './uniforms.js';

export const SAMPLE_WG = 64;

/** PCG hash (Jarzynski & Olano 2020), shared text for WGSL; pcgHash is the same on the host. */
const PCG_WGSL = `fn pcg(v: u32) -> u32 { let s = v * 747796405u + 2891336453u; let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u; return (w >> 22u) ^ w; }`;

export function pcgHash(v: number): number {
  const s = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const w = Math.imul(((s >>> ((s >>> 28) + 4)) ^ s) >>> 0, 277803737) >>> 0;
  return ((w >>> 22) ^ w) >>> 0;
}

/** U in (0, 1) for (seed, token): 23 random bits + 1/2, exact in f32 and f64 alike. */
export function noiseUniform(seed: number, token: number): number {
  const h = pcgHash((pcgHash(seed >>> 0) ^ (token >>> 0)) >>> 0);
  return ((h >>> 9) + 0.5) / 8388608;
}

/** The Gumbel noise the kernel adds, in float64: -log(-log U). */
export function gumbelNoise(seed: number, token: number): number {
  return -Math.log(-Math.log(noiseUniform(seed, token)));
}

/**
 * One workgroup per row. Uniforms: [0]=rows, [1]=n (chunk width), [2]=v0, [3]=first chunk (1/0),
 * [4]=1/T as f32 (0 = greedy). Bindings: l [rows, n] f32, seeds [rows] (u32 bits in i32), best [rows, 2] f32
 * (perturbed value, raw logit), tok [rows] i32; best and tok carry the running result across
 * chunks. Ties go to the lower token id, as the host argmax does.
 */
export function headSampleKernel() {
  const key = 'head_sample_gumbel';
  const source = () =>
    uniformBlock(5) + storage(1, 'l', 'f32', false) + storage(2, 'seeds', 'i32', false) + storage(3, 'best', 'f32', true) + storage(4, 'tok', 'i32', true) +
    `${PCG_WGSL}
const WG: u32 = ${SAMPLE_WG}u;
var<workgroup> bv: array<f32, WG>;
var<workgroup> bj: array<u32, WG>;
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nw: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row = wg.x + wg.y * nw.x;
  if (row >= u(0u)) { return; }
  let n = u(1u); let v0 = u(2u); let invT = uf(4u);
  let key = pcg(bitcast<u32>(seeds[row]));
  var mv = -3.0e38; var mi = 0xffffffffu;
  for (var j = lid.x; j < n; j = j + WG) {
    let x = l[row * n + j];
    var v = x;
    if (invT > 0.0) {
      let uu = (f32(pcg(key ^ (v0 + j)) >> 9u) + 0.5) / 8388608.0;
      v = x * invT - log(-log(uu));
    }
    if (v > mv) { mv = v; mi = j; }
  }
  bv[lid.x] = mv; bj[lid.x] = mi;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (lid.x < s) {
      let ov = bv[lid.x + s]; let oj = bj[lid.x + s];
      if (ov > bv[lid.x] || (ov == bv[lid.x] && oj < bj[lid.x])) { bv[lid.x] = ov; bj[lid.x] = oj; }
    }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    let j = bj[0];
    // Chunks run in token order: a later chunk wins only when strictly greater.
    if (j != 0xffffffffu && (u(3u) == 1u || bv[0] > best[2u * row])) {
      best[2u * row] = bv[0];
      best[2u * row + 1u] = l[row * n + j];
      tok[row] = i32(v0 + j);
    }
  }
}
`;
  return { key, source };
}

// Fused attention backward in two deterministic passes (no float atomics), both recomputing
// P = exp(S - L) from the saved logsumexp instead of storing a Tq x Tk matrix:
//  1. dQ: a workgroup owns consecutive query rows of one (b, h) and walks the keys:
//     Di = rowsum(dO * O), dS = P * (dO V^T - Di), dQ = dS K * scale. Di is written for pass 2.
//  2. dK/dV: a workgroup owns consecutive key rows of one (b, hkv) and walks the queries of
//     every head in its GQA group: dV = P^T dO, dK = dS^T Q * scale.
// As in the forward block layout, loop bounds are uniform per workgroup so the walked rows
// are read with scalar (not gathered) loads on llvmpipe; per-row validity is a select().
import { AU, attnPrelude, type AttnKernelCfg } from './attention.js';
import { storage } from './uniforms.js';

function inputs(cfg: AttnKernelCfg): string {
  const [qd, kd, vd, gd] = cfg.dtypes;
  return storage(1, 'Q', qd, false) + storage(2, 'K', kd, false) + storage(3, 'V', vd, false) + storage(4, 'DO', gd, false) + storage(5, 'OL', 'f32', false);
}

/** dQ pass. Writes dQ [B,H,Tq,D] then Di [B,H,Tq] at word AUX of one buffer. Dispatch [ceil(Tq / wg), H, B]. */
export function attnBackwardDq(cfg: AttnKernelCfg) {
  const key = `attn_bwd_dq|D${cfg.D}|${cfg.dtypes.join(',')}|wg${cfg.wg}`;
  const source = () => `${attnPrelude(cfg, 6)}${inputs(cfg)}${storage(7, 'DQ', 'f32', true)}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let H = u(${AU.H}u); let Tq = u(${AU.TQ}u); let qs = ui(${AU.QSTART}u); let scale = uf(${AU.SCALE}u);
  let b = wg.z; let h = wg.y; let i0 = wg.x * WG;
  let hk = h / (H / u(${AU.HKV}u));
  let il = i0 + lid.x;
  let i = min(il, Tq - 1u);
  let je = u32(clamp(i32(min(i0 + WG, Tq)) + qs, 0, keyEnd(b)));
  let rowEnd = min(i32(i) + qs + 1, i32(je));
  let row = (b * H + h) * Tq + i;
  let qo = tIdx(${AU.Q}u, b, h, i); let qd = u(${AU.Q + 3}u);
  let go = tIdx(${AU.DO}u, b, h, i); let gd = u(${AU.DO + 3}u);
  var q: array<f32, D>; var g: array<f32, D>;
  var di = 0.0;
  for (var d = 0u; d < D; d++) {
    q[d] = f32(Q[qo + d * qd]) * scale;
    g[d] = f32(DO[go + d * gd]);
    di += g[d] * OL[row * D + d];
  }
  let L = OL[u(${AU.LOFF}u) + row];
  let ko = tIdx(${AU.K}u, b, hk, 0u); let kt = u(${AU.K + 2}u); let kd = u(${AU.K + 3}u);
  let vo = tIdx(${AU.V}u, b, hk, 0u); let vt = u(${AU.V + 2}u); let vd = u(${AU.V + 3}u);
  var dq: array<f32, D>;
  for (var j = 0u; j < je; j++) {
    let kr = ko + j * kt; let vr = vo + j * vt;
    var kj: array<f32, D>;
    var s = 0.0; var dp = 0.0;
    for (var d = 0u; d < D; d++) {
      kj[d] = f32(K[kr + d * kd]);
      s += q[d] * kj[d];
      dp += g[d] * f32(V[vr + d * vd]);
    }
    let p = select(0.0, exp(s - L), i32(j) < rowEnd && keyOk(b, j));
    let ds = p * (dp - di);
    for (var d = 0u; d < D; d++) { dq[d] += ds * kj[d]; }
  }
  if (il < Tq) {
    for (var d = 0u; d < D; d++) { DQ[row * D + d] = dq[d] * scale; }
    DQ[u(${AU.AUX}u) + row] = di;
  }
}
`;
  return { key, source };
}

/** dK/dV pass. Reads Di from the dQ buffer (word AUX); writes dK [B,Hkv,Tk,D] then dV at word AUX2. Dispatch [ceil(Tk / wg), Hkv, B]. */
export function attnBackwardDkv(cfg: AttnKernelCfg) {
  const key = `attn_bwd_dkv|D${cfg.D}|${cfg.dtypes.join(',')}|wg${cfg.wg}`;
  const source = () => `${attnPrelude(cfg, 7)}${inputs(cfg)}${storage(6, 'DQ', 'f32', false)}${storage(8, 'DKV', 'f32', true)}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let H = u(${AU.H}u); let Hkv = u(${AU.HKV}u); let Tq = u(${AU.TQ}u); let Tk = u(${AU.TK}u);
  let qs = ui(${AU.QSTART}u); let scale = uf(${AU.SCALE}u);
  let b = wg.z; let hk = wg.y; let j0 = wg.x * WG;
  let G = H / Hkv;
  let jl = j0 + lid.x;
  let j = min(jl, Tk - 1u);
  let kend = keyEnd(b);
  let kvalid = i32(jl) < kend && keyOk(b, j);
  // Query i sees key j iff j <= i + qs: the block's first key bounds where the walk starts.
  let iStart = u32(clamp(i32(j0) - qs, 0, i32(Tq)));
  let iEnd = select(Tq, iStart, i32(j0) >= kend);
  let ko = tIdx(${AU.K}u, b, hk, j); let kd = u(${AU.K + 3}u);
  let vo = tIdx(${AU.V}u, b, hk, j); let vd = u(${AU.V + 3}u);
  var k: array<f32, D>; var v: array<f32, D>;
  for (var d = 0u; d < D; d++) { k[d] = f32(K[ko + d * kd]); v[d] = f32(V[vo + d * vd]); }
  let qd = u(${AU.Q + 3}u); let gd = u(${AU.DO + 3}u);
  var dk: array<f32, D>; var dv: array<f32, D>;
  for (var gi = 0u; gi < G; gi++) {
    let h = hk * G + gi;
    for (var i = iStart; i < iEnd; i++) {
      let qo = tIdx(${AU.Q}u, b, h, i); let go = tIdx(${AU.DO}u, b, h, i);
      let row = (b * H + h) * Tq + i;
      var qi: array<f32, D>; var g: array<f32, D>;
      var s = 0.0; var dp = 0.0;
      for (var d = 0u; d < D; d++) {
        qi[d] = f32(Q[qo + d * qd]); g[d] = f32(DO[go + d * gd]);
        s += qi[d] * k[d]; dp += g[d] * v[d];
      }
      let p = select(0.0, exp(s * scale - OL[u(${AU.LOFF}u) + row]), kvalid && i32(j) <= i32(i) + qs);
      let ds = p * (dp - DQ[u(${AU.AUX}u) + row]);
      for (var d = 0u; d < D; d++) { dv[d] += p * g[d]; dk[d] += ds * qi[d]; }
    }
  }
  if (jl < Tk) {
    let o = ((b * Hkv + hk) * Tk + jl) * D;
    for (var d = 0u; d < D; d++) { DKV[o + d] = dk[d] * scale; DKV[u(${AU.AUX2}u) + o + d] = dv[d]; }
  }
}
`;
  return { key, source };
}

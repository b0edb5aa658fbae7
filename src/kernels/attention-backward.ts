// Fused attention backward in two deterministic passes (no float atomics), both recomputing
// P = exp(S - L) from the saved logsumexp instead of storing a Tq x Tk matrix:
//  1. dQ: a workgroup owns query rows of one (b, h) and walks the keys:
//     Di = rowsum(dO * O), dS = P * (dO V^T - Di), dQ = dS K * scale. Di is written for pass 2.
//  2. dK/dV: a workgroup owns key rows of one (b, hkv) and walks the queries of every head in
//     its GQA group: dV = P^T dO, dK = dS^T Q * scale.
// Same scheme as the forward block layout (see attention.ts): loop bounds uniform per
// workgroup, the walked rows loaded cooperatively and broadcast over the subgroup, several
// owned rows per lane so each broadcast element feeds several FMAs, per-row validity by select().
import { AU, attnPrelude, capScore, dloop, dloopAgain, forD, mainHead, queryBlockHead, queryRow, rows, sgParam, type AttnKernelCfg } from './attention.js';
import { storage } from './uniforms.js';

function inputs(cfg: AttnKernelCfg): string {
  const [qd, kd, vd, gd] = cfg.dtypes;
  return storage(1, 'Q', qd, false) + storage(2, 'K', kd, false) + storage(3, 'V', vd, false) + storage(4, 'DO', gd, false) + storage(5, 'OL', 'f32', false);
}

/** dQ pass. Writes dQ rows (at dqOut) and Di [B,H,Tq] (its own buffer, read by pass 2). Dispatch [ceil(Tq / (wg * rq)), H, B]. */
export function attnBackwardDq(cfg: AttnKernelCfg, RQ = 1) {
  const D = cfg.D;
  const key = `attn_bwd_dq|D${cfg.D}|${cfg.dtypes.join(',')}|wg${cfg.wg}|sg${cfg.sg}|rq${RQ}`;
  const source = () => `${attnPrelude(cfg, 6)}${inputs(cfg)}${storage(7, 'DQ', 'f32', true)}${storage(8, 'DI', 'f32', true)}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u${sgParam(cfg)}) {
${mainHead(cfg)}${queryBlockHead(RQ)}${rows(RQ, (r) => `${queryRow(r)}  let row${r} = (b * H + h) * Tq + i${r};
  let oo${r} = oOut(b, h, i${r}); let dqo${r} = dqOut(b, h, i${r});
  let qo${r} = tIdx(${AU.Q}u, b, h, i${r}); let go${r} = tIdx(${AU.DO}u, b, h, i${r});
  var q${r}: array<f32, D>; var g${r}: array<f32, D>; var dq${r}: array<f32, D>;
  ${forD(D, (d) => `q${r}[${d}] = f32(Q[qo${r} + ${d}u]) * scale; g${r}[${d}] = f32(DO[go${r} + ${d}u]);`, '\n  ')}
  var di${r} = 0.0;
  ${forD(D, (d) => `di${r} += g${r}[${d}] * OL[oo${r} + ${d}u];`)}
  let L${r} = OL[u(${AU.LOFF}u) + row${r}];
`)}  let ko = tIdx(${AU.K}u, b, hk, 0u); let kt = u(${AU.K + 2}u);
  let vo = tIdx(${AU.V}u, b, hk, 0u); let vt = u(${AU.V + 2}u);
  for (var j = js; j < je; j++) {
    let kok = keyOk(b, j);
    ${rows(RQ, (r) => `var s${r} = 0.0; var dp${r} = 0.0; `)}
    ${dloop(cfg, [{ name: 'k', buf: 'K', base: 'ko + j * kt', guard: 'kok' }, { name: 'v', buf: 'V', base: 'vo + j * vt', guard: 'kok' }], (d) => rows(RQ, (r) => `s${r} += q${r}[${d}] * k_${d}; dp${r} += g${r}[${d}] * v_${d}; `))}${rows(RQ, (r) => `    ${capScore(`s${r}`)}
    let ds${r} = select(0.0, exp(s${r} - L${r}), i32(j) < rowEnd${r} && i32(j) >= rowBeg${r} && kok) * (dp${r} - di${r}) * dt_s${r};
`)}${dloopAgain(cfg, ['k'], (d, el) => rows(RQ, (r) => `dq${r}[${d}] += ds${r} * ${el('k')}; `))}
  }
${rows(RQ, (r) => `  if (il${r} < Tq) {
    ${forD(D, (d) => `DQ[dqo${r} + ${d}u] = dq${r}[${d}] * scale;`)}
    DI[row${r}] = di${r};
  }
`)}}
`;
  return { key, source };
}

/**
 * dK/dV pass. Reads Di (written by pass 1); writes dK rows (at dkOut) and dV rows AUX2 words
 * after them, in one buffer. Dispatch [ceil(Tk / (wg * rk)), Hkv, B].
 */
export function attnBackwardDkv(cfg: AttnKernelCfg, RK = 1) {
  const D = cfg.D;
  const key = `attn_bwd_dkv|D${cfg.D}|${cfg.dtypes.join(',')}|wg${cfg.wg}|sg${cfg.sg}|rk${RK}`;
  const source = () => `${attnPrelude(cfg, 7)}${inputs(cfg)}${storage(6, 'DI', 'f32', false)}${storage(8, 'DKV', 'f32', true)}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u${sgParam(cfg)}) {
${mainHead(cfg)}  let H = u(${AU.H}u); let Hkv = u(${AU.HKV}u); let Tq = u(${AU.TQ}u); let Tk = u(${AU.TK}u);
  let qs = ui(${AU.QSTART}u); let scale = uf(${AU.SCALE}u);
  let b = wg.z; let hk = wg.y; let jb = wg.x * WG * ${RK}u;
  let G = H / Hkv;
  let kend = keyEnd(b);
  // Query i sees key j iff j <= i + qs: the block's first key bounds where the walk starts;
  // a block entirely past the valid keys has nothing to do.
  let iStart = u32(clamp(i32(jb) - qs, 0, i32(Tq)));
  // ... and, with a window, query i sees key j only while j > i + qs - win: the block's last
  // key bounds where it ends.
  let win = ui(${AU.WIN}u);
  let cap = uf(${AU.CAP}u);
  let iLast = u32(clamp(i32(jb + WG * ${RK}u) - 1 - qs + win, 0, i32(Tq)));
  let iEnd = select(max(iLast, iStart), iStart, i32(jb) >= kend);
${rows(RK, (r) => `  let jl${r} = jb + ${r}u * WG + lid.x;
  let j${r} = min(jl${r}, Tk - 1u);
  let kvalid${r} = i32(jl${r}) < kend && keyOk(b, j${r});
  let ko${r} = tIdx(${AU.K}u, b, hk, j${r}); let vo${r} = tIdx(${AU.V}u, b, hk, j${r});
  var k${r}: array<f32, D>; var v${r}: array<f32, D>; var dk${r}: array<f32, D>; var dv${r}: array<f32, D>;
  ${forD(D, (d) => `k${r}[${d}] = select(0.0, f32(K[ko${r} + ${d}u]), kvalid${r}); v${r}[${d}] = select(0.0, f32(V[vo${r} + ${d}u]), kvalid${r});`, '\n  ')}
`)}  for (var gh = 0u; gh < G; gh++) {
    let h = hk * G + gh;
    for (var i = iStart; i < iEnd; i++) {
      let row = (b * H + h) * Tq + i;
      let L = OL[u(${AU.LOFF}u) + row]; let di = DI[row];
      ${rows(RK, (r) => `var s${r} = 0.0; var dp${r} = 0.0; `)}
    ${dloop(cfg, [{ name: 'q', buf: 'Q', base: `tIdx(${AU.Q}u, b, h, i)` }, { name: 'g', buf: 'DO', base: `tIdx(${AU.DO}u, b, h, i)` }], (d) => rows(RK, (r) => `s${r} += q_${d} * k${r}[${d}]; dp${r} += g_${d} * v${r}[${d}]; `))}${rows(RK, (r) => `      var sc${r} = s${r} * scale;
      ${capScore(`sc${r}`)}
      let p${r} = select(0.0, exp(sc${r} - L), kvalid${r} && i32(j${r}) <= i32(i) + qs && i32(j${r}) > i32(i) + qs - win);
      let ds${r} = p${r} * (dp${r} - di) * dt_sc${r};
`)}${dloopAgain(cfg, ['q', 'g'], (d, el) => rows(RK, (r) => `dv${r}[${d}] += p${r} * ${el('g')}; dk${r}[${d}] += ds${r} * ${el('q')}; `))}
    }
  }
${rows(RK, (r) => `  if (jl${r} < Tk) {
    let o = dkOut(b, hk, jl${r});
    ${forD(D, (d) => `DKV[o + ${d}u] = dk${r}[${d}] * scale; DKV[u(${AU.AUX2}u) + o + ${d}u] = dv${r}[${d}];`, '\n    ')}
  }
`)}}
`;
  return { key, source };
}

// Fused scaled dot-product attention, forward (FlashAttention-2 style online softmax: no
// Tq x Tk matrix ever exists). The head size D is a compile-time constant because it sizes
// the per-thread register arrays (one query row's q and accumulator); every shape is a
// uniform, so a new sequence length reuses the compiled pipeline.
//
// Two thread layouts:
//  - block: a workgroup owns WG consecutive query rows of one (batch, head) and walks the
//    keys with a loop bound that is uniform across the workgroup. Key/value addresses then
//    depend only on workgroup ids and loop counters, which llvmpipe (lavapipe) turns into one
//    scalar load per element instead of an 8/16-lane gather; each row masks its own causal
//    tail with select(). Used for prefill/training (Tq large).
//  - flat: one thread per (batch, head, query) row, independent key ranges, optional split of
//    the key range over workgroups (partials merged by a combine pass). Used when Tq is small
//    (decode), where a block would leave most lanes idle.
import type { DType } from '../tensor/dtype.js';
import { storage, uniformBlock } from './uniforms.js';

/** Head sizes with a compiled kernel (D sizes register arrays; a small set bounds the pipeline count). */
export const ATTN_HEAD_SIZES = [4, 8, 16, 32, 48, 64, 80, 96, 128] as const;

/**
 * Uniform word layout shared by the attention kernels. A strided operand X takes 5 words at
 * X: strides of (batch, head, time, dim) then the element offset. OL is one buffer holding
 * the dense output [B,H,Tq,D] followed by the logsumexp [B,H,Tq] at word LOFF. MODE says how
 * key validity is given (a uniform, not a compile-time switch, to keep the pipeline count down).
 */
export const AU = {
  B: 0, H: 1, HKV: 2, TQ: 3, TK: 4, QSTART: 5, SCALE: 6, CHUNK: 7,
  Q: 8, K: 13, V: 18, DO: 23,
  MASK: 28, // batch stride, time stride, offset of M
  LOFF: 31, AUX: 32, AUX2: 33, ROWS: 34, SPLITS: 35, MODE: 36,
  words: 37,
} as const;

/** MODE values: no mask (M is a dummy), M = [B, Tk] 0/1 mask (f32 or i32 bits), M = i32 [B] valid key counts. */
export const MASK_NONE = 0, MASK_KEYS = 1, MASK_LENGTHS = 2;

export const NEG = -3.0e38; // finite "-inf": keeps exp(m_old - m_new) = exp(0) = 1 when nothing is visible yet

export interface AttnKernelCfg {
  D: number;
  /** dtypes of Q, K, V (and dO for backward). */
  dtypes: DType[];
  wg: number;
}

/**
 * Uniform block, constants and key-validity helpers every attention kernel shares (emit first:
 * it may hold `enable f16`). M (binding maskBinding) is read as raw u32 bits so one kernel
 * serves f32 and i32 masks: a key is masked iff its value is +-0.
 */
export function attnPrelude(cfg: AttnKernelCfg, maskBinding: number): string {
  let s = cfg.dtypes.includes('f16') ? 'enable f16;\n' : '';
  s += uniformBlock(AU.words);
  s += `const D: u32 = ${cfg.D}u;\nconst WG: u32 = ${cfg.wg}u;\nconst NEG: f32 = ${NEG.toExponential()};\n`;
  s += `fn tIdx(x: u32, b: u32, h: u32, t: u32) -> u32 { return u(x + 4u) + b * u(x) + h * u(x + 1u) + t * u(x + 2u); }\n`;
  s += storage(maskBinding, 'M', 'u32', false);
  s += `fn keyOk(b: u32, j: u32) -> bool {
  if (u(${AU.MODE}u) != ${MASK_KEYS}u) { return true; }
  return (M[u(${AU.MASK + 2}u) + b * u(${AU.MASK}u) + j * u(${AU.MASK + 1}u)] & 0x7fffffffu) != 0u;
}
fn keyEnd(b: u32) -> i32 {
  let tk = i32(u(${AU.TK}u));
  if (u(${AU.MODE}u) != ${MASK_LENGTHS}u) { return tk; }
  return clamp(bitcast<i32>(M[u(${AU.MASK + 2}u) + b * u(${AU.MASK}u)]), 0, tk);
}
`;
  return s;
}

const KB = 16; // keys scored per online-softmax step: one rescale of the accumulator per KB keys

/** Online-softmax walk over keys [jFrom, jTo) for one query row; `okExpr(jAbs)` is the per-key validity. */
function softmaxLoop(jFrom: string, jTo: string, okExpr: (j: string) => string): string {
  return `  var acc: array<f32, D>;
  var m = NEG; var l = 0.0;
  for (var j0 = ${jFrom}; j0 < ${jTo}; j0 += ${KB}u) {
    var s: array<f32, ${KB}>;
    var mb = m;
    for (var t = 0u; t < ${KB}u; t++) {
      let j = min(j0 + t, ${jTo} - 1u);
      let kr = ko + j * kt;
      var dot = 0.0;
      for (var d = 0u; d < D; d++) { dot += q[d] * f32(K[kr + d * kd]); }
      s[t] = select(NEG, dot, ${okExpr('j0 + t')} && keyOk(b, j));
      mb = max(mb, s[t]);
    }
    let c = exp(m - mb);
    l *= c;
    for (var d = 0u; d < D; d++) { acc[d] *= c; }
    for (var t = 0u; t < ${KB}u; t++) {
      let j = min(j0 + t, ${jTo} - 1u);
      let p = select(0.0, exp(s[t] - mb), s[t] > NEG);
      l += p;
      let vr = vo + j * vt;
      for (var d = 0u; d < D; d++) { acc[d] += p * f32(V[vr + d * vd]); }
    }
    m = mb;
  }
`;
}

/** Loads the (pre-scaled) query row and the K/V bases of head hk. */
const LOAD_Q = `  let qo = tIdx(${AU.Q}u, b, h, i); let qd = u(${AU.Q + 3}u);
  var q: array<f32, D>;
  for (var d = 0u; d < D; d++) { q[d] = f32(Q[qo + d * qd]) * scale; }
  let ko = tIdx(${AU.K}u, b, hk, 0u); let kt = u(${AU.K + 2}u); let kd = u(${AU.K + 3}u);
  let vo = tIdx(${AU.V}u, b, hk, 0u); let vt = u(${AU.V + 2}u); let vd = u(${AU.V + 3}u);
`;

const FINISH = (row: string) => `    let inv = select(0.0, 1.0 / l, l > 0.0);
    for (var d = 0u; d < D; d++) { OL[${row} * D + d] = acc[d] * inv; }
    OL[u(${AU.LOFF}u) + ${row}] = select(NEG, m + log(l), l > 0.0);
`;

function bindings(cfg: AttnKernelCfg): string {
  const [qd, kd, vd] = cfg.dtypes;
  return attnPrelude(cfg, 4) + storage(1, 'Q', qd, false) + storage(2, 'K', kd, false) + storage(3, 'V', vd, false) + storage(5, 'OL', 'f32', true);
}

/** Forward, block layout. Dispatch [ceil(Tq / wg), H, B]. */
export function attnForwardBlock(cfg: AttnKernelCfg) {
  const key = `attn_fwd_block|D${cfg.D}|${cfg.dtypes.join(',')}|wg${cfg.wg}`;
  const source = () => `${bindings(cfg)}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let H = u(${AU.H}u); let Tq = u(${AU.TQ}u); let qs = ui(${AU.QSTART}u); let scale = uf(${AU.SCALE}u);
  let b = wg.z; let h = wg.y; let i0 = wg.x * WG;
  let hk = h / (H / u(${AU.HKV}u));
  let il = i0 + lid.x;
  let i = min(il, Tq - 1u);
  // Uniform key bound: what the block's last row may see. Rows beyond Tq recompute row Tq-1
  // (no early return: it would make the loop divergent) and skip the write.
  let je = u32(clamp(i32(min(i0 + WG, Tq)) + qs, 0, keyEnd(b)));
  let rowEnd = min(i32(i) + qs + 1, i32(je));
${LOAD_Q}${softmaxLoop('0u', 'je', (j) => `i32(${j}) < rowEnd`)}
  if (il < Tq) {
    let row = (b * H + h) * Tq + il;
${FINISH('row')}  }
}
`;
  return { key, source };
}

/**
 * Forward, flat layout: thread x = row (b, h, i) flattened, workgroup y = key split. With
 * splits > 1 each thread writes a partial (acc[D], m, l) to OL at ((split * rows + row) * (D + 2)),
 * merged by attnCombine. Dispatch [ceil(rows / wg), splits].
 */
export function attnForwardFlat(cfg: AttnKernelCfg, split: boolean) {
  const key = `attn_fwd_flat|D${cfg.D}|${cfg.dtypes.join(',')}|wg${cfg.wg}|${split ? 'split' : 'one'}`;
  const source = () => `${bindings(cfg)}
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) g: vec3u) {
  let H = u(${AU.H}u); let Tq = u(${AU.TQ}u); let qs = ui(${AU.QSTART}u); let scale = uf(${AU.SCALE}u);
  let rows = u(${AU.ROWS}u);
  let r = min(g.x, rows - 1u);
  let i = r % Tq; let h = (r / Tq) % H; let b = r / (Tq * H);
  let hk = h / (H / u(${AU.HKV}u));
  let rowEnd = u32(clamp(i32(i) + qs + 1, 0, keyEnd(b)));
  let chunk = u(${AU.CHUNK}u);
  let jb = min(g.y * chunk, rowEnd);
  let je = min(jb + chunk, rowEnd);
${LOAD_Q}${softmaxLoop('jb', 'je', (j) => `${j} < je`)}
  if (g.x < rows) {
${split ? `    let o = (g.y * rows + r) * (D + 2u);
    for (var d = 0u; d < D; d++) { OL[o + d] = acc[d]; }
    OL[o + D] = m; OL[o + D + 1u] = l;
` : FINISH('r')}  }
}
`;
  return { key, source };
}

/** Merge split partials (binding 1, read) into OL (binding 2). Dispatch [ceil(rows / 64)]. */
export function attnCombine(D: number) {
  const key = `attn_combine|D${D}`;
  const source = () => `${uniformBlock(AU.words)}const D: u32 = ${D}u;\nconst NEG: f32 = ${NEG.toExponential()};
${storage(1, 'PART', 'f32', false)}${storage(2, 'OL', 'f32', true)}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3u) {
  let rows = u(${AU.ROWS}u); let S = u(${AU.SPLITS}u);
  let r = g.x;
  if (r >= rows) { return; }
  var mx = NEG;
  for (var s = 0u; s < S; s++) { mx = max(mx, PART[(s * rows + r) * (D + 2u) + D]); }
  var acc: array<f32, D>;
  var l = 0.0;
  for (var s = 0u; s < S; s++) {
    let o = (s * rows + r) * (D + 2u);
    let c = exp(PART[o + D] - mx) * select(0.0, 1.0, PART[o + D + 1u] > 0.0);
    l += c * PART[o + D + 1u];
    for (var d = 0u; d < D; d++) { acc[d] += c * PART[o + d]; }
  }
  let inv = select(0.0, 1.0 / l, l > 0.0);
  for (var d = 0u; d < D; d++) { OL[r * D + d] = acc[d] * inv; }
  OL[u(${AU.LOFF}u) + r] = select(NEG, mx + log(l), l > 0.0);
}
`;
  return { key, source };
}

// Fused scaled dot-product attention, forward (FlashAttention-2 style online softmax: no
// Tq x Tk matrix ever exists). The head size D is a compile-time constant because it sizes
// the per-thread register arrays (one query row's q and accumulator); every shape is a
// uniform, so a new sequence length reuses the compiled pipeline.
//
// Two thread layouts:
//  - block: a workgroup owns consecutive query rows of one (batch, head) and walks the keys
//    with a loop bound that is uniform across the workgroup, so every lane needs the same
//    key/value row at the same time. On llvmpipe (lavapipe) each buffer load inside a loop is
//    a per-lane, bounds-checked gather (~100 instructions for 8 lanes) whether or not the lane
//    addresses coincide, so lanes load a row cooperatively (lane w takes elements w, w+E, ...)
//    and subgroupBroadcast hands it out: one useful element per lane-load instead of one per
//    8 lanes (5-10x faster). Each lane also owns several rows, so every broadcast element feeds
//    several FMAs. Each row masks its own causal tail with select(). Used for prefill and
//    training (Tq large) and by both backward passes.
//  - flat: one thread per (batch, head, query) row, independent key ranges, optional split of
//    the key range over workgroups (partials merged by a combine pass). Used when Tq is small
//    (decode), where a block would leave most lanes idle; lanes read different rows anyway.
//
// Every loop over D is unrolled by the generator so that private arrays are only indexed by
// constants (see forD). The price is LLVM compile time on lavapipe, once per kernel (Mesa
// caches the result on disk): about 1 s per kernel for D <= 16, 3-5 s at D = 32, 7-12 s at
// D = 64 and ~20 s at D = 128 for the backward kernels.
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
  LOFF: 31, AUX: 32, AUX2: 33, ROWS: 34 /* flat-layout threads */, SPLITS: 35, MODE: 36,
  // Where output rows of D go (element offset, then batch, head, time strides): O (offset 0),
  // dQ, dK (dV at word AUX2 past dK). Outputs follow their inputs' layout (see oOut/dqOut/dkOut).
  OS: 37, DQS: 40, DKS: 44,
  // Sliding window (i32): query at absolute position P sees keys j with P - WIN < j <= P
  // (transformers' sliding_window_overlay). NO_WINDOW when attention is not windowed.
  WIN: 48,
  // Score soft-capping (f32, 0 = none): s -> CAP * tanh(s / CAP) after the scale (Gemma 2's attn_logit_softcapping).
  CAP: 49,
  words: 52,
} as const;

/** MODE values: no mask (M is a dummy), M = [B, Tk] 0/1 mask (f32 or i32 bits), M = i32 [B] valid key counts. */
export const MASK_NONE = 0, MASK_KEYS = 1, MASK_LENGTHS = 2;

/** WIN for unwindowed attention: past any sequence, and small enough that i + qs + WIN cannot overflow i32 (|qs| <= 2^30). */
export const NO_WINDOW = 2 ** 29;

export const NEG = -3.0e38; // finite "-inf": keeps exp(m_old - m_new) = exp(0) = 1 when nothing is visible yet

export interface AttnKernelCfg {
  D: number;
  /** dtypes of Q, K, V (and dO for backward). */
  dtypes: DType[];
  wg: number;
  /** Cooperative-load width W (lanes sharing one row load); 0 = no subgroups, plain loads. */
  sg: number;
}

/**
 * Uniform block, constants and key-validity helpers every attention kernel shares (emit first:
 * it may hold `enable f16`). M (binding maskBinding) is read as raw u32 bits so one kernel
 * serves f32 and i32 masks: a key is masked iff its value is +-0.
 */
export function attnPrelude(cfg: AttnKernelCfg, maskBinding: number): string {
  let s = cfg.dtypes.includes('f16') ? 'enable f16;\n' : '';
  if (cfg.sg) s += 'enable subgroups;\n';
  s += uniformBlock(AU.words);
  s += `const D: u32 = ${cfg.D}u;\nconst WG: u32 = ${cfg.wg}u;\nconst NEG: f32 = ${NEG.toExponential()};\n`;
  s += `fn tIdx(x: u32, b: u32, h: u32, t: u32) -> u32 { return u(x + 4u) + b * u(x) + h * u(x + 1u) + t * u(x + 2u); }\n`;
  // Start of an output row: O, dQ and dK/dV are laid out like their inputs (a [B,T,H,D]
  // projection permuted, or heads of one packed q|k|v tensor), so the layer reads them back
  // without a permute copy and the packed gradients land side by side in one buffer.
  s += `fn oOut(b: u32, h: u32, i: u32) -> u32 { return b * u(${AU.OS}u) + h * u(${AU.OS + 1}u) + i * u(${AU.OS + 2}u); }
fn dqOut(b: u32, h: u32, i: u32) -> u32 { return u(${AU.DQS}u) + b * u(${AU.DQS + 1}u) + h * u(${AU.DQS + 2}u) + i * u(${AU.DQS + 3}u); }
fn dkOut(b: u32, h: u32, j: u32) -> u32 { return u(${AU.DKS}u) + b * u(${AU.DKS + 1}u) + h * u(${AU.DKS + 2}u) + j * u(${AU.DKS + 3}u); }\n`;
  // tanh for the soft-cap: a series near 0, where exp-based tanh loses the small values to
  // cancellation (cap * tanh(s / cap) must stay s for a cap far above the scores).
  s += `fn tanhS(x: f32) -> f32 {
  let a = abs(x);
  if (a < 0.2) { let x2 = x * x; return x * (1.0 + x2 * (-0.33333334 + x2 * (0.13333334 + x2 * (-0.053968254 + x2 * 0.021869488)))); }
  let e = exp(-2.0 * min(a, 15.0));
  return sign(x) * (1.0 - e) / (1.0 + e);
}\n`;
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

/** Elements per cooperative load (the broadcast width): min(W, D); D is a multiple of it. */
export const chunkOf = (cfg: AttnKernelCfg) => Math.min(cfg.sg || 8, cfg.D);

export const rows = (R: number, f: (r: number) => string) => Array.from({ length: R }, (_, r) => f(r)).join('');

/**
 * One statement per element over D, unrolled by the generator. Every private-array index
 * must be a constant: a single dynamic index sends the whole array to memory on lavapipe,
 * where each access becomes a per-lane gather/scatter (measured 8-15x slower).
 */
export const forD = (D: number, f: (d: number) => string, sep = ' ') => Array.from({ length: D }, (_, d) => f(d)).join(sep);

/** Extra builtin parameter of main() for the cooperative loads, and the lane index lw they use. */
export const sgParam = (cfg: AttnKernelCfg) => (cfg.sg ? ', @builtin(subgroup_invocation_id) sgl: u32' : '');
export const mainHead = (cfg: AttnKernelCfg) => (cfg.sg ? `  let lw = sgl % ${chunkOf(cfg)}u;\n` : '');

/**
 * A row of a buffer (unit d-stride) that every lane of the workgroup needs at once. With
 * `guard`, the row reads as zeros when the guard is false: keys masked out by keyMask may
 * hold anything (NaN included) and 0 * NaN would leak into the sums.
 */
export interface SharedRow { name: string; buf: string; base: string; guard?: string }

/**
 * Reads shared rows and runs body(d) for each element d; element d of row `name` is the value
 * `<name>_<d>` (in scope until the end of the enclosing block). With cfg.sg the rows are loaded
 * cooperatively, chunk by chunk, and broadcast (must run in uniform control flow).
 */
export function dloop(cfg: AttnKernelCfg, srcs: SharedRow[], body: (d: number) => string): string {
  const E = chunkOf(cfg);
  let s = srcs.map((r) => `let ${r.name}_b = ${r.base};`).join(' ') + '\n';
  for (let c = 0; c < cfg.D / E; c++) {
    for (const r of srcs) {
      const ld = (i: string) => (r.guard ? `select(0.0, f32(${r.buf}[${i}]), ${r.guard})` : `f32(${r.buf}[${i}])`);
      s += cfg.sg
        ? `    let ${r.name}_x${c} = ${ld(`${r.name}_b + ${c * E}u + lw`)}; ${forD(E, (w) => `let ${r.name}_${c * E + w} = subgroupBroadcast(${r.name}_x${c}, ${w}u);`)}\n`
        : `    ${forD(E, (w) => `let ${r.name}_${c * E + w} = ${ld(`${r.name}_b + ${c * E + w}u`)};`)}\n`;
    }
    s += `    ${forD(E, (w) => body(c * E + w))}\n`;
  }
  return s;
}

/**
 * A second pass over shared rows a dloop already read: element d of row `name` is el(name).
 * With subgroups each chunk is broadcast again from the one value per lane the dloop loaded,
 * instead of keeping all D broadcast values live in between (fewer spills, faster compiles).
 */
export function dloopAgain(cfg: AttnKernelCfg, names: string[], body: (d: number, el: (name: string) => string) => string): string {
  const E = chunkOf(cfg);
  let s = '';
  for (let c = 0; c < cfg.D / E; c++) {
    const el = (n: string, d: number) => (cfg.sg ? `${n}r_${d}` : `${n}_${d}`);
    if (cfg.sg) s += `    { ${names.map((n) => forD(E, (w) => `let ${n}r_${c * E + w} = subgroupBroadcast(${n}_x${c}, ${w}u);`)).join(' ')}\n`;
    s += `    ${forD(E, (w) => body(c * E + w, (n) => el(n, c * E + w)))}${cfg.sg ? ' }' : ''}\n`;
  }
  return s;
}

// Lazy rescaling: the running max m only moves when a score beats it by more than this, so
// p = exp(s - m) <= e^8 and the accumulator is rescaled a handful of times per row instead
// of per key. The final L = m + log(l) is exact whatever m is.
const RESCALE = 8.0;

/**
 * Online-softmax step for key j over the lane's RQ query rows (q pre-scaled; okR(r) = key
 * visible to row r). Dot products are one dependent chain per row: splitting them into partial
 * sums gave no speedup and more live values, and LLVM's compile time grows quickly with those.
 */
function keyStep(cfg: AttnKernelCfg, RQ: number, okR: (r: number) => string): string {
  const D = cfg.D;
  return `    let kok = keyOk(b, j);
    ${rows(RQ, (r) => `var s${r} = 0.0; `)}
    ${dloop(cfg, [{ name: 'k', buf: 'K', base: 'ko + j * kt' }], (d) => rows(RQ, (r) => `s${r} += q${r}[${d}] * k_${d}; `))}${rows(RQ, (r) => `    ${capScore(`s${r}`)}
    let ok${r} = ${okR(r)} && kok;
    let sv${r} = select(NEG, s${r}, ok${r});
    if (sv${r} > m${r} + ${RESCALE.toFixed(1)}) {
      let c = exp(m${r} - sv${r});
      l${r} *= c;
      ${forD(D, (d) => `acc${r}[${d}] *= c;`)}
      m${r} = sv${r};
    }
    let p${r} = select(0.0, exp(sv${r} - m${r}), ok${r});
    l${r} += p${r};
`)}    ${dloop(cfg, [{ name: 'v', buf: 'V', base: 'vo + j * vt', guard: 'kok' }], (d) => rows(RQ, (r) => `acc${r}[${d}] += p${r} * v_${d}; `))}`;
}

/**
 * Soft-caps a scaled score in place (when CAP is set) and declares its derivative factor
 * dt_<name> = 1 - tanh^2 for the backward passes (tanhS: see attnPrelude).
 */
export const capScore = (name: string) =>
  `var dt_${name} = 1.0; if (cap > 0.0) { let th = tanhS(${name} / cap); ${name} = cap * th; dt_${name} = 1.0 - th * th; }`;

/** Loads pre-scaled query row i{r} and declares its softmax state. Operands have unit d-stride. */
const loadQ = (D: number, r: number, h = 'h') => `  let qo${r} = tIdx(${AU.Q}u, b, ${h}, i${r});
  var q${r}: array<f32, D>; var acc${r}: array<f32, D>;
  ${forD(D, (d) => `q${r}[${d}] = f32(Q[qo${r} + ${d}u]) * scale;`)}
  var m${r} = NEG; var l${r} = 0.0;
`;

const KV_BASE = `  let ko = tIdx(${AU.K}u, b, hk, 0u); let kt = u(${AU.K + 2}u);
  let vo = tIdx(${AU.V}u, b, hk, 0u); let vt = u(${AU.V + 2}u);
`;

const finish = (D: number, r: number, row: string, orow: string) => `    let inv = select(0.0, 1.0 / l${r}, l${r} > 0.0);
    let oo = ${orow};
    ${forD(D, (d) => `OL[oo + ${d}u] = acc${r}[${d}] * inv;`)}
    OL[u(${AU.LOFF}u) + ${row}] = select(NEG, m${r} + log(l${r}), l${r} > 0.0);
`;

/**
 * Head of a kernel whose workgroup owns WG * RQ query rows of one (b, h) (forward block and dQ):
 * the uniform key bound je is what the block's last row may see. Rows beyond Tq recompute row
 * Tq-1 (no early return: it would make the loop divergent) and skip the write.
 */
export const queryBlockHead = (RQ: number) => `  let H = u(${AU.H}u); let Tq = u(${AU.TQ}u); let qs = ui(${AU.QSTART}u); let scale = uf(${AU.SCALE}u);
  let b = wg.z; let h = wg.y; let ib = wg.x * WG * ${RQ}u;
  let hk = h / (H / u(${AU.HKV}u));
  let je = u32(clamp(i32(min(ib + WG * ${RQ}u, Tq)) + qs, 0, keyEnd(b)));
  // The block's first row sees nothing before its window: later rows start later still.
  let win = ui(${AU.WIN}u);
  let js = u32(clamp(i32(ib) + qs - win + 1, 0, i32(je)));
  let cap = uf(${AU.CAP}u);
`;

/** Owned query row r of that block: its index (clamped to Tq - 1) and causal key end. */
export const queryRow = (r: number) => `  let il${r} = ib + ${r}u * WG + lid.x;
  let i${r} = min(il${r}, Tq - 1u);
  let rowEnd${r} = min(i32(i${r}) + qs + 1, i32(je));
  let rowBeg${r} = i32(i${r}) + qs - win + 1;
`;

function bindings(cfg: AttnKernelCfg): string {
  const [qd, kd, vd] = cfg.dtypes;
  return attnPrelude(cfg, 4) + storage(1, 'Q', qd, false) + storage(2, 'K', kd, false) + storage(3, 'V', vd, false) + storage(5, 'OL', 'f32', true);
}

/**
 * Forward, block layout: a workgroup owns WG * rq query rows of one (b, h); lane x takes rows
 * ib + r * WG + x. Dispatch [ceil(Tq / (wg * rq)), H, B].
 */
export function attnForwardBlock(cfg: AttnKernelCfg, RQ = 1) {
  const key = `attn_fwd_block|D${cfg.D}|${cfg.dtypes.join(',')}|wg${cfg.wg}|sg${cfg.sg}|rq${RQ}`;
  const source = () => `${bindings(cfg)}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u${sgParam(cfg)}) {
${mainHead(cfg)}${queryBlockHead(RQ)}${rows(RQ, (r) => `${queryRow(r)}${loadQ(cfg.D, r)}`)}${KV_BASE}  for (var j = js; j < je; j++) {
${keyStep(cfg, RQ, (r) => `i32(j) < rowEnd${r} && i32(j) >= rowBeg${r}`)}  }
${rows(RQ, (r) => `  if (il${r} < Tq) {
    let row = (b * H + h) * Tq + il${r};
${finish(cfg.D, r, 'row', `oOut(b, h, il${r})`)}  }
`)}}
`;
  return { key, source };
}

/**
 * Forward, flat layout: thread x = (b, head group, i) flattened, workgroup y = key split. A
 * thread owns RG consecutive heads of one GQA group, so each key/value element it loads feeds
 * RG rows (decode is load-bound: every element is otherwise used once). Threads ROWS = B * (H / RG) * Tq.
 * With splits > 1 each row writes a partial (acc[D], m, l) to OL at ((split * B*H*Tq + row) * (D + 2)),
 * merged by attnCombine. Dispatch [ceil(ROWS / wg), splits].
 */
export function attnForwardFlat(cfg: AttnKernelCfg, split: boolean, RG = 1) {
  cfg = { ...cfg, sg: 0 }; // lanes read different rows: nothing to share
  const key = `attn_fwd_flat|D${cfg.D}|${cfg.dtypes.join(',')}|wg${cfg.wg}|${split ? 'split' : 'one'}|rg${RG}`;
  const source = () => `${bindings(cfg)}
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) g: vec3u) {
${mainHead(cfg)}  let H = u(${AU.H}u); let Tq = u(${AU.TQ}u); let qs = ui(${AU.QSTART}u); let scale = uf(${AU.SCALE}u);
  let threads = u(${AU.ROWS}u); let HG = H / ${RG}u;
  let t = min(g.x, threads - 1u);
  let i = t % Tq; let hg = (t / Tq) % HG; let b = t / (Tq * HG);
  let hk = (hg * ${RG}u) / (H / u(${AU.HKV}u));
  let rowEnd = u32(clamp(i32(i) + qs + 1, 0, keyEnd(b)));
  let rowBeg = u32(max(i32(i) + qs - ui(${AU.WIN}u) + 1, 0));
  let cap = uf(${AU.CAP}u);
  let chunk = u(${AU.CHUNK}u);
  let jb = max(min(g.y * chunk, rowEnd), rowBeg);
  let je = min(jb + chunk, rowEnd);
${rows(RG, (r) => `  let h${r} = hg * ${RG}u + ${r}u; let i${r} = i;\n${loadQ(cfg.D, r, `h${r}`)}`)}${KV_BASE}  for (var j = jb; j < je; j++) {
${keyStep(cfg, RG, () => 'true')}  }
  if (g.x < threads) {
${rows(RG, (r) => `  {
    let row = (b * H + h${r}) * Tq + i;
${split ? `    let o = (g.y * u(${AU.B}u) * H * Tq + row) * (D + 2u);
    ${forD(cfg.D, (d) => `OL[o + ${d}u] = acc${r}[${d}];`)}
    OL[o + D] = m${r}; OL[o + D + 1u] = l${r};
` : finish(cfg.D, r, 'row', `oOut(b, h${r}, i)`)}  }
`)}  }
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
  let rows = u(${AU.B}u) * u(${AU.H}u) * u(${AU.TQ}u); let S = u(${AU.SPLITS}u);
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

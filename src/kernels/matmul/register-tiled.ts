// Register-tiled matmul generator, shared by the register-blocked variants.
//
// A "group" of L lanes computes an R x (L*4*CB) block of C, R = L*RA rows. Each lane owns
// 4*CB columns and all R rows of the block. Per step of 4 k's a lane loads its own 4 k-rows of
// B (vec4 over its 4 columns) and RA vec4s of A; with L > 1 the A values are shared across the
// group with subgroupBroadcast instead of every lane loading every row. On llvmpipe (lavapipe)
// a subgroup is one SIMD register of invocations, storage loads are emitted per lane, and
// broadcasts are a register shuffle, so sharing A this way divides load work by L; the loads
// are what limit a CPU "GPU", not the multiply-adds.
//
// With L = 1 this is the classic per-thread RA x 4CB register tile (vec4 loads of A along K and
// of B along N), the variant for adapters without subgroups.
//
// Layouts: A 'vk' (row-major, vec4 along K), 'vm' (transposed, vec4 along M), 's' (any strides,
// scalar loads); B 'vn' (row-major), 'vk' (transposed), 's'. Sizes need not be tile multiples:
// row/column indices are clamped for loads and stores are guarded; when K % 4 != 0 the kernel
// is compiled with a masked K loop (loads past K are zeroed on both sides, so an Inf in the
// padding cannot leak in as 0 * Inf).
import { dispatch } from '../../tensor/runtime.js';
import { storage, uniformBlock, Uniforms } from '../uniforms.js';
import { batchChunks, canonical, halfHelpers, loader, operandWords, type AMode, type BMode } from './common.js';
import type { MatmulProblem } from './types.js';

export interface TileConfig {
  /** Lanes per group sharing A through subgroup broadcasts (1 = no subgroup ops). */
  lanes: number;
  /** vec4 loads of A per lane per 4 k's: the group computes lanes*ra rows. Multiple of 4 for 'vm' A. */
  ra: number;
  /** vec4 column groups per lane. */
  cb: number;
  /** Groups per workgroup along N (x) and M (y). */
  gx: number;
  gy: number;
}

export interface TileKernelKey {
  cfg: TileConfig;
  aMode: AMode;
  bMode: BMode;
  aType: string;
  bType: string;
  acc: boolean;
  /** K % 4 != 0: mask the k's past K. */
  kMask: boolean;
  /** N % 4 == 0: store C as vec4 (a quarter of the store code, which dominates compile time). */
  vecStore: boolean;
}

function keyOf(k: TileKernelKey): string {
  const c = k.cfg;
  return `mm_tile|L${c.lanes}|ra${c.ra}|cb${c.cb}|g${c.gx}x${c.gy}|A${k.aMode}${k.aType}|B${k.bMode}${k.bType}|acc${+k.acc}|km${+k.kMask}|vs${+k.vecStore}`;
}

const V = ['x', 'y', 'z', 'w'];

export function tiledSource(k: TileKernelKey): string {
  const { lanes: L, ra: RA, cb: CB, gx: GX, gy: GY } = k.cfg;
  const R = L * RA;
  // 'vm' A: each lane's vec4 covers 4 consecutive rows, so a lane needs ra/4 of them per k.
  if (k.aMode === 'vm' && RA % 4 !== 0) throw new Error(`matmul tile: A read along M needs ra % 4 == 0 (ra ${RA})`);
  const aVec = k.aMode !== 's', bVec = k.bMode !== 's';
  const la = loader('A', k.aType, aVec), lb = loader('B', k.bType, bVec);
  const WG = L * GX;
  const bc = (x: string, lane: number) => (L > 1 ? `subgroupBroadcast(${x}, ${lane}u)` : x);
  let s = L > 1 ? 'enable subgroups;\n' : '';
  s += uniformBlock(12);
  s += storage(1, 'A', la.type, false) + storage(2, 'B', lb.type, false) + storage(3, 'C', k.vecStore ? 'vec4<f32>' : 'f32', true);
  s += halfHelpers([['A', k.aType, aVec], ['B', k.bType, bVec]]);
  s += `@compute @workgroup_size(${WG}, ${GY}, 1)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let M = u(0u); let N = u(1u); let K = u(2u); let bi = wid.z + u(3u);
  let lane = lid.x % ${L}u; let grp = lid.x / ${L}u;
  let r0 = (wid.y * ${GY}u + lid.y) * ${R}u;
  let cqb = wid.x * ${GX * L * CB}u + grp * ${L}u + lane;
  let aB = u(4u) + bi * u(5u); let aRs = u(6u); let aCs = u(7u);
  let bB = u(8u) + bi * u(9u); let bRs = u(10u); let bCs = u(11u);
  let M1 = M - 1u; let N1 = N - 1u;
`;
  // ---- per-lane operand addresses (clamped: rows/cols past the edge reread valid data, never stored)
  const aGroups = k.aMode === 'vm' ? RA / 4 : RA; // vm: each vec4 covers 4 rows for one k
  if (k.aMode === 'vm') {
    for (let g = 0; g < aGroups; g++) s += `  let am${g} = aB + min(r0 / 4u + ${L * g}u + lane, M1 / 4u);\n`;
  } else {
    for (let j = 0; j < RA; j++) s += `  let ar${j} = aB + min(r0 + ${L * j}u + lane, M1) * aRs;\n`;
  }
  for (let c = 0; c < CB; c++) {
    s += `  let cq${c} = cqb + ${c * GX * L}u;\n`;
    if (k.bMode === 'vn') s += `  let bc${c} = bB + min(cq${c}, N1 / 4u);\n`;
    else for (let j = 0; j < 4; j++) s += `  let bc${c}_${j} = bB + min(4u * cq${c} + ${j}u, N1) * bCs;\n`;
  }
  for (let i = 0; i < R; i++) for (let c = 0; c < CB; c++) s += `  var acc${i}_${c} = vec4<f32>(0.0);\n`;

  // ---- K loop: one iteration = 4 k's
  const km = k.kMask;
  s += `  let KS = ${km ? '(K + 3u) / 4u' : 'K / 4u'};\n  for (var k4 = 0u; k4 < KS; k4++) {\n    let k = k4 * 4u;\n`;
  if (km) {
    s += `    let kv = vec4<bool>(k < K, k + 1u < K, k + 2u < K, k + 3u < K);\n`;
    for (let q = 0; q < 4; q++) s += `    let kk${q} = min(k + ${q}u, K - 1u);\n`;
  } else for (let q = 0; q < 4; q++) s += `    let kk${q} = k + ${q}u;\n`;
  const maskV = (e: string) => (km ? `select(vec4<f32>(0.0), ${e}, kv)` : e);
  const maskS = (e: string, q: number) => (km ? `select(0.0, ${e}, kv.${V[q]})` : e);
  const maskQ = (e: string, q: number) => (km ? `select(vec4<f32>(0.0), ${e}, kv.${V[q]})` : e);
  // A fragments
  if (k.aMode === 'vk') for (let j = 0; j < RA; j++) s += `    let a${j} = ${maskV(la.load(`ar${j} + k4`))};\n`;
  else if (k.aMode === 's') {
    for (let j = 0; j < RA; j++) {
      s += `    let a${j} = vec4<f32>(${[0, 1, 2, 3].map((q) => maskS(la.load(`ar${j} + kk${q} * aCs`), q)).join(', ')});\n`;
    }
  } else for (let g = 0; g < aGroups; g++) for (let q = 0; q < 4; q++) s += `    let a${g}_${q} = ${maskQ(la.load(`am${g} + kk${q} * aCs`), q)};\n`;
  // B fragments: b{q}_{c} = vec4 over the lane's 4 columns at k + q
  for (let c = 0; c < CB; c++) {
    if (k.bMode === 'vn') for (let q = 0; q < 4; q++) s += `    let b${q}_${c} = ${maskQ(lb.load(`bc${c} + kk${q} * bRs`), q)};\n`;
    else if (k.bMode === 'vk') {
      for (let j = 0; j < 4; j++) s += `    let bt${c}_${j} = ${maskV(lb.load(`bc${c}_${j} + k4`))};\n`;
      for (let q = 0; q < 4; q++) s += `    let b${q}_${c} = vec4<f32>(${[0, 1, 2, 3].map((j) => `bt${c}_${j}.${V[q]}`).join(', ')});\n`;
    } else {
      for (let q = 0; q < 4; q++) s += `    let b${q}_${c} = vec4<f32>(${[0, 1, 2, 3].map((j) => maskS(lb.load(`bc${c}_${j} + kk${q} * bRs`), q)).join(', ')});\n`;
    }
  }
  // Multiply-accumulate: row i's four A values (k..k+3) times the four B rows.
  const fmaRow = (i: number, av: string[]) => {
    let t = '';
    for (let c = 0; c < CB; c++) t += `      acc${i}_${c} += ${av[0]} * b0_${c} + ${av[1]} * b1_${c} + ${av[2]} * b2_${c} + ${av[3]} * b3_${c};\n`;
    return t;
  };
  if (k.aMode !== 'vm') {
    for (let j = 0; j < RA; j++) {
      for (let l = 0; l < L; l++) {
        const i = L * j + l;
        s += `    { let t = ${bc(`a${j}`, l)};\n${fmaRow(i, V.map((v) => `t.${v}`))}    }\n`;
      }
    }
  } else {
    for (let g = 0; g < aGroups; g++) {
      for (let l = 0; l < L; l++) {
        s += `    {\n`;
        for (let q = 0; q < 4; q++) s += `      let t${q} = ${bc(`a${g}_${q}`, l)};\n`;
        for (let c4 = 0; c4 < 4; c4++) s += fmaRow(4 * (L * g + l) + c4, [0, 1, 2, 3].map((q) => `t${q}.${V[c4]}`));
        s += `    }\n`;
      }
    }
  }
  s += `  }\n`;
  // ---- guarded stores (C is dense [batch, M, N]): vec4 when N % 4 == 0, else scalar
  s += `  let cB = bi * M;\n`;
  if (k.vecStore) {
    s += `  let N4 = N / 4u;\n`;
    for (let i = 0; i < R; i++) {
      s += `  if (r0 + ${i}u < M) {\n    let o = (cB + r0 + ${i}u) * N4;\n`;
      for (let c = 0; c < CB; c++) s += `    if (cq${c} < N4) { ${k.acc ? `C[o + cq${c}] += acc${i}_${c};` : `C[o + cq${c}] = acc${i}_${c};`} }\n`;
      s += `  }\n`;
    }
    return s + `}\n`;
  }
  for (let i = 0; i < R; i++) {
    s += `  if (r0 + ${i}u < M) {\n    let o = (cB + r0 + ${i}u) * N;\n`;
    for (let c = 0; c < CB; c++) {
      for (let j = 0; j < 4; j++) {
        s += `    { let col = 4u * cq${c} + ${j}u; if (col < N) { ${k.acc ? `C[o + col] += acc${i}_${c}.${V[j]};` : `C[o + col] = acc${i}_${c}.${V[j]};`} } }\n`;
      }
    }
    s += `  }\n`;
  }
  return s + `}\n`;
}

/** Record one tiled matmul (all batch chunks). */
export function launchTiled(p: MatmulProblem, cfg: TileConfig, aMode: AMode, bMode: BMode): void {
  const a = canonical(p.a, p.m, p.k, p.batch), b = canonical(p.b, p.k, p.n, p.batch);
  const key: TileKernelKey = { cfg, aMode, bMode, aType: a.dtype, bType: b.dtype, acc: !!p.accumulate, kMask: p.k % 4 !== 0, vecStore: p.n % 4 === 0 };
  const spec = { key: keyOf(key), source: () => tiledSource(key) };
  const cols = cfg.gx * cfg.lanes * cfg.cb * 4, rows = cfg.gy * cfg.lanes * cfg.ra;
  const aw = operandWords(a, aMode !== 's'), bw = operandWords(b, bMode !== 's');
  for (const [start, count] of batchChunks(p.batch)) {
    const u = new Uniforms(12);
    u.setAll(0, [p.m, p.n, p.k, start, ...aw, ...bw]);
    dispatch({ ...spec, buffers: [a.buffer, b.buffer, p.out], uniforms: u.u32, workgroups: [Math.ceil(p.n / cols), Math.ceil(p.m / rows), count], note: () => `${p.m}x${p.n}x${p.k} A${aMode} B${bMode}${p.accumulate ? ' +=' : ''}` });
  }
}

// Row kernels for softmax / log-softmax over the last axis: one workgroup per row. The forward
// is one streaming pass for (max, sum-exp) with online rescaling plus one write pass, so a
// vocab-wide row is read twice, never three times. Shared row helpers live here too (the
// loss and norm kernels reuse them).
import type { DType } from '../tensor/dtype.js';
import { gpu } from '../tensor/device.js';
import { grid } from '../tensor/runtime.js';
import { storage, uniformBlock } from './uniforms.js';

export const RW = 64;

/** `enable f16;` when any binding is f16. */
export const f16Header = (...ds: DType[]): string => (ds.includes('f16') ? 'enable f16;\n' : '');

/** Workgroup-wide sum/max over RW threads. Call from uniform control flow only (barriers). */
export const ROW_HELPERS = `
const RW: u32 = ${RW}u;
var<workgroup> red: array<f32, ${RW}>;
fn wg_sum(l: u32, v: f32) -> f32 {
  red[l] = v;
  workgroupBarrier();
  for (var s = RW / 2u; s > 0u; s = s >> 1u) { if (l < s) { red[l] = red[l] + red[l + s]; } workgroupBarrier(); }
  let r = red[0];
  workgroupBarrier();
  return r;
}
fn wg_max(l: u32, v: f32) -> f32 {
  red[l] = v;
  workgroupBarrier();
  for (var s = RW / 2u; s > 0u; s = s >> 1u) { if (l < s) { red[l] = max(red[l], red[l + s]); } workgroupBarrier(); }
  let r = red[0];
  workgroupBarrier();
  return r;
}
`;

/** Entry point of a row kernel: `row` (uniform across the workgroup) and lane `l`; u(0) = rows. */
/**
 * How a row kernel spreads a row: 'wg' = one RW-thread workgroup per row, partial sums merged
 * through workgroup memory (what a GPU wants for wide rows); 'thread' = one thread per row, 64
 * rows per workgroup, no barriers. On lavapipe every barrier is a coroutine switch of all 64
 * invocations, so rows of a model's width run several times faster one per thread (bench/rows.ts).
 * The kernel bodies are the same text either way: they loop `for (i = l; i < n; i += RW)` and
 * merge with wg_sum / wg_max, which in 'thread' mode are l = 0, RW = 1 and the identity.
 */
export type RowMode = 'wg' | 'thread';
export const ROWS_PER_WG = 64;

/** Row helpers plus the entry point for `mode`. */
export function rowPrelude(mode: RowMode): string {
  return mode === 'wg' ? ROW_HELPERS + ROW_MAIN : ROW_THREAD_MAIN;
}

/**
 * Rows at most this wide run one per thread on a software adapter. `npm run bench -- rows` on
 * lavapipe: thread mode won at every width measured, 6x at n = 64, 2.3x at n = 4096
 * (BENCHMARKS.md); far wider rows keep 'wg' so a few huge rows still spread over the cores.
 */
export const THREAD_ROW_MAX = 8192;

/**
 * The mode and grid for `rows` rows of width n. NLA_ROW_MODE=wg|thread forces a mode (for the
 * bench and the tests, which run every kernel both ways).
 */
export function rowLaunch(rows: number, n: number): { mode: RowMode; workgroups: [number, number] } {
  const forced = process.env.NLA_ROW_MODE;
  const mode: RowMode = forced === 'wg' || forced === 'thread' ? forced : gpu().info.isSoftware && n <= THREAD_ROW_MAX ? 'thread' : 'wg';
  return { mode, workgroups: grid(mode === 'wg' ? rows : Math.ceil(rows / ROWS_PER_WG)) };
}

const ROW_THREAD_MAIN = `
const RW: u32 = 1u;
fn wg_sum(l: u32, v: f32) -> f32 { return v; }
fn wg_max(l: u32, v: f32) -> f32 { return v; }
@compute @workgroup_size(${ROWS_PER_WG})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nw: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row = (wg.x + wg.y * nw.x) * ${ROWS_PER_WG}u + lid.x;
  let l = 0u;
  if (row >= u(0u)) { return; }
`;

export const ROW_MAIN = `@compute @workgroup_size(${RW})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nw: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row = wg.x + wg.y * nw.x;
  let l = lid.x;
  if (row >= u(0u)) { return; }
`;

/**
 * Online max and sum of exp(x - M) over indices l, l+RW, ... < n, merged across the
 * workgroup into M and S. A finite floor instead of -inf keeps exp(m - x) free of NaN
 * when a thread saw nothing or the row is all -inf (masked).
 */
export const ONLINE_LSE = (read: (i: string) => string): string => `
  var m = -3.4e38;
  var s = 0.0;
  for (var i = l; i < n; i += RW) {
    let x = ${read('i')};
    if (x > m) { s = s * exp(m - x) + 1.0; m = x; } else { s += exp(x - m); }
  }
  let M = wg_max(l, m);
  let S = wg_sum(l, s * exp(m - M));
`;

// Elementwise work over [rows, n] as a 2-D grid: x = chunks of a row, (y, z) = row (y is capped
// at 65535). Each thread covers `per` elements strided by the workgroup size: lavapipe pays per
// invocation and per integer division, so several elements per thread and no gid / n run ~5x
// faster. Wide rows (a vocab) use 256 x 8; narrow rows (a model dim) 64 x 8.
export interface Chunking { wg: number; per: number }
export const WIDE: Chunking = { wg: 256, per: 8 };
export const NARROW: Chunking = { wg: 64, per: 8 };
export function rowChunkGrid(rows: number, n: number, c: Chunking = WIDE): [number, number, number] {
  return [Math.max(1, Math.ceil(n / (c.wg * c.per))), Math.min(rows, 65535), Math.ceil(rows / 65535)];
}
/** A row-chunk kernel: per-row `setup` (row is uniform; rows past u(0) return), then `body` for each column j < n = u(1). */
export const ROW_CHUNK_MAIN = (setup: string, body: string, c: Chunking = WIDE): string => `@compute @workgroup_size(${c.wg})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row = wg.y + wg.z * 65535u;
  if (row >= u(0u)) { return; }
  let n = u(1u);
  ${setup}
  for (var e = 0u; e < ${c.per}u; e++) {
    let j = wg.x * ${c.wg * c.per}u + e * ${c.wg}u + lid.x;
    if (j >= n) { break; }
    ${body}
  }
}
`;

/** Forward. Uniforms: [0]=rows, [1]=n, [2]=input offset, [3]=output offset. Output dense f32. */
export function softmaxKernel(log: boolean, dtype: DType, mode: RowMode = 'wg') {
  const key = `softmax|${log ? 'log' : 'exp'}|${dtype}|${mode}`;
  const source = () => {
    let s = f16Header(dtype) + uniformBlock(4) + storage(1, 'a', dtype, false) + storage(2, 'out', 'f32', true) + rowPrelude(mode);
    s += `  let n = u(1u); let base = u(2u) + row * n; let ob = u(3u) + row * n;\n`;
    s += ONLINE_LSE((i) => `f32(a[base + ${i}])`);
    if (log) s += `  let lse = M + log(S);\n  for (var i = l; i < n; i += RW) { out[ob + i] = f32(a[base + i]) - lse; }\n}\n`;
    // A fully masked row (S == 0) gives zeros rather than 0/0.
    else s += `  let inv = select(1.0 / S, 0.0, S == 0.0);\n  for (var i = l; i < n; i += RW) { out[ob + i] = exp(f32(a[base + i]) - M) * inv; }\n}\n`;
    return s;
  };
  return { key, source };
}

/**
 * Backward from the saved output y. softmax: dx = y * (g - sum(g * y));
 * log-softmax: dx = g - exp(y) * sum(g). Uniforms: [0]=rows, [1]=n, [2]=y offset, [3]=g offset, [4]=dx offset.
 */
export function softmaxBackwardKernel(log: boolean, mode: RowMode = 'wg') {
  const key = `softmax_bwd|${log ? 'log' : 'exp'}|${mode}`;
  const source = () => {
    let s = uniformBlock(8) + storage(1, 'y', 'f32', false) + storage(2, 'g', 'f32', false) + storage(3, 'dx', 'f32', true) + rowPrelude(mode);
    s += `  let n = u(1u); let yb = u(2u) + row * n; let gb = u(3u) + row * n; let ob = u(4u) + row * n;\n  var acc = 0.0;\n`;
    if (log) {
      s += `  for (var i = l; i < n; i += RW) { acc += g[gb + i]; }\n  let d = wg_sum(l, acc);\n`;
      s += `  for (var i = l; i < n; i += RW) { dx[ob + i] = g[gb + i] - exp(y[yb + i]) * d; }\n}\n`;
    } else {
      s += `  for (var i = l; i < n; i += RW) { acc += g[gb + i] * y[yb + i]; }\n  let d = wg_sum(l, acc);\n`;
      s += `  for (var i = l; i < n; i += RW) { dx[ob + i] = y[yb + i] * (g[gb + i] - d); }\n}\n`;
    }
    return s;
  };
  return { key, source };
}

// Reductions of a dense [rows, n] block along n (one workgroup per row, tree in shared
// memory) and of a dense [n, cols] block along n (one thread per column and chunk of rows; used
// for bias and broadcast gradients, where n is large and cols small).
import type { DType } from '../tensor/dtype.js';
import { storage, uniformBlock } from './uniforms.js';

export type ReduceOp = 'sum' | 'max' | 'min' | 'lse';
export const ROW_WG = 64;

const INIT: Record<ReduceOp, string> = { sum: '0.0', max: '-3.4e38', min: '3.4e38', lse: '-3.4e38' };
const COMBINE: Record<ReduceOp, (a: string, b: string) => string> = {
  sum: (a, b) => `${a} + ${b}`,
  max: (a, b) => `max(${a}, ${b})`,
  min: (a, b) => `min(${a}, ${b})`,
  lse: (a, b) => `max(${a}, ${b})`,
};

/** Uniforms: [0]=rows, [1]=n, [2]=offset, [3]=output offset. */
export function rowReduceKernel(op: ReduceOp, dtype: DType) {
  const key = `reduce_rows|${op}|${dtype}`;
  const source = () => {
    const c = COMBINE[op];
    let s = (dtype === 'f16' ? 'enable f16;\n' : '') + uniformBlock(4) + storage(1, 'a', dtype, false) + storage(2, 'out', 'f32', true);
    s += `var<workgroup> sh: array<f32, ${ROW_WG}>;
fn tree(l: u32) {
  for (var s = ${ROW_WG / 2}u; s > 0u; s = s >> 1u) {
    if (l < s) { sh[l] = ${op === 'sum' ? 'sh[l] + sh[l + s]' : op === 'min' ? 'min(sh[l], sh[l + s])' : 'max(sh[l], sh[l + s])'}; }
    workgroupBarrier();
  }
}
@compute @workgroup_size(${ROW_WG})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nw: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row = wg.x + wg.y * nw.x;
  let rows = u(0u); let n = u(1u);
  if (row >= rows) { return; }
  let l = lid.x;
  let base = u(2u) + row * n;
  var acc = ${INIT[op]};
  for (var i = l; i < n; i += ${ROW_WG}u) { acc = ${c('acc', 'f32(a[base + i])')}; }
  sh[l] = acc;
  workgroupBarrier();
  tree(l);
`;
    if (op === 'lse') {
      s += `  let m = sh[0];
  workgroupBarrier();
  var e = 0.0;
  if (m > -3.3e38) { for (var i = l; i < n; i += ${ROW_WG}u) { e += exp(f32(a[base + i]) - m); } }
  sh[l] = e;
  workgroupBarrier();
  for (var s = ${ROW_WG / 2}u; s > 0u; s = s >> 1u) { if (l < s) { sh[l] = sh[l] + sh[l + s]; } workgroupBarrier(); }
  if (l == 0u) { out[u(3u) + row] = select(m + log(sh[0]), m, m <= -3.3e38); }
}
`;
    } else s += `  if (l == 0u) { out[u(3u) + row] = sh[0]; }\n}\n`;
    return s;
  };
  return { key, source };
}

/**
 * Sum over the leading axis of a dense [n, cols] block, in chunks of `chunk` rows: workgroup
 * (x, y) sums columns 64x.. of rows y*chunk.. into out[y, c], so a tall block ([20,400, 513]
 * logits of a probe) keeps every core busy; the [chunks, cols] partials are summed by a second
 * call with one chunk. Uniforms: [0]=n, [1]=cols, [2]=offset, [3]=chunk.
 */
export function colSumKernel(dtype: DType) {
  const key = `reduce_cols|sum|${dtype}`;
  const source = () =>
    (dtype === 'f16' ? 'enable f16;\n' : '') +
    uniformBlock(4) +
    storage(1, 'a', dtype, false) +
    storage(2, 'out', 'f32', true) +
    `@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3u, @builtin(workgroup_id) wg: vec3u) {
  let c = g.x; let n = u(0u); let cols = u(1u); let chunk = u(3u);
  if (c >= cols) { return; }
  let lo = wg.y * chunk;
  let hi = min(n, lo + chunk);
  var acc = 0.0;
  var o = u(2u) + lo * cols + c;
  for (var i = lo; i < hi; i++) { acc += f32(a[o]); o += cols; }
  out[wg.y * cols + c] = acc;
}
`;
  return { key, source };
}

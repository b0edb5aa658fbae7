// Integer-indexed gathers and their scatter-add gradients. Indices are clamped into range in
// every kernel (the ops check them on the CPU when a host copy exists), so a bad index can
// never read or write past a buffer.
//  - gatherRows:   out[r, d] = w[ids[r], d]                 (embedding, indexSelect on axis 0)
//  - scatterCsr:   dw[v, d] = sum over r in rows(v), in order, of g[r, d]   (deterministic)
//  - scatterAtomic: the same by atomic compare-exchange float adds (ids without a host copy)
//  - takeAlong:    out[r] = x[r, idx[r]], and its gradient dx[r, j] = g[r] * (j == idx[r])
import type { DType } from '../tensor/dtype.js';
import { f16Header, NARROW, ROW_CHUNK_MAIN } from './softmax.js';
import { MAIN_1D, storage, uniformBlock } from './uniforms.js';

export const GATHER_WG = 256;
const CLAMP = (e: string) => `u32(clamp(${e}, 0, i32(u(2u)) - 1))`;

/**
 * Over rowChunkGrid(rows, D, NARROW), for the vocabulary rows [lo, hi) bound (a weight bigger
 * than one binding is gathered one vocabulary chunk per dispatch; rows of other chunks are left
 * to their own dispatch). Uniforms: [0]=rows, [1]=D, [2]=V, [3]=w offset (from the binding's
 * start), [4]=ids offset, [5]=lo, [6]=hi, [7]=out offset. bf16 weights are read as packed words into f32 rows.
 */
export function gatherRowsKernel(dtype: DType) {
  const key = `gather_rows|${dtype}`;
  const bf = dtype === 'bf16';
  const read = bf ? `bitcast<f32>(select(w[(wb + j) >> 1u] << 16u, w[(wb + j) >> 1u] & 0xffff0000u, ((wb + j) & 1u) == 1u))` : `w[wb + j]`;
  const source = () =>
    f16Header(dtype) + uniformBlock(8) + storage(1, 'w', bf ? 'u32' : dtype, false) + storage(2, 'ids', 'i32', false) + storage(3, 'out', bf ? 'f32' : dtype, true) +
    ROW_CHUNK_MAIN(
      `let id = ${CLAMP('ids[u(4u) + row]')}; if (id < u(5u) || id >= u(6u)) { return; }
  let wb = u(3u) + (id - u(5u)) * n; let ob = u(7u) + row * n;`,
      `out[ob + j] = ${read};`,
      NARROW,
    );
  return { key, source };
}

/** dw rows [lo, lo + rows) of [V, D], rows summed in position order per vocab entry, over rowChunkGrid(rows, D, NARROW).
 * Uniforms: [0]=rows, [1]=D, [2]=V, [3]=g offset, [4]=lo, [5]=dw offset (from the binding's start), [6]=add to dw (not overwrite). rowPtr [V+1], rowsOf [n]. */
export function scatterCsrKernel() {
  const key = 'scatter_csr';
  const source = () =>
    uniformBlock(8) + storage(1, 'rowPtr', 'i32', false) + storage(2, 'rowsOf', 'i32', false) + storage(3, 'gy', 'f32', false) + storage(4, 'dw', 'f32', true) +
    ROW_CHUNK_MAIN(
      `let k0 = rowPtr[u(4u) + row]; let k1 = rowPtr[u(4u) + row + 1u]; let ob = u(5u) + row * n;`,
      `var acc = 0.0;
    for (var k = k0; k < k1; k++) { acc += gy[u(3u) + u32(rowsOf[k]) * n + j]; }
    dw[ob + j] = select(acc, dw[ob + j] + acc, u(6u) != 0u);`,
      NARROW,
    );
  return { key, source };
}

/** One thread per (r, d) of g [rows, D], adding into a zeroed dw the rows whose id is in [lo, hi).
 * Uniforms: [0]=rows*D, [1]=D, [2]=V, [3]=g offset, [4]=ids offset, [5]=lo, [6]=hi, [7]=dw offset (from the binding's start). */
export function scatterAtomicKernel() {
  const key = 'scatter_atomic';
  const source = () =>
    uniformBlock(8) + storage(1, 'ids', 'i32', false) + storage(2, 'gy', 'f32', false) +
    `@group(0) @binding(3) var<storage, read_write> dw: array<atomic<u32>>;\n` + MAIN_1D(GATHER_WG) +
    `  if (gid >= u(0u)) { return; }
  let dd = u(1u); let r = gid / dd; let d = gid % dd;
  let v = ${CLAMP('ids[u(4u) + r]')};
  if (v < u(5u) || v >= u(6u)) { return; }
  let add = gy[u(3u) + gid];
  let i = u(7u) + (v - u(5u)) * dd + d;
  var old = atomicLoad(&dw[i]);
  loop {
    let res = atomicCompareExchangeWeak(&dw[i], old, bitcast<u32>(bitcast<f32>(old) + add));
    if (res.exchanged) { break; }
    old = res.old_value;
  }
}
`;
  return { key, source };
}

/** Uniforms: [0]=rows, [1]=V (row length), [2]=V, [3]=x offset, [4]=idx offset, [5]=out offset. */
export function takeAlongKernel(dtype: DType) {
  const key = `take_along|${dtype}`;
  const source = () =>
    f16Header(dtype) + uniformBlock(8) + storage(1, 'x', dtype, false) + storage(2, 'idx', 'i32', false) + storage(3, 'out', 'f32', true) + MAIN_1D(GATHER_WG) +
    `  if (gid >= u(0u)) { return; }
  out[u(5u) + gid] = f32(x[u(3u) + gid * u(1u) + ${CLAMP('idx[u(4u) + gid]')}]);
}
`;
  return { key, source };
}

/** dx [rows, V] over the grid of rowChunkGrid. Uniforms: [0]=rows, [1]=V, [2]=V, [3]=g offset, [4]=idx offset, [5]=g stride, [6]=dx offset. */
export function takeAlongBackwardKernel() {
  const key = 'take_along_bwd';
  const source = () =>
    uniformBlock(8) + storage(1, 'idx', 'i32', false) + storage(2, 'gy', 'f32', false) + storage(3, 'dx', 'f32', true) +
    ROW_CHUNK_MAIN(`let tc = ${CLAMP('idx[u(4u) + row]')}; let gv = gy[u(3u) + row * u(5u)]; let ob = u(6u) + row * n;`, `dx[ob + j] = select(0.0, gv, j == tc);`);
  return { key, source };
}

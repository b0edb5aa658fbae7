// Rotary position embedding on x [..., T, H, Dh]; each thread rotates ROPE_PER consecutive pairs. cos/sin come
// from a table computed on the CPU exactly as llama2.c does in float32 (freq = 1/powf(theta,
// i/Dh), angle = pos * freq, cosf/sinf), so greedy decoding matches llama2.c; positions past
// the table fall back to GPU cos/sin of the same f32 angle. sign = -1 rotates backwards
// (the gradient, since a rotation's transpose is its inverse).
//   table: [0, half) = freq_k; then for each position p: (cos, sin) of pair k at half + 2 * (p * half + k)
import type { DType } from '../tensor/dtype.js';
import { f16Header } from './softmax.js';
import { storage, uniformBlock } from './uniforms.js';

export type RopeLayout = 'interleaved' | 'half';
export const ROPE_WG = 256;
/** Consecutive pairs per thread (one division per thread, not per pair). */
export const ROPE_PER = 8;
export const ropeGroups = (pairs: number): number => Math.ceil(Math.ceil(pairs / ROPE_PER) / ROPE_WG);

/** Threads over the flat [rows, dd] pairs, ROPE_PER consecutive each: `row`, pair `d`; `onRow` runs when row changes.
 * u(0) = rows * dd, u(1) = dd. */
const FLAT_CHUNK = (onRow: string, body: string): string => `@compute @workgroup_size(${ROPE_WG})
fn main(@builtin(global_invocation_id) g: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let total = u(0u); let dd = u(1u);
  var i = (g.x + g.y * nw.x * ${ROPE_WG}u) * ${ROPE_PER}u;
  if (i >= total) { return; }
  var row = i / dd; var d = i % dd;
  ${onRow}
  for (var e = 0u; e < ${ROPE_PER}u && i < total; e++) {
    ${body}
    i++; d++;
    if (d == dd) { d = 0u; row++; if (i < total) { ${onRow} } }
  }
}
`;

/** Uniforms: [0]=pairs, [1]=Dh/2, [2]=H, [3]=T, [4]=x offset, [5]=start (i32), [6]=positions offset,
 * [7]=positions stride per batch (0: shared [T]), [8]=table positions, [9]=sign (f32), [12..14]=x
 * strides of batch, t and head (x may be a strided view, e.g. heads of a packed q|k|v projection;
 * the head dim itself is unit-stride), [15]=heads rotated (later heads are copied: the v heads
 * of a packed q|k|v). out is dense. Workgroups: grid(ropeGroups(pairs)). */
export function ropeKernel(dtype: DType, layout: RopeLayout, explicitPositions: boolean) {
  const key = `rope|${dtype}|${layout}|${explicitPositions ? 'pos' : 'start'}`;
  const source = () => {
    let b = 1;
    let s = f16Header(dtype) + uniformBlock(12) + storage(b++, 'x', dtype, false) + storage(b++, 'tab', 'f32', false);
    if (explicitPositions) s += storage(b++, 'pos', 'i32', false);
    s += storage(b++, 'out', 'f32', true) + 'var<private> p: i32;\nvar<private> base: u32;\nvar<private> xb: u32;\nvar<private> keep: bool;\n';
    // row enumerates (batch, t, head); dd = Dh/2 pairs per row, d = the pair index k.
    const onRow = `{ let t = (row / u(2u)) % u(3u); let bi = row / (u(2u) * u(3u));
    p = ${explicitPositions ? 'pos[u(6u) + bi * u(7u) + t]' : 'ui(5u) + i32(t)'};
    base = row * 2u * dd; xb = u(4u) + bi * u(12u) + t * u(13u) + (row % u(2u)) * u(14u); keep = row % u(2u) >= u(15u); }`;
    const body = `var c: f32; var sn: f32;
    if (p >= 0 && u32(p) < u(8u)) {
      let o = dd + 2u * (u32(p) * dd + d);
      c = tab[o]; sn = tab[o + 1u];
    } else {
      let a = f32(p) * tab[d];
      c = cos(a); sn = sin(a);
    }
    sn = sn * uf(9u);
    let i0 = base + ${layout === 'interleaved' ? '2u * d' : 'd'};
    let i1 = base + ${layout === 'interleaved' ? '2u * d + 1u' : 'd + dd'};
    let v0 = f32(x[xb + i0 - base]); let v1 = f32(x[xb + i1 - base]);
    out[i0] = select(v0 * c - v1 * sn, v0, keep);
    out[i1] = select(v0 * sn + v1 * c, v1, keep);`;
    return s + FLAT_CHUNK(onRow, body);
  };
  return { key, source };
}

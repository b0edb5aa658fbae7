// Rotary position embedding on x [..., T, H, Dh], one thread per rotated pair. cos/sin come
// from a table computed on the CPU exactly as llama2.c does in float32 (freq = 1/powf(theta,
// i/Dh), angle = pos * freq, cosf/sinf), so greedy decoding matches llama2.c; positions past
// the table fall back to GPU cos/sin of the same f32 angle. sign = -1 rotates backwards
// (the gradient, since a rotation's transpose is its inverse).
//   table: [0, half) = freq_k; then for each position p: (cos, sin) of pair k at half + 2 * (p * half + k)
import type { DType } from '../tensor/dtype.js';
import { f16Header } from './softmax.js';
import { MAIN_1D, storage, uniformBlock } from './uniforms.js';

export type RopeLayout = 'interleaved' | 'half';
export const ROPE_WG = 256;

/** Uniforms: [0]=pairs, [1]=Dh, [2]=H, [3]=T, [4]=x offset, [5]=start (i32), [6]=positions offset,
 * [7]=positions stride per batch (0: shared [T]), [8]=table positions, [9]=sign (f32). */
export function ropeKernel(dtype: DType, layout: RopeLayout, explicitPositions: boolean) {
  const key = `rope|${dtype}|${layout}|${explicitPositions ? 'pos' : 'start'}`;
  const source = () => {
    let b = 1;
    let s = f16Header(dtype) + uniformBlock(12) + storage(b++, 'x', dtype, false) + storage(b++, 'tab', 'f32', false);
    if (explicitPositions) s += storage(b++, 'pos', 'i32', false);
    s += storage(b++, 'out', 'f32', true) + MAIN_1D(ROPE_WG);
    s += `  if (gid >= u(0u)) { return; }
  let dh = u(1u); let half = dh / 2u; let hh = u(2u); let tt = u(3u);
  let k = gid % half; let row = gid / half;
  let t = (row / hh) % tt; let bi = row / (hh * tt);
  let p = ${explicitPositions ? 'pos[u(6u) + bi * u(7u) + t]' : 'ui(5u) + i32(t)'};
  var c: f32; var sn: f32;
  if (p >= 0 && u32(p) < u(8u)) {
    let o = half + 2u * (u32(p) * half + k);
    c = tab[o]; sn = tab[o + 1u];
  } else {
    let a = f32(p) * tab[k];
    c = cos(a); sn = sin(a);
  }
  sn = sn * uf(9u);
  let base = row * dh;
  let i0 = base + ${layout === 'interleaved' ? '2u * k' : 'k'};
  let i1 = base + ${layout === 'interleaved' ? '2u * k + 1u' : 'k + half'};
  let v0 = f32(x[u(4u) + i0]); let v1 = f32(x[u(4u) + i1]);
  out[i0] = v0 * c - v1 * sn;
  out[i1] = v0 * sn + v1 * c;
}
`;
    return s;
  };
  return { key, source };
}

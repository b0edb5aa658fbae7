// Scatter new key/value rows [B, Hkv, Tn, D] into a preallocated cache [B, Hkv, Tmax, D] at a
// per-batch position pos[b] (i32 tensor), so batched decoding with ragged lengths needs no
// host round trip. Rows that would land at or past Tmax are dropped (a GPU cannot throw).
import type { DType } from '../tensor/dtype.js';
import { MAIN_1D, storage, uniformBlock } from './uniforms.js';

export const CACHE_WG = 256;
/**
 * [0]=n, [1..4]=src shape, [5..9]=src strides+offset, [10..14]=dst strides+offset, [15]=pos
 * offset, [16]=pos stride, [17]=end of the cache's time range, [18]=its start (i32; dst's
 * offset points at it), [19]=added to every position (the first src row when src is a part).
 * A cache beyond one binding is written a range at a time: rows landing outside it are skipped.
 */
export const CACHE_WORDS = 20;

export function cacheWriteKernel(src: DType, dst: DType) {
  const key = `attn_cache_write|${src}|${dst}`;
  const source = () =>
    (src === 'f16' || dst === 'f16' ? 'enable f16;\n' : '') +
    uniformBlock(CACHE_WORDS) +
    storage(1, 'S', src, false) + storage(2, 'POS', 'i32', false) + storage(3, 'C', dst, true) +
    MAIN_1D(CACHE_WG) +
    `  if (gid >= u(0u)) { return; }
  let d = gid % u(4u); let t = (gid / u(4u)) % u(3u); let h = (gid / (u(4u) * u(3u))) % u(2u); let b = gid / (u(4u) * u(3u) * u(2u));
  let p = POS[u(15u) + b * u(16u)] + i32(t) + ui(19u);
  if (p < max(ui(18u), 0) || p >= i32(u(17u))) { return; }
  let so = u(9u) + b * u(5u) + h * u(6u) + t * u(7u) + d * u(8u);
  let co = u(14u) + b * u(10u) + h * u(11u) + u32(p - ui(18u)) * u(12u) + d * u(13u);
  C[co] = ${dst}(S[so]);
}
`;
  return { key, source };
}

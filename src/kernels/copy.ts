// Strided copy: dst[view] = src[view], both arbitrary strided views of the same shape.
// Serves concat, slice-backward (scatter into a zero tensor) and in-place updates of a KV cache.
import type { DType } from '../tensor/dtype.js';
import { MAIN_1D, storage, uniformBlock } from './uniforms.js';

export const COPY_WG = 256;
export const copyLayout = (rank: number) => ({ shape: 4, src: 4 + rank, dst: 4 + 2 * rank + 1, words: 4 + 3 * rank + 2 });

export function copyKernel(src: DType, dst: DType, rank: number) {
  const key = `copy|${src}|${dst}|r${rank}`;
  const source = () => {
    const L = copyLayout(rank);
    let s = (src === 'f16' || dst === 'f16' ? 'enable f16;\n' : '') + uniformBlock(L.words);
    s += storage(1, 'a', src, false) + storage(2, 'out', dst, true);
    s += MAIN_1D(COPY_WG);
    s += `  if (gid >= u(0u)) { return; }\n  var r = gid; var os = u(${L.src + rank}u); var od = u(${L.dst + rank}u);\n`;
    for (let d = rank - 1; d >= 0; d--) {
      s += `  { let c = r % u(${L.shape + d}u); r = r / u(${L.shape + d}u); os += c * u(${L.src + d}u); od += c * u(${L.dst + d}u); }\n`;
    }
    s += `  out[od] = ${dst}(a[os]);\n}\n`;
    return s;
  };
  return { key, source };
}

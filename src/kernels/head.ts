// The gradient of log p(target) with respect to one vocabulary chunk of logits, recomputed
// chunk by chunk so the [rows, V] logits of a big vocabulary never exist at once (ops/head.ts).
import { ROW_CHUNK_MAIN, rowChunkGrid } from './softmax.js';
import { storage, uniformBlock } from './uniforms.js';

export { rowChunkGrid };

/**
 * dl[r, j] = g[r] * ([v0 + j == t[r]] - exp(l[r, j] - lse[r])) over rowChunkGrid(rows, n).
 * Uniforms: [0]=rows, [1]=n (chunk width), [2]=v0. Bindings: l [rows, n], lse [rows], g [rows], t [rows] i32, dl.
 */
export function headGradKernel() {
  const key = 'head_logprob_grad';
  const source = () =>
    uniformBlock(4) + storage(1, 'l', 'f32', false) + storage(2, 'lse', 'f32', false) + storage(3, 'g', 'f32', false) + storage(4, 't', 'i32', false) + storage(5, 'dl', 'f32', true) +
    ROW_CHUNK_MAIN(
      `let gr = g[row]; let m = lse[row]; let tj = t[row] - i32(u(2u)); let ob = row * n;`,
      `dl[ob + j] = gr * (select(0.0, 1.0, i32(j) == tj) - exp(l[ob + j] - m));`,
    );
  return { key, source };
}

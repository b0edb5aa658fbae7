// log p(target) under a language-model head, h @ W^T then log-softmax, for a vocabulary too big
// to hold [rows, V] logits: the head runs one vocabulary chunk at a time with a streaming
// logsumexp, and the backward recomputes each chunk's logits instead of keeping them. Memory is
// [rows, chunk] at a time whatever V is (a 0.5B model's 151,936-entry head at 256 rows would
// otherwise be 155 MB of logits, beyond one storage binding). Same values as
// tokenLogProbs(h @ W^T, targets), up to float rounding.
import { headGradKernel, rowChunkGrid } from '../../kernels/head.js';
import { Uniforms } from '../../kernels/uniforms.js';
import { withGrad } from '../autograd.js';
import { bindingLimit, offsetAlign } from '../binding.js';
import { dispatch } from '../runtime.js';
import { fmt } from '../shape.js';
import { noGrad, Tensor } from '../tensor.js';
import { isMulti, rowRanges } from '../pieces.js';
import { contiguous, copyInto, zeros } from './copy.js';
import { add, sub, where } from './elementwise.js';
import { takeAlong } from './index-ops.js';
import { matmul } from './matmul.js';
import { logsumexp } from './reduce.js';
import { concat, reshape, slice, transpose } from './view.js';

/** Logit elements per chunk (rows x chunk width): 8 Mi floats, 32 MiB. */
const CHUNK_ELEMS = 8 * 2 ** 20;
/** ... or fewer, when one binding holds less (each chunk's logits are bound whole). */
const chunkElems = () => Math.min(CHUNK_ELEMS, Math.floor((bindingLimit() - offsetAlign()) / 4));

export interface HeadOpts {
  /** Vocabulary entries per chunk (default: as many as keep rows x chunk under 32 MiB). */
  chunk?: number;
}

/**
 * log softmax(h @ w^T)[r, targets[r]] for h [rows, d], w [V, d] (f32, f16 or bf16), targets [rows]
 * i32 with a host copy (Tensor.from keeps one). Differentiable in h and w.
 */
export function headLogProbs(h: Tensor, w: Tensor, targets: Tensor, opts: HeadOpts = {}): Tensor {
  h.assertAlive('headLogProbs');
  w.assertAlive('headLogProbs');
  if (h.rank !== 2 || w.rank !== 2 || h.shape[1] !== w.shape[1]) throw new Error(`headLogProbs: h ${fmt(h.shape)} and w ${fmt(w.shape)} must be [rows, d] and [V, d]`);
  const [rows] = h.shape, V = w.shape[0];
  const host = targets.host;
  if (targets.dtype !== 'i32' || targets.rank !== 1 || targets.shape[0] !== rows || !host || targets.offset !== 0) throw new Error(`headLogProbs: targets must be i32 [${rows}] made with Tensor.from (a host copy), got ${targets.dtype} ${fmt(targets.shape)}`);
  for (let i = 0; i < rows; i++) if (host[i] < 0 || host[i] >= V) throw new Error(`headLogProbs: target ${host[i]} at row ${i} is out of range for a vocabulary of ${V}`);
  const chunk = Math.max(1, Math.min(V, opts.chunk ?? Math.floor(chunkElems() / Math.max(1, rows))));
  // Chunks never cross the pieces of a weight beyond one buffer (pieces.ts), so each slice is one buffer.
  const ranges = rowRanges(w, chunk);
  const logitsOf = ([v0, v1]: [number, number]) => matmul(h, transpose(slice(w, 0, v0, v1)));
  const [lse, picked] = noGrad(() => {
    let lse: Tensor | undefined, picked = zeros([rows]);
    for (const range of ranges) {
      const v0 = range[0], l = logitsOf(range), n = l.shape[1];
      const part = logsumexp(l, 1);
      const both = lse ? logsumexp(concat([reshape(lse, [rows, 1]), reshape(part, [rows, 1])], 1), 1) : part;
      if (lse) (lse.dispose(), part.dispose());
      lse = both;
      const inChunk = Tensor.from(Float32Array.from(host, (t) => (t >= v0 && t < v0 + n ? 1 : 0)));
      const local = Tensor.from(Int32Array.from(host, (t) => Math.min(n - 1, Math.max(0, t - v0))));
      const got = where(inChunk, takeAlong(l, local), picked);
      picked.dispose();
      picked = got;
      for (const t of [l, inChunk, local]) t.dispose();
    }
    return [lse!, picked];
  });
  const y = sub(picked, lse);
  picked.dispose();
  const out = withGrad('headLogProbs', y, [h, w], (g) => {
    for (const s of [h, w, targets, lse]) s.assertAlive('headLogProbs backward (saved tensor disposed)');
    const gd = contiguous(g);
    const dh = h.requiresGrad ? zeros(h.shape) : undefined;
    // A weight in pieces (pieces.ts) gets its gradient in pieces; each chunk's rows are copied into place.
    const dw = w.requiresGrad ? zeros(w.shape, 'f32', isMulti(w)) : undefined;
    for (const range of ranges) {
      noGrad(() => {
        const v0 = range[0], l = logitsOf(range), n = l.shape[1];
        const dl = Tensor.empty([rows, n], 'f32', 'headLogProbs backward');
        const u = new Uniforms(4).set(0, rows).set(1, n).set(2, v0);
        dispatch({ ...headGradKernel(), buffers: [l.buffer, lse.buffer, gd.buffer, targets.buffer, dl.buffer], uniforms: u.u32, workgroups: rowChunkGrid(rows, n) });
        l.dispose();
        if (dh) {
          const part = matmul(dl, slice(w, 0, v0, v0 + n));
          const sum = add(dh, part);
          copyInto(dh, sum);
          part.dispose();
          sum.dispose();
        }
        if (dw) {
          const part = matmul(transpose(dl), h);
          const rowsOf = slice(dw, 0, v0, v0 + n);
          copyInto(rowsOf, part);
          part.dispose();
          rowsOf.dispose();
        }
        dl.dispose();
      });
    }
    gd.dispose();
    return [dh, dw];
  });
  // lse lives as long as the graph needs it (as the fused cross-entropy's does); without a graph, free it now.
  if (!out.requiresGrad) lse.dispose();
  return out;
}

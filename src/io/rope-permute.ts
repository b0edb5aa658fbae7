// q/k row order for RoPE. llama2.c (and Meta's original checkpoints) rotate interleaved pairs
// of each head: rows (0,1), (2,3), …  Hugging Face's convert_llama_weights_to_hf.py permutes
// q/k so its "rotate half" code pairs row i with row i + head_dim/2 instead:
//     w.view(n_heads, head_dim/2, 2, in).transpose(1, 2).reshape(n_heads*head_dim, in)
// i.e. within every head, new row j*(head_dim/2) + i  <-  old row 2*i + j  (j in {0,1}).
// A loader that serves both kinds of checkpoint to one attention kernel must convert.
import type { HostTensor } from './host-tensor.js';

function permuteRows(w: Float32Array, nHeads: number, rows: number, cols: number, toHalf: boolean): Float32Array {
  if (w.length !== rows * cols) throw new Error(`rope permute: data has ${w.length} elements, expected ${rows}x${cols}`);
  if (rows % nHeads !== 0) throw new Error(`rope permute: ${rows} rows not divisible by ${nHeads} heads`);
  const headDim = rows / nHeads;
  if (headDim % 2 !== 0) throw new Error(`rope permute: head_dim ${headDim} is odd`);
  const half = headDim / 2;
  const out = new Float32Array(w.length);
  for (let h = 0; h < nHeads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const interleaved = h * headDim + 2 * i + j;
        const halfRow = h * headDim + j * half + i;
        const [src, dst] = toHalf ? [interleaved, halfRow] : [halfRow, interleaved];
        out.set(w.subarray(src * cols, (src + 1) * cols), dst * cols);
      }
    }
  }
  return out;
}

/** llama2.c/Meta interleaved order -> HF rotate-half order (HF's `permute`). */
export function interleavedToHalf(w: Float32Array, nHeads: number, rows: number, cols: number): Float32Array {
  return permuteRows(w, nHeads, rows, cols, true);
}

/** HF rotate-half order -> llama2.c/Meta interleaved order (inverse of `interleavedToHalf`). */
export function halfToInterleaved(w: Float32Array, nHeads: number, rows: number, cols: number): Float32Array {
  return permuteRows(w, nHeads, rows, cols, false);
}

/**
 * Same on a host tensor: a [rows, cols] weight or a [rows] bias (Qwen2's q/k biases need the
 * same permutation as their weight rows). `nHeads` is n_heads for q, n_kv_heads for k.
 */
export function permuteRopeTensor(t: HostTensor, nHeads: number, to: 'half' | 'interleaved'): HostTensor {
  if (!(t.data instanceof Float32Array)) throw new Error('rope permute: expected a float tensor');
  if (t.shape.length !== 1 && t.shape.length !== 2) throw new Error(`rope permute: expected 1-D or 2-D, got shape [${t.shape}]`);
  const rows = t.shape[0]!;
  const cols = t.shape.length === 2 ? t.shape[1]! : 1;
  const data = to === 'half' ? interleavedToHalf(t.data, nHeads, rows, cols) : halfToInterleaved(t.data, nHeads, rows, cols);
  return { dtype: t.dtype, shape: [...t.shape], data };
}

// Draw one token per row from softmax((h @ W^T) / T) without materialising or reading back the
// [rows, V] logits: the head runs one vocabulary chunk at a time (as headLogProbs does), a
// Gumbel-max kernel keeps each row's running best, and a streaming logsumexp gives log p(token)
// at temperature 1 (what generation records). Only 3 numbers per row come back to the host.
import { headSampleKernel } from '../../kernels/head-sample.js';
import { Uniforms } from '../../kernels/uniforms.js';
import { bindingLimit, offsetAlign } from '../binding.js';
import { dispatch, grid } from '../runtime.js';
import { fmt } from '../shape.js';
import { noGrad, Tensor } from '../tensor.js';
import { rowRanges } from '../pieces.js';
import { matmul } from './matmul.js';
import { logsumexp } from './reduce.js';
import { concat, reshape, slice, transpose } from './view.js';

/** Logit elements per chunk (rows x chunk width): 8 Mi floats, 32 MiB, as in head.ts. */
const CHUNK_ELEMS = 8 * 2 ** 20;
/** ... or fewer, when one binding holds less (each chunk's logits are bound whole). */
const chunkElems = () => Math.min(CHUNK_ELEMS, Math.floor((bindingLimit() - offsetAlign()) / 4));

export interface HeadSampleOpts {
  /** 0 = greedy (argmax of the logits, ties to the lower id). */
  temperature: number;
  /** One noise seed per row (u32): the row's draw depends on its seed only. Ignored when greedy. */
  seeds?: Uint32Array;
  /** Vocabulary entries per chunk (default: rows x chunk under 32 MiB). */
  chunk?: number;
}

export interface HeadSample {
  tokens: Int32Array;
  /** log softmax(logits)[token] at temperature 1. */
  logprobs: Float64Array;
}

/** h [rows, d] f32, w [V, d] (f32, f16 or bf16). */
export async function headSample(h: Tensor, w: Tensor, opts: HeadSampleOpts): Promise<HeadSample> {
  h.assertAlive('headSample');
  w.assertAlive('headSample');
  if (h.rank !== 2 || w.rank !== 2 || h.shape[1] !== w.shape[1] || h.dtype !== 'f32') throw new Error(`headSample: h ${fmt(h.shape)} ${h.dtype} and w ${fmt(w.shape)} must be [rows, d] f32 and [V, d]`);
  const [rows] = h.shape, V = w.shape[0];
  const t = opts.temperature;
  if (!(t >= 0) || !Number.isFinite(t)) throw new Error(`headSample: temperature must be a finite number >= 0, got ${t}`);
  if (t > 0 && (!opts.seeds || opts.seeds.length !== rows)) throw new Error(`headSample: sampling at temperature ${t} needs one seed per row (${rows}), got ${opts.seeds?.length ?? 'none'}`);
  const chunk = Math.max(1, Math.min(V, opts.chunk ?? Math.floor(chunkElems() / Math.max(1, rows))));
  const seeds = Tensor.from(Int32Array.from(opts.seeds ?? new Uint32Array(rows), (x) => x | 0), [rows], 'i32');
  const best = Tensor.from(new Float32Array(2 * rows), [rows, 2]);
  const tok = Tensor.from(new Int32Array(rows).fill(-1), [rows], 'i32');
  let lse: Tensor | undefined;
  try {
    noGrad(() => {
      // Chunks never cross the pieces of a weight beyond one buffer (pieces.ts), so each slice is one buffer.
      for (const [v0, v1] of rowRanges(w, chunk)) {
        const l = matmul(h, transpose(slice(w, 0, v0, v1))).contiguous();
        const n = l.shape[1];
        const u = new Uniforms(5).set(0, rows).set(1, n).set(2, v0).set(3, v0 === 0 ? 1 : 0).setF(4, t > 0 ? 1 / t : 0);
        dispatch({ ...headSampleKernel(), buffers: [l.buffer, seeds.buffer, best.buffer, tok.buffer], readOnly: [true, true, false, false], uniforms: u.u32, workgroups: grid(rows) });
        const part = logsumexp(l, 1);
        l.dispose();
        if (lse) {
          const both = logsumexp(concat([reshape(lse, [rows, 1]), reshape(part, [rows, 1])], 1), 1);
          lse.dispose();
          part.dispose();
          lse = both;
        } else lse = part;
      }
    });
    const [b, k, s] = [(await best.data()) as Float32Array, (await tok.data()) as Int32Array, (await lse!.data()) as Float32Array];
    const logprobs = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      if (k[r] < 0 || k[r] >= V) throw new Error(`headSample: no token drawn for row ${r} (its logits are NaN)`);
      logprobs[r] = b[2 * r + 1] - s[r];
    }
    return { tokens: Int32Array.from(k), logprobs };
  } finally {
    for (const x of [seeds, best, tok, lse]) x?.dispose();
  }
}

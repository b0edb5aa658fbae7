// One fused NaN/Inf check over many tensors (a training step's loss, gradients and parameters):
// a dispatch per tensor writes its flag into one small buffer, read back once. Cheap next to a
// step (one pass over each tensor, no readback per tensor), so the loops check every step.
import { nonFiniteKernel, OPT_WG } from '../../kernels/optim.js';
import { Uniforms } from '../../kernels/uniforms.js';
import { contiguous, zeros } from '../ops/copy.js';
import { flatChunks } from '../binding.js';
import { flatPieceRanges } from '../pieces.js';
import { dispatch } from '../runtime.js';
import { noGrad } from '../tensor.js';
import type { Tensor } from '../tensor.js';

const PER_GROUP = 16384;

/** A NaN or an infinity in a training step, naming where (loss, gradient of P, parameter P). */
export class NonFiniteError extends Error {
  override name = 'NonFiniteError';
}

/** The names of the tensors that hold a NaN or an infinity (empty when all are finite). */
export async function nonFinite(named: [string, Tensor][]): Promise<string[]> {
  if (named.length === 0) return [];
  const flags = zeros([named.length], 'i32');
  const copies: Tensor[] = [];
  named.forEach(([, t0], slot) => {
    t0.assertAlive('nonFinite');
    if (t0.dtype !== 'f32') throw new Error(`nonFinite: ${named[slot][0]} is ${t0.dtype}; only f32 tensors are checked`);
    const t = t0.isContiguous ? t0 : noGrad(() => contiguous(t0));
    if (t !== t0) copies.push(t);
    // A tensor in several buffers (pieces.ts): each piece in turn, flagging the same slot.
    for (const r of flatPieceRanges('nonFinite', [t]))
    for (const c of flatChunks([{ ...r.parts[0], bytesPer: 4 }], r.hi - r.lo)) {
      const n = c.hi - c.lo, groups = Math.min(64, Math.max(1, Math.ceil(n / PER_GROUP)));
      const u = new Uniforms(4).set(0, n).set(1, c.offsets[0]).set(2, slot).set(3, groups);
      dispatch({ ...nonFiniteKernel(), buffers: [c.bindings[0], flags.buffer], uniforms: u.u32, workgroups: [groups], note: () => `${named[slot][0]} (${n} values from ${c.lo}, ${OPT_WG * groups} threads)` });
    }
  });
  const got = (await flags.data()) as Int32Array;
  flags.dispose();
  for (const c of copies) c.dispose();
  return named.filter((_, i) => got[i] !== 0).map(([n]) => n);
}

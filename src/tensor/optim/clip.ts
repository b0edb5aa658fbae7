// Global gradient norm on the GPU without a readback: per-parameter partial sums of squares
// (one per thread of a few workgroups each) into one buffer, then one single-workgroup kernel producing
// [norm, coef] with coef = min(1, maxNorm / (norm + 1e-6)) as PyTorch's clip_grad_norm_.
import { clipFinalizeKernel, OPT_WG, sumSquaresKernel } from '../../kernels/optim.js';
import { Uniforms } from '../../kernels/uniforms.js';
import { launchElementwise } from '../ops/elementwise.js';
import { bindElements, bindingLimit, flatChunks } from '../binding.js';
import { sum } from '../ops/reduce.js';
import { concat, reshape } from '../ops/view.js';
import { bufferLimit } from '../pool.js';
import { flatPieceRanges } from '../pieces.js';
import { dispatch } from '../runtime.js';
import { keep } from '../scope.js';
import { Tensor } from '../tensor.js';

// Elements per partial-sum workgroup before another is added (at most 64 per parameter).
const PER_GROUP = 16384;

function denseGrad(op: string, p: Tensor): Tensor {
  const g = p.grad!;
  g.assertAlive(`${op} (gradient of ${p.name ?? 'parameter #' + p.id})`);
  if (g.dtype !== 'f32' || !g.isContiguous) throw new Error(`${op}: gradient of ${p.name ?? 'parameter #' + p.id} must be dense f32`);
  return g;
}

/** [norm, coef] (shape [2]) of the gradients of `params` (those without .grad are skipped). */
export function gradNormCoef(params: Iterable<Tensor>, maxNorm = Infinity, op = 'clipGradNorm'): Tensor {
  const grads = [...params].filter((p) => p.grad).map((p) => denseGrad(op, p));
  // Partials per buffer: many gradients' partials may be beyond one buffer (only at a lowered limit in practice).
  const cap = Math.floor(bufferLimit().bytes / 4);
  const maxGroups = Math.max(1, Math.min(64, Math.floor(cap / OPT_WG)));
  // A gradient beyond one binding is summed a range at a time, each range with its own partials;
  // a gradient in several buffers (pieces.ts), each of its pieces the same way.
  const pieces = grads.flatMap((g) => [...flatPieceRanges(op, [g])].flatMap((r) => [...flatChunks([{ ...r.parts[0], bytesPer: 4 }], r.hi - r.lo)]))
    .map((c) => ({ c, groups: Math.min(maxGroups, Math.max(1, Math.ceil((c.hi - c.lo) / PER_GROUP))) }));
  // Batches of pieces whose partials fit one buffer.
  const batches: (typeof pieces)[] = [[]];
  let used = 0;
  for (const p of pieces) {
    if (used + p.groups * OPT_WG > cap && batches[batches.length - 1].length) (batches.push([]), (used = 0));
    batches[batches.length - 1].push(p);
    used += p.groups * OPT_WG;
  }
  const partsOf = (batch: typeof pieces): { part: Tensor; total: number } => {
    const total = batch.reduce((a, p) => a + p.groups, 0) * OPT_WG;
    const part = Tensor.empty([Math.max(total, 1)], 'f32');
    let slot = 0;
    for (const { c, groups } of batch) {
      // Partials beyond one binding (many gradients): each piece binds its own range of them.
      const pb = bindElements(part.buffer, 4, slot, slot + groups * OPT_WG)!;
      const u = new Uniforms(4).set(0, c.hi - c.lo).set(1, c.offsets[0]).set(2, slot - pb.base).set(3, groups);
      dispatch({ ...sumSquaresKernel(), buffers: [c.bindings[0], pb.binding], uniforms: u.u32, workgroups: [groups] });
      slot += groups * OPT_WG;
    }
    return { part, total };
  };
  let fin: Tensor, count: number;
  if (batches.length === 1) {
    const { part, total } = partsOf(batches[0]);
    // Too many partials for one binding: summed first (split by ranges), then finalized from one.
    const wide = part.buffer.size > bindingLimit();
    fin = wide ? sum(part) : part;
    if (fin !== part) part.dispose();
    count = wide ? 1 : total;
  } else {
    // Several buffers of partials: each summed, the sums finalized together.
    const sums = batches.map((b) => {
      const { part } = partsOf(b);
      const s = reshape(sum(part), [1]);
      part.dispose();
      return s;
    });
    fin = concat(sums, 0);
    for (const s of sums) s.dispose();
    count = sums.length;
  }
  if (fin.offset !== 0) throw new Error('clipGradNorm: internal: the summed partials are a view at an offset');
  const out = Tensor.empty([2], 'f32');
  const u = new Uniforms(4).set(0, count).setF(1, Math.min(maxNorm, 3.4e38));
  dispatch({ ...clipFinalizeKernel(), buffers: [fin.buffer, out.buffer], uniforms: u.u32, workgroups: [1] });
  fin.dispose();
  return out;
}

// The returned norm is kept and owned here, valid until the next call: training loops often
// ignore it outside any tidy(), and a fresh tensor per step would leak.
let lastNorm: Tensor | undefined;

/**
 * Scale gradients so their global L2 norm is at most maxNorm; returns the norm before clipping
 * as a scalar tensor, valid until the next clipGradNorm call (read it with .item() only when
 * needed: that is a GPU sync). Each .grad is replaced by a scaled copy (grads may share
 * storage, so they are never scaled in place).
 */
export function clipGradNorm(params: Iterable<Tensor>, maxNorm: number): Tensor {
  if (!(maxNorm > 0)) throw new Error(`clipGradNorm: maxNorm must be positive, got ${maxNorm}`);
  const list = [...params];
  const nc = gradNormCoef(list, maxNorm);
  const coef = nc.view([], [], 1);
  for (const p of list) {
    if (!p.grad) continue;
    const scaled = keep(launchElementwise('clip_scale', 'x0 * x1', [p.grad, coef]));
    p.grad.dispose();
    p.grad = scaled;
  }
  coef.dispose();
  lastNorm?.dispose();
  lastNorm = keep(nc.view([], [], 0));
  nc.dispose();
  return lastNorm;
}

// Fused cross-entropy and per-token log-probs over logits [..., V] with integer targets [...].
// One row kernel per forward, one elementwise kernel per backward (see kernels/cross-entropy.ts);
// the reductions ('mean' / 'sum') are ordinary ops on the per-row losses.
import { ceBackwardKernel, ceForwardKernel } from '../../kernels/cross-entropy.js';
import { rowLaunch } from '../../kernels/softmax.js';
import { rowChunkGrid } from '../../kernels/softmax.js';
import { Uniforms } from '../../kernels/uniforms.js';
import { withGrad } from '../autograd.js';
import { dispatch, grid } from '../runtime.js';
import { fmt, numel, sameShape } from '../shape.js';
import { Tensor } from '../tensor.js';
import { affine, div, maximum } from './elementwise.js';
import { sum } from './reduce.js';
import { denseRows, rowsOf, wholeOf } from './softmax.js';
import { rowSplit } from '../binding.js';
import { isMulti, multiError, rowPieceRanges } from '../pieces.js';
import { concat, reshape, slice } from './view.js';

export interface CrossEntropyOpts {
  /** Target value whose rows contribute 0 and are not counted by 'mean' (e.g. -100 or a pad id). */
  ignoreIndex?: number;
  /** Default 'mean': sum of row losses / sum of row weights (count of non-ignored rows). */
  reduction?: 'mean' | 'sum' | 'none';
  /** f32 per-row weights (usually 0/1), same shape as targets; 'mean' divides by their sum. No gradient. */
  mask?: Tensor;
  /**
   * A [V] vector added to every row of logits before the softmax, with its gradient (the column
   * sum of the logits'): the same as crossEntropy(logits.add(bias), ...) without writing the
   * biased logits (a linear probe's bias over [rows, classes]).
   */
  bias?: Tensor;
}

function checkTargets(op: string, logits: Tensor, targets: Tensor, ignoreIndex: number | undefined, mask?: Tensor, bias?: Tensor): void {
  logits.assertAlive(op);
  targets.assertAlive(op);
  if (logits.rank < 1) throw new Error(`${op}: logits must have a vocab axis, got ${fmt(logits.shape)}`);
  if (logits.dtype === 'i32') throw new Error(`${op}: logits ${fmt(logits.shape)} must be floating point, got i32`);
  if (targets.dtype !== 'i32') throw new Error(`${op}: targets ${fmt(targets.shape)} must be i32, got ${targets.dtype}`);
  if (!sameShape(targets.shape, logits.shape.slice(0, -1))) {
    throw new Error(`${op}: targets ${fmt(targets.shape)} must match the leading dims of logits ${fmt(logits.shape)}`);
  }
  if (mask) {
    mask.assertAlive(op);
    if (!sameShape(mask.shape, targets.shape)) throw new Error(`${op}: mask ${fmt(mask.shape)} must match targets ${fmt(targets.shape)}`);
  }
  const V = logits.shape[logits.rank - 1];
  if (bias) {
    bias.assertAlive(op);
    if (!sameShape(bias.shape, [V])) throw new Error(`${op}: bias ${fmt(bias.shape)} must be [${V}], the vocab axis of logits ${fmt(logits.shape)}`);
    if (bias.dtype === 'i32') throw new Error(`${op}: bias ${fmt(bias.shape)} must be floating point, got i32`);
  }
  const h = targets.host;
  if (h) {
    for (let i = 0; i < h.length; i++) {
      if (h[i] !== ignoreIndex && (h[i] < 0 || h[i] >= V)) {
        throw new Error(`${op}: target ${h[i]} at position ${i} is out of range for logits ${fmt(logits.shape)} (vocab ${V})`);
      }
    }
  }
}

/** Per-row sign * w * (lse - x[t]) with its gradient; also the row weights w (no gradient). */
function rowNll(op: string, logits: Tensor, targets: Tensor, sign: 1 | -1, ignoreIndex?: number, mask?: Tensor, bias?: Tensor): { loss: Tensor; w: Tensor } {
  checkTargets(op, logits, targets, ignoreIndex, mask, bias);
  if (isMulti(logits) && logits.rank >= 2) return rowNllOverPieces(op, logits, targets, sign, ignoreIndex, mask, bias);
  const V = logits.shape[logits.rank - 1];
  const rows = numel(targets.shape);
  const loss = Tensor.empty(targets.shape, 'f32');
  const w = Tensor.empty(targets.shape, 'f32');
  if (rows === 0) return { loss, w };
  const lse = Tensor.empty([rows], 'f32');
  if (V === 0) throw new Error(`${op}: empty vocab axis in logits ${fmt(logits.shape)}`);
  const x = denseRows(op, logits), t = denseRows(op, targets), m = mask && denseRows(op, mask, true), bv = bias && denseRows(op, bias, true);
  // Logits beyond one binding ([B*T, V] of a real vocabulary) go a chunk of whole rows at a time.
  const ops = [rowsOf(x.t, V), rowsOf(t.t, 1), ...(m ? [rowsOf(m.t, 1)] : []), ...(bv ? [wholeOf(bv.t)] : []), rowsOf(loss, 1), rowsOf(lse, 1), rowsOf(w, 1)];
  for (const c of rowSplit(op, rows, ops)) {
    const u = new Uniforms(12).set(0, c.hi - c.lo).set(1, V).set(2, c.offsets[0]).set(3, c.offsets[1]);
    const k = 2 + (m ? 1 : 0) + (bv ? 1 : 0); // the outputs' offsets follow the inputs'
    u.setI(4, ignoreIndex ?? 0).set(5, ignoreIndex === undefined ? 0 : 1).setF(6, sign).set(7, m ? c.offsets[2] : 0).setAll(8, c.offsets.slice(k)).set(11, bv ? c.offsets[k - 1] : 0);
    const rl = rowLaunch(c.hi - c.lo, V);
    dispatch({ ...ceForwardKernel(x.t.dtype, !!m, rl.mode, !!bv), buffers: c.bindings, readOnly: c.bindings.map((_, i) => i < c.bindings.length - 3), uniforms: u.u32, workgroups: rl.workgroups });
  }
  if (m?.owned) m.t.dispose();
  const out = withGrad(op, loss, bias ? [logits, bias] : [logits], (g) => {
    for (const s of [x.t, t.t, lse, w, ...(bv ? [bv.t] : [])]) s.assertAlive(`${op} backward (saved tensor disposed)`);
    // A broadcast scalar gradient (from sum/mean) is read with stride 0 instead of being materialised.
    const bcast = g.dtype === 'f32' && g.strides.every((s) => s === 0);
    const gd = bcast ? { t: g, owned: false } : denseRows(`${op} backward`, g, true);
    const dx = Tensor.empty(logits.shape, 'f32');
    const gOp = bcast ? { ...wholeOf(gd.t), whole: 1 } : rowsOf(gd.t, 1); // a broadcast scalar: one element
    const bOps = bv ? [wholeOf(bv.t)] : [];
    for (const c of rowSplit(`${op} backward`, rows, [rowsOf(x.t, V), rowsOf(t.t, 1), rowsOf(lse, 1), rowsOf(w, 1), gOp, ...bOps, rowsOf(dx, V)])) {
      const ub = new Uniforms(12).set(0, c.hi - c.lo).set(1, V).set(2, c.offsets[0]).set(3, c.offsets[1]);
      ub.set(4, c.offsets[4]).set(5, bcast ? 0 : 1).setF(6, sign).set(7, c.offsets[2]).set(8, c.offsets[3]).set(9, c.offsets[5 + bOps.length]).set(10, bv ? c.offsets[5] : 0);
      dispatch({ ...ceBackwardKernel(x.t.dtype, !!bv), buffers: c.bindings, uniforms: ub.u32, workgroups: rowChunkGrid(c.hi - c.lo, V) });
    }
    if (gd.owned) gd.t.dispose();
    // The bias's gradient: the logits' summed over every row.
    return bias ? [dx, bias.requiresGrad ? sum(reshape(dx, [rows, V]), 0) : null] : [dx];
  });
  // Saved tensors live as long as the graph needs them; without a graph, free them now.
  if (!out.requiresGrad) {
    lse.dispose();
    if (x.owned) x.t.dispose();
    if (t.owned) t.t.dispose();
    if (bv?.owned) bv.t.dispose();
  }
  return { loss: out, w };
}

/**
 * rowNll over logits in several buffers (pieces.ts): each one-buffer range of rows (axis 0) with
 * its targets and mask rows, the per-row losses and weights concatenated (reductions follow as usual).
 */
function rowNllOverPieces(op: string, logits: Tensor, targets: Tensor, sign: 1 | -1, ignoreIndex?: number, mask?: Tensor, bias?: Tensor): { loss: Tensor; w: Tensor } {
  const losses: Tensor[] = [], ws: Tensor[] = [];
  for (const [lo, hi] of rowPieceRanges([logits], logits.shape[0])) {
    const part = slice(logits, 0, lo, hi);
    if (isMulti(part)) throw multiError(`${op} (rows of a strided view across pieces)`, part);
    const tg = slice(targets, 0, lo, hi), mk = mask && slice(mask, 0, lo, hi);
    const r = rowNll(op, part, tg, sign, ignoreIndex, mk, bias);
    losses.push(r.loss);
    ws.push(r.w);
    // Without a graph nothing holds the slices (with one, the backward reads them).
    if (!r.loss.requiresGrad) for (const t of [part, tg, mk]) t?.dispose();
  }
  if (losses.length === 1) return { loss: losses[0], w: ws[0] };
  const loss = concat(losses, 0), w = concat(ws, 0);
  // Each part's weights are read by its backward: kept while there is a graph.
  for (const t of [...losses, ...ws]) if (!t.requiresGrad && !losses[0].requiresGrad) t.dispose();
  return { loss, w };
}

/**
 * Cross-entropy of logits [..., V] against i32 targets [...] (fused log-softmax + gather).
 * 'none' returns per-row losses shaped like targets; ignored rows are 0.
 */
export function crossEntropy(logits: Tensor, targets: Tensor, opts: CrossEntropyOpts = {}): Tensor {
  const { ignoreIndex, reduction = 'mean', mask, bias } = opts;
  const { loss, w } = rowNll('crossEntropy', logits, targets, 1, ignoreIndex, mask, bias);
  if (reduction === 'none') {
    if (!loss.requiresGrad) w.dispose();
    return loss;
  }
  const total = sum(loss);
  if (reduction === 'sum') {
    if (!loss.requiresGrad) w.dispose();
    return total;
  }
  if (reduction !== 'mean') throw new Error(`crossEntropy: unknown reduction "${reduction as string}"`);
  // The count is known on the CPU when the targets came from the host; otherwise it is sum(w) on the GPU.
  if (!mask && targets.host) {
    let count = 0;
    for (const t of targets.host) if (t !== ignoreIndex) count++;
    if (!loss.requiresGrad) w.dispose();
    return affine(total, 1 / Math.max(count, 1));
  }
  return div(total, maximum(sum(w), 1e-30));
}

/** log p(target) per row: logits [..., V], targets [...] -> [...], with gradient (RL policy terms). */
export function tokenLogProbs(logits: Tensor, targets: Tensor, opts: { ignoreIndex?: number } = {}): Tensor {
  const { loss, w } = rowNll('tokenLogProbs', logits, targets, -1, opts.ignoreIndex);
  if (!loss.requiresGrad) w.dispose();
  return loss;
}

// Batched matmul with broadcast batch dims. Transposed operands are strided views: the
// kernel reads them through strides, so A^T in a backward pass costs no copy.
import type { MatOperand } from '../../kernels/matmul/types.js';
import { withGrad } from '../autograd.js';
import { broadcastShapes, fmt, numel } from '../shape.js';
import { Tensor } from '../tensor.js';
import { isMulti, multiError, rowRanges } from '../pieces.js';
import { contiguous } from './copy.js';
import { add } from './elementwise.js';
import { sumTo } from './reduce.js';
import { runMatmul } from './matmul-split.js';
import { concat, expand, reshape, slice, transpose } from './view.js';

/** One batch stride for the leading dims of `t` broadcast to `batch`, or undefined if they do not collapse. */
function batchStride(t: Tensor, batch: number[]): number | undefined {
  const pad = batch.length - (t.rank - 2);
  const eff = batch.map((_, i) => (i < pad || t.shape[i - pad] === 1 ? 0 : t.strides[i - pad]));
  const dims = batch.map((_, i) => i).filter((i) => batch[i] > 1);
  if (dims.every((i) => eff[i] === 0)) return 0;
  // Collapsible to a single stride s when eff[i] = s * (product of the later batch sizes).
  const s = eff[dims[dims.length - 1]];
  let acc = s;
  for (let q = dims.length - 1; q >= 0; q--) {
    if (eff[dims[q]] !== acc) return undefined;
    acc *= batch[dims[q]];
  }
  return s;
}

function operand(t: Tensor, batch: number[]): { op: MatOperand & { buffer: GPUBuffer }; owned?: Tensor } {
  let bs = batchStride(t, batch);
  let src = t;
  let owned: Tensor | undefined;
  if (bs === undefined) {
    owned = src = contiguous(expand(t, [...batch, ...t.shape.slice(-2)]));
    bs = src.strides[src.rank - 3];
  }
  return {
    op: { buffer: src.buffer, dtype: src.dtype, offset: src.offset, batchStride: bs, rowStride: src.strides[src.rank - 2], colStride: src.strides[src.rank - 1] },
    owned,
  };
}

function matmulRaw(a: Tensor, b: Tensor): Tensor {
  a.assertAlive('matmul');
  b.assertAlive('matmul');
  if (a.rank < 2 || b.rank < 2) throw new Error(`matmul: operands must be at least 2-D, got ${fmt(a.shape)} and ${fmt(b.shape)}`);
  const [m, k] = a.shape.slice(-2), [k2, n] = b.shape.slice(-2);
  if (k !== k2) throw new Error(`matmul: inner dims differ: ${fmt(a.shape)} @ ${fmt(b.shape)} (${k} vs ${k2})`);
  if (a.dtype === 'i32' || b.dtype === 'i32') throw new Error(`matmul: integer operands (${a.dtype}, ${b.dtype}) are not supported`);
  const batch = broadcastShapes('matmul (batch dims)', a.shape.slice(0, -2), b.shape.slice(0, -2));
  const out = Tensor.empty([...batch, m, n]);
  const nb = numel(batch);
  if (nb * m * n === 0) return out;
  for (const t of [a, b]) if (isMulti(t)) throw multiError('matmul', t);
  const A = operand(a, batch), B = operand(b, batch);
  if (k === 0) {
    A.owned?.dispose(); B.owned?.dispose();
    out.dispose();
    return Tensor.from(new Float32Array(nb * m * n), [...batch, m, n]);
  }
  runMatmul({ batch: nb, m, n, k, a: A.op, b: B.op, out, off: 0, ldo: n, bso: m * n, accumulate: false });
  A.owned?.dispose();
  B.owned?.dispose();
  return out;
}

/** a @ b. 1-D operands are treated as a row (a) or column (b) vector and squeezed back. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  if (a.rank === 1) return reshape(matmul(reshape(a, [1, a.shape[0]]), b), b.rank === 1 ? [] : [...b.shape.slice(0, -2), b.shape[b.rank - 1]]);
  if (b.rank === 1) return reshape(matmul(a, reshape(b, [b.shape[0], 1])), a.shape.slice(0, -1));
  if (isMulti(a) || isMulti(b)) return matmulPieces(a, b);
  // Dense [..., M, K] @ [K, N]: one [(...)*M, K] @ [K, N] product (bigger tiles, fewer dispatches),
  // and the weight gradient becomes a single product instead of a batch summed afterwards.
  if (b.rank === 2 && a.rank > 2 && a.isContiguous) {
    const k = a.shape[a.rank - 1];
    if (k !== b.shape[0]) throw new Error(`matmul: inner dims differ: ${fmt(a.shape)} @ ${fmt(b.shape)} (${k} vs ${b.shape[0]})`);
    return reshape(matmul(reshape(a, [numel(a.shape.slice(0, -1)), k]), b), [...a.shape.slice(0, -1), b.shape[1]]);
  }
  const y = matmulRaw(a, b);
  const plain = a.rank === 2 && b.rank === 2; // no batch to sum the gradient over
  return withGrad('matmul', y, [a, b], (g) => [
    a.requiresGrad ? (plain && isTransposedDense(a) ? transpose(matmul(b, transpose(g))) : sumTo(matmul(g, transpose(b)), a.shape)) : null,
    b.requiresGrad ? (plain && isTransposedDense(b) ? transpose(matmul(transpose(g), a)) : sumTo(matmul(transpose(a), g), b.shape)) : null,
  ]);
}

/**
 * A 2-D operand that is the transpose of a dense matrix (linear's w^T). Its gradient is computed
 * in that same layout, (g^T a)^T rather than a^T g, so the transpose's own backward hands the
 * weight a dense gradient: no copy per weight per step, and a tied embedding's two gradients
 * add as dense tensors.
 */
function isTransposedDense(t: Tensor): boolean {
  return t.rank === 2 && t.shape[0] > 1 && t.strides[0] === 1 && t.strides[1] === t.shape[0];
}

/**
 * a @ b where an operand lives in several buffers (pieces.ts): a dense [V, K] a (rows of the
 * output) or the transpose of a dense [V, K] b (linear's w^T: columns of the output, an LM head),
 * one product per piece, concatenated. The weight's gradient comes back as one dense part per
 * piece (through slice), which autograd makes the pieces of its gradient without a copy.
 */
function matmulPieces(a: Tensor, b: Tensor): Tensor {
  if (isMulti(b) && b.rank === 2 && isTransposedDense(b) && !isMulti(a)) {
    const w = transpose(b);
    const parts = rowRanges(w, w.shape[0]).map(([v0, v1]) => matmul(a, transpose(slice(w, 0, v0, v1))));
    const y = parts.length === 1 ? parts[0] : concat(parts, -1);
    if (parts.length > 1) for (const p of parts) if (!p.requiresGrad) p.dispose();
    return y;
  }
  if (isMulti(a) && a.rank === 2 && a.isContiguous && !isMulti(b)) {
    const parts = rowRanges(a, a.shape[0]).map(([v0, v1]) => matmul(slice(a, 0, v0, v1), b));
    const y = parts.length === 1 ? parts[0] : concat(parts, -2);
    if (parts.length > 1) for (const p of parts) if (!p.requiresGrad) p.dispose();
    return y;
  }
  throw multiError('matmul (only a dense [V, K] left operand or the transpose of one as the right operand work over pieces)', isMulti(a) ? a : b);
}

/** x @ w^T (+ bias): the Linear layer with weights stored [out, in], as PyTorch and HF do. */
export function linear(x: Tensor, w: Tensor, bias?: Tensor): Tensor {
  const y = matmul(x, transpose(w));
  return bias ? add(y, bias) : y;
}

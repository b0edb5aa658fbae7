// Row ops (norms, softmax) over a tensor in several buffers (pieces.ts): each range of rows of
// axis 0 that lies in one buffer goes through the op on its own, as an ordinary tensor, and the
// results are concatenated along axis 0 (in pieces again when above the limit). Autograd flows
// through the slices and the concat, so the gradient comes back in pieces too.
import { isMulti, multiError, rowPieceRanges } from '../pieces.js';
import { Tensor } from '../tensor.js';
import { concat, slice } from './view.js';

/** fn over each one-buffer row range of x (axis 0 must not be the op's own axis), concatenated. */
export function overRowPieces(op: string, x: Tensor, fn: (rows: Tensor) => Tensor): Tensor {
  const parts: Tensor[] = [];
  for (const [lo, hi] of rowPieceRanges([x], x.shape[0])) {
    const rows = slice(x, 0, lo, hi);
    if (isMulti(rows)) throw multiError(`${op} (rows of a strided view across pieces)`, rows);
    parts.push(fn(rows));
  }
  return parts.length === 1 ? parts[0] : concat(parts, 0);
}

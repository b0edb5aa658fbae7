// The NLA's reconstruction loss on L2-normalised vectors: both prediction and target scaled to
// norm sqrt(d), MSE = mean over d of the squared difference = 2(1 - cos), in [0, 4].
import * as T from '../tensor/index.js';
import type { Tensor } from '../tensor/tensor.js';

/** Rows of x ([B, d]) scaled to norm sqrt(d) (differentiable). */
export function normalizeToSqrtD(x: Tensor): Tensor {
  const d = x.shape[x.rank - 1];
  const sq = T.sum(T.square(x), -1, true);
  return T.mul(x, T.rsqrt(T.affine(sq, 1 / d, 1e-12)));
}

/** Per-row normalised MSE [B] between prediction and target (target normalised too; no gradient to it). */
export function normalizedMse(pred: Tensor, target: Tensor): Tensor {
  const u = normalizeToSqrtD(pred);
  const t = normalizeToSqrtD(target.detach());
  return T.mean(T.square(T.sub(u, t)), -1);
}

/** Host float64 version for rewards and evaluation. */
export function normalizedMseHost(pred: ArrayLike<number>, target: ArrayLike<number>, d: number, row = 0, trow = row): number {
  let np = 0, nt = 0;
  for (let i = 0; i < d; i++) {
    np += pred[row * d + i] ** 2;
    nt += target[trow * d + i] ** 2;
  }
  const sp = Math.sqrt(d / Math.max(np, 1e-30)), st = Math.sqrt(d / Math.max(nt, 1e-30));
  let s = 0;
  for (let i = 0; i < d; i++) s += (pred[row * d + i] * sp - target[trow * d + i] * st) ** 2;
  return s / d;
}

// The GRPO objective with a KL penalty to a reference policy, on per-token log-probs.
//   A_i   = (r_i - mean_group r) / (std_group r + 1e-4)        (std: unbiased, as TRL)
//   rho_t = exp(logp_t - logp_old_t)
//   pg_t  = -min(rho_t A, clip(rho_t, 1-eps, 1+eps) A)
//   kl_t  = min(exp(d) - d - 1, 10),  d = clamp(logp_ref_t - logp_t, -20, 20)   (k3 estimator)
//   loss  = sum_t mask_t (pg_t + beta kl_t) / sum_t mask_t                       (token mean)
// With one update per batch logp_old = logp detached, so rho = 1 in value but carries the gradient.
import * as T from '../tensor/index.js';
import type { Tensor } from '../tensor/tensor.js';

export interface GrpoOptions {
  epsilon?: number;
  beta?: number;
  /** 'token': mean over all unmasked tokens (default); 'sequence': mean per sequence, then over sequences. */
  normalize?: 'token' | 'sequence';
}

/**
 * Group-normalised advantages; rewards laid out group after group. scale 'none' keeps the
 * group-centred rewards unscaled (Dr. GRPO): groups whose samples differ more weigh more.
 */
export function groupAdvantages(rewards: number[], groupSize: number, scale: 'std' | 'none' = 'std'): number[] {
  if (groupSize < 1 || rewards.length % groupSize !== 0) throw new Error(`groupAdvantages: ${rewards.length} rewards do not split into groups of ${groupSize}`);
  const out = new Array<number>(rewards.length);
  for (let g = 0; g < rewards.length; g += groupSize) {
    const r = rewards.slice(g, g + groupSize);
    const mean = r.reduce((a, b) => a + b, 0) / r.length;
    const std = r.length > 1 ? Math.sqrt(r.reduce((a, b) => a + (b - mean) ** 2, 0) / (r.length - 1)) : 0;
    r.forEach((v, i) => (out[g + i] = scale === 'std' ? (v - mean) / (std + 1e-4) : v - mean));
  }
  return out;
}

export interface GrpoTerms {
  loss: Tensor; // scalar, differentiable in logp
  kl: Tensor; // scalar: masked mean of the k3 KL (for logging)
  clipFrac: Tensor; // scalar: share of tokens where the clipped branch was taken
}

/** logp, logpOld, logpRef, mask: [B, T]; advantages: [B]. */
export function grpoLoss(logp: Tensor, logpOld: Tensor, logpRef: Tensor, advantages: Tensor, mask: Tensor, opts: GrpoOptions = {}): GrpoTerms {
  const eps = opts.epsilon ?? 0.2, beta = opts.beta ?? 0.01;
  const [B] = logp.shape;
  for (const [n, t] of [['logpOld', logpOld], ['logpRef', logpRef], ['mask', mask]] as const) {
    if (t.shape.join() !== logp.shape.join()) throw new Error(`grpoLoss: ${n} has shape [${t.shape}], logp has [${logp.shape}]`);
  }
  if (advantages.shape.join() !== `${B}`) throw new Error(`grpoLoss: advantages have shape [${advantages.shape}], expected [${B}]`);
  const A = advantages.reshape([B, 1]);
  const ratio = T.exp(T.sub(logp, logpOld.detach()));
  const pg = T.neg(T.minimum(T.mul(ratio, A), T.mul(T.clamp(ratio, 1 - eps, 1 + eps), A)));
  const d = T.clamp(T.sub(logpRef.detach(), logp), -20, 20);
  const kl = T.minimum(T.affine(T.sub(T.exp(d), d), 1, -1), 10);
  const perToken = T.mul(T.add(pg, T.affine(kl, beta)), mask);
  let loss: Tensor;
  if ((opts.normalize ?? 'token') === 'token') loss = T.div(T.sum(perToken), T.maximum(T.sum(mask), 1));
  else loss = T.mean(T.div(T.sum(perToken, 1), T.maximum(T.sum(mask, 1), 1)));
  return T.noGrad(() => {
    const n = T.maximum(T.sum(mask), 1);
    const klMean = T.div(T.sum(T.mul(kl, mask)), n);
    const clipped = T.mul(T.ne(T.mul(ratio, A), T.minimum(T.mul(ratio, A), T.mul(T.clamp(ratio, 1 - eps, 1 + eps), A))), mask);
    return { loss, kl: klMean, clipFrac: T.div(T.sum(clipped), n) };
  });
}

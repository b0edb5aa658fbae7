// The NLA trainers' optimizer: AdamW with linear warm-up and cosine decay, and gradient
// clipping by global norm, on the engine's fused update kernel.
import { AdamW, cosineWithWarmup, gradNormCoef } from '../tensor/optim/index.js';
import { nonFinite, NonFiniteError } from '../tensor/optim/finite.js';
import type { Tensor } from '../tensor/tensor.js';
import { zeroGrad } from '../tensor/autograd.js';

/**
 * What a step does when its loss or a gradient holds a NaN or an infinity: stop the run (the
 * default), or skip the update (parameters and optimizer state untouched) and go on. A
 * parameter that already holds one always stops the run.
 */
export type OnNonFinite = 'stop' | 'skip';

export { NonFiniteError };

export interface TrainSchedule {
  lr: number;
  warmup?: number;
  /** Total steps for the cosine decay (default: no decay). */
  decaySteps?: number;
  minLrRatio?: number;
  weightDecay?: number;
  clip?: number;
  /** Learning-rate multiplier for 1-D parameters (norm gains, biases). Default 1. */
  gainLrScale?: number;
  /** On a NaN or an infinity in the loss or a gradient (default stop). */
  onNonFinite?: OnNonFinite;
}

export interface StepOptimizer {
  /**
   * Check the loss, the gradients and the parameters (one fused check, one readback), then
   * clip, update and clear gradients. Returns the learning rate, and whether the update was
   * skipped for a NaN or an infinity (onNonFinite 'skip'); throws NonFiniteError otherwise.
   */
  step(step: number, loss?: Tensor): Promise<{ lr: number; skipped: boolean }>;
  dispose(): void;
  readonly adam: AdamW;
}

/** Throws NonFiniteError naming each of `params` that holds a NaN or an infinity. */
export async function assertFiniteParams(params: Tensor[], where: string): Promise<void> {
  const bad = await nonFinite(params.map((p) => [`parameter ${p.name ?? '#' + p.id}`, p]));
  if (bad.length) throw new NonFiniteError(`${where}: NaN or Inf in ${listed(bad)}`);
}

const listed = (names: string[]) => (names.length > 6 ? `${names.slice(0, 6).join(', ')} and ${names.length - 6} more` : names.join(', '));

export function makeOptimizer(params: Tensor[], s: TrainSchedule, label = 'train'): StepOptimizer {
  const trainable = params.filter((p) => p.requiresGrad);
  // Clipping is fused into the update (a scale tensor on the GPU): no readback per step.
  // One group unless the gains get their own rate (one group keeps checkpoint order unchanged).
  const gs = s.gainLrScale ?? 1;
  const groups = gs === 1 ? trainable : [
    { params: trainable.filter((p) => p.shape.length > 1) },
    { params: trainable.filter((p) => p.shape.length <= 1), lrScale: gs },
  ].filter((g) => g.params.length);
  const adam = new AdamW(groups, { lr: s.lr, weightDecay: s.weightDecay ?? 0, maxGradNorm: s.clip });
  return {
    adam,
    async step(step: number, loss?: Tensor) {
      const lr = s.decaySteps
        ? cosineWithWarmup(step, { baseLr: s.lr, warmup: s.warmup ?? 0, total: s.decaySteps, minRatio: s.minLrRatio ?? 0.1 })
        : s.lr * Math.min(1, (step + 1) / Math.max(1, s.warmup ?? 0));
      // One fused check: the loss and the global gradient norm, which is NaN or infinite when
      // any gradient element is (computed here when clipping, and handed to the update). A
      // parameter turned NaN by an update shows in the next step's loss. Only after a hit are
      // the gradients and parameters checked one by one, to name them.
      const grads = trainable.filter((p) => p.grad);
      const nc = s.clip !== undefined && grads.length ? gradNormCoef(adam.params, s.clip, label) : undefined;
      const named = (ts: [string, Tensor][]) => [...(loss ? [['loss', loss] as [string, Tensor]] : []), ...ts];
      const each = (): [string, Tensor][] => [
        ...grads.map((p): [string, Tensor] => [`gradient of ${p.name ?? '#' + p.id}`, p.grad!]),
        ...trainable.map((p): [string, Tensor] => [`parameter ${p.name ?? '#' + p.id}`, p]),
      ];
      let bad = await nonFinite(named(nc ? [['gradient norm', nc]] : grads.map((p): [string, Tensor] => [`gradient of ${p.name ?? '#' + p.id}`, p.grad!])));
      if (bad.length) bad = await nonFinite(named(each()));
      if (bad.length) {
        nc?.dispose();
        const poisoned = bad.some((b) => b.startsWith('parameter '));
        if (poisoned || s.onNonFinite !== 'skip') {
          zeroGrad(trainable);
          const why = poisoned ? 'the parameters are already poisoned; resume from the last checkpoint' : 'the update was not applied (--on-nan skip skips such steps)';
          throw new NonFiniteError(`${label} step ${step}: NaN or Inf in ${listed(bad)}; ${why}`);
        }
        zeroGrad(trainable);
        return { lr, skipped: true };
      }
      adam.lr = lr;
      adam.step(nc);
      zeroGrad(trainable);
      return { lr, skipped: false };
    },
    dispose() {
      adam.dispose();
    },
  };
}

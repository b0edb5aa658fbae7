// The NLA trainers' optimizer: AdamW with linear warm-up and cosine decay, and gradient
// clipping by global norm, on the engine's fused update kernel.
import { AdamW, cosineWithWarmup } from '../tensor/optim/index.js';
import type { Tensor } from '../tensor/tensor.js';
import { zeroGrad } from '../tensor/autograd.js';

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
}

export interface StepOptimizer {
  /** Clip, update, clear gradients; returns the learning rate used. */
  step(step: number): number;
  dispose(): void;
  readonly adam: AdamW;
}

export function makeOptimizer(params: Tensor[], s: TrainSchedule): StepOptimizer {
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
    step(step: number) {
      const lr = s.decaySteps
        ? cosineWithWarmup(step, { baseLr: s.lr, warmup: s.warmup ?? 0, total: s.decaySteps, minRatio: s.minLrRatio ?? 0.1 })
        : s.lr * Math.min(1, (step + 1) / Math.max(1, s.warmup ?? 0));
      adam.lr = lr;
      adam.step()?.dispose();
      zeroGrad(trainable);
      return lr;
    },
    dispose() {
      adam.dispose();
    },
  };
}

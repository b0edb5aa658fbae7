// Learning-rate schedules: functions of the number of completed steps, passed as `lr` to an
// optimizer (or called by hand).

export interface CosineOpts {
  maxLr: number;
  /** Floor reached at totalSteps and kept afterwards (default 0). */
  minLr?: number;
  /** Linear ramp from maxLr/warmupSteps up to maxLr over the first warmupSteps steps. */
  warmupSteps?: number;
  totalSteps: number;
}

/** Linear warm-up, then cosine decay from maxLr to minLr at totalSteps (nanoGPT / llama recipe). */
export function cosineSchedule({ maxLr, minLr = 0, warmupSteps = 0, totalSteps }: CosineOpts): (step: number) => number {
  if (!(totalSteps > 0) || warmupSteps < 0 || warmupSteps > totalSteps) {
    throw new Error(`cosineSchedule: need 0 <= warmupSteps (${warmupSteps}) <= totalSteps (${totalSteps}) and totalSteps > 0`);
  }
  return (step) => {
    if (step < warmupSteps) return (maxLr * (step + 1)) / warmupSteps;
    if (step >= totalSteps) return minLr;
    const t = totalSteps === warmupSteps ? 1 : (step - warmupSteps) / (totalSteps - warmupSteps);
    return minLr + 0.5 * (maxLr - minLr) * (1 + Math.cos(Math.PI * t));
  };
}

/** Linear warm-up to lr, then constant. */
export function warmupSchedule(lr: number, warmupSteps: number): (step: number) => number {
  return (step) => (step < warmupSteps ? (lr * (step + 1)) / warmupSteps : lr);
}

/** Linear warm-up, then linear decay to minLr at totalSteps. */
export function linearSchedule({ maxLr, minLr = 0, warmupSteps = 0, totalSteps }: CosineOpts): (step: number) => number {
  const cos = cosineSchedule({ maxLr, minLr, warmupSteps, totalSteps });
  return (step) => {
    if (step < warmupSteps || step >= totalSteps) return cos(step);
    return maxLr + ((minLr - maxLr) * (step - warmupSteps)) / Math.max(totalSteps - warmupSteps, 1);
  };
}

/** Functional form: the learning rate at `step` for warm-up then cosine decay to baseLr * minRatio at `total`. */
export function cosineWithWarmup(step: number, o: { baseLr: number; warmup?: number; total: number; minRatio?: number }): number {
  return cosineSchedule({ maxLr: o.baseLr, minLr: o.baseLr * (o.minRatio ?? 0), warmupSteps: Math.min(o.warmup ?? 0, o.total), totalSteps: o.total })(step);
}

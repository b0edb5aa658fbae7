// Optimizers, gradient clipping and learning-rate schedules.
export { Optimizer } from './optimizer.js';
export type { LrSpec, OptimizerOpts, OptimizerState, ParamGroup, ParamState } from './optimizer.js';
export { AdamW } from './adamw.js';
export type { AdamWOpts } from './adamw.js';
export { SGD } from './sgd.js';
export type { SGDOpts } from './sgd.js';
export { clipGradNorm, gradNormCoef } from './clip.js';
export { cosineSchedule, cosineWithWarmup, linearSchedule, warmupSchedule } from './schedule.js';
export type { CosineOpts } from './schedule.js';

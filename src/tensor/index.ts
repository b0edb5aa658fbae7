// The tensor engine's public surface.
import './methods.js';
export { Tensor, noGrad, isGradEnabled, Storage } from './tensor.js';
export type { GradNode, BackwardFn } from './tensor.js';
export { backward, withGrad, param, zeroGrad } from './autograd.js';
export { tidy, tidyAsync, keep } from './scope.js';
export { initGpu, gpu, adapterName } from './device.js';
export type { DeviceInfo, Gpu } from './device.js';
export { poolStats, trimPool } from './pool.js';
export { runtimeStats, sync, flush } from './runtime.js';
export type { DType } from './dtype.js';
export * from './shape.js';
export * from './ops/elementwise.js';
export * from './ops/reduce.js';
export * from './ops/view.js';
export * from './ops/copy.js';
export * from './ops/matmul.js';

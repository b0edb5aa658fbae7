// Chooses a matmul variant per problem and adapter. Each list is in preference order; the first
// variant whose supports() accepts the problem runs it. The software order is measured by
// `npm run bench -- matmul` on Mesa lavapipe (see BENCHMARKS.md); the hardware order is the
// conventional one (workgroup-memory tiling first) and has not been measured here.
import { gpu } from '../../tensor/device.js';
import { naiveStrided } from './naive-strided.js';
import { registerVec4 } from './register-vec4.js';
import { sharedTiled } from './shared-tiled.js';
import { subgroupScalar } from './subgroup-scalar.js';
import { subgroupVec4 } from './subgroup-vec4.js';
import type { MatmulProblem, MatmulVariant } from './types.js';

/** Software rasterisers (llvmpipe/lavapipe): register blocking and subgroup broadcasts, no workgroup memory. */
const SOFTWARE: MatmulVariant[] = [subgroupVec4, subgroupScalar, registerVec4, naiveStrided];
/** Hardware GPUs: workgroup-memory tiling handles every layout. */
const HARDWARE: MatmulVariant[] = [sharedTiled, registerVec4, naiveStrided];

export function matmulOrder(): readonly MatmulVariant[] {
  return gpu().info.isSoftware ? SOFTWARE : HARDWARE;
}

export function pickMatmul(p: MatmulProblem): MatmulVariant {
  return matmulOrder().find((v) => v.supports(p)) ?? naiveStrided;
}

/** Every variant (for tests and benchmarks), whether or not this adapter prefers it. */
export function allMatmulVariants(): readonly MatmulVariant[] {
  return [subgroupVec4, subgroupScalar, registerVec4, sharedTiled, naiveStrided];
}

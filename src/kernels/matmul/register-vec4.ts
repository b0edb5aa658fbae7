// Classic per-thread register tile without subgroup operations: each invocation computes an
// 8 x 4 block of C (eight vec4 loads of A and four vec4 rows of B per 4 k's), 8 x 8 invocations
// per workgroup. For adapters without subgroups; needs both operands vec4-readable.
import { aModeOf, bModeOf } from './common.js';
import { launchTiled, type TileConfig } from './register-tiled.js';
import type { MatmulVariant } from './types.js';

/** Measured on lavapipe at 1024^3: 8x4 beat 4x4, 4x8, 8x8 and 16x4 per thread. */
export const REGISTER_TILE: TileConfig = { lanes: 1, ra: 8, cb: 1, gx: 8, gy: 8 };

export const registerVec4: MatmulVariant = {
  name: 'register-vec4',
  describe: 'per-thread 8x4 register tile, vec4 loads, 8x8 threads (no subgroups)',
  supports: (p) => aModeOf(p) !== 's' && bModeOf(p) !== 's',
  launch: (p) => launchTiled(p, REGISTER_TILE, aModeOf(p), bModeOf(p)),
};

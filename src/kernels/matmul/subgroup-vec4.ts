// Subgroup-broadcast register tile with vec4 loads: the fastest variant on llvmpipe/lavapipe.
// Each group of L lanes (one subgroup = one SIMD register on llvmpipe) computes a 32 x (L*4)
// block; a lane loads one vec4 of A per 4 k's and broadcasts it, and loads its own 4 columns of
// B, so each element of the block's A and B panels is loaded once per subgroup. Needs both
// operands vec4-readable (see common.ts) and a software adapter with known subgroup size.
import { aModeOf, bModeOf, softwareSubgroupLanes } from './common.js';
import { launchTiled, type TileConfig } from './register-tiled.js';
import type { MatmulVariant } from './types.js';

/**
 * Tile shape for L-lane subgroups: 32 rows (ra = 32 / L, at least 4) by 4 columns per lane, one
 * subgroup per workgroup. Measured on lavapipe at 1024^3: 1, 4 or 8 subgroups per workgroup run
 * within noise of each other, and 64-row (ra 8) or 8-column-per-lane (cb 2) tiles are slower
 * (the unrolled body outgrows the instruction cache and spills), so one shape serves every N.
 */
export function subgroupConfig(lanes: number): TileConfig {
  return { lanes, ra: Math.max(4, 32 / lanes), cb: 1, gx: 1, gy: 1 };
}

export const subgroupVec4: MatmulVariant = {
  name: 'subgroup-vec4',
  describe: '32 x 4L block per L-lane subgroup, A shared by subgroupBroadcast, vec4 loads (lavapipe)',
  supports: (p) => softwareSubgroupLanes() > 0 && aModeOf(p) !== 's' && bModeOf(p) !== 's',
  launch: (p) => launchTiled(p, subgroupConfig(softwareSubgroupLanes()), aModeOf(p), bModeOf(p)),
};

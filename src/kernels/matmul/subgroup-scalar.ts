// The subgroup-broadcast tile for any layout: an operand that cannot be read as vec4 (odd
// strides or offsets, a non-unit inner stride) is read with scalar loads, the other one still
// with vec4 loads. About half the speed of subgroup-vec4 on lavapipe, several times naive.
import { aModeOf, bModeOf, softwareSubgroupLanes } from './common.js';
import { launchTiled } from './register-tiled.js';
import { subgroupConfig } from './subgroup-vec4.js';
import type { MatmulVariant } from './types.js';

export const subgroupScalar: MatmulVariant = {
  name: 'subgroup-scalar',
  describe: 'subgroup-vec4 with scalar loads for operands vec4 cannot read (any strides/offsets)',
  supports: () => softwareSubgroupLanes() > 0,
  launch: (p) => launchTiled(p, subgroupConfig(softwareSubgroupLanes()), aModeOf(p), bModeOf(p)),
};

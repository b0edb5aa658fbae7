// Chooses a matmul variant per problem and adapter. The order of `variants` is the
// preference order measured by `npm run bench -- matmul` (see BENCHMARKS.md).
import { naiveStrided } from './naive-strided.js';
import type { MatmulProblem, MatmulVariant } from './types.js';

const variants: MatmulVariant[] = [naiveStrided];

export function pickMatmul(p: MatmulProblem): MatmulVariant {
  return variants.find((v) => v.supports(p)) ?? naiveStrided;
}

export function allMatmulVariants(): readonly MatmulVariant[] {
  return variants;
}

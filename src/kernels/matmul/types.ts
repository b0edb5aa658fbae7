// The contract every matmul kernel variant implements: C[b] = A[b] @ B[b] over strided
// operands, so transposed inputs (a permuted view) never need materialising.
import type { Binding } from '../../tensor/binding.js';
import type { DType } from '../../tensor/dtype.js';

export interface MatOperand {
  buffer: Binding;
  dtype: DType;
  offset: number; // elements
  batchStride: number; // 0 broadcasts one matrix over the batch
  rowStride: number;
  colStride: number;
}

export interface MatmulProblem {
  batch: number;
  m: number;
  n: number;
  k: number;
  a: MatOperand; // [batch, m, k]
  b: MatOperand; // [batch, k, n]
  out: Binding; // dense f32 [batch, m, n] from the binding's start
  /** Optional: add `alpha * A@B` into out instead of overwriting (beta = 1). */
  accumulate?: boolean;
}

export interface MatmulVariant {
  name: string;
  /** One line for benchmarks and docs: tile shape, load width, what it needs. */
  describe?: string;
  /**
   * Can this variant run this problem on this adapter (layout/alignment constraints and
   * adapter features such as subgroups)? Tests force every variant whose supports() is true.
   */
  supports(p: MatmulProblem): boolean;
  launch(p: MatmulProblem): void;
}

// Matmul problems whose operands or output do not fit one storage binding (a 0.5B model's
// tied embedding is 544 MB as f32, 272 MB as bf16, against lavapipe's 128 MiB binding limit).
// A problem that fits is launched with each operand bound as the range it touches; one that
// does not is halved along the dimension that shrinks the offender most, recursively:
//  - the output too big: split the batch, else the rows (an output row range is contiguous), else the columns;
//  - an operand too big: split the batch, rows, columns or K, whichever it spans most;
//    halves of K accumulate into the output (the kernels' beta = 1 mode).
// A piece whose output is not a dense run from an aligned start (a column range) is computed
// into a temporary and copied into place. Ordinary problems take the first branch unchanged.
import { pickMatmul } from '../../kernels/matmul/select.js';
import type { MatOperand, MatmulProblem } from '../../kernels/matmul/types.js';
import { bindElements, bindingLimit, offsetAlign, spanOf } from '../binding.js';
import { BYTES } from '../dtype.js';
import { Tensor } from '../tensor.js';
import { copyInto } from './copy.js';

/** Operands on plain buffers (as the matmul op builds them) and the output as a region of a dense f32 tensor. */
export interface SplitProblem {
  batch: number; m: number; n: number; k: number;
  a: MatOperand & { buffer: GPUBuffer };
  b: MatOperand & { buffer: GPUBuffer };
  out: Tensor;
  /** Element offset of out[0, 0, 0] in out's buffer, and its row and batch strides. */
  off: number; ldo: number; bso: number;
  accumulate: boolean;
}

const span = (o: MatOperand, dims: [number, number, number]) => spanOf(dims, [o.batchStride, o.rowStride, o.colStride], o.offset);

function fits(o: MatOperand & { buffer: GPUBuffer }, dims: [number, number, number]): boolean {
  if (o.buffer.size <= bindingLimit()) return true;
  const [s, e] = span(o, dims);
  return bindElements(o.buffer, BYTES[o.dtype], s, e) !== undefined;
}

function bound(o: MatOperand & { buffer: GPUBuffer }, dims: [number, number, number]): MatOperand {
  const [s, e] = span(o, dims);
  const b = bindElements(o.buffer, BYTES[o.dtype], s, e)!;
  return { ...o, buffer: b.binding, offset: o.offset - b.base };
}

export function runMatmul(q: SplitProblem): void {
  const { batch, m, n, k } = q;
  if (batch * m * n === 0) return;
  const limit = bindingLimit() - offsetAlign();
  const aDims: [number, number, number] = [batch, m, k], bDims: [number, number, number] = [batch, k, n];
  const outBytes = batch * m * n * 4;
  if (outBytes > limit) return split(q, batch > 1 ? 'batch' : m > 1 ? 'm' : 'n');
  if (!fits(q.a, aDims)) return split(q, widest(q.a, aDims, ['batch', 'm', 'k']));
  if (!fits(q.b, bDims)) return split(q, widest(q.b, bDims, ['batch', 'k', 'n']));
  const dense = q.ldo === n && (batch === 1 || q.bso === m * n);
  const ob = dense ? bindElements(q.out.buffer, 4, q.off, q.off + batch * m * n) : undefined;
  if (ob && ob.base === q.off) {
    const p: MatmulProblem = { batch, m, n, k, a: bound(q.a, aDims), b: bound(q.b, bDims), out: ob.binding, accumulate: q.accumulate };
    pickMatmul(p).launch(p);
    return;
  }
  // A region that is not a dense aligned run: compute it densely, then copy it into place.
  const view = q.out.view([batch, m, n], [q.bso, q.ldo, 1], q.off);
  const tmp = q.accumulate ? (() => { const t = Tensor.empty([batch, m, n], 'f32', 'matmul'); copyInto(t, view); return t; })() : Tensor.empty([batch, m, n], 'f32', 'matmul');
  try {
    runMatmul({ ...q, out: tmp, off: 0, ldo: n, bso: m * n });
    copyInto(view, tmp);
  } finally {
    tmp.dispose();
    view.dispose();
  }
}

type Dim = 'batch' | 'm' | 'n' | 'k';

/** The dimension along which operand `o` spans the most memory. */
function widest(o: MatOperand, dims: [number, number, number], names: [Dim, Dim, Dim]): Dim {
  const ext = [o.batchStride, o.rowStride, o.colStride].map((s, i) => (dims[i] > 1 ? s * (dims[i] - 1) : -1));
  return names[ext.indexOf(Math.max(...ext))];
}

function split(q: SplitProblem, dim: Dim): void {
  const size = dim === 'batch' ? q.batch : q[dim];
  if (size < 2) throw new Error(`matmul: a ${q.batch}x${q.m}x${q.n}x${q.k} problem cannot be split to fit this GPU's maxStorageBufferBindingSize of ${bindingLimit()} B`);
  const h = Math.floor(size / 2);
  const first: SplitProblem = { ...q, a: { ...q.a }, b: { ...q.b } };
  const second: SplitProblem = { ...q, a: { ...q.a }, b: { ...q.b } };
  if (dim === 'batch') {
    first.batch = h; second.batch = size - h;
    second.a.offset += h * q.a.batchStride; second.b.offset += h * q.b.batchStride; second.off += h * q.bso;
  } else if (dim === 'm') {
    first.m = h; second.m = size - h;
    second.a.offset += h * q.a.rowStride; second.off += h * q.ldo;
  } else if (dim === 'n') {
    first.n = h; second.n = size - h;
    second.b.offset += h * q.b.colStride; second.off += h;
  } else {
    first.k = h; second.k = size - h;
    second.a.offset += h * q.a.colStride; second.b.offset += h * q.b.rowStride; second.accumulate = true;
  }
  runMatmul(first);
  runMatmul(second);
}

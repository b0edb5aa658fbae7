// Views: reshape, permute/transpose, slice, expand, squeeze/unsqueeze share storage (no kernel
// unless a reshape's strides cannot express the new shape). concat/split/stack assemble or cut
// along one axis; a slice's gradient is placed (autograd.ts assembles the pieces).
import { withGrad } from '../autograd.js';
import { axisOf, contiguousStrides, fmt, numel, viewStrides, type Shape } from '../shape.js';
import { PlacedGrad, Tensor } from '../tensor.js';
import { contiguous, copyInto } from './copy.js';
import { sumTo } from './reduce.js';

export function reshape(x: Tensor, shape: Shape): Tensor {
  x.assertAlive('reshape');
  const s = [...shape];
  const neg = s.indexOf(-1);
  if (neg >= 0) {
    const rest = numel(s.filter((_, i) => i !== neg));
    if (rest === 0 || x.size % rest !== 0) throw new Error(`reshape: cannot infer -1 reshaping ${fmt(x.shape)} to ${fmt(shape)}`);
    s[neg] = x.size / rest;
  }
  if (numel(s) !== x.size) throw new Error(`reshape: ${fmt(x.shape)} (${x.size} elements) cannot become ${fmt(shape)}`);
  // A view when the strides allow it (always for dense input), else a dense copy first.
  const st = x.isContiguous ? contiguousStrides(s) : viewStrides(x.shape, x.strides, s);
  let y: Tensor;
  if (st) y = x.view(s, st, x.offset);
  else {
    const src = contiguous(x);
    y = src.view(s, contiguousStrides(s), src.offset);
    src.dispose();
  }
  return withGrad('reshape', y, [x], (g) => [reshape(g, x.shape)]);
}

export function permute(x: Tensor, perm: number[]): Tensor {
  x.assertAlive('permute');
  if (perm.length !== x.rank || new Set(perm.map((p) => axisOf('permute', p, x.rank))).size !== x.rank) {
    throw new Error(`permute: ${JSON.stringify(perm)} is not a permutation of the ${x.rank} axes of ${fmt(x.shape)}`);
  }
  const p = perm.map((a) => axisOf('permute', a, x.rank));
  const y = x.view(p.map((i) => x.shape[i]), p.map((i) => x.strides[i]), x.offset);
  const inv = new Array<number>(p.length);
  p.forEach((a, i) => (inv[a] = i));
  return withGrad('permute', y, [x], (g) => [permute(g, inv)]);
}

export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  const p = x.shape.map((_, i) => i);
  const i = axisOf('transpose', a, x.rank), j = axisOf('transpose', b, x.rank);
  [p[i], p[j]] = [p[j], p[i]];
  return permute(x, p);
}

/** x[start:end] along one axis (step 1). */
export function slice(x: Tensor, axis: number, start: number, end: number): Tensor {
  x.assertAlive('slice');
  const a = axisOf('slice', axis, x.rank);
  const n = x.shape[a];
  const s = start < 0 ? start + n : start, e = end < 0 ? end + n : end;
  if (s < 0 || s > e || e > n) throw new Error(`slice: [${start}, ${end}) out of range for axis ${axis} of ${fmt(x.shape)}`);
  const shape = [...x.shape];
  shape[a] = e - s;
  const y = x.view(shape, [...x.strides], x.offset + s * x.strides[a]);
  return withGrad('slice', y, [x], (g) => [new PlacedGrad(g, a, s)]);
}

/** Broadcast size-1 dims to `shape` (stride 0: no copy). */
export function expand(x: Tensor, shape: Shape): Tensor {
  x.assertAlive('expand');
  const r = shape.length;
  if (r < x.rank) throw new Error(`expand: cannot expand ${fmt(x.shape)} to lower rank ${fmt(shape)}`);
  const strides = new Array<number>(r).fill(0);
  for (let i = 0; i < x.rank; i++) {
    const j = r - x.rank + i;
    if (x.shape[i] === shape[j]) strides[j] = x.strides[i];
    else if (x.shape[i] !== 1) throw new Error(`expand: dim ${i} of ${fmt(x.shape)} is ${x.shape[i]}, cannot expand to ${fmt(shape)}`);
  }
  const y = x.view([...shape], strides, x.offset);
  return withGrad('expand', y, [x], (g) => [sumTo(g, x.shape)]);
}

export function unsqueeze(x: Tensor, axis: number): Tensor {
  const a = axis < 0 ? axis + x.rank + 1 : axis;
  const s = [...x.shape];
  s.splice(a, 0, 1);
  return reshape(x, s);
}

export function squeeze(x: Tensor, axis: number): Tensor {
  const a = axisOf('squeeze', axis, x.rank);
  if (x.shape[a] !== 1) throw new Error(`squeeze: axis ${axis} of ${fmt(x.shape)} has size ${x.shape[a]}, not 1`);
  return reshape(x, x.shape.filter((_, i) => i !== a));
}

export function concat(xs: Tensor[], axis = 0): Tensor {
  if (!xs.length) throw new Error('concat: no tensors');
  const a = axisOf('concat', axis, xs[0].rank);
  for (const t of xs) {
    t.assertAlive('concat');
    if (t.rank !== xs[0].rank || t.shape.some((d, i) => i !== a && d !== xs[0].shape[i]) || t.dtype !== xs[0].dtype) {
      throw new Error(`concat: shapes ${xs.map((t) => fmt(t.shape) + t.dtype).join(', ')} do not match off axis ${axis}`);
    }
  }
  const shape = [...xs[0].shape];
  shape[a] = xs.reduce((s, t) => s + t.shape[a], 0);
  // Along axis 0, beyond the buffer limit, the result lives in pieces (pieces.ts): row ops over a tensor in pieces end so.
  const out = Tensor.empty(shape, xs[0].dtype, 'concat', a === 0);
  let off = 0;
  const bounds: [number, number][] = [];
  for (const t of xs) {
    const v = out.view(t.shape, out.strides, out.offset + off * out.strides[a]);
    copyInto(v, t);
    v.dispose();
    bounds.push([off, off + t.shape[a]]);
    off += t.shape[a];
  }
  return withGrad('concat', out, xs, (g) => bounds.map(([s, e]) => slice(g, a, s, e)));
}

export function split(x: Tensor, sizes: number[], axis = 0): Tensor[] {
  const a = axisOf('split', axis, x.rank);
  if (sizes.reduce((s, v) => s + v, 0) !== x.shape[a]) throw new Error(`split: sizes ${sizes} do not sum to ${x.shape[a]} (axis ${axis} of ${fmt(x.shape)})`);
  let off = 0;
  return sizes.map((n) => slice(x, a, off, (off += n)));
}

export function stack(xs: Tensor[], axis = 0): Tensor {
  return concat(xs.map((t) => unsqueeze(t, axis)), axis);
}

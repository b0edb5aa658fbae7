// Integer-tensor indexing: embedding / indexSelect (gather rows) and takeAlong (one element per
// row), with scatter-add gradients. The embedding gradient is deterministic when the ids have
// a host copy (Tensor.from sets one): a CSR of positions per vocab row is built on the CPU and
// each (row, d) sums its positions in order. Without a host copy it falls back to atomic adds.
import { gatherRowsKernel, GATHER_WG, scatterAtomicKernel, scatterCsrKernel, takeAlongBackwardKernel, takeAlongKernel } from '../../kernels/gather.js';
import { NARROW, rowChunkGrid } from '../../kernels/softmax.js';
import { Uniforms } from '../../kernels/uniforms.js';
import { withGrad } from '../autograd.js';
import { rowChunks, rowSplit, type Binding } from '../binding.js';
import { BYTES } from '../dtype.js';
import { dispatch, grid } from '../runtime.js';
import { axisOf, fmt, numel, sameShape } from '../shape.js';
import { noGrad, Tensor } from '../tensor.js';
import { isMulti, multiError, rowPieceRanges, rowRanges } from '../pieces.js';
import { zeros } from './copy.js';
import { denseRows, rowsOf, wholeOf } from './softmax.js';
import { concat, permute, slice } from './view.js';

function checkIds(op: string, ids: Tensor, n: number, what: string): void {
  ids.assertAlive(op);
  if (ids.dtype !== 'i32') throw new Error(`${op}: indices ${fmt(ids.shape)} must be i32, got ${ids.dtype}`);
  const h = ids.host;
  if (!h) return;
  for (let i = 0; i < h.length; i++) {
    if (h[i] < 0 || h[i] >= n) throw new Error(`${op}: index ${h[i]} at position ${i} is out of range for ${what} (valid 0..${n - 1})`);
  }
}

/**
 * The vocabulary rows [v0, v1) of dw held by each of its buffers (one, or its pieces beyond the
 * buffer limit: pieces.ts), each with that buffer and the element where row v0 starts in it.
 */
function vocabParts(dw: Tensor, V: number, D: number): { v0: number; v1: number; buffer: GPUBuffer; at: number }[] {
  const ps = dw.storage.pieces;
  if (!ps) return [{ v0: 0, v1: V, buffer: dw.buffer, at: 0 }];
  return ps.map((p) => ({ v0: p.first / Math.max(1, D), v1: p.end / Math.max(1, D), buffer: p.storage.buffer, at: 0 }));
}

/**
 * Deterministic scatter-add of g [rows, D] into [V, D] by a CSR built from host ids. A g beyond
 * one binding goes a chunk of its rows at a time, each chunk's sums added in chunk order. `pieces`:
 * the gradient of a weight in pieces, made in pieces itself (each scattered into separately).
 */
function scatterCsr(host: Int32Array, g: Tensor, V: number, D: number, outShape: number[], pieces: boolean): Tensor {
  const dw = Tensor.empty(outShape, 'f32', 'embedding backward', pieces);
  let first = true;
  for (const gc of rowSplit('embedding backward', host.length, [rowsOf(g, D)])) {
    scatterCsrChunk(host.subarray(gc.lo, gc.hi), gc.bindings[0], gc.offsets[0], dw, V, D, first);
    first = false;
  }
  return dw;
}

function scatterCsrChunk(host: Int32Array, g: Binding, gOffset: number, dw: Tensor, V: number, D: number, first: boolean): void {
  const rowPtr = new Int32Array(V + 1);
  for (const v of host) rowPtr[v + 1]++;
  for (let v = 0; v < V; v++) rowPtr[v + 1] += rowPtr[v];
  const fillAt = rowPtr.slice(0, V);
  const rowsOf = new Int32Array(host.length);
  host.forEach((v, r) => (rowsOf[fillAt[v]++] = r)); // ascending r within each vocab row
  const rp = Tensor.from(rowPtr), ro = Tensor.from(rowsOf.length ? rowsOf : new Int32Array(1));
  for (const part of vocabParts(dw, V, D)) {
    for (const c of rowChunks(part.buffer, 4, part.at, part.v1 - part.v0, D)) {
      const u = new Uniforms(8).set(0, c.hi - c.lo).set(1, D).set(2, V).set(3, gOffset).set(4, part.v0 + c.lo).set(5, part.at + c.lo * D - c.base).set(6, first ? 0 : 1);
      dispatch({ ...scatterCsrKernel(), buffers: [rp.buffer, ro.buffer, g, c.binding], uniforms: u.u32, workgroups: rowChunkGrid(c.hi - c.lo, D, NARROW) });
    }
  }
  rp.dispose();
  ro.dispose();
}

function scatterAtomic(ids: Tensor, g: Tensor, V: number, D: number, outShape: number[], pieces: boolean): Tensor {
  const dw = zeros(outShape, 'f32', pieces);
  // g and the ids beyond one binding: a chunk of their rows at a time (the adds are atomic anyway).
  for (const gc of rowSplit('embedding backward', numel(ids.shape), [rowsOf(ids, 1), rowsOf(g, D)])) {
    const n = (gc.hi - gc.lo) * D;
    for (const part of vocabParts(dw, V, D)) {
      for (const c of rowChunks(part.buffer, 4, part.at, part.v1 - part.v0, D)) {
        const u = new Uniforms(8).set(0, n).set(1, D).set(2, V).set(3, gc.offsets[1]).set(4, gc.offsets[0]).set(5, part.v0 + c.lo).set(6, part.v0 + c.hi).set(7, part.at + c.lo * D - c.base);
        dispatch({ ...scatterAtomicKernel(), buffers: [gc.bindings[0], gc.bindings[1], c.binding], uniforms: u.u32, workgroups: grid(Math.ceil(n / GATHER_WG)) });
      }
    }
  }
  return dw;
}

/**
 * Rows of weight [V, ...rest] at ids [...] -> [...ids.shape, ...rest]. Gradient: scatter-add
 * into [V, ...rest] (deterministic if ids has a host copy; atomic float adds otherwise).
 */
export function embedding(weight: Tensor, ids: Tensor): Tensor {
  weight.assertAlive('embedding');
  if (weight.rank < 1) throw new Error(`embedding: weight must be at least 1-D, got ${fmt(weight.shape)}`);
  const V = weight.shape[0];
  const D = numel(weight.shape.slice(1));
  checkIds('embedding', ids, V, `weight ${fmt(weight.shape)}`);
  const outShape = [...ids.shape, ...weight.shape.slice(1)];
  // bf16 rows come out as f32 (bf16 is a weight format; activations are f32 or f16).
  const out = Tensor.empty(outShape, weight.dtype === 'bf16' ? 'f32' : weight.dtype);
  const rows = numel(ids.shape);
  if (rows * D === 0) return out;
  if (V === 0) throw new Error(`embedding: weight ${fmt(weight.shape)} has no rows to index`);
  if (isMulti(weight) && !weight.isContiguous) throw multiError('embedding (a strided view of the weight)', weight);
  const id = denseRows('embedding', ids);
  // A weight beyond one buffer (pieces.ts) is gathered piece by piece (each an ordinary tensor of rows [v0, v1)).
  for (const [v0, v1] of isMulti(weight) ? rowRanges(weight, V) : [[0, V]]) {
    const part = isMulti(weight) ? noGrad(() => slice(weight, 0, v0, v1)) : weight;
    const w = denseRows('embedding', part);
    // A weight bigger than one binding (a 0.5B model's embedding) is gathered a vocabulary chunk at a time.
    // An output beyond one binding (many rows) is written a chunk of rows at a time.
    for (const c of rowChunks(w.t.buffer, BYTES[w.t.dtype], w.t.offset, v1 - v0, D)) {
      for (const r of rowSplit('embedding', rows, [rowsOf(id.t, 1), rowsOf(out, D)])) {
        const u = new Uniforms(8).set(0, r.hi - r.lo).set(1, D).set(2, V).set(3, w.t.offset + c.lo * D - c.base).set(4, r.offsets[0]).set(5, v0 + c.lo).set(6, v0 + c.hi).set(7, r.offsets[1]);
        dispatch({ ...gatherRowsKernel(w.t.dtype), buffers: [c.binding, r.bindings[0], r.bindings[1]], uniforms: u.u32, workgroups: rowChunkGrid(r.hi - r.lo, D, NARROW) });
      }
    }
    if (w.owned) w.t.dispose();
    if (part !== weight) part.dispose();
  }
  const host = ids.host;
  const y = withGrad('embedding', out, [weight], (g) => {
    const gd = denseRows('embedding backward', g, true);
    let dw: Tensor;
    // The gradient of a weight in pieces is made in pieces (each piece scattered into on its own).
    const big = isMulti(weight);
    if (host) dw = scatterCsr(host, gd.t, V, D, [...weight.shape], big);
    else {
      id.t.assertAlive('embedding backward (ids disposed)');
      dw = scatterAtomic(id.t, gd.t, V, D, [...weight.shape], big);
    }
    if (gd.owned) gd.t.dispose();
    return [dw];
  });
  if (id.owned && (host || !y.requiresGrad)) id.t.dispose();
  return y;
}

/** x gathered at 1-D ids along `axis` (torch.index_select), with gradient. */
export function indexSelect(x: Tensor, axis: number, ids: Tensor): Tensor {
  x.assertAlive('indexSelect');
  const a = axisOf('indexSelect', axis, x.rank);
  if (ids.rank !== 1) throw new Error(`indexSelect: indices must be 1-D, got ${fmt(ids.shape)}`);
  if (a === 0) return embedding(x, ids);
  checkIds('indexSelect', ids, x.shape[a], `axis ${axis} of ${fmt(x.shape)}`);
  // Move the axis to the front, gather rows, move it back (autograd flows through the permutes).
  const perm = [a, ...x.shape.map((_, i) => i).filter((i) => i !== a)];
  const inv = perm.map((_, i) => perm.indexOf(i));
  return permute(embedding(permute(x, perm), ids), inv);
}

/** x [..., V] at idx [...] -> [...]: out[r] = x[r, idx[r]] ("integer-tensor indexing"), with gradient. */
export function takeAlong(x: Tensor, idx: Tensor): Tensor {
  x.assertAlive('takeAlong');
  if (x.rank < 1) throw new Error(`takeAlong: input must have a last axis, got ${fmt(x.shape)}`);
  if (x.dtype === 'i32') throw new Error(`takeAlong: input ${fmt(x.shape)} must be floating point, got i32`);
  if (!sameShape(idx.shape, x.shape.slice(0, -1))) throw new Error(`takeAlong: indices ${fmt(idx.shape)} must match the leading dims of ${fmt(x.shape)}`);
  const V = x.shape[x.rank - 1];
  checkIds('takeAlong', idx, V, `last axis of ${fmt(x.shape)}`);
  if (isMulti(x) && x.rank >= 2) {
    // x in several buffers (pieces.ts): each one-buffer range of rows (axis 0) with its indices.
    const parts = rowPieceRanges([x], x.shape[0]).map(([lo, hi]) => {
      const rows = slice(x, 0, lo, hi);
      if (isMulti(rows)) throw multiError('takeAlong (rows of a strided view across pieces)', rows);
      return takeAlong(rows, slice(idx, 0, lo, hi));
    });
    return parts.length === 1 ? parts[0] : concat(parts, 0);
  }
  const rows = numel(idx.shape);
  const out = Tensor.empty(idx.shape, 'f32');
  if (rows === 0) return out;
  if (V === 0) throw new Error(`takeAlong: empty last axis in ${fmt(x.shape)}`);
  const xs = denseRows('takeAlong', x), id = denseRows('takeAlong', idx);
  // x beyond one binding ([B*T, V] logits) is read a chunk of whole rows at a time.
  for (const c of rowSplit('takeAlong', rows, [rowsOf(xs.t, V), rowsOf(id.t, 1), rowsOf(out, 1)])) {
    const u = new Uniforms(8).set(0, c.hi - c.lo).set(1, V).set(2, V).set(3, c.offsets[0]).set(4, c.offsets[1]).set(5, c.offsets[2]);
    dispatch({ ...takeAlongKernel(xs.t.dtype), buffers: c.bindings, uniforms: u.u32, workgroups: grid(Math.ceil((c.hi - c.lo) / GATHER_WG)) });
  }
  if (xs.owned) xs.t.dispose();
  const y = withGrad('takeAlong', out, [x], (g) => {
    id.t.assertAlive('takeAlong backward (indices disposed)');
    const bcast = g.dtype === 'f32' && g.strides.every((s) => s === 0);
    const gd = bcast ? { t: g, owned: false } : denseRows('takeAlong backward', g, true);
    const dx = Tensor.empty(x.shape, 'f32');
    const gOp = bcast ? { ...wholeOf(gd.t), whole: 1 } : rowsOf(gd.t, 1); // a broadcast scalar: one element
    for (const c of rowSplit('takeAlong backward', rows, [rowsOf(id.t, 1), gOp, rowsOf(dx, V)])) {
      const ub = new Uniforms(8).set(0, c.hi - c.lo).set(1, V).set(2, V).set(3, c.offsets[1]).set(4, c.offsets[0]).set(5, bcast ? 0 : 1).set(6, c.offsets[2]);
      dispatch({ ...takeAlongBackwardKernel(), buffers: c.bindings, uniforms: ub.u32, workgroups: rowChunkGrid(c.hi - c.lo, V) });
    }
    if (gd.owned) gd.t.dispose();
    return [dx];
  });
  if (id.owned && !y.requiresGrad) id.t.dispose();
  return y;
}

/** Alias of takeAlong: one element per row of x [N, V] at idx [N]. */
export const gatherRows = takeAlong;

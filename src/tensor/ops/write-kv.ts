// Writing new key/value rows into a preallocated KV cache. With tensor positions the rows'
// destination is known only on the GPU, so a cache beyond one storage binding (a long context)
// is written in blocks of batch rows, heads and time ranges that each fit one binding; a block's
// dispatch skips rows that land outside its time range. Rows beyond one binding (a long
// prefill) are split the same way along their own time axis.
import { CACHE_WG, CACHE_WORDS, cacheWriteKernel } from '../../kernels/attention-cache.js';
import { Uniforms } from '../../kernels/uniforms.js';
import { bindElements, spanOf } from '../binding.js';
import { BYTES } from '../dtype.js';
import { dispatch, grid } from '../runtime.js';
import { fmt } from '../shape.js';
import { Tensor } from '../tensor.js';
import { copyInto } from './copy.js';

/**
 * Write rows [B,Hkv,Tn,D] into cache [B,Hkv,Tmax,D] at positions pos..pos+Tn-1 (pos a number,
 * or per batch row: numbers or an i32 [B] tensor). Not differentiable. With a tensor pos,
 * rows past Tmax are dropped on the GPU; numbers are bounds-checked here.
 */
export function writeKV(cache: Tensor, rows: Tensor, pos: number | readonly number[] | Tensor): void {
  cache.assertAlive('writeKV');
  rows.assertAlive('writeKV');
  const [B, Hkv, Tmax, D] = cache.shape;
  const Tn = rows.shape[2];
  if (cache.rank !== 4 || rows.rank !== 4 || rows.shape[0] !== B || rows.shape[1] !== Hkv || rows.shape[3] !== D || cache.dtype === 'i32') {
    throw new Error(`writeKV: rows ${fmt(rows.shape)} do not fit cache ${fmt(cache.shape)} ([B,Hkv,T,D], f32/f16)`);
  }
  const check = (p: number) => {
    if (!Number.isInteger(p) || p < 0 || p + Tn > Tmax) throw new Error(`writeKV: positions [${p}, ${p + Tn}) out of range for cache ${fmt(cache.shape)}`);
  };
  if (typeof pos === 'number') {
    check(pos);
    const dst = cache.slice(2, pos, pos + Tn);
    copyInto(dst, rows); // copies split by themselves
    dst.dispose();
    return;
  }
  let pt = pos as Tensor;
  if (!(pos instanceof Tensor)) {
    if (pos.length !== B) throw new Error(`writeKV: ${pos.length} positions for a batch of ${B}`);
    pos.forEach(check);
    pt = Tensor.from(Int32Array.from(pos), [B], 'i32');
  }
  try {
    if (pt.rank !== 1 || pt.shape[0] !== B || pt.dtype !== 'i32') throw new Error(`writeKV: positions must be i32 [${B}], got ${pt.dtype} ${fmt(pt.shape)}`);
    if (rows.size > 0) writeBlock(cache, rows, pt, [0, B], [0, Hkv], [0, Tmax], [0, Tn]);
  } finally {
    if (pt !== pos) pt.dispose();
  }
}

type Range = [number, number];
const half = ([a, b]: Range): [Range, Range] => [[a, a + ((b - a) >> 1)], [a + ((b - a) >> 1), b]];

/**
 * Batch rows b, heads h, cache positions t and new rows n: one dispatch when the cache's and the
 * rows' parts each fit one binding, else halved along the first of (batch, heads, time) with
 * more than one entry (time: the cache's positions or the rows', whichever does not fit).
 */
function writeBlock(cache: Tensor, rows: Tensor, pt: Tensor, b: Range, h: Range, t: Range, n: Range): void {
  const D = cache.shape[3];
  const part = (x: Tensor, time: Range) => {
    const offset = x.offset + b[0] * x.strides[0] + h[0] * x.strides[1] + time[0] * x.strides[2];
    const shape = [b[1] - b[0], h[1] - h[0], time[1] - time[0], D];
    const [first, end] = spanOf(shape, x.strides, offset);
    return { offset, shape, bound: bindElements(x.buffer, BYTES[x.dtype], first, end) };
  };
  const dst = part(cache, t), src = part(rows, n);
  const splitOn = (time: Range, recur: (time: [Range, Range]) => void) => {
    if (b[1] - b[0] > 1) half(b).forEach((bb) => writeBlock(cache, rows, pt, bb, h, t, n));
    else if (h[1] - h[0] > 1) half(h).forEach((hh) => writeBlock(cache, rows, pt, b, hh, t, n));
    else if (time[1] - time[0] > 1) recur(half(time));
    else throw new Error(`writeKV: one row of ${D} elements of cache ${fmt(cache.shape)} or rows ${fmt(rows.shape)} is beyond this GPU's maxStorageBufferBindingSize`);
  };
  if (!dst.bound) return splitOn(t, (ts) => ts.forEach((tt) => writeBlock(cache, rows, pt, b, h, tt, n)));
  if (!src.bound) return splitOn(n, (ns) => ns.forEach((nn) => writeBlock(cache, rows, pt, b, h, t, nn)));
  const count = src.shape.reduce((x, y) => x * y, 1);
  if (count === 0) return;
  const u = new Uniforms(CACHE_WORDS);
  u.set(0, count).setAll(1, src.shape).setAll(5, [...rows.strides, src.offset - src.bound.base]).setAll(10, [...cache.strides, dst.offset - dst.bound.base]);
  u.set(15, pt.offset + b[0] * pt.strides[0]).set(16, pt.strides[0]).set(17, t[1]).setI(18, t[0]).setI(19, n[0]);
  dispatch({ ...cacheWriteKernel(rows.dtype, cache.dtype), buffers: [src.bound.binding, pt.buffer, dst.bound.binding], uniforms: u.u32, workgroups: grid(Math.ceil(count / CACHE_WG)) });
}

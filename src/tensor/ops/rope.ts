// Rotary position embedding. Layout: x is [..., T, H, Dh] (e.g. [B, T, H, Dh], the free reshape
// of a [B, T, H*Dh] projection); attention code permutes to [B, H, T, Dh] afterwards.
import { ropeGroups, ropeKernel, type RopeLayout } from '../../kernels/rope.js';
import { Uniforms } from '../../kernels/uniforms.js';
import { withGrad } from '../autograd.js';
import { dispatch, grid } from '../runtime.js';
import { keep } from '../scope.js';
import { fmt, numel, sameShape } from '../shape.js';
import { noGrad, Tensor } from '../tensor.js';
import { denseRows } from './softmax.js';
import { bindElements, bindingLimit, offsetAlign, spanOf, type Binding } from '../binding.js';
import { BYTES } from '../dtype.js';
import { copyInto } from './copy.js';
import { slice } from './view.js';

export type { RopeLayout };

export interface RopeOpts {
  /** Start position (pos = start + t); the same as passing a number as `positions`. */
  start?: number;
  /** Start position (pos = start + t; KV-cache decoding passes the cache length), or i32
   * positions [T] (shared by the batch) or [...batch, T]. Default 0. */
  positions?: number | Tensor;
  /** Base of the frequencies (llama: 10000). */
  theta?: number;
  /** Linear RoPE scaling: positions are divided by this (transformers divides inv_freq by it, in float32). Default 1. */
  factor?: number;
  /** 'interleaved' pairs (0,1),(2,3),... as llama2.c / Meta; 'half' pairs (i, i+Dh/2) as HF rotate_half. */
  layout?: RopeLayout;
  /** Rotate only the first `heads` of the H heads and copy the rest (default all): one pass over
   * a packed [B, T, Hq + Hkv + Hkv, Dh] q|k|v projection leaves v as it is. */
  heads?: number;
}

// Tables per (theta, Dh, factor), grown on demand. Backward looks the table up again rather than
// capturing it, so growing (and freeing the old table) never strands a pending backward.
const tables = new Map<string, { t: Tensor; len: number }>();
const MAX_TABLE = 1 << 15;

/** llama2.c's frequency for even index i of a head of size dh, in float32 arithmetic. */
function ropeFreq(i: number, dh: number, theta: number): number {
  const f = Math.fround;
  return f(1 / f(Math.pow(f(theta), f(i / dh))));
}

function table(theta: number, dh: number, need: number, factor: number): { t: Tensor; len: number } {
  const key = `${theta}|${dh}|${factor}`;
  const cur = tables.get(key);
  if (cur && (cur.len >= need || cur.len >= MAX_TABLE)) return cur;
  const len = Math.min(MAX_TABLE, 2 ** Math.ceil(Math.log2(Math.max(need, 256, (cur?.len ?? 0) * 2))));
  const half = dh / 2;
  const f = Math.fround;
  const data = new Float32Array(half + 2 * len * half);
  for (let k = 0; k < half; k++) data[k] = factor === 1 ? ropeFreq(2 * k, dh, theta) : f(ropeFreq(2 * k, dh, theta) / factor);
  for (let p = 0; p < len; p++)
    for (let k = 0; k < half; k++) {
      const a = f(p * data[k]);
      data[half + 2 * (p * half + k)] = Math.cos(a);
      data[half + 2 * (p * half + k) + 1] = Math.sin(a);
    }
  cur?.t.dispose();
  const next = { t: keep(Tensor.from(data, [data.length])), len };
  tables.set(key, next);
  return next;
}

function ropeRaw(x: Tensor, positions: number | Tensor, theta: number, layout: RopeLayout, sign: 1 | -1, needPos: number, heads: number, factor: number): Tensor {
  const [T, H, Dh] = x.shape.slice(-3);
  const pairs = numel(x.shape) / 2;
  if (pairs > 0 && !fitsOneBinding(x, positions)) return ropeSplit(x, positions, theta, layout, sign, needPos, heads, factor);
  const out = Tensor.empty(x.shape, 'f32');
  if (pairs === 0) return out;
  const tab = table(theta, Dh, needPos, factor);
  // Read x through its strides when its head dim is unit-stride and its batch dims collapse to one
  // stride (a [B, T, H, Dh] view of a packed projection, or the permuted gradient); else densify.
  const lead = batchStride(x);
  const xs = lead !== undefined ? { t: x, owned: false } : denseRows('rope', x);
  const [sB, sT, sH] = lead !== undefined ? [lead, x.strides[x.rank - 3], x.strides[x.rank - 2]] : [T * H * Dh, H * Dh, Dh];
  const explicit = typeof positions !== 'number';
  const ps = explicit ? denseRows('rope', positions) : undefined;
  const u = new Uniforms(16).set(0, pairs).set(1, Dh / 2).set(2, H).set(3, T).set(4, xs.t.offset).setAll(12, [sB, sT, sH]).set(15, heads);
  u.setI(5, explicit ? 0 : positions).set(6, ps ? ps.t.offset : 0).set(7, explicit && positions.rank > 1 ? T : 0).set(8, tab.len).setF(9, sign);
  // x and the positions may be views into buffers beyond one binding: bind the ranges they span.
  const xb = bindSpan(xs.t), pb = ps && bindSpan(ps.t);
  u.set(4, xs.t.offset - xb.base);
  if (ps) u.set(6, ps.t.offset - pb!.base);
  // The cos/sin table (built in float64, stored f32, so results match the references exactly)
  // is read whole: only at a test's tiny lowered limit can it exceed one binding.
  if (tab.t.size * 4 > bindingLimit()) throw new Error(`rope: the cos/sin table of ${tab.len} positions x ${Dh / 2} frequencies (${tab.t.size * 4} B) is beyond this GPU's maxStorageBufferBindingSize of ${bindingLimit()} B`);
  const bufs = [xb.binding, bindSpan(tab.t).binding, ...(pb ? [pb.binding] : []), { buffer: out.buffer, offset: 0, size: out.size * 4 }];
  dispatch({ ...ropeKernel(xs.t.dtype, layout, explicit), buffers: bufs, uniforms: u.u32, workgroups: grid(ropeGroups(pairs)) });
  if (xs.owned) xs.t.dispose();
  if (ps?.owned) ps.t.dispose();
  return out;
}

/** The range of `t`'s buffer its elements span, bound (a whole small buffer as it is). */
function bindSpan(t: Tensor): { binding: Binding; base: number } {
  const [first, end] = spanOf(t.shape, t.strides, t.offset);
  const b = bindElements(t.buffer, BYTES[t.dtype], first, end);
  if (!b) throw new Error(`rope: internal: a span of ${end - first} elements does not fit one binding`);
  return b;
}

/** Whether x's span, the output and the positions' span each fit one binding. */
function fitsOneBinding(x: Tensor, positions: number | Tensor): boolean {
  const room = bindingLimit() - offsetAlign();
  const spanBytes = (t: Tensor) => {
    const [a, b] = spanOf(t.shape, t.strides, t.offset);
    return (b - a) * BYTES[t.dtype];
  };
  return spanBytes(x) <= room && x.size * 4 <= room && (typeof positions === 'number' || spanBytes(positions) <= room);
}

/**
 * rope over an x (or output) beyond one binding: split along the first batch or time axis
 * longer than 1 into parts that fit, each rotated on its own (with its positions) and copied
 * into the output.
 */
function ropeSplit(x: Tensor, positions: number | Tensor, theta: number, layout: RopeLayout, sign: 1 | -1, needPos: number, heads: number, factor: number): Tensor {
  const tAxis = x.rank - 3;
  const d = x.shape.findIndex((n, i) => i <= tAxis && n > 1);
  return noGrad(() => {
    if (d < 0) throw new Error(`rope: one position of ${fmt(x.shape)} (${x.shape[x.rank - 2] * x.shape[x.rank - 1] * 4} B) is beyond this GPU's maxStorageBufferBindingSize of ${bindingLimit()} B`);
    const out = Tensor.empty(x.shape, 'f32');
    const parts = Math.min(x.shape[d], 2 * Math.ceil((x.size * 4) / (bindingLimit() - offsetAlign())));
    const per = Math.ceil(x.shape[d] / parts);
    for (let a = 0; a < x.shape[d]; a += per) {
      const b = Math.min(x.shape[d], a + per);
      const xs = slice(x, d, a, b);
      // Positions follow x: a start moves with the time axis; a tensor is cut on the same axis
      // ([T] positions only on the time axis, [..., T] on any).
      let ps: number | Tensor = positions;
      if (typeof positions === 'number') ps = d === tAxis ? positions + a : positions;
      else if (positions.rank > 1 || d === tAxis) ps = slice(positions, positions.rank > 1 ? d : 0, a, b);
      const y = ropeRaw(xs, ps, theta, layout, sign, needPos, heads, factor);
      const dst = slice(out, d, a, b);
      copyInto(dst, y);
      for (const t of [xs, y, dst]) t.dispose();
      if (ps !== positions && typeof ps !== 'number') ps.dispose();
    }
    return out;
  });
}

/** The single stride of x's dims before [T, H, Dh] (0 if none) when Dh is unit-stride, else undefined. */
function batchStride(x: Tensor): number | undefined {
  if (x.strides[x.rank - 1] !== 1) return undefined;
  const lead = x.shape.slice(0, -3), st = x.strides.slice(0, -3);
  let s: number | undefined, span = 0;
  for (let i = lead.length - 1; i >= 0; i--) {
    if (lead[i] === 1) continue;
    if (s === undefined) s = st[i];
    else if (st[i] !== s * span) return undefined;
    span = span ? span * lead[i] : lead[i];
  }
  return s ?? 0;
}

/** Rotate pairs of x [..., T, H, Dh] by pos * theta^(-2k/Dh). Differentiable in x. */
export function rope(x: Tensor, opts: RopeOpts = {}): Tensor {
  const { theta = 10000, layout = 'interleaved', factor = 1 } = opts;
  if (!(factor > 0) || !Number.isFinite(factor)) throw new Error(`rope: factor ${factor} must be a positive number`);
  if (opts.start !== undefined && opts.positions !== undefined) throw new Error('rope: pass either start or positions, not both');
  const positions = opts.positions ?? opts.start ?? 0;
  x.assertAlive('rope');
  if (x.rank < 3) throw new Error(`rope: input must be [..., T, H, Dh], got ${fmt(x.shape)}`);
  if (x.dtype === 'i32') throw new Error(`rope: input ${fmt(x.shape)} must be floating point, got i32`);
  const [T, , Dh] = x.shape.slice(-3);
  if (Dh % 2 !== 0) throw new Error(`rope: head size ${Dh} (last dim of ${fmt(x.shape)}) must be even`);
  if (layout !== 'interleaved' && layout !== 'half') throw new Error(`rope: unknown layout "${layout as string}"`);
  let need = 0;
  if (typeof positions === 'number') {
    if (!Number.isInteger(positions) || positions < 0) throw new Error(`rope: start position ${positions} must be a non-negative integer`);
    need = positions + T;
  } else {
    positions.assertAlive('rope');
    const lead = x.shape.slice(0, -3);
    if (positions.dtype !== 'i32') throw new Error(`rope: positions ${fmt(positions.shape)} must be i32, got ${positions.dtype}`);
    if (!sameShape(positions.shape, [T]) && !sameShape(positions.shape, [...lead, T])) {
      throw new Error(`rope: positions ${fmt(positions.shape)} must be [${T}] or ${fmt([...lead, T])} for input ${fmt(x.shape)}`);
    }
    const h = positions.host;
    if (h) {
      for (let i = 0; i < h.length; i++) if (h[i] < 0) throw new Error(`rope: position ${h[i]} at index ${i} is negative`);
      need = h.reduce((m, v) => Math.max(m, v + 1), 0);
    }
  }
  const H = x.shape[x.rank - 2], heads = opts.heads ?? H;
  if (!Number.isInteger(heads) || heads < 0 || heads > H) throw new Error(`rope: heads ${opts.heads} must be an integer in [0, ${H}] for input ${fmt(x.shape)}`);
  const y = ropeRaw(x, positions, theta, layout, 1, need, heads, factor);
  return withGrad('rope', y, [x], (g) => {
    if (typeof positions !== 'number') positions.assertAlive('rope backward (positions disposed)');
    return [ropeRaw(g, positions, theta, layout, -1, need, heads, factor)];
  });
}

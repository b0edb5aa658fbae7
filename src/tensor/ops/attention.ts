// Fused scaled dot-product attention with grouped-query heads, causal and key-padding masks,
// a KV-cache decode entry point and a cache writer. Layouts: q [B, H, Tq, D], k/v
// [B, Hkv, Tk, D], out [B, H, Tq, D] (dense). Inputs may be strided views (e.g. a
// [B, T, H, D] projection permuted to [B, H, T, D], or a slice of a KV cache): the kernels
// read batch/head/time through strides passed as uniforms, without copying. Only a non-unit
// stride on D itself is densified first (contiguous()). Kernels: src/kernels/attention*.ts.
// Beyond one storage binding: split by batch, kv-head groups, then time (attention-time.ts).
import { AU, ATTN_HEAD_SIZES, attnCombine, attnForwardBlock, attnForwardFlat, MASK_KEYS, MASK_LENGTHS, MASK_NONE, NO_WINDOW, type AttnKernelCfg } from '../../kernels/attention.js';
import { attnBackwardDkv, attnBackwardDq } from '../../kernels/attention-backward.js';
import { Uniforms } from '../../kernels/uniforms.js';
import { withGrad } from '../autograd.js';
import { acquire } from '../pool.js';
import { gpu } from '../device.js';
import { dispatch, grid } from '../runtime.js';
import { contiguousStrides, fmt, numel } from '../shape.js';
import { noGrad, Storage, Tensor } from '../tensor.js';
import { contiguous, copyInto } from './copy.js';
import { concat, slice } from './view.js';
import { bindElements, bindingLimit, offsetAlign, spanOf, type Binding } from '../binding.js';
import { BYTES } from '../dtype.js';
import { attentionTime } from './attention-time.js';

export interface AttentionOptions {
  /** Multiplier of q·k (default 1/sqrt(D)). */
  scale?: number;
  /** Default false. Query i sits at absolute position qStart + i and sees keys j <= qStart + i. */
  causal?: boolean;
  /** Absolute position of query 0 (default Tk - Tq: the queries are the newest positions, as with a prefix cache). */
  qStart?: number;
  /** Key padding mask [B, Tk] (f32 or i32, any strides); 0 (or -0) = masked out. */
  keyMask?: Tensor;
  /** Valid keys per batch row (i32 [B] tensor or numbers, clamped to [0, Tk]): keys j >= lengths[b] are masked. Exclusive with keyMask. */
  lengths?: Tensor | readonly number[];
  /**
   * Sliding window (needs causal): the query at absolute position P sees keys j with
   * P - window < j <= P, as transformers' sliding-window mask (Mistral, Gemma 2/3 local layers).
   */
  window?: number;
  /** Soft-cap the scaled scores: s -> softcap * tanh(s / softcap) before the mask (Gemma 2's attn_logit_softcapping). */
  softcap?: number;
}

/** @internal (shared with attention-time.ts) */
export interface Plan {
  B: number; H: number; Hkv: number; Tq: number; Tk: number; D: number;
  qStart: number; scale: number; window: number; cap: number;
  mode: number;
  /** The output O is stored time-major [B,T,H,D] and returned as a [B,H,T,D] view. */
  tmq: boolean;
  maskT?: Tensor;
  ownedMask?: Tensor;
}

/**
 * A [B,H,T,D] view of a [B,T,H,D] buffer (a projection reshaped and permuted, as attention
 * layers do). Outputs follow their input's layout: the layer permutes them back and flattens
 * [B,T,H*D] for the next projection, which is then free instead of a copy.
 */
const timeMajor = (t: Tensor) => t.shape[1] > 1 && t.shape[2] > 1 && t.strides[1] < t.strides[2];

/** @internal */
export function plan(op: string, q: Tensor, k: Tensor, v: Tensor, o: AttentionOptions): Plan {
  for (const t of [q, k, v]) t.assertAlive(op);
  const shapes = `q ${fmt(q.shape)}, k ${fmt(k.shape)}, v ${fmt(v.shape)}`;
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4) throw new Error(`${op}: expected q [B,H,Tq,D], k/v [B,Hkv,Tk,D]; got ${shapes}`);
  const [B, H, Tq, D] = q.shape;
  const [Bk, Hkv, Tk, Dk] = k.shape;
  if (Bk !== B || Dk !== D || v.shape.some((d, i) => d !== k.shape[i])) throw new Error(`${op}: shapes do not match: ${shapes}`);
  if (Hkv === 0 || H % Hkv !== 0) throw new Error(`${op}: query heads ${H} must be a multiple of kv heads ${Hkv} (${shapes})`);
  if (!(ATTN_HEAD_SIZES as readonly number[]).includes(D)) throw new Error(`${op}: head size ${D} unsupported (${shapes}); supported: ${ATTN_HEAD_SIZES.join(', ')}`);
  for (const t of [q, k, v]) if (t.dtype === 'i32') throw new Error(`${op}: q, k, v must be f32 or f16, got ${q.dtype}, ${k.dtype}, ${v.dtype}`);
  if (o.qStart !== undefined && (!o.causal || !Number.isInteger(o.qStart))) throw new Error(`${op}: qStart ${o.qStart} needs causal: true and an integer`);
  const scale = o.scale ?? 1 / Math.sqrt(D);
  if (o.softcap !== undefined && !(o.softcap > 0 && Number.isFinite(o.softcap))) throw new Error(`${op}: softcap ${o.softcap} must be a positive number`);
  if (o.window !== undefined && (!o.causal || !Number.isInteger(o.window) || o.window < 1)) throw new Error(`${op}: window ${o.window} needs causal: true and a positive integer`);
  // Non-causal is causal with every key in the past: qStart = Tk makes j <= i + qStart always hold.
  const qStart = o.causal ? (o.qStart ?? Tk - Tq) : Tk;
  const p: Plan = {
    B, H, Hkv, Tq, Tk, D, qStart: Math.max(-(2 ** 30), Math.min(qStart, 2 ** 30)), scale, mode: MASK_NONE,
    window: Math.min(o.window ?? NO_WINDOW, NO_WINDOW),
    cap: o.softcap ?? 0,
    // The few-query (decode) forward path writes head-major; the block kernels and backward follow the inputs.
    tmq: timeMajor(q) && Tq > FLAT_MAX_TQ,
  };
  if (o.keyMask && o.lengths) throw new Error(`${op}: pass keyMask or lengths, not both`);
  if (o.keyMask) {
    const m = o.keyMask;
    m.assertAlive(op);
    if (m.rank !== 2 || m.shape[0] !== B || m.shape[1] !== Tk || m.dtype === 'f16') throw new Error(`${op}: keyMask must be f32/i32 [${B},${Tk}] for ${shapes}; got ${m.dtype} ${fmt(m.shape)}`);
    p.mode = MASK_KEYS;
    p.maskT = m;
  } else if (o.lengths) {
    let l = o.lengths;
    if (!(l instanceof Tensor)) {
      if (l.length !== B || l.some((x) => !Number.isInteger(x))) throw new Error(`${op}: lengths [${l.join(',')}] must be ${B} integers for ${shapes}`);
      l = p.ownedMask = Tensor.from(Int32Array.from(l), [B], 'i32');
    }
    l.assertAlive(op);
    if (l.rank !== 1 || l.shape[0] !== B || l.dtype !== 'i32') throw new Error(`${op}: lengths must be i32 [${B}] for ${shapes}; got ${l.dtype} ${fmt(l.shape)}`);
    p.mode = MASK_LENGTHS;
    p.maskT = l;
  }
  return p;
}

function uniforms(p: Plan, q: Tensor, k: Tensor, v: Tensor, g?: Tensor): Uniforms {
  const u = new Uniforms(AU.words);
  u.setAll(AU.B, [p.B, p.H, p.Hkv, p.Tq, p.Tk]).setI(AU.QSTART, p.qStart).setF(AU.SCALE, p.scale).setI(AU.WIN, p.window).setF(AU.CAP, p.cap);
  const operand = (at: number, t: Tensor) => u.setAll(at, [...t.strides, t.offset]);
  operand(AU.Q, q);
  operand(AU.K, k);
  operand(AU.V, v);
  if (g) operand(AU.DO, g);
  const m = p.maskT;
  if (m) u.setAll(AU.MASK, [m.strides[0], m.rank > 1 ? m.strides[1] : 0, m.offset]);
  u.set(AU.LOFF, p.B * p.H * p.Tq * p.D).set(AU.MODE, p.mode);
  return u;
}

/** The range of `t`'s buffer its elements span, bound (a whole small buffer as it is). */
function bindSpan(t: Tensor): { binding: Binding; base: number } {
  const [first, end] = spanOf(t.shape, t.strides, t.offset);
  const b = bindElements(t.buffer, BYTES[t.dtype], first, end);
  if (!b) throw new Error(`attention: internal: a view of ${fmt(t.shape)} spans more than one binding`);
  return b;
}

/**
 * q, k, v and the mask bound as the ranges they span (views into buffers beyond one binding,
 * such as batch slices of a packed projection), their offsets in `u` made relative to those.
 * Without a mask the kernels never read M, so q's binding stands in.
 */
function boundInputs(u: Uniforms, p: Plan, q: Tensor, k: Tensor, v: Tensor): Binding[] {
  const b = [q, k, v].map(bindSpan);
  [AU.Q, AU.K, AU.V].forEach((at, i) => u.set(at + 4, [q, k, v][i].offset - b[i].base));
  const m = p.maskT && bindSpan(p.maskT);
  if (m) u.set(AU.MASK + 2, p.maskT!.offset - m.base);
  return [...b.map((x) => x.binding), m ? m.binding : b[0].binding];
}

/** Bytes of the largest binding one attention call (forward and backward) needs. */
function largestBinding(p: Plan, q: Tensor, k: Tensor, v: Tensor): number {
  const span = (t: Tensor) => {
    const [a, b] = spanOf(t.shape, t.strides, t.offset);
    return (b - a) * BYTES[t.dtype];
  };
  const rows = p.B * p.H * p.Tq, kv = p.B * p.Hkv * p.Tk * p.D;
  // Inputs; O with its logsumexp tail; dK|dV side by side; a packed dQ|dK|dV (heads of one tensor).
  const packed = q.storage === k.storage && k.storage === v.storage ? 4 * (rows * p.D + 2 * kv) : 0;
  return Math.max(span(q), span(k), span(v), p.maskT ? span(p.maskT) : 0, 4 * (rows * p.D + rows), 8 * kv, packed);
}

/**
 * attention over inputs or outputs beyond one binding: by chunks of the batch, and when one
 * batch row is still too big (a long KV cache), by groups of whole kv heads within each row
 * (slices are views; autograd flows through the slices and the concatenations).
 */
function attentionSplit(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions, p: Plan): { out: Tensor; lse: Tensor } {
  // One kv head of one batch row, dense, still too big: split its time axis (attention-time.ts).
  if (p.B === 1 && p.Hkv === 1 && [q, k, v].every((t) => t.isContiguous)) return attentionTime(q, k, v, opts);
  const room = bindingLimit() - offsetAlign();
  const need = largestBinding(p, q, k, v);
  const views: Tensor[] = [], parts: Tensor[] = [];
  const cut = (t: Tensor, axis: number, a: number, b: number) => { const x = slice(t, axis, a, b); views.push(x); return x; };
  const join = (xs: Tensor[], axis: number, grad: boolean) => { const y = grad ? concat(xs, axis) : noGrad(() => concat(xs, axis)); parts.push(...xs); return y; };
  const per = Math.floor((p.B * room) / need);
  const rows = per >= 1 ? per : 1;
  const outs: Tensor[] = [], lses: Tensor[] = [];
  for (let b0 = 0; b0 < p.B; b0 += rows) {
    const b1 = Math.min(p.B, b0 + rows);
    const lengths = opts.lengths instanceof Tensor ? cut(opts.lengths, 0, b0, b1) : opts.lengths?.slice(b0, b1);
    const o = { ...opts, keyMask: opts.keyMask && cut(opts.keyMask, 0, b0, b1), lengths };
    const [qb, kb, vb] = [q, k, v].map((t) => cut(t, 0, b0, b1));
    if (per >= 1) {
      const r = attentionLse(qb, kb, vb, o);
      outs.push(r.out);
      lses.push(r.lse);
      continue;
    }
    // One batch row: its kv heads in groups (query heads follow their kv head). When one head's
    // views still span too much (heads of a long packed projection), each head is copied dense.
    const G = p.H / p.Hkv;
    const hk = Math.min(p.Hkv - 1, Math.floor((p.Hkv * room) / (need / p.B)));
    const dense = hk < 1;
    if (dense && p.Hkv === 1 && [qb, kb, vb].every((t) => t.isContiguous)) {
      // Already one dense head: the row goes to the time split as it is (no copy).
      const r = attentionLse(qb, kb, vb, o);
      outs.push(r.out);
      lses.push(r.lse);
      continue;
    }
    const own = (t: Tensor) => { if (!dense) return t; const c = contiguous(t); views.push(c); return c; };
    const ho: Tensor[] = [], hl: Tensor[] = [];
    for (let g0 = 0; g0 < p.Hkv; g0 += dense ? 1 : hk) {
      const g1 = Math.min(p.Hkv, g0 + (dense ? 1 : hk));
      const r = attentionLse(own(cut(qb, 1, g0 * G, g1 * G)), own(cut(kb, 1, g0, g1)), own(cut(vb, 1, g0, g1)), o);
      ho.push(r.out);
      hl.push(r.lse);
    }
    outs.push(join(ho, 1, true));
    lses.push(join(hl, 1, false));
  }
  const out = { out: concat(outs, 0), lse: noGrad(() => concat(lses, 0)) };
  // The parts' backward needs them (and the slices) alive: then they are the caller's scope's.
  if (!out.out.requiresGrad) for (const t of [...outs, ...lses, ...views, ...parts]) t.dispose();
  return out;
}

/**
 * Cooperative-load width for the block kernels: lanes of one subgroup share each loaded row
 * (see kernels/attention.ts). Needs subgroups; W = min(8, smallest subgroup size). 0 disables
 * (plain loads), as does NLA_ATTN_SUBGROUPS=0 (tests use it to cover the fallback).
 */
function coopWidth(): number {
  if (process.env.NLA_ATTN_SUBGROUPS === '0') return 0;
  const g = gpu();
  const min = (g.device as unknown as { adapterInfo?: { subgroupMinSize?: number } }).adapterInfo?.subgroupMinSize ?? 0;
  return g.hasSubgroups && min >= 4 ? Math.min(8, min) : 0;
}

/**
 * Block-kernel shape for head size D: rows owned per lane in the forward and backward kernels.
 * More rows amortise each cooperative load over more FMAs (on lavapipe, D = 64 forward: 1 row
 * 8 ms, 2 rows 4 ms at B8 H4 T128) but multiply live registers, and LLVM's compile time grows
 * steeply with them (D = 64 backward: 12 s at 1 row, ~35 s at 2, over 2 min at 4). The causal
 * diagonal wastes about (wg * rows) / T of the work. D = 64 at B8 H4 T128 (forward + backward,
 * packed q|k|v, `bench/train.ts`'s attention): wg 16 with 1 backward row 21.0 ms, 2 rows 17.1;
 * wg 8 with 2 rows 14.1-16.2; wg 8 with 3 rows 18.4; wg 4 30.2 (a subgroup of 4 shares less).
 */
function blockShape(D: number): { wg: number; fwd: number; bwd: number } {
  if (D <= 32) return { wg: 16, fwd: D <= 16 ? 4 : 2, bwd: 2 };
  if (D <= 64) return { wg: 8, fwd: 2, bwd: 2 };
  return { wg: 16, fwd: 1, bwd: 1 };
}

const cfgOf = (p: Plan, ts: Tensor[], wg: number, sg: number): AttnKernelCfg => ({ D: p.D, dtypes: ts.map((t) => t.dtype), wg, sg: Math.min(sg, wg) });

/** The kernels index the head dimension with compile-time offsets (stride 1): anything else is copied first. */
function unitD(t: Tensor): Tensor {
  return t.strides[3] === 1 ? t : noGrad(() => contiguous(t)); // the attention node itself carries the gradient
}

/** A dense f32 tensor whose storage carries `extra` more floats after its data (a saved side output). */
function withTail(shape: number[], extra: number): Tensor {
  const bytes = Math.max(4, (numel(shape) + extra) * 4);
  return new Tensor(shape, 'f32', new Storage(acquire(bytes, () => `attention: an output ${fmt(shape)} f32 with ${extra} more floats`), bytes));
}

/**
 * `copies` outputs [B,H,T,D] side by side (dV after dK), then `extra` floats (the logsumexp),
 * stored head-major or, with `tm`, time-major [B,T,H,D] and returned as [B,H,T,D] views.
 */
export function outputs(shape: number[], tm: boolean, extra: number, copies = 1): Tensor[] {
  const [B, H, T, D] = shape;
  const st = withTail(tm ? [B, T, H, D] : shape, extra + (copies - 1) * numel(shape));
  const strides = tm ? [T * H * D, D, H * D, 1] : contiguousStrides(shape);
  const views = Array.from({ length: copies }, (_, i) => st.view(shape, strides, i * st.size));
  st.dispose();
  return views;
}

// Flat (one thread per query row) beats the block layout when Tq is too small to fill a block.
const FLAT_MAX_TQ = 2;
// Split the key range over workgroups only when rows alone cannot occupy the device.
const SPLIT_MIN_ROWS = 64, SPLIT_CHUNK = 256;

/**
 * Forward without autograd. The logsumexp L [B,H,Tq] lives in the output's own storage after
 * the data, so it is exactly as long-lived as the output the backward pass already needs.
 */
export function forwardRaw(p: Plan, q: Tensor, k: Tensor, v: Tensor): Tensor {
  const rows = p.B * p.H * p.Tq;
  const [out] = outputs([p.B, p.H, p.Tq, p.D], p.tmq, rows);
  if (rows === 0) return out;
  const u = uniforms(p, q, k, v).setAll(AU.OS, out.strides.slice(0, 3));
  const ins = boundInputs(u, p, q, k, v);
  if (p.Tq > FLAT_MAX_TQ) {
    const { wg, fwd: rq } = blockShape(p.D);
    const cfg = cfgOf(p, [q, k, v], wg, coopWidth());
    dispatch({ ...attnForwardBlock(cfg, rq), buffers: [...ins, out.buffer], uniforms: u.u32, workgroups: [Math.ceil(p.Tq / (wg * rq)), p.H, p.B] });
    return out;
  }
  // Small workgroups: lavapipe hands whole workgroups to its threads, and decode has few rows.
  const wg = 16;
  const G = p.H / p.Hkv, rg = G % 4 === 0 ? 4 : G % 2 === 0 ? 2 : 1;
  const threads = rows / rg;
  const groups = Math.ceil(threads / wg);
  if (groups > 65535) throw new Error(`attention: ${rows} query rows exceed one dispatch in the small-Tq path`);
  const splits = threads < SPLIT_MIN_ROWS && p.Tk > 2 * SPLIT_CHUNK ? Math.ceil(p.Tk / SPLIT_CHUNK) : 1;
  u.set(AU.ROWS, threads).set(AU.CHUNK, splits > 1 ? SPLIT_CHUNK : Math.max(p.Tk, 1)).set(AU.SPLITS, splits);
  const cfg = cfgOf(p, [q, k, v], wg, 0);
  if (splits === 1) {
    dispatch({ ...attnForwardFlat(cfg, false, rg), buffers: [...ins, out.buffer], uniforms: u.u32, workgroups: [groups, 1] });
    return out;
  }
  const part = Tensor.empty([splits * rows * (p.D + 2)]);
  dispatch({ ...attnForwardFlat(cfg, true, rg), buffers: [...ins, part.buffer], uniforms: u.u32, workgroups: [groups, splits] });
  dispatch({ ...attnCombine(p.D), buffers: [part.buffer, out.buffer], uniforms: u.u32, workgroups: [Math.ceil(rows / 64)] });
  part.dispose();
  return out;
}

/**
 * dQ, dK, dV side by side in one [B,T,H+2Hkv,D] buffer when q, k, v are consecutive heads of one
 * such tensor (a packed q|k|v projection): backward then hands the packed tensor its gradient
 * as a view, with no assembly copy (autograd.ts). Undefined for any other layout.
 */
function packedGrads(p: Plan, q: Tensor, k: Tensor, v: Tensor): [Tensor, Tensor, Tensor] | undefined {
  const { B, H, Hkv, Tq, Tk, D } = p, Ht = H + 2 * Hkv;
  const st = [Tq * Ht * D, D, Ht * D, 1];
  const same = (t: Tensor) => t.storage === q.storage && t.dtype === q.dtype && t.strides.every((x, i) => x === st[i] || t.shape[i] === 1);
  if (Tq !== Tk || ![q, k, v].every(same) || k.offset !== q.offset + H * D || v.offset !== k.offset + Hkv * D) return undefined;
  const all = Tensor.empty([B, Tq, Ht, D]);
  const views = [q, k, v].map((t, i) => all.view([...t.shape], st, [0, H * D, (H + Hkv) * D][i]));
  all.dispose();
  return views as [Tensor, Tensor, Tensor];
}

export function backwardRaw(p: Plan, q: Tensor, k: Tensor, v: Tensor, out: Tensor, g: Tensor, needKv: boolean): [Tensor, Tensor | null, Tensor | null] {
  const rows = p.B * p.H * p.Tq;
  const nk = p.B * p.Hkv * p.Tk * p.D;
  const packed = needKv && rows > 0 && nk > 0 ? packedGrads(p, q, k, v) : undefined;
  const [dq] = packed ?? outputs(q.shape, timeMajor(q), 0);
  if (rows === 0) return [dq, null, null];
  const u = uniforms(p, q, k, v, g).setAll(AU.OS, out.strides.slice(0, 3)).setAll(AU.DQS, [dq.offset, ...dq.strides.slice(0, 3)]);
  const [bq, bk, bv, bm] = boundInputs(u, p, q, k, v);
  const bg = bindSpan(g);
  u.set(AU.DO + 4, g.offset - bg.base);
  const ins = [bq, bk, bv, bg.binding, out.buffer];
  const { wg, bwd: r } = blockShape(p.D);
  const cfg = cfgOf(p, [q, k, v, g], wg, coopWidth());
  const di = Tensor.empty([rows]); // Di = rowsum(dO * O), from pass 1 for pass 2
  dispatch({
    ...attnBackwardDq(cfg, r), buffers: [...ins, bm, dq.buffer, di.buffer], readOnly: [true, true, true, true, true, true, false, false],
    uniforms: u.u32, workgroups: [Math.ceil(p.Tq / (wg * r)), p.H, p.B],
  });
  if (!needKv || nk === 0) {
    di.dispose();
    return [dq, null, null];
  }
  const [dk, dv] = packed ? packed.slice(1) : outputs(k.shape, timeMajor(k), 0, 2);
  u.setAll(AU.DKS, [dk.offset, ...dk.strides.slice(0, 3)]).set(AU.AUX2, dv.offset - dk.offset);
  dispatch({ ...attnBackwardDkv(cfg, r), buffers: [...ins, di.buffer, bm, dk.buffer], uniforms: u.u32, workgroups: [Math.ceil(p.Tk / (wg * r)), p.Hkv, p.B] });
  di.dispose();
  return [dq, dk, dv];
}

/**
 * softmax(q k^T * scale + mask) v over q [B,H,Tq,D], k/v [B,Hkv,Tk,D] (head h reads kv head
 * floor(h / (H / Hkv))); returns a dense [B,H,Tq,D]. Rows with no visible key output 0.
 * Differentiable in q, k and v (fused recompute backward; deterministic). Keys excluded by
 * keyMask or lengths are never used (they may hold NaN); keys excluded only by the causal rule
 * must be finite (they are multiplied by 0).
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  return attentionLse(q, k, v, opts).out;
}

/** attention() plus the per-row logsumexp of the scaled, masked scores [B,H,Tq] (-3e38 for fully masked rows; not differentiable). */
export function attentionLse(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): { out: Tensor; lse: Tensor } {
  const p = plan('attention', q, k, v, opts);
  if (largestBinding(p, q, k, v) > bindingLimit() - offsetAlign()) {
    p.ownedMask?.dispose();
    return attentionSplit(q, k, v, opts, p);
  }
  const [qu, ku, vu] = [q, k, v].map(unitD);
  let out: Tensor;
  try {
    out = forwardRaw(p, qu, ku, vu);
  } finally {
    p.ownedMask?.dispose(); // host lengths were uploaded for this dispatch only (the backward re-plans)
    for (const [t, x] of [[qu, q], [ku, k], [vu, v]]) if (t !== x) t.dispose();
  }
  const lse = out.view([p.B, p.H, p.Tq], contiguousStrides([p.B, p.H, p.Tq]), out.size);
  const y = withGrad('attention', out, [q, k, v], (g) => {
    const bp = plan('attention backward', q, k, v, opts);
    const ts = [q, k, v, g].map(unitD);
    try {
      return backwardRaw(bp, ts[0], ts[1], ts[2], out, ts[3], k.requiresGrad || v.requiresGrad);
    } finally {
      bp.ownedMask?.dispose();
      ts.forEach((t, i) => t !== [q, k, v, g][i] && t.dispose());
    }
  });
  return { out: y, lse };
}

/**
 * One decoding step against a KV cache: q [B,H,Tq,D] (normally Tq = 1, the newest token,
 * whose k/v are already written), caches [B,Hkv,Tmax,D]. `lengths` = keys written so far: a
 * number (same for the whole batch; the caches are sliced, no upload) or per batch row (i32
 * tensor, or numbers which are uploaded). Queries see keys j < length (causally among
 * themselves when Tq > 1 with a number length).
 */
export function attentionDecode(q: Tensor, kCache: Tensor, vCache: Tensor, lengths: number | readonly number[] | Tensor, opts: { scale?: number; keyMask?: Tensor; window?: number; softcap?: number } = {}): Tensor {
  if (typeof lengths === 'number') {
    const Tmax = kCache.shape[2];
    if (!Number.isInteger(lengths) || lengths < 0 || lengths > Tmax) throw new Error(`attentionDecode: length ${lengths} out of range for cache ${fmt(kCache.shape)}`);
    const k = kCache.slice(2, 0, lengths), v = vCache.slice(2, 0, lengths);
    const mask = opts.keyMask?.slice(1, 0, lengths);
    try {
      return attention(q, k, v, { scale: opts.scale, causal: true, keyMask: mask, window: opts.window, softcap: opts.softcap });
    } finally {
      k.dispose(); v.dispose(); mask?.dispose();
    }
  }
  if (q.shape[2] !== 1) throw new Error(`attentionDecode: per-batch lengths need one query per row, got q ${fmt(q.shape)}`);
  if (opts.window !== undefined) throw new Error('attentionDecode: a sliding window needs one length for the whole batch (per-batch lengths are not causal positions)');
  return attention(q, kCache, vCache, { scale: opts.scale, keyMask: opts.keyMask, lengths, softcap: opts.softcap });
}

export { writeKV } from './write-kv.js';

// Attention split over the time axis: one kv head of one batch row whose q, k, v, output or
// gradients are still beyond one storage binding (a long context on a device with a small
// binding limit). Query ranges are independent. Key ranges are combined exactly, flash-style:
// each range's pass gives its output O_c and logsumexp L_c, and with L = logsumexp_c L_c,
// O = sum_c exp(L_c - L) O_c. The backward needs no combination at all: the kernels recompute
// P = exp(S - L) from the L they are given, so handing every (query range, key range) pair the
// global O and L makes its dS = P (dO V^T - rowsum(dO O)) the global one; dQ adds over key
// ranges, dK/dV over query ranges.
import { bindingLimit, offsetAlign } from '../binding.js';
import { withGrad } from '../autograd.js';
import { tidy } from '../scope.js';
import { contiguousStrides, fmt } from '../shape.js';
import { noGrad, Tensor } from '../tensor.js';
import { contiguous, copyInto, fill } from './copy.js';
import { add, affine, cast, div, exp, log, maximum, mul, sub } from './elementwise.js';
import { concat, slice, unsqueeze } from './view.js';
import { MASK_KEYS, MASK_LENGTHS } from '../../kernels/attention.js';
import { backwardRaw, forwardRaw, outputs, plan, type AttentionOptions, type Plan } from './attention.js';

/** [lo, hi) ranges of at most `per` covering [0, n) (one empty range when n is 0). */
function ranges(n: number, per: number): [number, number][] {
  const r: [number, number][] = [];
  for (let lo = 0; lo < n; lo += per) r.push([lo, Math.min(n, lo + per)]);
  return r.length ? r : [[0, 0]];
}

/** The [1,G,T] logsumexp stored after the data of a dense [1,G,T,D] output. */
const tailOf = (o: Tensor) => o.view(o.shape.slice(0, 3), contiguousStrides(o.shape.slice(0, 3)), o.offset + o.size);

/**
 * q [1,G,Tq,D], k/v [1,1,Tk,D], all dense (attentionSplit guarantees it). Differentiable in q,
 * k, v like attentionLse.
 */
export function attentionTime(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions): { out: Tensor; lse: Tensor } {
  const p = plan('attention', q, k, v, opts);
  p.ownedMask?.dispose(); // lengths are re-made per key range below
  const { H: G, Tq, Tk, D } = p;
  const room = bindingLimit() - offsetAlign();
  // One call binds at most: q rows, O with its logsumexp, dQ (query side); dK|dV side by side (key side).
  const tq = Math.floor(room / (4 * G * (D + 1))), tk = Math.floor(room / (8 * D));
  if (tq < 1 || tk < 1) throw new Error(`attention: one query row of ${G} heads x ${D} or one key row of q ${fmt(q.shape)}, k ${fmt(k.shape)} is beyond this GPU's maxStorageBufferBindingSize of ${bindingLimit()} B`);
  const qr = ranges(Tq, tq), kr = ranges(Tk, tk);
  // Key range c is visible to query range [i0, i1) unless every pair is causally or window-excluded.
  const visible = ([i0, i1]: [number, number]) => {
    const vis = kr.map((_, c) => c).filter((c) => {
      const [j0, j1] = kr[c];
      return j0 <= i1 - 1 + p.qStart && j1 - 1 > i0 + p.qStart - p.window;
    });
    return vis.length ? vis : [0]; // nothing visible: one pass still writes 0 and the empty logsumexp
  };
  const sub0 = (i0: number, i1: number, c: number, mask?: Tensor): Plan => ({
    ...p, Tq: i1 - i0, Tk: kr[c][1] - kr[c][0], qStart: p.qStart + i0 - kr[c][0], tmq: false, maskT: mask, ownedMask: undefined,
  });
  // Per key range: its k, v rows (dense copies) and its mask (a view, or lengths shifted to the range).
  const keyParts = (c: number): { k: Tensor; v: Tensor; mask?: Tensor } => {
    const [j0, j1] = kr[c];
    const part = { k: contiguous(slice(k, 2, j0, j1)), v: contiguous(slice(v, 2, j0, j1)) };
    if (p.mode === MASK_KEYS) return { ...part, mask: slice(opts.keyMask!, 1, j0, j1) };
    if (p.mode === MASK_LENGTHS) {
      const l = opts.lengths instanceof Tensor ? opts.lengths : Tensor.from(Int32Array.from(opts.lengths!), [1], 'i32');
      return { ...part, mask: cast(affine(cast(l, 'f32'), 1, -j0), 'i32') };
    }
    return part;
  };

  const [out] = outputs([1, G, Tq, D], false, G * Tq);
  const lse = tailOf(out);
  noGrad(() => {
    for (const [i0, i1] of qr) {
      tidy(() => {
        const qc = contiguous(slice(q, 2, i0, i1));
        const parts = visible([i0, i1]).map((c) => {
          const kp = keyParts(c);
          return forwardRaw(sub0(i0, i1, c, kp.mask), qc, kp.k, kp.v);
        });
        let o = parts[0], l = tailOf(parts[0]);
        if (parts.length > 1) {
          const ls = parts.map(tailOf);
          const m = ls.reduce((a, b) => maximum(a, b));
          const w = ls.map((x) => exp(sub(x, m)));
          const s = w.reduce((a, b) => add(a, b));
          const acc = parts.map((x, i) => mul(x, unsqueeze(w[i], 3))).reduce((a, b) => add(a, b));
          o = div(acc, unsqueeze(s, 3));
          l = add(m, log(s));
        }
        copyInto(slice(out, 2, i0, i1), o);
        copyInto(slice(lse, 2, i0, i1), l);
      });
    }
  });

  const y = withGrad('attention', out, [q, k, v], (g) => noGrad(() => {
    const needKv = k.requiresGrad || v.requiresGrad;
    const dqs: Tensor[] = [];
    const dks: (Tensor | undefined)[] = kr.map(() => undefined), dvs = [...dks];
    const keys = kr.map((_, c) => keyParts(c));
    for (const [i0, i1] of qr) {
      const qc = contiguous(slice(q, 2, i0, i1)), gc = contiguous(slice(g, 2, i0, i1));
      // This query range's O and L in one buffer, as the kernels read them.
      const [ol] = outputs([1, G, i1 - i0, D], false, G * (i1 - i0));
      copyInto(ol, slice(out, 2, i0, i1));
      copyInto(tailOf(ol), slice(lse, 2, i0, i1));
      let dq: Tensor | undefined;
      // Sums kept as they go: the pieces are disposed at once (a long context's backward
      // would otherwise hold every range's copies until autograd's scope ends).
      const plus = (acc: Tensor | undefined, x: Tensor) => {
        if (!acc) return x;
        const y = add(acc, x);
        acc.dispose();
        x.dispose();
        return y;
      };
      for (const c of visible([i0, i1])) {
        const [dqc, dkc, dvc] = backwardRaw(sub0(i0, i1, c, keys[c].mask), qc, keys[c].k, keys[c].v, ol, gc, needKv);
        dq = plus(dq, dqc);
        if (dkc && dvc) {
          dks[c] = plus(dks[c], dkc);
          dvs[c] = plus(dvs[c], dvc);
        }
      }
      dqs.push(dq!);
      for (const t of [qc, gc, ol]) t.dispose();
    }
    const dq = concat(dqs, 2);
    if (!needKv) return [dq, null, null];
    const zero = (c: number) => fill([1, 1, kr[c][1] - kr[c][0], D], 0);
    return [dq, concat(dks.map((t, c) => t ?? zero(c)), 2), concat(dvs.map((t, c) => t ?? zero(c)), 2)];
  }));
  return { out: y, lse };
}

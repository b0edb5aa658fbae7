// Float64 references for the neural-net ops (softmax, losses, norms, RoPE, gathers) and the
// optimizer updates. Plain loops over rows; integer inputs arrive as Nd of whole numbers.
import { Nd } from './nd.js';
import { numel } from '../shape.js';

const lastDim = (x: Nd) => x.shape[x.rank - 1];
const rowsOf = (x: Nd) => x.size / Math.max(lastDim(x), 1);

function rowwise(x: Nd, f: (row: Float64Array) => Float64Array): Nd {
  const n = lastDim(x), out = new Nd([...x.shape]);
  for (let r = 0; r < rowsOf(x); r++) out.data.set(f(x.data.subarray(r * n, (r + 1) * n)), r * n);
  return out;
}

export function logsumexpRow(row: ArrayLike<number>): number {
  let m = -Infinity;
  for (let i = 0; i < row.length; i++) m = Math.max(m, row[i]);
  if (m === -Infinity) return -Infinity;
  let s = 0;
  for (let i = 0; i < row.length; i++) s += Math.exp(row[i] - m);
  return m + Math.log(s);
}

export const softmax = (x: Nd) => rowwise(x, (r) => { const l = logsumexpRow(r); return r.map((v) => Math.exp(v - l)); });
export const logSoftmax = (x: Nd) => rowwise(x, (r) => { const l = logsumexpRow(r); return r.map((v) => v - l); });

export interface CeOpts { ignoreIndex?: number; reduction?: 'mean' | 'sum' | 'none'; mask?: Nd }

/** Per-row -log softmax(x)[t], weighted by mask and zeroed at ignoreIndex; reduced as asked. */
export function crossEntropy(logits: Nd, targets: Nd, opts: CeOpts = {}): Nd {
  const V = lastDim(logits), N = rowsOf(logits);
  const loss = new Nd([...targets.shape]);
  let wsum = 0;
  for (let r = 0; r < N; r++) {
    const t = targets.data[r];
    const w = t === opts.ignoreIndex ? 0 : opts.mask ? opts.mask.data[r] : 1;
    const row = logits.data.subarray(r * V, (r + 1) * V);
    loss.data[r] = w === 0 ? 0 : w * (logsumexpRow(row) - row[t]);
    wsum += w;
  }
  const reduction = opts.reduction ?? 'mean';
  if (reduction === 'none') return loss;
  const s = loss.data.reduce((a, b) => a + b, 0);
  return Nd.from([], [reduction === 'sum' ? s : wsum === 0 ? 0 : s / wsum]);
}

/** log softmax(x)[t] per row. */
export function tokenLogProbs(logits: Nd, targets: Nd): Nd {
  const V = lastDim(logits);
  const out = new Nd([...targets.shape]);
  for (let r = 0; r < out.size; r++) {
    const row = logits.data.subarray(r * V, (r + 1) * V);
    out.data[r] = row[targets.data[r]] - logsumexpRow(row);
  }
  return out;
}

export function rmsNorm(x: Nd, w: Nd, eps: number): Nd {
  return rowwise(x, (r) => {
    const ms = r.reduce((a, v) => a + v * v, 0) / r.length;
    const s = 1 / Math.sqrt(ms + eps);
    return r.map((v, i) => v * s * w.data[i]);
  });
}

/** silu(y[..., :F]) * y[..., F:] over the last axis of y [..., 2F]. */
export function swiglu(y: Nd): Nd {
  const n2 = lastDim(y), F = n2 / 2, rows = rowsOf(y);
  const out = new Nd([...y.shape.slice(0, -1), F]);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < F; c++) {
      const a = y.data[r * n2 + c];
      out.data[r * F + c] = (a / (1 + Math.exp(-a))) * y.data[r * n2 + F + c];
    }
  return out;
}

export function layerNorm(x: Nd, w: Nd, b: Nd | undefined, eps: number): Nd {
  return rowwise(x, (r) => {
    const mu = r.reduce((a, v) => a + v, 0) / r.length;
    const va = r.reduce((a, v) => a + (v - mu) ** 2, 0) / r.length;
    const s = 1 / Math.sqrt(va + eps);
    return r.map((v, i) => (v - mu) * s * w.data[i] + (b ? b.data[i] : 0));
  });
}

/**
 * RoPE on x [..., T, H, Dh]. positions: start offset (pos = start + t) or an integer Nd of
 * shape [T] or [...batch, T]. The angle is computed here from llama2.c's run.c, in its float32
 * steps, not taken from the implementation (src/tensor/ops/rope.ts), so the tests compare two
 * computations rather than one with itself: for pair k, head_dim = 2k, freq = 1.0f /
 * powf(theta, head_dim / (float)head_size), val = pos * freq.
 */
export function rope(x: Nd, positions: number | Nd, theta: number, layout: 'interleaved' | 'half', inverse = false): Nd {
  const [T, H, Dh] = x.shape.slice(-3);
  const B = numel(x.shape.slice(0, -3));
  const half = Dh / 2;
  const out = x.clone();
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      const pos = typeof positions === 'number' ? positions + t : positions.data[positions.size === T ? t : b * T + t];
      for (let h = 0; h < H; h++) {
        const base = ((b * T + t) * H + h) * Dh;
        for (let k = 0; k < half; k++) {
          const headDim = 2 * k;
          const freq = Math.fround(1 / Math.fround(Math.pow(theta, Math.fround(headDim / Dh))));
          const a = Math.fround(pos * freq);
          const c = Math.cos(a), s = (inverse ? -1 : 1) * Math.sin(a);
          const [i0, i1] = layout === 'interleaved' ? [base + 2 * k, base + 2 * k + 1] : [base + k, base + k + half];
          const v0 = x.data[i0], v1 = x.data[i1];
          out.data[i0] = v0 * c - v1 * s;
          out.data[i1] = v0 * s + v1 * c;
        }
      }
    }
  return out;
}

/** weight [V, ...rest] gathered at ids -> [...ids.shape, ...rest]. */
export function embedding(w: Nd, ids: Nd): Nd {
  const D = w.size / w.shape[0];
  const out = new Nd([...ids.shape, ...w.shape.slice(1)]);
  for (let r = 0; r < ids.size; r++) out.data.set(w.data.subarray(ids.data[r] * D, (ids.data[r] + 1) * D), r * D);
  return out;
}

/** x [..., V] at idx [...] -> [...]. */
export function takeAlong(x: Nd, idx: Nd): Nd {
  const V = lastDim(x);
  const out = new Nd([...idx.shape]);
  for (let r = 0; r < idx.size; r++) out.data[r] = x.data[r * V + idx.data[r]];
  return out;
}

export interface AdamHyper { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number }

/** One PyTorch AdamW step (step counts from 1), in place on float64 arrays. */
export function adamwStep(p: Float64Array, g: ArrayLike<number>, m: Float64Array, v: Float64Array, step: number, h: AdamHyper): void {
  const bc1 = 1 - h.beta1 ** step, bc2 = 1 - h.beta2 ** step;
  for (let i = 0; i < p.length; i++) {
    p[i] *= 1 - h.lr * h.weightDecay;
    m[i] = h.beta1 * m[i] + (1 - h.beta1) * g[i];
    v[i] = h.beta2 * v[i] + (1 - h.beta2) * g[i] * g[i];
    p[i] -= (h.lr / bc1) * m[i] / (Math.sqrt(v[i]) / Math.sqrt(bc2) + h.eps);
  }
}

/** One PyTorch SGD step (L2 weight decay, momentum buffer initialised to the first gradient). */
export function sgdStep(p: Float64Array, g: ArrayLike<number>, buf: Float64Array | undefined, first: boolean, h: { lr: number; momentum: number; weightDecay: number; nesterov: boolean }): void {
  for (let i = 0; i < p.length; i++) {
    let d = g[i] + h.weightDecay * p[i];
    if (buf && h.momentum) {
      buf[i] = first ? d : h.momentum * buf[i] + d;
      d = h.nesterov ? d + h.momentum * buf[i] : buf[i];
    }
    p[i] -= h.lr * d;
  }
}

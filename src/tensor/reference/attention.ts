// Float64 scaled dot-product attention: the oracle for the fused GPU kernels. Materialises
// each score row on purpose (obviously right, not fast). Indexes the dense arrays directly
// because finite-difference gradient checks call it hundreds of times per case.
import { Nd } from './nd.js';

export interface AttentionRefOptions {
  scale?: number;
  causal?: boolean;
  /** Absolute position of query 0 for the causal rule (default Tk - Tq). */
  qStart?: number;
  /** [B, Tk], 0 = masked out. */
  keyMask?: Nd;
  /** Per-batch number of valid keys. */
  lengths?: readonly number[];
  /** Sliding window: query at position P sees keys j with P - window < j <= P (needs causal). */
  window?: number;
  /** s -> softcap * tanh(s / softcap) after the scale, before the mask. */
  softcap?: number;
}

/** q [B,H,Tq,D], k/v [B,Hkv,Tk,D] -> out [B,H,Tq,D] and lse [B,H,Tq]. Fully masked rows: out 0, lse -Infinity. */
export function attention(q: Nd, k: Nd, v: Nd, o: AttentionRefOptions = {}): { out: Nd; lse: Nd } {
  const [B, H, Tq, D] = q.shape;
  const [, Hkv, Tk] = k.shape;
  const G = H / Hkv;
  const scale = o.scale ?? 1 / Math.sqrt(D);
  const qStart = o.causal ? (o.qStart ?? Tk - Tq) : Infinity;
  const out = new Nd([B, H, Tq, D]);
  const lse = new Nd([B, H, Tq]);
  const s = new Float64Array(Tk);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const kv = (b * Hkv + Math.floor(h / G)) * Tk * D;
      for (let i = 0; i < Tq; i++) {
        const row = (b * H + h) * Tq + i;
        let m = -Infinity;
        for (let j = 0; j < Tk; j++) {
          const ok = j <= i + qStart && (o.window === undefined || j > i + qStart - o.window) && (!o.keyMask || o.keyMask.data[b * Tk + j] !== 0) && (!o.lengths || j < o.lengths[b]);
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q.data[row * D + d] * k.data[kv + j * D + d];
          const sc = o.softcap ? o.softcap * Math.tanh((dot * scale) / o.softcap) : dot * scale;
          s[j] = ok ? sc : -Infinity;
          m = Math.max(m, s[j]);
        }
        if (m === -Infinity) {
          lse.data[row] = -Infinity; // out row stays 0
          continue;
        }
        let l = 0;
        for (let j = 0; j < Tk; j++) l += Math.exp(s[j] - m);
        for (let j = 0; j < Tk; j++) {
          const p = Math.exp(s[j] - m) / l;
          if (p) for (let d = 0; d < D; d++) out.data[row * D + d] += p * v.data[kv + j * D + d];
        }
        lse.data[row] = m + Math.log(l);
      }
    }
  return { out, lse };
}

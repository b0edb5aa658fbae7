// Right-padded token batches. With causal attention, right padding never changes the
// positions before it, so no attention mask is needed; losses mask the padded tail.
export interface PaddedBatch {
  ids: Int32Array; // [B, T]
  B: number;
  T: number;
  lengths: number[];
}

export function padRight(seqs: number[][], padId: number): PaddedBatch {
  const B = seqs.length;
  const T = Math.max(1, ...seqs.map((s) => s.length));
  const ids = new Int32Array(B * T).fill(padId);
  seqs.forEach((s, b) => ids.set(s, b * T));
  return { ids, B, T, lengths: seqs.map((s) => s.length) };
}

/** Host [B, T, 1] one-hot of each row's last real token (selects it by a masked sum). */
export function lastTokenMask(batch: PaddedBatch): Float32Array {
  const m = new Float32Array(batch.B * batch.T);
  batch.lengths.forEach((len, b) => (m[b * batch.T + len - 1] = 1));
  return m;
}

/** Host [B, T-1] mask over next-token targets: 1 where target position t+1 lies in [from_b, length_b). */
export function targetMask(batch: PaddedBatch, from: number[]): Float32Array {
  const Tm = batch.T - 1;
  const m = new Float32Array(batch.B * Tm);
  for (let b = 0; b < batch.B; b++) for (let t = 0; t < Tm; t++) if (t + 1 >= from[b] && t + 1 < batch.lengths[b]) m[b * Tm + t] = 1;
  return m;
}

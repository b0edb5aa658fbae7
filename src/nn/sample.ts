// Token sampling on the host from one row of logits: greedy, temperature, top-k, top-p.
// Float64 throughout; greedy breaks ties toward the lower id, as llama2.c's argmax does.

export interface SamplerOptions {
  temperature?: number; // 0 = greedy
  topK?: number;
  topP?: number;
}

export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/** log softmax(row)[id] in float64. */
export function logProbOf(row: ArrayLike<number>, id: number): number {
  let m = -Infinity;
  for (let i = 0; i < row.length; i++) m = Math.max(m, row[i]);
  let s = 0;
  for (let i = 0; i < row.length; i++) s += Math.exp(row[i] - m);
  return row[id] - m - Math.log(s);
}

export function sampleToken(row: ArrayLike<number>, opts: SamplerOptions, rand: () => number): number {
  const t = opts.temperature ?? 1;
  if (t <= 0) return argmax(row);
  const n = row.length;
  let m = -Infinity;
  for (let i = 0; i < n; i++) m = Math.max(m, row[i]);
  const p = new Float64Array(n);
  let s = 0;
  for (let i = 0; i < n; i++) s += p[i] = Math.exp((row[i] - m) / t);
  for (let i = 0; i < n; i++) p[i] /= s;
  let ids = [...Array(n).keys()];
  if ((opts.topK && opts.topK < n) || (opts.topP && opts.topP < 1)) {
    ids.sort((a, b) => p[b] - p[a] || a - b);
    if (opts.topK && opts.topK < n) ids = ids.slice(0, Math.max(1, opts.topK));
    if (opts.topP && opts.topP < 1) {
      let cum = 0, cut = ids.length;
      for (let i = 0; i < ids.length; i++) {
        cum += p[ids[i]];
        if (cum > opts.topP) {
          cut = i + 1;
          break;
        }
      }
      ids = ids.slice(0, cut);
    }
  }
  const mass = ids.reduce((a, i) => a + p[i], 0);
  let r = rand() * mass;
  for (const i of ids) {
    r -= p[i];
    if (r <= 0) return i;
  }
  return ids[ids.length - 1];
}

// What naming the wrong value costs in FVE. The NLA's losses compare L2-normalised vectors
// (norm sqrt(d)), so an explanation that names value b on a row of value a, read by an AR that
// returns each value's mean activation, loses |mean_a - mean_b|^2 / d / Var of FVE. When that
// cost is near 0 for a pair, the reconstruction loss (and RL's reward) cannot tell the two
// values apart, however well a linear probe separates them: precision on such pairs can only
// come from the warm start's supervision.

export interface ConfusionCost {
  /** The pair of values whose confusion costs least, and that cost in FVE. */
  min: number;
  pair: [string, string];
  /** Mean over all pairs of values present. */
  mean: number;
  /** Values with at least one row (pairs are formed among these). */
  values: number;
}

/**
 * Rows of h ([n, d]) labelled by `label` (undefined = not used); `variance` is the FVE's
 * normaliser (the store's variance of normalised activations). Undefined with fewer than two values.
 */
export function confusionCost(h: ArrayLike<number>, label: readonly (string | undefined)[], d: number, variance: number): ConfusionCost | undefined {
  const sums = new Map<string, { s: Float64Array; n: number }>();
  label.forEach((v, i) => {
    if (v === undefined) return;
    let norm = 0;
    for (let j = 0; j < d; j++) norm += h[i * d + j]! ** 2;
    const scale = Math.sqrt(d / Math.max(norm, 1e-30));
    const g = sums.get(v) ?? { s: new Float64Array(d), n: 0 };
    for (let j = 0; j < d; j++) g.s[j]! += h[i * d + j]! * scale;
    g.n++;
    sums.set(v, g);
  });
  const means = [...sums].map(([v, g]) => ({ v, m: g.s.map((x) => x / g.n) }));
  if (means.length < 2) return undefined;
  let min = Infinity, pair: [string, string] = ['', ''], total = 0, pairs = 0;
  for (let a = 0; a < means.length; a++) {
    for (let b = a + 1; b < means.length; b++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += (means[a]!.m[j]! - means[b]!.m[j]!) ** 2;
      const cost = s / d / variance;
      total += cost;
      pairs++;
      if (cost < min) [min, pair] = [cost, [means[a]!.v, means[b]!.v]];
    }
  }
  return { min, pair, mean: total / pairs, values: means.length };
}

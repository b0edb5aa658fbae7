// A small seeded PRNG so that corpora, splits and cut points are identical on every run and
// machine (Math.random is neither seedable nor reproducible).

import { rng } from '../util/rng.js';

/** A function returning uniform floats in [0, 1). */
export type Rng = () => number;

/** mulberry32: 32-bit state, fast, good enough for data generation (not for cryptography). */
export function mulberry32(seed: number): Rng {
  return rng(seed);
}

/** Uniform integer in [0, n). */
export function randInt(rng: Rng, n: number): number {
  return Math.floor(rng() * n);
}

/** Uniform choice from a non-empty array. */
export function pick<T>(rng: Rng, items: readonly T[]): T {
  if (items.length === 0) throw new Error('pick: empty array');
  return items[randInt(rng, items.length)]!;
}

/** Fisher-Yates shuffle of a copy. */
export function shuffled<T>(rng: Rng, items: readonly T[]): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = randInt(rng, i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

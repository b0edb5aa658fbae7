// The one seeded PRNG of the project (mulberry32): small, fast, reproducible across runs and
// machines (Math.random is neither seedable nor reproducible), so corpora, splits, cut points
// and initial weights are identical on every run. SeededRng exposes its 32-bit state so a
// checkpoint can save and restore it. Not for cryptography.

/** A function returning uniform floats in [0, 1). */
export type Rng = () => number;

export class SeededRng {
  state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** As a plain function, for APIs that take `() => number`. */
  fn(): Rng {
    return () => this.next();
  }
}

/** A seeded uniform [0, 1) stream (mulberry32). */
export function rng(seed: number): Rng {
  return new SeededRng(seed).fn();
}

/** Standard normal via Box-Muller. */
export function gaussian(rand: Rng): Rng {
  return () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

/** Uniform integer in [0, n). */
export function randInt(rand: Rng, n: number): number {
  return Math.floor(rand() * n);
}

/** Uniform choice from a non-empty array. */
export function pick<T>(rand: Rng, items: readonly T[]): T {
  if (items.length === 0) throw new Error('pick: empty array');
  return items[randInt(rand, items.length)]!;
}

/** Fisher-Yates shuffle of a copy. */
export function shuffled<T>(rand: Rng, items: readonly T[]): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = randInt(rand, i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

// The one seeded PRNG of the project (mulberry32): small, fast, reproducible across runs and
// machines. SeededRng exposes its 32-bit state so a checkpoint can save and restore it.
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
  fn(): () => number {
    return () => this.next();
  }
}

export function rng(seed: number): () => number {
  return new SeededRng(seed).fn();
}

/** Standard normal via Box-Muller. */
export function gaussian(rand: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

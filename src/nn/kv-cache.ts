// Per-layer key/value cache for incremental decoding: [B, Hkv, Tmax, Dh] buffers written in
// place at the current length, read back as views of the first `length + T` positions.
import { keep } from '../tensor/scope.js';
import { copyInto, zeros } from '../tensor/ops/copy.js';
import type { Tensor } from '../tensor/tensor.js';

export class KVCache {
  readonly k: Tensor[] = [];
  readonly v: Tensor[] = [];
  /** Positions already written (the next token's position). */
  length = 0;

  constructor(readonly layers: number, readonly batch: number, readonly kvHeads: number, readonly maxLen: number, readonly headDim: number) {
    for (let l = 0; l < layers; l++) {
      this.k.push(keep(zeros([batch, kvHeads, maxLen, headDim])));
      this.v.push(keep(zeros([batch, kvHeads, maxLen, headDim])));
    }
  }

  /** Write k, v ([B, Hkv, T, Dh]) at positions [length, length+T) of `layer`; return views of [0, length+T). */
  append(layer: number, k: Tensor, v: Tensor): { k: Tensor; v: Tensor } {
    const T = k.shape[2];
    const end = this.length + T;
    if (end > this.maxLen) throw new Error(`KVCache: ${end} positions exceed the cache size ${this.maxLen}`);
    for (const [dst, src] of [[this.k[layer], k], [this.v[layer], v]] as const) {
      const region = dst.slice(2, this.length, end);
      copyInto(region, src);
      region.dispose();
    }
    return { k: this.k[layer].slice(2, 0, end), v: this.v[layer].slice(2, 0, end) };
  }

  /** Called once per forward, after every layer appended. */
  advance(T: number): void {
    this.length += T;
  }

  dispose(): void {
    for (const t of [...this.k, ...this.v]) t.dispose();
  }
}

// What every language model here offers the rest of nla.
import type { ModelConfig } from '../io/config.js';
import type { Tensor } from '../tensor/tensor.js';
import type { KVCache } from './kv-cache.js';
import type { ForwardOptions, ForwardResult } from './llama.js';
import type { Weights } from './weights.js';

export interface LanguageModel {
  readonly cfg: ModelConfig;
  readonly w: Weights;
  forward(ids: Tensor, opts?: ForwardOptions): ForwardResult;
  newCache(batch: number, maxLen?: number): KVCache;
}

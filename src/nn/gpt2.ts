// GPT-2: LayerNorm, learned positions, GELU (tanh approximation, or erf for activation_function
// "gelu"), tied embeddings. HF stores its projections as Conv1D weights [in, out], so they
// multiply as x @ W (no transpose).
import type { Gpt2Config } from '../io/config.js';
import * as T from '../tensor/index.js';
import type { Tensor } from '../tensor/tensor.js';
import type { KVCache } from './kv-cache.js';
import { KVCache as Cache } from './kv-cache.js';
import { injectAt, type ForwardOptions, type ForwardResult } from './llama.js';
import type { Weights } from './weights.js';

export class Gpt2 {
  constructor(readonly cfg: Gpt2Config, readonly w: Weights) {}

  get headDim(): number {
    return this.cfg.dim / this.cfg.nHeads;
  }

  static expectedWeights(c: Gpt2Config): Map<string, number[]> {
    const d = c.dim, m = new Map<string, number[]>([
      ['transformer.wte.weight', [c.vocabSize, d]],
      ['transformer.wpe.weight', [c.maxSeqLen, d]],
      ['transformer.ln_f.weight', [d]],
      ['transformer.ln_f.bias', [d]],
    ]);
    for (let l = 0; l < c.nLayers; l++) {
      const p = `transformer.h.${l}.`;
      for (const n of ['ln_1', 'ln_2']) (m.set(p + n + '.weight', [d]), m.set(p + n + '.bias', [d]));
      m.set(p + 'attn.c_attn.weight', [d, 3 * d]).set(p + 'attn.c_attn.bias', [3 * d]);
      m.set(p + 'attn.c_proj.weight', [d, d]).set(p + 'attn.c_proj.bias', [d]);
      m.set(p + 'mlp.c_fc.weight', [d, c.hiddenDim]).set(p + 'mlp.c_fc.bias', [c.hiddenDim]);
      m.set(p + 'mlp.c_proj.weight', [c.hiddenDim, d]).set(p + 'mlp.c_proj.bias', [d]);
    }
    return m;
  }

  newCache(batch: number, maxLen = this.cfg.maxSeqLen): KVCache {
    return new Cache(this.cfg.nLayers, batch, this.cfg.nHeads, maxLen, this.headDim);
  }

  forward(ids: Tensor, opts: ForwardOptions = {}): ForwardResult {
    const c = this.cfg, w = (n: string) => this.w.get(n);
    const [, Tn] = ids.shape;
    const last = opts.untilLayer ?? c.nLayers - 1;
    if (!Number.isInteger(last) || last < 0 || last >= c.nLayers) throw new Error(`Gpt2.forward: layer ${last} out of range (blocks 0..${c.nLayers - 1})`);
    const start = opts.cache?.length ?? 0;
    if (start + Tn > c.maxSeqLen) throw new Error(`Gpt2.forward: ${start + Tn} positions exceed n_positions ${c.maxSeqLen}`);
    let x = T.embedding(w('transformer.wte.weight'), ids);
    if (opts.inject) x = injectAt(x, opts.inject.positions, opts.inject.vectors);
    x = T.add(x, w('transformer.wpe.weight').slice(0, start, start + Tn));
    const captured = new Map<number, Tensor>();
    for (let l = 0; l <= last; l++) {
      const p = `transformer.h.${l}.`;
      const ln = (n: string, t: Tensor) => T.layerNorm(t, w(p + n + '.weight'), w(p + n + '.bias'), c.normEps);
      x = T.add(x, this.attention(l, ln('ln_1', x), opts.cache));
      const h = (c.gelu === 'erf' ? T.gelu : T.geluTanh)(conv1d(ln('ln_2', x), w(p + 'mlp.c_fc.weight'), w(p + 'mlp.c_fc.bias')));
      x = T.add(x, conv1d(h, w(p + 'mlp.c_proj.weight'), w(p + 'mlp.c_proj.bias')));
      if (opts.capture?.includes(l)) captured.set(l, x);
    }
    opts.cache?.advance(Tn);
    if (opts.untilLayer !== undefined) return { hidden: x, captured };
    const h = T.layerNorm(x, w('transformer.ln_f.weight'), w('transformer.ln_f.bias'), c.normEps);
    const [B] = ids.shape;
    if (opts.headless) return { hidden: x, captured, head: { input: h, weight: w('transformer.wte.weight') } };
    const logits = T.linear(h.reshape([B * Tn, c.dim]), w('transformer.wte.weight')).reshape([B, Tn, c.vocabSize]);
    return { logits, hidden: x, captured };
  }

  private attention(l: number, x: Tensor, cache?: KVCache): Tensor {
    const c = this.cfg, hd = this.headDim, w = (n: string) => this.w.get(`transformer.h.${l}.attn.` + n);
    const [B, Tn] = x.shape;
    const qkv = conv1d(x, w('c_attn.weight'), w('c_attn.bias')).reshape([B, Tn, 3, c.nHeads, hd]);
    const part = (i: number) => qkv.slice(2, i, i + 1).reshape([B, Tn, c.nHeads, hd]).permute([0, 2, 1, 3]);
    let [q, k, v] = [part(0), part(1), part(2)];
    if (cache) ({ k, v } = cache.append(l, k, v));
    const o = T.attention(q, k, v, { causal: true });
    return conv1d(o.permute([0, 2, 1, 3]).reshape([B, Tn, c.dim]), w('c_proj.weight'), w('c_proj.bias'));
  }
}

/**
 * HF Conv1D: x [..., in] @ w [in, out] + b. The leading dims are flattened into one matrix so
 * a decode step ([B, 1, in]) is one [B, in] product rather than B single-row ones, and the
 * weight gradient is one x^T @ g instead of a batch of them summed afterwards.
 */
function conv1d(x: Tensor, w: Tensor, b: Tensor): Tensor {
  const lead = x.shape.slice(0, -1);
  const rows = lead.reduce((a, d) => a * d, 1);
  return T.add(T.matmul(x.reshape([rows, x.shape[x.rank - 1]]), w), b).reshape([...lead, w.shape[1]]);
}

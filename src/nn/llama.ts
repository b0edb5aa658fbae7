// The Llama family (Llama 2/3, Mistral, Qwen2 with q/k/v biases; Gemma and Gemma 3's text model;
// stories260K), readable top to bottom like nanoGPT's model.py. Weights use Hugging Face names
// (see weights.ts).
import type { LlamaConfig } from '../io/config.js';
import * as T from '../tensor/index.js';
import type { Tensor } from '../tensor/tensor.js';
import { KVCache } from './kv-cache.js';
import { Weights } from './weights.js';

export interface ForwardOptions {
  /** Decode against (and append to) this cache; positions start at cache.length. */
  cache?: KVCache;
  /** Stop after block K and return its output (the residual stream "layer K"); no final norm, no logits. */
  untilLayer?: number;
  /** Also return the residual stream after these blocks. */
  capture?: number[];
  /** Replace the input embedding at one position per row with these vectors ([B, D]). */
  inject?: { positions: number[]; vectors: Tensor };
  /**
   * Stack the q|k|v and the gate|up weights into one product each (default: when those weights
   * require gradients, gradients are being recorded and there is no cache, i.e. training). Same
   * values either way; stacking copies the weights per call, which pays only when a backward pass
   * follows (under noGrad a trainable model's inference would copy them for nothing: at 0.5B,
   * 0.6 GB per forward).
   */
  packed?: boolean;
  /**
   * Return the final-normed hidden state and the head weight (`head`) instead of logits, for
   * losses that run the head a vocabulary chunk at a time (T.headLogProbs): [B, T, V] logits of
   * a big vocabulary are never made.
   */
  headless?: boolean;
}

export interface ForwardResult {
  logits?: Tensor; // [B, T, V]
  hidden: Tensor; // residual after the last block run (before the final norm)
  captured: Map<number, Tensor>;
  /**
   * With `headless`: the head's input [B, T, D] (final norm applied, logit scale folded in) and
   * its weight [V, D]; `softcap` when the logits are soft-capped after the product (capLogits).
   */
  head?: { input: Tensor; weight: Tensor; softcap?: number };
}

export class Llama {
  /**
   * Optional scalar [1] multiplying the logits (an inverse temperature that training can learn,
   * as RL does with `logitScaleLr`). Not a weight: fold it into model.norm.weight to save.
   */
  logitScale?: Tensor;

  constructor(readonly cfg: LlamaConfig, readonly w: Weights) {}

  get headDim(): number {
    return this.cfg.headDim ?? this.cfg.dim / this.cfg.nHeads;
  }

  /** Names and shapes this architecture expects (used to validate loaded checkpoints). */
  static expectedWeights(c: LlamaConfig): Map<string, number[]> {
    const hd = c.headDim ?? c.dim / c.nHeads, q = c.nHeads * hd, kv = c.nKvHeads * hd;
    const m = new Map<string, number[]>([['model.embed_tokens.weight', [c.vocabSize, c.dim]], ['model.norm.weight', [c.dim]]]);
    if (!c.tieEmbeddings) m.set('lm_head.weight', [c.vocabSize, c.dim]);
    for (let l = 0; l < c.nLayers; l++) {
      const p = `model.layers.${l}.`;
      m.set(p + 'input_layernorm.weight', [c.dim]);
      m.set(p + 'self_attn.q_proj.weight', [q, c.dim]);
      m.set(p + 'self_attn.k_proj.weight', [kv, c.dim]);
      m.set(p + 'self_attn.v_proj.weight', [kv, c.dim]);
      m.set(p + 'self_attn.o_proj.weight', [c.dim, q]);
      if (c.qkNorm) {
        m.set(p + 'self_attn.q_norm.weight', [hd]);
        m.set(p + 'self_attn.k_norm.weight', [hd]);
      }
      if (c.qkvBias) {
        m.set(p + 'self_attn.q_proj.bias', [q]);
        m.set(p + 'self_attn.k_proj.bias', [kv]);
        m.set(p + 'self_attn.v_proj.bias', [kv]);
      }
      m.set(p + 'post_attention_layernorm.weight', [c.dim]);
      if (c.sandwichNorm) {
        m.set(p + 'pre_feedforward_layernorm.weight', [c.dim]);
        m.set(p + 'post_feedforward_layernorm.weight', [c.dim]);
      }
      m.set(p + 'mlp.gate_proj.weight', [c.hiddenDim, c.dim]);
      m.set(p + 'mlp.up_proj.weight', [c.hiddenDim, c.dim]);
      m.set(p + 'mlp.down_proj.weight', [c.dim, c.hiddenDim]);
    }
    return m;
  }

  newCache(batch: number, maxLen = this.cfg.maxSeqLen): KVCache {
    return new KVCache(this.cfg.nLayers, batch, this.cfg.nKvHeads, maxLen, this.headDim);
  }

  forward(ids: Tensor, opts: ForwardOptions = {}): ForwardResult {
    const c = this.cfg;
    const [, Tn] = ids.shape;
    const last = opts.untilLayer ?? c.nLayers - 1;
    if (!Number.isInteger(last) || last < 0 || last >= c.nLayers) throw new Error(`Llama.forward: layer ${last} out of range (the model has blocks 0..${c.nLayers - 1})`);
    const start = opts.cache?.length ?? 0;
    let x = T.embedding(this.w.get('model.embed_tokens.weight'), ids); // [B, T, D]
    // Gemma scales the embeddings; an injected vector replaces the row after the scale (as the
    // reference NLA injects into inputs_embeds that already carry it), so it is not scaled.
    if (c.embedScale !== undefined && c.embedScale !== 1) x = T.mul(x, c.embedScale);
    if (opts.inject) x = injectAt(x, opts.inject.positions, opts.inject.vectors);
    const captured = new Map<number, Tensor>();
    // Without a graph nothing needs a block's intermediates after it: each block runs in its own
    // scope, so inference holds one block's temporaries at a time (a 0.5B model's 24 blocks
    // otherwise held them all until the caller's scope ended).
    const scoped = !T.isGradEnabled();
    for (let l = 0; l <= last; l++) {
      const p = `model.layers.${l}.`;
      const input = x;
      const norm = (t: Tensor, name: string) => T.rmsNorm(t, this.gain(p + name + '.weight'), c.normEps);
      const block = () => {
        const a = this.attention(l, norm(input, 'input_layernorm'), start, opts.cache, opts.packed);
        if (c.sandwichNorm) {
          // Gemma 2/3: each sublayer's output is normed before it joins the residual stream.
          const y = T.add(input, norm(a, 'post_attention_layernorm'));
          return T.add(y, norm(this.mlp(l, norm(y, 'pre_feedforward_layernorm'), opts.packed), 'post_feedforward_layernorm'));
        }
        const y = T.add(input, a);
        return T.add(y, this.mlp(l, norm(y, 'post_attention_layernorm'), opts.packed));
      };
      x = scoped ? T.tidy(block) : block();
      if (scoped && l > 0 && ![...captured.values()].includes(input)) input.dispose();
      if (opts.capture?.includes(l)) captured.set(l, x);
    }
    opts.cache?.advance(Tn);
    if (opts.untilLayer !== undefined) return { hidden: x, captured };
    const h = T.rmsNorm(x, this.gain('model.norm.weight'), c.normEps);
    const head = c.tieEmbeddings ? this.w.get('model.embed_tokens.weight') : this.w.get('lm_head.weight');
    const cap = c.finalSoftcap;
    // A learned inverse temperature would multiply after the cap, so it cannot fold into the head's input.
    if (cap !== undefined && this.logitScale) throw new Error('Llama.forward: a learned logit scale on a model with final_logit_softcapping is not implemented');
    if (opts.headless) return { hidden: x, captured, head: { input: this.logitScale ? T.mul(h, this.logitScale) : h, weight: head, ...(cap !== undefined ? { softcap: cap } : {}) } };
    const logits = capLogits(T.linear(h, head), cap);
    return { logits: this.logitScale ? T.mul(logits, this.logitScale) : logits, hidden: x, captured };
  }

  /** An RMSNorm gain: the stored weight, plus normOffset for families that store (gain - 1). */
  private gain(name: string): Tensor {
    const w = this.w.get(name);
    return this.cfg.normOffset ? T.add(w, this.cfg.normOffset) : w;
  }

  private attention(l: number, x: Tensor, start: number, cache?: KVCache, packed?: boolean): Tensor {
    const c = this.cfg, hd = this.headDim;
    const [B, Tn] = x.shape;
    const p = `model.layers.${l}.self_attn.`;
    const bias = (n: string) => (c.qkvBias ? this.w.get(p + n + '.bias') : undefined);
    // Sliding-window layers (Gemma 3's local ones) may have their own RoPE base, unscaled.
    const sliding = c.slidingWindow !== undefined && (c.slidingLayers?.[l] ?? true);
    const local = sliding && c.ropeLocalTheta !== undefined;
    const ropeOpts = { start, theta: local ? c.ropeLocalTheta : c.ropeTheta, factor: local ? 1 : (c.ropeFactor ?? 1), layout: c.ropeLayout };
    const rope = (t: Tensor, heads?: number) => T.rope(t, { ...ropeOpts, heads });
    // Gemma 3: each q and k head is RMS-normed (gain 1 + w) before RoPE.
    const headNorm = (t: Tensor, n: string) => (c.qkNorm ? T.rmsNorm(t, this.gain(p + n + '.weight'), c.normEps) : t);
    const wq = this.w.get(p + 'q_proj.weight'), wk = this.w.get(p + 'k_proj.weight'), wv = this.w.get(p + 'v_proj.weight');
    let q: Tensor, k: Tensor, v: Tensor;
    // The packed path ropes q and k in one pass, so per-head norms keep the separate products.
    if (!cache && !c.qkNorm && (packed ?? (T.isGradEnabled() && (wq.requiresGrad || wk.requiresGrad || wv.requiresGrad)))) {
      // Training: one product with the stacked [q; k; v] weights into [B, T, H + 2Hkv, Dh], one
      // RoPE pass over its q and k heads, and q, k, v as head slices of it. Attention writes
      // their gradients side by side, so the packed gradient needs no assembly, and the three
      // weight gradients come out of one product. (Inference keeps three products: stacking
      // copies the weights, which only pays when there is a backward pass.)
      const Ht = c.nHeads + 2 * c.nKvHeads;
      const b = c.qkvBias ? T.concat([bias('q_proj')!, bias('k_proj')!, bias('v_proj')!], 0) : undefined;
      const qkv = rope(T.linear(x, T.concat([wq, wk, wv], 0), b).reshape([B, Tn, Ht, hd]), c.nHeads + c.nKvHeads);
      const heads = (a: number, n: number) => qkv.slice(2, a, a + n).permute([0, 2, 1, 3]);
      [q, k, v] = [heads(0, c.nHeads), heads(c.nHeads, c.nKvHeads), heads(c.nHeads + c.nKvHeads, c.nKvHeads)];
    } else {
      // [B, T, H, Dh] -> rope -> [B, H, T, Dh] (a permuted view).
      q = rope(headNorm(T.linear(x, wq, bias('q_proj')).reshape([B, Tn, c.nHeads, hd]), 'q_norm')).permute([0, 2, 1, 3]);
      k = rope(headNorm(T.linear(x, wk, bias('k_proj')).reshape([B, Tn, c.nKvHeads, hd]), 'k_norm')).permute([0, 2, 1, 3]);
      v = T.linear(x, wv, bias('v_proj')).reshape([B, Tn, c.nKvHeads, hd]).permute([0, 2, 1, 3]);
    }
    if (cache) ({ k, v } = cache.append(l, k, v));
    const o = T.attention(q, k, v, { causal: true, scale: c.attnScale, window: sliding ? c.slidingWindow : undefined, softcap: c.attnSoftcap }); // [B, H, T, Dh]
    return T.linear(o.permute([0, 2, 1, 3]).reshape([B, Tn, c.nHeads * hd]), this.w.get(p + 'o_proj.weight'));
  }

  private mlp(l: number, x: Tensor, packed?: boolean): Tensor {
    const p = `model.layers.${l}.mlp.`;
    const wg = this.w.get(p + 'gate_proj.weight'), wu = this.w.get(p + 'up_proj.weight'), wd = this.w.get(p + 'down_proj.weight');
    // GeGLU (Gemma): no fused kernel, so always the two-product form.
    if (this.cfg.mlpAct === 'gelu_tanh') return T.linear(T.mul(T.geluTanh(T.linear(x, wg)), T.linear(x, wu)), wd);
    if (packed ?? (T.isGradEnabled() && (wg.requiresGrad || wu.requiresGrad))) {
      // Training: one product with the stacked [gate; up] weights and the fused SwiGLU, whose
      // backward writes d[gate | up] in one pass; the stacked weight's gradient splits back into
      // the two weights as views. (The stack is a per-step copy of both weights, so inference,
      // which has no backward to save, keeps two products.)
      return T.linear(T.swiglu(T.linear(x, T.concat([wg, wu], 0))), wd);
    }
    return T.linear(T.mul(T.silu(T.linear(x, wg)), T.linear(x, wu)), wd);
  }
}

/** Gemma 2's final soft-cap c * tanh(z / c) of logits z (z itself without a cap). */
export function capLogits(z: Tensor, cap: number | undefined): Tensor {
  return cap === undefined ? z : T.mul(T.tanh(T.mul(z, 1 / cap)), cap);
}

/** x with row `positions[b]` of each batch row b replaced by vectors[b] (differentiable in both). */
export function injectAt(x: Tensor, positions: number[], vectors: Tensor): Tensor {
  const [B, Tn, D] = x.shape;
  if (positions.length !== B || vectors.shape[0] !== B || vectors.shape[1] !== D) {
    throw new Error(`inject: ${positions.length} positions and vectors [${vectors.shape}] for a batch of ${B} rows of width ${D}`);
  }
  const mask = new Float32Array(B * Tn);
  positions.forEach((p, b) => {
    if (!Number.isInteger(p) || p < 0 || p >= Tn) throw new Error(`inject: position ${p} out of range for length ${Tn}`);
    mask[b * Tn + p] = 1;
  });
  return T.where(T.Tensor.from(mask, [B, Tn, 1]), vectors.reshape([B, 1, D]), x);
}

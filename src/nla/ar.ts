// AR (activation reconstructor): M's blocks 0..K with the final norm dropped, plus a bias-free
// d x d head initialised to the identity, read at the last token of the AR prompt. Before any
// training it therefore reproduces M's layer-K activation of its input text exactly.
import type { Tokenizer } from '../io/tokenizer.js';
import type { LlamaConfig } from '../io/config.js';
import { Llama } from '../nn/llama.js';
import { Weights } from '../nn/weights.js';
import * as T from '../tensor/index.js';
import type { Tensor } from '../tensor/tensor.js';
import { lastTokenMask, padRight } from './batch.js';
import { normalizedMse } from './loss.js';
import { arIds, type PromptSpec } from './prompts.js';

export const AR_HEAD = 'nla.ar_head.weight';

export class Reconstructor {
  constructor(
    readonly model: Llama,
    readonly layer: number,
    readonly tok: Tokenizer,
    readonly prompts: PromptSpec,
    /** Input ids for an explanation, when not nla's own (BOS + filled template), e.g. the reference's. */
    readonly encodeExplanation?: (explanation: string) => number[],
  ) {}

  /** Build from M: copy blocks 0..K and the embedding; add the identity head. */
  static async fromModel(m: Llama, layer: number, tok: Tokenizer, prompts: PromptSpec): Promise<Reconstructor> {
    if (!Number.isInteger(layer) || layer < 0 || layer >= m.cfg.nLayers) throw new Error(`AR: layer ${layer} out of range (M has blocks 0..${m.cfg.nLayers - 1})`);
    const keepName = (n: string) => n === 'model.embed_tokens.weight' || (/^model\.layers\.(\d+)\./.test(n) && Number(/^model\.layers\.(\d+)\./.exec(n)![1]) <= layer);
    const w = await m.w.copy(keepName); // one tensor at a time through the host, in M's order
    const d = m.cfg.dim;
    const eye = new Float32Array(d * d);
    for (let i = 0; i < d; i++) eye[i * d + i] = 1;
    for (const [name, t] of Weights.fromHost(new Map([[AR_HEAD, { dtype: 'f32' as const, shape: [d, d], data: eye }]])).map) w.map.set(name, t);
    return Reconstructor.fromWeights(m.cfg, w, layer, tok, prompts);
  }

  static fromWeights(base: LlamaConfig, w: Weights, layer: number, tok: Tokenizer, prompts: PromptSpec, encodeExplanation?: (explanation: string) => number[]): Reconstructor {
    const cfg: LlamaConfig = { ...base, nLayers: layer + 1 };
    return new Reconstructor(new Llama(cfg, w), layer, tok, prompts, encodeExplanation);
  }

  get d(): number {
    return this.model.cfg.dim;
  }

  /** The token ids the AR reads for an explanation (its prompt around it). */
  ids(explanation: string): number[] {
    return this.encodeExplanation ? this.encodeExplanation(explanation) : arIds(this.tok, this.prompts, explanation);
  }

  /** Predicted activations [B, d] for explanation texts. */
  predict(explanations: string[]): Tensor {
    const batch = padRight(explanations.map((e) => this.ids(e)), 0);
    const x = T.Tensor.from(batch.ids, [batch.B, batch.T], 'i32');
    const { hidden } = this.model.forward(x, { untilLayer: this.layer });
    const last = T.sum(T.mul(hidden, T.Tensor.from(lastTokenMask(batch), [batch.B, batch.T, 1])), 1); // [B, d]
    return T.linear(last, this.model.w.get(AR_HEAD));
  }

  /** Mean normalised MSE of predictions against target activations (host [B*d]); differentiable. */
  loss(explanations: string[], targets: Float32Array): Tensor {
    const pred = this.predict(explanations);
    return T.mean(normalizedMse(pred, T.Tensor.from(targets, [explanations.length, this.d])));
  }

  /** Host predictions (no gradient). */
  async predictHost(explanations: string[], batchSize = 64): Promise<Float32Array> {
    const out = new Float32Array(explanations.length * this.d);
    for (let i = 0; i < explanations.length; i += batchSize) {
      const part = explanations.slice(i, i + batchSize);
      const p = T.noGrad(() => T.tidy(() => this.predict(part)));
      out.set((await p.data()) as Float32Array, i * this.d);
      p.dispose();
    }
    return out;
  }

  params(): Tensor[] {
    return this.model.w.params();
  }
}

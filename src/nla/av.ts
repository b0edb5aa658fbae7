// AV (activation verbalizer): a full copy of M. The activation h is L2-normalised, scaled to
// alpha and written over the input embedding of the one placeholder token in a fixed prompt;
// the AV then writes an explanation, closed by the explanationEnd marker and EOS.
import type { Tokenizer } from '../io/tokenizer.js';
import { generate, sequenceLogProbs, type Generation } from '../nn/generate.js';
import type { Llama } from '../nn/llama.js';
import * as T from '../tensor/index.js';
import type { Tensor } from '../tensor/tensor.js';
import { padRight, targetMask } from './batch.js';
import type { Field } from './corpus.js';
import { factSpans, factTokenWeights, quoteSpan, type WeightSpan } from './fact-weights.js';
import { avPrompt, continuationIds, parseExplanation, type AvPrompt, type PromptSpec } from './prompts.js';

export interface Explained {
  text: string;
  /** The parsed explanation, or undefined (unparseable) when the output never closed or never stopped. */
  explanation: string | undefined;
  tokens: number[];
  /** log p of each token under the AV's unmodified distribution (temperature 1), as generate() reports it. */
  logprobs: number[];
  stopped: boolean;
}

/**
 * How an AV's prompt is laid out and its output read, when not nla's own layout (which is
 * derived from the PromptSpec). The reference NLA's AV, for one, is prompted through its chat
 * template and writes `<explanation>...</explanation>` then its end-of-turn token.
 */
export interface AvStyle {
  /** Prompt ids (as the model sees them, BOS included when the template writes one) and the injection position. */
  prompt: AvPrompt;
  /** Tokens that end an output (EOS, end of turn). */
  stopIds: number[];
  /** The explanation in a finished output's text, or undefined when it has none. */
  parse(text: string): string | undefined;
  /** Ids the AV is trained to write for an explanation, ending with a stop id. */
  target(explanation: string): number[];
}

/**
 * -sum(w * logp) / max(sum(w), 1): the mean NLL over the positions a 0/1 mask selects, or a
 * weighted mean with fact weights (w = 0 off the targets). `w` carries no gradient.
 */
export function weightedNll(logp: Tensor, w: Tensor): Tensor {
  return T.neg(T.div(T.sum(T.mul(logp, w)), T.maximum(T.sum(w), 1)));
}

export class Verbalizer {
  readonly prompt: AvPrompt;
  readonly promptText: string;
  readonly stopIds: number[];

  constructor(readonly model: Llama, readonly tok: Tokenizer, readonly prompts: PromptSpec, readonly alpha: number, readonly style?: AvStyle) {
    this.prompt = style?.prompt ?? avPrompt(tok, prompts);
    this.promptText = prompts.av.replace('{concept}', prompts.placeholder);
    this.stopIds = style?.stopIds ?? [tok.eosId];
  }

  get d(): number {
    return this.model.cfg.dim;
  }

  /** h rows (host [B*d]) -> injected vectors: v * alpha / |v| (norm in f32). */
  injection(h: Float32Array): Tensor {
    const d = this.d, B = h.length / d;
    const v = new Float32Array(h.length);
    for (let b = 0; b < B; b++) {
      let n = 0;
      for (let i = 0; i < d; i++) n += h[b * d + i] ** 2;
      const s = this.alpha / Math.max(Math.sqrt(n), 1e-12);
      for (let i = 0; i < d; i++) v[b * d + i] = h[b * d + i] * s;
    }
    return T.Tensor.from(v, [B, d]);
  }

  /** Token ids the AV is trained to write for an explanation text. */
  targetIds(explanation: string): number[] {
    if (this.style) return this.style.target(explanation);
    const ids = continuationIds(this.tok, this.promptText, this.prompt.ids, explanation + this.prompts.explanationEnd);
    return [...ids, this.tok.eosId];
  }

  /** Sample explanations for activations (host [B*d]); `samples` per activation, laid out activation-major. */
  async explain(h: Float32Array, opts: { samples?: number; temperature?: number; maxTokens: number; seed?: number; topP?: number }): Promise<Explained[]> {
    const d = this.d, n = h.length / d, k = opts.samples ?? 1;
    const rep = new Float32Array(n * k * d);
    for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) rep.set(h.subarray(i * d, (i + 1) * d), (i * k + j) * d);
    const vectors = this.injection(rep);
    let gen: Generation;
    try {
      gen = await generate(this.model, Array.from({ length: n * k }, () => this.prompt.ids), {
        maxNewTokens: opts.maxTokens,
        temperature: opts.temperature ?? 1,
        topP: opts.topP,
        seed: opts.seed,
        stopTokens: this.stopIds,
        inject: { positions: new Array(n * k).fill(this.prompt.position), vectors },
      });
    } finally {
      vectors.dispose();
    }
    return gen.tokens.map((tokens, i) => this.toExplained(tokens, gen.stopped[i], gen.logprobs[i]));
  }

  /**
   * One output as generated. A rollout that ran into the token cap is unparseable even when it
   * closed its tag (the reference implementation's rule): counted as parsed, rambling on after
   * the tag costs nothing, and RL then drifts towards ever longer outputs.
   */
  toExplained(tokens: number[], stopped: boolean, logprobs: number[] = []): Explained {
    const body = this.stopIds.includes(tokens[tokens.length - 1]) ? tokens.slice(0, -1) : tokens;
    const text = this.decode(body);
    const parse = this.style ? (t: string) => this.style!.parse(t) : (t: string) => parseExplanation(t, this.prompts);
    return { text, explanation: stopped ? parse(text) : undefined, tokens, logprobs, stopped };
  }

  decode(ids: number[]): string {
    return this.decodeWithStarts(ids).text;
  }

  /** The text of generated ids and the character offset where each id's text starts. */
  decodeWithStarts(ids: number[]): { text: string; starts: number[] } {
    let prev = this.prompt.ids[this.prompt.ids.length - 1];
    let text = '';
    const starts: number[] = [];
    for (const id of ids) {
      starts.push(text.length);
      // A model's embedding is often wider than its tokenizer (Qwen2.5: 152064 rows, 151665
      // tokens); an id past the tokenizer reads as a visible marker instead of failing the batch.
      text += id < this.tok.vocabSize ? this.tok.decodeToken(prev, id) : `<id ${id}>`;
      prev = id;
    }
    return { text, starts };
  }

  /**
   * Teacher-forced log-probs of completions after the injected prompt: logp [B, T-P] with
   * gradient (logp[b, k] scores completion token k of row b; the head skips the prompt), and the
   * host mask of real completion tokens. B = activations (host [B*d]).
   */
  completionLogProbs(h: Float32Array, completions: number[][]): { logp: Tensor; mask: Tensor } {
    const P = this.prompt.ids.length;
    const batch = padRight(completions.map((c) => [...this.prompt.ids, ...c]), 0);
    const vectors = this.injection(h);
    const logp = sequenceLogProbs(this.model, batch.ids, batch.B, batch.T, { positions: new Array(batch.B).fill(this.prompt.position), vectors }, undefined, P - 1);
    const full = targetMask(batch, new Array(batch.B).fill(P)), Tm = batch.T - 1, n = batch.T - P;
    const mask = new Float32Array(batch.B * n);
    for (let b = 0; b < batch.B; b++) mask.set(full.subarray(b * Tm + P - 1, (b + 1) * Tm), b * n);
    return { logp, mask: T.Tensor.from(mask, [batch.B, n]) };
  }

  /**
   * SFT loss: mean negative log-likelihood of the explanation tokens only. With `weights` (one
   * per target id, as targetWeights gives), a weighted mean: sum(w * nll) / sum(w), so all-ones
   * weights give the plain mean exactly and the loss keeps its scale whatever W is.
   */
  sftLoss(h: Float32Array, explanations: string[], weights?: (readonly number[])[]): Tensor {
    const targets = explanations.map((e) => this.targetIds(e));
    if (!weights) {
      const { logp, mask } = this.completionLogProbs(h, targets);
      return weightedNll(logp, mask);
    }
    if (weights.length !== targets.length) throw new Error(`sftLoss: ${weights.length} weight rows for ${targets.length} explanations`);
    const { logp, mask } = this.completionLogProbs(h, targets);
    // logp[b, k] scores target token k of row b.
    const [B, Tm] = mask.shape;
    const wm = new Float32Array(B * Tm);
    targets.forEach((ids, b) => {
      if (weights[b].length !== ids.length) throw new Error(`sftLoss: row ${b} has ${weights[b].length} weights for ${ids.length} target tokens`);
      ids.forEach((_, k) => (wm[b * Tm + k] = weights[b][k]));
    });
    return weightedNll(logp, T.Tensor.from(wm, [B, Tm]));
  }

  /**
   * Per target id of an explanation: `w` on the tokens that state a known fact's value outside
   * quotations (fact-weights.ts), `quoteWeight` on the tokens of the opening quotation (the words
   * read), 1 elsewhere. Only for nla's own prompt layout.
   */
  targetWeights(explanation: string, known: Partial<Record<Field, string>>, w: number, quoteWeight = 1): number[] {
    if (this.style) throw new Error('fact and quote weights: only for nla\'s own AV prompt layout, not a reference AV\'s');
    const ids = this.targetIds(explanation);
    const text = explanation + this.prompts.explanationEnd;
    const spans: WeightSpan[] = w === 1 ? [] : factSpans(explanation, known);
    const q = quoteWeight === 1 ? undefined : quoteSpan(explanation);
    if (q) spans.push({ ...q, weight: quoteWeight });
    return factTokenWeights(this.tok, this.prompt.ids[this.prompt.ids.length - 1], ids, text, spans, w);
  }

  params(): Tensor[] {
    return this.model.w.params();
  }
}

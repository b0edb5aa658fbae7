// Batched generation with a KV cache (or, for checking, by re-running the full sequence), and
// teacher-forced per-token log-probs of a right-padded batch (what the RL trainer needs).
import * as T from '../tensor/index.js';
import type { Tensor } from '../tensor/tensor.js';
import { rng } from '../util/rng.js';
import { capLogits } from './llama.js';
import type { LanguageModel } from './model.js';
import { logProbOf, sampleToken, type SamplerOptions } from './sample.js';

export interface GenerateOptions extends SamplerOptions {
  maxNewTokens: number;
  seed?: number;
  /** One seed per row (overrides seed): row b samples from its own stream, so a row's text depends on its seed, not on its batch. */
  seeds?: number[];
  /** Generation of a row stops after it emits one of these (the stop token is kept). */
  stopTokens?: number[];
  /** Re-run the whole sequence each step instead of using the KV cache (slow; a cross-check). */
  noCache?: boolean;
  /** Inject vectors into the prompt's input embeddings (the AV). */
  inject?: { positions: number[]; vectors: Tensor };
  /** Called after each step with the step index (progress bars). */
  onStep?: (step: number) => void;
  /**
   * Draw tokens on the GPU (T.headSample: Gumbel-max over vocabulary chunks, 3 numbers per row
   * read back instead of [B, V] logits). Same distribution as the host sampler but another
   * random stream, so other tokens for a seed; greedy is the same argmax. No top-k / top-p.
   */
  fusedSample?: boolean;
}

export interface Generation {
  /** New tokens per row (up to and including a stop token). */
  tokens: number[][];
  /** log p(token) under the model's unmodified distribution (temperature 1, no truncation). */
  logprobs: number[][];
  /** Whether each row ended with a stop token (false: it hit maxNewTokens). */
  stopped: boolean[];
}

/** Logit bytes of one decode step that generationRows stays under. */
export const GENERATION_LOGIT_BYTES = 8 * 2 ** 20;

/**
 * Rows per generate() call when a caller does not say: as many as keep one step's logits
 * [rows, V] under GENERATION_LOGIT_BYTES, between 32 and 1,024. A decode step of a small model
 * costs about the same whatever its batch (stories260K's AV explaining 200 rows greedily: 11-13 s
 * in batches of 32, 3.8-4.2 s in one), so a small vocabulary takes big batches; a large one
 * (Qwen2.5's 151,936) stays at 32.
 */
export function generationRows(vocabSize: number): number {
  return Math.max(32, Math.min(1024, Math.floor(GENERATION_LOGIT_BYTES / (4 * vocabSize))));
}

/** Sample continuations of equal-length prompts. */
export async function generate(model: LanguageModel, prompts: number[][], opts: GenerateOptions): Promise<Generation> {
  const B = prompts.length;
  const T0 = prompts[0]?.length ?? 0;
  if (!B || !T0) throw new Error('generate: need at least one non-empty prompt');
  if (prompts.some((p) => p.length !== T0)) throw new Error(`generate: prompts must have equal lengths (got ${[...new Set(prompts.map((p) => p.length))].join(', ')}); batch prompts of one length`);
  const V = model.cfg.vocabSize;
  const maxLen = T0 + opts.maxNewTokens;
  if (maxLen > model.cfg.maxSeqLen) throw new Error(`generate: prompt ${T0} + ${opts.maxNewTokens} new tokens exceeds the model's context ${model.cfg.maxSeqLen}`);
  const rand = rng(opts.seed ?? 0);
  if (opts.seeds && opts.seeds.length !== B) throw new Error(`generate: ${opts.seeds.length} seeds for ${B} prompts`);
  const rands = opts.seeds?.map((s) => rng(s));
  const stops = new Set(opts.stopTokens ?? []);
  const out: Generation = { tokens: prompts.map(() => []), logprobs: prompts.map(() => []), stopped: prompts.map(() => false) };
  const seqs = prompts.map((p) => [...p]);
  const cache = opts.noCache ? undefined : model.newCache(B, maxLen);
  if (opts.fusedSample && ((opts.topK && opts.topK < V) || (opts.topP && opts.topP < 1))) throw new Error('generate: fusedSample draws from the whole distribution; it takes no topK / topP');
  // The head's input at the last position, and its weight: no [B, T, V] logits for a prompt.
  const headAtLast = (ids: number[][], inject?: GenerateOptions['inject']) => {
    const t = ids[0].length;
    const x = T.Tensor.from(Int32Array.from(ids.flat()), [B, t], 'i32');
    const { head } = model.forward(x, { cache, inject, headless: true });
    return { h: head!.input.slice(1, t - 1, t), w: head!.weight, cap: head!.softcap };
  };
  const lastHidden = (ids: number[][], inject?: GenerateOptions['inject']) =>
    T.noGrad(() =>
      T.tidy(() => {
        const { h, w } = headAtLast(ids, inject);
        return { h: h.contiguous().reshape([B, model.cfg.dim]), w };
      }),
    );
  const lastLogits = (ids: number[][], inject?: GenerateOptions['inject']) =>
    T.noGrad(() =>
      T.tidy(() => {
        const { h, w, cap } = headAtLast(ids, inject);
        return capLogits(T.linear(h, w), cap).contiguous();
      }),
    );
  try {
    // The fused sampler draws from softmax(h W^T) and has no soft-cap: a capped model (Gemma 2)
    // samples on the host from the capped logits instead (the same distribution, another stream).
    if (opts.fusedSample && finalSoftcap(model) === undefined) {
      await fusedLoop(opts, B, seqs, out, stops, (ids, inject) => lastHidden(ids, inject), () => rands?.map((r) => r()) ?? Array.from({ length: B }, () => rand()), cache !== undefined);
      return out;
    }
    let logits = lastLogits(seqs, opts.inject);
    for (let step = 0; step < opts.maxNewTokens; step++) {
      const host = (await logits.data()) as Float32Array;
      logits.dispose();
      const next: number[] = [];
      for (let b = 0; b < B; b++) {
        const row = host.subarray(b * V, (b + 1) * V);
        // Finished rows keep sampling a filler (their own stop token) that is discarded.
        const tok = out.stopped[b] ? seqs[b][seqs[b].length - 1] : sampleToken(row, opts, rands ? rands[b] : rand);
        if (!out.stopped[b]) {
          out.tokens[b].push(tok);
          out.logprobs[b].push(logProbOf(row, tok));
          if (stops.has(tok)) out.stopped[b] = true;
        }
        next.push(tok);
        seqs[b].push(tok);
      }
      opts.onStep?.(step);
      if (out.stopped.every(Boolean) || step === opts.maxNewTokens - 1) break;
      logits = cache ? lastLogits(next.map((t) => [t])) : lastLogits(seqs, opts.inject);
    }
  } finally {
    cache?.dispose();
  }
  return out;
}

/** generate()'s loop with tokens drawn on the GPU (opts.fusedSample). */
async function fusedLoop(
  opts: GenerateOptions, B: number, seqs: number[][], out: Generation, stops: Set<number>,
  hidden: (ids: number[][], inject?: GenerateOptions['inject']) => { h: Tensor; w: Tensor },
  uniforms: () => number[], cached: boolean,
): Promise<void> {
  const temperature = opts.temperature ?? 1;
  let { h, w } = hidden(seqs, opts.inject);
  for (let step = 0; step < opts.maxNewTokens; step++) {
    // One u32 seed per row per step from the row's own stream (as the host sampler takes one uniform).
    const seeds = Uint32Array.from(uniforms(), (u) => Math.floor(u * 2 ** 32) >>> 0);
    const got = await T.headSample(h, w, { temperature, seeds });
    h.dispose();
    const next: number[] = [];
    for (let b = 0; b < B; b++) {
      const tok = out.stopped[b] ? seqs[b][seqs[b].length - 1] : got.tokens[b];
      if (!out.stopped[b]) {
        out.tokens[b].push(tok);
        out.logprobs[b].push(got.logprobs[b]);
        if (stops.has(tok)) out.stopped[b] = true;
      }
      next.push(tok);
      seqs[b].push(tok);
    }
    opts.onStep?.(step);
    if (out.stopped.every(Boolean) || step === opts.maxNewTokens - 1) break;
    ({ h, w } = cached ? hidden(next.map((t) => [t])) : hidden(seqs, opts.inject));
  }
}

/**
 * Logits at or above this many bytes are never made by the training losses: the head runs a
 * vocabulary chunk at a time (T.headLogProbs). Below it the one-product path is faster.
 */
export const CHUNKED_HEAD_BYTES = 32 * 2 ** 20;

/** Whether a loss over `rows` positions of this model runs its head in vocabulary chunks. */
export const headInChunks = (model: LanguageModel, rows: number, force?: boolean): boolean => {
  // The chunked head (T.headLogProbs) has no soft-cap: a capped model always makes its logits.
  if (finalSoftcap(model) !== undefined) {
    if (force) throw new Error('chunkedHead: the chunked head does not apply final_logit_softcapping (Gemma 2); run without it');
    return false;
  }
  return force ?? rows * model.cfg.vocabSize * 4 >= CHUNKED_HEAD_BYTES;
};

/** The model's final logit soft-cap (Gemma 2), if any. */
function finalSoftcap(model: LanguageModel): number | undefined {
  return model.cfg.arch === 'llama' ? model.cfg.finalSoftcap : undefined;
}

/**
 * Teacher-forced log p(ids[b, t+1] | ids[b, ..t]) for a right-padded batch: [B, T-1-from], with
 * gradient, for t = from .. T-2. Positions the caller's mask leaves out still hold values. The
 * head runs only on the positions asked for: a caller that scores completions after a shared
 * prompt of P tokens passes from = P-1 and skips the head on the prompt (an AV's prompt is about
 * a third of its rows' tokens). Uses the fused log-softmax + gather: no [B, T, V] probabilities;
 * for a big vocabulary (or `chunkedHead`) not even the logits.
 */
export function sequenceLogProbs(model: LanguageModel, ids: Int32Array, B: number, Tn: number, inject?: GenerateOptions['inject'], chunkedHead?: boolean, from = 0): Tensor {
  if (!Number.isInteger(from) || from < 0 || from > Tn - 2) throw new Error(`sequenceLogProbs: from ${from} outside 0..${Tn - 2} for sequences of ${Tn} tokens`);
  const x = T.Tensor.from(ids, [B, Tn], 'i32');
  const n = Tn - 1 - from;
  const targets = new Int32Array(B * n);
  for (let b = 0; b < B; b++) for (let t = 0; t < n; t++) targets[b * n + t] = ids[b * Tn + from + t + 1];
  const tt = T.Tensor.from(targets, [B * n], 'i32');
  const { head } = model.forward(x, { inject, headless: true });
  const h = head!.input.slice(1, from, Tn - 1).contiguous().reshape([B * n, model.cfg.dim]);
  if (headInChunks(model, B * n, chunkedHead)) return T.headLogProbs(h, head!.weight, tt).reshape([B, n]);
  return T.tokenLogProbs(capLogits(T.linear(h, head!.weight), head!.softcap), tt).reshape([B, n]);
}

// Random initialisation for training from scratch (GPT-2 / nanoGPT recipe): every matrix and
// embedding ~ normal(0, 0.02), the projections that write into the residual stream (o_proj
// and down_proj; GPT-2's c_proj) scaled by 1/sqrt(2 * nLayers) so the residual's variance does
// not grow with depth, norm gains 1, biases 0. Host-side and seeded: the same seed gives the
// same weights on every machine.
import type { Gpt2Config, LlamaConfig } from '../io/config.js';
import type { HostTensor } from '../io/host-tensor.js';
import { initGpu } from '../tensor/device.js';
import { gaussian, SeededRng } from '../util/rng.js';
import { Gpt2 } from './gpt2.js';
import { Llama } from './llama.js';
import { Weights } from './weights.js';

export interface InitOptions {
  /** Standard deviation of the normal init (default 0.02). */
  std?: number;
}

/**
 * A LlamaConfig with the usual defaults filled in: hiddenDim by llama2.c's rule (2/3 of 4*dim,
 * rounded up to a multiple of 32), nKvHeads = nHeads, tied embeddings, rotate-half RoPE.
 */
export function llamaConfig(c: Partial<LlamaConfig> & Pick<LlamaConfig, 'dim' | 'nLayers' | 'nHeads' | 'vocabSize'>): LlamaConfig {
  const hidden = c.hiddenDim ?? 32 * Math.ceil(Math.floor((2 * 4 * c.dim) / 3) / 32);
  const cfg: LlamaConfig = {
    arch: 'llama',
    modelType: 'llama',
    hiddenDim: hidden,
    nKvHeads: c.nHeads,
    maxSeqLen: 256,
    normEps: 1e-5,
    tieEmbeddings: true,
    bosId: -1,
    eosId: -1,
    ropeTheta: 10000,
    ropeLayout: 'half',
    qkvBias: false,
    ...c,
  };
  checkDims(cfg);
  return cfg;
}

/** A Gpt2Config with defaults: hiddenDim 4*dim, tied head, eps 1e-5. */
export function gpt2Config(c: Partial<Gpt2Config> & Pick<Gpt2Config, 'dim' | 'nLayers' | 'nHeads' | 'vocabSize'>): Gpt2Config {
  const cfg: Gpt2Config = {
    arch: 'gpt2',
    hiddenDim: 4 * c.dim,
    nKvHeads: c.nHeads,
    maxSeqLen: 256,
    normEps: 1e-5,
    tieEmbeddings: true,
    bosId: -1,
    eosId: -1,
    ...c,
  };
  checkDims(cfg);
  return cfg;
}

function checkDims(c: LlamaConfig | Gpt2Config): void {
  for (const k of ['dim', 'hiddenDim', 'nLayers', 'nHeads', 'nKvHeads', 'vocabSize', 'maxSeqLen'] as const) {
    if (!Number.isSafeInteger(c[k]) || c[k] <= 0) throw new Error(`model config: ${k}=${c[k]} must be a positive integer`);
  }
  if (c.dim % c.nHeads !== 0) throw new Error(`model config: dim ${c.dim} is not divisible by nHeads ${c.nHeads}`);
  if (c.nHeads % c.nKvHeads !== 0) throw new Error(`model config: nKvHeads ${c.nKvHeads} does not divide nHeads ${c.nHeads}`);
  if (c.arch === 'llama' && (c.dim / c.nHeads) % 2 !== 0) throw new Error(`model config: head size ${c.dim / c.nHeads} must be even for RoPE`);
}

class Init {
  private readonly normal: () => number;
  constructor(seed: number, readonly std: number) {
    this.normal = gaussian(new SeededRng(seed).fn());
  }
  randn(shape: number[], std = this.std): HostTensor {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = this.normal() * std;
    return { dtype: 'f32', shape, data };
  }
  constant(shape: number[], v: number): HostTensor {
    return { dtype: 'f32', shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(v) };
  }
}

/** Host weights of a freshly initialised Llama, in Llama.expectedWeights order. */
export function initLlamaHost(cfg: LlamaConfig, seed: number, opts: InitOptions = {}): Map<string, HostTensor> {
  return new Map(initLlamaTensors(cfg, seed, opts));
}

/**
 * The same weights one tensor at a time (same values in the same order): a caller that uploads
 * each as it comes never holds the whole model on the host (at real size, gigabytes).
 */
export function* initLlamaTensors(cfg: LlamaConfig, seed: number, opts: InitOptions = {}): Generator<[string, HostTensor]> {
  checkDims(cfg);
  const init = new Init(seed, opts.std ?? 0.02);
  const resid = init.std / Math.sqrt(2 * cfg.nLayers);
  for (const [name, shape] of Llama.expectedWeights(cfg)) {
    if (name.endsWith('layernorm.weight') || name === 'model.norm.weight') yield [name, init.constant(shape, 1)];
    else if (name.endsWith('.bias')) yield [name, init.constant(shape, 0)];
    else if (name.endsWith('o_proj.weight') || name.endsWith('down_proj.weight')) yield [name, init.randn(shape, resid)];
    else yield [name, init.randn(shape)];
  }
}

/** Host weights of a freshly initialised GPT-2 (HF Conv1D layout), in Gpt2.expectedWeights order. */
export function initGpt2Host(cfg: Gpt2Config, seed: number, opts: InitOptions = {}): Map<string, HostTensor> {
  checkDims(cfg);
  const init = new Init(seed, opts.std ?? 0.02);
  const resid = init.std / Math.sqrt(2 * cfg.nLayers);
  const out = new Map<string, HostTensor>();
  for (const [name, shape] of Gpt2.expectedWeights(cfg)) {
    if (/ln_(1|2|f)\.weight$/.test(name)) out.set(name, init.constant(shape, 1));
    else if (name.endsWith('.bias')) out.set(name, init.constant(shape, 0));
    else if (name.endsWith('c_proj.weight')) out.set(name, init.randn(shape, resid));
    else out.set(name, init.randn(shape));
  }
  return out;
}

/** A randomly initialised Llama on the GPU (trainable parameters). */
export async function initLlama(cfg: LlamaConfig, seed: number, opts: InitOptions = {}): Promise<Llama> {
  await initGpu();
  return new Llama(cfg, Weights.fromHost(initLlamaHost(cfg, seed, opts)));
}

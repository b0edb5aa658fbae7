// Model hyper-parameters in one shape for every architecture we load, plus a reader and
// writer for Hugging Face config.json. The HF reader is deliberately strict about what
// changes the math (model_type, required sizes, and every setting that would make our outputs
// differ from the reference: implemented exactly, or refused naming the key) and lenient about
// the rest: unknown keys are reported as warnings so a newer transformers version does not
// stop us loading a model.
import * as fs from 'node:fs';
import { writeFileAtomic } from './atomic-write.js';
import { FormatError } from './errors.js';
import { parseJson } from './json.js';

interface BaseConfig {
  dim: number;
  /** FFN inner size (intermediate_size / n_inner). */
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  maxSeqLen: number;
  normEps: number;
  /** lm_head shares the token-embedding matrix. */
  tieEmbeddings: boolean;
  /** -1 when the model defines none. */
  bosId: number;
  /** -1 when the model defines none; the first one if config.json lists several. */
  eosId: number;
}

export interface LlamaConfig extends BaseConfig {
  arch: 'llama';
  /** Which HF family this came from (they share the Llama block, with small differences). */
  modelType?: 'llama' | 'mistral' | 'qwen2' | 'gemma';
  /**
   * Token embeddings are multiplied by this before the first block (Gemma: sqrt(hidden_size));
   * an injected vector replaces the row after the scale, as the reference NLA does. 1 if absent.
   */
  embedScale?: number;
  /** RMSNorm multiplies by (normOffset + weight): Gemma stores gains as offsets from 1. 0 if absent. */
  normOffset?: number;
  /** Gate activation of the gated MLP: silu (SwiGLU, default) or gelu_tanh (Gemma's GeGLU). */
  mlpAct?: 'silu' | 'gelu_tanh';
  ropeTheta: number;
  /**
   * Order of q/k rows: llama2.c/Meta rotate interleaved pairs (0,1),(2,3)…; HF checkpoints
   * are permuted for rotate-half. See rope-permute.ts.
   */
  ropeLayout: 'interleaved' | 'half';
  /** q/k/v projections carry a bias (Qwen2). */
  qkvBias: boolean;
  /**
   * Sliding-window attention size (Mistral; Qwen2 with use_sliding_window), when set. maxSeqLen
   * is capped to it at load: within the window, sliding-window attention is full causal attention.
   */
  slidingWindow?: number;
}

export interface Gpt2Config extends BaseConfig {
  arch: 'gpt2';
  /** The MLP's GELU: the tanh approximation (gelu_new, the default) or exact erf ("gelu"). */
  gelu?: 'tanh' | 'erf';
}

export type ModelConfig = LlamaConfig | Gpt2Config;

const LLAMA_TYPES = ['llama', 'mistral', 'qwen2', 'gemma'] as const;
// Families that share a name with supported ones but change the math in ways not implemented:
// refused by name with what is missing, rather than run wrongly.
const REFUSED_TYPES: Record<string, string> = {
  gemma2: 'Gemma 2 adds attention and final-logit soft-capping, pre/post-feedforward norms and alternating sliding windows',
  gemma3: 'Gemma 3 is a multimodal wrapper; its text model adds q/k norms, sandwich norms and local/global RoPE bases',
  gemma3_text: 'Gemma 3 adds q/k norms, pre/post-feedforward norms and local/global RoPE bases',
  qwen3: 'Qwen3 adds per-head q/k RMSNorm',
  llama4: 'Llama 4 is a mixture of experts with chunked attention',
};
const ARCHITECTURES: Record<string, string> = {
  llama: 'LlamaForCausalLM',
  mistral: 'MistralForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
  gemma: 'GemmaForCausalLM',
  gpt2: 'GPT2LMHeadModel',
};

// Keys we understand or know to be irrelevant for inference (no warning when present).
const COMMON_KNOWN = [
  'model_type', 'architectures', 'torch_dtype', 'dtype', 'transformers_version', 'bos_token_id', 'eos_token_id',
  'pad_token_id', 'initializer_range', 'use_cache', 'vocab_size', 'tie_word_embeddings', '_name_or_path',
  'output_attentions', 'output_hidden_states', 'return_dict', 'torchscript', 'id2label', 'label2id',
];
const LLAMA_KNOWN = [
  'hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads',
  'max_position_embeddings', 'rms_norm_eps', 'rope_theta', 'hidden_act', 'attention_dropout', 'attention_bias',
  'mlp_bias', 'pretraining_tp', 'rope_scaling', 'head_dim', 'sliding_window', 'use_sliding_window',
  'max_window_layers', 'layer_types', 'hidden_activation',
];
const GPT2_KNOWN = [
  'n_embd', 'n_layer', 'n_head', 'n_positions', 'n_ctx', 'n_inner', 'layer_norm_epsilon', 'activation_function',
  'resid_pdrop', 'embd_pdrop', 'attn_pdrop', 'summary_type', 'summary_use_proj', 'summary_activation',
  'summary_proj_to_labels', 'summary_first_dropout', 'task_specific_params', 'scale_attn_weights',
  'scale_attn_by_inverse_layer_idx', 'reorder_and_upcast_attn',
];

export interface HfConfigResult {
  config: ModelConfig;
  /** Unknown keys, defaulted values, and settings we parse but do not implement. */
  warnings: string[];
}

/** Read a Hugging Face config.json (model_type llama, mistral, qwen2 or gpt2). */
export function readHfConfig(file: string): HfConfigResult {
  return parseHfConfig(parseJson(fs.readFileSync(file, 'utf8'), file), file);
}

export function parseHfConfig(json: unknown, file: string): HfConfigResult {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new FormatError(file, 'json', 'config is not a JSON object');
  const j = json as Record<string, unknown>;
  const warnings: string[] = [];
  const mt = j.model_type;
  const isLlama = (LLAMA_TYPES as readonly unknown[]).includes(mt);
  if (typeof mt === 'string' && REFUSED_TYPES[mt]) {
    throw new FormatError(file, 'model_type', `model_type=${JSON.stringify(mt)} is not supported: ${REFUSED_TYPES[mt]}, which nla does not implement (supported: ${[...LLAMA_TYPES, 'gpt2'].join(', ')})`);
  }
  if (!isLlama && mt !== 'gpt2') {
    throw new FormatError(file, 'model_type', `model_type=${JSON.stringify(mt)} is not supported (supported: ${[...LLAMA_TYPES, 'gpt2'].join(', ')})`);
  }
  const known = new Set([...COMMON_KNOWN, ...(isLlama ? LLAMA_KNOWN : GPT2_KNOWN)]);
  for (const k of Object.keys(j)) if (!known.has(k)) warnings.push(`${file}: unknown field "${k}" ignored`);

  const int = (key: string, fallback?: number): number => {
    const v = j[key];
    if (v === undefined || v === null) {
      if (fallback === undefined) throw new FormatError(file, key, `required field "${key}" is missing`);
      warnings.push(`${file}: "${key}" missing, using ${fallback}`);
      return fallback;
    }
    if (!Number.isSafeInteger(v) || (v as number) <= 0) throw new FormatError(file, key, `"${key}"=${JSON.stringify(v)} is not a positive integer`);
    return v as number;
  };
  const num = (key: string, fallback: number): number => {
    const v = j[key];
    if (v === undefined || v === null) {
      warnings.push(`${file}: "${key}" missing, using ${fallback}`);
      return fallback;
    }
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new FormatError(file, key, `"${key}"=${JSON.stringify(v)} is not a positive number`);
    return v;
  };
  const bool = (key: string, fallback: boolean): boolean => {
    const v = j[key];
    if (v === undefined) return fallback;
    if (typeof v !== 'boolean') throw new FormatError(file, key, `"${key}"=${JSON.stringify(v)} is not a boolean`);
    return v;
  };
  const tokenId = (key: string): number => {
    let v = j[key];
    if (Array.isArray(v)) v = v[0]; // Llama-3.1 lists several eos ids; the first is the canonical one
    if (v === undefined || v === null) return -1;
    if (!Number.isSafeInteger(v) || (v as number) < 0) throw new FormatError(file, key, `"${key}"=${JSON.stringify(v)} is not a token id`);
    return v as number;
  };

  if (mt === 'gpt2') {
    const dim = int('n_embd');
    const nHeads = int('n_head');
    const act = j.activation_function ?? 'gelu_new';
    const gelu = GELU_TANH.includes(act as string) ? 'tanh' : act === 'gelu' ? 'erf' : undefined;
    if (!gelu) refuse(file, 'activation_function', act, `only ${[...GELU_TANH, 'gelu'].join(', ')} are implemented`);
    if (j.scale_attn_weights === false) refuse(file, 'scale_attn_weights', false, 'unscaled attention scores are not implemented');
    if (j.scale_attn_by_inverse_layer_idx === true) refuse(file, 'scale_attn_by_inverse_layer_idx', true, 'per-layer score scaling is not implemented');
    const config: Gpt2Config = {
      arch: 'gpt2',
      dim,
      hiddenDim: j.n_inner === undefined || j.n_inner === null ? 4 * dim : int('n_inner'),
      nLayers: int('n_layer'),
      nHeads,
      nKvHeads: nHeads,
      vocabSize: int('vocab_size'),
      maxSeqLen: int('n_positions'),
      normEps: num('layer_norm_epsilon', 1e-5),
      tieEmbeddings: bool('tie_word_embeddings', true),
      bosId: tokenId('bos_token_id'),
      eosId: tokenId('eos_token_id'),
      ...(gelu === 'erf' ? { gelu } : {}),
    };
    checkHeads(config, file, 'n_embd');
    return { config, warnings };
  }

  const modelType = mt as LlamaConfig['modelType'] & string;
  const nHeads = int('num_attention_heads');
  const config: LlamaConfig = {
    arch: 'llama',
    modelType,
    dim: int('hidden_size'),
    hiddenDim: int('intermediate_size'),
    nLayers: int('num_hidden_layers'),
    nHeads,
    nKvHeads: j.num_key_value_heads === undefined ? nHeads : int('num_key_value_heads'),
    vocabSize: int('vocab_size'),
    maxSeqLen: int('max_position_embeddings', 2048),
    normEps: num('rms_norm_eps', 1e-6),
    ropeTheta: num('rope_theta', 10000),
    ropeLayout: 'half', // HF checkpoints are always stored permuted for rotate-half
    tieEmbeddings: bool('tie_word_embeddings', modelType === 'gemma'), // GemmaConfig ties by default
    qkvBias: modelType === 'qwen2',
    bosId: tokenId('bos_token_id'),
    eosId: tokenId('eos_token_id'),
  };
  checkHeads(config, file, 'hidden_size');
  if (j.head_dim !== undefined && j.head_dim !== null && j.head_dim !== config.dim / nHeads) {
    throw new FormatError(file, 'head_dim', `head_dim=${JSON.stringify(j.head_dim)} differs from hidden_size/num_attention_heads=${config.dim / nHeads}, which is not supported`);
  }
  const scaling = j.rope_scaling as Record<string, unknown> | null | undefined;
  const scalingType = scaling && typeof scaling === 'object' ? scaling.rope_type ?? scaling.type : scaling;
  if (scaling !== undefined && scaling !== null && scalingType !== 'default') {
    refuse(file, 'rope_scaling', scaling, 'scaled RoPE is not implemented (positions would be rotated differently from the reference)');
  }
  if (modelType === 'gemma') {
    // Gemma: x * sqrt(d) after the embedding, RMSNorm gains stored as (w - 1), GeGLU MLP with the
    // tanh approximation (transformers forces gelu_pytorch_tanh for Gemma whatever hidden_act says).
    config.embedScale = Math.sqrt(config.dim);
    config.normOffset = 1;
    config.mlpAct = 'gelu_tanh';
    const act = j.hidden_activation ?? j.hidden_act;
    if (act !== undefined && act !== null && act !== 'gelu_pytorch_tanh' && act !== 'gelu') warnings.push(`${file}: hidden_activation=${JSON.stringify(act)} (Gemma runs gelu_pytorch_tanh here, as transformers does)`);
  } else if (!['silu', 'swish', undefined].includes(j.hidden_act as string)) refuse(file, 'hidden_act', j.hidden_act, 'only silu is implemented');
  // Only LlamaConfig has these (transformers ignores them for mistral and qwen2); attention_bias
  // there also biases o_proj.
  if (modelType === 'llama' && bool('attention_bias', false)) refuse(file, 'attention_bias', true, 'the o_proj bias it adds is not implemented');
  if (modelType === 'llama' && bool('mlp_bias', false)) refuse(file, 'mlp_bias', true, 'MLP biases are not implemented');
  const window = slidingWindow(j, modelType, file, warnings);
  if (window !== undefined) {
    config.slidingWindow = window;
    if (window < config.maxSeqLen) {
      warnings.push(`${file}: sliding_window=${window} < max_position_embeddings=${config.maxSeqLen}: context capped at ${window} tokens`);
      config.maxSeqLen = window;
    }
  }
  return { config, warnings };
}

// Every spelling transformers maps to the tanh-approximated GELU (same formula).
const GELU_TANH = ['gelu_new', 'gelu_pytorch_tanh', 'gelu_fast'];

function refuse(file: string, key: string, value: unknown, why: string): never {
  throw new FormatError(file, key, `${key}=${JSON.stringify(value)} is not supported: ${why}; loading would give outputs that differ from the reference`);
}

/** The attention window in force (Mistral: sliding_window unless null; Qwen2: only with use_sliding_window), or undefined. */
function slidingWindow(j: Record<string, unknown>, modelType: string, file: string, warnings: string[]): number | undefined {
  const on = modelType === 'mistral' || (modelType === 'qwen2' && j.use_sliding_window === true);
  if (!on) return undefined;
  const w = j.sliding_window;
  if (w === undefined && modelType === 'mistral') {
    warnings.push(`${file}: "sliding_window" missing, using 4096`); // MistralConfig's default
    return 4096;
  }
  if (w === null || w === undefined) return undefined;
  if (!Number.isSafeInteger(w) || (w as number) <= 0) throw new FormatError(file, 'sliding_window', `"sliding_window"=${JSON.stringify(w)} is not a positive integer`);
  return w as number;
}

function checkHeads(c: ModelConfig, file: string, dimField: string): void {
  if (c.dim % c.nHeads !== 0) throw new FormatError(file, dimField, `${dimField}=${c.dim} is not divisible by the number of heads ${c.nHeads}`);
  if (c.nHeads % c.nKvHeads !== 0) throw new FormatError(file, 'num_key_value_heads', `num_key_value_heads=${c.nKvHeads} does not divide num_attention_heads=${c.nHeads}`);
}

/** Serialize to a config.json that transformers can load. */
export function hfConfigJson(cfg: ModelConfig, torchDtype: 'float32' | 'float16' | 'bfloat16' = 'float32'): Record<string, unknown> {
  const ids = { ...(cfg.bosId >= 0 ? { bos_token_id: cfg.bosId } : {}), ...(cfg.eosId >= 0 ? { eos_token_id: cfg.eosId } : {}) };
  if (cfg.arch === 'gpt2') {
    return {
      model_type: 'gpt2', architectures: [ARCHITECTURES.gpt2], torch_dtype: torchDtype,
      n_embd: cfg.dim, n_inner: cfg.hiddenDim, n_layer: cfg.nLayers, n_head: cfg.nHeads, vocab_size: cfg.vocabSize,
      n_positions: cfg.maxSeqLen, n_ctx: cfg.maxSeqLen, layer_norm_epsilon: cfg.normEps,
      activation_function: cfg.gelu === 'erf' ? 'gelu' : 'gelu_new', tie_word_embeddings: cfg.tieEmbeddings, ...ids,
    };
  }
  // A config.json cannot say "interleaved": HF code always uses rotate-half, so writing one
  // for interleaved weights would silently produce a broken model. Permute first.
  if (cfg.ropeLayout !== 'half') {
    throw new Error('writeHfConfig: ropeLayout is "interleaved"; permute q/k weights with interleavedToHalf (rope-permute.ts) and set ropeLayout "half" first');
  }
  const mt = cfg.modelType ?? 'llama';
  if (cfg.qkvBias && mt !== 'qwen2') throw new Error(`writeHfConfig: q/k/v biases without an o_proj bias exist in transformers only as qwen2, not ${mt}`);
  return {
    model_type: mt, architectures: [ARCHITECTURES[mt]], torch_dtype: torchDtype,
    hidden_size: cfg.dim, intermediate_size: cfg.hiddenDim, num_hidden_layers: cfg.nLayers,
    num_attention_heads: cfg.nHeads, num_key_value_heads: cfg.nKvHeads, vocab_size: cfg.vocabSize,
    max_position_embeddings: cfg.maxSeqLen, rms_norm_eps: cfg.normEps, rope_theta: cfg.ropeTheta,
    ...(mt === 'gemma' ? { hidden_activation: 'gelu_pytorch_tanh', head_dim: cfg.dim / cfg.nHeads } : { hidden_act: 'silu' }),
    tie_word_embeddings: cfg.tieEmbeddings,
    ...(mt === 'llama' ? { attention_bias: false } : {}),
    // Mistral defaults to a 4096 window when the key is absent, so say null explicitly.
    ...(cfg.slidingWindow !== undefined
      ? { sliding_window: cfg.slidingWindow, ...(mt === 'qwen2' ? { use_sliding_window: true } : {}) }
      : mt === 'mistral' ? { sliding_window: null } : {}),
    ...ids,
  };
}

export function writeHfConfig(file: string, cfg: ModelConfig, torchDtype: 'float32' | 'float16' | 'bfloat16' = 'float32'): void {
  writeFileAtomic(file, [new TextEncoder().encode(JSON.stringify(hfConfigJson(cfg, torchDtype), null, 2) + '\n')]);
}

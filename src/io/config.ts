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
  modelType?: 'llama' | 'mistral' | 'qwen2' | 'gemma' | 'gemma2' | 'gemma3_text';
  /**
   * Checkpoint tensor names of a multimodal wrapper whose text model this is: 'gemma3'
   * (Gemma3ForConditionalGeneration: language_model.model.* or model.language_model.*, vision
   * tower and projector tensors skipped by name). Absent for a plain causal LM.
   */
  wrapper?: 'gemma3';
  /** Size of one attention head (Gemma 3: head_dim from config.json, not hidden/heads). dim / nHeads if absent. */
  headDim?: number;
  /** RMSNorm of each q and k head (over headDim, with normOffset) before RoPE (Gemma 3). */
  qkNorm?: boolean;
  /**
   * Gemma 2/3 "sandwich" norms: the attention output is normed (post_attention_layernorm) before
   * the residual add, and the MLP runs between pre_feedforward_layernorm and
   * post_feedforward_layernorm. Absent: Llama's pre-norm block (post_attention_layernorm is the MLP's input norm).
   */
  sandwichNorm?: boolean;
  /** Multiplier of q.k (Gemma 2/3: query_pre_attn_scalar ** -0.5). 1/sqrt(headDim) if absent. */
  attnScale?: number;
  /** Attention scores soft-capped: s -> c tanh(s / c) after the scale (Gemma 2's attn_logit_softcapping). */
  attnSoftcap?: number;
  /** Logits soft-capped: z -> c tanh(z / c) (Gemma 2's final_logit_softcapping). */
  finalSoftcap?: number;
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
  /** Linear RoPE scaling (rope_scaling type "linear"): positions are divided by this on full-attention layers. 1 if absent. */
  ropeFactor?: number;
  /** RoPE base of the sliding-window layers when it differs (Gemma 3: rope_local_base_freq, unscaled). */
  ropeLocalTheta?: number;
  /**
   * Order of q/k rows: llama2.c/Meta rotate interleaved pairs (0,1),(2,3)…; HF checkpoints
   * are permuted for rotate-half. See rope-permute.ts.
   */
  ropeLayout: 'interleaved' | 'half';
  /** q/k/v projections carry a bias (Qwen2). */
  qkvBias: boolean;
  /**
   * Sliding-window attention size (Mistral; Qwen2 with use_sliding_window; Gemma 3's local
   * layers): the query at position P sees keys P - window < j <= P.
   */
  slidingWindow?: number;
  /** Which layers use the window (true = sliding); absent with slidingWindow set: every layer. */
  slidingLayers?: boolean[];
}

export interface Gpt2Config extends BaseConfig {
  arch: 'gpt2';
  /** The MLP's GELU: the tanh approximation (gelu_new, the default) or exact erf ("gelu"). */
  gelu?: 'tanh' | 'erf';
}

export type ModelConfig = LlamaConfig | Gpt2Config;

const LLAMA_TYPES = ['llama', 'mistral', 'qwen2', 'gemma', 'gemma2', 'gemma3_text'] as const;
// Families that share a name with supported ones but change the math in ways not implemented:
// refused by name with what is missing, rather than run wrongly.
const REFUSED_TYPES: Record<string, string> = {
  qwen3: 'Qwen3 adds per-head q/k RMSNorm',
  llama4: 'Llama 4 is a mixture of experts with chunked attention',
};
const ARCHITECTURES: Record<string, string> = {
  llama: 'LlamaForCausalLM',
  mistral: 'MistralForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
  gemma: 'GemmaForCausalLM',
  gemma2: 'Gemma2ForCausalLM',
  gemma3_text: 'Gemma3ForCausalLM',
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
  'max_window_layers', 'layer_types', 'hidden_activation', 'rope_parameters',
];
// Gemma2Config's own keys (checked where they change the math).
const GEMMA2_KNOWN = ['query_pre_attn_scalar', 'attn_logit_softcapping', 'final_logit_softcapping', 'cache_implementation', 'use_bidirectional_attention', 'sliding_window_size'];
// Gemma3TextConfig's own keys (softcappings and bidirectional attention are checked, not ignored).
const GEMMA3_KNOWN = [
  'query_pre_attn_scalar', 'sliding_window_pattern', '_sliding_window_pattern', 'rope_local_base_freq', 'attn_logit_softcapping',
  'final_logit_softcapping', 'cache_implementation', 'use_bidirectional_attention',
];
// Gemma3Config (the multimodal wrapper) around text_config.
const GEMMA3_WRAPPER_KNOWN = [
  'text_config', 'vision_config', 'mm_tokens_per_image', 'boi_token_index', 'eoi_token_index', 'image_token_index',
  'boi_token_id', 'eoi_token_id', 'image_token_id',
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
  if ((json as Record<string, unknown>).model_type === 'gemma3') return parseGemma3Wrapper(json as Record<string, unknown>, file);
  return parseFlat(json as Record<string, unknown>, file);
}

/**
 * Gemma3Config: the text model's settings are under text_config (its model_type may be absent);
 * dtype, token ids and tying may sit at the top level. Only the text model is run; the loader
 * skips the vision tower and projector tensors by name (see gemma3WrapperName in nn/buffers.ts).
 */
function parseGemma3Wrapper(top: Record<string, unknown>, file: string): HfConfigResult {
  const text = top.text_config;
  if (typeof text !== 'object' || text === null || Array.isArray(text)) throw new FormatError(file, 'text_config', 'model_type "gemma3" needs a "text_config" object (the text model\'s settings)');
  const t = text as Record<string, unknown>;
  if (t.model_type !== undefined && t.model_type !== 'gemma3_text') throw new FormatError(file, 'text_config.model_type', `text_config.model_type=${JSON.stringify(t.model_type)}: expected "gemma3_text"`);
  const warnings: string[] = [];
  const known = new Set([...COMMON_KNOWN, ...GEMMA3_WRAPPER_KNOWN]);
  for (const k of Object.keys(top)) if (!known.has(k)) warnings.push(`${file}: unknown field "${k}" ignored`);
  // Top-level values apply when text_config does not set them (transformers reads them there).
  const merged: Record<string, unknown> = { ...t, model_type: 'gemma3_text' };
  for (const k of ['torch_dtype', 'dtype', 'bos_token_id', 'eos_token_id', 'pad_token_id', 'tie_word_embeddings']) if (merged[k] === undefined && top[k] !== undefined) merged[k] = top[k];
  const r = parseFlat(merged, `${file} (text_config)`);
  if (r.config.arch !== 'llama') throw new Error('unreachable');
  r.config.wrapper = 'gemma3';
  return { config: r.config, warnings: [...warnings, ...r.warnings] };
}

function parseFlat(j: Record<string, unknown>, file: string): HfConfigResult {
  const warnings: string[] = [];
  const mt = j.model_type;
  const isLlama = (LLAMA_TYPES as readonly unknown[]).includes(mt);
  if (typeof mt === 'string' && REFUSED_TYPES[mt]) {
    throw new FormatError(file, 'model_type', `model_type=${JSON.stringify(mt)} is not supported: ${REFUSED_TYPES[mt]}, which nla does not implement (supported: ${[...LLAMA_TYPES, 'gpt2'].join(', ')})`);
  }
  if (!isLlama && mt !== 'gpt2') {
    throw new FormatError(file, 'model_type', `model_type=${JSON.stringify(mt)} is not supported (supported: ${[...LLAMA_TYPES, 'gpt2'].join(', ')})`);
  }
  const known = new Set([...COMMON_KNOWN, ...(isLlama ? LLAMA_KNOWN : GPT2_KNOWN), ...(mt === 'gemma3_text' ? GEMMA3_KNOWN : mt === 'gemma2' ? GEMMA2_KNOWN : [])]);
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
  const gemma3 = modelType === 'gemma3_text';
  const gemma2 = modelType === 'gemma2';
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
    // Defaults are the config classes' (Gemma3TextConfig: 131072 positions, rope_theta 1e6).
    maxSeqLen: int('max_position_embeddings', gemma3 ? 131072 : gemma2 ? 8192 : 2048),
    normEps: num('rms_norm_eps', 1e-6),
    ropeTheta: num('rope_theta', gemma3 ? 1e6 : 10000),
    ropeLayout: 'half', // HF checkpoints are always stored permuted for rotate-half
    tieEmbeddings: bool('tie_word_embeddings', modelType === 'gemma' || gemma2 || gemma3), // Gemma configs tie by default
    qkvBias: modelType === 'qwen2',
    bosId: tokenId('bos_token_id'),
    eosId: tokenId('eos_token_id'),
  };
  // Gemma 3's heads need not divide hidden_size (head_dim is its own setting).
  if (!gemma3) checkHeads(config, file, 'hidden_size');
  else if (nHeads % config.nKvHeads !== 0) throw new FormatError(file, 'num_key_value_heads', `num_key_value_heads=${config.nKvHeads} does not divide num_attention_heads=${nHeads}`);
  const headDim = j.head_dim === undefined || j.head_dim === null ? (gemma2 || gemma3 ? int('head_dim', 256) : config.dim / nHeads) : int('head_dim');
  if (headDim !== config.dim / nHeads) {
    // Only Gemma 2/3 are implemented with a free head size (their q/o projections are H * head_dim wide).
    if (!gemma2 && !gemma3) throw new FormatError(file, 'head_dim', `head_dim=${JSON.stringify(j.head_dim)} differs from hidden_size/num_attention_heads=${config.dim / nHeads}, which is not supported for model_type ${JSON.stringify(modelType)}`);
    config.headDim = headDim;
  }
  if (headDim % 2 !== 0) throw new FormatError(file, 'head_dim', `head size ${headDim} must be even for RoPE`);
  // RoPE: theta and linear scaling from rope_scaling (transformers <= 4.5x) or rope_parameters (newer).
  const rope = ropeSettings(j, file, gemma3);
  if (rope.full.theta !== undefined) config.ropeTheta = rope.full.theta;
  if (rope.full.factor !== 1) config.ropeFactor = rope.full.factor;
  if (modelType === 'gemma' || gemma2 || gemma3) {
    // Gemma: x * sqrt(d) after the embedding, RMSNorm gains stored as (w - 1), GeGLU MLP with the
    // tanh approximation. The scale is a tensor in the embedding's dtype in transformers
    // (GemmaModel's normalizer, Gemma3TextScaledWordEmbedding's embed_scale.to(weight.dtype)), so
    // it is rounded to the checkpoint's dtype: sqrt(3840) is 62.0 in a bf16 Gemma 3 12B.
    config.embedScale = roundToDtype(Math.sqrt(config.dim), j.torch_dtype ?? j.dtype);
    config.normOffset = 1;
    config.mlpAct = 'gelu_tanh';
    const act = j.hidden_activation ?? j.hidden_act;
    if (gemma2 || gemma3) {
      // Gemma 2/3 use ACT2FN[hidden_activation] as given (Gemma 1 forces the tanh GELU).
      if (act !== undefined && act !== null && !GELU_TANH.includes(act as string)) refuse(file, 'hidden_activation', act, `only the tanh GELU (${GELU_TANH.join(', ')}) is implemented for Gemma 2/3`);
    } else if (act !== undefined && act !== null && act !== 'gelu_pytorch_tanh' && act !== 'gelu') warnings.push(`${file}: hidden_activation=${JSON.stringify(act)} (Gemma runs gelu_pytorch_tanh here, as transformers does)`);
  } else if (!['silu', 'swish', undefined].includes(j.hidden_act as string)) refuse(file, 'hidden_act', j.hidden_act, 'only silu is implemented');
  // Only LlamaConfig and Gemma3TextConfig have these (transformers ignores them for mistral and
  // qwen2); attention_bias there also biases o_proj.
  if ((modelType === 'llama' || gemma2 || gemma3) && bool('attention_bias', false)) refuse(file, 'attention_bias', true, 'the o_proj bias it adds is not implemented');
  if (modelType === 'llama' && bool('mlp_bias', false)) refuse(file, 'mlp_bias', true, 'MLP biases are not implemented');
  if (gemma2 || gemma3) {
    config.sandwichNorm = true;
    config.attnScale = 1 / Math.sqrt(num('query_pre_attn_scalar', 256));
    if (j.use_bidirectional_attention === true) refuse(file, 'use_bidirectional_attention', true, 'bidirectional attention is not implemented');
  }
  if (gemma2) {
    // Gemma2Config defaults both caps on (50 and 30); null turns them off.
    const cap = (key: string, dflt: number): number | undefined => (j[key] === null ? undefined : num(key, dflt));
    const a = cap('attn_logit_softcapping', 50), f = cap('final_logit_softcapping', 30);
    if (a !== undefined) config.attnSoftcap = a;
    if (f !== undefined) config.finalSoftcap = f;
  }
  if (gemma3) {
    config.qkNorm = true;
    // Gemma 3 dropped soft-capping; a checkpoint that sets it is not one transformers runs as written.
    for (const key of ['attn_logit_softcapping', 'final_logit_softcapping']) {
      if (j[key] !== undefined && j[key] !== null) refuse(file, key, j[key], 'soft-capping is not applied by Gemma 3 (its checkpoints set it null)');
    }
    if (rope.local.factor !== 1) refuse(file, 'rope_parameters', j.rope_parameters, 'scaled RoPE on the sliding-window layers is not implemented');
    config.ropeLocalTheta = rope.local.theta ?? num('rope_local_base_freq', 10000);
  }
  const window = slidingWindow(j, modelType, file, warnings);
  if (window !== undefined) {
    config.slidingWindow = window;
    const types = layerTypes(j, modelType, config.nLayers, file);
    if (!types.some((t) => t)) delete config.slidingWindow; // no layer slides
    else if (types.some((t) => !t)) config.slidingLayers = types;
  }
  return { config, warnings };
}

/** x rounded to a torch dtype ("bfloat16", "float16"; anything else float32), as torch.tensor(x, dtype) does. */
export function roundToDtype(x: number, dtype: unknown): number {
  if (dtype === 'float16') return f16Round(x);
  const f = Math.fround(x);
  if (dtype !== 'bfloat16') return f;
  // bf16: the top 16 bits of the f32, rounded to nearest even.
  const u = new Uint32Array(new Float32Array([f]).buffer);
  u[0] = (u[0] + 0x7fff + ((u[0] >> 16) & 1)) & 0xffff0000;
  return new Float32Array(u.buffer)[0];
}

function f16Round(x: number): number {
  // Round to 11 significant bits (normal f16 range: the scales here are small positive numbers).
  const e = Math.floor(Math.log2(Math.abs(x)));
  const q = 2 ** (e - 10);
  return Math.round(x / q) * q;
}

interface RopeSpec { theta?: number; factor: number }

/**
 * RoPE theta and linear factor for full-attention layers (and, for Gemma 3, the sliding ones).
 * Accepted: no scaling, rope_type "default", and "linear" (positions / factor, as transformers'
 * linear scaling divides inv_freq). Other types are refused naming the key.
 */
function ropeSettings(j: Record<string, unknown>, file: string, gemma3: boolean): { full: RopeSpec; local: RopeSpec } {
  const spec = (key: string, v: unknown): RopeSpec => {
    if (v === undefined || v === null) return { factor: 1 };
    if (typeof v !== 'object' || Array.isArray(v)) throw new FormatError(file, key, `"${key}"=${JSON.stringify(v)} is not an object`);
    const o = v as Record<string, unknown>;
    const type = o.rope_type ?? o.type ?? 'default';
    const theta = o.rope_theta === undefined ? undefined : o.rope_theta;
    if (theta !== undefined && (typeof theta !== 'number' || !(theta > 0))) throw new FormatError(file, key, `${key}.rope_theta=${JSON.stringify(theta)} is not a positive number`);
    if (type === 'default') return { theta: theta as number | undefined, factor: 1 };
    if (type === 'linear') {
      if (typeof o.factor !== 'number' || !(o.factor > 0)) throw new FormatError(file, key, `${key}.factor=${JSON.stringify(o.factor)} is not a positive number`);
      return { theta: theta as number | undefined, factor: o.factor };
    }
    return refuse(file, key, v, `RoPE scaling type ${JSON.stringify(type)} is not implemented (only "linear"; positions would be rotated differently from the reference)`);
  };
  const params = j.rope_parameters as Record<string, unknown> | undefined | null;
  if (params && typeof params === 'object' && ('full_attention' in params || 'sliding_attention' in params)) {
    // Per layer type (Gemma 3 in newer transformers).
    return { full: spec('rope_parameters', params.full_attention), local: gemma3 ? spec('rope_parameters', params.sliding_attention) : { factor: 1 } };
  }
  const full = params !== undefined && params !== null ? spec('rope_parameters', params) : spec('rope_scaling', j.rope_scaling);
  return { full, local: { factor: 1 } };
}

/**
 * Which layers slide: layer_types when given; else Gemma 3 every layer but each
 * sliding_window_pattern-th, Qwen2 layers from max_window_layers on, Mistral all.
 */
function layerTypes(j: Record<string, unknown>, modelType: string, n: number, file: string): boolean[] {
  const lt = j.layer_types;
  if (lt !== undefined && lt !== null) {
    if (!Array.isArray(lt) || lt.length !== n || lt.some((t) => t !== 'sliding_attention' && t !== 'full_attention')) {
      throw new FormatError(file, 'layer_types', `"layer_types"=${JSON.stringify(lt)} must list ${n} values "sliding_attention" or "full_attention"`);
    }
    return lt.map((t) => t === 'sliding_attention');
  }
  if (modelType === 'gemma3_text') {
    const p = j.sliding_window_pattern ?? j._sliding_window_pattern ?? 6;
    if (!Number.isSafeInteger(p) || (p as number) <= 0) throw new FormatError(file, 'sliding_window_pattern', `"sliding_window_pattern"=${JSON.stringify(p)} is not a positive integer`);
    return Array.from({ length: n }, (_, i) => (i + 1) % (p as number) !== 0);
  }
  if (modelType === 'gemma2') return Array.from({ length: n }, (_, i) => (i + 1) % 2 !== 0); // Gemma2Config: even layers slide
  if (modelType === 'qwen2') {
    const m = j.max_window_layers ?? 28; // Qwen2Config's default
    if (!Number.isSafeInteger(m) || (m as number) < 0) throw new FormatError(file, 'max_window_layers', `"max_window_layers"=${JSON.stringify(m)} is not a non-negative integer`);
    return Array.from({ length: n }, (_, i) => i >= (m as number));
  }
  return Array.from({ length: n }, () => true);
}

// Every spelling transformers maps to the tanh-approximated GELU (same formula).
const GELU_TANH = ['gelu_new', 'gelu_pytorch_tanh', 'gelu_fast'];

function refuse(file: string, key: string, value: unknown, why: string): never {
  throw new FormatError(file, key, `${key}=${JSON.stringify(value)} is not supported: ${why}; loading would give outputs that differ from the reference`);
}

/** The attention window in force (Mistral: sliding_window unless null; Qwen2: only with use_sliding_window), or undefined. */
function slidingWindow(j: Record<string, unknown>, modelType: string, file: string, warnings: string[]): number | undefined {
  const on = modelType === 'mistral' || modelType === 'gemma2' || modelType === 'gemma3_text' || (modelType === 'qwen2' && j.use_sliding_window === true);
  if (!on) return undefined;
  const w = j.sliding_window;
  if (w === undefined && (modelType === 'mistral' || modelType === 'gemma2' || modelType === 'gemma3_text')) {
    warnings.push(`${file}: "sliding_window" missing, using 4096`); // MistralConfig's, Gemma2Config's and Gemma3TextConfig's default
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
  const gemma3 = mt === 'gemma3_text', gemma2 = mt === 'gemma2';
  if (!gemma3 && (cfg.qkNorm || cfg.ropeLocalTheta !== undefined)) throw new Error(`writeHfConfig: q/k norms and a local RoPE base exist in transformers here only as gemma3_text, not ${mt}`);
  if (!gemma2 && !gemma3 && (cfg.sandwichNorm || cfg.attnScale !== undefined || cfg.headDim !== undefined)) {
    throw new Error(`writeHfConfig: sandwich norms, a free head size or attention scale exist in transformers here only as gemma2/gemma3_text, not ${mt}`);
  }
  if (!gemma2 && (cfg.attnSoftcap !== undefined || cfg.finalSoftcap !== undefined)) throw new Error(`writeHfConfig: soft-capping exists in transformers here only as gemma2, not ${mt}`);
  const layers = cfg.slidingLayers;
  const leadingFull = layers ? layers.findIndex((t) => t) : 0;
  // Gemma's embedding scale is sqrt(hidden) in the checkpoint's dtype (see parseHfConfig): a
  // model read from a bf16 checkpoint says bfloat16 again, or a reload would change the scale.
  let dtype: string = torchDtype;
  if ((mt === 'gemma' || gemma2 || gemma3) && cfg.embedScale !== undefined && roundToDtype(Math.sqrt(cfg.dim), dtype) !== cfg.embedScale) {
    const match = (['bfloat16', 'float16', 'float32'] as const).find((d) => roundToDtype(Math.sqrt(cfg.dim), d) === cfg.embedScale);
    if (!match) throw new Error(`writeHfConfig: embedScale ${cfg.embedScale} is not sqrt(${cfg.dim}) in any dtype; ${mt} config.json cannot express it`);
    dtype = match;
  }
  return {
    model_type: mt, architectures: [ARCHITECTURES[mt]], torch_dtype: dtype,
    hidden_size: cfg.dim, intermediate_size: cfg.hiddenDim, num_hidden_layers: cfg.nLayers,
    num_attention_heads: cfg.nHeads, num_key_value_heads: cfg.nKvHeads, vocab_size: cfg.vocabSize,
    max_position_embeddings: cfg.maxSeqLen, rms_norm_eps: cfg.normEps, rope_theta: cfg.ropeTheta,
    ...(mt === 'gemma' || gemma2 || gemma3 ? { hidden_activation: 'gelu_pytorch_tanh', head_dim: cfg.headDim ?? cfg.dim / cfg.nHeads } : { hidden_act: 'silu' }),
    ...(cfg.ropeFactor !== undefined && cfg.ropeFactor !== 1 ? { rope_scaling: { rope_type: 'linear', factor: cfg.ropeFactor } } : {}),
    ...(gemma2
      ? {
          query_pre_attn_scalar: cfg.attnScale === undefined ? (cfg.headDim ?? cfg.dim / cfg.nHeads) : Number((1 / cfg.attnScale ** 2).toPrecision(12)),
          attn_logit_softcapping: cfg.attnSoftcap ?? null, final_logit_softcapping: cfg.finalSoftcap ?? null, attention_bias: false,
        }
      : {}),
    ...(gemma3
      ? {
          query_pre_attn_scalar: cfg.attnScale === undefined ? (cfg.headDim ?? cfg.dim / cfg.nHeads) : Number((1 / cfg.attnScale ** 2).toPrecision(12)),
          rope_local_base_freq: cfg.ropeLocalTheta ?? cfg.ropeTheta, attn_logit_softcapping: null, final_logit_softcapping: null, attention_bias: false,
        }
      : {}),
    tie_word_embeddings: cfg.tieEmbeddings,
    ...(mt === 'llama' ? { attention_bias: false } : {}),
    // Mistral defaults to a 4096 window when the key is absent, so say null explicitly.
    ...(cfg.slidingWindow !== undefined
      ? {
          sliding_window: cfg.slidingWindow, ...(mt === 'qwen2' ? { use_sliding_window: true, max_window_layers: leadingFull } : {}),
          ...(layers || gemma2 || gemma3 ? { layer_types: (layers ?? Array<boolean>(cfg.nLayers).fill(true)).map((t) => (t ? 'sliding_attention' : 'full_attention')) } : {}),
        }
      : mt === 'mistral' || gemma2 || gemma3 ? { sliding_window: null } : {}),
    ...ids,
  };
}

export function writeHfConfig(file: string, cfg: ModelConfig, torchDtype: 'float32' | 'float16' | 'bfloat16' = 'float32'): void {
  writeFileAtomic(file, [new TextEncoder().encode(JSON.stringify(hfConfigJson(cfg, torchDtype), null, 2) + '\n')]);
}

// Gemma 3's text model (model_type gemma3_text, and the multimodal gemma3 wrapper) against a
// float64 forward written here from transformers' modeling_gemma3 (Gemma3TextModel,
// Gemma3DecoderLayer, Gemma3Attention, Gemma3RMSNorm, Gemma3TextScaledWordEmbedding), not from
// src/nn/llama.ts: head_dim != hidden/heads, q/k RMSNorm (1 + w) before RoPE, sandwich norms,
// query_pre_attn_scalar, sliding-window local layers with their own RoPE base, a global layer
// with linear-scaled RoPE, embed_scale rounded to the checkpoint's dtype (bf16). The fixture is
// a tiny bf16 checkpoint built here from a seed, with a window shorter than the sequence.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseHfConfig, type LlamaConfig } from '../src/io/config.js';
import { FormatError } from '../src/io/errors.js';
import type { TensorToSave } from '../src/io/safetensors.js';
import { generate } from '../src/nn/generate.js';
import { loadModel, saveHf } from '../src/nn/load.js';
import type { Llama } from '../src/nn/llama.js';
import * as T from '../src/tensor/index.js';
import { bf16, close, gemmaReference, gradientsMatchReference, gemmaWeights, runGemma, writeGemmaDir, type GemmaSpec, type Host } from './gemma-reference.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-gemma3-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

// 3 layers, pattern 3: layers 0 and 1 slide (window 4), layer 2 is global. head_dim 8 with
// hidden 24 and 4 heads (24 / 4 = 6); 2 kv heads; query_pre_attn_scalar 10 (not head_dim).
const D = 24, H = 4, HKV = 2, HD = 8, FF = 32, V = 40, L = 3, WINDOW = 4;
const textJson = {
  model_type: 'gemma3_text', architectures: ['Gemma3ForCausalLM'], torch_dtype: 'bfloat16',
  hidden_size: D, intermediate_size: FF, num_hidden_layers: L, num_attention_heads: H, num_key_value_heads: HKV, head_dim: HD,
  vocab_size: V, max_position_embeddings: 64, rms_norm_eps: 1e-6, rope_theta: 1e6, rope_local_base_freq: 10000,
  rope_scaling: { rope_type: 'linear', factor: 8 }, query_pre_attn_scalar: 10, sliding_window: WINDOW, sliding_window_pattern: 3,
  hidden_activation: 'gelu_pytorch_tanh', attn_logit_softcapping: null, final_logit_softcapping: null, tie_word_embeddings: true,
  bos_token_id: 2, eos_token_id: 1, pad_token_id: 0, attention_bias: false,
};
const ids = [2, 7, 19, 4, 11, 0, 33, 5, 5, 28, 39]; // 11 positions: every local layer's window bites

// The float64 forward and helpers are shared with the other Gemma test (gemma-reference.ts).
const SPEC: GemmaSpec = { D, H, HKV, HD, FF, V, L, window: WINDOW, sliding: (l) => (l + 1) % 3 !== 0, rope: (l) => ((l + 1) % 3 !== 0 ? [10000, 1] : [1e6, 8]), qkNorm: true, scalar: 10 };
const weights = (seed: number) => gemmaWeights(seed, SPEC);
const reference = (w: Host, tokens: number[], inject?: { pos: number; v: Float64Array }) => gemmaReference(SPEC, w, tokens, inject);
const writeDir = (name: string, config: unknown, tensors: Host, rename?: (k: string) => string, extra?: Record<string, TensorToSave>) => writeGemmaDir(tmp, name, config, tensors, rename, extra);
const run = runGemma;

const W = weights(20261206);
let textDirPath = '';
/** The gemma3_text fixture directory, written on first use (each test may run alone). */
const textDir = () => (textDirPath ||= writeDir('text', textJson, W));

test('gemma3_text config: head_dim, q/k norms, sandwich norms, scalar, windows by pattern, RoPE per layer type, bf16 embed scale', () => {
  const c = parseHfConfig(textJson, 'g3/config.json').config as LlamaConfig;
  assert.equal(c.modelType, 'gemma3_text');
  assert.equal(c.headDim, HD);
  assert.ok(c.qkNorm && c.sandwichNorm && c.tieEmbeddings);
  assert.equal(c.attnScale, 1 / Math.sqrt(10));
  assert.equal(c.slidingWindow, WINDOW);
  assert.deepEqual(c.slidingLayers, [true, true, false]);
  assert.equal(c.ropeTheta, 1e6);
  assert.equal(c.ropeFactor, 8);
  assert.equal(c.ropeLocalTheta, 10000);
  assert.equal(c.embedScale, 4.90625, 'sqrt(24) = 4.899 in bf16');
  assert.equal(c.maxSeqLen, 64, 'the window does not cap the context');
  // layer_types overrides the pattern; rope_parameters (newer transformers) gives the same settings.
  const c2 = parseHfConfig({ ...textJson, rope_scaling: undefined, rope_theta: undefined, rope_local_base_freq: undefined, layer_types: ['sliding_attention', 'full_attention', 'sliding_attention'],
    rope_parameters: { full_attention: { rope_type: 'linear', factor: 8, rope_theta: 1e6 }, sliding_attention: { rope_type: 'default', rope_theta: 10000 } } }, 'g3/config.json').config as LlamaConfig;
  assert.deepEqual([c2.slidingLayers, c2.ropeTheta, c2.ropeFactor, c2.ropeLocalTheta], [[true, false, true], 1e6, 8, 10000]);
});

test('Gemma 3 forward (logits, residual after block 1) matches the float64 reference; the window is in force', async () => {
  await T.initGpu();
  const { model } = await loadModel(textDir());
  const got = await run(model as Llama, ids);
  const want = reference(W, ids);
  close(got.layer1, want.blocks[1], 2e-4, 'residual after block 1');
  close(got.logits, want.logits, 2e-4, 'logits');
  // The test can fail: without the window, or with the scale in f32, the reference is elsewhere.
  const cfg = (model as Llama).cfg;
  const saved = cfg.slidingWindow;
  cfg.slidingWindow = 1000; // same layers and RoPE, window past the sequence
  const full = await run(model as Llama, ids);
  cfg.slidingWindow = saved;
  assert.ok(full.logits.some((x, i) => Math.abs(x - want.logits[i]) > 1e-2), 'the sliding window changes the logits');
  // Saved (f32 weights) and loaded back: the same config (bf16 embed scale included), the same logits.
  const dir = path.join(tmp, 'resaved');
  await saveHf(model, dir);
  const again = (await loadModel(dir)).model as Llama;
  assert.deepEqual({ ...again.cfg }, { ...cfg });
  assert.deepEqual((await run(again, ids)).logits, got.logits);
  again.w.dispose();
  model.w.dispose();
});

test('KV-cache decoding one token at a time past the window equals the full forward', async () => {
  const { model } = await loadModel(textDir());
  const m = model as Llama;
  const full = reference(W, ids).logits;
  const cache = m.newCache(1, 16);
  const steps: number[] = [];
  const prompt = 3;
  for (let t = 0; t < ids.length; t = t === 0 ? prompt : t + 1) {
    const chunk = t === 0 ? ids.slice(0, prompt) : [ids[t]];
    const logits = T.noGrad(() => T.tidy(() => m.forward(T.Tensor.from(Int32Array.from(chunk), [1, chunk.length], 'i32'), { cache }).logits!.contiguous()));
    const got = (await logits.data()) as Float32Array;
    logits.dispose();
    const at = t === 0 ? 0 : t;
    close(got, full.slice(at * V, (at + chunk.length) * V), 2e-4, `decode step at ${at}`);
    steps.push(at);
  }
  assert.deepEqual(steps, [0, 3, 4, 5, 6, 7, 8, 9, 10]);
  cache.dispose();
  m.w.dispose();
});

test('generate (KV cache, last-position head) greedily continues past the window as the float64 reference does', async () => {
  const { model } = await loadModel(textDir());
  const prompt = ids.slice(0, 3);
  const want: number[] = [];
  const seq = [...prompt];
  for (let i = 0; i < 8; i++) {
    const logits = reference(W, seq).logits.slice((seq.length - 1) * V, seq.length * V);
    const next = logits.indexOf(Math.max(...logits));
    want.push(next);
    seq.push(next);
  }
  for (const fusedSample of [false, true]) {
    const got = await generate(model, [prompt], { maxNewTokens: 8, temperature: 0, fusedSample });
    assert.deepEqual(got.tokens[0], want, `fusedSample ${fusedSample}`);
  }
  model.w.dispose();
});

test('NLA injection: the vector replaces the row after the embedding scale (not scaled itself)', async () => {
  const { model } = await loadModel(textDir());
  const v = Float64Array.from({ length: D }, (_, i) => bf16(Math.cos(i) * 3));
  const got = await run(model as Llama, ids, { inject: { pos: 4, v } });
  const want = reference(W, ids, { pos: 4, v });
  close(got.layer1, want.blocks[1], 2e-4, 'residual after block 1 with v at 4');
  close(got.logits, want.logits, 2e-4, 'logits with v at 4');
  const scaled = reference(W, ids, { pos: 4, v: v.map((x) => x * bf16(Math.sqrt(D))) }).blocks[1];
  assert.ok(got.layer1.some((x, i) => Math.abs(x - scaled[i]) > 1e-2), 'an injected vector multiplied by the scale would give another residual');
  model.w.dispose();
});

test('the gemma3 wrapper config loads the same weights (old and new tensor names); vision tensors skipped, unknown ones refused', async () => {
  const wrapper = {
    model_type: 'gemma3', architectures: ['Gemma3ForConditionalGeneration'], torch_dtype: 'bfloat16', eos_token_id: [1, 106],
    text_config: { ...textJson, model_type: 'gemma3_text', torch_dtype: undefined, architectures: undefined },
    vision_config: { model_type: 'siglip_vision_model', hidden_size: 8 }, mm_tokens_per_image: 4, boi_token_index: 3, eoi_token_index: 4, image_token_index: 5,
  };
  const vision = (prefix: string): Record<string, TensorToSave> => ({
    [`${prefix}vision_tower.vision_model.embeddings.patch_embedding.weight`]: { dtype: 'f32', shape: [8, 3, 2, 2], data: new Float32Array(96).fill(0.5) },
    [`${prefix}multi_modal_projector.mm_input_projection_weight`]: { dtype: 'f32', shape: [8, D], data: new Float32Array(8 * D).fill(0.25) },
    [`${prefix}multi_modal_projector.mm_soft_emb_norm.weight`]: { dtype: 'f32', shape: [8], data: new Float32Array(8) },
  });
  const text = (await loadModel(textDir())).model as Llama;
  const want = (await run(text, ids)).logits;
  text.w.dispose();
  const layouts: [string, (k: string) => string, string][] = [
    ['old', (k) => 'language_model.' + k, ''], // published google/gemma-3-*: language_model.model.*
    ['new', (k) => k.replace(/^model\./, 'model.language_model.'), 'model.'], // transformers >= 4.52 save_pretrained
  ];
  for (const [name, rename, vprefix] of layouts) {
    const dir = writeDir(`wrapper-${name}`, wrapper, W, rename, vision(vprefix));
    const { model } = await loadModel(dir);
    const c = model.cfg as LlamaConfig;
    assert.equal(c.wrapper, 'gemma3');
    assert.equal(c.eosId, 1);
    assert.deepEqual((await run(model as Llama, ids)).logits, want, `${name} layout: same logits as the gemma3_text directory`);
    model.w.dispose();
  }
  const bad = writeDir('wrapper-unknown', wrapper, W, (k) => 'language_model.' + k, { 'audio_tower.conv.weight': { dtype: 'f32', shape: [2], data: new Float32Array(2) } });
  await assert.rejects(loadModel(bad), /unexpected tensor "audio_tower\.conv\.weight"/);
  // A vision tensor in a plain gemma3_text checkpoint is not skipped: it is unexpected there.
  const plain = writeDir('text-with-vision', textJson, W, (k) => k, vision(''));
  await assert.rejects(loadModel(plain), /unexpected tensor "(vision_tower|multi_modal_projector)\./);
  assert.throws(() => parseHfConfig({ ...wrapper, text_config: undefined }, 'w/config.json'), /needs a "text_config" object/);
});

test('gradients through the Gemma 3 model (AR/AV training) match finite differences of the float64 reference', async () => {
  const { model } = await loadModel(textDir());
  const m = model as Llama;
  const coords: [string, number][] = [
    ['model.layers.0.self_attn.q_norm.weight', 3], ['model.layers.0.self_attn.k_proj.weight', 17], ['model.layers.1.self_attn.v_proj.weight', 40],
    ['model.layers.2.self_attn.q_proj.weight', 101], ['model.layers.2.self_attn.k_norm.weight', 6], ['model.layers.1.self_attn.o_proj.weight', 77],
    ['model.layers.0.pre_feedforward_layernorm.weight', 5], ['model.layers.2.post_feedforward_layernorm.weight', 11], ['model.layers.1.post_attention_layernorm.weight', 2],
    ['model.layers.1.mlp.gate_proj.weight', 123], ['model.embed_tokens.weight', 7 * D + 3], ['model.norm.weight', 9],
  ];
  await gradientsMatchReference(m, SPEC, W, ids.slice(0, 9), coords);
  m.w.dispose();
});

test('Gemma 3 settings nla does not implement are refused naming the key', () => {
  const refusedKey = (extra: Record<string, unknown>, key: string) => assert.throws(() => parseHfConfig({ ...textJson, ...extra }, 'g3/config.json'), (e: Error) => e instanceof FormatError && e.field === key && e.message.includes(`${key}=`));
  refusedKey({ attn_logit_softcapping: 50 }, 'attn_logit_softcapping');
  refusedKey({ final_logit_softcapping: 30 }, 'final_logit_softcapping');
  refusedKey({ use_bidirectional_attention: true }, 'use_bidirectional_attention');
  refusedKey({ attention_bias: true }, 'attention_bias');
  refusedKey({ hidden_activation: 'gelu' }, 'hidden_activation');
  refusedKey({ rope_scaling: { rope_type: 'yarn', factor: 4 } }, 'rope_scaling');
});

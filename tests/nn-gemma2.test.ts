// Gemma 2 (model_type gemma2) against a float64 forward written here from transformers'
// modeling_gemma2 (Gemma2Model, Gemma2DecoderLayer, Gemma2Attention with eager soft-capping,
// Gemma2ForCausalLM's final soft-cap), not from src/nn/llama.ts: head_dim != hidden/heads,
// sandwich norms, query_pre_attn_scalar, attention-score soft-capping, sliding windows on the even
// layers (Gemma2Config's default layer_types), final-logit soft-capping, sqrt(d) in bf16. The
// fixture is a tiny bf16 checkpoint built here from a seed, with a window shorter than the sequence.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseHfConfig, type LlamaConfig } from '../src/io/config.js';
import { FormatError } from '../src/io/errors.js';
import type { TensorToSave } from '../src/io/safetensors.js';
import { generate, sequenceLogProbs } from '../src/nn/generate.js';
import { loadModel, saveHf } from '../src/nn/load.js';
import type { Llama } from '../src/nn/llama.js';
import * as T from '../src/tensor/index.js';
import { close, gemmaReference, gradientsMatchReference, gemmaWeights, runGemma, writeGemmaDir, type GemmaSpec, type Host } from './gemma-reference.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-gemma2-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

// 3 layers: 0 and 2 slide (window 3), 1 is global. head_dim 8 with hidden 24 and 4 heads; caps
// small enough to bite on these weights (attention 2, logits 3).
const D = 24, H = 4, HKV = 2, HD = 8, FF = 32, V = 40, L = 3, WINDOW = 3, ACAP = 2, FCAP = 3;
const json = {
  model_type: 'gemma2', architectures: ['Gemma2ForCausalLM'], torch_dtype: 'bfloat16',
  hidden_size: D, intermediate_size: FF, num_hidden_layers: L, num_attention_heads: H, num_key_value_heads: HKV, head_dim: HD,
  vocab_size: V, max_position_embeddings: 64, rms_norm_eps: 1e-6, rope_theta: 10000, query_pre_attn_scalar: 12, sliding_window: WINDOW,
  hidden_activation: 'gelu_pytorch_tanh', attn_logit_softcapping: ACAP, final_logit_softcapping: FCAP, tie_word_embeddings: true,
  bos_token_id: 2, eos_token_id: 1, pad_token_id: 0, attention_bias: false, cache_implementation: 'hybrid',
};
const ids = [2, 7, 19, 4, 11, 0, 33, 5, 5, 28];

// The float64 forward and helpers are shared with the other Gemma test (gemma-reference.ts).
const SPEC: GemmaSpec = { D, H, HKV, HD, FF, V, L, window: WINDOW, sliding: (l) => l % 2 === 0, rope: () => [10000, 1], qkNorm: false, scalar: 12, attnCap: ACAP, finalCap: FCAP };
const weights = (seed: number) => gemmaWeights(seed, SPEC);
const reference = (w: Host, tokens: number[], inject?: { pos: number; v: Float64Array }) => gemmaReference(SPEC, w, tokens, inject);
const writeDir = (name: string, config: unknown, tensors: Host, rename?: (k: string) => string, extra?: Record<string, TensorToSave>) => writeGemmaDir(tmp, name, config, tensors, rename, extra);
const run = runGemma;

const W = weights(20261207);
let dirPath = '';
const modelDir = () => (dirPath ||= writeDir('gemma2', json, W));

test('gemma2 config: softcaps (Gemma2Config defaults 50 / 30, null turns off), even layers slide, scalar, head_dim', () => {
  const c = parseHfConfig(json, 'g2/config.json').config as LlamaConfig;
  assert.deepEqual([c.modelType, c.headDim, c.attnSoftcap, c.finalSoftcap, c.slidingWindow, c.slidingLayers, c.qkNorm, c.sandwichNorm], ['gemma2', HD, ACAP, FCAP, WINDOW, [true, false, true], undefined, true]);
  assert.equal(c.attnScale, 1 / Math.sqrt(12));
  const d = parseHfConfig({ ...json, attn_logit_softcapping: undefined, final_logit_softcapping: undefined }, 'g2/config.json').config as LlamaConfig;
  assert.deepEqual([d.attnSoftcap, d.finalSoftcap], [50, 30]);
  const n = parseHfConfig({ ...json, attn_logit_softcapping: null, final_logit_softcapping: null }, 'g2/config.json').config as LlamaConfig;
  assert.deepEqual([n.attnSoftcap, n.finalSoftcap], [undefined, undefined]);
  assert.throws(() => parseHfConfig({ ...json, hidden_activation: 'gelu' }, 'g2/config.json'), (e: Error) => e instanceof FormatError && e.field === 'hidden_activation');
  assert.throws(() => parseHfConfig({ ...json, attention_bias: true }, 'g2/config.json'), (e: Error) => e instanceof FormatError && e.field === 'attention_bias');
});

test('Gemma 2 forward (capped logits, residual after block 1) matches the float64 reference; caps and window are in force', async () => {
  await T.initGpu();
  const { model } = await loadModel(modelDir());
  const m = model as Llama;
  const got = await run(m, ids);
  const want = reference(W, ids);
  close(got.layer1, want.blocks[1], 2e-4, 'residual after block 1');
  close(got.logits, want.logits, 2e-4, 'logits');
  assert.ok(got.logits.every((z) => Math.abs(z) < FCAP), 'logits within the final cap');
  for (const [key, value] of [['attnSoftcap', 1000], ['finalSoftcap', undefined], ['slidingWindow', 1000]] as const) {
    const saved = m.cfg[key];
    (m.cfg as unknown as Record<string, unknown>)[key] = value;
    const other = await run(m, ids);
    (m.cfg as unknown as Record<string, unknown>)[key] = saved;
    assert.ok(other.logits.some((x, i) => Math.abs(x - want.logits[i]) > 1e-2), `${key} changes the logits`);
  }
  // Saved and loaded back: same config, same logits.
  const dir = path.join(tmp, 'resaved');
  await saveHf(m, dir);
  const again = (await loadModel(dir)).model as Llama;
  assert.deepEqual({ ...again.cfg }, { ...m.cfg });
  assert.deepEqual((await run(again, ids)).logits, got.logits);
  again.w.dispose();
  m.w.dispose();
});

test('generate (KV cache; fused sampling falls back to the capped host path) continues greedily as the reference; sequence log-probs are of capped logits', async () => {
  const { model } = await loadModel(modelDir());
  const prompt = ids.slice(0, 3);
  const want: number[] = [];
  const seq = [...prompt];
  for (let i = 0; i < 7; i++) {
    const logits = reference(W, seq).logits.slice((seq.length - 1) * V, seq.length * V);
    const next = logits.indexOf(Math.max(...logits));
    want.push(next);
    seq.push(next);
  }
  for (const fusedSample of [false, true]) {
    const got = await generate(model, [prompt], { maxNewTokens: 7, temperature: 0, fusedSample });
    assert.deepEqual(got.tokens[0], want, `fusedSample ${fusedSample}`);
  }
  const ref = reference(W, ids).logits;
  const lp = T.noGrad(() => sequenceLogProbs(model, Int32Array.from(ids), 1, ids.length));
  const got = (await lp.data()) as Float32Array;
  lp.dispose();
  for (let t = 0; t < ids.length - 1; t++) {
    const row = ref.slice(t * V, (t + 1) * V), mx = Math.max(...row);
    const lse = mx + Math.log(row.reduce((a, z) => a + Math.exp(z - mx), 0));
    assert.ok(Math.abs(got[t] - (row[ids[t + 1]] - lse)) < 2e-4, `log p at ${t}: ${got[t]} vs ${row[ids[t + 1]] - lse}`);
  }
  assert.throws(() => sequenceLogProbs(model, Int32Array.from(ids), 1, ids.length, undefined, true), /chunked head does not apply final_logit_softcapping/);
  model.w.dispose();
});

test('gradients through Gemma 2 (soft-caps included) match finite differences of the float64 reference', async () => {
  const { model } = await loadModel(modelDir());
  const m = model as Llama;
  const coords: [string, number][] = [
    ['model.layers.0.self_attn.q_proj.weight', 17], ['model.layers.1.self_attn.k_proj.weight', 40], ['model.layers.2.self_attn.v_proj.weight', 9],
    ['model.layers.1.self_attn.o_proj.weight', 77], ['model.layers.0.post_attention_layernorm.weight', 2], ['model.layers.2.post_feedforward_layernorm.weight', 11],
    ['model.layers.1.mlp.up_proj.weight', 123], ['model.embed_tokens.weight', 7 * D + 3], ['model.norm.weight', 9],
  ];
  await gradientsMatchReference(m, SPEC, W, ids.slice(0, 8), coords);
  m.w.dispose();
});

// config.json settings that change a model's outputs are never ignored: each is implemented
// (the GPT-2 erf GELU: tests/nn-gpt2.test.ts against a float64 reference; sliding windows and
// linear RoPE scaling: the kernels' tests and tests/nn-gemma3.test.ts) or refused at load with
// the key named. The
// fixtures are tiny model directories built here (config.json + model.safetensors).
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseHfConfig } from '../src/io/config.js';
import { FormatError } from '../src/io/errors.js';
import { initLlama, llamaConfig } from '../src/nn/init.js';
import { loadModel, saveHf } from '../src/nn/load.js';
import * as T from '../src/tensor/index.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-config-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const llama = {
  model_type: 'llama', hidden_size: 16, intermediate_size: 24, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 2,
  vocab_size: 20, max_position_embeddings: 64, rms_norm_eps: 1e-5, rope_theta: 10000, hidden_act: 'silu', tie_word_embeddings: true,
};
const gpt2 = { model_type: 'gpt2', n_embd: 8, n_head: 2, n_layer: 1, vocab_size: 10, n_positions: 16, activation_function: 'gelu_new' };

/** The FormatError from parsing `json`, which must name `key` (field and message). */
function refused(json: Record<string, unknown>, key: string): FormatError {
  let err: unknown;
  try {
    parseHfConfig(json, 'fixture/config.json');
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof FormatError, `${key}: expected a FormatError, got ${String(err)}`);
  assert.equal(err.field, key);
  assert.match(err.message, new RegExp(`^fixture/config\\.json: "?${key}"?=`));
  return err;
}

describe('settings that would change outputs are refused naming the key', () => {
  test('rope_scaling of any type but "default" and "linear"', () => {
    for (const rs of [{ rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 }, { rope_type: 'yarn', factor: 4 }, { type: 'dynamic', factor: 2 }, { rope_type: 'longrope', factor: 2 }]) {
      assert.match(refused({ ...llama, rope_scaling: rs }, 'rope_scaling').message, /not supported: RoPE scaling type "\w+" is not implemented/);
    }
    for (const ok of [null, { rope_type: 'default' }, { type: 'default' }]) assert.equal(parseHfConfig({ ...llama, rope_scaling: ok }, 'f').config.arch, 'llama');
    // Linear scaling is implemented (positions / factor), for Llama and Qwen2 alike.
    for (const mt of ['llama', 'qwen2']) {
      const c = parseHfConfig({ ...llama, model_type: mt, rope_scaling: { type: 'linear', factor: 2 } }, 'f').config;
      assert.ok(c.arch === 'llama' && c.ropeFactor === 2, mt);
    }
    assert.throws(() => parseHfConfig({ ...llama, rope_scaling: { rope_type: 'linear' } }, 'f'), (e: Error) => e instanceof FormatError && e.field === 'rope_scaling' && /rope_scaling\.factor=undefined is not a positive number/.test(e.message));
  });

  test('hidden_act other than silu; llama attention_bias and mlp_bias', () => {
    for (const act of ['gelu', 'relu', 'gelu_pytorch_tanh', 42]) refused({ ...llama, hidden_act: act }, 'hidden_act');
    assert.equal(parseHfConfig({ ...llama, hidden_act: 'swish' }, 'f').config.arch, 'llama', 'swish is SiLU');
    refused({ ...llama, attention_bias: true }, 'attention_bias');
    refused({ ...llama, mlp_bias: true }, 'mlp_bias');
    // transformers ignores both keys for mistral and qwen2, so do we.
    const m = parseHfConfig({ ...llama, model_type: 'mistral', sliding_window: null, attention_bias: true, mlp_bias: true }, 'f').config;
    assert.ok(m.arch === 'llama' && !m.qkvBias);
  });

  test('GPT-2 activation_function other than the GELUs; unscaled or layer-scaled attention', () => {
    for (const act of ['relu', 'silu', 'quick_gelu', 'gelu_10']) refused({ ...gpt2, activation_function: act }, 'activation_function');
    refused({ ...gpt2, scale_attn_weights: false }, 'scale_attn_weights');
    refused({ ...gpt2, scale_attn_by_inverse_layer_idx: true }, 'scale_attn_by_inverse_layer_idx');
  });
});

describe('settings that are implemented', () => {
  test('GPT-2 GELU spellings: tanh for gelu_new, gelu_pytorch_tanh, gelu_fast and when absent; erf for "gelu"', () => {
    const gelu = (act?: string) => {
      const c = parseHfConfig({ ...gpt2, activation_function: act }, 'f').config;
      return c.arch === 'gpt2' ? (c.gelu ?? 'tanh') : 'not gpt2';
    };
    assert.deepEqual(['gelu_new', 'gelu_pytorch_tanh', 'gelu_fast', undefined, 'gelu'].map(gelu), ['tanh', 'tanh', 'tanh', 'tanh', 'erf']);
  });

  test('sliding_window: mistral on every layer; qwen2 only with use_sliding_window, on layers from max_window_layers; the context is not capped', () => {
    const ctx = (j: Record<string, unknown>) => {
      const c = parseHfConfig(j, 'f').config;
      return c.arch === 'llama' ? [c.maxSeqLen, c.slidingWindow, c.slidingLayers] : [];
    };
    const two = { ...llama, num_hidden_layers: 2 };
    assert.deepEqual(ctx({ ...two, model_type: 'mistral', sliding_window: 8 }), [64, 8, undefined]);
    assert.deepEqual(ctx({ ...two, model_type: 'mistral', sliding_window: null }), [64, undefined, undefined]);
    assert.deepEqual(ctx({ ...two, model_type: 'mistral' }), [64, 4096, undefined], 'MistralConfig default');
    assert.deepEqual(ctx({ ...two, model_type: 'qwen2', sliding_window: 8, use_sliding_window: false }), [64, undefined, undefined]);
    assert.deepEqual(ctx({ ...two, model_type: 'qwen2', sliding_window: 8, use_sliding_window: true }), [64, undefined, undefined], 'max_window_layers defaults to 28: no layer slides');
    assert.deepEqual(ctx({ ...two, model_type: 'qwen2', sliding_window: 8, use_sliding_window: true, max_window_layers: 1 }), [64, 8, [false, true]]);
    assert.deepEqual(ctx({ ...two, model_type: 'qwen2', sliding_window: 8, use_sliding_window: true, max_window_layers: 0 }), [64, 8, undefined]);
    assert.deepEqual(ctx({ ...two, model_type: 'mistral', sliding_window: 8, layer_types: ['full_attention', 'sliding_attention'] }), [64, 8, [false, true]]);
    assert.deepEqual(ctx({ ...two, sliding_window: 8 }), [64, undefined, undefined], 'LlamaConfig has no sliding window');
    refused({ ...llama, model_type: 'mistral', sliding_window: -3 }, 'sliding_window');
    refused({ ...two, model_type: 'mistral', sliding_window: 8, layer_types: ['sliding_attention'] }, 'layer_types');
  });
});

describe('through loadModel, on model directories', () => {
  /** A tiny llama saved as an HF directory, its config.json then patched with `extra`. */
  async function dirWith(name: string, extra: Record<string, unknown>): Promise<string> {
    await T.initGpu();
    const model = await initLlama(llamaConfig({ dim: 16, nLayers: 1, nHeads: 2, vocabSize: 20, maxSeqLen: 64, hiddenDim: 24, modelType: 'mistral' }), 1);
    const dir = path.join(tmp, name);
    await saveHf(model, dir);
    model.w.dispose();
    const file = path.join(dir, 'config.json');
    fs.writeFileSync(file, JSON.stringify({ ...JSON.parse(fs.readFileSync(file, 'utf8')), ...extra }));
    return dir;
  }

  test('rope_scaling and hidden_act refuse the load naming the file and the key', async () => {
    for (const [key, value] of [['rope_scaling', { rope_type: 'yarn', factor: 2 }], ['hidden_act', 'gelu']] as const) {
      const dir = await dirWith(`bad-${key}`, { [key]: value });
      await assert.rejects(loadModel(dir), (e: Error) => e instanceof FormatError && e.field === key && e.message.startsWith(path.join(dir, 'config.json') + `: ${key}=`));
    }
  });

  test('a sliding window shorter than the sequence runs windowed attention: equal to full attention within the window, different past it', async () => {
    const windowed = (await loadModel(await dirWith('window', { sliding_window: 4 }))).model;
    const full = (await loadModel(await dirWith('no-window', { sliding_window: null }))).model;
    assert.equal(windowed.cfg.maxSeqLen, 64);
    const run = async (m: typeof full) => {
      const t = T.noGrad(() => T.tidy(() => m.forward(T.Tensor.from(Int32Array.from({ length: 9 }, (_, i) => i + 1), [1, 9], 'i32')).logits!.contiguous()));
      const d = (await t.data()) as Float32Array;
      t.dispose();
      return d;
    };
    const [a, b] = [await run(windowed), await run(full)];
    for (let i = 0; i < 4 * 20; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-5, `position ${Math.floor(i / 20)} sees its whole past in both`);
    assert.ok(a.slice(4 * 20).some((x, i) => Math.abs(x - b[4 * 20 + i]) > 1e-4), 'positions past the window differ');
    windowed.w.dispose();
    full.w.dispose();
  });

  test('a GPT-2 directory with activation_function "relu" is refused', async () => {
    const dir = path.join(tmp, 'gpt2-relu');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...gpt2, activation_function: 'relu' }));
    await assert.rejects(loadModel(dir), /config\.json: activation_function="relu" is not supported/);
  });
});

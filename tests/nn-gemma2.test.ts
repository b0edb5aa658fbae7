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
import { writeSafetensors, type TensorToSave } from '../src/io/safetensors.js';
import { generate, sequenceLogProbs } from '../src/nn/generate.js';
import { loadModel, saveHf } from '../src/nn/load.js';
import type { Llama } from '../src/nn/llama.js';
import * as T from '../src/tensor/index.js';
import { gaussian, SeededRng } from '../src/util/rng.js';

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

/** bf16 value of x (round to nearest even), so the file's bf16 weights hold exactly these values. */
function bf16(x: number): number {
  const u = new Uint32Array(new Float32Array([x]).buffer);
  u[0] = (u[0] + 0x7fff + ((u[0] >> 16) & 1)) & 0xffff0000;
  return new Float32Array(u.buffer)[0];
}

type Host = Map<string, { shape: number[]; data: Float64Array }>;

/** Seeded weights of Gemma2ForCausalLM's names and shapes (bf16-exact values). */
function weights(seed: number): Host {
  const n = gaussian(new SeededRng(seed).fn());
  const m: Host = new Map();
  const add = (name: string, shape: number[], s: number) => m.set(name, { shape, data: Float64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => bf16(s * n())) });
  add('model.embed_tokens.weight', [V, D], 0.5);
  add('model.norm.weight', [D], 0.3);
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}.`;
    for (const nm of ['input_layernorm', 'post_attention_layernorm', 'pre_feedforward_layernorm', 'post_feedforward_layernorm']) add(p + nm + '.weight', [D], 0.3);
    add(p + 'self_attn.q_proj.weight', [H * HD, D], 0.3);
    add(p + 'self_attn.k_proj.weight', [HKV * HD, D], 0.3);
    add(p + 'self_attn.v_proj.weight', [HKV * HD, D], 0.3);
    add(p + 'self_attn.o_proj.weight', [D, H * HD], 0.3);
    add(p + 'mlp.gate_proj.weight', [FF, D], 0.3);
    add(p + 'mlp.up_proj.weight', [FF, D], 0.3);
    add(p + 'mlp.down_proj.weight', [D, FF], 0.3);
  }
  return m;
}

function writeDir(name: string, config: unknown, tensors: Host, rename = (k: string) => k, extra: Record<string, TensorToSave> = {}): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  const out: Record<string, TensorToSave> = { ...extra };
  for (const [k, t] of tensors) out[rename(k)] = { dtype: 'f32', shape: t.shape, data: Float32Array.from(t.data), saveAs: 'bf16' };
  writeSafetensors(path.join(dir, 'model.safetensors'), out);
  return dir;
}

// ---- float64 reference (transformers' Gemma 2, written out) ----

/** x [T, n] @ W^T for W [m, n] (PyTorch Linear). */
function linear(x: Float64Array, Tn: number, w: { shape: number[]; data: Float64Array }): Float64Array {
  const [m, n] = w.shape;
  const y = new Float64Array(Tn * m);
  for (let t = 0; t < Tn; t++) for (let i = 0; i < m; i++) {
    let s = 0;
    for (let j = 0; j < n; j++) s += x[t * n + j] * w.data[i * n + j];
    y[t * m + i] = s;
  }
  return y;
}

/** Gemma2RMSNorm over rows of width n: x / sqrt(mean(x^2) + eps) * (1 + w). */
function rms(x: Float64Array, n: number, w: Float64Array, eps = 1e-6): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < x.length / n; r++) {
    let ss = 0;
    for (let i = 0; i < n; i++) ss += x[r * n + i] ** 2;
    const inv = 1 / Math.sqrt(ss / n + eps);
    for (let i = 0; i < n; i++) y[r * n + i] = x[r * n + i] * inv * (1 + w[i]);
  }
  return y;
}

const gelu = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

/** rotate_half RoPE on rows [T, heads, HD] in place: inv_freq = 1 / base^(2k/HD) (float32, as torch), / factor. */
function ropeInPlace(x: Float64Array, Tn: number, heads: number, base: number, factor: number): void {
  const half = HD / 2;
  for (let t = 0; t < Tn; t++) for (let h = 0; h < heads; h++) for (let k = 0; k < half; k++) {
    const inv = Math.fround(Math.fround(1 / Math.fround(base ** Math.fround((2 * k) / HD))) / factor);
    const a = Math.fround(t * inv);
    const o = (t * heads + h) * HD;
    const [x1, x2] = [x[o + k], x[o + k + half]];
    x[o + k] = x1 * Math.cos(a) - x2 * Math.sin(a);
    x[o + k + half] = x2 * Math.cos(a) + x1 * Math.sin(a);
  }
}

/** Gemma2ForCausalLM forward for one sequence: residual after each block, and capped logits. */
function reference(w: Host, tokens: number[]): { blocks: Float64Array[]; logits: Float64Array } {
  const Tn = tokens.length, g = (n: string) => w.get(n)!;
  const E = g('model.embed_tokens.weight').data;
  const scale = bf16(Math.sqrt(D)); // normalizer = tensor(hidden_size ** 0.5, dtype=bf16)
  let x = new Float64Array(Tn * D);
  tokens.forEach((id, t) => { for (let i = 0; i < D; i++) x[t * D + i] = E[id * D + i] * scale; });
  const blocks: Float64Array[] = [];
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}.`;
    const sliding = l % 2 === 0;
    const h = rms(x, D, g(p + 'input_layernorm.weight').data);
    const q = linear(h, Tn, g(p + 'self_attn.q_proj.weight'));
    const k = linear(h, Tn, g(p + 'self_attn.k_proj.weight'));
    const v = linear(h, Tn, g(p + 'self_attn.v_proj.weight'));
    ropeInPlace(q, Tn, H, 10000, 1);
    ropeInPlace(k, Tn, HKV, 10000, 1);
    const att = new Float64Array(Tn * H * HD);
    for (let hh = 0; hh < H; hh++) {
      const kh = Math.floor(hh / (H / HKV));
      for (let i = 0; i < Tn; i++) {
        const s: number[] = [];
        for (let j = 0; j <= i; j++) {
          if (sliding && j <= i - WINDOW) { s.push(-Infinity); continue; }
          let dot = 0;
          for (let d = 0; d < HD; d++) dot += q[(i * H + hh) * HD + d] * k[(j * HKV + kh) * HD + d];
          s.push(ACAP * Math.tanh((dot * 12 ** -0.5) / ACAP)); // scaled, then capped, then masked
        }
        const mx = Math.max(...s), e = s.map((z) => Math.exp(z - mx)), z = e.reduce((a, b) => a + b, 0);
        for (let j = 0; j <= i; j++) for (let d = 0; d < HD; d++) att[(i * H + hh) * HD + d] += (e[j] / z) * v[(j * HKV + kh) * HD + d];
      }
    }
    const a = rms(linear(att, Tn, g(p + 'self_attn.o_proj.weight')), D, g(p + 'post_attention_layernorm.weight').data);
    x = x.map((r, i) => r + a[i]);
    const f = rms(x, D, g(p + 'pre_feedforward_layernorm.weight').data);
    const gate = linear(f, Tn, g(p + 'mlp.gate_proj.weight')), up = linear(f, Tn, g(p + 'mlp.up_proj.weight'));
    const m = rms(linear(gate.map((z, i) => gelu(z) * up[i]), Tn, g(p + 'mlp.down_proj.weight')), D, g(p + 'post_feedforward_layernorm.weight').data);
    x = x.map((r, i) => r + m[i]);
    blocks.push(x);
  }
  const logits = linear(rms(x, D, g('model.norm.weight').data), Tn, g('model.embed_tokens.weight')).map((z) => FCAP * Math.tanh(z / FCAP));
  return { blocks, logits };
}

function close(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; i++) {
    const e = Math.abs(got[i] - want[i]) / (1 + Math.abs(want[i]));
    assert.ok(e <= tol, `${what}: element ${i}: ${got[i]} vs ${want[i]} (relative error ${e})`);
  }
}

async function run(model: Llama, tokens: number[]): Promise<{ logits: Float32Array; layer1: Float32Array }> {
  const out = T.noGrad(() => T.tidy(() => {
    const r = model.forward(T.Tensor.from(Int32Array.from(tokens), [1, tokens.length], 'i32'), { capture: [1] });
    return [r.logits!.contiguous(), r.captured.get(1)!.contiguous()];
  }));
  const [l, h] = [(await out[0].data()) as Float32Array, (await out[1].data()) as Float32Array];
  out.forEach((t) => t.dispose());
  return { logits: l, layer1: h };
}

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
  m.w.setTrainable(true);
  const Tn = 8, tokens = ids.slice(0, Tn);
  const R = Float64Array.from({ length: Tn * V }, (_, i) => Math.sin(0.7 * i + 1));
  T.tidy(() => {
    const r = m.forward(T.Tensor.from(Int32Array.from(tokens), [1, Tn], 'i32'));
    T.sum(T.mul(r.logits!, T.Tensor.from(Float32Array.from(R), [1, Tn, V]))).backward();
  });
  const refLoss = (w: Host) => reference(w, tokens).logits.reduce((s, x, i) => s + x * R[i], 0);
  const coords: [string, number][] = [
    ['model.layers.0.self_attn.q_proj.weight', 17], ['model.layers.1.self_attn.k_proj.weight', 40], ['model.layers.2.self_attn.v_proj.weight', 9],
    ['model.layers.1.self_attn.o_proj.weight', 77], ['model.layers.0.post_attention_layernorm.weight', 2], ['model.layers.2.post_feedforward_layernorm.weight', 11],
    ['model.layers.1.mlp.up_proj.weight', 123], ['model.embed_tokens.weight', 7 * D + 3], ['model.norm.weight', 9],
  ];
  for (const [name, i] of coords) {
    const g = ((await m.w.get(name).grad!.data()) as Float32Array)[i];
    const eps = 1e-4, wp = new Map(W), wm = new Map(W);
    const bump = (d: number) => { const t = W.get(name)!; const c = t.data.slice(); c[i] += d; return { shape: t.shape, data: c }; };
    wp.set(name, bump(eps));
    wm.set(name, bump(-eps));
    const fd = (refLoss(wp) - refLoss(wm)) / (2 * eps);
    assert.ok(Math.abs(g - fd) <= 2e-3 * (1 + Math.abs(fd)), `d loss / d ${name}[${i}]: autograd ${g} vs float64 finite difference ${fd}`);
    assert.ok(Math.abs(fd) > 1e-3, `${name}[${i}]: the coordinate matters (fd ${fd})`);
  }
  for (const t of m.w.params()) t.grad?.dispose();
  m.w.dispose();
});

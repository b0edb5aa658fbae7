// Gemma (v1) on the Llama block: embeddings times sqrt(d), RMSNorm gains stored as (g - 1),
// GeGLU with the tanh GELU, tied head. Checked against a float64 forward written here from
// transformers' modeling_gemma (GemmaModel.forward, GemmaRMSNorm, GemmaMLP), not from
// src/nn/llama.ts. The NLA injection replaces the row after the embedding scale (the reference
// writes v' into inputs_embeds that already carry the scale), so v' reaches block 0 unscaled.
// Architectures nla does not implement are refused at load by name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseHfConfig, type LlamaConfig } from '../src/io/config.js';
import type { HostTensor } from '../src/io/host-tensor.js';
import { initLlamaHost, llamaConfig } from '../src/nn/init.js';
import { build, loadModel, saveHf } from '../src/nn/load.js';
import type { Llama } from '../src/nn/llama.js';
import * as T from '../src/tensor/index.js';
import { matmul, permute, unaryRef } from '../src/tensor/reference/core.js';
import { Nd } from '../src/tensor/reference/nd.js';
import { attention } from '../src/tensor/reference/attention.js';
import { rmsNorm, rope } from '../src/tensor/reference/nn.js';
import { gaussian, SeededRng } from '../src/util/rng.js';

const gemmaJson = { model_type: 'gemma', hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 4, vocab_size: 21, max_position_embeddings: 32, rms_norm_eps: 1e-6, rope_theta: 10000, hidden_act: 'gelu_pytorch_tanh' };
const cfg = parseHfConfig(gemmaJson, 'gemma/config.json').config as LlamaConfig;

function randomHost(seed: number): Map<string, HostTensor> {
  const host = initLlamaHost({ ...llamaConfig({ dim: 16, nLayers: 2, nHeads: 4, vocabSize: 21 }), nKvHeads: 2, hiddenDim: 24 }, seed);
  const n = gaussian(new SeededRng(seed + 1).fn());
  for (const t of host.values()) {
    const d = t.data as Float32Array;
    for (let i = 0; i < d.length; i++) d[i] = (t.shape.length === 1 ? 0.3 : 0.4) * n();
  }
  return host;
}

const nd = (h: HostTensor): Nd => Nd.from(h.shape, h.data);
const mm = (x: Nd, w: Nd): Nd => matmul(x, permute(w, [1, 0])); // x @ w^T (PyTorch Linear)

/** GemmaModel + tied head in float64: final residual and logits for one sequence. */
function reference(host: Map<string, HostTensor>, ids: number[], inject?: { pos: number; v: Float32Array }): { hidden: Nd; logits: Nd } {
  const c = cfg, d = c.dim, hd = d / c.nHeads, Tn = ids.length, w = (n: string) => nd(host.get(n)!);
  const gain = (n: string) => w(n).map((v) => 1 + v); // GemmaRMSNorm: x_normed * (1 + weight)
  const E = w('model.embed_tokens.weight');
  let x = new Nd([Tn, d]);
  ids.forEach((id, t) => { for (let i = 0; i < d; i++) x.data[t * d + i] = E.data[id * d + i] * Math.sqrt(d); });
  if (inject) for (let i = 0; i < d; i++) x.data[inject.pos * d + i] = inject.v[i];
  for (let l = 0; l < c.nLayers; l++) {
    const p = `model.layers.${l}.`;
    let h = rmsNorm(x, gain(p + 'input_layernorm.weight'), c.normEps);
    const heads = (n: string, H: number, r: boolean) => {
      const y = mm(h, w(p + `self_attn.${n}.weight`)).reshape([1, Tn, H, hd]);
      return permute(r ? rope(y, 0, c.ropeTheta, 'half') : y, [0, 2, 1, 3]);
    };
    const o = attention(heads('q_proj', c.nHeads, true), heads('k_proj', c.nKvHeads, true), heads('v_proj', c.nKvHeads, false), { causal: true }).out;
    const att = mm(permute(o, [0, 2, 1, 3]).reshape([Tn, d]), w(p + 'self_attn.o_proj.weight'));
    x = x.map((v, i) => v + att.data[i]);
    h = rmsNorm(x, gain(p + 'post_attention_layernorm.weight'), c.normEps);
    const g = mm(h, w(p + 'mlp.gate_proj.weight')).map(unaryRef.geluTanh), u = mm(h, w(p + 'mlp.up_proj.weight'));
    const m = mm(g.map((v, i) => v * u.data[i]), w(p + 'mlp.down_proj.weight'));
    x = x.map((v, i) => v + m.data[i]);
  }
  return { hidden: x, logits: mm(rmsNorm(x, gain('model.norm.weight'), c.normEps), E) };
}

function close(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; i++) {
    const e = Math.abs(got[i] - want[i]) / (1 + Math.abs(want[i]));
    assert.ok(e <= tol, `${what}: element ${i}: ${got[i]} vs ${want[i]} (relative error ${e})`);
  }
}

const ids = [2, 7, 19, 4, 11, 0];

async function run(model: Llama, inject?: { pos: number; v: Float32Array }): Promise<{ logits: Float32Array; hidden: Float32Array }> {
  const out = T.noGrad(() => T.tidy(() => {
    const r = model.forward(T.Tensor.from(Int32Array.from(ids), [1, ids.length], 'i32'), inject ? { inject: { positions: [inject.pos], vectors: T.Tensor.from(inject.v, [1, cfg.dim]) } } : {});
    return [r.logits!, r.hidden.contiguous()];
  }));
  const [l, h] = [(await out[0].data()) as Float32Array, (await out[1].data()) as Float32Array];
  out.forEach((t) => t.dispose());
  return { logits: l, hidden: h };
}

test('config.json with model_type gemma: sqrt(d) embedding scale, (1 + g) norms, GeGLU, tied head', () => {
  assert.equal(cfg.embedScale, 4);
  assert.equal(cfg.normOffset, 1);
  assert.equal(cfg.mlpAct, 'gelu_tanh');
  assert.equal(cfg.tieEmbeddings, true);
  assert.equal(cfg.qkvBias, false);
});

test('Gemma forward matches a float64 GemmaModel, with and without an injected vector (placed after the scale)', async () => {
  await T.initGpu();
  const host = randomHost(11);
  const model = build(cfg, new Map([...host].map(([k, t]) => [k, { ...t, data: (t.data as Float32Array).slice() }])), 'gemma') as Llama;
  const plain = await run(model);
  const want = reference(host, ids);
  close(plain.logits, want.logits.data, 2e-5, 'logits');
  const v = Float32Array.from({ length: cfg.dim }, (_, i) => (i % 3) - 1.5);
  const inj = await run(model, { pos: 2, v });
  close(inj.hidden, reference(host, ids, { pos: 2, v }).hidden.data, 2e-5, 'final residual with v injected at 2');
  // Had the vector been scaled like the embeddings, the result would be the reference's with 4v.
  const scaled = reference(host, ids, { pos: 2, v: v.map((x) => x * 4) }).hidden.data;
  assert.ok(inj.hidden.some((x, i) => Math.abs(x - scaled[i]) > 1e-3), 'the injected vector is not multiplied by the embedding scale');
  // Saved and loaded back as a Gemma directory: same config, same logits.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-gemma-'));
  await saveHf(model, dir);
  const loaded = await loadModel(dir);
  assert.deepEqual({ ...loaded.model.cfg }, { ...cfg });
  assert.deepEqual((await run(loaded.model as Llama)).logits, plain.logits);
  loaded.model.w.dispose();
  model.w.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('architectures nla does not implement are refused at load, by name', () => {
  for (const mt of ['qwen3', 'llama4', 'falcon']) { // gemma2, gemma3 / gemma3_text: tests/nn-gemma2.test.ts, nn-gemma3.test.ts
    assert.throws(() => parseHfConfig({ ...gemmaJson, model_type: mt }, 'x/config.json'), (e: Error) => {
      assert.ok(e.message.includes('x/config.json'), e.message);
      assert.ok(e.message.includes(`model_type="${mt}" is not supported`), e.message);
      return true;
    });
  }
  // A Gemma whose head_dim is not hidden_size / heads (Gemma-7B: 256 vs 192) is refused naming head_dim.
  assert.throws(() => parseHfConfig({ ...gemmaJson, head_dim: 8 }, 'x/config.json'), /head_dim=8 differs/);
});

// A model whose embedding (tied LM head) is bigger than one storage binding of this device while
// its block stays tiny: the shape of every real NLA subject (Qwen2.5-0.5B's embedding is 544 MB as
// f32 against lavapipe's 128 MiB binding limit). Logits, the residual stream and gradients are
// checked against a float64 forward written here (HF Qwen2/Llama: RMSNorm, rotate-half RoPE, GQA,
// q/k/v biases, SwiGLU, tied head), not taken from src/nn/llama.ts. Gradients are checked as
// directional derivatives: the engine's gradient dotted with a random direction against central
// differences of the float64 loss along it. The directions cover embedding rows in every binding
// chunk, at the chunk edges, rows used as inputs (gather path) and rows only the head reads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeBf16, encodeBf16 } from '../src/io/half.js';
import { llamaConfig } from '../src/nn/init.js';
import { Llama } from '../src/nn/llama.js';
import { Weights } from '../src/nn/weights.js';
import * as T from '../src/tensor/index.js';
import { bindingLimit } from '../src/tensor/binding.js';
import { gpu } from '../src/tensor/device.js';
import { matmul, permute } from '../src/tensor/reference/core.js';
import { Nd } from '../src/tensor/reference/nd.js';
import { attention } from '../src/tensor/reference/attention.js';
import { rope } from '../src/tensor/reference/nn.js';
import { gaussian, SeededRng } from '../src/util/rng.js';

const D = 1024, H = 8, KV = 2, HD = D / H, F = 64;
await T.initGpu();
// Vocabulary sized from the device so that even the bf16 embedding exceeds one binding.
const V = Math.ceil(bindingLimit() / (2 * D)) + 1000;
const cfg = llamaConfig({ dim: D, nLayers: 1, nHeads: H, nKvHeads: KV, vocabSize: V, hiddenDim: F, qkvBias: true, ropeTheta: 1e6, normEps: 1e-6 });
const rowsPerChunk = Math.floor((bindingLimit() - gpu().device.limits.minStorageBufferOffsetAlignment) / (D * 4));
// Inputs across every f32 chunk and at its edges; the targets are the inputs shifted.
const ids = [3, rowsPerChunk - 1, rowsPerChunk, V - 1, 2 * rowsPerChunk + 5, 17];
const targets = [...ids.slice(1), 40];
const headOnlyRows = [100, rowsPerChunk + 7, V - 2]; // read by the head only, never gathered

type Params = Map<string, { shape: number[]; data: Float64Array }>;

function randomParams(seed: number): Params {
  const n = gaussian(new SeededRng(seed).fn());
  const p: Params = new Map();
  const add = (name: string, shape: number[], std: number, mean = 0) => {
    const data = new Float64Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = mean + std * n();
    p.set(name, { shape, data });
  };
  const L = 'model.layers.0.';
  // Small enough that the softmax is not one-hot: every head row gets a gradient f32 can hold.
  add('model.embed_tokens.weight', [V, D], 0.05);
  add(L + 'input_layernorm.weight', [D], 0.1, 1);
  add(L + 'self_attn.q_proj.weight', [D, D], 0.04);
  add(L + 'self_attn.k_proj.weight', [KV * HD, D], 0.04);
  add(L + 'self_attn.v_proj.weight', [KV * HD, D], 0.04);
  add(L + 'self_attn.q_proj.bias', [D], 0.1);
  add(L + 'self_attn.k_proj.bias', [KV * HD], 0.1);
  add(L + 'self_attn.v_proj.bias', [KV * HD], 0.1);
  add(L + 'self_attn.o_proj.weight', [D, D], 0.04);
  add(L + 'post_attention_layernorm.weight', [D], 0.1, 1);
  add(L + 'mlp.gate_proj.weight', [F, D], 0.04);
  add(L + 'mlp.up_proj.weight', [F, D], 0.04);
  add(L + 'mlp.down_proj.weight', [D, F], 0.1);
  add('model.norm.weight', [D], 0.1, 1);
  return p;
}

/** The matrices stored 16-bit: what the model reads are their bf16 values, so the reference takes those. */
const isMatrix = (name: string) => name.endsWith('weight') && !name.includes('norm');
function roundedToBf16(p: Params): Params {
  const out: Params = new Map();
  for (const [k, v] of p) out.set(k, isMatrix(k) ? { shape: v.shape, data: Float64Array.from(decodeBf16(encodeBf16(Float32Array.from(v.data)))) } : v);
  return out;
}

function rms(x: Float64Array, rows: number, w: Float64Array): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let i = 0; i < D; i++) ss += x[r * D + i] ** 2;
    const s = 1 / Math.sqrt(ss / D + cfg.normEps);
    for (let i = 0; i < D; i++) y[r * D + i] = x[r * D + i] * s * w[i];
  }
  return y;
}
const lin = (x: Nd, w: { shape: number[]; data: Float64Array }, b?: { data: Float64Array }): Nd => {
  const y = matmul(x, permute(Nd.from(w.shape, w.data), [1, 0]));
  return b ? y.map((v, i) => v + b.data[i % b.data.length]) : y;
};

/** Float64 forward: residual after block 0, logits, and the mean cross-entropy on `targets`. */
function reference(p: Params, inject?: { pos: number; v: Float64Array }): { hidden: Float64Array; logits: Float64Array; loss: number } {
  const n = ids.length, w = (k: string) => p.get(k)!, L = 'model.layers.0.';
  const E = w('model.embed_tokens.weight').data;
  const x = new Float64Array(n * D);
  ids.forEach((id, t) => x.set(E.subarray(id * D, (id + 1) * D), t * D));
  if (inject) x.set(inject.v, inject.pos * D);
  const h = Nd.from([n, D], rms(x, n, w(L + 'input_layernorm.weight').data));
  const heads = (name: string, count: number, rotate: boolean) => {
    const y = lin(h, w(L + `self_attn.${name}.weight`), w(L + `self_attn.${name}.bias`)).reshape([1, n, count, HD]);
    return permute(rotate ? rope(y, 0, cfg.ropeTheta, 'half') : y, [0, 2, 1, 3]);
  };
  const o = attention(heads('q_proj', H, true), heads('k_proj', KV, true), heads('v_proj', KV, false), { causal: true }).out;
  const att = lin(permute(o, [0, 2, 1, 3]).reshape([n, D]), w(L + 'self_attn.o_proj.weight'));
  for (let i = 0; i < x.length; i++) x[i] += att.data[i];
  const h2 = Nd.from([n, D], rms(x, n, w(L + 'post_attention_layernorm.weight').data));
  const g = lin(h2, w(L + 'mlp.gate_proj.weight')), u = lin(h2, w(L + 'mlp.up_proj.weight'));
  const m = lin(g.map((v, i) => (v / (1 + Math.exp(-v))) * u.data[i]), w(L + 'mlp.down_proj.weight'));
  for (let i = 0; i < x.length; i++) x[i] += m.data[i];
  const hf = rms(x, n, w('model.norm.weight').data);
  const logits = new Float64Array(n * V);
  let loss = 0;
  for (let t = 0; t < n; t++) {
    let max = -Infinity;
    for (let v = 0; v < V; v++) {
      let s = 0;
      for (let i = 0, e = v * D, r = t * D; i < D; i++) s += hf[r + i] * E[e + i];
      logits[t * V + v] = s;
      if (s > max) max = s;
    }
    let z = 0;
    for (let v = 0; v < V; v++) z += Math.exp(logits[t * V + v] - max);
    loss += max + Math.log(z) - logits[t * V + targets[t]];
  }
  return { hidden: x, logits, loss: loss / n };
}

function buildModel(p: Params, dtype: 'f32' | 'bf16'): Llama {
  const w = new Weights();
  for (const [k, v] of p) {
    const dt = dtype === 'bf16' && isMatrix(k) ? 'bf16' : 'f32';
    const t = T.param(T.Tensor.from(Float32Array.from(v.data), v.shape, dt), k);
    t.requiresGrad = dt === 'f32';
    w.map.set(k, t);
  }
  w.validate(Llama.expectedWeights(cfg), 'big-vocab fixture');
  return new Llama(cfg, w);
}

function close(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let worst = 0, at = 0;
  for (let i = 0; i < got.length; i++) {
    const e = Math.abs(got[i] - want[i]) / (1 + Math.abs(want[i]));
    if (!(e <= worst)) [worst, at] = [e, i];
  }
  assert.ok(worst <= tol, `${what}: element ${at}: ${got[at]} vs ${want[at]} (relative error ${worst})`);
}

/** Forward (and backward of the mean cross-entropy) on the GPU. */
async function engine(model: Llama, inject?: { pos: number; v: Float64Array }) {
  const vec = inject ? T.param(T.Tensor.from(Float32Array.from(inject.v), [1, D]), 'injected') : undefined;
  const [logits, hidden, loss] = T.tidy(() => {
    const r = model.forward(T.Tensor.from(Int32Array.from(ids), [1, ids.length], 'i32'), vec ? { inject: { positions: [inject!.pos], vectors: vec } } : {});
    const l = T.crossEntropy(r.logits!.reshape([ids.length, V]), T.Tensor.from(Int32Array.from(targets)));
    l.backward();
    return [r.logits!, r.hidden.contiguous(), l];
  });
  const out = { logits: (await logits.data()) as Float32Array, hidden: (await hidden.data()) as Float32Array, loss: await loss.item(), injectedGrad: vec ? ((await vec.grad!.data()) as Float32Array) : undefined };
  [logits, hidden, loss].forEach((t) => t.dispose());
  vec?.grad?.dispose();
  vec?.dispose();
  return out;
}

/** Central difference of the float64 loss along `dir` (applied in place to the named parameters, then restored). */
function directional(p: Params, dir: Map<string, Map<number, number>>, eps: number, inject?: { pos: number; v: Float64Array; dir: Float64Array }): number {
  const shift = (s: number) => {
    for (const [k, entries] of dir) for (const [i, u] of entries) p.get(k)!.data[i] += s * u;
    if (inject) for (let i = 0; i < D; i++) inject.v[i] += s * inject.dir[i];
  };
  shift(eps);
  const up = reference(p, inject).loss;
  shift(-2 * eps);
  const down = reference(p, inject).loss;
  shift(eps);
  return (up - down) / (2 * eps);
}

test(`embedding and tied head beyond one binding (vocab ${V} x d ${D}, ${((V * D * 4) / 2 ** 20).toFixed(0)} MiB f32): logits, activations and gradients vs float64`, async () => {
  assert.ok(V * D * 2 > bindingLimit(), 'the fixture must exceed the binding limit even as bf16');
  const p = randomParams(1);
  const model = buildModel(p, 'f32');
  try {
    const want = reference(p);
    const got = await engine(model);
    close(got.hidden, want.hidden, 2e-4, 'residual after block 0');
    close(got.logits, want.logits, 2e-4, 'logits');
    assert.ok(Math.abs(got.loss - want.loss) < 1e-4 * (1 + want.loss), `loss ${got.loss} vs ${want.loss}`);
    // Directions: embedding rows (gathered, head-only, chunk edges), a block matrix, a norm gain.
    const rnd = gaussian(new SeededRng(7).fn());
    const grads = new Map<string, Float32Array>();
    for (const k of ['model.embed_tokens.weight', 'model.layers.0.self_attn.q_proj.weight', 'model.norm.weight']) grads.set(k, (await model.w.get(k).grad!.data()) as Float32Array);
    // Trial 0: gathered and head-only rows; 1: head-only rows alone; 2: those plus a block matrix and a gain.
    for (let trial = 0; trial < 3; trial++) {
      const rows = trial === 1 ? headOnlyRows : [...new Set([...ids, ...headOnlyRows])];
      const dir = new Map<string, Map<number, number>>();
      const emb = new Map<number, number>();
      for (const r of rows) for (let i = 0; i < D; i++) emb.set(r * D + i, rnd());
      dir.set('model.embed_tokens.weight', emb);
      if (trial === 2) {
        const q = new Map<number, number>();
        for (let i = 0; i < D * D; i += 37) q.set(i, rnd());
        dir.set('model.layers.0.self_attn.q_proj.weight', q);
        dir.set('model.norm.weight', new Map(Array.from({ length: D }, (_, i) => [i, rnd()] as [number, number])));
      }
      let dot = 0;
      for (const [k, entries] of dir) for (const [i, u] of entries) dot += grads.get(k)![i] * u;
      const fd = directional(p, dir, 1e-4);
      assert.ok(Math.abs(dot - fd) <= 2e-3 * Math.abs(fd) + 1e-5, `direction ${trial}: gradient . u = ${dot}, float64 central difference ${fd}`);
    }
    // Rows no input or target touches still get the head's gradient.
    const g = grads.get('model.embed_tokens.weight')!;
    assert.ok(g.subarray((V - 2) * D, (V - 1) * D).some((v) => v !== 0), 'the last chunk of the embedding received the head gradient');
  } finally {
    model.w.dispose();
  }
});

test(`bf16 weights beyond one binding stay 16-bit on the GPU: logits, activations and the gradient of an injected vector vs float64`, async () => {
  const p = roundedToBf16(randomParams(2));
  const model = buildModel(p, 'bf16');
  try {
    const E = model.w.get('model.embed_tokens.weight');
    assert.equal(E.dtype, 'bf16');
    assert.ok(E.buffer.size < V * D * 4 && E.buffer.size > bindingLimit(), `the bf16 embedding takes ${E.buffer.size} B`);
    const rnd = gaussian(new SeededRng(3).fn());
    const inject = { pos: 2, v: Float64Array.from({ length: D }, () => rnd()) };
    const want = reference(p, inject);
    const got = await engine(model, inject);
    close(got.hidden, want.hidden, 2e-4, 'residual after block 0 (bf16)');
    close(got.logits, want.logits, 2e-4, 'logits (bf16)');
    for (let trial = 0; trial < 2; trial++) {
      const dirv = Float64Array.from({ length: D }, () => rnd());
      let dot = 0;
      for (let i = 0; i < D; i++) dot += got.injectedGrad![i] * dirv[i];
      const fd = directional(p, new Map(), 1e-4, { ...inject, dir: dirv });
      assert.ok(Math.abs(dot - fd) <= 2e-3 * Math.abs(fd) + 1e-5, `direction ${trial}: gradient . u = ${dot}, float64 central difference ${fd}`);
    }
  } finally {
    model.w.dispose();
  }
});

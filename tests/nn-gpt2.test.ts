// GPT-2 (HF Conv1D layout) against a float64 reference forward written here from the paper /
// HF modeling_gpt2.py: LayerNorm, learned positions, GELU (tanh approximation), causal
// multi-head attention with a fused c_attn split q|k|v, tied head. Also: the KV-cache path
// equals the full-sequence path, HF safetensors + config.json round-trips to identical logits,
// and a tiny GPT-2 trains.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Gpt2Config } from '../src/io/config.js';
import type { HostTensor } from '../src/io/host-tensor.js';
import { DataLoader, TokenDataset } from '../src/nn/data.js';
import { Gpt2 } from '../src/nn/gpt2.js';
import { gpt2Config, initGpt2Host } from '../src/nn/init.js';
import { build, loadModel, saveHf } from '../src/nn/load.js';
import { Trainer } from '../src/nn/train.js';
import { Weights } from '../src/nn/weights.js';
import * as T from '../src/tensor/index.js';
import { gaussian, SeededRng } from '../src/util/rng.js';

// n_inner (40) deliberately not 4 * n_embd, and eps not the default, so both must be honoured.
const cfg: Gpt2Config = gpt2Config({ dim: 16, nLayers: 2, nHeads: 2, vocabSize: 23, maxSeqLen: 12, hiddenDim: 40, normEps: 1e-4 });

/** Random weights with every parameter non-trivial (norm gains and biases too), larger than init scale. */
function randomHost(seed: number): Map<string, HostTensor> {
  const host = initGpt2Host(cfg, seed);
  const n = gaussian(new SeededRng(seed + 1).fn());
  for (const [name, t] of host) {
    const d = t.data as Float32Array;
    if (/ln_(1|2|f)\.weight$/.test(name)) for (let i = 0; i < d.length; i++) d[i] = 1 + 0.3 * n();
    else if (name.endsWith('.bias')) for (let i = 0; i < d.length; i++) d[i] = 0.2 * n();
    else for (let i = 0; i < d.length; i++) d[i] = 0.35 * n();
  }
  return host;
}

// ---- float64 reference -------------------------------------------------------------------

type M = Float64Array; // row-major matrices
const f64 = (h: HostTensor): M => Float64Array.from(h.data);

/** x [n, a] @ w [a, b] + bias [b]: HF Conv1D. */
function conv1d(x: M, n: number, w: M, bias: M, a: number, b: number): M {
  const y = new Float64Array(n * b);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < b; j++) {
      let s = bias[j];
      for (let k = 0; k < a; k++) s += x[i * a + k] * w[k * b + j];
      y[i * b + j] = s;
    }
  }
  return y;
}

function layerNorm(x: M, n: number, d: number, g: M, b: M, eps: number): M {
  const y = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    let mu = 0, v = 0;
    for (let k = 0; k < d; k++) mu += x[i * d + k];
    mu /= d;
    for (let k = 0; k < d; k++) v += (x[i * d + k] - mu) ** 2;
    v /= d;
    const r = 1 / Math.sqrt(v + eps);
    for (let k = 0; k < d; k++) y[i * d + k] = (x[i * d + k] - mu) * r * g[k] + b[k];
  }
  return y;
}

const geluNew = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
/** erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), for HF's exact "gelu". */
function erf(x: number): number {
  const t = 1 / (1 + 0.3275911 * Math.abs(x));
  const y = 1 - t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))) * Math.exp(-x * x);
  return x < 0 ? -y : y;
}
const geluErf = (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2));

/** Logits [T, V] of one sequence, plus the residual stream after each block. */
function referenceForward(host: Map<string, HostTensor>, ids: number[], gelu = geluNew): { logits: M; resid: M[] } {
  const W = (k: string) => f64(host.get(k)!);
  const { dim: d, nHeads: H, hiddenDim: F, vocabSize: V, normEps: eps } = cfg;
  const hd = d / H, n = ids.length;
  const wte = W('transformer.wte.weight'), wpe = W('transformer.wpe.weight');
  let x = new Float64Array(n * d);
  for (let t = 0; t < n; t++) for (let k = 0; k < d; k++) x[t * d + k] = wte[ids[t] * d + k] + wpe[t * d + k];
  const resid: M[] = [];
  for (let l = 0; l < cfg.nLayers; l++) {
    const p = `transformer.h.${l}.`;
    const h1 = layerNorm(x, n, d, W(p + 'ln_1.weight'), W(p + 'ln_1.bias'), eps);
    const qkv = conv1d(h1, n, W(p + 'attn.c_attn.weight'), W(p + 'attn.c_attn.bias'), d, 3 * d);
    const att = new Float64Array(n * d);
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < n; i++) {
        const q = (j: number) => qkv[i * 3 * d + h * hd + j];
        const k = (t: number, j: number) => qkv[t * 3 * d + d + h * hd + j];
        const v = (t: number, j: number) => qkv[t * 3 * d + 2 * d + h * hd + j];
        const s = new Float64Array(i + 1);
        let m = -Infinity;
        for (let t = 0; t <= i; t++) {
          let dot = 0;
          for (let j = 0; j < hd; j++) dot += q(j) * k(t, j);
          s[t] = dot / Math.sqrt(hd);
          m = Math.max(m, s[t]);
        }
        let z = 0;
        for (let t = 0; t <= i; t++) z += s[t] = Math.exp(s[t] - m);
        for (let j = 0; j < hd; j++) {
          let o = 0;
          for (let t = 0; t <= i; t++) o += (s[t] / z) * v(t, j);
          att[i * d + h * hd + j] = o;
        }
      }
    }
    const a = conv1d(att, n, W(p + 'attn.c_proj.weight'), W(p + 'attn.c_proj.bias'), d, d);
    x = x.map((xv, i) => xv + a[i]);
    const h2 = layerNorm(x, n, d, W(p + 'ln_2.weight'), W(p + 'ln_2.bias'), eps);
    const f = conv1d(h2, n, W(p + 'mlp.c_fc.weight'), W(p + 'mlp.c_fc.bias'), d, F).map(gelu);
    const mo = conv1d(f, n, W(p + 'mlp.c_proj.weight'), W(p + 'mlp.c_proj.bias'), F, d);
    x = x.map((xv, i) => xv + mo[i]);
    resid.push(x);
  }
  const hf = layerNorm(x, n, d, W('transformer.ln_f.weight'), W('transformer.ln_f.bias'), eps);
  const logits = new Float64Array(n * V);
  for (let t = 0; t < n; t++) for (let v = 0; v < V; v++) {
    let s = 0;
    for (let k = 0; k < d; k++) s += hf[t * d + k] * wte[v * d + k];
    logits[t * V + v] = s;
  }
  return { logits, resid };
}

// ---- helpers -----------------------------------------------------------------------------

async function modelOf(host: Map<string, HostTensor>, c: Gpt2Config = cfg): Promise<Gpt2> {
  await T.initGpu();
  // A copy: Weights.fromHost uploads, the reference keeps reading the host arrays.
  const copy = new Map([...host].map(([k, t]) => [k, { ...t, data: (t.data as Float32Array).slice() }]));
  return build(c, copy, 'tiny-gpt2') as Gpt2;
}

async function logits(model: { forward: Gpt2['forward'] }, rows: number[][]): Promise<Float32Array> {
  const out = T.noGrad(() => T.tidy(() => model.forward(T.Tensor.from(Int32Array.from(rows.flat()), [rows.length, rows[0].length], 'i32')).logits!));
  const d = (await out.data()) as Float32Array;
  out.dispose();
  return d;
}

function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let worst = 0, at = 0;
  for (let i = 0; i < got.length; i++) {
    const e = Math.abs(got[i] - want[i]) / (1 + Math.abs(want[i]));
    if (!(e <= worst)) (worst = e), (at = i);
  }
  assert.ok(worst <= tol, `${what}: element ${at}: ${got[at]} vs ${want[at]} (relative error ${worst} > ${tol})`);
}

const seqs = [
  [3, 17, 4, 4, 22, 0, 9],
  [11, 1, 20, 7, 7, 13, 2],
];

// ---- tests -------------------------------------------------------------------------------

test('GPT-2 forward matches a float64 reference (LayerNorm, learned positions, GELU tanh, causal attention, tied head)', async () => {
  const host = randomHost(1);
  const model = await modelOf(host);
  const got = await logits(model, seqs);
  const V = cfg.vocabSize, n = seqs[0].length;
  seqs.forEach((ids, b) => assertClose(got.subarray(b * n * V, (b + 1) * n * V), referenceForward(host, ids).logits, 2e-5, `row ${b} logits`));
  // untilLayer returns the residual stream after that block (no final norm).
  const h0 = T.noGrad(() => T.tidy(() => model.forward(T.Tensor.from(Int32Array.from(seqs[0]), [1, n], 'i32'), { untilLayer: 0 }).hidden.contiguous()));
  assertClose((await h0.data()) as Float32Array, referenceForward(host, seqs[0]).resid[0], 2e-5, 'residual after block 0');
  h0.dispose();
  model.w.dispose();
});

test('GPT-2 KV-cache decoding equals the full-sequence forward (one token at a time and in chunks)', async () => {
  const model = await modelOf(randomHost(2));
  const V = cfg.vocabSize, n = seqs[0].length;
  const full = await logits(model, seqs);
  for (const chunks of [[1, 1, 1, 1, 1, 1, 1], [3, 4], [2, 1, 4]]) {
    const cache = model.newCache(2, n);
    let pos = 0;
    for (const c of chunks) {
      const part = await logits({ forward: (x, o) => model.forward(x, { ...o, cache }) }, seqs.map((s) => s.slice(pos, pos + c)));
      for (let b = 0; b < 2; b++) {
        for (let t = 0; t < c; t++) {
          const want = full.subarray((b * n + pos + t) * V, (b * n + pos + t + 1) * V);
          assertClose(part.subarray((b * c + t) * V, (b * c + t + 1) * V), want, 1e-5, `chunks ${chunks}: row ${b} position ${pos + t}`);
        }
      }
      pos += c;
    }
    assert.equal(cache.length, n);
    cache.dispose();
  }
  // Positions beyond n_positions are refused, naming the limit.
  const cache = model.newCache(1, cfg.maxSeqLen);
  await logits({ forward: (x, o) => model.forward(x, { ...o, cache }) }, [Array(cfg.maxSeqLen).fill(1)]);
  assert.throws(() => T.noGrad(() => T.tidy(() => model.forward(T.Tensor.from(Int32Array.of(1), [1, 1], 'i32'), { cache }))), /exceed|cache size/);
  cache.dispose();
  model.w.dispose();
});

test('GPT-2 -> HF safetensors + config.json -> loadModel gives identical logits', async () => {
  const model = await modelOf(randomHost(3));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-gpt2-'));
  await saveHf(model, dir);
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  assert.equal(json.model_type, 'gpt2');
  assert.equal(json.n_inner, 40);
  assert.equal(json.layer_norm_epsilon, 1e-4);
  const loaded = await loadModel(dir);
  assert.ok(loaded.model instanceof Gpt2);
  assert.deepEqual({ ...loaded.model.cfg }, { ...cfg });
  const a = await logits(model, seqs), b = await logits(loaded.model, seqs);
  assert.deepEqual(b, a);
  model.w.dispose();
  loaded.model.w.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('activation_function "gelu" (exact erf) is honoured: saved, reloaded, and equal to the float64 reference, not to the tanh one', async () => {
  const host = randomHost(6);
  const model = await modelOf(host, { ...cfg, gelu: 'erf' });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-gpt2-erf-'));
  await saveHf(model, dir);
  assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')).activation_function, 'gelu');
  const loaded = await loadModel(dir);
  const got = await logits(loaded.model, seqs);
  const V = cfg.vocabSize, n = seqs[0].length;
  seqs.forEach((ids, b) => {
    const row = got.subarray(b * n * V, (b + 1) * n * V);
    assertClose(row, referenceForward(host, ids, geluErf).logits, 2e-5, `row ${b} logits (erf)`);
    const tanhRef = referenceForward(host, ids).logits;
    const apart = Math.max(...Array.from(row, (v, i) => Math.abs(v - tanhRef[i]) / (1 + Math.abs(tanhRef[i]))));
    assert.ok(apart > 10 * 2e-5, `the tanh GELU must fail this check by far (relative error ${apart})`);
  });
  model.w.dispose();
  loaded.model.w.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('GPT-2 weights without the "transformer." prefix (GPT2Model exports) load too', async () => {
  const host = randomHost(4);
  const bare = new Map([...host].map(([k, t]) => [k.replace(/^transformer\./, ''), { ...t, data: (t.data as Float32Array).slice() }]));
  const model = build(cfg, bare, 'bare') as Gpt2;
  const ref = await modelOf(host);
  assert.deepEqual(await logits(model, seqs), await logits(ref, seqs));
  model.w.dispose();
  ref.w.dispose();
});

test('a tiny GPT-2 trains (gradients flow through every parameter and the loss falls)', async () => {
  await T.initGpu();
  const model = new Gpt2(cfg, Weights.fromHost(initGpt2Host(cfg, 5)));
  const docs = Array.from({ length: 30 }, (_, i) => Array.from({ length: 11 }, (_, t) => 1 + ((i + t) % 22)));
  const data = new DataLoader(new TokenDataset(docs, cfg.vocabSize), { batchSize: 8, seqLen: 10, seed: 1 });
  const tr = new Trainer(model, data, { steps: 60, lr: 1e-2, warmupSteps: 5, logEvery: 60 });
  // One step by hand: every parameter receives a gradient.
  T.tidy(() => {
    const b = data.next();
    const { logits: lg } = model.forward(T.Tensor.from(b.inputs, [b.B, b.T], 'i32'));
    T.crossEntropy(lg!.reshape([b.B * b.T, cfg.vocabSize]), T.Tensor.from(b.targets, [b.B * b.T], 'i32')).backward();
  });
  for (const [name, p] of model.w.map) assert.ok(p.grad, `no gradient for ${name}`);
  tr.opt.zeroGrad();
  const res = await tr.run();
  const first = res.losses[0].loss, last = res.losses[res.losses.length - 1].loss;
  assert.ok(first > 2.5 && last < 1.0, `loss ${first} -> ${last}`);
  tr.dispose();
  model.w.dispose();
});

// A float64 Gemma 2 / Gemma 3 text forward written from transformers' modeling_gemma2 and
// modeling_gemma3 (not from src/nn/llama.ts), with the helpers the Gemma tests share: bf16-exact
// seeded weights under transformers' names, a checkpoint writer, and nla's forward to compare.
// Differences between the two: q/k RMSNorm (Gemma 3), which layers slide and their RoPE, the
// attention scalar, and the soft-caps (Gemma 2).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeSafetensors, type TensorToSave } from '../src/io/safetensors.js';
import type { Llama } from '../src/nn/llama.js';
import * as T from '../src/tensor/index.js';
import { gaussian, SeededRng } from '../src/util/rng.js';

export interface GemmaDims { D: number; H: number; HKV: number; HD: number; FF: number; V: number; L: number }

/** What differs between the architectures, per layer where it matters. */
export interface GemmaSpec extends GemmaDims {
  window: number;
  sliding: (layer: number) => boolean;
  /** RoPE base and linear factor of a layer. */
  rope: (layer: number) => [number, number];
  qkNorm: boolean;
  /** query_pre_attn_scalar: scores are scaled by its -1/2 power. */
  scalar: number;
  attnCap?: number;
  finalCap?: number;
}

export type Host = Map<string, { shape: number[]; data: Float64Array }>;

/** bf16 value of x (round to nearest even), so the file's bf16 weights hold exactly these values. */
export function bf16(x: number): number {
  const u = new Uint32Array(new Float32Array([x]).buffer);
  u[0] = (u[0] + 0x7fff + ((u[0] >> 16) & 1)) & 0xffff0000;
  return new Float32Array(u.buffer)[0];
}

/** Seeded weights of Gemma{2,3}ForCausalLM's names and shapes (bf16-exact values). */
export function gemmaWeights(seed: number, s: GemmaDims & { qkNorm: boolean }): Host {
  const { D, H, HKV, HD, FF, V, L } = s;
  const n = gaussian(new SeededRng(seed).fn());
  const m: Host = new Map();
  const add = (name: string, shape: number[], sd: number) => m.set(name, { shape, data: Float64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => bf16(sd * n())) });
  add('model.embed_tokens.weight', [V, D], 0.5);
  add('model.norm.weight', [D], 0.3);
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}.`;
    for (const nm of ['input_layernorm', 'post_attention_layernorm', 'pre_feedforward_layernorm', 'post_feedforward_layernorm']) add(p + nm + '.weight', [D], 0.3);
    add(p + 'self_attn.q_proj.weight', [H * HD, D], 0.3);
    add(p + 'self_attn.k_proj.weight', [HKV * HD, D], 0.3);
    add(p + 'self_attn.v_proj.weight', [HKV * HD, D], 0.3);
    add(p + 'self_attn.o_proj.weight', [D, H * HD], 0.3);
    if (s.qkNorm) {
      add(p + 'self_attn.q_norm.weight', [HD], 0.3);
      add(p + 'self_attn.k_norm.weight', [HD], 0.3);
    }
    add(p + 'mlp.gate_proj.weight', [FF, D], 0.3);
    add(p + 'mlp.up_proj.weight', [FF, D], 0.3);
    add(p + 'mlp.down_proj.weight', [D, FF], 0.3);
  }
  return m;
}

/** config.json and a bf16 model.safetensors of `tensors` (names through `rename`, plus `extra`) in root/name. */
export function writeGemmaDir(root: string, name: string, config: unknown, tensors: Host, rename = (k: string) => k, extra: Record<string, TensorToSave> = {}): string {
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  const out: Record<string, TensorToSave> = { ...extra };
  for (const [k, t] of tensors) out[rename(k)] = { dtype: 'f32', shape: t.shape, data: Float32Array.from(t.data), saveAs: 'bf16' };
  writeSafetensors(path.join(dir, 'model.safetensors'), out);
  return dir;
}

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

/** Gemma{2,3}RMSNorm over rows of width n: x / sqrt(mean(x^2) + eps) * (1 + w). */
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

/** rotate_half RoPE on rows [T, heads, hd] in place: inv_freq = 1 / base^(2k/hd) (float32, as torch), / factor. */
function ropeInPlace(x: Float64Array, Tn: number, heads: number, hd: number, base: number, factor: number): void {
  const half = hd / 2;
  for (let t = 0; t < Tn; t++) for (let h = 0; h < heads; h++) for (let k = 0; k < half; k++) {
    const inv = Math.fround(Math.fround(1 / Math.fround(base ** Math.fround((2 * k) / hd))) / factor);
    const a = Math.fround(t * inv);
    const o = (t * heads + h) * hd;
    const [x1, x2] = [x[o + k], x[o + k + half]];
    x[o + k] = x1 * Math.cos(a) - x2 * Math.sin(a);
    x[o + k + half] = x2 * Math.cos(a) + x1 * Math.sin(a);
  }
}

/** Gemma{2,3}ForCausalLM forward for one sequence: residual after each block, and (capped) logits. */
export function gemmaReference(s: GemmaSpec, w: Host, tokens: number[], inject?: { pos: number; v: Float64Array }): { blocks: Float64Array[]; logits: Float64Array } {
  const { D, H, HKV, HD, L } = s;
  const Tn = tokens.length, g = (n: string) => w.get(n)!;
  const E = g('model.embed_tokens.weight').data;
  const scale = bf16(Math.sqrt(D)); // the normalizer / embed_scale in the weights' dtype: bf16
  let x = new Float64Array(Tn * D);
  tokens.forEach((id, t) => { for (let i = 0; i < D; i++) x[t * D + i] = E[id * D + i] * scale; });
  if (inject) for (let i = 0; i < D; i++) x[inject.pos * D + i] = inject.v[i];
  const blocks: Float64Array[] = [];
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}.`;
    const sliding = s.sliding(l);
    const h = rms(x, D, g(p + 'input_layernorm.weight').data);
    let q = linear(h, Tn, g(p + 'self_attn.q_proj.weight'));
    let k = linear(h, Tn, g(p + 'self_attn.k_proj.weight'));
    if (s.qkNorm) {
      q = rms(q, HD, g(p + 'self_attn.q_norm.weight').data);
      k = rms(k, HD, g(p + 'self_attn.k_norm.weight').data);
    }
    const v = linear(h, Tn, g(p + 'self_attn.v_proj.weight'));
    const [base, factor] = s.rope(l);
    ropeInPlace(q, Tn, H, HD, base, factor);
    ropeInPlace(k, Tn, HKV, HD, base, factor);
    const att = new Float64Array(Tn * H * HD);
    for (let hh = 0; hh < H; hh++) {
      const kh = Math.floor(hh / (H / HKV));
      for (let i = 0; i < Tn; i++) {
        const sc: number[] = [];
        for (let j = 0; j <= i; j++) {
          if (sliding && j <= i - s.window) { sc.push(-Infinity); continue; } // sliding_window_overlay: j > i - window
          let dot = 0;
          for (let d = 0; d < HD; d++) dot += q[(i * H + hh) * HD + d] * k[(j * HKV + kh) * HD + d];
          const z = dot * s.scalar ** -0.5;
          sc.push(s.attnCap ? s.attnCap * Math.tanh(z / s.attnCap) : z); // scaled, then capped, then masked
        }
        const mx = Math.max(...sc), e = sc.map((z) => Math.exp(z - mx)), z = e.reduce((a, b) => a + b, 0);
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
  const logits = linear(rms(x, D, g('model.norm.weight').data), Tn, g('model.embed_tokens.weight'));
  return { blocks, logits: s.finalCap ? logits.map((z) => s.finalCap! * Math.tanh(z / s.finalCap!)) : logits };
}

/** Elementwise |got - want| / (1 + |want|) <= tol, naming the first element that is not. */
export function close(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; i++) {
    const e = Math.abs(got[i] - want[i]) / (1 + Math.abs(want[i]));
    assert.ok(e <= tol, `${what}: element ${i}: ${got[i]} vs ${want[i]} (relative error ${e})`);
  }
}

/** nla's forward of one sequence: logits and the residual after block 1 (optionally with a vector injected). */
export async function runGemma(model: Llama, tokens: number[], opts: { inject?: { pos: number; v: Float64Array } } = {}): Promise<{ logits: Float32Array; layer1: Float32Array }> {
  const D = model.cfg.dim;
  const out = T.noGrad(() => T.tidy(() => {
    const r = model.forward(T.Tensor.from(Int32Array.from(tokens), [1, tokens.length], 'i32'), {
      capture: [1],
      ...(opts.inject ? { inject: { positions: [opts.inject.pos], vectors: T.Tensor.from(Float32Array.from(opts.inject.v), [1, D]) } } : {}),
    });
    return [r.logits!.contiguous(), r.captured.get(1)!.contiguous()];
  }));
  const [l, h] = [(await out[0].data()) as Float32Array, (await out[1].data()) as Float32Array];
  out.forEach((t) => t.dispose());
  return { logits: l, layer1: h };
}

/**
 * Autograd through nla's model (trainable, as the AR and AV train) against central finite
 * differences of the float64 reference, for loss = sum(logits * R) with fixed R, at `coords`.
 */
export async function gradientsMatchReference(m: Llama, s: GemmaSpec, W: Host, tokens: number[], coords: [string, number][]): Promise<void> {
  m.w.setTrainable(true);
  const Tn = tokens.length;
  const R = Float64Array.from({ length: Tn * s.V }, (_, i) => Math.sin(0.7 * i + 1));
  T.tidy(() => {
    const r = m.forward(T.Tensor.from(Int32Array.from(tokens), [1, Tn], 'i32'));
    T.sum(T.mul(r.logits!, T.Tensor.from(Float32Array.from(R), [1, Tn, s.V]))).backward();
  });
  const refLoss = (w: Host) => gemmaReference(s, w, tokens).logits.reduce((a, x, i) => a + x * R[i], 0);
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
}

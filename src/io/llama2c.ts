// llama2.c checkpoints, legacy "version 0" format (what run.c reads and what karpathy/tinyllamas
// ships): seven little-endian int32
//   dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
// (vocab_size < 0 means the classifier is NOT shared with the embedding), then f32 tensors,
// each stacked over layers, in this order:
//   token_embedding [vocab, dim]; rms_att [L, dim]; wq [L, dim, dim]; wk [L, kv_dim, dim];
//   wv [L, kv_dim, dim]; wo [L, dim, dim]; rms_ffn [L, dim]; w1 [L, hidden, dim];
//   w2 [L, dim, hidden]; w3 [L, hidden, dim]; rms_final [dim];
//   freq_cis_real, freq_cis_imag [seq_len, head_size/2] (unused by run.c: skipped);
//   wcls [vocab, dim] only when unshared.
// We hand out HF-style per-layer names so the model code has one naming scheme for every
// source; q/k rows stay in llama2.c's interleaved RoPE order (config.ropeLayout says so).
import * as fs from 'node:fs';
import { readFully, writeFileAtomic } from './atomic-write.js';
import type { LlamaConfig } from './config.js';
import { FormatError } from './errors.js';
import { assertLittleEndianHost, numel, type HostTensor } from './host-tensor.js';
import { permuteRopeTensor } from './rope-permute.js';

export interface Llama2cCheckpoint {
  config: LlamaConfig;
  weights: Map<string, HostTensor>;
  /** Always 'interleaved' for llama2.c files (mirrors config.ropeLayout). */
  ropeLayout: 'interleaved';
}

const HEADER_BYTES = 28;
const MAGIC_V1 = 0x616b3432; // "ak42": llama2.c's newer export versions, which we do not read
const FIELDS = ['dim', 'hidden_dim', 'n_layers', 'n_heads', 'n_kv_heads', 'vocab_size', 'seq_len'] as const;
// Upper bounds well above any real llama2.c model; they catch a garbage header (e.g. a file of
// another format) before we compute sizes or allocate from it.
const LIMITS: Record<(typeof FIELDS)[number], number> = {
  dim: 1 << 16, hidden_dim: 1 << 18, n_layers: 1024, n_heads: 1024, n_kv_heads: 1024, vocab_size: 1 << 22, seq_len: 1 << 22,
};

/** One slot in file order: [name template, per-layer shape] ('{i}' = layer index). */
type Slot = { names: string[]; shape: number[]; stacked: boolean };

function layout(c: LlamaConfig): { slots: Slot[]; freqFloats: number; wclsShape?: number[] } {
  const { dim, hiddenDim: hid, nLayers: L, nHeads, nKvHeads, vocabSize: V, maxSeqLen } = c;
  const kvDim = (dim / nHeads) * nKvHeads;
  const per = (tmpl: string): string[] => Array.from({ length: L }, (_, i) => `model.layers.${i}.${tmpl}`);
  const slots: Slot[] = [
    { names: ['model.embed_tokens.weight'], shape: [V, dim], stacked: false },
    { names: per('input_layernorm.weight'), shape: [dim], stacked: true },
    { names: per('self_attn.q_proj.weight'), shape: [dim, dim], stacked: true },
    { names: per('self_attn.k_proj.weight'), shape: [kvDim, dim], stacked: true },
    { names: per('self_attn.v_proj.weight'), shape: [kvDim, dim], stacked: true },
    { names: per('self_attn.o_proj.weight'), shape: [dim, dim], stacked: true },
    { names: per('post_attention_layernorm.weight'), shape: [dim], stacked: true },
    { names: per('mlp.gate_proj.weight'), shape: [hid, dim], stacked: true }, // w1
    { names: per('mlp.down_proj.weight'), shape: [dim, hid], stacked: true }, // w2
    { names: per('mlp.up_proj.weight'), shape: [hid, dim], stacked: true }, // w3
    { names: ['model.norm.weight'], shape: [dim], stacked: false },
  ];
  const freqFloats = maxSeqLen * (dim / nHeads); // real + imag, each seq_len * head_size/2
  return { slots, freqFloats, ...(c.tieEmbeddings ? {} : { wclsShape: [V, dim] }) };
}

function expectedBytes(c: LlamaConfig): number {
  const { slots, freqFloats, wclsShape } = layout(c);
  let floats = freqFloats + (wclsShape ? numel(wclsShape) : 0);
  for (const s of slots) floats += s.names.length * numel(s.shape);
  return HEADER_BYTES + 4 * floats;
}

/** Validate the 7 header ints and turn them into a config. */
export function parseLlama2cHeader(header: Int32Array, file: string): LlamaConfig {
  if (header[0] === MAGIC_V1) {
    throw new FormatError(file, 'magic', 'starts with magic "ak42" (llama2.c export version 1/2); only the legacy version-0 format is supported (export with --version 0)');
  }
  const h = Object.fromEntries(FIELDS.map((f, i) => [f, header[i]!])) as Record<(typeof FIELDS)[number], number>;
  for (const f of FIELDS) {
    const v = f === 'vocab_size' ? Math.abs(h[f]) : h[f];
    if (v <= 0 || v > LIMITS[f]) {
      throw new FormatError(file, f, `header says ${f}=${h[f]}, which is absurd (expected 1..${LIMITS[f]}); not a llama2.c checkpoint?`);
    }
  }
  if (h.dim % h.n_heads !== 0) throw new FormatError(file, 'n_heads', `header says dim=${h.dim} but n_heads=${h.n_heads} does not divide it`);
  if (h.n_heads % h.n_kv_heads !== 0) throw new FormatError(file, 'n_kv_heads', `header says n_kv_heads=${h.n_kv_heads} which does not divide n_heads=${h.n_heads}`);
  if ((h.dim / h.n_heads) % 2 !== 0) throw new FormatError(file, 'n_heads', `head size dim/n_heads=${h.dim / h.n_heads} is odd; RoPE needs pairs`);
  return {
    arch: 'llama',
    dim: h.dim,
    hiddenDim: h.hidden_dim,
    nLayers: h.n_layers,
    nHeads: h.n_heads,
    nKvHeads: h.n_kv_heads,
    vocabSize: Math.abs(h.vocab_size),
    maxSeqLen: h.seq_len,
    normEps: 1e-5, // run.c hard-codes these three
    ropeTheta: 10000,
    ropeLayout: 'interleaved',
    tieEmbeddings: h.vocab_size > 0,
    qkvBias: false,
    bosId: 1,
    eosId: 2,
  };
}

/** Read a llama2.c version-0 checkpoint. */
export function readLlama2c(file: string): Llama2cCheckpoint {
  assertLittleEndianHost();
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    if (size < HEADER_BYTES) throw new FormatError(file, 'header', `file has ${size} bytes, too short for the ${HEADER_BYTES}-byte header`);
    const header = new Int32Array(7);
    readFully(fd, new Uint8Array(header.buffer), 0, file);
    const config = parseLlama2cHeader(header, file);
    const expected = expectedBytes(config);
    if (size !== expected) {
      throw new FormatError(file, 'file_size', `header says dim=${config.dim}, hidden_dim=${config.hiddenDim}, n_layers=${config.nLayers}, n_heads=${config.nHeads}, n_kv_heads=${config.nKvHeads}, vocab_size=${header[5]}, seq_len=${config.maxSeqLen} but file has ${size} bytes, expected ${expected}${size < expected ? ' (truncated?)' : ''}`);
    }
    const weights = new Map<string, HostTensor>();
    let pos = HEADER_BYTES;
    const readTensor = (shape: number[]): HostTensor => {
      const data = new Float32Array(numel(shape));
      readFully(fd, new Uint8Array(data.buffer), pos, file);
      pos += data.byteLength;
      return { dtype: 'f32', shape: [...shape], data };
    };
    const { slots, freqFloats, wclsShape } = layout(config);
    for (const s of slots) for (const name of s.names) weights.set(name, readTensor(s.shape));
    pos += 4 * freqFloats;
    if (wclsShape) weights.set('lm_head.weight', readTensor(wclsShape));
    return { config, weights, ropeLayout: 'interleaved' };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Write a llama2.c version-0 checkpoint (readable by run.c). Weights use the HF-style names of
 * readLlama2c; if `config.ropeLayout` is 'half' the q/k rows are permuted back to interleaved.
 */
export function writeLlama2c(file: string, config: LlamaConfig, weights: Map<string, HostTensor> | Record<string, HostTensor>): void {
  assertLittleEndianHost();
  if (config.qkvBias) throw new Error(`writeLlama2c ${file}: llama2.c has no q/k/v biases (qkvBias=true)`);
  const get = (name: string): HostTensor | undefined => (weights instanceof Map ? weights.get(name) : weights[name]);
  const header = Int32Array.from([config.dim, config.hiddenDim, config.nLayers, config.nHeads, config.nKvHeads, config.tieEmbeddings ? config.vocabSize : -config.vocabSize, config.maxSeqLen]);
  parseLlama2cHeader(header, file); // same sanity rules as reading
  const { slots, wclsShape } = layout(config);
  const take = (name: string, shape: number[]): Uint8Array => {
    let t = get(name);
    if (!t) throw new Error(`writeLlama2c ${file}: missing tensor "${name}"`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new Error(`writeLlama2c ${file}: tensor "${name}" has shape [${t.shape}], expected [${shape}]`);
    }
    if (!(t.data instanceof Float32Array)) throw new Error(`writeLlama2c ${file}: tensor "${name}" is not float`);
    if (config.ropeLayout === 'half' && /self_attn\.[qk]_proj\.weight$/.test(name)) {
      t = permuteRopeTensor(t, name.includes('q_proj') ? config.nHeads : config.nKvHeads, 'interleaved');
    }
    return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  };
  function* chunks(): Generator<Uint8Array> {
    yield new Uint8Array(header.buffer);
    for (const s of slots) for (const name of s.names) yield take(name, s.shape);
    const [re, im] = freqCis(config);
    yield new Uint8Array(re.buffer);
    yield new Uint8Array(im.buffer);
    if (wclsShape) yield take('lm_head.weight', wclsShape);
  }
  writeFileAtomic(file, chunks());
}

/** The legacy freq_cis tables, computed in f32 like llama2.c's export (run.c ignores them). */
function freqCis(c: LlamaConfig): [Float32Array, Float32Array] {
  const headSize = c.dim / c.nHeads;
  const half = headSize / 2;
  const re = new Float32Array(c.maxSeqLen * half);
  const im = new Float32Array(c.maxSeqLen * half);
  for (let i = 0; i < half; i++) {
    const freq = Math.fround(1 / Math.fround(Math.pow(c.ropeTheta, Math.fround((2 * i) / headSize))));
    for (let t = 0; t < c.maxSeqLen; t++) {
      const a = Math.fround(t * freq);
      re[t * half + i] = Math.cos(a);
      im[t * half + i] = Math.sin(a);
    }
  }
  return [re, im];
}


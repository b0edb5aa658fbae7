// A real-size model with seeded random weights: Qwen2.5-0.5B's shapes (24 blocks, d 896, 14
// heads / 2 KV heads of 64, MLP 4864, q/k/v biases, vocab 151,936, tied embeddings, RoPE theta
// 1e6, RMS eps 1e-6) written as a bf16 model.safetensors + config.json + a byte-level
// tokenizer.json padded to the vocabulary, so every nla command runs on it without a download.
// Weights are streamed to the file tensor by tensor, chunk by chunk: writing never holds more
// than a few MB of the ~1 GB checkpoint. Matrices ~ normal(0, std) (o_proj and down_proj scaled
// by 1/sqrt(2 * blocks), as src/nn/init.ts), biases ~ normal(0, std), norm gains 1 + normal(0,
// 0.05): activations stay O(1) and the greedy choice is rarely a near tie.
//
// Run: node --import tsx scripts/large-model.ts [--out DIR] [--seed 0] [--std 0.02] [--shape qwen2.5-0.5b]
// (default DIR: <cache>/models/<shape>-seed<seed>, cache = $NLA_CACHE or ~/.cache/nla). Never commit the output.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { writeHfConfig, type LlamaConfig } from '../src/io/config.js';
import { encodeBf16 } from '../src/io/half.js';
import { BYTE_TO_CHAR } from '../src/io/hf-pretokenize.js';
import { defaultCacheDir } from '../src/io/model-files.js';
import { llamaConfig } from '../src/nn/init.js';
import { Llama } from '../src/nn/llama.js';

/** Shapes by name. Qwen2.5-0.5B's are from its config.json (max_position_embeddings 32768). */
export const SHAPES: Record<string, () => LlamaConfig> = {
  'qwen2.5-0.5b': () =>
    llamaConfig({
      modelType: 'qwen2', dim: 896, nLayers: 24, nHeads: 14, nKvHeads: 2, hiddenDim: 4864, vocabSize: 151_936,
      qkvBias: true, tieEmbeddings: true, ropeTheta: 1e6, normEps: 1e-6, maxSeqLen: 32_768, bosId: 151_643, eosId: 151_643,
    }),
  // Qwen2.5-0.5B's 24 blocks with a 32,768 vocabulary: every tensor fits one storage binding
  // (embedding 112 MiB as f32), so loading and the blocks can be measured before the engine
  // splits bindings; 387M parameters, 739 MiB as bf16.
  'qwen2.5-0.5b-v32k': () => ({ ...SHAPES['qwen2.5-0.5b']!(), vocabSize: 32_768, bosId: 32_767, eosId: 32_767 }),
  // The same architecture at a size where everything fits one binding: checks the check itself.
  'qwen2-small': () =>
    llamaConfig({
      modelType: 'qwen2', dim: 128, nLayers: 12, nHeads: 4, nKvHeads: 2, hiddenDim: 352, vocabSize: 4096,
      qkvBias: true, tieEmbeddings: true, ropeTheta: 1e6, normEps: 1e-6, maxSeqLen: 1024, bosId: 4095, eosId: 4095,
    }),
};

export function shapeConfig(name: string): LlamaConfig {
  const f = SHAPES[name];
  if (!f) throw new Error(`unknown shape "${name}" (known: ${Object.keys(SHAPES).join(', ')})`);
  return f();
}

export interface SyntheticOptions {
  seed?: number;
  std?: number;
}

/** Where the seeded model of a shape is kept by default (the cache; never the repository). */
export function defaultLargeDir(shape: string, seed = 0): string {
  return path.join(defaultCacheDir(), 'models', `${shape}-seed${seed}`);
}

/**
 * Fill `out` with normal(mean, std) values from a mulberry32 stream (Box-Muller, both halves
 * used). Continues from `state` and returns the new state, so a tensor can be made in chunks.
 */
function fillNormal(out: Float32Array, state: number, mean: number, std: number): number {
  let s = state >>> 0;
  const u = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296; // in (0, 1): log() stays finite
  };
  for (let i = 0; i < out.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(u())), a = 2 * Math.PI * u();
    out[i] = mean + std * r * Math.cos(a);
    if (i + 1 < out.length) out[i + 1] = mean + std * r * Math.sin(a);
  }
  return s;
}

/** mean and std of a tensor of the init recipe above. */
function recipe(name: string, cfg: LlamaConfig, std: number): { mean: number; std: number } {
  if (name.endsWith('norm.weight')) return { mean: 1, std: 0.05 };
  if (name.endsWith('o_proj.weight') || name.endsWith('down_proj.weight')) return { mean: 0, std: std / Math.sqrt(2 * cfg.nLayers) };
  return { mean: 0, std };
}

const CHUNK = 1 << 22; // elements generated and written at a time (even, so Box-Muller pairs align)

/** Write model.safetensors (bf16), config.json and tokenizer.json of `cfg` into `dir`. */
export function writeSyntheticModel(dir: string, cfg: LlamaConfig, opts: SyntheticOptions = {}): { file: string; bytes: number; params: number } {
  const seed = opts.seed ?? 0, std = opts.std ?? 0.02;
  fs.mkdirSync(dir, { recursive: true });
  const shapes = [...Llama.expectedWeights(cfg)];
  const header: Record<string, unknown> = { __metadata__: { format: 'pt', nla_synthetic: JSON.stringify({ seed, std }) } };
  let offset = 0;
  for (const [name, shape] of shapes) {
    const bytes = shape.reduce((a, b) => a * b, 1) * 2;
    header[name] = { dtype: 'BF16', shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8); // data starts 8-byte aligned
  const file = path.join(dir, 'model.safetensors');
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w');
  let params = 0;
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
    fs.writeSync(fd, len);
    fs.writeSync(fd, json);
    const buf = new Float32Array(CHUNK);
    shapes.forEach(([name, shape], i) => {
      const n = shape.reduce((a, b) => a * b, 1);
      const { mean, std: sd } = recipe(name, cfg, std);
      // Each tensor its own stream: any one can be regenerated alone from (seed, index).
      let state = Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(i + 1, 0x85ebca6b);
      for (let s = 0; s < n; s += CHUNK) {
        const part = buf.subarray(0, Math.min(CHUNK, n - s));
        state = fillNormal(part, state, mean, sd);
        const bits = encodeBf16(part);
        fs.writeSync(fd, new Uint8Array(bits.buffer, 0, bits.byteLength));
      }
      params += n;
    });
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  writeHfConfig(path.join(dir, 'config.json'), cfg);
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(byteTokenizer(cfg)));
  return { file, bytes: fs.statSync(file).size, params };
}

/**
 * A byte-level BPE tokenizer.json with no merges (one token per byte, ids 0-255 in GPT-2's byte
 * order), "<|endoftext|>" at the config's BOS id, and filler tokens "<|x{id}|>" up to the vocab.
 */
export function byteTokenizer(cfg: LlamaConfig): unknown {
  const vocab: Record<string, number> = {};
  BYTE_TO_CHAR.forEach((c, b) => (vocab[c] = b));
  const special = cfg.bosId >= 0 ? cfg.bosId : cfg.vocabSize - 1;
  for (let id = 256; id < cfg.vocabSize; id++) if (id !== special) vocab[`<|x${id}|>`] = id;
  const bl = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    added_tokens: [{ id: special, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
    normalizer: null,
    pre_tokenizer: bl,
    post_processor: bl,
    decoder: bl,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: [] },
  };
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf('--' + name);
  return i < 0 ? undefined : process.argv[i + 1];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const shape = arg('shape') ?? 'qwen2.5-0.5b';
  const seed = Number(arg('seed') ?? 0), std = Number(arg('std') ?? 0.02);
  if (!Number.isInteger(seed) || !(std > 0)) throw new Error(`--seed must be an integer and --std positive (got ${seed}, ${std})`);
  const dir = arg('out') ?? defaultLargeDir(shape, seed);
  const t0 = performance.now();
  const r = writeSyntheticModel(dir, shapeConfig(shape), { seed, std });
  console.log(`${dir}: ${r.params.toLocaleString('en')} parameters, ${(r.bytes / 2 ** 20).toFixed(1)} MiB bf16 in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

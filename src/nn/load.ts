// Load a language model from a llama2.c checkpoint (.bin) or a Hugging Face directory
// (config.json + model.safetensors, sharded or not), and save one as HF safetensors.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import { readHfConfig, writeHfConfig, type LlamaConfig, type ModelConfig } from '../io/config.js';
import type { HostTensor } from '../io/host-tensor.js';
import { readLlama2c } from '../io/llama2c.js';
import { findModelFile } from '../io/model-files.js';
import { permuteRopeTensor } from '../io/rope-permute.js';
import { listSafetensorsDir } from '../io/safetensors-stream.js';
import { loadTokenizer, type Tokenizer } from '../io/tokenizer.js';
import { initGpu } from '../tensor/device.js';
import { bufferSkipper } from './buffers.js';
import { gemma3TextName, isGemma3VisionTensor, renameTextTensors } from './gemma3-names.js';
import { Gpt2 } from './gpt2.js';
import { Llama } from './llama.js';
import { uploadSpans, type WeightDType } from './stream-load.js';
import { Weights } from './weights.js';
import { writeWeights } from './weights-save.js';

export type AnyModel = Llama | Gpt2;

export interface LoadedModel {
  model: AnyModel;
  /** File or directory it came from, and a content hash (the model's identity in NLA metadata). */
  source: string;
  sha256: string;
  name: string;
}

/** Resolve a model argument: an existing path, or a known file name looked up offline (env, cache, ../shared/models). */
export function resolveModelPath(p: string): string {
  return fs.existsSync(p) ? p : findModelFile(p);
}

export interface LoadOptions {
  /** GPU dtype of the matrices of a Hugging Face checkpoint (default f32); see stream-load.ts. */
  dtype?: WeightDType;
}

export async function loadModel(p: string, opts: LoadOptions = {}): Promise<LoadedModel> {
  await initGpu();
  const file = resolveModelPath(p);
  const stat = fs.statSync(file);
  if (stat.isDirectory()) {
    const cfgFile = path.join(file, 'config.json');
    if (!fs.existsSync(cfgFile)) throw new Error(`${file}: no config.json (a Hugging Face model directory needs config.json and model.safetensors)`);
    const { config, warnings } = readHfConfig(cfgFile);
    for (const w of warnings) if (process.env.NLA_DEBUG) console.error(`nla: ${w}`);
    // Known non-parameter buffers (GPT-2 causal masks, RoPE inv_freq) are never read; nor is a
    // tied model's redundant lm_head. Tensors stream from the file to the GPU one chunk at a time.
    // A Gemma 3 multimodal checkpoint's vision tower and projector are skipped by name.
    const isBuffer = bufferSkipper(config, file);
    const vision = config.arch === 'llama' && config.wrapper === 'gemma3';
    const spans = listSafetensorsDir(file, { skip: (n, shape) => (vision && isGemma3VisionTensor(n)) || isBuffer(n, shape) })
      .filter((s) => !(config.arch === 'llama' && config.tieEmbeddings && textName(config, s.name) === 'lm_head.weight'));
    const w = new Weights();
    for (const [k, t] of await uploadSpans(spans, { dtype: opts.dtype })) w.map.set(k, t);
    return { model: buildFrom(config, w, file), source: file, sha256: hashFile(path.join(file, 'config.json')) + ':' + hashDirWeights(file), name: path.basename(file) };
  }
  if (opts.dtype && opts.dtype !== 'f32' && opts.dtype !== 'auto') throw new Error(`${file}: a llama2.c checkpoint loads as f32 only (asked for ${opts.dtype})`);
  const ck = readLlama2c(file);
  return { model: build(ck.config, ck.weights, file), source: file, sha256: hashFile(file), name: path.basename(file).replace(/\.bin$/, '') };
}

export function build(config: ModelConfig, host: Map<string, HostTensor>, source: string): AnyModel {
  // Host maps from elsewhere may still hold known buffers: drop them (shape-checked) before upload.
  const isBuffer = bufferSkipper(config, source);
  const vision = config.arch === 'llama' && config.wrapper === 'gemma3';
  return buildFrom(config, Weights.fromHost(new Map([...host].filter(([k, t]) => !(vision && isGemma3VisionTensor(k)) && !isBuffer(k, t.shape)))), source);
}

/** A tensor's name in nla's (Gemma3ForCausalLM / LlamaForCausalLM) spelling. */
function textName(config: ModelConfig, name: string): string {
  return config.arch === 'llama' && config.wrapper === 'gemma3' ? gemma3TextName(name) : name;
}

/** The model over uploaded weights: names normalised, redundant heads dropped, shapes checked. */
function buildFrom(config: ModelConfig, w: Weights, source: string): AnyModel {
  if (config.arch === 'gpt2') {
    // Some GPT-2 exports drop the "transformer." prefix; accept both.
    for (const [k, t] of [...w.map]) if (!k.startsWith('transformer.') && k !== 'lm_head.weight') (w.map.delete(k), w.map.set('transformer.' + k, t));
    if (w.has('lm_head.weight')) (w.get('lm_head.weight').dispose(), w.map.delete('lm_head.weight'));
    w.validate(Gpt2.expectedWeights(config), source);
    return new Gpt2(config, w);
  }
  renameTextTensors(config.wrapper, w.map, source);
  if (config.tieEmbeddings && w.has('lm_head.weight')) (w.get('lm_head.weight').dispose(), w.map.delete('lm_head.weight'));
  w.validate(Llama.expectedWeights(config), source);
  return new Llama(config, w);
}

/** Where a model's tokenizer is: explicit, tokenizer.json in an HF directory, or beside a llama2.c file. */
export function resolveTokenizerPath(modelPath: string, tokenizerPath?: string): string {
  if (tokenizerPath) return resolveModelPath(tokenizerPath);
  const file = resolveModelPath(modelPath);
  if (fs.statSync(file).isDirectory()) return path.join(file, 'tokenizer.json');
  // llama2.c models ship their tokenizer beside them (tok512.bin for stories260K, tokenizer.bin otherwise).
  for (const name of ['tok512.bin', 'tokenizer.bin']) {
    const cand = path.join(path.dirname(file), name);
    if (fs.existsSync(cand)) return cand;
  }
  return findModelFile(/260K/.test(file) ? 'tok512.bin' : 'tokenizer.bin');
}

export function loadTokenizerFor(modelPath: string, tokenizerPath?: string): Tokenizer {
  return loadTokenizer(resolveTokenizerPath(modelPath, tokenizerPath));
}

/** Save as a Hugging Face directory (rotate-half q/k rows, config.json, model.safetensors). */
export async function saveHf(model: AnyModel, dir: string): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  let cfg: ModelConfig = model.cfg;
  let transform: ((k: string, t: HostTensor) => HostTensor) | undefined;
  if (cfg.arch === 'llama' && cfg.ropeLayout === 'interleaved') {
    const c = cfg as LlamaConfig;
    transform = (k, t) => {
      if (k.endsWith('self_attn.q_proj.weight')) return permuteRopeTensor(t, c.nHeads, 'half');
      if (k.endsWith('self_attn.k_proj.weight')) return permuteRopeTensor(t, c.nKvHeads, 'half');
      return t;
    };
    cfg = { ...c, ropeLayout: 'half' };
  }
  // Streamed: one parameter on the host at a time.
  await writeWeights(path.join(dir, 'model.safetensors'), model.w, { transform, metadata: { format: 'pt' } });
  writeHfConfig(path.join(dir, 'config.json'), cfg);
}

// Hashes read files in chunks: a whole-file read of a real-size checkpoint would be its size again in RSS.
function hashFile(f: string): string {
  return hashInto(crypto.createHash('sha256'), f).digest('hex');
}
function hashDirWeights(dir: string): string {
  const h = crypto.createHash('sha256');
  for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.safetensors')).sort()) hashInto(h, path.join(dir, f));
  return h.digest('hex').slice(0, 16);
}
function hashInto(h: crypto.Hash, file: string): crypto.Hash {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(8 << 20);
    for (let pos = 0; ; ) {
      const got = fs.readSync(fd, buf, 0, buf.length, pos);
      if (got === 0) return h;
      h.update(buf.subarray(0, got));
      pos += got;
    }
  } finally {
    fs.closeSync(fd);
  }
}

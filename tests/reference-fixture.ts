// A tiny NLA in the reference implementation's layout, built from stories260K by the tests
// themselves from ../shared/docs/NLA-REFERENCE-FORMAT.md (not by nla's exporter, so an export
// and an import cannot agree on a shared mistake):
//   <root>/base/  the studied model M as an HF directory (+ tokenizer), for --model
//   <root>/nla/av/  M copied whole, tokenizer with chat template, nla_meta.yaml (role av)
//   <root>/nla/ar/  blocks 0..K (config num_hidden_layers = K+1), no final norm, no lm_head,
//                   value_head.safetensors {weight: bf16 identity [d, d]}, nla_meta.yaml (role ar)
// The tokenizer is a byte-level BPE written here: ids 0..255 are the bytes themselves (GPT-2's
// byte-to-character table), two merges make the injection char one token (257), then the
// template's special tokens. So every id the sidecar states is known by construction (a byte's
// id is its value), not computed by nla's tokenizer.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { HostTensor } from '../src/io/host-tensor.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { loadModel, saveHf } from '../src/nn/load.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { modelFile } from './helpers.js';

/** The AV template, verbatim from the format document (no trailing newline). */
export const AV_TEMPLATE = `You are a meticulous AI researcher conducting an important investigation into activation vectors from a language model. Your overall task is to describe the semantic content of that activation vector.

We will pass the vector enclosed in <concept> tags into your context. You must then produce an explanation for the vector, enclosed within <explanation> tags. The explanation consists of 2-3 text snippets describing that vector.

Here is the vector:

<concept>{injection_char}</concept>

Please provide an explanation.`;
export const AR_TEMPLATE = 'Summary of the following text: <text>{explanation}</text> <summary>';

/** Qwen2-Instruct's chat template (ChatML with the default system message), as published in its tokenizer_config.json. */
export const QWEN2_TEMPLATE =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
/** Meta-Llama-3-8B-Instruct's chat template, as published in its tokenizer_config.json. */
export const LLAMA3_TEMPLATE =
  "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

export type Style = 'qwen2' | 'llama3';

export const STYLES: Record<Style, { char: string; specials: string[]; bos: string | null; eos: string; pad?: string; template: string }> = {
  // Qwen2: no BOS; ChatML turns end with <|im_end|>. Marker ㈎ as in the Qwen2.5-7B NLA.
  qwen2: { char: '\u320E', specials: ['<|endoftext|>', '<|im_start|>', '<|im_end|>'], bos: null, eos: '<|im_end|>', pad: '<|endoftext|>', template: QWEN2_TEMPLATE },
  // Llama 3: the template writes <|begin_of_text|> itself; turns end with <|eot_id|>. Marker ㎡ as in the Llama-3.3-70B NLA.
  llama3: { char: '\u33A1', specials: ['<|begin_of_text|>', '<|end_of_text|>', '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'], bos: '<|begin_of_text|>', eos: '<|eot_id|>', template: LLAMA3_TEMPLATE },
};

/** GPT-2's bytes_to_unicode, written out from its definition. */
export function byteChars(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const map: string[] = [];
  for (const b of bs) map[b] = String.fromCharCode(b);
  let n = 0;
  for (let b = 0; b < 256; b++) if (map[b] === undefined) map[b] = String.fromCharCode(256 + n++);
  return map;
}

export const INJECTION_ID = 257;
/** Id of a special token of a style: they follow the 258 byte and merged ids. */
export const specialId = (style: Style, name: string): number => 258 + STYLES[style].specials.indexOf(name);
/** Ids of ASCII text in this tokenizer (no merges apply to ASCII): its bytes. */
export const asciiIds = (s: string): number[] => [...Buffer.from(s, 'utf8')];

export function writeTokenizer(dir: string, style: Style, opts: { template?: string } = {}): void {
  const st = STYLES[style], bc = byteChars();
  const vocab: Record<string, number> = {};
  bc.forEach((c, b) => (vocab[c] = b));
  const [b0, b1, b2] = [...Buffer.from(st.char, 'utf8')].map((b) => bc[b]);
  vocab[b0 + b1] = 256;
  vocab[b0 + b1 + b2] = INJECTION_ID;
  const added = st.specials.map((content, i) => ({ id: 258 + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  const tokenizer = {
    version: '1.0',
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges: [`${b0} ${b1}`, `${b0 + b1} ${b2}`] },
  };
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizer));
  const cfg: Record<string, unknown> = { bos_token: st.bos, eos_token: st.eos, chat_template: opts.template ?? st.template, model_max_length: 1024 };
  if (st.pad) cfg.pad_token = st.pad;
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(cfg, null, 2));
}

/** A double-quoted YAML scalar as PyYAML safe_dump writes non-ASCII text: \uXXXX escapes. */
function dq(s: string): string {
  return '"' + [...s].map((c) => {
    const cp = c.codePointAt(0)!;
    if (c === '"' || c === '\\') return '\\' + c;
    if (c === '\n') return '\\n';
    return cp > 126 ? `\\u${cp.toString(16).toUpperCase().padStart(4, '0')}` : c;
  }).join('') + '"';
}

/**
 * A single-quoted multi-line YAML scalar as PyYAML writes ASCII text with newlines: long lines
 * folded at spaces (a fold reads back as a space), each "\n" written as one empty line.
 */
function sqFolded(s: string, indent: string): string {
  const lines: string[] = [];
  const paragraphs = s.split('\n');
  paragraphs.forEach((p, i) => {
    if (p === '') return lines.push(''); // "\n\n": the second newline is one more empty line
    let line = '';
    for (const w of p.split(' ')) {
      if (line && (line + ' ' + w).length > 70) (lines.push(line), (line = w));
      else line = line ? line + ' ' + w : w;
    }
    lines.push(line);
    if (i < paragraphs.length - 1) lines.push(''); // the "\n" itself
  });
  // A line break between two text lines folds to a space; each empty line in between is a "\n".
  return "'" + lines.map((l, i) => (i === 0 || l === '' ? l.replace(/'/g, "''") : indent + l.replace(/'/g, "''"))).join('\n') + "'";
}

export interface SidecarValues {
  role: 'av' | 'ar' | 'actor' | 'critic';
  d: number;
  injectionScale: number | null | string;
  mseScale: number | null | string;
  char: string;
  injectionId: number;
  left: number;
  right: number;
  suffix: number[] | null;
  K?: number;
  /** Write the templates under actor/critic (training) or av/ar (release). */
  templateKeys?: 'actor' | 'av';
}

/** nla_meta.yaml text, keys in the order write_model_sidecar writes them. */
export function sidecarYaml(v: SidecarValues): string {
  const t = v.templateKeys ?? 'actor';
  const num = (x: number | null | string) => (x === null ? 'null' : typeof x === 'string' ? x : Number.isInteger(x) ? `${x}.0` : String(x));
  return [
    'kind: nla_model',
    'schema_version: 2',
    `role: ${v.role}`,
    'stage: sl',
    'base_checkpoint: karpathy/tinyllamas/stories260K',
    `d_model: ${v.d}`,
    'extraction:',
    `  injection_scale: ${num(v.injectionScale)}`,
    `  mse_scale: ${num(v.mseScale)}`,
    'tokens:',
    `  injection_char: ${dq(v.char)}`,
    `  injection_token_id: ${v.injectionId}`,
    `  injection_left_neighbor_id: ${v.left}`,
    `  injection_right_neighbor_id: ${v.right}`,
    v.suffix ? `  critic_suffix_ids:\n${v.suffix.map((x) => `  - ${x}`).join('\n')}` : '  critic_suffix_ids: null',
    'prompt_templates:',
    `  ${t === 'actor' ? 'actor' : 'av'}: ${sqFolded(AV_TEMPLATE, '    ')}`,
    `  ${t === 'actor' ? 'critic' : 'ar'}: ${AR_TEMPLATE.includes("'") ? dq(AR_TEMPLATE) : `'${AR_TEMPLATE}'`}`,
    'trained_on:',
    '- fixtures/stories.parquet',
    'parent_checkpoints: []',
    "created_at: '2026-01-01T00:00:00+00:00'",
    'created_by: nla tests',
    ...(v.K !== undefined ? ['critic:', `  extraction_layer_index: ${v.K}`] : []),
    '',
  ].join('\n');
}

export interface Fixture {
  root: string;
  /** The pair's directory (holding av/ and ar/). */
  nla: string;
  av: string;
  ar: string;
  /** M as an HF directory with the same tokenizer. */
  base: string;
  K: number;
  d: number;
  style: Style;
  values: { av: SidecarValues; ar: SidecarValues };
}

function copyDir(from: string, to: string): void {
  fs.mkdirSync(to, { recursive: true });
  for (const f of fs.readdirSync(from)) fs.copyFileSync(path.join(from, f), path.join(to, f));
}

/**
 * Build the pair under `root`. `edit` may change the sidecar values before they are written
 * (to make a package with a wrong neighbour id, say).
 */
export async function buildReferencePair(root: string, style: Style, opts: { K?: number; edit?: (v: { av: SidecarValues; ar: SidecarValues }) => void; template?: string } = {}): Promise<Fixture> {
  const K = opts.K ?? 2;
  const base = path.join(root, 'base');
  if (!fs.existsSync(path.join(base, 'model.safetensors'))) {
    const m = await loadModel(modelFile('stories260K.bin'));
    await saveHf(m.model, base);
    m.model.w.dispose();
    // stories260K was trained on 512 positions; the chat-wrapped AV prompt is ~600 byte tokens.
    // RoPE has no learned positions, so a longer window only changes what the cache allows.
    const cfg = JSON.parse(fs.readFileSync(path.join(base, 'config.json'), 'utf8'));
    Object.assign(cfg, { max_position_embeddings: 1024, bos_token_id: undefined, eos_token_id: undefined });
    fs.writeFileSync(path.join(base, 'config.json'), JSON.stringify(cfg, null, 2));
  }
  writeTokenizer(base, style);
  const d = JSON.parse(fs.readFileSync(path.join(base, 'config.json'), 'utf8')).hidden_size as number;
  const nla = path.join(root, 'nla'), av = path.join(nla, 'av'), ar = path.join(nla, 'ar');
  fs.rmSync(nla, { recursive: true, force: true });

  // The canonical prompt's bytes around the marker: "<concept>" + char + "</concept>".
  const common = { d, char: STYLES[style].char, injectionId: INJECTION_ID, left: '>'.charCodeAt(0), right: '<'.charCodeAt(0), suffix: asciiIds('</text> <summary>').slice(1) };
  const values = {
    av: { ...common, role: 'actor' as const, injectionScale: 150, mseScale: Math.sqrt(d), K },
    ar: { ...common, role: 'critic' as const, injectionScale: null, mseScale: Math.sqrt(d), K },
  };
  opts.edit?.(values);

  copyDir(base, av);
  writeTokenizer(av, style, { template: opts.template });
  fs.writeFileSync(path.join(av, 'nla_meta.yaml'), sidecarYaml(values.av));

  fs.mkdirSync(ar, { recursive: true });
  const cfg = JSON.parse(fs.readFileSync(path.join(base, 'config.json'), 'utf8'));
  cfg.num_hidden_layers = K + 1;
  fs.writeFileSync(path.join(ar, 'config.json'), JSON.stringify(cfg, null, 2));
  const host = readSafetensors(path.join(base, 'model.safetensors'));
  const kept: Record<string, HostTensor> = {};
  for (const [k, t] of host) {
    const m = /^model\.layers\.(\d+)\./.exec(k);
    if (k === 'model.embed_tokens.weight' || (m && Number(m[1]) <= K)) kept[k] = t;
  }
  writeSafetensors(path.join(ar, 'model.safetensors'), kept);
  const eye = new Float32Array(d * d);
  for (let i = 0; i < d; i++) eye[i * d + i] = 1;
  writeSafetensors(path.join(ar, 'value_head.safetensors'), { weight: { dtype: 'f32', shape: [d, d], data: eye, saveAs: 'bf16' } });
  writeTokenizer(ar, style, { template: opts.template });
  fs.writeFileSync(path.join(ar, 'nla_meta.yaml'), sidecarYaml(values.ar));
  return { root, nla, av, ar, base, K, d, style, values };
}

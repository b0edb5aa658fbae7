// Open an NLA published in the reference implementation's layout (kitft/natural_language_autoencoders):
// a pair of Hugging Face model directories, the AV (a full fine-tuned copy of M) and the AR
// (M truncated to blocks 0..K, no final norm, no lm_head, its d x d head in
// value_head.safetensors), each with an nla_meta.yaml sidecar. The sidecar is the contract:
// every value comes from it, and the injection token, its neighbours and the AR suffix ids are
// checked against the live tokenizer here, as the reference's load_nla_config does, so that a
// drifted tokenizer or template fails at load naming the field rather than silently
// verbalising the marker's own embedding. See ../shared/docs/NLA-REFERENCE-FORMAT.md §1-3.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readChatTemplate, type ChatTemplate } from '../io/chat-template.js';
import { readHfConfig, type LlamaConfig } from '../io/config.js';
import { readSafetensors, readSafetensorsDir } from '../io/safetensors.js';
import { loadTokenizer, type Tokenizer } from '../io/tokenizer.js';
import type { HostTensor } from '../io/host-tensor.js';
import { bufferSkipper } from '../nn/buffers.js';
import { isGemma3VisionTensor, renameTextTensors } from '../nn/gemma3-names.js';
import { Llama } from '../nn/llama.js';
import { Weights } from '../nn/weights.js';
import { initGpu } from '../tensor/device.js';
import { fmt } from '../tensor/shape.js';
import { AR_HEAD, Reconstructor } from './ar.js';
import { Verbalizer, type AvStyle } from './av.js';
import type { NlaMeta } from './nla.js';
import type { PromptSpec } from './prompts.js';
import { readModelSidecar, SIDECAR, type ModelSidecar } from './reference-sidecar.js';

/** The reference's explanation parser (nla/schema.py): first match, DOTALL, trimmed. */
export const EXPLANATION_RE = /<explanation>\s*([\s\S]*?)\s*<\/explanation>/;
/** The inference default for max_new_tokens (nla_inference.py). */
export const REFERENCE_MAX_NEW_TOKENS = 200;

export interface ReferencePair {
  av: string;
  ar: string;
}

/** `dir/av` and `dir/ar` when both hold a sidecar (a reference pair), else undefined. */
export function referencePairIn(dir: string): ReferencePair | undefined {
  const av = path.join(dir, 'av'), ar = path.join(dir, 'ar');
  return fs.existsSync(path.join(av, SIDECAR)) && fs.existsSync(path.join(ar, SIDECAR)) ? { av, ar } : undefined;
}

/** What loadNLA keeps of a reference pair (in NlaMeta.reference). */
export interface ReferenceInfo {
  av: string;
  ar: string;
  avSidecar: ModelSidecar;
  arSidecar: ModelSidecar;
  /** Norm both vectors are scaled to before the MSE (the AR sidecar's mse_scale). */
  mseScale: number;
}

/** The AV prompt of the reference: the template filled with the char, as one user message. */
export function canonicalAvContent(s: ModelSidecar): string {
  return s.templates.av.split('{injection_char}').join(s.tokens.injectionChar);
}

/**
 * The AV prompt ids through the chat template (add_generation_prompt, tokenised without adding
 * specials, as apply_chat_template(tokenize=True) does: the template writes BOS itself), and the
 * injection position, checked against the sidecar: the char encodes to exactly the sidecar's id,
 * occurs once, at neither end, between the sidecar's neighbour ids.
 */
export function referenceAvPrompt(tok: Tokenizer, chat: ChatTemplate, s: ModelSidecar): { ids: number[]; position: number; text: string } {
  const t = s.tokens, where = s.file;
  const alone = tok.encode(t.injectionChar);
  if (alone.length !== 1 || alone[0] !== t.injectionTokenId) {
    throw new Error(`${where}: field "tokens.injection_token_id": expected [${t.injectionTokenId}] for ${JSON.stringify(t.injectionChar)}, the tokenizer gives [${alone}] (wrong tokenizer or vocabulary changed)`);
  }
  const unk = (tok as { unkId?: number }).unkId;
  if (unk !== undefined && alone[0] === unk) throw new Error(`${where}: field "tokens.injection_char": ${JSON.stringify(t.injectionChar)} is the unknown token`);
  const text = chat.render([{ role: 'user', content: canonicalAvContent(s) }], { addGenerationPrompt: true });
  const ids = tok.encode(text);
  if (tok.bosId >= 0 && ids[0] === tok.bosId && ids[1] === tok.bosId) throw new Error(`${chat.file}: the chat template renders two BOS tokens at the start`);
  const hits = ids.flatMap((id, i) => (id === t.injectionTokenId ? [i] : []));
  if (hits.length !== 1) {
    // None at all: the template dropped the user's message (and so the placeholder).
    const why = hits.length === 0 ? ` (rendered by ${chat.file}: does its chat_template write the message content?)` : '';
    throw new Error(`${where}: field "tokens.injection_token_id": ${t.injectionTokenId} occurs ${hits.length} times in the canonical AV prompt, expected once${why}`);
  }
  const p = hits[0];
  if (p === 0 || p === ids.length - 1) throw new Error(`${where}: field "tokens.injection_token_id": at position ${p} of ${ids.length}, the edge of the canonical AV prompt`);
  if (ids[p - 1] !== t.leftNeighborId) throw new Error(`${where}: field "tokens.injection_left_neighbor_id": expected ${t.leftNeighborId}, found ${ids[p - 1]} (the template or tokenizer drifted)`);
  if (ids[p + 1] !== t.rightNeighborId) throw new Error(`${where}: field "tokens.injection_right_neighbor_id": expected ${t.rightNeighborId}, found ${ids[p + 1]} (the template or tokenizer drifted)`);
  return { ids, position: p, text };
}

/** AR input ids: the filled template with the tokenizer's specials (BOS when it has one), no chat template. */
export function referenceArIds(tok: Tokenizer, template: string, explanation: string): number[] {
  return tok.encode(template.split('{explanation}').join(explanation), { bos: tok.bosId >= 0 });
}

function textConfig(dir: string): LlamaConfig {
  const { config } = readHfConfig(path.join(dir, 'config.json'));
  if (config.arch !== 'llama') throw new Error(`${dir}/config.json: a reference NLA half must be a Llama-family model (llama, mistral, qwen2, gemma, gemma2, gemma3); this is ${config.arch}`);
  return config;
}

/** A half's tensors by text-model name: known buffers skipped; a Gemma 3 wrapper's vision tensors skipped and text tensors renamed. */
function readTextTensors(cfg: LlamaConfig, dir: string): Map<string, HostTensor> {
  const isBuffer = bufferSkipper(cfg, dir);
  const host = readSafetensorsDir(dir, { skip: (n, shape) => (cfg.wrapper === 'gemma3' && isGemma3VisionTensor(n)) || isBuffer(n, shape) });
  renameTextTensors(cfg.wrapper, host, dir);
  return host;
}

function ids(x: readonly number[]): string {
  return `[${x.join(', ')}]`;
}

/** Ids that end an AV turn: the tokenizer's EOS, config.json's and generation_config.json's eos_token_id. */
function stopIds(dir: string, tok: Tokenizer): number[] {
  const out = new Set<number>();
  if (tok.eosId >= 0) out.add(tok.eosId);
  for (const f of ['config.json', 'generation_config.json']) {
    const file = path.join(dir, f);
    if (!fs.existsSync(file)) continue;
    const v = (JSON.parse(fs.readFileSync(file, 'utf8')) as { eos_token_id?: unknown }).eos_token_id;
    for (const id of Array.isArray(v) ? v : [v]) if (Number.isSafeInteger(id)) out.add(id as number);
  }
  if (!out.size) throw new Error(`${dir}: no EOS token (tokenizer_config.json eos_token, config.json or generation_config.json eos_token_id)`);
  return [...out];
}

export async function loadReferenceNLA(pair: ReferencePair, opts: { model?: string } = {}): Promise<{ meta: NlaMeta; av: Verbalizer; ar: Reconstructor; tok: Tokenizer }> {
  await initGpu();
  const avS = readModelSidecar(pair.av), arS = readModelSidecar(pair.ar);
  if (avS.role !== 'av') throw new Error(`${avS.file}: field "role": expected actor/av for the AV directory, found ${JSON.stringify(avS.roleName)}`);
  if (arS.role !== 'ar') throw new Error(`${arS.file}: field "role": expected critic/ar for the AR directory, found ${JSON.stringify(arS.roleName)}`);
  for (const [k, a, b] of [
    ['d_model', avS.dModel, arS.dModel],
    ['tokens.injection_token_id', avS.tokens.injectionTokenId, arS.tokens.injectionTokenId],
    ['tokens.injection_char', avS.tokens.injectionChar, arS.tokens.injectionChar],
  ] as const) {
    if (a !== b) throw new Error(`${arS.file}: field "${k}": the AV sidecar says ${JSON.stringify(a)}, the AR's ${JSON.stringify(b)}`);
  }

  // ---- AV ----
  const avCfg = textConfig(pair.av);
  if (avCfg.dim !== avS.dModel) throw new Error(`${avS.file}: field "d_model": expected hidden_size ${avCfg.dim} of ${pair.av}/config.json, found ${avS.dModel}`);
  if (avS.injectionScale === undefined) throw new Error(`${avS.file}: field "extraction.injection_scale" is null or missing; the AV needs the norm it was trained to read`);
  const avTok = loadTokenizer(pair.av);
  const chat = readChatTemplate(pair.av);
  if (!chat) throw new Error(`${pair.av}: no chat template (tokenizer_config.json "chat_template", chat_template.jinja or chat_template.json); the reference AV is prompted through it`);
  const avp = referenceAvPrompt(avTok, chat, avS);
  const avW = Weights.fromHost(readTextTensors(avCfg, pair.av));
  if (avCfg.tieEmbeddings && avW.has('lm_head.weight')) (avW.get('lm_head.weight').dispose(), avW.map.delete('lm_head.weight'));
  avW.validate(Llama.expectedWeights(avCfg), pair.av);
  const stops = stopIds(pair.av, avTok);
  const opened = /<explanation>\s*$/.test(avp.text) ? '<explanation>' : '';
  const userMsg = { role: 'user', content: canonicalAvContent(avS) };
  const style: AvStyle = {
    prompt: { ids: avp.ids, position: avp.position, placeholderId: avS.tokens.injectionTokenId },
    stopIds: stops,
    // A prompt that itself opens the tag (nla's own NLAs exported as pairs) leaves only the
    // close to the output; the reference parses the output alone and would find no tag.
    parse: (text) => EXPLANATION_RE.exec(opened + text)?.[1],
    // The SFT target as the reference builds it ("<explanation>\n" + text + "\n</explanation>"),
    // as the assistant turn of the chat template, up to and including its end-of-turn token.
    target: (explanation) => {
      const full = avTok.encode(chat.render([userMsg, { role: 'assistant', content: `<explanation>\n${explanation}\n</explanation>` }]));
      if (full.slice(0, avp.ids.length).some((id, i) => id !== avp.ids[i])) throw new Error(`${chat.file}: the assistant turn does not extend the generation prompt token for token`);
      const rest = full.slice(avp.ids.length);
      const end = rest.findIndex((id) => stops.includes(id));
      if (end < 0) throw new Error(`${chat.file}: the assistant turn has no end-of-turn token among ${ids(stops)}`);
      return rest.slice(0, end + 1);
    },
  };

  // ---- AR ----
  const arCfgFile = textConfig(pair.ar);
  if (arCfgFile.dim !== arS.dModel) throw new Error(`${arS.file}: field "d_model": expected hidden_size ${arCfgFile.dim} of ${pair.ar}/config.json, found ${arS.dModel}`);
  const K = arCfgFile.nLayers - 1;
  for (const s of [arS, avS]) {
    if (s.extractionLayerIndex !== undefined && s.extractionLayerIndex !== K) {
      throw new Error(`${s.file}: field "critic.extraction_layer_index": expected ${K} (${pair.ar}/config.json has num_hidden_layers ${K + 1} = K+1), found ${s.extractionLayerIndex}`);
    }
  }
  if (arS.mseScale === undefined) throw new Error(`${arS.file}: field "extraction.mse_scale" is null (raw-MSE mode); scoring needs a numeric scale`);
  if (!arS.templates.ar) throw new Error(`${arS.file}: field "prompt_templates.critic" is missing (nor is prompt_templates.ar given)`);
  const arTemplate = arS.templates.ar;
  const headFile = path.join(pair.ar, 'value_head.safetensors');
  if (!fs.existsSync(headFile)) throw new Error(`${pair.ar}: no value_head.safetensors (the AR's trained head)`);
  const head = readSafetensors(headFile);
  const hw = head.get('weight');
  if (!hw || head.size !== 1) throw new Error(`${headFile}: expected one tensor "weight", found ${JSON.stringify([...head.keys()])}`);
  const d = arS.dModel;
  if (fmt(hw.shape) !== fmt([d, d])) throw new Error(`${headFile}: tensor "weight" has shape ${fmt(hw.shape)}, expected ${fmt([d, d])}`);
  const arTok = loadTokenizer(pair.ar);
  const arChat = readChatTemplate(pair.ar);
  if (arChat) referenceAvPrompt(arTok, arChat, arS); // the reference checks AR sidecars' tokens too
  else {
    const alone = arTok.encode(arS.tokens.injectionChar);
    if (alone.length !== 1 || alone[0] !== arS.tokens.injectionTokenId) throw new Error(`${arS.file}: field "tokens.injection_token_id": expected [${arS.tokens.injectionTokenId}], the tokenizer gives [${alone}]`);
  }
  const suffix = arS.tokens.criticSuffixIds ?? avS.tokens.criticSuffixIds;
  if (arS.tokens.criticSuffixIds && avS.tokens.criticSuffixIds && ids(arS.tokens.criticSuffixIds) !== ids(avS.tokens.criticSuffixIds)) {
    throw new Error(`${arS.file}: field "tokens.critic_suffix_ids": the AR sidecar says ${ids(arS.tokens.criticSuffixIds)}, the AV's ${ids(avS.tokens.criticSuffixIds)}`);
  }
  const encodeAr = (e: string): number[] => referenceArIds(arTok, arTemplate, e);
  if (suffix) {
    // One probe, as the reference's verify_critic_suffix checks once at load: the tail is stable.
    const probe = encodeAr('The text is about a cat.');
    const tail = probe.slice(-suffix.length);
    if (ids(tail) !== ids(suffix)) throw new Error(`${arS.file}: field "tokens.critic_suffix_ids": expected ${ids(suffix)}, found ${ids(tail)} at the end of the AR prompt`);
  }
  const arHost = readTextTensors(arCfgFile, pair.ar);
  // The reference replaces the final norm and lm_head by the identity; a file that kept them
  // (or the megatron-compat ones-norm and eye lm_head) has them ignored for the same reason.
  arHost.delete('model.norm.weight');
  arHost.delete('lm_head.weight');
  arHost.set(AR_HEAD, { ...hw, data: hw.data });
  const arW = Weights.fromHost(arHost);
  const expected = Llama.expectedWeights({ ...arCfgFile, tieEmbeddings: true });
  expected.delete('model.norm.weight');
  expected.set(AR_HEAD, [d, d]);
  arW.validate(expected, pair.ar);

  const prompts: PromptSpec = {
    av: avS.templates.av.split('{injection_char}').join('{concept}'),
    placeholder: avS.tokens.injectionChar,
    explanationEnd: '</explanation>',
    ar: arTemplate,
  };
  const meta: NlaMeta = {
    format: 'nla/1',
    model: { name: String(avS.provenance.base_checkpoint ?? path.basename(path.resolve(pair.av, '..'))), path: opts.model ?? '', sha256: '', config: avCfg },
    tokenizer: 'tokenizer.json',
    layer: K,
    alpha: avS.injectionScale,
    // The FVE denominator is not in the sidecars (the reference computes it from training rows).
    variance: NaN,
    mean: [],
    prompts,
    placeholderId: avS.tokens.injectionTokenId,
    maxExplanationTokens: REFERENCE_MAX_NEW_TOKENS,
    created: String(avS.provenance.created_at ?? ''),
    reference: { av: pair.av, ar: pair.ar, avSidecar: avS, arSidecar: arS, mseScale: arS.mseScale },
  };
  const av = new Verbalizer(new Llama(avCfg, avW), avTok, prompts, avS.injectionScale, style);
  const ar = Reconstructor.fromWeights(arCfgFile, arW, K, arTok, prompts, encodeAr);
  return { meta, av, ar, tok: avTok };
}

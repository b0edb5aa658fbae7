// Write an NLA trained by nla (nla.json + av/ar.safetensors + a llama2.c tokenizer) in the
// reference implementation's layout (../shared/docs/NLA-REFERENCE-FORMAT.md §1-3), so that
// loadNLA of the result gives the same prompt ids, the same greedy explanations and the same
// reconstructions (tests/nla-reference-export-own.test.ts).
//
// What makes nla's own NLA fit the reference's contract:
//   - tokenizer: the llama2.c tokenizer as an HF tokenizer.json (llama2c-hf-tokenizer.ts),
//     with the injection marker an added token so it encodes alone to exactly its id, as the
//     reference's loader requires;
//   - chat template: renders nla's own AV prompt exactly: "<s>" + " " + the user message (the
//     space stands for run.c's dummy prefix). The sidecar's actor template is nla's whole AV
//     prompt, so the generation prompt adds nothing and already opens <explanation>;
//     an assistant message "<explanation>\n{e}\n</explanation>" (the reference's SFT target)
//     renders as nla's own target "{e}</explanation>" + EOS;
//   - config.json in HF Llama form, q/k rows permuted to rotate-half when M came from llama2.c;
//   - the AR template is nla's, which ends with the explanation: critic_suffix_ids is null.
// Where the reference would read this package differently (stated in the README too): its
// explanation parser looks for "<explanation>" in the generated text, but this AV's prompt
// opened the tag, so the reference's inference returns the raw text and its RL scores every
// rollout as a missing tag (-2) until its SFT has taught the AV to write the tag; nla's loader
// parses a prompt-opened tag (reference.ts). Texts that start with a space or with the marker
// tokenise with one dummy-prefix "▁" less under tokenizer.json than under run.c.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../io/atomic-write.js';
import { readChatTemplate } from '../io/chat-template.js';
import { hfConfigJson, type LlamaConfig } from '../io/config.js';
import type { HostTensor } from '../io/host-tensor.js';
import { HF_SPECIALS, llama2cToHfTokenizer } from '../io/llama2c-hf-tokenizer.js';
import { permuteRopeTensor } from '../io/rope-permute.js';
import { writeSafetensors, type SaveDType } from '../io/safetensors.js';
import { writeWeights } from '../nn/weights-save.js';
import { Llama2cTokenizer } from '../io/tokenizer-llama2c.js';
import { loadTokenizer } from '../io/tokenizer.js';
import { AR_HEAD } from './ar.js';
import type { NLA } from './nla.js';
import type { AvPrompt, PromptSpec } from './prompts.js';
import { SIDECAR, yamlText } from './reference-sidecar.js';

/** The reference's SFT target wraps an explanation as "<explanation>\n" + e + "\n</explanation>". */
const OPEN = '<explanation>\n', CLOSE = '\n</explanation>';

/**
 * The chat template of an exported nla AV. User turn: " " + content (nla's AV prompt, whose
 * leading space is run.c's dummy prefix). Assistant turn: the reference's wrapped explanation
 * unwrapped to nla's target (the prompt already opened the tag; nla closes it with no newline).
 */
export const OWN_CHAT_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ ' ' + message['content'] }}" +
  "{% elif message['role'] == 'assistant' %}{% set c = message['content'] %}" +
  `{% if c.startswith('<explanation>\\n') %}{% set c = c[${OPEN.length}:] %}{% endif %}` +
  `{% if c.endswith('\\n</explanation>') %}{% set c = c[:-${CLOSE.length}] + '</explanation>' %}{% endif %}` +
  '{{ c + eos_token }}' +
  "{% else %}{{ raise_exception('this NLA AV takes one user message (its prompt) and optionally the assistant reply') }}{% endif %}{% endfor %}";

export interface OwnExportOptions {
  dtype?: SaveDType;
  createdBy?: string;
  /** The NLA directory it was read from (parent_checkpoints). */
  source?: string;
}

/**
 * The sidecar `tokens` of nla's own prompt (AV prompt ids with BOS, the marker's position):
 * the same ids the exported tokenizer and chat template give (checked at export).
 */
export function ownReferenceTokens(own: AvPrompt, p: PromptSpec): Record<string, unknown> {
  return {
    injection_char: p.placeholder,
    injection_token_id: own.placeholderId,
    injection_left_neighbor_id: own.ids[own.position - 1],
    injection_right_neighbor_id: own.ids[own.position + 1],
    // nla's AR template ends with the explanation: there is no text after it.
    critic_suffix_ids: null,
  };
}

/** The sidecar's actor (AV) and critic (AR) templates for nla's prompts. */
export function ownReferenceTemplates(p: PromptSpec): { actor: string; critic: string } {
  return { actor: p.av.split('{concept}').join('{injection_char}'), critic: p.ar };
}

const json = (x: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(x, null, 2) + '\n');

/** q/k rows in HF's rotate-half order (llama2.c checkpoints keep them interleaved). */
function toHalfLayout(host: Map<string, HostTensor>, cfg: LlamaConfig): void {
  if (cfg.ropeLayout === 'half') return;
  for (const [k, t] of host) {
    if (/\.self_attn\.q_proj\.(weight|bias)$/.test(k)) host.set(k, permuteRopeTensor(t, cfg.nHeads, 'half'));
    else if (/\.self_attn\.k_proj\.(weight|bias)$/.test(k)) host.set(k, permuteRopeTensor(t, cfg.nKvHeads, 'half'));
  }
}

export async function writeOwnAsReferencePair(nla: NLA, out: string, opts: OwnExportOptions = {}): Promise<{ av: string; ar: string }> {
  const meta = nla.meta, p = meta.prompts, cfg = meta.model.config;
  const createdBy = opts.createdBy ?? 'nla export', dtype = opts.dtype ?? 'f32';
  if (!(nla.tok instanceof Llama2cTokenizer)) {
    throw new Error(`${opts.source ?? 'this NLA'}: field "tokenizer" (${meta.tokenizer}): exporting an nla NLA is implemented for llama2.c tokenizers (written as tokenizer.json); a Hugging Face tokenizer would need its injection marker declared as an added token, which is not implemented`);
  }
  if (!/<explanation>\s*$/.test(p.av) || p.explanationEnd !== '</explanation>') {
    throw new Error(`${opts.source ?? 'this NLA'}: field "prompts": the reference reads explanations inside <explanation>...</explanation>; this NLA's AV prompt must end by opening <explanation> and its explanationEnd be "</explanation>" (found ${JSON.stringify(p.av.slice(-20))} and ${JSON.stringify(p.explanationEnd)})`);
  }
  if (!p.ar.endsWith('{explanation}')) throw new Error(`${opts.source ?? 'this NLA'}: field "prompts.ar" must end with {explanation} (nla's AR reads the explanation's last token)`);
  const av = path.join(out, 'av'), ar = path.join(out, 'ar');
  if (opts.source && [av, ar].some((d) => path.resolve(d) === path.resolve(opts.source!))) throw new Error(`${out}: exporting into the NLA it was loaded from; choose another --out`);

  // Tokenizer files, shared by both halves.
  const { tokenizer } = llama2cToHfTokenizer(nla.tok, { single: p.placeholder });
  const tokenizerConfig = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: HF_SPECIALS.bos,
    eos_token: HF_SPECIALS.eos,
    unk_token: HF_SPECIALS.unk,
    add_bos_token: true,
    add_eos_token: false,
    clean_up_tokenization_spaces: false,
    model_max_length: cfg.maxSeqLen,
    chat_template: OWN_CHAT_TEMPLATE,
  };
  const specialMap = { bos_token: HF_SPECIALS.bos, eos_token: HF_SPECIALS.eos, unk_token: HF_SPECIALS.unk };
  const hfCfg = hfConfigJson({ ...cfg, ropeLayout: 'half' }, dtype === 'f32' ? 'float32' : dtype === 'bf16' ? 'bfloat16' : 'float16');
  for (const [dir, layers] of [[av, cfg.nLayers], [ar, meta.layer + 1]] as const) {
    fs.mkdirSync(dir, { recursive: true });
    writeFileAtomic(path.join(dir, 'tokenizer.json'), [json(tokenizer)]);
    writeFileAtomic(path.join(dir, 'tokenizer_config.json'), [json(tokenizerConfig)]);
    writeFileAtomic(path.join(dir, 'special_tokens_map.json'), [json(specialMap)]);
    writeFileAtomic(path.join(dir, 'config.json'), [json({ ...hfCfg, num_hidden_layers: layers })]);
    writeFileAtomic(path.join(dir, 'generation_config.json'), [json({ bos_token_id: nla.tok.bosId, eos_token_id: nla.tok.eosId })]);
  }

  // The prompt as the written files give it must be nla's own, id for id (else the exported
  // AV would read a different prompt); this also yields the neighbour ids for the sidecar.
  const hfTok = loadTokenizer(av), chat = readChatTemplate(av)!;
  const { actor } = ownReferenceTemplates(p);
  const rendered = hfTok.encode(chat.render([{ role: 'user', content: actor.split('{injection_char}').join(p.placeholder) }], { addGenerationPrompt: true }));
  const own = nla.av.prompt;
  if (rendered.join(',') !== own.ids.join(',')) throw new Error(`${av}: the exported tokenizer and chat template give the AV prompt [${rendered}], nla's own prompt is [${own.ids}]`);
  const single = hfTok.encode(p.placeholder);
  if (single.length !== 1 || single[0] !== own.placeholderId) throw new Error(`${av}/tokenizer.json: the marker encodes to [${single}], expected [${own.placeholderId}]`);

  const K = meta.layer, d = cfg.dim;
  const sidecar = (role: 'actor' | 'critic'): Uint8Array => {
    const doc: Record<string, unknown> = {
      kind: 'nla_model',
      schema_version: 2,
      role,
      stage: meta.training && 'rl' in meta.training ? 'rl' : 'sl',
      d_model: d,
      extraction: { injection_scale: role === 'actor' ? meta.alpha : null, mse_scale: Math.sqrt(d) },
      tokens: ownReferenceTokens(own, p),
      prompt_templates: { actor, critic: p.ar },
      ...(role === 'critic' ? { critic: { extraction_layer_index: K } } : {}),
      extraction_layer_index: K,
      base_checkpoint: meta.model.name,
      parent_checkpoints: opts.source ? [path.resolve(opts.source)] : [],
      created_at: new Date().toISOString(),
      created_by: createdBy,
      training: meta.training ?? {},
    };
    return new TextEncoder().encode(yamlText(doc));
  };

  // Streamed: one parameter on the host at a time, put in the half RoPE layout as it passes.
  const transform = (k: string, t: HostTensor): HostTensor => {
    const one = new Map([[k, t]]);
    toHalfLayout(one, cfg);
    return one.get(k)!;
  };
  await writeWeights(path.join(av, 'model.safetensors'), nla.av.model.w, { saveAs: dtype, transform });
  writeFileAtomic(path.join(av, SIDECAR), [sidecar('actor')]);

  const w = nla.ar.model.w;
  if (!w.has(AR_HEAD)) throw new Error(`the AR has no head "${AR_HEAD}"`);
  await writeWeights(path.join(ar, 'model.safetensors'), w, { saveAs: dtype, omit: [AR_HEAD], transform });
  const headT = w.get(AR_HEAD);
  const head: HostTensor = { dtype: 'f32', shape: [...headT.shape], data: (await headT.data()) as Float32Array };
  // Always bf16, as the reference writes it (an f32 head is rounded).
  writeSafetensors(path.join(ar, 'value_head.safetensors'), { weight: { ...head, saveAs: 'bf16' } });
  writeFileAtomic(path.join(ar, SIDECAR), [sidecar('critic')]);
  return { av, ar };
}

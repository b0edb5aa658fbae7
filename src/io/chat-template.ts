// Chat templates as transformers applies them: the Jinja source from tokenizer_config.json's
// `chat_template` (a string, or a list of named templates of which "default" is used), or from
// the chat_template.jinja / chat_template.json files newer transformers versions save beside
// it. Rendered with @huggingface/jinja (the Hugging Face port transformers.js uses, with
// trim_blocks and lstrip_blocks as transformers sets them), given the messages,
// add_generation_prompt and the special tokens by name (bos_token, eos_token, ...).
// `apply_chat_template(tokenize=True)` tokenises the rendered text without adding special
// tokens: a template that wants BOS writes it itself, so callers must not add a second one.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Template } from '@huggingface/jinja';
import { FormatError } from './errors.js';

export interface ChatMessage {
  role: string;
  content: string;
}

export class ChatTemplate {
  private readonly template: Template;

  constructor(
    readonly source: string,
    /** Special tokens by transformers' names (bos_token, eos_token, unk_token, pad_token). */
    readonly specialTokens: Record<string, string>,
    /** Where it came from, for messages. */
    readonly file: string,
  ) {
    try {
      this.template = new Template(source);
    } catch (e) {
      throw new FormatError(file, 'chat_template', `chat_template does not parse as Jinja (${(e as Error).message})`);
    }
  }

  render(messages: ChatMessage[], opts: { addGenerationPrompt?: boolean } = {}): string {
    try {
      return this.template.render({ ...this.specialTokens, messages, add_generation_prompt: opts.addGenerationPrompt ?? false });
    } catch (e) {
      throw new Error(`${this.file}: chat_template failed to render (${(e as Error).message})`);
    }
  }
}

const SPECIAL_KEYS = ['bos_token', 'eos_token', 'unk_token', 'pad_token', 'sep_token', 'cls_token', 'mask_token'];

/** A special-token entry of tokenizer_config.json: a string or an AddedToken object. */
function tokenText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return undefined;
}

/**
 * The chat template of a tokenizer directory, or undefined when it has none. Looks at
 * tokenizer_config.json `chat_template`, then chat_template.jinja, then chat_template.json.
 */
export function readChatTemplate(dir: string): ChatTemplate | undefined {
  const cfgFile = path.join(dir, 'tokenizer_config.json');
  let cfg: Record<string, unknown> = {};
  if (fs.existsSync(cfgFile)) {
    try {
      cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new FormatError(cfgFile, 'json', `not valid JSON (${(e as Error).message})`);
    }
  }
  const specials: Record<string, string> = {};
  for (const k of SPECIAL_KEYS) {
    const t = tokenText(cfg[k]);
    if (t !== undefined) specials[k] = t;
  }
  let source: unknown = cfg.chat_template;
  let file = cfgFile;
  if (source === undefined || source === null) {
    const jinja = path.join(dir, 'chat_template.jinja');
    const json = path.join(dir, 'chat_template.json');
    if (fs.existsSync(jinja)) (source = fs.readFileSync(jinja, 'utf8')), (file = jinja);
    else if (fs.existsSync(json)) {
      try {
        source = (JSON.parse(fs.readFileSync(json, 'utf8')) as { chat_template?: unknown }).chat_template;
      } catch (e) {
        throw new FormatError(json, 'json', `not valid JSON (${(e as Error).message})`);
      }
      file = json;
    } else return undefined;
  }
  if (Array.isArray(source)) {
    // [{name, template}, ...]: transformers uses the one named "default".
    const named = source.find((t) => (t as { name?: unknown })?.name === 'default') as { template?: unknown } | undefined;
    if (!named) throw new FormatError(file, 'chat_template', `chat_template lists templates ${JSON.stringify(source.map((t) => (t as { name?: unknown })?.name))} but none named "default"`);
    source = named.template;
  }
  if (typeof source !== 'string') throw new FormatError(file, 'chat_template', `chat_template is ${JSON.stringify(source)?.slice(0, 60)}, not a string`);
  return new ChatTemplate(source, specials, file);
}

// Chat templates as transformers applies them: the Jinja source from tokenizer_config.json's
// `chat_template` (a string, or a list of named templates of which "default" is used), or from
// the chat_template.jinja / chat_template.json files newer transformers versions save beside
// it. Rendered with @huggingface/jinja (the Hugging Face port transformers.js uses, with
// trim_blocks and lstrip_blocks as transformers sets them), given the messages,
// add_generation_prompt and the special tokens by name (bos_token, eos_token, ...).
// `apply_chat_template(tokenize=True)` tokenises the rendered text without adding special
// tokens: a template that wants BOS writes it itself, so callers must not add a second one.
//
// A template is code from a downloaded directory. Rendering is synchronous and cannot be
// interrupted, so a render runs under budgets (RENDER_LIMITS): evaluation steps (a loop that
// would run for hours), characters produced (huge output), and integer size (`indent(10**9)`
// would allocate a gigabyte in one call). Real templates stay far below each.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Interpreter, Template } from '@huggingface/jinja';
import { FormatError } from './errors.js';
import { parseJson } from './json.js';

/** Budgets of one render. Qwen2's and Llama-3's templates take a few hundred steps and a few KB. */
export const RENDER_LIMITS = {
  /** Expression and statement evaluations (with each loop body: three nested loops over range(1000) would be 10^9). */
  steps: 500_000,
  /** Characters of any one value, and of all rendered blocks together. */
  chars: 1 << 20,
  totalChars: 8 << 20,
  /** Largest number a template may compute (sizes, widths, range bounds: range(10**9) stops at its argument). */
  int: 1_000_000,
  /** Largest template source read from a file (published templates are under 20 KB). */
  sourceBytes: 1 << 20,
};

/** The budget of the render in progress (renders do not nest: rendering is synchronous). */
let budget: { steps: number; chars: number } | undefined;

class RenderLimit extends Error {}

// Every evaluation and every rendered block passes through these two methods of the
// interpreter, so wrapping them bounds any template. Only renders started by ChatTemplate pay.
type Value = { type?: string; value?: unknown } | undefined;
const proto = Interpreter.prototype as unknown as {
  evaluate(node: unknown, env: unknown): Value;
  renderBlock(statements: unknown, env: unknown): string;
};
const evaluate = proto.evaluate, renderBlock = proto.renderBlock;
proto.evaluate = function (node, env) {
  if (budget && --budget.steps < 0) throw new RenderLimit(`runs past ${RENDER_LIMITS.steps.toLocaleString('en-US')} evaluation steps (a loop that does not end in reasonable time)`);
  const v = evaluate.call(this, node, env);
  if (budget && v) {
    if (v.type === 'StringValue' && (v.value as string).length > RENDER_LIMITS.chars) throw new RenderLimit(`builds a string of ${(v.value as string).length.toLocaleString('en-US')} characters, more than ${RENDER_LIMITS.chars.toLocaleString('en-US')}`);
    if ((v.type === 'IntegerValue' || v.type === 'FloatValue') && Math.abs(v.value as number) > RENDER_LIMITS.int) throw new RenderLimit(`computes the number ${v.value}, beyond the ${RENDER_LIMITS.int.toLocaleString('en-US')} a chat template may use`);
  }
  return v;
};
proto.renderBlock = function (statements, env) {
  // A loop body is a block: counted here too, so loops with empty bodies are bounded as well.
  if (budget && --budget.steps < 0) throw new RenderLimit(`runs past ${RENDER_LIMITS.steps.toLocaleString('en-US')} evaluation steps (a loop that does not end in reasonable time)`);
  const out = renderBlock.call(this, statements, env);
  if (budget && (budget.chars -= out.length) < 0) throw new RenderLimit(`renders more than ${RENDER_LIMITS.totalChars.toLocaleString('en-US')} characters`);
  return out;
};

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
      throw new FormatError(file, 'chat_template', `chat_template does not parse as Jinja (${String((e as Error)?.message ?? e).slice(0, 300)})`);
    }
  }

  render(messages: ChatMessage[], opts: { addGenerationPrompt?: boolean } = {}): string {
    budget = { steps: RENDER_LIMITS.steps, chars: RENDER_LIMITS.totalChars };
    try {
      const out = this.template.render({ ...this.specialTokens, messages, add_generation_prompt: opts.addGenerationPrompt ?? false });
      if (typeof out !== 'string') throw new Error(`rendered ${typeof out}, not text`);
      if (out.length > RENDER_LIMITS.chars) throw new RenderLimit(`renders ${out.length.toLocaleString('en-US')} characters, more than ${RENDER_LIMITS.chars.toLocaleString('en-US')}`);
      return out;
    } catch (e) {
      // A RangeError here is the template's own deep recursion or an oversized string.
      const why = e instanceof RenderLimit ? `the template ${e.message}` : `${(e as Error)?.message ?? String(e)}`;
      throw new FormatError(this.file, 'chat_template', `chat_template failed to render (${why.slice(0, 300)})`);
    } finally {
      budget = undefined;
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
    const v = parseJson(readText(cfgFile, 64 << 20), cfgFile);
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new FormatError(cfgFile, 'json', `expected a JSON object, found ${Array.isArray(v) ? 'an array' : JSON.stringify(v)?.slice(0, 40)}`);
    cfg = v as Record<string, unknown>;
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
    if (fs.existsSync(jinja)) (source = readText(jinja, RENDER_LIMITS.sourceBytes)), (file = jinja);
    else if (fs.existsSync(json)) {
      source = (parseJson(readText(json, 2 * RENDER_LIMITS.sourceBytes), json) as { chat_template?: unknown } | null)?.chat_template;
      file = json;
    } else return undefined;
  }
  if (Array.isArray(source)) {
    // [{name, template}, ...]: transformers uses the one named "default".
    const named = source.find((t) => (t as { name?: unknown })?.name === 'default') as { template?: unknown } | undefined;
    if (!named) throw new FormatError(file, 'chat_template', `chat_template lists templates ${JSON.stringify(source.map((t) => (t as { name?: unknown })?.name)).slice(0, 200)} but none named "default"`);
    source = named.template;
  }
  if (typeof source !== 'string') throw new FormatError(file, 'chat_template', `chat_template is ${JSON.stringify(source)?.slice(0, 60)}, not a string`);
  if (source.length > RENDER_LIMITS.sourceBytes) throw new FormatError(file, 'chat_template', `chat_template is ${source.length.toLocaleString('en-US')} characters, more than the ${RENDER_LIMITS.sourceBytes.toLocaleString('en-US')} nla reads`);
  return new ChatTemplate(source, specials, file);
}

/** A text file no larger than `max` bytes (checked before reading it). */
function readText(file: string, max: number): string {
  const size = fs.statSync(file).size;
  if (size > max) throw new FormatError(file, 'size', `${size.toLocaleString('en-US')} bytes, more than the ${max.toLocaleString('en-US')} nla reads for this file`);
  return fs.readFileSync(file, 'utf8');
}

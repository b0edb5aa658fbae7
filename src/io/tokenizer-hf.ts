// Hugging Face tokenizer.json with a BPE model: byte-level BPE (GPT-2, Llama 3, Qwen2) and
// SentencePiece-style BPE (Llama 2, Mistral, TinyLlama: "▁" for spaces, <0xXX> byte fallback).
// Pipeline as in the tokenizers library: split out added tokens, then per remaining segment
// normalize -> pre-tokenize -> BPE each word. Decoding is interpreted from the `decoder` JSON
// into one byte-producing plan so multi-byte characters split across tokens come out right.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bpeMerge } from './bpe.js';
import { FormatError } from './errors.js';
import { parseJson } from './json.js';
import { buildNormalizer, buildPreTokenizer, CHAR_TO_BYTE, listOf, metaspaceScheme, type Normalizer, type PreTokenizer } from './hf-pretokenize.js';
import type { EncodeOptions, Tokenizer } from './tokenizer.js';

export interface HfTokenizerOptions {
  /** Override the BOS / EOS ids (e.g. from config.json). */
  bosId?: number;
  eosId?: number;
}

interface AddedToken {
  id: number;
  content: string;
  special: boolean;
}

/** How to turn tokens back into bytes, distilled from the decoder JSON. */
interface DecodePlan {
  byteLevel: boolean;
  replacements: [string, string][];
  byteFallback: boolean;
  /** leading spaces stripped from the start of the text (Strip start / Metaspace prefix) */
  stripStart: number;
}

const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;
const utf8 = new TextEncoder();
const CACHE_LIMIT = 50_000;
// Token ids past this are refused: real vocabularies stop near 260k, and ids index arrays.
const MAX_ID = 1 << 24;

export class HfTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  private readonly vocab = new Map<string, number>();
  private readonly idToToken: string[] = [];
  private readonly merges = new Map<number, { id: number; priority: number }>();
  private readonly added = new Map<number, AddedToken>();
  private readonly addedRe: RegExp | undefined;
  private readonly normalize: Normalizer;
  private readonly preTokenize: PreTokenizer;
  private readonly byteLevelInput: boolean;
  private readonly plan: DecodePlan;
  /** Id of model.unk_token, when the model names one. */
  readonly unkId: number | undefined;
  private readonly fuseUnk: boolean;
  private readonly byteFallback: boolean;
  private readonly ignoreMerges: boolean;
  private readonly cache = new Map<string, number[]>();

  static fromFile(file: string, opts: HfTokenizerOptions = {}): HfTokenizer {
    const json = parseJson(fs.readFileSync(file, 'utf8'), file);
    // tokenizer_config.json beside it names the BOS/EOS tokens most reliably.
    const cfgFile = path.join(path.dirname(file), 'tokenizer_config.json');
    let tokCfg: Record<string, unknown> | undefined;
    if (fs.existsSync(cfgFile)) tokCfg = parseJson(fs.readFileSync(cfgFile, 'utf8'), cfgFile) as Record<string, unknown>;
    return new HfTokenizer(json, file, opts, tokCfg);
  }

  constructor(json: unknown, file: string, opts: HfTokenizerOptions = {}, tokenizerConfig?: Record<string, unknown>) {
    const j = json as Record<string, unknown>;
    if (typeof j !== 'object' || j === null) throw new FormatError(file, 'json', 'tokenizer.json is not an object');
    const model = j.model as Record<string, unknown> | undefined;
    if (typeof model !== 'object' || model === null) throw new FormatError(file, 'model', 'field "model" is missing');
    // Old files omit model.type; the tokenizers library then infers BPE from "merges".
    const type = model.type ?? (model.merges ? 'BPE' : undefined);
    if (type !== 'BPE') throw new FormatError(file, 'model.type', `model.type=${JSON.stringify(model.type)} is not supported (only BPE)`);
    if (model.continuing_subword_prefix || model.end_of_word_suffix) {
      throw new FormatError(file, 'model.continuing_subword_prefix', 'BPE continuing_subword_prefix / end_of_word_suffix are not supported');
    }
    const vocab = model.vocab as Record<string, unknown>;
    if (typeof vocab !== 'object' || vocab === null) throw new FormatError(file, 'model.vocab', 'model.vocab is missing');
    for (const [tok, id] of Object.entries(vocab)) {
      if (!Number.isSafeInteger(id) || (id as number) < 0 || (id as number) >= MAX_ID) throw new FormatError(file, `model.vocab`, `model.vocab[${JSON.stringify(tok)}]=${JSON.stringify(id)} is not a token id`);
      this.vocab.set(tok, id as number);
      this.idToToken[id as number] = tok;
    }
    for (const [i, a] of listOf(j.added_tokens, file, 'added_tokens', true).entries()) {
      const t = (a ?? {}) as Record<string, unknown>;
      if (typeof t.content !== 'string' || !Number.isSafeInteger(t.id) || (t.id as number) < 0 || (t.id as number) >= MAX_ID) throw new FormatError(file, `added_tokens[${i}]`, `added_tokens[${i}] needs "id" and "content"`);
      this.added.set(t.id as number, { id: t.id as number, content: t.content, special: t.special === true });
      this.idToToken[t.id as number] = t.content;
      if (!this.vocab.has(t.content)) this.vocab.set(t.content, t.id as number);
    }
    this.vocabSize = this.idToToken.length;
    const M = this.vocabSize;
    for (const [i, m] of listOf(model.merges, file, 'model.merges', true).entries()) {
      // "a b" (classic) or ["a", "b"] (tokenizers >= 0.20, allows spaces inside tokens)
      const pair = typeof m === 'string' ? [m.slice(0, m.indexOf(' ')), m.slice(m.indexOf(' ') + 1)] : (m as string[]);
      if (!Array.isArray(pair) || pair.length !== 2 || !pair.every((x) => typeof x === 'string')) {
        throw new FormatError(file, `model.merges[${i}]`, `model.merges[${i}]=${JSON.stringify(m)} is not "a b" or ["a", "b"]`);
      }
      const a = this.vocab.get(pair[0]!);
      const b = this.vocab.get(pair[1]!);
      const merged = this.vocab.get(pair.join(''));
      if (a === undefined || b === undefined || merged === undefined || (typeof m === 'string' && m.indexOf(' ') < 0)) {
        throw new FormatError(file, `model.merges[${i}]`, `model.merges[${i}]=${JSON.stringify(m)} refers to tokens not in model.vocab`);
      }
      if (!this.merges.has(a * M + b)) this.merges.set(a * M + b, { id: merged, priority: i });
    }
    this.byteFallback = model.byte_fallback === true;
    this.fuseUnk = model.fuse_unk === true;
    this.ignoreMerges = model.ignore_merges === true;
    this.unkId = typeof model.unk_token === 'string' ? this.vocab.get(model.unk_token) : undefined;

    // Added tokens are matched first, longest first, as literal strings.
    const contents = [...this.added.values()].map((t) => t.content).filter((c) => c.length > 0);
    contents.sort((x, y) => y.length - x.length);
    this.addedRe = contents.length ? new RegExp(contents.map((c) => c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('|'), 'gu') : undefined;

    this.normalize = buildNormalizer(j.normalizer, file);
    const pre = buildPreTokenizer(j.pre_tokenizer, file);
    this.preTokenize = pre.run;
    this.byteLevelInput = pre.byteLevel;
    this.plan = decodePlan(j.decoder, file, pre.byteLevel);

    this.bosId = opts.bosId ?? this.specialId(tokenizerConfig?.bos_token, ['<s>', '<|begin_of_text|>', '<|startoftext|>', '<|endoftext|>']);
    this.eosId = opts.eosId ?? this.specialId(tokenizerConfig?.eos_token, ['</s>', '<|end_of_text|>', '<|endoftext|>', '<|im_end|>']);
  }

  /** Id of the token named in tokenizer_config.json, else of the first known name present. */
  private specialId(configured: unknown, fallbacks: string[]): number {
    if (configured === null) return -1; // explicitly none (e.g. Qwen2's bos_token)
    const name = typeof configured === 'string' ? configured : (configured as { content?: string } | undefined)?.content;
    for (const n of name !== undefined ? [name] : fallbacks) {
      const id = this.vocab.get(n);
      if (id !== undefined) return id;
    }
    return -1;
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    const ids: number[] = [];
    if (opts.bos) ids.push(this.requireId(this.bosId, 'BOS'));
    let pos = 0;
    const plain = (end: number): void => {
      if (end <= pos) return;
      const seg = this.normalize(text.slice(pos, end));
      if (seg.length > 0) for (const word of this.preTokenize([seg], pos === 0)) ids.push(...this.bpeWord(word));
    };
    if (this.addedRe) {
      for (const m of text.matchAll(this.addedRe)) {
        plain(m.index!);
        ids.push(this.vocab.get(m[0])!);
        pos = m.index! + m[0].length;
      }
    }
    plain(text.length);
    if (opts.eos) ids.push(this.requireId(this.eosId, 'EOS'));
    return ids;
  }

  private requireId(id: number, what: string): number {
    if (id < 0) throw new Error(`tokenizer has no ${what} token; pass ${what.toLowerCase()}Id when loading`);
    return id;
  }

  /** BPE of one pre-tokenized word (cached: natural text repeats words constantly). */
  private bpeWord(word: string): number[] {
    const hit = this.cache.get(word);
    if (hit) return hit;
    let out: number[];
    const whole = this.vocab.get(word);
    if (this.ignoreMerges && whole !== undefined) out = [whole];
    else {
      const syms: number[] = [];
      for (const ch of word) {
        const id = this.vocab.get(ch);
        if (id !== undefined) syms.push(id);
        else if (this.byteFallback && this.pushBytes(syms, ch)) continue;
        else if (this.unkId !== undefined) {
          if (!(this.fuseUnk && syms[syms.length - 1] === this.unkId)) syms.push(this.unkId);
        }
        // else: dropped, as the tokenizers library does when there is no unk token
      }
      const M = this.vocabSize;
      out = bpeMerge(syms, (a, b) => this.merges.get(a * M + b));
    }
    // Only short words are worth caching; without a splitting pre-tokenizer a "word" is a whole text.
    if (word.length <= 64) {
      if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
      this.cache.set(word, out);
    }
    return out;
  }

  private pushBytes(syms: number[], ch: string): boolean {
    const ids = [...utf8.encode(ch)].map((b) => this.vocab.get(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`));
    if (ids.some((id) => id === undefined)) return false;
    syms.push(...(ids as number[]));
    return true;
  }

  /** Bytes of one token; `first` applies the start-of-text space strip. */
  private bytesOf(id: number, first: boolean): Uint8Array {
    const added = this.added.get(id);
    if (added) return added.special ? new Uint8Array(0) : utf8.encode(added.content);
    const tok = this.idToToken[id];
    if (tok === undefined) throw new RangeError(`token id ${id} not in vocabulary`);
    let bytes: Uint8Array;
    if (this.plan.byteLevel) {
      bytes = Uint8Array.from([...tok].flatMap((c) => {
        const b = CHAR_TO_BYTE.get(c);
        return b !== undefined ? [b] : [...utf8.encode(c)];
      }));
    } else {
      const m = this.plan.byteFallback ? BYTE_PIECE.exec(tok) : null;
      if (m) bytes = Uint8Array.of(parseInt(m[1]!, 16));
      else bytes = utf8.encode(this.plan.replacements.reduce((s, [from, to]) => s.replaceAll(from, to), tok));
    }
    let k = 0;
    if (first) while (k < this.plan.stripStart && bytes[k] === 0x20) k++;
    return bytes.subarray(k);
  }

  tokenBytes(prev: number, id: number): Uint8Array {
    return this.bytesOf(id, prev === this.bosId);
  }

  decodeToken(prev: number, id: number): string {
    return new TextDecoder().decode(this.tokenBytes(prev, id));
  }

  decode(ids: number[]): string {
    const parts: Uint8Array[] = [];
    let first = true; // the strip applies to the first emitted (non-special) token
    for (const id of ids) {
      const b = this.bytesOf(id, first);
      if (first && !this.added.get(id)?.special) first = false;
      parts.push(b);
    }
    const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let off = 0;
    for (const p of parts) {
      all.set(p, off);
      off += p.length;
    }
    return new TextDecoder().decode(all);
  }

  pieces(ids: number[]): string[] {
    return ids.map((id) => this.idToToken[id] ?? `<invalid ${id}>`);
  }

  tokenToId(piece: string): number | undefined {
    return this.vocab.get(piece);
  }

  /** True when input text is mapped to GPT-2 byte characters before BPE. */
  get isByteLevel(): boolean {
    return this.byteLevelInput;
  }
}

function decodePlan(json: unknown, file: string, byteLevelInput: boolean): DecodePlan {
  const plan: DecodePlan = { byteLevel: false, replacements: [], byteFallback: false, stripStart: 0 };
  if (json === null || json === undefined) {
    plan.byteLevel = byteLevelInput;
    return plan;
  }
  const visit = (d: Record<string, unknown>, field: string): void => {
    switch (d?.type) {
      case 'Sequence':
        (listOf(d.decoders, file, `${field}.decoders`) as Record<string, unknown>[]).forEach((x, i) => visit(x, `${field}.decoders[${i}]`));
        return;
      case 'ByteLevel':
        plan.byteLevel = true;
        return;
      case 'Replace': {
        const p = d.pattern as Record<string, unknown>;
        if (typeof p?.String !== 'string') throw new FormatError(file, `${field}.pattern`, `${field}.pattern: only {"String": ...} is supported in decoders`);
        plan.replacements.push([p.String, String(d.content)]);
        return;
      }
      case 'ByteFallback':
        plan.byteFallback = true;
        return;
      case 'Fuse':
        return; // we always concatenate
      case 'Strip':
        if (d.content !== ' ' || Number(d.stop ?? 0) !== 0) throw new FormatError(file, `${field}`, `${field}: only Strip of leading spaces is supported`);
        plan.stripStart = Number(d.start ?? 0);
        return;
      case 'Metaspace':
        plan.replacements.push([typeof d.replacement === 'string' ? d.replacement : '▁', ' ']);
        plan.stripStart = metaspaceScheme(d) === 'never' ? 0 : 1;
        return;
      default:
        throw new FormatError(file, `${field}.type`, `${field}.type=${JSON.stringify(d?.type)} is not supported (supported: Sequence, ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace)`);
    }
  };
  visit(json as Record<string, unknown>, 'decoder');
  return plan;
}

// The tokenizer interface every model in nla talks to, plus helpers that work for any
// implementation: streaming decode of multi-byte UTF-8 across tokens, and loading by file.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HfTokenizer, type HfTokenizerOptions } from './tokenizer-hf.js';
import { Llama2cTokenizer } from './tokenizer-llama2c.js';

export interface EncodeOptions {
  /** prepend bosId (default false) */
  bos?: boolean;
  /** append eosId (default false) */
  eos?: boolean;
}

export interface Tokenizer {
  readonly vocabSize: number;
  /** -1 when the tokenizer has none */
  readonly bosId: number;
  /** -1 when the tokenizer has none */
  readonly eosId: number;
  encode(text: string, opts?: EncodeOptions): number[];
  /** Decode a whole sequence (assumed to start at the beginning of a text); special tokens are skipped. */
  decode(ids: number[]): string;
  /** Text of one generated token given the previous one (llama2.c run.c `decode`). */
  decodeToken(prev: number, id: number): string;
  /** Raw bytes of one token as decodeToken sees them; feed to StreamDecoder for streaming text. */
  tokenBytes(prev: number, id: number): Uint8Array;
  /** Vocabulary strings of the ids (as stored: "▁the", "Ġthe", "<0x0A>"). */
  pieces(ids: number[]): string[];
  tokenToId(piece: string): number | undefined;
}

/**
 * Streaming decode: a character split over several byte-fallback tokens is emitted once its
 * last byte arrives instead of as replacement characters.
 */
export class StreamDecoder {
  private readonly utf8 = new TextDecoder('utf-8');
  private prev: number;
  constructor(
    private readonly tok: Tokenizer,
    prev = tok.bosId,
  ) {
    this.prev = prev;
  }
  push(id: number): string {
    const bytes = this.tok.tokenBytes(this.prev, id);
    this.prev = id;
    return this.utf8.decode(bytes, { stream: true });
  }
  /** Flush an incomplete trailing sequence (as U+FFFD). */
  end(): string {
    return this.utf8.decode();
  }
}

/**
 * Load a tokenizer by file: `tokenizer.json` (or any .json, or a directory holding one) is a
 * Hugging Face tokenizer; a `.bin` is llama2.c's format.
 */
export function loadTokenizer(file: string, opts: HfTokenizerOptions = {}): Tokenizer {
  let p = file;
  if (fs.existsSync(p) && fs.statSync(p).isDirectory()) p = path.join(p, 'tokenizer.json');
  if (p.endsWith('.json')) return HfTokenizer.fromFile(p, opts);
  if (p.endsWith('.bin')) return Llama2cTokenizer.fromFile(p);
  throw new Error(`loadTokenizer: ${file}: unknown tokenizer format (expected tokenizer.json or a llama2.c .bin)`);
}

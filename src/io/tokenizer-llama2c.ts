// llama2.c tokenizer (tokenizer.bin / tok512.bin): int32 max_token_length, then per token
// float32 score, int32 length, raw bytes. Encoding follows run.c `encode()` exactly (dummy
// prefix space, one symbol per UTF-8 character, byte fallback <0xXX> = byte + 3, then merge the
// adjacent pair whose concatenation has the highest score, leftmost on ties). Pieces are raw
// bytes (some are not valid UTF-8 on their own), so lookups key on "binary strings" in which
// each char code is one byte: concatenating two keys concatenates the bytes.
import * as fs from 'node:fs';
import { bpeMerge } from './bpe.js';
import { FormatError } from './errors.js';
import type { EncodeOptions, Tokenizer } from './tokenizer.js';

const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;
const utf8 = new TextEncoder();

function binary(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}

export class Llama2cTokenizer implements Tokenizer {
  readonly bosId = 1;
  readonly eosId = 2;
  readonly vocabSize: number;
  private readonly keys: string[]; // binary-string piece per id
  private readonly lookup = new Map<string, number>();
  private readonly byteOf: Int16Array; // raw byte for <0xXX> pieces, else -1
  private readonly pieceStrings: string[];
  private readonly pieceIds = new Map<string, number>();

  constructor(
    readonly pieceBytes: Uint8Array[],
    readonly scores: Float32Array,
    readonly maxTokenLength: number,
  ) {
    this.vocabSize = pieceBytes.length;
    this.keys = pieceBytes.map(binary);
    this.keys.forEach((k, i) => this.lookup.has(k) || this.lookup.set(k, i));
    this.byteOf = new Int16Array(this.vocabSize).fill(-1);
    this.pieceStrings = pieceBytes.map((b) => new TextDecoder().decode(b));
    this.pieceStrings.forEach((p, i) => {
      const m = BYTE_PIECE.exec(p);
      if (m) this.byteOf[i] = parseInt(m[1]!, 16);
      if (!this.pieceIds.has(p)) this.pieceIds.set(p, i);
    });
  }

  static fromFile(file: string): Llama2cTokenizer {
    return Llama2cTokenizer.parse(fs.readFileSync(file), file);
  }

  /**
   * The format does not store the vocab size (run.c takes it from the checkpoint), so we read
   * entries until the end of the file; pass `vocabSize` to check it.
   */
  static parse(buf: Uint8Array, file: string, vocabSize?: number): Llama2cTokenizer {
    const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    if (buf.length < 4) throw new FormatError(file, 'max_token_length', `file has ${buf.length} bytes, too short for max_token_length`);
    const maxLen = view.getInt32(0, true);
    if (maxLen <= 0 || maxLen > 1 << 16) throw new FormatError(file, 'max_token_length', `max_token_length=${maxLen} is absurd`);
    const pieces: Uint8Array[] = [];
    const scores: number[] = [];
    let pos = 4;
    while (pos < buf.length) {
      const i = pieces.length;
      if (pos + 8 > buf.length) throw new FormatError(file, `token[${i}]`, `token ${i}: truncated entry header at byte ${pos} (file has ${buf.length} bytes)`);
      const score = view.getFloat32(pos, true);
      const len = view.getInt32(pos + 4, true);
      if (len < 0 || len > maxLen) throw new FormatError(file, `token[${i}].len`, `token ${i}: len=${len} outside 0..max_token_length=${maxLen}`);
      if (pos + 8 + len > buf.length) throw new FormatError(file, `token[${i}]`, `token ${i}: needs ${len} bytes at ${pos + 8} but file has ${buf.length} bytes (truncated?)`);
      pieces.push(buf.slice(pos + 8, pos + 8 + len));
      scores.push(score);
      pos += 8 + len;
    }
    if (vocabSize !== undefined && pieces.length !== vocabSize) {
      throw new FormatError(file, 'vocab_size', `has ${pieces.length} tokens but the model's vocab_size=${vocabSize}`);
    }
    if (pieces.length < 3) throw new FormatError(file, 'vocab_size', `has ${pieces.length} tokens; need at least <unk>, BOS, EOS`);
    // run.c's byte fallback emits id byte + 3 unchecked: ids 3..258 must be <0x00>..<0xFF>, or
    // encoding would hand out ids past the vocabulary (or the wrong pieces) for unknown characters.
    if (pieces.length < 259) throw new FormatError(file, 'vocab_size', `vocab_size: has ${pieces.length} tokens; need at least 259 (<unk>, BOS, EOS and the 256 byte pieces <0x00>..<0xFF> that byte fallback uses)`);
    for (let b = 0; b < 256; b++) {
      const want = `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
      if (binary(pieces[b + 3]!) !== want) throw new FormatError(file, `token[${b + 3}]`, `token ${b + 3} is ${JSON.stringify(binary(pieces[b + 3]!))}, expected the byte piece ${want} (byte fallback maps byte ${b} to id ${b + 3})`);
    }
    return new Llama2cTokenizer(pieces, Float32Array.from(scores), maxLen);
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    const tokens: number[] = [];
    if (opts.bos) tokens.push(this.bosId);
    // run.c: dummy prefix " " only for non-empty text; then one symbol per UTF-8 character.
    if (text.length > 0) this.pushPiece(tokens, ' ');
    for (const ch of text) this.pushPiece(tokens, ch);
    // run.c merges over the whole token list including BOS; in practice BOS never merges.
    const merged = bpeMerge(tokens, (a, b) => {
      const id = this.lookup.get(this.keys[a]! + this.keys[b]!);
      // best_score starts at -1e10 with a strict '>' test, so such scores never merge
      if (id === undefined || !(this.scores[id]! > -1e10)) return undefined;
      return { id, priority: -this.scores[id]! };
    });
    if (opts.eos) merged.push(this.eosId);
    return merged;
  }

  private pushPiece(tokens: number[], ch: string): void {
    const bytes = utf8.encode(ch);
    const id = this.lookup.get(binary(bytes));
    if (id !== undefined) tokens.push(id);
    else for (const b of bytes) tokens.push(b + 3); // byte fallback: <0x00> is id 3
  }

  tokenBytes(prev: number, id: number): Uint8Array {
    if (id < 0 || id >= this.vocabSize) throw new RangeError(`token id ${id} outside vocab of ${this.vocabSize}`);
    if (id === this.bosId || id === this.eosId) return new Uint8Array(0);
    const b = this.byteOf[id]!;
    if (b >= 0) return Uint8Array.of(b);
    const piece = this.pieceBytes[id]!;
    // "following BOS, sentencepiece decoder strips any leading whitespace" (run.c)
    return prev === this.bosId && piece[0] === 0x20 ? piece.subarray(1) : piece;
  }

  decodeToken(prev: number, id: number): string {
    return new TextDecoder().decode(this.tokenBytes(prev, id));
  }

  decode(ids: number[]): string {
    // The first piece of a text carries the dummy-prefix space even without BOS: treat the
    // start of the sequence like "after BOS" so decode(encode(s)) == s.
    const chunks = ids.map((id, i) => this.tokenBytes(i === 0 ? this.bosId : ids[i - 1]!, id));
    const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let off = 0;
    for (const c of chunks) {
      all.set(c, off);
      off += c.length;
    }
    return new TextDecoder().decode(all);
  }

  pieces(ids: number[]): string[] {
    return ids.map((id) => this.pieceStrings[id] ?? `<invalid ${id}>`);
  }

  tokenToId(piece: string): number | undefined {
    return this.pieceIds.get(piece);
  }

  score(id: number): number {
    return this.scores[id]!;
  }
}

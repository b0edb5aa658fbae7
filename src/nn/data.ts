// Language-model training data: a corpus tokenized once into documents, served as random
// [B, T] windows (inputs and next-token targets) drawn from a SeededRng whose 32-bit state a
// checkpoint saves, so a resumed run sees exactly the batches an uninterrupted one would.
//
// Two ways to cut windows:
//   'stream'    documents are concatenated (each begins with BOS / ends with EOS when the
//               tokenizer has them) and a window may start anywhere: every row is full.
//   'documents' a row holds one document (a random T+1 window of it if it is longer); shorter
//               rows are right-padded and their padded targets are IGNORE_INDEX, which the
//               fused cross-entropy skips (and does not count in the mean).
import * as fs from 'node:fs';
import type { Tokenizer } from '../io/tokenizer.js';
import { SeededRng } from '../util/rng.js';

/** Target value of padded positions (PyTorch's convention); pass as crossEntropy's ignoreIndex. */
export const IGNORE_INDEX = -100;

export interface Batch {
  /** Input ids [B, T], row-major. */
  inputs: Int32Array;
  /** Next-token targets [B, T]; IGNORE_INDEX where nothing is to be predicted. */
  targets: Int32Array;
  B: number;
  T: number;
  /** Number of targets that count (not IGNORE_INDEX). */
  count: number;
}

export type WindowMode = 'stream' | 'documents';

export interface TokenizeOptions {
  /** How the text splits into documents (default: blank lines). A string[] is taken as documents as-is. */
  separator?: string | RegExp;
  /** Prepend the tokenizer's BOS to each document (default true, when it has one). */
  bos?: boolean;
  /** Append the tokenizer's EOS to each document (default true, when it has one). */
  eos?: boolean;
}

export class TokenDataset {
  /** The documents as token ids. */
  readonly docs: Int32Array[];
  /** All documents concatenated (what 'stream' windows are cut from). */
  readonly stream: Int32Array;

  constructor(docs: ArrayLike<number>[], readonly vocabSize?: number) {
    this.docs = docs.filter((d) => d.length > 0).map((d) => Int32Array.from(d));
    if (!this.docs.length) throw new Error('TokenDataset: the corpus has no tokens');
    const total = this.docs.reduce((a, d) => a + d.length, 0);
    this.stream = new Int32Array(total);
    let off = 0;
    for (const d of this.docs) {
      if (vocabSize !== undefined) {
        for (let i = 0; i < d.length; i++) {
          if (d[i] < 0 || d[i] >= vocabSize) throw new Error(`TokenDataset: token ${d[i]} is out of range for a vocabulary of ${vocabSize}`);
        }
      }
      this.stream.set(d, off);
      off += d.length;
    }
  }

  get tokens(): number {
    return this.stream.length;
  }

  /** Tokenize a text (split into documents) or a list of documents. */
  static fromText(text: string | string[], tok: Tokenizer, opts: TokenizeOptions = {}): TokenDataset {
    const parts = Array.isArray(text) ? text : text.split(opts.separator ?? /\n\s*\n/);
    const docs = parts
      .map((p) => p.trim())
      .filter(Boolean)
      .map((p) => tok.encode(p, { bos: (opts.bos ?? true) && tok.bosId >= 0, eos: (opts.eos ?? true) && tok.eosId >= 0 }));
    return new TokenDataset(docs, tok.vocabSize);
  }

  /** Tokenize a UTF-8 text file (documents separated by blank lines by default). */
  static fromFile(file: string, tok: Tokenizer, opts: TokenizeOptions = {}): TokenDataset {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      throw new Error(`${file}: cannot read the training text (${(e as Error).message})`);
    }
    try {
      return TokenDataset.fromText(text, tok, opts);
    } catch (e) {
      throw new Error(`${file}: ${(e as Error).message}`);
    }
  }

  /** Split off the last `fraction` of the documents (at least one each side) for validation. */
  split(fraction: number): [TokenDataset, TokenDataset] {
    if (!(fraction > 0 && fraction < 1)) throw new Error(`TokenDataset.split: fraction ${fraction} must be in (0, 1)`);
    if (this.docs.length < 2) throw new Error('TokenDataset.split: need at least two documents');
    const nVal = Math.min(this.docs.length - 1, Math.max(1, Math.round(this.docs.length * fraction)));
    const cut = this.docs.length - nVal;
    return [new TokenDataset(this.docs.slice(0, cut), this.vocabSize), new TokenDataset(this.docs.slice(cut), this.vocabSize)];
  }
}

export interface LoaderOptions {
  batchSize: number;
  seqLen: number;
  seed: number;
  /** Default 'stream' (falls back to nothing: a stream shorter than seqLen + 1 is an error). */
  mode?: WindowMode;
  /** Input id written at padded positions in 'documents' mode (default 0; never a target). */
  padId?: number;
}

/** Random [B, T] windows of a TokenDataset from a seeded RNG (save `state`, restore it to resume). */
export class DataLoader {
  readonly rng: SeededRng;
  readonly mode: WindowMode;
  readonly batchSize: number;
  readonly seqLen: number;
  readonly padId: number;
  // Document sampling weights for 'documents' mode: proportional to the windows a document offers.
  private readonly cum: Float64Array;

  constructor(readonly data: TokenDataset, opts: LoaderOptions) {
    const { batchSize, seqLen } = opts;
    if (!Number.isSafeInteger(batchSize) || batchSize <= 0) throw new Error(`DataLoader: batchSize ${batchSize} must be a positive integer`);
    if (!Number.isSafeInteger(seqLen) || seqLen <= 0) throw new Error(`DataLoader: seqLen ${seqLen} must be a positive integer`);
    this.batchSize = batchSize;
    this.seqLen = seqLen;
    this.mode = opts.mode ?? 'stream';
    this.padId = opts.padId ?? 0;
    this.rng = new SeededRng(opts.seed);
    if (this.mode === 'stream' && data.tokens < seqLen + 1) {
      throw new Error(`DataLoader: the corpus has ${data.tokens} tokens, fewer than one window of seqLen + 1 = ${seqLen + 1}; use a shorter seqLen or mode 'documents'`);
    }
    this.cum = new Float64Array(data.docs.length);
    let acc = 0;
    data.docs.forEach((d, i) => (this.cum[i] = acc += Math.max(1, d.length - seqLen)));
  }

  /** The RNG state (what a checkpoint stores). */
  get state(): number {
    return this.rng.state;
  }
  set state(s: number) {
    this.rng.state = s >>> 0;
  }

  private randInt(n: number): number {
    return Math.min(n - 1, Math.floor(this.rng.next() * n));
  }

  /** The next random batch. */
  next(): Batch {
    const B = this.batchSize, T = this.seqLen;
    const inputs = new Int32Array(B * T), targets = new Int32Array(B * T);
    let count = 0;
    for (let b = 0; b < B; b++) {
      let src: Int32Array;
      if (this.mode === 'stream') {
        const s = this.data.stream;
        const start = this.randInt(s.length - T);
        src = s.subarray(start, start + T + 1);
      } else {
        const r = this.rng.next() * this.cum[this.cum.length - 1];
        let lo = 0, hi = this.cum.length - 1;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (this.cum[mid] > r) hi = mid;
          else lo = mid + 1;
        }
        const d = this.data.docs[lo];
        const start = d.length > T + 1 ? this.randInt(d.length - T) : 0;
        src = d.subarray(start, start + T + 1);
      }
      const n = src.length - 1; // predictable positions in this row
      for (let t = 0; t < T; t++) {
        inputs[b * T + t] = t < src.length ? src[t] : this.padId;
        targets[b * T + t] = t < n ? src[t + 1] : IGNORE_INDEX;
      }
      count += Math.min(T, Math.max(0, n));
    }
    return { inputs, targets, B, T, count };
  }
}

/**
 * A character-level tokenizer built from a text (id 0 = BOS, 1 = EOS, then one id per distinct
 * character in code-point order), for training small models on any text file without a trained
 * vocabulary. `chars` is all it needs to be rebuilt (store it beside a checkpoint).
 */
export class CharTokenizer implements Tokenizer {
  readonly bosId = 0;
  readonly eosId = 1;
  readonly vocabSize: number;
  readonly chars: string[];
  private readonly ids = new Map<string, number>();

  constructor(chars: Iterable<string>) {
    this.chars = [...new Set(chars)];
    this.chars.forEach((c, i) => {
      if ([...c].length !== 1) throw new Error(`CharTokenizer: "${c}" is not a single character`);
      this.ids.set(c, i + 2);
    });
    this.vocabSize = this.chars.length + 2;
  }

  /** The distinct characters of `text`, sorted by code point. */
  static fromText(text: string): CharTokenizer {
    return new CharTokenizer([...new Set(text)].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!));
  }

  encode(text: string, opts: { bos?: boolean; eos?: boolean } = {}): number[] {
    const out: number[] = opts.bos ? [this.bosId] : [];
    for (const c of text) {
      const id = this.ids.get(c);
      if (id === undefined) throw new Error(`CharTokenizer: character ${JSON.stringify(c)} is not in the vocabulary`);
      out.push(id);
    }
    if (opts.eos) out.push(this.eosId);
    return out;
  }
  decode(ids: number[]): string {
    return ids.map((id) => (id >= 2 ? this.chars[id - 2] ?? '' : '')).join('');
  }
  decodeToken(_prev: number, id: number): string {
    return id >= 2 ? this.chars[id - 2] ?? '' : '';
  }
  tokenBytes(prev: number, id: number): Uint8Array {
    return new TextEncoder().encode(this.decodeToken(prev, id));
  }
  pieces(ids: number[]): string[] {
    return ids.map((id) => (id === 0 ? '<s>' : id === 1 ? '</s>' : this.chars[id - 2] ?? '<unk>'));
  }
  tokenToId(piece: string): number | undefined {
    return piece === '<s>' ? 0 : piece === '</s>' ? 1 : this.ids.get(piece);
  }
}

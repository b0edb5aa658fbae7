// Activation store: h rows for many (document, position) pairs, in shards of raw little-endian
// f16/f32 rows plus msgpack row metadata, and a manifest written last (atomically). Readers
// stream shard by shard, so training never holds the whole store in memory.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pack, unpack } from 'msgpackr';
import { decodeF16, encodeF16 } from '../io/half.js';
import { writeFileAtomic } from '../io/atomic-write.js';
import { parseJson } from '../io/json.js';
import { checkManifest, checkRowMeta } from './store-check.js';
import type { SummaryFormat } from './corpus.js';

export interface RowMeta {
  doc: number;
  /** Token index of h in the document. */
  pos: number;
  token: number;
  prevToken: number;
  /** Known-answer corpus: the summary at this cut and the ground truth. */
  summary?: string;
  truth?: { known: Record<string, string>; currentWord: string };
  /** Which part of the data this row belongs to (av, ar, rl, eval). */
  split?: string;
  /** Where the document came from; missing (stores written before sources were recorded) = 'known-answer'. */
  source?: RowSource;
  /** Sampling seed of a document sampled from M (source 'model'): regenerates it, and keeps held-out samples disjoint. */
  seed?: number;
}

/** Document sources of a store: the built-in stories, samples of M, a plain-text file, a JSONL file. */
export const ROW_SOURCES = ['known-answer', 'model', 'text', 'jsonl'] as const;
export type RowSource = (typeof ROW_SOURCES)[number];

/** A row's source, reading rows without one as known-answer. */
export const rowSource = (m: Pick<RowMeta, 'source'>): RowSource => m.source ?? 'known-answer';

/** The mix of sources an extraction asked for and got (manifest field "sources"; absent in single-source stores). */
export interface SourceMix {
  /** Documents asked for per source (the stated proportions are these counts over their sum). */
  asked: Partial<Record<RowSource, number>>;
  proportions: Partial<Record<RowSource, number>>;
  /** Documents that gave at least one row, and rows, per source. */
  docs: Partial<Record<RowSource, number>>;
  rows: Partial<Record<RowSource, number>>;
  /** Sampling of M: base seed (document i has seed base + i), count, temperature, tokens cap. */
  model?: { seedBase: number; count: number; temperature: number; maxTokens: number };
  files?: Partial<Record<'text' | 'jsonl', string>>;
  /** Cut points per document (per known-answer story where the mix has both and they differ; `modelCuts` then gives the sampled documents'). */
  cuts: number;
  modelCuts?: number;
  /** How the training documents of text sources were cut (model-text.ts CutRule; absent: random). */
  cutRule?: 'balanced';
  /** Of each training document's random cuts, `cuts` fall below token index `below` (model-text.ts openingCuts; absent: none). */
  openingCuts?: { cuts: number; below: number };
  /**
   * The first token index a cut may fall on; `textMinTokens` that of the text sources (samples of
   * M, --text, --jsonl) when it differs (the known-answer stories start later: their facts come first).
   */
  minTokens: number;
  textMinTokens?: number;
}

export interface StoreManifest {
  format: 'nla-activations/1';
  model: { name: string; sha256?: string; dim: number; nLayers: number };
  layer: number;
  dtype: 'f16' | 'f32';
  d: number;
  count: number;
  shards: { file: string; meta: string; count: number }[];
  /** Raw-norm quantiles {q25,q50,q75,q95}: alpha defaults to q75. */
  norms: Record<string, number>;
  /** Mean of the L2-normalised (to sqrt d) rows, and Var = mean MSE to it. */
  mean: number[];
  variance: number;
  sources?: SourceMix;
  /** How the rows' summaries were written (absent in stores written before it was recorded: 3 words quoted, every fact). */
  summary?: SummaryFormat;
}

export class StoreWriter {
  private rows: Float32Array[] = [];
  private metas: RowMeta[] = [];
  private shards: StoreManifest['shards'] = [];
  private count = 0;
  private norms: number[] = [];
  private sum: Float64Array;

  constructor(
    readonly dir: string,
    readonly header: Pick<StoreManifest, 'model' | 'layer' | 'dtype' | 'd'> & Pick<Partial<StoreManifest>, 'sources'>,
    readonly shardSize = 4096,
  ) {
    fs.mkdirSync(dir, { recursive: true });
    this.sum = new Float64Array(header.d);
  }

  add(h: Float32Array, meta: RowMeta): void {
    if (h.length !== this.header.d) throw new Error(`activation store: row of width ${h.length}, store width ${this.header.d}`);
    let n2 = 0;
    for (const v of h) n2 += v * v;
    const norm = Math.sqrt(n2);
    if (!Number.isFinite(norm)) throw new Error(`activation store: non-finite activation at doc ${meta.doc} pos ${meta.pos}`);
    this.norms.push(norm);
    const s = Math.sqrt(h.length) / Math.max(norm, 1e-12);
    const u = h.map((v) => v * s);
    for (let i = 0; i < h.length; i++) this.sum[i] += u[i];
    this.rows.push(h);
    this.metas.push(meta);
    this.count++;
    if (this.rows.length >= this.shardSize) this.flushShard();
  }

  private flushShard(): void {
    if (!this.rows.length) return;
    const i = this.shards.length;
    const file = `shard-${String(i).padStart(5, '0')}.${this.header.dtype}`;
    const meta = `shard-${String(i).padStart(5, '0')}.meta.msgpack`;
    const flat = new Float32Array(this.rows.length * this.header.d);
    this.rows.forEach((r, k) => flat.set(r, k * this.header.d));
    const bytes = this.header.dtype === 'f16' ? new Uint8Array(encodeF16(flat).buffer) : new Uint8Array(flat.buffer);
    writeFileAtomic(path.join(this.dir, file), [bytes]);
    writeFileAtomic(path.join(this.dir, meta), [pack(this.metas)]);
    this.shards.push({ file, meta, count: this.rows.length });
    this.rows = [];
    this.metas = [];
  }

  /** Flush the last shard and write the manifest (the store is valid only once this returns). */
  finish(): StoreManifest {
    this.flushShard();
    const d = this.header.d;
    const mean = Array.from(this.sum, (v) => v / Math.max(this.count, 1));
    // Every normalised row has squared norm d, so mean_i |u_i - m|^2 / d = 1 - |m|^2 / d:
    // Var needs only the running sum, not the rows.
    const variance = 1 - mean.reduce((a, v) => a + v * v, 0) / d;
    const sorted = [...this.norms].sort((a, b) => a - b);
    const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(p * (sorted.length - 1))))] ?? 0;
    const manifest: StoreManifest = {
      format: 'nla-activations/1',
      ...this.header,
      count: this.count,
      shards: this.shards,
      norms: { q25: q(0.25), q50: q(0.5), q75: q(0.75), q95: q(0.95) },
      mean,
      variance,
    };
    writeFileAtomic(path.join(this.dir, 'manifest.json'), [new TextEncoder().encode(JSON.stringify(manifest, null, 1))]);
    return manifest;
  }
}

export class ActivationStore {
  private constructor(readonly dir: string, readonly manifest: StoreManifest) {}

  static open(dir: string, expect?: { model?: string; layer?: number; d?: number }): ActivationStore {
    const file = path.join(dir, 'manifest.json');
    if (!fs.existsSync(file)) throw new Error(`${file}: no activation store here (run \`nla extract\` first)`);
    const m = parseJson(fs.readFileSync(file, 'utf8'), file);
    checkManifest(m, file);
    if (expect?.model !== undefined && m.model?.name !== expect.model) throw new Error(`${file}: activations are from model "${m.model?.name}", not "${expect.model}"`);
    if (expect?.layer !== undefined && m.layer !== expect.layer) throw new Error(`${file}: activations are from layer ${m.layer}, not layer ${expect.layer}`);
    if (expect?.d !== undefined && m.d !== expect.d) throw new Error(`${file}: activation width ${m.d}, model width ${expect.d}`);
    return new ActivationStore(dir, m);
  }

  /** Rows and metadata of one shard. */
  readShard(i: number): { h: Float32Array; meta: RowMeta[] } {
    const s = this.manifest.shards[i];
    const file = path.join(this.dir, s.file);
    const buf = fs.readFileSync(file);
    const bytesPer = this.manifest.dtype === 'f16' ? 2 : 4;
    if (buf.byteLength !== s.count * this.manifest.d * bytesPer) throw new Error(`${file}: ${buf.byteLength} bytes, manifest says ${s.count} rows of ${this.manifest.d} ${this.manifest.dtype}`);
    const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
    const h = this.manifest.dtype === 'f16' ? decodeF16(new Uint16Array(ab)) : new Float32Array(ab);
    const metaFile = path.join(this.dir, s.meta);
    let meta: unknown;
    try {
      meta = unpack(fs.readFileSync(metaFile));
    } catch (e) {
      throw new Error(`${metaFile}: not readable msgpack (${(e as Error).message}); truncated or damaged?`);
    }
    checkRowMeta(meta, s.count, metaFile);
    return { h, meta };
  }

  /** Stream rows shard by shard in batches; shuffles within a shard when a seed is given. */
  *batches(size: number, rand?: () => number): Generator<{ h: Float32Array; meta: RowMeta[] }> {
    const d = this.manifest.d;
    const order = [...this.manifest.shards.keys()];
    if (rand) shuffle(order, rand);
    for (const si of order) {
      const { h, meta } = this.readShard(si);
      const idx = [...meta.keys()];
      if (rand) shuffle(idx, rand);
      for (let b = 0; b < idx.length; b += size) {
        const pick = idx.slice(b, b + size);
        const out = new Float32Array(pick.length * d);
        pick.forEach((r, k) => out.set(h.subarray(r * d, (r + 1) * d), k * d));
        yield { h: out, meta: pick.map((r) => meta[r]) };
      }
    }
  }

  /** Everything at once (small stores: evaluation, baselines). */
  readAll(): { h: Float32Array; meta: RowMeta[] } {
    const parts = this.manifest.shards.map((_, i) => this.readShard(i));
    const h = new Float32Array(this.manifest.count * this.manifest.d);
    let off = 0;
    for (const p of parts) (h.set(p.h, off), (off += p.h.length));
    return { h, meta: parts.flatMap((p) => p.meta) };
  }
}

function shuffle<T>(a: T[], rand: () => number): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
}

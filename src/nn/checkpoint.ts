// Training checkpoints: weights, optimizer state, step and RNG state, written to a temporary
// file, fsynced, then renamed (src/io/atomic-write.ts), so a crash never leaves a torn file.
//
// Format 'nla-checkpoint/2' (written): tensors are raw sections, written one at a time, so a
// checkpoint never has to fit one buffer (a 0.5B model's weights + AdamW moments are 3.8 GB,
// past Node's 2 GiB Buffer limit) and the host never holds more than one tensor extra:
//   "NLACKPT2" | tensor bytes, little-endian, back to back | header (UTF-8 JSON) | trailer
//   trailer (24 bytes): header offset u64 | header length u64 | CRC-32 of the header u32 | "NLAE"
// The header is the checkpoint's fields with each tensor replaced by {"$t": i}, plus
// "tensors": [{name, dtype, shape, offset, bytes, crc32}]. The header goes last because the
// CRCs are known only once the bytes are written. Reading checks every field and range
// against the file size and every CRC, then hands out tensors whose `data` is read from the
// file on access (never cached), so a resume uploads one tensor at a time.
// 'nla-checkpoint/1' (one msgpack map) is still read, for runs started before format 2.
import * as fs from 'node:fs';
import { crc32 } from 'node:zlib';
import { unpack } from 'msgpackr';
import { AtomicFile, readFully } from '../io/atomic-write.js';
import { parseJson } from '../io/json.js';
import type { HostTensor } from '../io/host-tensor.js';

export interface Checkpoint {
  format: 'nla-checkpoint/1' | 'nla-checkpoint/2';
  step: number;
  /** Named parameter groups, e.g. { model: ..., head: ... }. */
  weights: Record<string, Record<string, HostTensor>>;
  /** Free-form; format 2 stores any tensor inside it (e.g. AdamW moments) as a section. */
  optimizer?: Record<string, unknown>;
  rngState?: number;
  extra?: Record<string, unknown>;
}

/** A tensor fetched only when the writer reaches it (e.g. downloaded from the GPU), then dropped. */
export interface DeferredTensor {
  dtype: 'f32' | 'i32';
  shape: number[];
  fetch: () => Promise<Float32Array | Int32Array> | Float32Array | Int32Array;
}

/** What saveCheckpointStreamed takes: a Checkpoint whose tensors may be deferred. */
export interface CheckpointSource extends Omit<Checkpoint, 'format' | 'weights'> {
  weights: Record<string, Record<string, HostTensor | DeferredTensor>>;
}

interface TensorEntry {
  name: string;
  dtype: 'f32' | 'i32';
  shape: number[];
  offset: number;
  bytes: number;
  crc32: number;
}

const MAGIC = Buffer.from('NLACKPT2', 'latin1');
const END = Buffer.from('NLAE', 'latin1');
const TRAILER = 24;
const PIECE = 64 << 20; // write/read/CRC granularity (readSync and writeSync cap single calls)

/** Write a checkpoint whose tensors are all on the host (small models, tests). */
export function saveCheckpoint(file: string, ck: Omit<Checkpoint, 'format'>): void {
  const w = new SectionWriter(file);
  try {
    const header = walk(ck, '', (t, name) => {
      if (!isHostTensor(t)) throw new Error(`${file}: tensor "${name}" is deferred; use saveCheckpointStreamed`);
      return w.add(name, t.dtype as 'f32' | 'i32', t.shape, t.data);
    });
    w.finish(header);
  } catch (e) {
    w.abort();
    throw e;
  }
}

/**
 * Write a checkpoint fetching deferred tensors in order as the writer reaches them. Fetches of
 * the next tensors start early while they total at most `prefetchBytes` (a GPU readback has a
 * fixed latency: a 0.5B model has hundreds of small tensors), so the host holds at most one
 * tensor beyond that window.
 */
export async function saveCheckpointStreamed(file: string, ck: CheckpointSource, opts: { prefetchBytes?: number } = {}): Promise<void> {
  const windowBytes = opts.prefetchBytes ?? 64 << 20;
  const w = new SectionWriter(file);
  const pending = new Map<number, Promise<Float32Array | Int32Array>>();
  try {
    // Two passes: collect the tensor slots in order, then fetch and write them.
    const jobs: { name: string; t: HostTensor | DeferredTensor; ref: { $t: number } }[] = [];
    const header = walk(ck, '', (t, name) => {
      const ref = { $t: jobs.length };
      jobs.push({ name, t, ref });
      return ref;
    });
    const bytesOf = (i: number) => 4 * numel(jobs[i].t.shape);
    let next = 0, inflight = 0;
    for (let i = 0; i < jobs.length; i++) {
      while (next < jobs.length && (pending.size === 0 || inflight + bytesOf(next) <= windowBytes)) {
        const t = jobs[next].t;
        const p = Promise.resolve(isHostTensor(t) ? t.data : (t as DeferredTensor).fetch());
        p.catch(() => {}); // awaited in order below; a later failure must not go unhandled meanwhile
        pending.set(next, p);
        inflight += bytesOf(next++);
      }
      const data = await pending.get(i)!;
      pending.delete(i);
      inflight -= bytesOf(i);
      const j = jobs[i];
      const idx = w.add(j.name, j.t.dtype as 'f32' | 'i32', j.t.shape, data);
      if (idx.$t !== j.ref.$t) throw new Error(`${file}: internal: tensor order changed`);
    }
    w.finish(header);
  } catch (e) {
    await Promise.allSettled(pending.values()); // no readback still running after we return
    w.abort();
    throw e;
  }
}

/** Sections appended to an AtomicFile; the header and trailer are written by finish(). */
class SectionWriter {
  private readonly out: AtomicFile;
  private pos = 0;
  readonly tensors: TensorEntry[] = [];

  constructor(readonly file: string) {
    this.out = new AtomicFile(file);
    this.put(MAGIC);
  }

  private put(b: Uint8Array): void {
    this.out.write(b);
    this.pos += b.byteLength;
  }

  add(name: string, dtype: 'f32' | 'i32', shape: number[], data: Float32Array | Int32Array): { $t: number } {
    if (dtype !== 'f32' && dtype !== 'i32') throw new Error(`${this.file}: tensor "${name}" has dtype ${String(dtype)}; checkpoints hold f32 and i32`);
    if ((dtype === 'i32') !== data instanceof Int32Array) throw new Error(`${this.file}: tensor "${name}" is ${dtype} but holds a ${data.constructor.name}`);
    if (data.length !== numel(shape)) throw new Error(`${this.file}: tensor "${name}" has ${data.length} values for shape [${shape}]`);
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const offset = this.pos;
    let crc = 0;
    for (let p = 0; p < bytes.length; p += PIECE) {
      const piece = bytes.subarray(p, Math.min(bytes.length, p + PIECE));
      crc = crc32(piece, crc);
      this.put(piece);
    }
    this.tensors.push({ name, dtype, shape: [...shape], offset, bytes: bytes.length, crc32: crc >>> 0 });
    return { $t: this.tensors.length - 1 };
  }

  finish(body: Record<string, unknown>): void {
    const header = Buffer.from(JSON.stringify({ ...body, format: 'nla-checkpoint/2', tensors: this.tensors }), 'utf8');
    const headerOffset = this.pos;
    this.put(header);
    const tr = Buffer.alloc(TRAILER);
    tr.writeBigUInt64LE(BigInt(headerOffset), 0);
    tr.writeBigUInt64LE(BigInt(header.length), 8);
    tr.writeUInt32LE(crc32(header) >>> 0, 16);
    END.copy(tr, 20);
    this.put(tr);
    this.out.commit();
  }

  abort(): void {
    this.out.abort();
  }
}

/**
 * The body with every tensor replaced by what `onTensor` returns ({$t: i}). Tensors may sit
 * anywhere (weights, optimizer moments); `name` is their path, for messages.
 */
function walk(v: unknown, name: string, onTensor: (t: HostTensor | DeferredTensor, name: string) => { $t: number }): Record<string, unknown> {
  const rec = (x: unknown, at: string): unknown => {
    if (isHostTensor(x) || isDeferred(x)) return onTensor(x, at);
    if (ArrayBuffer.isView(x)) throw new Error(`checkpoint: "${at}" is a bare typed array; give it as {dtype, shape, data}`);
    if (Array.isArray(x)) return x.map((e, i) => rec(e, `${at}/${i}`));
    if (typeof x === 'object' && x !== null) return Object.fromEntries(Object.entries(x).filter(([, e]) => e !== undefined).map(([k, e]) => [k, rec(e, at ? `${at}/${k}` : k)]));
    return x;
  };
  return rec(v, name) as Record<string, unknown>;
}

function isHostTensor(x: unknown): x is HostTensor {
  return typeof x === 'object' && x !== null && 'dtype' in x && 'shape' in x && 'data' in x && ArrayBuffer.isView((x as HostTensor).data);
}
function isDeferred(x: unknown): x is DeferredTensor {
  return typeof x === 'object' && x !== null && 'dtype' in x && 'shape' in x && typeof (x as DeferredTensor).fetch === 'function';
}

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Read a checkpoint of either format. Format 2's tensors are read from the file when accessed. */
export function loadCheckpoint(file: string): Checkpoint {
  if (!fs.existsSync(file)) throw new Error(`${file}: checkpoint not found`);
  const fd = fs.openSync(file, 'r');
  let head: Buffer;
  try {
    head = Buffer.alloc(Math.min(MAGIC.length, fs.fstatSync(fd).size));
    readFully(fd, head, 0, file);
  } finally {
    fs.closeSync(fd);
  }
  return head.equals(MAGIC) ? loadV2(file) : loadV1(file);
}

function loadV2(file: string): Checkpoint {
  const fd = fs.openSync(file, 'r');
  try {
    const st = fs.fstatSync(fd);
    const size = st.size;
    if (size < MAGIC.length + TRAILER) throw new Error(`${file}: ${size} bytes, too short for a checkpoint (truncated?)`);
    const tr = Buffer.alloc(TRAILER);
    readFully(fd, tr, size - TRAILER, file);
    if (!tr.subarray(20).equals(END)) throw new Error(`${file}: no end marker: the checkpoint is truncated or damaged`);
    const hOff = Number(tr.readBigUInt64LE(0)), hLen = Number(tr.readBigUInt64LE(8));
    if (hOff < MAGIC.length || hOff + hLen + TRAILER !== size) throw new Error(`${file}: header at byte ${hOff} of ${hLen} bytes does not end where the trailer starts (file of ${size} bytes)`);
    const hb = Buffer.alloc(hLen);
    readFully(fd, hb, hOff, file);
    if ((crc32(hb) >>> 0) !== tr.readUInt32LE(16)) throw new Error(`${file}: the header's CRC-32 does not match: the checkpoint is damaged`);
    const raw = parseJson(hb.toString('utf8'), file, 'header');
    if (!isObj(raw) || raw.format !== 'nla-checkpoint/2') throw new Error(`${file}: field "format" is ${show(isObj(raw) ? raw.format : raw)}, expected "nla-checkpoint/2"`);
    const entries = checkEntries(file, raw.tensors, hOff);
    // Every section's CRC is checked now, streaming (8 MiB at a time), so a damaged file is
    // refused before a run starts; lazy reads check again (the file could change later).
    const buf = Buffer.alloc(Math.min(8 << 20, entries.reduce((m, e) => Math.max(m, e.bytes), 1)));
    for (const e of entries) {
      let crc = 0;
      for (let p = 0; p < e.bytes; p += buf.length) {
        const piece = buf.subarray(0, Math.min(buf.length, e.bytes - p));
        readFully(fd, piece, e.offset + p, file);
        crc = crc32(piece, crc);
      }
      if ((crc >>> 0) !== e.crc32) throw new Error(`${file}: tensor "${e.name}": CRC-32 does not match: the checkpoint is damaged`);
    }
    const stamp = { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs };
    const used = new Set<number>();
    const rec = (x: unknown, at: string): unknown => {
      if (Array.isArray(x)) return x.map((e, i) => rec(e, `${at}/${i}`));
      if (!isObj(x)) return x;
      if ('$t' in x) {
        const i = x.$t;
        if (Object.keys(x).length !== 1 || !Number.isSafeInteger(i) || (i as number) < 0 || (i as number) >= entries.length) throw new Error(`${file}: field "${at}" is ${show(x)}, expected {"$t": a tensor index below ${entries.length}}`);
        if (used.has(i as number)) throw new Error(`${file}: tensor ${i as number} is referenced twice (again at "${at}")`);
        used.add(i as number);
        return lazyTensor(file, entries[i as number], stamp);
      }
      return Object.fromEntries(Object.entries(x).map(([k, e]) => [k, rec(e, at ? `${at}/${k}` : k)]));
    };
    const body: Record<string, unknown> = { ...raw };
    delete body.tensors;
    let ck: Record<string, unknown>;
    try {
      ck = rec(body, '') as Record<string, unknown>;
    } catch (e) {
      if (e instanceof RangeError) throw new Error(`${file}: header nested too deeply (${e.message})`);
      throw e;
    }
    return checkFields(file, { ...ck, format: 'nla-checkpoint/2' }, (g, k, t) => {
      if (!isHostTensor(t)) throw new Error(`${file}: tensor "${g}/${k}" is not a tensor reference`);
      return t;
    });
  } finally {
    fs.closeSync(fd);
  }
}

function checkEntries(file: string, v: unknown, dataEnd: number): TensorEntry[] {
  if (!Array.isArray(v)) throw new Error(`${file}: field "tensors" missing or not a list`);
  const out: TensorEntry[] = v.map((e, i) => {
    const where = `${file}: tensors[${i}]`;
    if (!isObj(e)) throw new Error(`${where} is not {name, dtype, shape, offset, bytes, crc32}`);
    if (typeof e.name !== 'string') throw new Error(`${where}: field "name" is ${show(e.name)}, expected a string`);
    const w = `${file}: tensor "${e.name.slice(0, 200)}"`;
    if (e.dtype !== 'f32' && e.dtype !== 'i32') throw new Error(`${w}: field "dtype" is ${show(e.dtype)}, expected "f32" or "i32"`);
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new Error(`${w}: field "shape" is ${show(e.shape)}, expected non-negative integers`);
    for (const k of ['offset', 'bytes', 'crc32'] as const) if (!Number.isSafeInteger(e[k]) || (e[k] as number) < 0) throw new Error(`${w}: field "${k}" is ${show(e[k])}, expected an integer >= 0`);
    const n = numel(e.shape as number[]);
    if (e.bytes !== 4 * n) throw new Error(`${w}: field "bytes" is ${e.bytes as number}, shape [${e.shape as number[]}] needs ${4 * n}`);
    if ((e.offset as number) < MAGIC.length || (e.offset as number) + (e.bytes as number) > dataEnd) throw new Error(`${w}: bytes ${e.offset as number}..${(e.offset as number) + (e.bytes as number)} are outside the data (${MAGIC.length}..${dataEnd})`);
    if ((e.crc32 as number) > 0xffffffff) throw new Error(`${w}: field "crc32" is ${e.crc32 as number}, beyond 32 bits`);
    return { name: e.name, dtype: e.dtype, shape: e.shape as number[], offset: e.offset as number, bytes: e.bytes as number, crc32: e.crc32 as number };
  });
  const byOffset = [...out].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < byOffset.length; i++) {
    const a = byOffset[i - 1], b = byOffset[i];
    if (a.offset + a.bytes > b.offset) throw new Error(`${file}: tensors "${a.name}" and "${b.name}" overlap`);
  }
  return out;
}

/**
 * A tensor whose data is read from `file` at each access (not cached: the caller uploads it
 * and drops it). The file must be the one that was checked (same inode, size, mtime).
 */
function lazyTensor(file: string, e: TensorEntry, stamp: { ino: number; size: number; mtimeMs: number }): HostTensor {
  const t = { dtype: e.dtype, shape: [...e.shape] } as HostTensor;
  Object.defineProperty(t, 'data', {
    enumerable: true,
    get(): Float32Array | Int32Array {
      const fd = fs.openSync(file, 'r');
      try {
        const st = fs.fstatSync(fd);
        if (st.ino !== stamp.ino || st.size !== stamp.size || st.mtimeMs !== stamp.mtimeMs) throw new Error(`${file}: changed since it was opened; cannot read tensor "${e.name}"`);
        const ab = new ArrayBuffer(e.bytes);
        let crc = 0;
        for (let p = 0; p < e.bytes; p += PIECE) {
          const piece = new Uint8Array(ab, p, Math.min(PIECE, e.bytes - p));
          readFully(fd, piece, e.offset + p, file);
          crc = crc32(piece, crc);
        }
        if ((crc >>> 0) !== e.crc32) throw new Error(`${file}: tensor "${e.name}": CRC-32 does not match: the checkpoint is damaged`);
        return e.dtype === 'i32' ? new Int32Array(ab) : new Float32Array(ab);
      } finally {
        fs.closeSync(fd);
      }
    },
  });
  return t;
}

function loadV1(file: string): Checkpoint {
  let raw: unknown;
  try {
    raw = unpack(fs.readFileSync(file));
  } catch (e) {
    throw new Error(`${file}: not a readable checkpoint (${(e as Error).message}); it may be truncated`);
  }
  if (!isObj(raw) || raw.format !== 'nla-checkpoint/1') throw new Error(`${file}: field "format" is ${show(isObj(raw) ? raw.format : raw)}, expected "nla-checkpoint/1" or "nla-checkpoint/2"`);
  return checkFields(file, raw, (g, k, t) => {
    const where = `${file}: tensor "${g}/${k}"`;
    if (!isObj(t)) throw new Error(`${where} is not {dtype, shape, data}`);
    if (t.dtype !== 'f32' && t.dtype !== 'i32') throw new Error(`${where}: field "dtype" is ${show(t.dtype)}, expected "f32" or "i32"`);
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new Error(`${where}: field "shape" is ${show(t.shape)}, expected non-negative integers`);
    if (!(t.data instanceof Uint8Array)) throw new Error(`${where}: field "data" is not bytes`);
    const n = numel(t.shape as number[]);
    if (t.data.byteLength !== 4 * n) throw new Error(`${where} has ${t.data.byteLength / 4} values for shape [${t.shape}] (${t.data.byteLength} bytes, ${4 * n} expected)`);
    // unpack gives Node Buffers (views into one pooled ArrayBuffer): copy to an exact, aligned one.
    const bytes = new Uint8Array(t.data);
    const data = t.dtype === 'i32' ? new Int32Array(bytes.buffer) : new Float32Array(bytes.buffer);
    return { dtype: t.dtype, shape: t.shape as number[], data };
  });
}

/** The fields both formats share; `tensor` turns each weights entry into a HostTensor. */
function checkFields(file: string, raw: Record<string, unknown>, tensor: (g: string, k: string, t: unknown) => HostTensor): Checkpoint {
  if (!Number.isSafeInteger(raw.step) || (raw.step as number) < 0) throw new Error(`${file}: field "step" is ${show(raw.step)}, expected an integer >= 0`);
  if (!isObj(raw.weights)) throw new Error(`${file}: field "weights" missing or not a map of parameter groups`);
  if (raw.optimizer !== undefined && !isObj(raw.optimizer)) throw new Error(`${file}: field "optimizer" is not a map`);
  if (raw.extra !== undefined && !isObj(raw.extra)) throw new Error(`${file}: field "extra" is not a map`);
  if (raw.rngState !== undefined && typeof raw.rngState !== 'number') throw new Error(`${file}: field "rngState" is not a number`);
  const weights: Checkpoint['weights'] = {};
  for (const [g, m] of Object.entries(raw.weights)) {
    if (!isObj(m)) throw new Error(`${file}: field "weights.${g}" is not a map of tensors`);
    weights[g] = {};
    for (const [k, t] of Object.entries(m)) weights[g][k] = tensor(g, k, t);
  }
  return { ...(raw as unknown as Checkpoint), weights };
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);
}

/** A value for an error message, cut short (a damaged file can put megabytes where a number was). */
function show(v: unknown): string {
  let s: string;
  try {
    s = ArrayBuffer.isView(v) ? `<${v.byteLength} bytes>` : (JSON.stringify(v) ?? String(v));
  } catch {
    try {
      s = String(v); // a bigint
    } catch {
      s = '<nested too deeply to show>';
    }
  }
  return s.length > 80 ? s.slice(0, 80) + '…' : s;
}

// safetensors reader/writer (https://github.com/huggingface/safetensors, format section):
//   u64 little-endian N | N bytes of UTF-8 JSON header (space-padded) | data buffer
// The header maps tensor names to {dtype, shape, data_offsets: [begin, end]} relative to the
// start of the data buffer, plus an optional "__metadata__" string->string map. The spec
// requires the buffer to be fully covered by tensors without holes or overlap; we check all of
// that up front so a corrupt or lying file fails with a message naming the file and tensor
// instead of producing garbage weights.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readFully, writeFileAtomic } from './atomic-write.js';
import { FormatError } from './errors.js';
import { parseJson } from './json.js';
import { decodeBf16, decodeF16, encodeBf16, encodeF16 } from './half.js';
import { assertLittleEndianHost, HOST_DTYPE_BYTES, numel, type HostDType, type HostTensor } from './host-tensor.js';

const FROM_ST: Record<string, HostDType> = { F32: 'f32', F16: 'f16', BF16: 'bf16', I32: 'i32' };
const TO_ST: Record<HostDType, string> = { f32: 'F32', f16: 'F16', bf16: 'BF16', i32: 'I32' };
// Valid safetensors dtypes we cannot represent; with skipUnsupportedDtypes they are dropped.
const KNOWN_UNSUPPORTED = new Set(['F64', 'I64', 'I16', 'I8', 'U8', 'U16', 'U32', 'U64', 'BOOL', 'F8_E4M3', 'F8_E5M2']);
// Bytes per element of every safetensors dtype, so a skipped tensor of any dtype still has its
// byte span checked (a skip must not open a hole the coverage check would otherwise catch).
const ST_DTYPE_BYTES: Record<string, number> = {
  F64: 8, I64: 8, U64: 8, F32: 4, I32: 4, U32: 4, F16: 2, BF16: 2, I16: 2, U16: 2, I8: 1, U8: 1, BOOL: 1, F8_E4M3: 1, F8_E5M2: 1,
};
// The reference implementation refuses headers above 100 MB; so do we (guards a garbage N).
const MAX_HEADER_BYTES = 100_000_000;

export interface SafetensorsOptions {
  /** Drop tensors of valid but unsupported dtypes (e.g. I64 buffers) instead of throwing. */
  skipUnsupportedDtypes?: boolean;
  /**
   * Leave out tensors this returns true for (their data is never read; any dtype). Used for
   * known non-parameter buffers such as GPT-2's causal masks. `dtype` is the file's own name
   * ("F32", "BOOL"...). Skipped spans still count towards the no-holes check.
   */
  skip?: (name: string, shape: number[], dtype: string) => boolean;
}

interface Entry {
  name: string;
  dtype: HostDType;
  shape: number[];
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  entries: Entry[];
  metadata: Record<string, string>;
  /** Byte offset of the data buffer in the file (8 + N). */
  dataStart: number;
  /** Names left out by `opts.skip`. */
  skipped: string[];
}

/** Parse and validate the header, given the first bytes of the file and its total size. */
export function parseSafetensorsHeader(
  prefix: Uint8Array,
  fileSize: number,
  file: string,
  opts: SafetensorsOptions = {},
): SafetensorsHeader {
  if (fileSize < 8 || prefix.length < 8) {
    throw new FormatError(file, 'header_size', `file is ${fileSize} bytes, too short for the 8-byte header length`);
  }
  const n64 = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_BYTES)) {
    throw new FormatError(file, 'header_size', `header_size=${n64} is absurd (limit ${MAX_HEADER_BYTES}); not a safetensors file?`);
  }
  const n = Number(n64);
  if (8 + n > fileSize) {
    throw new FormatError(file, 'header_size', `header_size=${n} but file has only ${fileSize} bytes (truncated?)`);
  }
  if (prefix.length < 8 + n) throw new Error(`parseSafetensorsHeader: need ${8 + n} prefix bytes`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(prefix.subarray(8, 8 + n));
  } catch (e) {
    throw new FormatError(file, 'header', `header is not valid UTF-8 (${(e as Error).message})`);
  }
  const json = parseJson(text, file, 'header');
  if (!isObject(json)) throw new FormatError(file, 'header', 'header JSON is not an object');
  const dataLength = fileSize - 8 - n;
  const metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  const skipped: string[] = [];
  const spans: Entry[] = []; // skipped tensors' byte ranges, for the coverage check only
  for (const [name, value] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isObject(value)) throw new FormatError(file, '__metadata__', '__metadata__ is not an object');
      for (const [k, v] of Object.entries(value)) {
        if (typeof v !== 'string') throw new FormatError(file, `__metadata__.${k}`, `__metadata__.${k} is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const where = `tensor "${name}"`;
    if (!isObject(value)) throw new FormatError(file, name, `${where}: entry is not an object`);
    const { dtype, shape, data_offsets: offs } = value;
    if (typeof dtype !== 'string') throw new FormatError(file, name, `${where}: dtype missing`);
    if (opts.skip && ST_DTYPE_BYTES[dtype] && Array.isArray(shape) && shape.every((d) => Number.isSafeInteger(d) && d >= 0) && opts.skip(name, shape as number[], dtype)) {
      const [begin, end] = Array.isArray(offs) && offs.length === 2 ? (offs as number[]) : [NaN, NaN];
      if (!(Number.isSafeInteger(begin) && Number.isSafeInteger(end) && begin >= 0 && begin <= end && end <= dataLength && end - begin === numel(shape as number[]) * ST_DTYPE_BYTES[dtype])) {
        throw new FormatError(file, name, `${where}: data_offsets ${JSON.stringify(offs)} do not fit shape [${shape}] ${dtype} in a ${dataLength}-byte data buffer`);
      }
      skipped.push(name);
      spans.push({ name, dtype: 'f32', shape: shape as number[], begin, end });
      continue;
    }
    const hostDtype = FROM_ST[dtype];
    if (!hostDtype) {
      if (opts.skipUnsupportedDtypes && KNOWN_UNSUPPORTED.has(dtype)) continue;
      throw new FormatError(file, name, `${where}: unsupported dtype "${dtype}" (supported: ${Object.keys(FROM_ST).join(', ')})`);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new FormatError(file, name, `${where}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      throw new FormatError(file, name, `${where}: data_offsets ${JSON.stringify(offs)} is not [begin, end]`);
    }
    const [begin, end] = offs as [number, number];
    if (begin > end || end > dataLength) {
      throw new FormatError(file, name, `${where}: data_offsets [${begin}, ${end}] out of range (data buffer is ${dataLength} bytes)`);
    }
    const expected = numel(shape) * HOST_DTYPE_BYTES[hostDtype];
    if (end - begin !== expected) {
      throw new FormatError(file, name, `${where}: data_offsets span ${end - begin} bytes but shape [${shape}] ${dtype} needs ${expected}`);
    }
    entries.push({ name, dtype: hostDtype, shape: shape as number[], begin, end });
  }
  checkCoverage([...entries, ...spans], dataLength, file, opts.skipUnsupportedDtypes === true);
  return { entries, metadata, dataStart: 8 + n, skipped };
}

/** Tensors must tile the data buffer exactly: sorted by offset, each starts where the last ended. */
function checkCoverage(entries: Entry[], dataLength: number, file: string, holesAllowed: boolean): void {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev = '(start of data)';
  for (const e of sorted) {
    if (e.begin < pos) {
      throw new FormatError(file, e.name, `tensor "${e.name}": data_offsets [${e.begin}, ${e.end}] overlap "${prev}" which ends at ${pos}`);
    }
    // Skipped tensors leave legitimate gaps, so only enforce "no holes" when nothing was skipped.
    if (e.begin > pos && !holesAllowed) {
      throw new FormatError(file, e.name, `tensor "${e.name}": data_offsets begin at ${e.begin} but previous data ("${prev}") ends at ${pos} (hole)`);
    }
    pos = e.end;
    prev = e.name;
  }
  if (pos !== dataLength && !holesAllowed) {
    throw new FormatError(file, 'data_offsets', `tensors cover ${pos} bytes but the data buffer has ${dataLength} (trailing bytes or lying offsets)`);
  }
}

/** Decode one tensor's raw little-endian bytes; `raw` must own its buffer (offset 0, aligned). */
function decode(raw: Uint8Array, e: Entry): HostTensor {
  assertLittleEndianHost();
  const n = numel(e.shape);
  const buf = raw.buffer;
  let data: Float32Array | Int32Array;
  if (e.dtype === 'f32') data = new Float32Array(buf, 0, n);
  else if (e.dtype === 'i32') data = new Int32Array(buf, 0, n);
  else if (e.dtype === 'f16') data = decodeF16(new Uint16Array(buf, 0, n));
  else data = decodeBf16(new Uint16Array(buf, 0, n));
  return { dtype: e.dtype, shape: e.shape, data };
}

/** Parse a whole safetensors file held in memory. */
export function parseSafetensors(bytes: Uint8Array, nameForErrors: string, opts: SafetensorsOptions = {}): Map<string, HostTensor> {
  const h = parseSafetensorsHeader(bytes, bytes.length, nameForErrors, opts);
  const out = new Map<string, HostTensor>();
  for (const e of h.entries) {
    // Copy into a fresh buffer: the input may be a pooled Buffer at an unaligned offset.
    const raw = new Uint8Array(e.end - e.begin);
    raw.set(bytes.subarray(h.dataStart + e.begin, h.dataStart + e.end));
    out.set(e.name, decode(raw, e));
  }
  return out;
}

/** Read the header only (names, dtypes, shapes, metadata) without loading tensor data. */
export function readSafetensorsHeader(file: string, opts: SafetensorsOptions = {}): SafetensorsHeader {
  const fd = fs.openSync(file, 'r');
  try {
    return headerFromFd(fd, file, opts);
  } finally {
    fs.closeSync(fd);
  }
}

function headerFromFd(fd: number, file: string, opts: SafetensorsOptions): SafetensorsHeader {
  const size = fs.fstatSync(fd).size;
  const first = new Uint8Array(8);
  fs.readSync(fd, first, 0, Math.min(8, size), 0);
  const n = size >= 8 ? new DataView(first.buffer).getBigUint64(0, true) : 0n;
  // Read header bytes only when N is plausible; parseSafetensorsHeader reports the bad cases.
  const want = n <= BigInt(MAX_HEADER_BYTES) && 8 + Number(n) <= size ? 8 + Number(n) : Math.min(8, size);
  const prefix = new Uint8Array(want);
  readFully(fd, prefix, 0, file);
  return parseSafetensorsHeader(prefix, size, file, opts);
}

/**
 * Read a .safetensors file. Tensors are read one at a time with positioned reads, so a
 * multi-GB checkpoint never needs a single buffer of its full size.
 */
export function readSafetensors(file: string, opts: SafetensorsOptions = {}): Map<string, HostTensor> {
  return readSafetensorsWithMetadata(file, opts).tensors;
}

export function readSafetensorsWithMetadata(
  file: string,
  opts: SafetensorsOptions = {},
): { tensors: Map<string, HostTensor>; metadata: Record<string, string>; skipped: string[] } {
  const fd = fs.openSync(file, 'r');
  try {
    const h = headerFromFd(fd, file, opts);
    const tensors = new Map<string, HostTensor>();
    for (const e of h.entries) {
      const raw = new Uint8Array(e.end - e.begin);
      readFully(fd, raw, h.dataStart + e.begin, file);
      tensors.set(e.name, decode(raw, e));
    }
    return { tensors, metadata: h.metadata, skipped: h.skipped };
  } finally {
    fs.closeSync(fd);
  }
}


/**
 * Read a Hugging Face model directory: `model.safetensors`, or a sharded checkpoint described
 * by `model.safetensors.index.json` ({"weight_map": {tensor: shard file}}).
 */
export function readSafetensorsDir(dir: string, opts: SafetensorsOptions = {}): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const { file, names, indexFile } of safetensorsShards(dir)) {
    const { tensors, skipped } = readSafetensorsWithMetadata(file, opts);
    if (!names) return tensors;
    for (const name of names) {
      const t = tensors.get(name);
      if (!t) {
        if (opts.skipUnsupportedDtypes || skipped.includes(name)) continue;
        throw new FormatError(indexFile!, `weight_map.${name}`, `weight_map says "${name}" is in ${path.basename(file)} but that shard has no such tensor`);
      }
      out.set(name, t);
    }
  }
  return out;
}

/** One file of a model directory and, when sharded, the tensors the index puts in it. */
export interface SafetensorsShard {
  file: string;
  /** undefined for a single model.safetensors: every tensor in it. */
  names?: string[];
  indexFile?: string;
}

/**
 * The safetensors files of a Hugging Face model directory: `model.safetensors`, or the shards
 * `model.safetensors.index.json` names (checked to be plain file names that exist).
 */
export function safetensorsShards(dir: string): SafetensorsShard[] {
  const single = path.join(dir, 'model.safetensors');
  if (fs.existsSync(single)) return [{ file: single }];
  const indexFile = path.join(dir, 'model.safetensors.index.json');
  if (!fs.existsSync(indexFile)) {
    throw new FormatError(dir, 'model.safetensors', `${dir}: neither model.safetensors nor model.safetensors.index.json found`);
  }
  const index = parseJson(fs.readFileSync(indexFile, 'utf8'), indexFile);
  const weightMap = isObject(index) ? index.weight_map : undefined;
  if (!isObject(weightMap)) throw new FormatError(indexFile, 'weight_map', 'weight_map missing or not an object');
  const byShard = new Map<string, string[]>();
  for (const [name, shard] of Object.entries(weightMap)) {
    // Shards must be plain file names next to the index: never read outside the model dir.
    if (typeof shard !== 'string' || shard !== path.basename(shard) || shard === '..') {
      throw new FormatError(indexFile, `weight_map.${name}`, `weight_map["${name}"] = ${JSON.stringify(shard)} is not a shard file name`);
    }
    byShard.set(shard, [...(byShard.get(shard) ?? []), name]);
  }
  const out: SafetensorsShard[] = [];
  for (const [shard, names] of byShard) {
    const shardPath = path.join(dir, shard);
    if (!fs.existsSync(shardPath)) {
      throw new FormatError(indexFile, `weight_map`, `weight_map refers to missing shard ${shard}`);
    }
    out.push({ file: shardPath, names, indexFile });
  }
  return out;
}

export type SaveDType = 'f32' | 'f16' | 'bf16';
export type TensorToSave = HostTensor & { saveAs?: SaveDType };

/**
 * Write tensors to a .safetensors file atomically. Each tensor is stored as `saveAs`, else
 * as its own `dtype` (so a bf16 checkpoint re-saves as bf16). "format": "pt" is added to the
 * metadata because transformers refuses safetensors files without it.
 */
export function writeSafetensors(file: string, tensors: Record<string, TensorToSave>, metadata: Record<string, string> = {}): void {
  writeFileAtomic(file, serializeSafetensors(tensors, metadata, file));
}

/** Build the file contents as chunks (header, then one chunk per tensor). */
export function serializeSafetensors(tensors: Record<string, TensorToSave>, metadata: Record<string, string> = {}, file = 'safetensors'): Uint8Array[] {
  assertLittleEndianHost();
  const items = Object.entries(tensors).map(([name, t]) => {
    const dtype: HostDType = t.saveAs ?? t.dtype;
    checkToSave(file, name, t, dtype);
    return { name, t, dtype, bytes: encode(t.data, dtype) };
  });
  const { prefix, order } = safetensorsLayout(items.map(({ name, dtype, t }) => ({ name, dtype, shape: t.shape })), metadata);
  const byName = new Map(items.map((it) => [it.name, it.bytes]));
  return [prefix, ...order.map((it) => byName.get(it.name)!)];
}

/** Refuse a tensor whose data does not match its shape or the dtype it is stored as. */
export function checkToSave(file: string, name: string, t: HostTensor, dtype: HostDType): void {
  if (name === '__metadata__') throw new FormatError(file, name, 'a tensor cannot be named "__metadata__"');
  if (t.data.length !== numel(t.shape)) {
    throw new FormatError(file, name, `tensor "${name}": shape [${t.shape}] needs ${numel(t.shape)} elements but data has ${t.data.length}`);
  }
  if ((dtype === 'i32') !== (t.data instanceof Int32Array)) {
    throw new FormatError(file, name, `tensor "${name}": cannot store ${t.data.constructor.name} as ${dtype}`);
  }
}

/**
 * The header (length prefix and JSON) and the order tensors follow it, from names, stored
 * dtypes and shapes alone: a streamed writer knows the layout before reading any data.
 */
export function safetensorsLayout<T extends { name: string; dtype: HostDType; shape: number[] }>(items: T[], metadata: Record<string, string> = {}): { prefix: Uint8Array; order: T[] } {
  // Wider dtypes first, then by name: keeps every tensor aligned to its element size within
  // the (8-byte aligned) data buffer, as the reference writer does, for mmap-based readers.
  const order = [...items].sort((a, b) => HOST_DTYPE_BYTES[b.dtype] - HOST_DTYPE_BYTES[a.dtype] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const header: Record<string, unknown> = { __metadata__: { format: 'pt', ...metadata } };
  let offset = 0;
  for (const it of order) {
    const bytes = numel(it.shape) * HOST_DTYPE_BYTES[it.dtype];
    header[it.name] = { dtype: TO_ST[it.dtype], shape: it.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = JSON.stringify(header);
  // Pad with spaces so the data buffer starts 8-byte aligned (allowed by the spec).
  let jsonBytes = new TextEncoder().encode(json);
  const pad = (8 - (jsonBytes.length % 8)) % 8;
  if (pad) jsonBytes = new TextEncoder().encode(json + ' '.repeat(pad));
  const prefix = new Uint8Array(8 + jsonBytes.length);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(jsonBytes.length), true);
  prefix.set(jsonBytes, 8);
  return { prefix, order };
}

/** A tensor's bytes as stored (`dtype`: f16/bf16 rounded from f32). */
export 
function encode(data: Float32Array | Int32Array, dtype: HostDType): Uint8Array {
  if (dtype === 'f16') return u8(encodeF16(data as Float32Array));
  if (dtype === 'bf16') return u8(encodeBf16(data as Float32Array));
  return u8(data);
}

function u8(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

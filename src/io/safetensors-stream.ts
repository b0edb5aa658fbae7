// Streaming access to a safetensors checkpoint: the tensors' names, dtypes, shapes and byte
// spans from the headers alone, and their data read a bounded range of elements at a time.
// Loading a real-size model this way never holds more than one chunk of it on the host
// (readSafetensors would decode the whole checkpoint to f32 first: 2x a bf16 file's size).
import * as fs from 'node:fs';
import { readFully } from './atomic-write.js';
import { FormatError } from './errors.js';
import { decodeBf16, decodeF16, encodeBf16, encodeF16 } from './half.js';
import { HOST_DTYPE_BYTES, numel, type HostDType } from './host-tensor.js';
import { readSafetensorsHeader, safetensorsShards, type SafetensorsHeader, type SafetensorsOptions } from './safetensors.js';

/** Where one tensor's bytes are: a validated span of a file. */
export interface TensorSpan {
  name: string;
  dtype: HostDType;
  shape: number[];
  file: string;
  /** Absolute byte offset of the tensor's first element in `file`. */
  offset: number;
}

/** The tensors of one .safetensors file (headers only; spans checked as readSafetensors does). */
export function listSafetensors(file: string, opts: SafetensorsOptions = {}): TensorSpan[] {
  return spansOf(readSafetensorsHeader(file, opts), file);
}

function spansOf(h: SafetensorsHeader, file: string): TensorSpan[] {
  return h.entries.map((e) => ({ name: e.name, dtype: e.dtype, shape: e.shape, file, offset: h.dataStart + e.begin })).sort((a, b) => a.offset - b.offset);
}

/** The tensors of a Hugging Face model directory (single file or sharded), in file order. */
export function listSafetensorsDir(dir: string, opts: SafetensorsOptions = {}): TensorSpan[] {
  const out: TensorSpan[] = [];
  for (const { file, names, indexFile } of safetensorsShards(dir)) {
    const h = readSafetensorsHeader(file, opts);
    const spans = spansOf(h, file);
    if (!names) return spans;
    const byName = new Map(spans.map((s) => [s.name, s]));
    for (const name of names) {
      const s = byName.get(name);
      if (s) out.push(s);
      else if (!(opts.skipUnsupportedDtypes || h.skipped.includes(name))) {
        throw new FormatError(indexFile!, `weight_map.${name}`, `weight_map says "${name}" is in ${file} but that shard has no such tensor`);
      }
    }
  }
  return out;
}

/** Target element formats a span can be read as (what a GPU buffer of that dtype holds). */
export type ReadAs = 'f32' | 'f16' | 'bf16';

/** Elements per read: 4M (16 MiB as f32), so a chunk's host copies stay small beside a model. */
export const CHUNK_ELEMENTS = 1 << 22;

/** Reads spans with positioned reads, one file descriptor per file, closed by close(). */
export class SpanReader {
  private readonly fds = new Map<string, number>();

  /** Raw little-endian bytes of elements [start, start + count) of a span, in a fresh aligned buffer. */
  raw(span: TensorSpan, start: number, count: number): Uint8Array {
    const n = numel(span.shape), b = HOST_DTYPE_BYTES[span.dtype];
    if (!(Number.isInteger(start) && Number.isInteger(count) && start >= 0 && count >= 0 && start + count <= n)) {
      throw new Error(`${span.file}: tensor "${span.name}" has ${n} elements; cannot read [${start}, ${start + count})`);
    }
    let fd = this.fds.get(span.file);
    if (fd === undefined) this.fds.set(span.file, (fd = fs.openSync(span.file, 'r')));
    const out = new Uint8Array(count * b);
    readFully(fd, out, span.offset + start * b, span.file);
    return out;
  }

  /**
   * Elements [start, start + count) converted to `as`: f32 as Float32Array, f16/bf16 as the
   * Uint16Array of their bits (what a 16-bit GPU buffer holds). Same-format reads are a copy of
   * the file's bytes; bf16 -> f16 is exact for |x| in f16's normal range (6.1e-5 to 65504).
   */
  read(span: TensorSpan, start: number, count: number, as: ReadAs): Float32Array | Uint16Array {
    if (span.dtype === 'i32') throw new Error(`${span.file}: tensor "${span.name}" is an integer tensor; weights must be floating point`);
    const raw = this.raw(span, start, count);
    if (span.dtype === as) return as === 'f32' ? new Float32Array(raw.buffer) : new Uint16Array(raw.buffer);
    if (span.dtype === 'bf16' && as === 'f16') return bf16ToF16(new Uint16Array(raw.buffer));
    const f32 = span.dtype === 'f32' ? new Float32Array(raw.buffer) : span.dtype === 'f16' ? decodeF16(new Uint16Array(raw.buffer)) : decodeBf16(new Uint16Array(raw.buffer));
    return as === 'f32' ? f32 : as === 'f16' ? encodeF16(f32) : encodeBf16(f32);
  }

  close(): void {
    for (const fd of this.fds.values()) fs.closeSync(fd);
    this.fds.clear();
  }
}

let bf16ToF16Table: Uint16Array | undefined;
/** bf16 bits -> f16 bits (round to nearest even; out of range -> inf), by a 65536-entry table. */
export function bf16ToF16(bits: Uint16Array): Uint16Array {
  if (!bf16ToF16Table) {
    const all = new Uint16Array(65536);
    for (let i = 0; i < 65536; i++) all[i] = i;
    bf16ToF16Table = encodeF16(decodeBf16(all));
  }
  const t = bf16ToF16Table, out = new Uint16Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = t[bits[i]!]!;
  return out;
}

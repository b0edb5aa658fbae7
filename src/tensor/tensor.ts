// The Tensor: a typed view (shape, strides, element offset) over a ref-counted GPU buffer (or
// several, beyond maxBufferSize: pieces.ts), plus the autograd node that produced it. Views
// (reshape, permute, slice, expand) share storage and cost no kernel; ops that need dense input
// call contiguous().
import { Float16Array } from '@petamoriken/float16';
import { BYTES, type DType, type HostArray } from './dtype.js';
import { acquire, bufferLimit, release } from './pool.js';
import { allocPieces, askingOp, multiError, pieceHolding, rowsPerPiece, type Piece } from './pieces.js';
import { spanOf } from './binding.js';
import { readback, upload } from './runtime.js';
import { axisOf, contiguousStrides, fmt, isContiguous, numel, type Shape } from './shape.js';
import { track, untrack } from './scope.js';
import { initGpu } from './device.js';
import { ownBuffer } from './gpu-errors.js';
import { decodeBf16, encodeBf16 } from '../io/half.js';

export class Storage {
  refs = 1;
  /** Set when the data lives in several buffers (beyond maxBufferSize, pieces.ts); `buffer` is then its first piece's. */
  pieces: Piece[] | undefined;
  /** The maxBufferSize the pieces were cut for (what a refusal quotes). */
  pieceLimit = 0;
  constructor(public buffer: GPUBuffer, public bytes: number) {}
  static multi(pieces: Piece[], bytes: number, limit: number): Storage {
    const s = new Storage(pieces[0].storage.buffer, bytes);
    s.pieces = pieces;
    s.pieceLimit = limit;
    return s;
  }
  retain(): this {
    this.refs++;
    return this;
  }
  releaseRef(): void {
    if (--this.refs !== 0) return;
    if (this.pieces) for (const p of this.pieces) p.storage.releaseRef();
    else release(this.buffer);
  }
}

/**
 * A gradient that is `piece` on the region [start, start + piece.shape[axis]) of `axis` and zero
 * elsewhere: what a slice hands back to its input. Backward assembles all the placed pieces a
 * tensor receives with one copy each (its split parts: no zeros, no adds), see autograd.ts.
 */
export class PlacedGrad {
  constructor(readonly piece: Tensor, readonly axis: number, readonly start: number) {}
}

export type BackwardFn = (grad: Tensor) => (Tensor | PlacedGrad | null | undefined)[];

export interface GradNode {
  op: string;
  parents: Tensor[];
  backward: BackwardFn;
}

let nextId = 1;
let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Run fn without recording autograd nodes (inference, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

export class Tensor {
  readonly isTensor = true;
  readonly id = nextId++;
  requiresGrad = false;
  grad: Tensor | undefined;
  node: GradNode | undefined;
  kept = false;
  disposed = false;
  /** Host copy of small integer tensors (token ids): lets scatter backward plan on the CPU. */
  host: Int32Array | undefined;
  name: string | undefined;
  /** The last op that checked this tensor (only kept for tensors in several buffers, for their refusal). */
  private askedBy: string | undefined;

  constructor(
    public readonly shape: number[],
    public readonly dtype: DType,
    public readonly storage: Storage,
    public readonly strides: number[] = contiguousStrides(shape),
    public readonly offset = 0,
  ) {
    track(this);
  }

  get rank(): number {
    return this.shape.length;
  }
  get size(): number {
    return numel(this.shape);
  }
  get buffer(): GPUBuffer {
    this.assertAlive('buffer');
    // Any op that binds a tensor asks for its buffer: one in several buffers is refused here, by the asker's name.
    if (this.storage.pieces) throw multiError(`${this.askedBy ?? 'a tensor op'} (${askingOp()})`, this);
    return this.storage.buffer;
  }
  get isContiguous(): boolean {
    return isContiguous(this.shape, this.strides);
  }
  toString(): string {
    return `Tensor(${fmt(this.shape)}, ${this.dtype}${this.requiresGrad ? ', grad' : ''})`;
  }

  assertAlive(op: string): void {
    // Ops name themselves here first: a tensor in pieces refused later (its buffer asked for) names that op.
    if (this.storage.pieces && op !== 'buffer') this.askedBy = op;
    if (this.disposed) throw new Error(`${op}: tensor ${this.name ?? '#' + this.id} ${fmt(this.shape)} was used after dispose()`);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.storage.releaseRef();
    this.node = undefined;
    untrack(this);
  }

  // ---- creation -------------------------------------------------------------------------

  /**
   * An uninitialised tensor; `op` names the asker in a too-large error (default: from the stack).
   * `pieces`: beyond maxBufferSize, live in several buffers (pieces.ts) instead of being refused;
   * for weights coming from the host (Tensor.from, checkpoint loading), not for op outputs, which
   * no op but the few in pieces.ts could write.
   */
  static empty(shape: Shape, dtype: DType = 'f32', op?: string, pieces = false): Tensor {
    for (const d of shape) if (!Number.isInteger(d) || d < 0) throw new Error(`empty: bad shape ${fmt(shape)}`);
    const bytes = Math.max(4, numel(shape) * BYTES[dtype]);
    const what = () => `${op ?? callerOp()}: a tensor ${fmt(shape)} ${dtype}`;
    const per = pieces && bytes > bufferLimit().bytes ? rowsPerPiece(shape, dtype) : undefined;
    if (per !== undefined) {
      // Beyond one buffer: pieces of whole rows (pieces.ts).
      const t = new Tensor([...shape], dtype, Storage.multi(allocPieces(shape, dtype, per, (b, n) => new Storage(b, n), what), bytes, bufferLimit().bytes));
      for (const p of t.storage.pieces!) ownBuffer(p.storage.buffer, [(p.end - p.first) / Math.max(1, numel(shape.slice(1))), ...shape.slice(1)], dtype);
      return t;
    }
    const t = new Tensor([...shape], dtype, new Storage(acquire(bytes, what), bytes));
    ownBuffer(t.storage.buffer, t.shape, dtype); // so a GPU error names the shapes of the buffers involved
    return t;
  }

  static from(data: ArrayLike<number>, shape: Shape = [data.length], dtype: DType = data instanceof Int32Array ? 'i32' : 'f32'): Tensor {
    if (numel(shape) !== data.length) throw new Error(`Tensor.from: ${data.length} values do not fill shape ${fmt(shape)}`);
    const t = Tensor.empty(shape, dtype, undefined, true);
    const host = toHostArray(data, dtype);
    if (dtype === 'i32') t.host = host as Int32Array;
    if (host.byteLength) uploadAt(t, 0, host);
    return t;
  }

  static scalar(v: number, dtype: DType = 'f32'): Tensor {
    return Tensor.from([v], [], dtype);
  }

  // ---- views ----------------------------------------------------------------------------

  /** A new view of the same storage (shares and retains the buffer). */
  view(shape: number[], strides: number[], offset: number): Tensor {
    this.assertAlive('view');
    const pieces = this.storage.pieces;
    if (pieces) {
      // A view inside one piece is an ordinary tensor over that piece: how ops work over pieces.
      const [first, end] = spanOf(shape, strides, offset);
      const p = pieceHolding(pieces, first, end);
      if (p) return new Tensor(shape, this.dtype, p.storage.retain(), strides, offset - p.first);
    }
    return new Tensor(shape, this.dtype, this.storage.retain(), strides, offset);
  }

  // ---- host transfer --------------------------------------------------------------------

  /** Copy to the host (flushes pending GPU work). Non-contiguous views are densified first. */
  async data(): Promise<Float32Array | Int32Array> {
    this.assertAlive('data');
    await initGpu();
    if (this.storage.pieces) {
      if (!this.isContiguous) throw multiError('data (a strided view)', this);
      return decodeHost(await readPieces(this), this.dtype);
    }
    if (!this.isContiguous) {
      const c = contiguousOf(this);
      try {
        return await c.data();
      } finally {
        c.dispose();
      }
    }
    const n = this.size;
    return decodeHost(await readback(this.storage.buffer, this.offset * BYTES[this.dtype], n * BYTES[this.dtype]), this.dtype);
  }

  /** Nested JS arrays (small tensors, debugging). */
  async toArray(): Promise<unknown> {
    const d = Array.from(await this.data());
    const build = (dim: number, off: number): unknown => {
      if (dim === this.rank) return d[off];
      const stride = numel(this.shape.slice(dim + 1));
      return Array.from({ length: this.shape[dim] }, (_, i) => build(dim + 1, off + i * stride));
    };
    return build(0, 0);
  }

  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`item: tensor ${fmt(this.shape)} has ${this.size} elements, not 1`);
    return (await this.data())[0];
  }
}

function decodeHost(bytes: ArrayBuffer, dtype: DType): Float32Array | Int32Array {
  if (dtype === 'f32') return new Float32Array(bytes);
  if (dtype === 'i32') return new Int32Array(bytes);
  if (dtype === 'bf16') return decodeBf16(new Uint16Array(bytes));
  return Float32Array.from(new Float16Array(bytes));
}

/** The (contiguous) elements of t's storage that t covers, `count` from `t.offset + start`, piece by piece. */
function* segments(t: Tensor, start: number, count: number): Generator<{ buffer: GPUBuffer; at: number; from: number; n: number }> {
  const lo = t.offset + start, hi = lo + count;
  for (const p of t.storage.pieces ?? [{ storage: t.storage, first: 0, end: Infinity }]) {
    const a = Math.max(lo, p.first), b = Math.min(hi, p.end);
    if (a < b) yield { buffer: p.storage.buffer, at: a - p.first, from: a - lo, n: b - a };
  }
}

/**
 * Write host elements into a contiguous tensor from its element `start` (each piece of a tensor
 * in several buffers gets its part). Element starts of 16-bit data must be even (4-byte writes).
 */
export function uploadAt(t: Tensor, start: number, data: HostArray): void {
  t.assertAlive('upload');
  const bytes = BYTES[t.dtype];
  for (const s of segments(t, start, data.length)) upload(s.buffer, s.at * bytes, data.subarray(s.from, s.from + s.n));
}

async function readPieces(t: Tensor): Promise<ArrayBuffer> {
  const bytes = BYTES[t.dtype];
  const out = new Uint8Array(t.size * bytes);
  for (const s of segments(t, 0, t.size)) {
    // Copies start on 4-byte words: a 16-bit view may start mid-word.
    const start = s.at * bytes, aligned = Math.floor(start / 4) * 4;
    const got = await readback(s.buffer, aligned, start - aligned + s.n * bytes);
    out.set(new Uint8Array(got, start - aligned), s.from * bytes);
  }
  return out.buffer;
}

export function toHostArray(data: ArrayLike<number>, dtype: DType): HostArray {
  if (dtype === 'f32') return data instanceof Float32Array ? data : Float32Array.from(data);
  if (dtype === 'i32') {
    if (data instanceof Int32Array) return data;
    const a = Int32Array.from(data);
    for (let i = 0; i < a.length; i++) if (a[i] !== data[i]) throw new Error(`Tensor.from: value ${data[i]} at ${i} is not an int32`);
    return a;
  }
  if (dtype === 'bf16') return encodeBf16(data instanceof Float32Array ? data : Float32Array.from(data));
  return new Uint16Array(new Float16Array(Array.from(data)).buffer);
}

// contiguous() lives in ops/copy.ts; registered there to keep this file free of kernels.
let contiguousImpl: ((t: Tensor) => Tensor) | undefined;
export function registerContiguous(fn: (t: Tensor) => Tensor): void {
  contiguousImpl = fn;
}
function contiguousOf(t: Tensor): Tensor {
  if (!contiguousImpl) throw new Error('nla: ops not loaded (import from "nla" or "src/tensor/index.js")');
  return contiguousImpl(t);
}

export { axisOf };

/**
 * The op that asked for a new tensor, from the stack (only computed for an error message): the
 * first frame outside the tensor and pool modules, as "name (file:line)".
 */
export function callerOp(): string {
  const frames = (new Error().stack ?? '').split('\n').slice(1);
  const f = frames.find((l) => !/[/\\]tensor[/\\](tensor|pool)\.[jt]s:/.test(l));
  const m = f?.match(/at (?:async )?(?:(\S+) \()?(?:file:\/\/)?(.*?):(\d+):\d+\)?$/);
  if (!m) return 'a tensor op';
  const file = m[2].replace(/^.*?[/\\](src|dist)[/\\]/, '$1/');
  return `${m[1] ?? '(anonymous)'} (${file}:${m[3]})`;
}

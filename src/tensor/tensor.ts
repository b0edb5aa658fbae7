// The Tensor: a typed view (shape, strides, element offset) over a ref-counted GPU buffer,
// plus the autograd node that produced it. Views (reshape, permute, slice, expand) share
// storage and cost no kernel; ops that need dense input call contiguous().
import { Float16Array } from '@petamoriken/float16';
import { BYTES, type DType, type HostArray } from './dtype.js';
import { acquire, release } from './pool.js';
import { readback, upload } from './runtime.js';
import { axisOf, contiguousStrides, fmt, isContiguous, numel, type Shape } from './shape.js';
import { track, untrack } from './scope.js';
import { initGpu } from './device.js';
import { decodeBf16, encodeBf16 } from '../io/half.js';

export class Storage {
  refs = 1;
  constructor(public buffer: GPUBuffer, public bytes: number) {}
  retain(): this {
    this.refs++;
    return this;
  }
  releaseRef(): void {
    if (--this.refs === 0) release(this.buffer);
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
    return this.storage.buffer;
  }
  get isContiguous(): boolean {
    return isContiguous(this.shape, this.strides);
  }
  toString(): string {
    return `Tensor(${fmt(this.shape)}, ${this.dtype}${this.requiresGrad ? ', grad' : ''})`;
  }

  assertAlive(op: string): void {
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

  /** An uninitialised tensor; `op` names the asker in a too-large error (default: from the stack). */
  static empty(shape: Shape, dtype: DType = 'f32', op?: string): Tensor {
    for (const d of shape) if (!Number.isInteger(d) || d < 0) throw new Error(`empty: bad shape ${fmt(shape)}`);
    const bytes = Math.max(4, numel(shape) * BYTES[dtype]);
    return new Tensor([...shape], dtype, new Storage(acquire(bytes, () => `${op ?? callerOp()}: a tensor ${fmt(shape)} ${dtype}`), bytes));
  }

  static from(data: ArrayLike<number>, shape: Shape = [data.length], dtype: DType = data instanceof Int32Array ? 'i32' : 'f32'): Tensor {
    if (numel(shape) !== data.length) throw new Error(`Tensor.from: ${data.length} values do not fill shape ${fmt(shape)}`);
    const t = Tensor.empty(shape, dtype);
    const host = toHostArray(data, dtype);
    if (dtype === 'i32') t.host = host as Int32Array;
    if (host.byteLength) upload(t.storage.buffer, 0, host);
    return t;
  }

  static scalar(v: number, dtype: DType = 'f32'): Tensor {
    return Tensor.from([v], [], dtype);
  }

  // ---- views ----------------------------------------------------------------------------

  /** A new view of the same storage (shares and retains the buffer). */
  view(shape: number[], strides: number[], offset: number): Tensor {
    this.assertAlive('view');
    return new Tensor(shape, this.dtype, this.storage.retain(), strides, offset);
  }

  // ---- host transfer --------------------------------------------------------------------

  /** Copy to the host (flushes pending GPU work). Non-contiguous views are densified first. */
  async data(): Promise<Float32Array | Int32Array> {
    this.assertAlive('data');
    await initGpu();
    if (!this.isContiguous) {
      const c = contiguousOf(this);
      try {
        return await c.data();
      } finally {
        c.dispose();
      }
    }
    const n = this.size;
    const bytes = await readback(this.storage.buffer, this.offset * BYTES[this.dtype], n * BYTES[this.dtype]);
    if (this.dtype === 'f32') return new Float32Array(bytes);
    if (this.dtype === 'i32') return new Int32Array(bytes);
    if (this.dtype === 'bf16') return decodeBf16(new Uint16Array(bytes));
    return Float32Array.from(new Float16Array(bytes));
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

// Host tensors: plain CPU-side arrays with a shape, used by every file format in src/io.
// Nothing here touches the GPU engine, so loaders can be tested (and used by tools) on any
// machine. f16/bf16 are decoded to Float32Array on read because JS has no native half
// arrays on Node 20 and every consumer wants f32 math anyway; `dtype` remembers what was
// stored so a re-save can keep the original precision.

export type HostDType = 'f32' | 'f16' | 'bf16' | 'i32';

export interface HostTensor {
  dtype: HostDType;
  shape: number[];
  data: Float32Array | Int32Array;
}

/** Bytes per element as stored on disk. */
export const HOST_DTYPE_BYTES: Record<HostDType, number> = { f32: 4, f16: 2, bf16: 2, i32: 4 };

/** Number of elements implied by a shape ([] is a scalar with one element). */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** A host tensor from an array, checking that the data length matches the shape. */
export function hostTensor(
  shape: number[],
  data: Float32Array | Int32Array,
  dtype: HostDType = data instanceof Int32Array ? 'i32' : 'f32',
): HostTensor {
  if (data.length !== numel(shape)) {
    throw new Error(`hostTensor: shape [${shape}] needs ${numel(shape)} elements, got ${data.length}`);
  }
  if ((dtype === 'i32') !== data instanceof Int32Array) {
    throw new Error(`hostTensor: dtype ${dtype} does not match ${data.constructor.name}`);
  }
  return { dtype, shape, data };
}

// Typed-array views below assume the host is little-endian like every file format we read.
// Every platform Node supports in practice is; fail loudly rather than silently byte-swap.
const isLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
export function assertLittleEndianHost(): void {
  if (!isLittleEndian) throw new Error('nla io: big-endian hosts are not supported');
}

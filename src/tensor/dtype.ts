// Storage dtypes. Arithmetic happens in f32 inside kernels; f16 is a storage format
// (half the bytes for weights and activations), i32 holds token ids and indices.
export type DType = 'f32' | 'f16' | 'i32';

export const BYTES: Record<DType, number> = { f32: 4, f16: 2, i32: 4 };

export type HostArray = Float32Array | Int32Array | Uint16Array;

// Storage dtypes. Arithmetic happens in f32 inside kernels; f16 and bf16 are storage formats
// (half the bytes for weights and activations), i32 holds token ids and indices. bf16 has no
// WGSL type: it is read as packed u32 words by the kernels that take it (matmul operands, the
// embedding gather, cast to f32); every other kernel refuses it by name.
export type DType = 'f32' | 'f16' | 'bf16' | 'i32';

export const BYTES: Record<DType, number> = { f32: 4, f16: 2, bf16: 2, i32: 4 };

export type HostArray = Float32Array | Int32Array | Uint16Array;

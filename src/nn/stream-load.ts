// Checkpoint tensors streamed from their files into GPU parameters, a bounded chunk at a time:
// the host never holds a decoded copy of the model (on lavapipe GPU memory is host memory, so
// a full f32 copy beside the weights would double a load's peak). Which dtype the weights keep
// on the GPU is a load option; matrices take it, 1-D tensors (norm gains, biases) stay f32,
// as they are tiny and feed f32 arithmetic directly.
import { CHUNK_ELEMENTS, SpanReader, type ReadAs, type TensorSpan } from '../io/safetensors-stream.js';
import { param } from '../tensor/autograd.js';
import { BYTES, type DType } from '../tensor/dtype.js';
import { exactSizes } from '../tensor/pool.js';
import { sync } from '../tensor/runtime.js';
import { Tensor, uploadAt } from '../tensor/tensor.js';
import { numel } from '../tensor/shape.js';

/**
 * GPU dtype of a model's matrices: f32 (default; what training needs), f16 or bf16 (half the
 * memory; read by matmul and gather with f32 accumulation), or 'auto' = the checkpoint's own
 * 16-bit dtype when it has one and the engine supports it, else f32.
 */
export type WeightDType = ReadAs | 'auto';
export const WEIGHT_DTYPES: readonly WeightDType[] = ['f32', 'f16', 'bf16', 'auto'];

/** Whether this engine has a GPU storage dtype (bf16 arrives with the real-size engine work). */
export function gpuHasDType(d: string): d is DType {
  return Object.prototype.hasOwnProperty.call(BYTES, d);
}

/** The GPU dtype a tensor of `span` is kept in under `want`. */
export function gpuDTypeFor(span: Pick<TensorSpan, 'dtype' | 'shape' | 'name' | 'file'>, want: WeightDType = 'f32'): ReadAs {
  if (span.shape.length < 2) return 'f32';
  if (want === 'auto') return (span.dtype === 'bf16' || span.dtype === 'f16') && gpuHasDType(span.dtype) ? span.dtype : 'f32';
  return want;
}

// Dawn copies each queued write into staging memory it frees only once the GPU has caught up;
// waiting every so many bytes bounds that staging instead of letting it grow to the model's size.
const SYNC_EVERY_BYTES = 256 << 20;

/** Upload `spans` as trainable, scope-exempt parameters named by the spans, in order. */
export async function uploadSpans(spans: TensorSpan[], opts: { dtype?: WeightDType; chunkElements?: number } = {}): Promise<Map<string, Tensor>> {
  const chunk = opts.chunkElements ?? CHUNK_ELEMENTS;
  // Chunks start at byte offsets that are multiples of 4, as WebGPU's writeBuffer requires.
  if (!(Number.isInteger(chunk) && chunk > 0 && chunk % 2 === 0)) throw new Error(`uploadSpans: chunkElements must be a positive even integer, got ${chunk}`);
  const reader = new SpanReader();
  const out = new Map<string, Tensor>();
  let sinceSync = 0;
  try {
    for (const span of spans) {
      const as = gpuDTypeFor(span, opts.dtype);
      if (!gpuHasDType(as)) throw new Error(`${span.file}: cannot keep "${span.name}" as ${as} on the GPU: this engine has no ${as} storage (use --weights-dtype f32 or f16)`);
      const n = numel(span.shape);
      const t = exactSizes(() => Tensor.empty(span.shape, as, 'load', true));
      out.set(span.name, param(t, span.name));
      for (let s = 0; s < n; s += chunk) {
        const count = Math.min(chunk, n - s);
        const data = reader.read(span, s, count, as);
        // Tensor.from uploads a whole host array; a chunk goes to its byte offset instead.
        uploadAt(t, s, data);
        sinceSync += data.byteLength;
        if (sinceSync >= SYNC_EVERY_BYTES) {
          await sync();
          sinceSync = 0;
        }
      }
    }
    await sync();
    return out;
  } catch (e) {
    for (const t of out.values()) t.dispose();
    throw e;
  } finally {
    reader.close();
  }
}

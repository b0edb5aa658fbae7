// Writing a .safetensors file one tensor at a time. The header needs only names, stored dtypes
// and shapes, so it is written first and each tensor's data is then fetched (for a model: read
// back from the GPU), encoded, written and dropped before the next: peak host memory is one
// tensor, not the checkpoint. Bytes are identical to writeSafetensors' for the same tensors.
import { AtomicFile } from './atomic-write.js';
import { FormatError } from './errors.js';
import { assertLittleEndianHost, type HostDType, type HostTensor } from './host-tensor.js';
import { checkToSave, encode, safetensorsLayout } from './safetensors.js';

export interface StreamedTensor {
  name: string;
  /** Dtype stored in the file (f16/bf16 rounded from the f32 data read). */
  dtype: HostDType;
  shape: number[];
  /** The tensor's data, fetched when its turn comes (once). */
  read: () => Promise<HostTensor>;
}

/** Write `tensors` to `file` atomically, reading each only when it is written. */
export async function writeSafetensorsStreamed(file: string, tensors: StreamedTensor[], metadata: Record<string, string> = {}): Promise<void> {
  assertLittleEndianHost();
  const seen = new Set<string>();
  for (const t of tensors) {
    if (seen.has(t.name)) throw new FormatError(file, t.name, `tensor "${t.name}" listed twice`);
    seen.add(t.name);
  }
  const { prefix, order } = safetensorsLayout(tensors, metadata);
  const out = new AtomicFile(file);
  try {
    out.write(prefix);
    for (const it of order) {
      const t = await it.read();
      checkToSave(file, it.name, t, it.dtype);
      if (t.shape.length !== it.shape.length || t.shape.some((d, i) => d !== it.shape[i])) {
        throw new FormatError(file, it.name, `tensor "${it.name}": read as [${t.shape}], listed as [${it.shape}]`);
      }
      out.write(encode(t.data, it.dtype));
    }
    out.commit();
  } catch (e) {
    out.abort();
    throw e;
  }
}

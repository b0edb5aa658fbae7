// Saving a model's weights to .safetensors without a host copy of the whole model: each
// parameter is read back from the GPU, encoded and written, then dropped (writeSafetensorsStreamed).
import type { HostTensor } from '../io/host-tensor.js';
import type { SaveDType } from '../io/safetensors.js';
import { writeSafetensorsStreamed } from '../io/safetensors-write-stream.js';
import type { Weights } from './weights.js';

export interface WeightsSaveOptions {
  /** Stored dtype (default f32). */
  saveAs?: SaveDType;
  /** Parameters left out (saved elsewhere, e.g. the AR's value head). */
  omit?: readonly string[];
  /** Applied to each parameter's host copy before it is written (must keep its shape). */
  transform?: (name: string, t: HostTensor) => HostTensor;
  metadata?: Record<string, string>;
}

/** Write `w` to `file` atomically, one parameter at a time; bytes as writeSafetensors(toHost()) gives. */
export async function writeWeights(file: string, w: Weights, opts: WeightsSaveOptions = {}): Promise<void> {
  const omit = new Set(opts.omit ?? []);
  const entries = [...w.map].filter(([name]) => !omit.has(name)).map(([name, t]) => ({
    name, dtype: opts.saveAs ?? ('f32' as const), shape: [...t.shape],
    read: async (): Promise<HostTensor> => {
      const h: HostTensor = { dtype: 'f32', shape: [...t.shape], data: (await t.data()) as Float32Array };
      return opts.transform ? opts.transform(name, h) : h;
    },
  }));
  await writeSafetensorsStreamed(file, entries, opts.metadata);
}

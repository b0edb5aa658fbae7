// Training checkpoints: weights, optimizer state, step and RNG state in one msgpack file,
// written to a temporary file, fsynced, then renamed, so a crash never leaves a torn file.
import * as fs from 'node:fs';
import { pack, unpack } from 'msgpackr';
import { writeFileAtomic } from '../io/atomic-write.js';
import type { HostTensor } from '../io/host-tensor.js';

export interface Checkpoint {
  format: 'nla-checkpoint/1';
  step: number;
  /** Named parameter groups, e.g. { model: ..., head: ... }. */
  weights: Record<string, Record<string, HostTensor>>;
  optimizer?: Record<string, unknown>;
  rngState?: number;
  extra?: Record<string, unknown>;
}

export function saveCheckpoint(file: string, ck: Omit<Checkpoint, 'format'>): void {
  const toPlain = (m: Record<string, HostTensor>) =>
    Object.fromEntries(Object.entries(m).map(([k, t]) => [k, { dtype: t.dtype, shape: t.shape, data: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) }]));
  const body = { ...ck, format: 'nla-checkpoint/1', weights: Object.fromEntries(Object.entries(ck.weights).map(([g, m]) => [g, toPlain(m)])) };
  writeFileAtomic(file, [pack(body)]);
}

export function loadCheckpoint(file: string): Checkpoint {
  if (!fs.existsSync(file)) throw new Error(`${file}: checkpoint not found`);
  let raw: Record<string, unknown>;
  try {
    raw = unpack(fs.readFileSync(file)) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${file}: not a readable checkpoint (${(e as Error).message}); it may be truncated`);
  }
  if (!raw || raw.format !== 'nla-checkpoint/1') throw new Error(`${file}: field "format" is ${JSON.stringify(raw?.format)}, expected "nla-checkpoint/1"`);
  if (typeof raw.step !== 'number') throw new Error(`${file}: field "step" missing`);
  const weights: Checkpoint['weights'] = {};
  for (const [g, m] of Object.entries(raw.weights as Record<string, Record<string, { dtype: HostTensor['dtype']; shape: number[]; data: Uint8Array }>>)) {
    weights[g] = {};
    for (const [k, t] of Object.entries(m)) {
      // unpack gives Node Buffers (views into one pooled ArrayBuffer): copy to an exact, aligned one.
      const bytes = new Uint8Array(t.data);
      const n = t.shape.reduce((a, b) => a * b, 1);
      const data = t.dtype === 'i32' ? new Int32Array(bytes.buffer) : new Float32Array(bytes.buffer);
      if (data.length !== n) throw new Error(`${file}: tensor "${g}/${k}" has ${data.length} values for shape [${t.shape}]`);
      weights[g][k] = { dtype: t.dtype, shape: t.shape, data };
    }
  }
  return { ...(raw as unknown as Checkpoint), weights };
}

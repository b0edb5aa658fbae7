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
  let raw: unknown;
  try {
    raw = unpack(fs.readFileSync(file));
  } catch (e) {
    throw new Error(`${file}: not a readable checkpoint (${(e as Error).message}); it may be truncated`);
  }
  if (!isObj(raw) || raw.format !== 'nla-checkpoint/1') throw new Error(`${file}: field "format" is ${show(isObj(raw) ? raw.format : raw)}, expected "nla-checkpoint/1"`);
  if (!Number.isSafeInteger(raw.step) || (raw.step as number) < 0) throw new Error(`${file}: field "step" is ${show(raw.step)}, expected an integer >= 0`);
  if (!isObj(raw.weights)) throw new Error(`${file}: field "weights" missing or not a map of parameter groups`);
  if (raw.optimizer !== undefined && !isObj(raw.optimizer)) throw new Error(`${file}: field "optimizer" is not a map`);
  if (raw.extra !== undefined && !isObj(raw.extra)) throw new Error(`${file}: field "extra" is not a map`);
  if (raw.rngState !== undefined && typeof raw.rngState !== 'number') throw new Error(`${file}: field "rngState" is not a number`);
  const weights: Checkpoint['weights'] = {};
  for (const [g, m] of Object.entries(raw.weights)) {
    if (!isObj(m)) throw new Error(`${file}: field "weights.${g}" is not a map of tensors`);
    weights[g] = {};
    for (const [k, t] of Object.entries(m)) {
      const where = `${file}: tensor "${g}/${k}"`;
      if (!isObj(t)) throw new Error(`${where} is not {dtype, shape, data}`);
      if (t.dtype !== 'f32' && t.dtype !== 'i32') throw new Error(`${where}: field "dtype" is ${show(t.dtype)}, expected "f32" or "i32"`);
      if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new Error(`${where}: field "shape" is ${show(t.shape)}, expected non-negative integers`);
      if (!(t.data instanceof Uint8Array)) throw new Error(`${where}: field "data" is not bytes`);
      const n = t.shape.reduce((a: number, b: number) => a * b, 1);
      if (t.data.byteLength !== 4 * n) throw new Error(`${where} has ${t.data.byteLength / 4} values for shape [${t.shape}] (${t.data.byteLength} bytes, ${4 * n} expected)`);
      // unpack gives Node Buffers (views into one pooled ArrayBuffer): copy to an exact, aligned one.
      const bytes = new Uint8Array(t.data);
      const data = t.dtype === 'i32' ? new Int32Array(bytes.buffer) : new Float32Array(bytes.buffer);
      weights[g][k] = { dtype: t.dtype, shape: t.shape as number[], data };
    }
  }
  return { ...(raw as unknown as Checkpoint), weights };
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);
}

/** A value for an error message, cut short (a damaged file can put megabytes where a number was). */
function show(v: unknown): string {
  let s: string;
  try {
    s = ArrayBuffer.isView(v) ? `<${v.byteLength} bytes>` : (JSON.stringify(v) ?? String(v));
  } catch {
    s = String(v); // a bigint
  }
  return s.length > 80 ? s.slice(0, 80) + '…' : s;
}

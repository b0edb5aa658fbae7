// Checkpoints and exact resume for the NLA training loops (SFT of the AR and AV, joint RL).
// A checkpoint (src/nn/checkpoint.ts) holds everything the next step depends on: the weights
// of each parameter group, each optimizer's moments and step counts, the loop step, the
// SeededRng state, and loop-specific extras (the data order). Restoring all of it into freshly
// built models makes a resumed run continue exactly as the uninterrupted one would have.
import type { HostTensor } from '../io/host-tensor.js';
import { saveCheckpointStreamed, type Checkpoint, type DeferredTensor } from '../nn/checkpoint.js';
import type { Weights } from '../nn/weights.js';
import type { OptimizerState, OptimizerStateIn, ParamState } from '../tensor/optim/optimizer.js';
import { sync } from '../tensor/runtime.js';
import { uploadAt } from '../tensor/tensor.js';
import { fmt } from '../tensor/shape.js';
import type { SeededRng } from '../util/rng.js';
import { assertFiniteParams, type StepOptimizer } from './optim.js';

/** Write a checkpoint to `file` every `every` steps (and after the last step). */
export interface CheckpointSpec {
  file: string;
  every: number;
}

/** The live state of one training loop. Group names key the weights and optimizers. */
export interface TrainParts {
  /** Which loop ('sft-ar', 'sft-av', 'rl'): a checkpoint resumes only the loop that wrote it. */
  kind: string;
  weights: Record<string, Weights>;
  optimizers: Record<string, StepOptimizer>;
  rng: SeededRng;
  /** Numbers that must match between the saving and the resuming run (rows, batch size...). */
  identity: Record<string, number | string>;
}

/** Whether to checkpoint after `done` completed steps of `total`. */
export function checkpointDue(spec: CheckpointSpec | undefined, done: number, total: number): boolean {
  if (!spec) return false;
  if (!Number.isInteger(spec.every) || spec.every < 0) throw new Error(`checkpoint: "every" must be a non-negative integer, got ${spec.every}`);
  return (spec.every > 0 && done % spec.every === 0) || done === total;
}

// Optimizer state in a checkpoint: format 2 stores each slot as a tensor section (read when
// restored); format 1 stored raw little-endian bytes inside the msgpack map.
interface SavedParamState extends Omit<ParamState, 'slots'> {
  slots: Record<string, HostTensor | Uint8Array>;
}
interface SavedOptimizerState extends Omit<OptimizerState, 'params'> {
  params: SavedParamState[];
}

function unpackState(st: SavedOptimizerState, where: string): OptimizerStateIn {
  if (!st || !Array.isArray(st.params) || typeof st.kind !== 'string') throw new Error(`${where}: malformed optimizer state`);
  return {
    ...st,
    params: st.params.map((p, i) => {
      if (!p || typeof p.slots !== 'object' || p.slots === null || !Array.isArray(p.shape)) throw new Error(`${where}: parameter ${i}: malformed state`);
      const slots = Object.fromEntries(Object.entries(p.slots).map(([k, v]) => {
        // Format 1: copy (unpacked byte arrays are views into one pooled buffer, at any alignment).
        if (v instanceof Uint8Array) return [k, new Float32Array(new Uint8Array(v).buffer)];
        if (!v || v.dtype !== 'f32' || fmt(v.shape) !== fmt(p.shape)) throw new Error(`${where}: parameter ${i} slot "${k}" is not an f32 tensor of shape ${fmt(p.shape)}`);
        return [k, () => v.data as Float32Array];
      }));
      return { ...p, slots };
    }),
  };
}

/** Save the loop's state after `step` completed steps, one tensor on the host at a time. */
export async function saveTrainState(file: string, parts: TrainParts, step: number, extra: Record<string, unknown> = {}): Promise<void> {
  // Never a poisoned checkpoint: the last one stays the one to resume from.
  for (const [g, w] of Object.entries(parts.weights)) await assertFiniteParams(w.params(), `${parts.kind} checkpoint at step ${step} (${g})`);
  const weights: Record<string, Record<string, DeferredTensor>> = {};
  for (const [g, w] of Object.entries(parts.weights)) {
    weights[g] = Object.fromEntries([...w.map].map(([name, t]) => [name, { dtype: 'f32', shape: [...t.shape], fetch: async () => (await t.data()) as Float32Array }]));
  }
  const optimizer: Record<string, unknown> = {};
  for (const [g, o] of Object.entries(parts.optimizers)) {
    const st = o.adam.deferredState();
    optimizer[g] = {
      ...st,
      params: st.params.map((p) => ({ ...p, slots: Object.fromEntries(Object.entries(p.slots).map(([k, fetch]) => [k, { dtype: 'f32', shape: p.shape, fetch }])) })),
    };
  }
  await saveCheckpointStreamed(file, { step, weights, optimizer, rngState: parts.rng.state, extra: { ...extra, kind: parts.kind, identity: parts.identity } });
}

/**
 * Overwrite a model's parameters in place with saved values (names and shapes must match),
 * one tensor on the host at a time, draining the queue every 256 MiB of uploads.
 */
export async function restoreWeights(w: Weights, saved: Record<string, HostTensor> | undefined, where: string): Promise<void> {
  if (!saved) throw new Error(`${where}: no weights saved for this group`);
  for (const name of Object.keys(saved)) if (!w.has(name)) throw new Error(`${where}: saved tensor "${name}" is not a parameter of this model`);
  let pending = 0;
  for (const [name, t] of w.map) {
    const s = saved[name];
    if (!s) throw new Error(`${where}: parameter "${name}" is missing from the checkpoint`);
    if (fmt(s.shape) !== fmt(t.shape)) throw new Error(`${where}: parameter "${name}" is ${fmt(t.shape)}, checkpoint has ${fmt(s.shape)}`);
    if (t.dtype !== 'f32' || !t.isContiguous || s.dtype !== 'f32') throw new Error(`${where}: parameter "${name}" must be a dense f32 tensor`);
    uploadAt(t, 0, s.data); // piece by piece for a parameter in several buffers
    pending += 4 * t.size;
    if (pending >= 256 << 20) {
      await sync();
      pending = 0;
    }
  }
}

/**
 * Restore a checkpoint into the parts of a freshly built loop (same models, optimizers over the
 * same parameters). Returns the completed step count and the loop's extras.
 */
export async function restoreTrainState(ck: Checkpoint, parts: TrainParts, source = 'checkpoint'): Promise<{ step: number; extra: Record<string, unknown> }> {
  const extra = (ck.extra ?? {}) as Record<string, unknown>;
  if (extra.kind !== parts.kind) throw new Error(`${source}: written by \`${String(extra.kind)}\`, cannot resume \`${parts.kind}\``);
  const saved = (extra.identity ?? {}) as Record<string, unknown>;
  for (const [k, v] of Object.entries(parts.identity)) {
    if (saved[k] !== v) throw new Error(`${source}: saved with ${k} = ${JSON.stringify(saved[k])}, this run has ${k} = ${JSON.stringify(v)}; resume with the same data and settings`);
  }
  if (typeof ck.rngState !== 'number') throw new Error(`${source}: no RNG state`);
  for (const [g, w] of Object.entries(parts.weights)) await restoreWeights(w, ck.weights[g], `${source} (weights "${g}")`);
  const opt = (ck.optimizer ?? {}) as Record<string, SavedOptimizerState>;
  for (const [g, o] of Object.entries(parts.optimizers)) {
    if (!opt[g]) throw new Error(`${source}: no optimizer state for "${g}"`);
    await o.adam.loadStateStreamed(unpackState(opt[g], `${source} (optimizer "${g}")`));
  }
  parts.rng.state = ck.rngState >>> 0;
  return { step: ck.step, extra };
}

// Summarisation warm start. The AV learns h -> summary (loss on the summary tokens only);
// the AR learns summary -> h (normalised MSE). Same loop for both, with checkpoints every N
// steps and an exact resume (weights, optimizer, step, RNG and the data order: train-state.ts).
import type { Checkpoint } from '../nn/checkpoint.js';
import type { Weights } from '../nn/weights.js';
import * as T from '../tensor/index.js';
import type { Tensor } from '../tensor/tensor.js';
import { SeededRng } from '../util/rng.js';
import type { Reconstructor } from './ar.js';
import type { Verbalizer } from './av.js';
import type { Field } from './corpus.js';
import { assertFiniteParams, makeOptimizer, type TrainSchedule } from './optim.js';
import { checkpointDue, restoreTrainState, saveTrainState, type CheckpointSpec, type TrainParts } from './train-state.js';

export interface SftOptions extends TrainSchedule {
  steps: number;
  batchSize: number;
  seed: number;
  logEvery?: number;
  /**
   * At each logged step. `shuffledLoss` (AV SFT, batches of 2 or more): the loss on the same
   * rows with the activations rotated among them, before the step's update: the reference's
   * health signal, since the gap between it and `loss` says the AV reads h.
   */
  onLog?: (m: { step: number; loss: number; lr: number; shuffledLoss?: number }) => void;
  /** Save the training state to this file every N steps and after the last one. */
  checkpoint?: CheckpointSpec;
  /** Continue from a checkpoint this loop wrote (same data, batch size and model). */
  resume?: Checkpoint;
  /** Called after each checkpoint is written, with the completed step count. */
  onCheckpoint?: (step: number, file: string) => void;
  /** Called for a step whose update was skipped for a NaN or an infinity (onNonFinite 'skip'). */
  onSkip?: (step: number) => void;
  /**
   * AV only: weight W on the cross-entropy of the summary tokens that state a known fact's value
   * (fact-weights.ts), the loss a weighted mean over target tokens; 1 or undefined = the plain mean.
   */
  factWeight?: number;
  /**
   * AV only: weight W on the cross-entropy of the tokens of the summary's opening quotation (the
   * words read, fact-weights.ts quoteSpan), with factWeight in the same weighted mean; 1 or
   * undefined = unweighted.
   */
  quoteWeight?: number;
  /**
   * Length pools: each epoch's shuffled rows are cut into pools of `lengthPool` batches, each
   * pool sorted by sequence length and dealt into batches whose order is then shuffled. A batch
   * is padded to its longest row, so rows of like length waste less (the stories demo's AV
   * batches at 8: 21% fewer tokens); every row still comes once per epoch. 0 or undefined: off.
   */
  lengthPool?: number;
}

export interface SftData {
  h: Float32Array; // [n, d]
  texts: string[]; // the summary of each row
  /** The facts read at each row's cut (known-answer and world stores): what factWeight finds in the summary. */
  known?: (Partial<Record<Field, string>> | undefined)[];
}

async function loop(kind: string, group: string, w: Weights, n: number, o: SftOptions, lossOf: (idx: number[]) => Tensor, controlOf?: (idx: number[]) => Tensor, lengthOf?: (i: number) => number): Promise<number[]> {
  const opt = makeOptimizer(w.params(), o, kind);
  let lens: number[] | undefined;
  const lengths = () => {
    if (!lengthOf) throw new Error(`${kind}: lengthPool needs the rows' lengths`);
    return (lens ??= [...Array(n).keys()].map(lengthOf));
  };
  const r = new SeededRng(o.seed);
  const parts: TrainParts = { kind, weights: { [group]: w }, optimizers: { [group]: opt }, rng: r, identity: { rows: n, batchSize: o.batchSize } };
  const history: number[] = [];
  let order: number[] = [];
  let start = 0;
  try {
    if (o.resume) {
      const s = await restoreTrainState(o.resume, parts);
      start = s.step;
      order = s.extra.order as number[];
      if (!Array.isArray(order)) throw new Error('checkpoint: no data order saved');
    }
    for (let step = start; step < o.steps; step++) {
      if (order.length < o.batchSize) order = order.concat(epochOrder(n, o.batchSize, r, o.lengthPool ? { pool: o.lengthPool, lengths: lengths() } : undefined));
      const idx = order.splice(0, o.batchSize);
      const log = step % (o.logEvery ?? 10) === 0 || step === o.steps - 1;
      const lossT = T.tidy(() => {
        const loss = lossOf(idx);
        loss.backward();
        return loss.detach();
      });
      // The control, with the weights the loss above saw (before the update); no gradient, no RNG.
      const controlT = log && controlOf && idx.length > 1 ? T.noGrad(() => T.tidy(() => controlOf(idx))) : undefined;
      try {
        const { lr, skipped } = await opt.step(step, lossT);
        if (skipped) o.onSkip?.(step);
        else if (log) {
          const loss = await lossT.item();
          history.push(loss);
          const shuffledLoss = controlT ? await controlT.item() : undefined;
          o.onLog?.({ step, loss, lr, ...(shuffledLoss !== undefined ? { shuffledLoss } : {}) });
        }
      } finally {
        lossT.dispose();
        controlT?.dispose();
      }
      if (checkpointDue(o.checkpoint, step + 1, o.steps)) {
        await saveTrainState(o.checkpoint!.file, parts, step + 1, { order });
        o.onCheckpoint?.(step + 1, o.checkpoint!.file);
      }
    }
    // The last update is checked before the caller saves the weights.
    await assertFiniteParams(w.params(), kind);
  } finally {
    opt.dispose();
  }
  return history;
}

export function rowsOf(h: Float32Array, d: number, idx: number[]): Float32Array {
  const out = new Float32Array(idx.length * d);
  idx.forEach((i, k) => out.set(h.subarray(i * d, (i + 1) * d), k * d));
  return out;
}

export function trainArSft(ar: Reconstructor, data: SftData, o: SftOptions): Promise<number[]> {
  return loop('sft-ar', 'ar', ar.model.w, data.texts.length, o, (idx) => ar.loss(idx.map((i) => data.texts[i]), rowsOf(data.h, ar.d, idx)), undefined, (i) => ar.ids(data.texts[i]).length);
}

export function trainAvSft(av: Verbalizer, data: SftData, o: SftOptions): Promise<number[]> {
  const texts = (idx: number[]) => idx.map((i) => data.texts[i]);
  const weights = avTokenWeights(av, data, o.factWeight, o.quoteWeight);
  const w = weights ? (idx: number[]) => idx.map((i) => weights[i]) : () => undefined;
  return loop('sft-av', 'av', av.model.w, data.texts.length, o, (idx) => av.sftLoss(rowsOf(data.h, av.d, idx), texts(idx), w(idx)), (idx) => av.sftLoss(rowsOf(data.h, av.d, rotated(idx)), texts(idx), w(idx)), (i) => av.targetIds(data.texts[i]).length);
}

/** Each row's target-token weights for factWeight W and quoteWeight Q, or undefined for the plain mean (both 1 or unset). */
export function avTokenWeights(av: Verbalizer, data: SftData, factWeight: number | undefined, quoteWeight?: number): number[][] | undefined {
  const f = factWeight ?? 1, q = quoteWeight ?? 1;
  if (f === 1 && q === 1) return undefined;
  for (const [name, x] of [['factWeight', f], ['quoteWeight', q]] as const) if (!(x > 0) || !Number.isFinite(x)) throw new Error(`${name}: ${x} is not a positive number`);
  if (f !== 1 && !data.known) throw new Error('factWeight: the training rows carry no facts (a known-answer or world store is needed: rows with truth.known)');
  return data.texts.map((t, i) => av.targetWeights(t, data.known?.[i] ?? {}, f, q));
}

/** Each row's activation replaced by the next row's (a derangement of the batch, without randomness). */
export function rotated(idx: number[]): number[] {
  return idx.map((_, k) => idx[(k + 1) % idx.length]);
}

/**
 * One epoch's row order: a shuffle, or with `lengths` a shuffle cut into pools of `pool`
 * batches, each sorted by length (ties by the shuffle), dealt into batches, the pool's batches
 * in shuffled order. Batches of `batchSize` then come off the front as before.
 */
export function epochOrder(n: number, batchSize: number, r: SeededRng, lengths?: { pool: number; lengths: readonly number[] }): number[] {
  const rows = shuffle([...Array(n).keys()], r);
  if (!lengths || lengths.pool <= 1) return rows;
  const L = lengths.lengths, size = lengths.pool * batchSize, out: number[] = [];
  for (let s = 0; s < n; s += size) {
    const pool = rows.slice(s, s + size).sort((a, b) => L[a]! - L[b]!);
    const batches: number[][] = [];
    for (let k = 0; k < pool.length; k += batchSize) batches.push(pool.slice(k, k + batchSize));
    // A short batch (the epoch's last rows) stays last, or every batch after it would straddle two.
    const full = batches.filter((b) => b.length === batchSize), short = batches.filter((b) => b.length < batchSize);
    for (const b of [...shuffle(full, r), ...short]) out.push(...b);
  }
  return out;
}

function shuffle<T>(a: T[], r: SeededRng): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(r.next() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

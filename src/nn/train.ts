// Training a language model: masked next-token cross-entropy (fused, padding ignored), AdamW
// with decoupled weight decay on matrices only, linear warm-up then cosine decay, global
// gradient-norm clipping fused into the update, and checkpoints (weights, AdamW moments and
// steps, the data RNG) every N steps that resume bit-exactly: a run interrupted and resumed
// ends with the same weights as one that was not.
import * as fs from 'node:fs';
import type { ModelConfig } from '../io/config.js';
import type { HostTensor } from '../io/host-tensor.js';
import * as T from '../tensor/index.js';
import { nonFinite, NonFiniteError } from '../tensor/optim/finite.js';
import { uploadAt } from '../tensor/tensor.js';
import type { Tensor } from '../tensor/tensor.js';
import { loadCheckpoint, saveCheckpointStreamed, type DeferredTensor } from './checkpoint.js';
import { IGNORE_INDEX, type Batch, type DataLoader } from './data.js';
import { headInChunks } from './generate.js';
import { build, type AnyModel } from './load.js';
import type { LanguageModel } from './model.js';

export interface TrainOptions {
  /** Total optimizer steps (the cosine schedule ends here). */
  steps: number;
  /** Peak learning rate. */
  lr: number;
  /** Floor of the cosine decay (default lr / 10). */
  minLr?: number;
  /** Linear warm-up steps (default min(100, steps / 10)). */
  warmupSteps?: number;
  /** AdamW decoupled weight decay, applied to matrices and embeddings only (default 0.1). */
  weightDecay?: number;
  /** Default [0.9, 0.95] (the LLM-pretraining choice). */
  betas?: [number, number];
  eps?: number;
  /** Clip the global gradient norm to this (default 1; Infinity turns clipping off). */
  maxGradNorm?: number;
  /** Write a checkpoint here every `checkpointEvery` steps and at the end. */
  checkpointPath?: string;
  checkpointEvery?: number;
  /** Stored in every checkpoint's `extra` (e.g. the tokenizer needed to use the model). */
  checkpointExtra?: Record<string, unknown>;
  /** Read the loss back (a GPU sync) every N steps (default 10) and call onLog. */
  logEvery?: number;
  onLog?: (m: TrainLog) => void;
  /** Held-out loss every `every` steps over `batches` batches (its own fixed-seed draws). */
  eval?: { data: DataLoader; every: number; batches?: number };
  onEval?: (m: { step: number; loss: number }) => void;
  /**
   * Every step checks the loss and the global gradient norm for NaN/Inf (one fused check, one
   * readback) before updating. 'stop' (default) throws NonFiniteError naming the loss, the
   * gradients and the parameters at fault; 'skip' drops the batch, leaving parameters and
   * AdamW state untouched, and goes on. A parameter already holding NaN/Inf always stops.
   */
  onNonFinite?: 'stop' | 'skip';
  /** Called for each batch skipped under onNonFinite 'skip'. */
  onSkip?: (m: { step: number; bad: string[] }) => void;
}

export interface TrainLog {
  /** Steps completed (1 after the first update). */
  step: number;
  loss: number;
  lr: number;
  /** Global gradient norm before clipping (when clipping is on). */
  gradNorm?: number;
  /** Training tokens per second since the previous log. */
  tokensPerSec: number;
}

export interface TrainResult {
  steps: number;
  /** (step, loss) at every log point. */
  losses: { step: number; loss: number }[];
  evals: { step: number; loss: number }[];
  /** Batches dropped for a NaN or an infinity (onNonFinite 'skip'). */
  skipped: number;
  seconds: number;
}

/** Mean next-token cross-entropy of a batch; IGNORE_INDEX targets (padding) are skipped and not counted. */
export function lmLoss(model: LanguageModel, batch: Batch, chunkedHead?: boolean): Tensor {
  const { B, T: Tn } = batch;
  const V = model.cfg.vocabSize;
  const ids = T.Tensor.from(batch.inputs, [B, Tn], 'i32');
  if (headInChunks(model, B * Tn, chunkedHead)) {
    // A big vocabulary: the head runs in chunks; ignored rows are scored at token 0 and weighted 0.
    const counted = Float32Array.from(batch.targets, (t) => (t === IGNORE_INDEX ? 0 : 1));
    const n = counted.reduce((a, b) => a + b, 0);
    const { head } = model.forward(ids, { headless: true });
    const lp = T.headLogProbs(head!.input.reshape([B * Tn, model.cfg.dim]), head!.weight, T.Tensor.from(Int32Array.from(batch.targets, (t) => (t === IGNORE_INDEX ? 0 : t))));
    return T.mul(T.sum(T.mul(lp, T.Tensor.from(counted))), -1 / Math.max(1, n));
  }
  const { logits } = model.forward(ids);
  const targets = T.Tensor.from(batch.targets, [B * Tn], 'i32');
  return T.crossEntropy(logits!.reshape([B * Tn, V]), targets, { ignoreIndex: IGNORE_INDEX });
}

/** Parameters grouped for weight decay: matrices and embeddings decay, gains and biases do not. */
export function decayGroups(params: Tensor[], weightDecay: number): T.ParamGroup[] {
  return [
    { params: params.filter((p) => p.rank >= 2), weightDecay },
    { params: params.filter((p) => p.rank < 2), weightDecay: 0 },
  ].filter((g) => g.params.length > 0);
}

const CHECKPOINT_KIND = 'nla-lm-train/1';
// Under 'skip', this many skipped batches in a row means the run itself is broken: stop.
const MAX_SKIPS_IN_A_ROW = 20;

export class Trainer {
  readonly opt: T.AdamW;
  readonly params: Tensor[];
  readonly schedule: (step: number) => number;
  private tokensSinceLog = 0;
  private lastLogTime = performance.now();

  constructor(readonly model: LanguageModel, readonly data: DataLoader, readonly o: TrainOptions) {
    if (!Number.isSafeInteger(o.steps) || o.steps <= 0) throw new Error(`Trainer: steps ${o.steps} must be a positive integer`);
    if (!(o.lr > 0)) throw new Error(`Trainer: lr ${o.lr} must be positive`);
    if (o.checkpointEvery !== undefined && !o.checkpointPath) throw new Error('Trainer: checkpointEvery needs checkpointPath');
    const warmup = o.warmupSteps ?? Math.min(100, Math.floor(o.steps / 10));
    this.schedule = T.cosineSchedule({ maxLr: o.lr, minLr: o.minLr ?? o.lr / 10, warmupSteps: Math.min(warmup, o.steps), totalSteps: o.steps });
    model.w.setTrainable(true);
    this.params = model.w.params();
    const clip = o.maxGradNorm ?? 1;
    this.opt = new T.AdamW(decayGroups(this.params, o.weightDecay ?? 0.1), {
      lr: this.schedule,
      betas: o.betas ?? [0.9, 0.95],
      eps: o.eps,
      maxGradNorm: Number.isFinite(clip) ? clip : undefined,
    });
  }

  /** Optimizer steps completed. */
  get step(): number {
    return this.opt.stepCount;
  }

  /**
   * One update on the next batch: forward, backward, clip + AdamW. Returns the loss and the
   * pre-clip gradient norm as tensors (not read back: call .item() only when you need them).
   * Unchecked: run() uses checkedStep, which looks for NaN/Inf before updating.
   */
  trainStep(batch: Batch = this.data.next()): { loss: Tensor; gradNorm?: Tensor } {
    const loss = T.tidy(() => {
      const l = lmLoss(this.model, batch);
      l.backward();
      return l.detach();
    });
    const gradNorm = this.opt.step();
    this.opt.zeroGrad();
    this.tokensSinceLog += batch.count;
    return { loss, gradNorm };
  }

  /**
   * trainStep with the NaN/Inf check of `onNonFinite` before the update. Returns `skipped` (the
   * names at fault) instead of the loss when the batch was dropped under 'skip'.
   */
  async checkedStep(batch: Batch = this.data.next()): Promise<{ loss: Tensor; gradNorm?: Tensor } | { skipped: string[] }> {
    const loss = T.tidy(() => {
      const l = lmLoss(this.model, batch);
      l.backward();
      return l.detach();
    });
    // The global gradient norm is NaN/Inf when any gradient element is; when clipping it is
    // computed anyway, and handed to the update. Only after a hit is each tensor checked, to name it.
    const grads = this.params.filter((p) => p.grad);
    const gradOf = (p: Tensor): [string, Tensor] => [`gradient of ${p.name ?? '#' + p.id}`, p.grad!];
    const paramOf = (p: Tensor): [string, Tensor] => [`parameter ${p.name ?? '#' + p.id}`, p];
    const nc = this.opt.maxGradNorm !== undefined && grads.length ? T.gradNormCoef(this.params, this.opt.maxGradNorm, 'Trainer') : undefined;
    let bad = await nonFinite([['loss', loss], ...(nc ? [['gradient norm', nc] as [string, Tensor]] : grads.map(gradOf))]);
    if (bad.length) {
      bad = await nonFinite([['loss', loss], ...this.params.map(paramOf), ...grads.map(gradOf)]); // parameters first: the cause
      nc?.dispose();
      loss.dispose();
      T.zeroGrad(this.params);
      const poisoned = bad.some((b) => b.startsWith('parameter '));
      if (poisoned || this.o.onNonFinite !== 'skip') {
        const why = poisoned ? 'the parameters are already poisoned; resume from the last checkpoint' : 'the update was not applied (onNonFinite "skip" drops such batches)';
        throw new NonFiniteError(`Trainer step ${this.step + 1}: NaN or Inf in ${bad.length > 6 ? `${bad.slice(0, 6).join(', ')} and ${bad.length - 6} more` : bad.join(', ')}; ${why}`);
      }
      return { skipped: bad };
    }
    const gradNorm = this.opt.step(nc);
    this.opt.zeroGrad();
    this.tokensSinceLog += batch.count;
    return { loss, gradNorm };
  }

  /** Mean loss over `batches` batches drawn from `loader` with its seed fixed (no gradient, no state change). */
  async evaluate(loader: DataLoader, batches = 4): Promise<number> {
    const saved = loader.state;
    loader.state = 0x5eed;
    let sum = 0;
    try {
      for (let i = 0; i < batches; i++) {
        const b = loader.next();
        const l = T.noGrad(() => T.tidy(() => lmLoss(this.model, b)));
        sum += await l.item();
        l.dispose();
      }
    } finally {
      loader.state = saved;
    }
    return sum / batches;
  }

  /** Train until `until` steps are complete (default: all of o.steps), checkpointing and logging on the way. */
  async run(opts: { until?: number } = {}): Promise<TrainResult> {
    const o = this.o;
    const until = Math.min(opts.until ?? o.steps, o.steps);
    const logEvery = o.logEvery ?? 10;
    const res: TrainResult = { steps: this.step, losses: [], evals: [], skipped: 0, seconds: 0 };
    const t0 = performance.now();
    this.lastLogTime = t0;
    this.tokensSinceLog = 0;
    const first = this.step + 1;
    let inARow = 0;
    while (this.step < until) {
      const lr = this.opt.currentLr();
      const r = await this.checkedStep();
      if ('skipped' in r) {
        res.skipped++;
        o.onSkip?.({ step: this.step + 1, bad: r.skipped });
        if (++inARow >= MAX_SKIPS_IN_A_ROW) throw new NonFiniteError(`Trainer step ${this.step + 1}: ${inARow} batches in a row skipped for NaN or Inf (last: ${r.skipped.slice(0, 6).join(', ')}); the run is broken, not one batch`);
        continue;
      }
      inARow = 0;
      const { loss, gradNorm } = r;
      const done = this.step;
      if (done % logEvery === 0 || done === until || done === first) {
        const l = await loss.item();
        const gn = gradNorm ? await gradNorm.item() : undefined;
        const now = performance.now();
        const tps = (this.tokensSinceLog * 1000) / Math.max(now - this.lastLogTime, 1e-3);
        this.lastLogTime = now;
        this.tokensSinceLog = 0;
        if (!Number.isFinite(l)) throw new Error(`Trainer: loss is ${l} at step ${done} (lr ${lr}); lower the learning rate or check the data`);
        res.losses.push({ step: done, loss: l });
        o.onLog?.({ step: done, loss: l, lr, gradNorm: gn, tokensPerSec: tps });
      }
      loss.dispose();
      gradNorm?.dispose();
      if (o.eval && (done % o.eval.every === 0 || done === o.steps)) {
        const el = await this.evaluate(o.eval.data, o.eval.batches);
        res.evals.push({ step: done, loss: el });
        o.onEval?.({ step: done, loss: el });
      }
      if (o.checkpointPath && ((o.checkpointEvery && done % o.checkpointEvery === 0) || done === o.steps)) await this.save(o.checkpointPath);
    }
    await T.sync();
    res.steps = this.step;
    res.seconds = (performance.now() - t0) / 1000;
    return res;
  }

  /** Write a checkpoint: weights, AdamW state (moments and per-parameter steps), step, data RNG state. */
  async save(file: string): Promise<void> {
    // Never write a poisoned checkpoint: a resume from it could not recover.
    const bad = await nonFinite(this.params.map((p) => [`parameter ${p.name ?? '#' + p.id}`, p]));
    if (bad.length) throw new NonFiniteError(`Trainer: not writing checkpoint ${file} at step ${this.step}: NaN or Inf in ${bad.slice(0, 6).join(', ')}`);
    // Streamed: each tensor is downloaded when the writer reaches it (a model of any size).
    const st = this.opt.deferredState();
    const names = this.params.map((p) => p.name!);
    const m: Record<string, DeferredTensor> = {}, v: Record<string, DeferredTensor> = {};
    st.params.forEach((p, i) => {
      m[names[i]] = { dtype: 'f32', shape: p.shape, fetch: p.slots.m };
      v[names[i]] = { dtype: 'f32', shape: p.shape, fetch: p.slots.v };
    });
    const model: Record<string, DeferredTensor> = {};
    for (const [name, t] of this.model.w.map) model[name] = { dtype: 'f32', shape: [...t.shape], fetch: async () => (await t.data()) as Float32Array };
    await saveCheckpointStreamed(file, {
      step: this.step,
      weights: { model, 'adamw.m': m, 'adamw.v': v },
      optimizer: { kind: st.kind, stepCount: st.stepCount, params: st.params.map((p, i) => ({ name: names[i], shape: p.shape, step: p.step })) },
      rngState: this.data.state,
      extra: { ...this.o.checkpointExtra, kind: CHECKPOINT_KIND, modelConfig: this.model.cfg, steps: this.o.steps, lr: this.o.lr },
    });
  }

  /** Restore a checkpoint written by save() into this trainer's model, optimizer and data loader. */
  async resume(file: string): Promise<void> {
    const ck = loadCheckpoint(file);
    const weights = ck.weights.model;
    if (!weights) throw new Error(`${file}: checkpoint has no "model" weights`);
    checkSameConfig(file, ck.extra?.modelConfig as ModelConfig | undefined, this.model.cfg);
    // Weights: the same names and shapes, uploaded one at a time into the existing parameter buffers.
    let pending = 0;
    for (const name of Object.keys(weights)) if (!this.model.w.has(name)) throw new Error(`${file}: checkpoint tensor "${name}" is not a parameter of this model`);
    for (const p of this.params) {
      const h = weights[p.name!];
      if (!h) throw new Error(`${file}: checkpoint lacks parameter "${p.name}"`);
      if (h.shape.join(',') !== p.shape.join(',') || h.dtype !== 'f32') throw new Error(`${file}: parameter "${p.name}" is [${h.shape}] ${h.dtype} in the checkpoint, [${p.shape}] f32 in the model`);
      uploadAt(p, 0, h.data); // piece by piece for a parameter in several buffers
      pending += 4 * p.size;
      if (pending >= 256 << 20) {
        await T.sync();
        pending = 0;
      }
    }
    // Optimizer: moments and per-parameter steps, matched by name.
    const o = ck.optimizer as { kind?: string; stepCount?: number; params?: { name: string; shape: number[]; step: number }[] } | undefined;
    if (!o || o.kind !== this.opt.kind || !Array.isArray(o.params) || typeof o.stepCount !== 'number') throw new Error(`${file}: checkpoint has no ${this.opt.kind} optimizer state`);
    const byName = new Map(o.params.map((p) => [p.name, p]));
    const m = ck.weights['adamw.m'] ?? {}, v = ck.weights['adamw.v'] ?? {};
    await this.opt.loadStateStreamed({
      kind: o.kind,
      stepCount: o.stepCount,
      params: this.params.map((p) => {
        const s = byName.get(p.name!);
        if (!s || !m[p.name!] || !v[p.name!]) throw new Error(`${file}: no optimizer state for parameter "${p.name}"`);
        // Read when restored (format 2 reads each from the file on access).
        return { name: p.name, shape: s.shape, step: s.step, slots: { m: () => m[p.name!].data as Float32Array, v: () => v[p.name!].data as Float32Array } };
      }),
    });
    if (o.stepCount !== ck.step) throw new Error(`${file}: step ${ck.step} disagrees with the optimizer's ${o.stepCount}`);
    if (typeof ck.rngState !== 'number') throw new Error(`${file}: checkpoint has no data RNG state`);
    this.data.state = ck.rngState;
    this.opt.zeroGrad();
  }

  /** Free the optimizer state (the model is the caller's). */
  dispose(): void {
    this.opt.dispose();
  }
}

function checkSameConfig(file: string, saved: ModelConfig | undefined, cur: ModelConfig): void {
  if (!saved) return;
  for (const k of ['arch', 'dim', 'hiddenDim', 'nLayers', 'nHeads', 'nKvHeads', 'vocabSize'] as const) {
    if (saved[k] !== cur[k]) throw new Error(`${file}: checkpoint was trained with ${k}=${saved[k]}, this model has ${k}=${cur[k]}`);
  }
}

/** Train `model` on `data` (optionally resuming from opts.checkpointPath when it exists and `resume` is set). */
export async function train(model: LanguageModel, data: DataLoader, opts: TrainOptions & { resume?: boolean }): Promise<TrainResult> {
  const tr = new Trainer(model, data, opts);
  try {
    if (opts.resume && opts.checkpointPath && fs.existsSync(opts.checkpointPath)) await tr.resume(opts.checkpointPath);
    return await tr.run();
  } finally {
    tr.dispose();
  }
}

/** Rebuild the model stored in a training checkpoint (for sampling or fine-tuning), with its step and extra fields. */
export async function modelFromCheckpoint(file: string): Promise<{ model: AnyModel; step: number; extra: Record<string, unknown> }> {
  await T.initGpu();
  const ck = loadCheckpoint(file);
  const cfg = ck.extra?.modelConfig as ModelConfig | undefined;
  if (!cfg || (cfg.arch !== 'llama' && cfg.arch !== 'gpt2')) throw new Error(`${file}: not a language-model training checkpoint (no model config)`);
  if (!ck.weights.model) throw new Error(`${file}: checkpoint has no "model" weights`);
  return { model: build(cfg, new Map(Object.entries(ck.weights.model)), file), step: ck.step, extra: ck.extra ?? {} };
}

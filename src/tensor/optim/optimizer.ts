// Shared optimizer machinery: parameter groups, the learning rate (a number or a schedule),
// optional fused gradient clipping, per-parameter state tensors (kept, updated in place), and
// state()/loadState() as host arrays for checkpoints.
import { zeroGrad } from '../autograd.js';
import { zeros } from '../ops/copy.js';
import { sync } from '../runtime.js';
import { keep } from '../scope.js';
import { fmt, sameShape } from '../shape.js';
import { Tensor } from '../tensor.js';
import { gradNormCoef } from './clip.js';
import { isMulti } from '../pieces.js';

export interface ParamGroup {
  params: Tensor[];
  /** Overrides the optimizer's weight decay for this group (e.g. 0 for norms and biases). */
  weightDecay?: number;
  /** Multiplies the learning rate for this group. */
  lrScale?: number;
}

/** A fixed learning rate, or a function of the number of completed steps (see schedule.ts). */
export type LrSpec = number | ((step: number) => number);

export interface OptimizerOpts {
  lr: LrSpec;
  weightDecay?: number;
  /** Clip the global gradient norm to this inside step() (fused into the update kernels). */
  maxGradNorm?: number;
}

export interface ParamState { name?: string; shape: number[]; step: number; slots: Record<string, Float32Array> }
export interface OptimizerState { kind: string; stepCount: number; params: ParamState[] }
/** State whose slots are read when loadState reaches them (checkpoints too big to hold at once). */
export interface ParamStateIn { name?: string; shape: number[]; step: number; slots: Record<string, Float32Array | (() => Float32Array)> }
export interface OptimizerStateIn { kind: string; stepCount: number; params: ParamStateIn[] }
/** state() with each slot downloaded only when `fetch` is called: one tensor on the host at a time. */
export interface DeferredParamState { name?: string; shape: number[]; step: number; slots: Record<string, () => Promise<Float32Array>> }

interface Slot { step: number; bufs: Record<string, Tensor> }

let onesPair: Tensor | undefined;
/** The [norm, coef] stand-in when not clipping: coef 1. */
function noClip(): Tensor {
  return (onesPair ??= keep(Tensor.from([1, 1], [2])));
}

export abstract class Optimizer {
  readonly groups: { params: Tensor[]; weightDecay: number; lrScale: number }[];
  lr: LrSpec;
  maxGradNorm: number | undefined;
  /** Completed steps (the argument a schedule receives). */
  stepCount = 0;
  private slots = new Map<Tensor, Slot>();
  private norm: Tensor | undefined;

  constructor(readonly kind: string, params: Tensor[] | ParamGroup[], opts: OptimizerOpts, private slotNames: string[]) {
    this.lr = opts.lr;
    this.maxGradNorm = opts.maxGradNorm;
    const wd = opts.weightDecay ?? 0;
    const list: ParamGroup[] = params.length && (params[0] as Tensor).isTensor ? [{ params: params as Tensor[] }] : (params as ParamGroup[]);
    this.groups = list.map((g) => ({ params: [...g.params], weightDecay: g.weightDecay ?? wd, lrScale: g.lrScale ?? 1 }));
    const seen = new Set<Tensor>();
    for (const p of this.params) {
      const who = `${kind}: parameter ${p.name ?? '#' + p.id} ${fmt(p.shape)}`;
      p.assertAlive(kind);
      if (seen.has(p)) throw new Error(`${who} is listed twice`);
      seen.add(p);
      if (!p.requiresGrad) throw new Error(`${who} does not require grad (create it with param())`);
      if (p.dtype !== 'f32') throw new Error(`${who} is ${p.dtype}; optimizers update f32 parameters`);
      if (!p.isContiguous) throw new Error(`${who} is a strided view; optimizers update dense parameters`);
    }
  }

  get params(): Tensor[] {
    return this.groups.flatMap((g) => g.params);
  }

  /** The learning rate the next step() will use. */
  currentLr(): number {
    return typeof this.lr === 'number' ? this.lr : this.lr(this.stepCount);
  }

  /**
   * Update every parameter that has a gradient. When clipping, returns the pre-clip global
   * gradient norm (a scalar tensor owned by the optimizer, valid until the next step).
   * `normCoef`: this step's [norm, coef] from gradNormCoef(params, maxGradNorm), when the caller
   * computed it already (to check the norm first); step() takes it over.
   */
  step(normCoef?: Tensor): Tensor | undefined {
    const lr = this.currentLr();
    const nc = normCoef ?? (this.maxGradNorm !== undefined ? gradNormCoef(this.params, this.maxGradNorm, `${this.kind}.step`) : noClip());
    for (const g of this.groups) {
      for (const p of g.params) {
        if (!p.grad) continue;
        p.assertAlive(`${this.kind}.step`);
        p.grad.assertAlive(`${this.kind}.step (gradient of ${p.name ?? '#' + p.id})`);
        if (!sameShape(p.grad.shape, p.shape) || p.grad.dtype !== 'f32' || !p.grad.isContiguous) {
          throw new Error(`${this.kind}.step: gradient ${fmt(p.grad.shape)} ${p.grad.dtype} of ${p.name ?? '#' + p.id} ${fmt(p.shape)} must be a dense f32 tensor of the same shape`);
        }
        const slot = this.slotOf(p);
        slot.step++;
        this.update(p, p.grad, slot.bufs, slot.step, lr * g.lrScale, g.weightDecay, nc);
      }
    }
    this.stepCount++;
    if (nc === onesPair) return undefined;
    this.norm?.dispose();
    this.norm = keep(nc.view([], [], 0));
    nc.dispose();
    return this.norm;
  }

  /** The pre-clip gradient norm of the last step (when clipping), as a scalar tensor. */
  get gradNorm(): Tensor | undefined {
    return this.norm;
  }

  protected abstract update(p: Tensor, g: Tensor, bufs: Record<string, Tensor>, step: number, lr: number, weightDecay: number, scale: Tensor): void;

  private slotOf(p: Tensor): Slot {
    let s = this.slots.get(p);
    if (!s) {
      // A parameter in several buffers (pieces.ts) gets its moments in pieces.
      s = { step: 0, bufs: Object.fromEntries(this.slotNames.map((n) => [n, keep(zeros(p.shape, 'f32', isMulti(p)))])) };
      this.slots.set(p, s);
    }
    return s;
  }

  /** Dispose the gradients of all parameters. */
  zeroGrad(): void {
    zeroGrad(this.params);
  }

  /** Host copy of the optimizer state (parameters without state yet get step 0 and zeros). */
  async state(): Promise<OptimizerState> {
    const params: ParamState[] = [];
    for (const p of this.params) {
      const s = this.slots.get(p);
      const slots: Record<string, Float32Array> = {};
      for (const n of this.slotNames) slots[n] = s ? ((await s.bufs[n].data()) as Float32Array) : new Float32Array(p.size);
      params.push({ name: p.name, shape: [...p.shape], step: s?.step ?? 0, slots });
    }
    return { kind: this.kind, stepCount: this.stepCount, params };
  }

  /** state(), with each slot's download deferred until called (streamed checkpoints). */
  deferredState(): { kind: string; stepCount: number; params: DeferredParamState[] } {
    const params = this.params.map((p) => {
      const s = this.slots.get(p);
      const slots: Record<string, () => Promise<Float32Array>> = {};
      for (const n of this.slotNames) slots[n] = async () => (s ? ((await s.bufs[n].data()) as Float32Array) : new Float32Array(p.size));
      return { name: p.name, shape: [...p.shape], step: s?.step ?? 0, slots };
    });
    return { kind: this.kind, stepCount: this.stepCount, params };
  }

  /**
   * Restore state() output; parameters are matched by position and checked by shape. A slot
   * given as a function is read when its parameter is restored.
   */
  loadState(st: OptimizerStateIn): void {
    this.checkState(st);
    this.disposeState();
    this.params.forEach((p, i) => this.restoreParam(p, i, st.params[i]));
    this.stepCount = st.stepCount;
  }

  /**
   * loadState for states too big for the host: slots given as functions are read one at a time
   * and the queue is drained every `syncBytes` so the uploads' staging memory stays bounded.
   */
  async loadStateStreamed(st: OptimizerStateIn, syncBytes = 256 << 20): Promise<void> {
    this.checkState(st);
    this.disposeState();
    let pending = 0;
    const ps = this.params;
    for (let i = 0; i < ps.length; i++) {
      pending += this.restoreParam(ps[i], i, st.params[i]);
      if (pending >= syncBytes) {
        await sync();
        pending = 0;
      }
    }
    this.stepCount = st.stepCount;
  }

  private checkState(st: OptimizerStateIn): void {
    const ps = this.params;
    if (st.kind !== this.kind) throw new Error(`${this.kind}.loadState: state is for ${st.kind}`);
    if (st.params.length !== ps.length) throw new Error(`${this.kind}.loadState: state has ${st.params.length} parameters, optimizer has ${ps.length}`);
    ps.forEach((p, i) => {
      const s = st.params[i];
      if (!sameShape(s.shape, p.shape)) throw new Error(`${this.kind}.loadState: parameter ${i} (${p.name ?? s.name ?? '#' + p.id}) is ${fmt(p.shape)}, state has ${fmt(s.shape)}`);
      for (const n of this.slotNames) {
        const v = s.slots[n];
        if (typeof v !== 'function' && v?.length !== p.size) throw new Error(`${this.kind}.loadState: slot "${n}" of parameter ${i} has ${v?.length} values, expected ${p.size}`);
      }
    });
  }

  /**
   * Upload one parameter's slots. A parameter never updated (step 0, all slots zero: state()
   * writes zeros for it) gets no state tensors, as in the run that saved it: they are made as
   * zeros at its first update. (An RL step whose rollouts all failed to parse never updates the
   * AR; resuming used to upload its two moments, 2.4 GiB of zeros at 0.5B.) Returns the bytes uploaded.
   */
  private restoreParam(p: Tensor, i: number, s: ParamStateIn): number {
    const bufs: Record<string, Tensor> = {};
    let untouched = s.step === 0; // so far: never updated, and every slot read is zero
    for (const [k, n] of this.slotNames.entries()) {
      const v = s.slots[n];
      const data = typeof v === 'function' ? v() : v;
      if (data.length !== p.size) {
        for (const t of Object.values(bufs)) t.dispose();
        this.disposeState();
        throw new Error(`${this.kind}.loadState: slot "${n}" of parameter ${i} has ${data.length} values, expected ${p.size}`);
      }
      if (untouched && data.every((x) => x === 0)) continue;
      if (untouched) {
        // Step 0 with non-zero state (not what state() writes): kept as given, the zero slots before it made on the GPU.
        untouched = false;
        for (const z of this.slotNames.slice(0, k)) bufs[z] = keep(zeros(p.shape, 'f32', isMulti(p)));
      }
      bufs[n] = keep(Tensor.from(data, p.shape));
    }
    if (untouched) return 0;
    this.slots.set(p, { step: s.step, bufs });
    return 4 * p.size * this.slotNames.length;
  }

  private disposeState(): void {
    for (const s of this.slots.values()) for (const t of Object.values(s.bufs)) t.dispose();
    this.slots.clear();
  }

  /** Free the state tensors (the parameters are the caller's). */
  dispose(): void {
    this.disposeState();
    this.norm?.dispose();
    this.norm = undefined;
  }
}

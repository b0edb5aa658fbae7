// Joint RL. Every step: a batch of activations; G explanations each at temperature 1 with a
// length cap; reward from the *current* AR; group-normalised advantages; one GRPO+KL update of
// the AV against the frozen warm-start AV; one supervised MSE step of the AR on the same
// rollouts. No gradient flows from the AR into the AV (rewards are host numbers).
import type { Checkpoint } from '../nn/checkpoint.js';
import * as T from '../tensor/index.js';
import { Weights } from '../nn/weights.js';
import { uploadAt } from '../tensor/tensor.js';
import { SeededRng } from '../util/rng.js';
import type { Reconstructor } from './ar.js';
import type { Explained, Verbalizer } from './av.js';
import { groupAdvantages, grpoLoss } from './grpo.js';
import { normalizedMseHost } from './loss.js';
import { misquotes, unsupportedClaims } from './quotes.js';
import type { Field } from './corpus.js';
import { assertFiniteParams, makeOptimizer, type TrainSchedule } from './optim.js';
import { rowsOf } from './sft.js';
import { checkpointDue, restoreTrainState, saveTrainState, type CheckpointSpec, type TrainParts } from './train-state.js';

export type RewardKind = 'mse' | 'logmse' | 'contrastive';

export interface RlOptions {
  steps: number;
  activationsPerStep: number;
  groupSize: number;
  maxTokens: number;
  av: TrainSchedule;
  ar: TrainSchedule;
  /** Skip the AR update (a frozen AR; for comparison). */
  freezeAr?: boolean;
  beta: number;
  epsilon: number;
  /** GRPO updates per batch of rollouts (TRL's num_iterations, mu). With more than one the
   *  ratio to the rollout policy leaves 1 and the epsilon clip starts to bind. Default 1. */
  iterations?: number;
  /** Divide group-centred rewards by the group's std ('std', GRPO) or not ('none', Dr. GRPO). */
  advantageScale?: 'std' | 'none';
  /**
   * Learn a scalar inverse temperature on the AV's logits at this learning rate (0 or unset:
   * off). Sharpening the policy is the one direction every group's advantage agrees on, but
   * spread over 64 gains and every matrix its gradient is mostly noise; as one scalar it is
   * learned in a few dozen steps. Folded into model.norm.weight when the loop ends, so the
   * saved AV is a plain model whose temperature-1 samples include it.
   */
  logitScaleLr?: number;
  reward: RewardKind;
  /** Subtracted per generated token. */
  lengthPenalty?: number;
  /**
   * Subtracted from the reward of a rollout that states a fact of `claimFields` its row's true
   * summary does not (quotes.ts unsupportedClaims; rows without a summary are not charged). The
   * AR, trained on stories that always name someone, scores a stated name well wherever it
   * stands, so without a cost RL adds names to text that has none (issue 10); on world-M the
   * summary states only the facts the activation holds, so the cost charges a stated fact it
   * does not hold (issue 11). 0 or unset: off.
   */
  claimCost?: number;
  /** The fields claimCost charges (default: name). */
  claimFields?: readonly Field[];
  /**
   * 'rollout' (default): claimCost once per rollout with any unsupported claim; 'claim': once per
   * unsupported claim, so that over many fields a second false fact still costs (a rollout already
   * charged for a colour is otherwise free to add a name).
   */
  claimCostPer?: 'rollout' | 'claim';
  /** Subtracted from the reward of a rollout whose quotations of the words read differ from its row's summary (quotes.ts misquotes; rows without a summary are not charged). 0 or unset: off. */
  quoteCost?: number;
  seed: number;
  /** Variance of normalised h (for the FVE of the rollouts). */
  variance: number;
  onLog?: (m: RlMetrics) => void;
  /** Save the training state (AV, AR, both optimizers, step, RNG) every N steps and after the last. */
  checkpoint?: CheckpointSpec;
  /** Continue from a checkpoint this loop wrote. The reference AV is the caller's (keep it the warm-start AV). */
  resume?: Checkpoint;
  onCheckpoint?: (step: number, file: string) => void;
  /**
   * Where a step's rollouts come from (default: the AV samples them, as above). Benchmarks of an
   * untrained AV pass fixed explanations here: one on random weights never closes its tag, so
   * without them no rollout parses and the AR's update never runs (scripts/rl-forced-step.ts).
   */
  rollouts?: (h: Float32Array, o: { samples: number; maxTokens: number; seed: number }) => Promise<Explained[]>;
}

export interface RlMetrics {
  step: number;
  reward: number;
  fveSampled: number;
  parseRate: number;
  length: number;
  kl: number;
  clipFrac: number;
  loss: number;
  arLoss: number;
  /** The learned logit scale after this step (1 when not learned). */
  logitScale: number;
  /** Share of this step's rollouts stating a fact of claimFields their row's summary does not (NaN: no row has a summary). */
  unsupportedClaims: number;
  /** Share of this step's rollouts whose quotations of the words read differ from their row's summary (NaN: no row has a summary). */
  misquoted: number;
  seconds: number;
  /** Wall seconds of the step's phases: sampling, AR scoring, AR update, AV update (each ends at a readback). */
  phases: { generate: number; score: number; ar: number; av: number };
}

export const UNPARSEABLE_REWARD = -2; // the reward of an orthogonal guess (MSE 2)

/**
 * Rewards of rollouts (activation-major, G per activation). `references` (one per activation,
 * optional) are the rows' true summaries, for the claim and quote costs. Returns rewards,
 * per-rollout MSE, and for each parseable rollout with a reference whether it states a fact (of
 * o.claimFields) the reference does not and whether it misquotes the words read.
 */
export async function scoreRollouts(ar: Reconstructor, h: Float32Array, rollouts: Explained[], G: number, o: Pick<RlOptions, 'reward' | 'lengthPenalty' | 'claimCost' | 'claimFields' | 'claimCostPer' | 'quoteCost'>, rand: () => number, references?: readonly (string | undefined)[]) {
  const d = ar.d;
  const ok = rollouts.map((r, i) => (r.explanation !== undefined ? i : -1)).filter((i) => i >= 0);
  const preds = await ar.predictHost(ok.map((i) => rollouts[i].explanation!));
  const mse = rollouts.map(() => 2);
  const rewards = rollouts.map(() => UNPARSEABLE_REWARD);
  const unsupported: (boolean | undefined)[] = rollouts.map(() => undefined);
  const misquoted: (boolean | undefined)[] = rollouts.map(() => undefined);
  const nAct = rollouts.length / G;
  ok.forEach((i, k) => {
    const a = Math.floor(i / G);
    mse[i] = normalizedMseHost(preds, h, d, k, a);
    let r = -mse[i];
    if (o.reward === 'logmse') r = -Math.log(Math.max(mse[i], 1e-6));
    if (o.reward === 'contrastive' && nAct > 1) {
      let other = Math.floor(rand() * (nAct - 1));
      if (other >= a) other++;
      r = -mse[i] + normalizedMseHost(preds, h, d, k, other);
    }
    const ref = references?.[a];
    const claims = ref === undefined ? 0 : unsupportedClaims(rollouts[i].explanation!, ref, o.claimFields).length;
    if (ref !== undefined) {
      unsupported[i] = claims > 0;
      misquoted[i] = misquotes(rollouts[i].explanation!, ref);
    }
    const charged = o.claimCostPer === 'claim' ? claims : Math.min(claims, 1);
    rewards[i] = r - (o.lengthPenalty ?? 0) * rollouts[i].tokens.length - charged * (o.claimCost ?? 0) - (misquoted[i] ? (o.quoteCost ?? 0) : 0);
  });
  return { rewards, mse, ok, unsupported, misquoted };
}

/** `data.summaries`: each row's true summary (for the claim cost; undefined where a row has none). */
export async function trainRl(av: Verbalizer, avRef: Verbalizer, ar: Reconstructor, data: { h: Float32Array; summaries?: readonly (string | undefined)[] }, o: RlOptions): Promise<RlMetrics[]> {
  const d = av.d, n = data.h.length / d, G = o.groupSize;
  if (data.summaries && data.summaries.length !== n) throw new Error(`trainRl: ${data.summaries.length} summaries for ${n} rows`);
  if ((o.claimCost || o.quoteCost) && !data.summaries) throw new Error('trainRl: a claim or quote cost needs the rows\' summaries (data.summaries)');
  const optAv = makeOptimizer(av.params(), o.av, 'rl (AV)');
  const optAr = makeOptimizer(ar.params(), o.ar, 'rl (AR)');
  const r = new SeededRng(o.seed);
  avRef.model.w.setTrainable(false);
  const history: RlMetrics[] = [];
  const parts: TrainParts = {
    kind: 'rl',
    weights: { av: av.model.w, ar: ar.model.w },
    optimizers: { av: optAv, ar: optAr },
    rng: r,
    identity: { rows: n, activationsPerStep: o.activationsPerStep, groupSize: o.groupSize, logitScale: o.logitScaleLr ? 1 : 0 },
  };
  if (av.model.logitScale) throw new Error('trainRl: the AV already has a logit scale attached');
  let scale: Weights | undefined;
  if (o.logitScaleLr) {
    scale = Weights.fromHost(new Map([[LOGIT_SCALE, { dtype: 'f32', shape: [1], data: Float32Array.of(1) }]]));
    av.model.logitScale = scale.get(LOGIT_SCALE);
    parts.weights.scale = scale;
    parts.optimizers.scale = makeOptimizer(scale.params(), { lr: o.logitScaleLr, warmup: o.av.warmup, onNonFinite: o.av.onNonFinite }, 'rl (logit scale)');
  }
  try {
    await run(o.resume ? (await restoreTrainState(o.resume, parts)).step : 0);
    // The last update is checked before the caller saves the weights.
    for (const [g, w] of Object.entries(parts.weights)) await assertFiniteParams(w.params(), `rl (${g})`);
  } finally {
    if (scale) await foldLogitScale(av, scale);
    for (const opt of Object.values(parts.optimizers)) opt.dispose();
  }
  return history;

  async function run(start: number) {
    const optScale = parts.optimizers.scale;
    for (let step = start; step < o.steps; step++) {
      const t0 = performance.now();
      const idx = Array.from({ length: o.activationsPerStep }, () => Math.floor(r.next() * n));
      const h = rowsOf(data.h, d, idx);
      const tick = lapTimer(t0);
      const seed = Math.floor(r.next() * 2 ** 31);
      const rollouts = o.rollouts
        ? await o.rollouts(h, { samples: G, maxTokens: o.maxTokens, seed })
        : await av.explain(h, { samples: G, temperature: 1, maxTokens: o.maxTokens, seed });
      if (rollouts.length !== idx.length * G) throw new Error(`trainRl: ${rollouts.length} rollouts for ${idx.length} activations x ${G} samples`);
      const tGen = tick();
      const { rewards, mse, ok, unsupported, misquoted } = await scoreRollouts(ar, h, rollouts, G, o, r.fn(), data.summaries && idx.map((i) => data.summaries![i]));
      const tScore = tick();
      const adv = groupAdvantages(rewards, G, o.advantageScale ?? 'std');
      const hRep = rowsOf(h, d, rollouts.map((_, i) => Math.floor(i / G)));

      // AR: one supervised step on the parseable rollouts (before or after the AV step makes no
      // difference to this step's rewards, which were computed above).
      let arLoss = NaN;
      if (!o.freezeAr && ok.length) {
        const lt = T.tidy(() => {
          const l = ar.loss(ok.map((i) => rollouts[i].explanation!), rowsOf(hRep, d, ok));
          l.backward();
          return l.detach();
        });
        try {
          if (!(await optAr.step(step, lt)).skipped) arLoss = await lt.item();
        } finally {
          lt.dispose();
        }
      }
      const tAr = tick();

      // AV: GRPO + KL to the warm-start AV on the same rollouts, mu updates. The first update's
      // log-probs (policy before any update) are kept as logp_old for the later ones.
      const completions = rollouts.map((x) => x.tokens);
      const mu = Math.max(1, o.iterations ?? 1);
      const advT = T.Tensor.from(adv, [adv.length]);
      const ref = T.noGrad(() => T.tidy(() => avRef.completionLogProbs(hRep, completions).logp));
      let old: T.Tensor | undefined;
      let stats: T.Tensor[] = [];
      for (let it = 0; it < mu; it++) {
        stats.forEach((t) => t.dispose());
        stats = T.tidy(() => {
          const { logp, mask } = av.completionLogProbs(hRep, completions);
          const terms = grpoLoss(logp, old ?? logp.detach(), ref, advT, mask, { epsilon: o.epsilon, beta: o.beta });
          terms.loss.backward();
          if (it === 0 && mu > 1) old = T.keep(logp.detach());
          return [terms.loss.detach(), terms.kl.detach(), terms.clipFrac.detach()];
        });
        // The logit scale follows the AV: skipped with it.
        if (!(await optAv.step(step, stats[0])).skipped) await optScale?.step(step);
      }
      old?.dispose();
      ref.dispose();
      advT.dispose();
      const [loss, kl, clipFrac, logitScale] = await Promise.all([...stats.map((t) => t.item()), scale ? scale.get(LOGIT_SCALE).item() : 1]);
      stats.forEach((t) => t.dispose());
      const tAv = tick();

      const m: RlMetrics = {
        step,
        reward: mean(rewards),
        fveSampled: 1 - mean(mse) / o.variance,
        parseRate: ok.length / rollouts.length,
        length: mean(rollouts.map((x) => x.tokens.length)),
        kl,
        clipFrac,
        loss,
        arLoss,
        logitScale,
        unsupportedClaims: shareTrue(unsupported),
        misquoted: shareTrue(misquoted),
        seconds: (performance.now() - t0) / 1000,
        phases: { generate: tGen, score: tScore, ar: tAr, av: tAv },
      };
      history.push(m);
      o.onLog?.(m);
      if (checkpointDue(o.checkpoint, step + 1, o.steps)) {
        await saveTrainState(o.checkpoint!.file, parts, step + 1);
        o.onCheckpoint?.(step + 1, o.checkpoint!.file);
      }
    }
  }
}

const LOGIT_SCALE = 'logit_scale';

/** Multiply the final norm gain by the learned scale (the same logits, no extra tensor), detach it. */
async function foldLogitScale(av: Verbalizer, scale: Weights): Promise<void> {
  const s = await scale.get(LOGIT_SCALE).item();
  const g = av.model.w.get('model.norm.weight');
  const host = Float32Array.from((await g.data()) as Float32Array, (v) => v * s);
  uploadAt(g, 0, host);
  av.model.logitScale = undefined;
  scale.dispose();
}

/** A function returning the seconds since its previous call (the first call: since t0). */
function lapTimer(t0: number): () => number {
  let last = t0;
  return () => {
    const now = performance.now();
    const s = (now - last) / 1000;
    last = now;
    return s;
  };
}

const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / Math.max(a.length, 1);

/** Share of true among the defined entries (NaN when none is defined). */
function shareTrue(a: readonly (boolean | undefined)[]): number {
  const known = a.filter((x) => x !== undefined);
  return known.length ? known.filter(Boolean).length / known.length : NaN;
}

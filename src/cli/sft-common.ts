// What `nla sft-ar` and `nla sft-av` share: flags, reading the store, the training loop with
// a progress bar, metrics and checkpoints, and writing the stage into the NLA directory.
import * as path from 'node:path';
import type { Command } from 'commander';
import type { Checkpoint } from '../nn/checkpoint.js';
import type { NlaMeta } from '../nla/nla.js';
import type { PromptSpec } from '../nla/prompts.js';
import { heldOutRows } from '../nla/dataset.js';
import { DEFAULT_PROMPTS } from '../nla/prompts.js';
import type { SftData, SftOptions } from '../nla/sft.js';
import type { ActivationStore, RowMeta } from '../nla/store.js';
import type { CheckpointSpec } from '../nla/train-state.js';
import { openStoreFor, readMeta, stageMeta, storeRows, trainingStats, writeMeta } from './nla-dir.js';
import { checkpointOptions, loadStudied, Metrics, Opts, progressBar, withCheckpointFlags, withConfig, type Studied } from './options.js';

export interface SftDefaults {
  split: string;
  steps: number;
  batchSize: number;
  lr: number;
  evalRows: number;
}

export function sftFlags(cmd: Command, d: SftDefaults): Command {
  cmd
    .option('--store <dir>', 'activation store from `nla extract` (required)')
    .option('--model <path>', 'the studied model M the store was extracted from (required)')
    .option('--tokenizer <path>', 'tokenizer file (default: beside the model)')
    .option('--layer <k>', 'layer K (default: the store\'s; must match it)')
    .option('--out <dir>', 'the NLA directory to write or add to (required)')
    .option('--split <name>', 'store split to train on (av, ar, rl, eval, or all)', d.split)
    .option('--max-rows <n>', 'use at most N training rows (0 = all)', '0')
    .option('--steps <n>', 'optimizer steps', String(d.steps))
    .option('--batch-size <n>', 'rows per step', String(d.batchSize))
    .option('--lr <x>', 'peak learning rate (AdamW)', String(d.lr))
    .option('--warmup <n>', 'linear warm-up steps, then cosine decay to 10% over --steps', '20')
    .option('--clip <x>', 'clip the global gradient norm (0 = off)', '1')
    .option('--on-nan <what>', 'a NaN or Inf in the loss or a gradient (checked every step): stop, naming it, or skip the update', 'stop')
    .option('--weight-decay <x>', 'AdamW weight decay', '0')
    .option('--seed <n>', 'seed of the data order', '0')
    .option('--log-every <n>', 'read the loss back and log every N steps', '10')
    .option('--metrics <file>', 'JSONL metrics (step, loss, lr, FVE) (default: <out>/metrics.jsonl)')
    .option('--eval-rows <n>', 'held-out rows (split dev, the tuning half of eval) scored after training (0 = skip)', String(d.evalRows));
  return withConfig(withCheckpointFlags(cmd, 100));
}

export interface SftSetup {
  o: Opts;
  studied: Studied;
  store: ActivationStore;
  out: string;
  layer: number;
  prompts: PromptSpec;
  train: SftData;
  evalSet: { h: Float32Array; meta: RowMeta[] };
  stats: { variance: number; mean: number[] };
  metrics: Metrics;
  checkpoint: CheckpointSpec;
  resume?: Checkpoint;
  schedule: Omit<SftOptions, 'onLog'>;
}

export async function prepareSft(c: Command, stage: 'sft-ar' | 'sft-av'): Promise<SftSetup> {
  const o = Opts.of(c);
  const storeDir = o.need('store', '<dir>');
  const out = o.need('out', '<dir>');
  const studied = await loadStudied(o.need('model'), o.str('tokenizer'), { llamaOnly: true });
  const store = openStoreFor(storeDir, studied.M, studied.loaded, o.optNum('layer', { int: true }));
  const layer = store.manifest.layer;
  const d = store.manifest.d;
  const rows = storeRows(store, o.need('split'));
  const withSummary = rows.meta.map((m, i) => (typeof m.summary === 'string' ? i : -1)).filter((i) => i >= 0);
  if (!withSummary.length) throw new Error(`${storeDir}: the rows of split "${o.str('split')}" have no summaries to train on (extract with --summaries, or the built-in stories)`);
  const maxRows = o.int('maxRows', 0);
  const use = maxRows ? withSummary.slice(0, maxRows) : withSummary;
  const pick = (h: Float32Array, idx: number[]) => {
    const outH = new Float32Array(idx.length * d);
    idx.forEach((i, k) => outH.set(h.subarray(i * d, (i + 1) * d), k * d));
    return outH;
  };
  const train: SftData = { h: pick(rows.h, use), texts: use.map((i) => rows.meta[i].summary!), known: use.map((i) => rows.meta[i].truth?.known) };
  // Watched while choosing settings, so from dev: test stays unseen until it is reported.
  const evalIdx = heldOutRows(rows.all.meta, 'dev').slice(0, o.int('evalRows', 0));
  const evalSet = { h: pick(rows.all.h, evalIdx), meta: evalIdx.map((i) => rows.all.meta[i]) };
  const stats = trainingStats(rows.all, d);
  const steps = o.int('steps', 0);
  const { checkpoint, resume } = checkpointOptions(o, path.join(out, 'checkpoints', `${stage}.ckpt`));
  const metrics = Metrics.open(o.str('metrics') ?? path.join(out, 'metrics.jsonl'), stage, resume?.step);
  const clip = o.num('clip', { min: 0 });
  const schedule: Omit<SftOptions, 'onLog'> = {
    steps,
    batchSize: o.int('batchSize', 1),
    lr: o.num('lr', { min: 0 }),
    warmup: o.int('warmup', 0),
    decaySteps: steps,
    clip: clip > 0 ? clip : undefined,
    onNonFinite: o.oneOf('onNan', ['stop', 'skip'] as const),
    weightDecay: o.num('weightDecay', { min: 0 }),
    seed: o.int('seed'),
    logEvery: o.int('logEvery', 1),
    checkpoint,
    resume,
  };
  const prompts = readMeta(out)?.prompts ?? DEFAULT_PROMPTS;
  console.error(`nla: ${stage} on ${train.texts.length} rows of ${storeDir} (split ${o.str('split')}), layer ${layer} of ${studied.loaded.name}; Var ${stats.variance.toFixed(3)}${resume ? `; resuming at step ${resume.step}` : ''}`);
  return { o, studied, store, out, layer, prompts, train, evalSet, stats, metrics, checkpoint, resume, schedule };
}

/** Progress bar + metrics lines for an SFT loop. */
export function sftLogger(s: SftSetup, stage: string, extra: (loss: number) => Record<string, number> = () => ({})) {
  const start = s.resume?.step ?? 0;
  const bar = progressBar(stage, Math.max(0, s.schedule.steps - start));
  return {
    onLog: (m: { step: number; loss: number; lr: number; shuffledLoss?: number }) => {
      const more = extra(m.loss);
      s.metrics.write(stage, { ...m, ...more });
      const control = m.shuffledLoss !== undefined ? ` shuffled ${m.shuffledLoss.toFixed(4)}` : '';
      bar.update(m.step + 1 - start, `loss ${m.loss.toFixed(4)}${control}${Object.entries(more).map(([k, v]) => ` ${k} ${v.toFixed(3)}`).join('')}`);
    },
    onCheckpoint: (step: number, file: string) => s.metrics.write(`${stage}-checkpoint`, { step, file }),
    onSkip: (step: number) => s.metrics.write(`${stage}-skip`, { step, reason: 'NaN or Inf in the loss or a gradient' }),
    done: () => bar.done(),
  };
}

/** nla.json after this stage: the stage's settings recorded under training[stage]. */
export function writeStage(s: SftSetup, stage: 'sft-ar' | 'sft-av', fields: Partial<Pick<NlaMeta, 'alpha' | 'maxExplanationTokens'>>, result: Record<string, unknown>): NlaMeta {
  const meta = stageMeta({ dir: s.out, stage, ...s.studied, store: s.store, stats: s.stats, ...fields });
  const settings = s.o.plain();
  delete settings.config;
  meta.training = { ...meta.training, [stage]: { ...settings, store: path.resolve(s.store.dir), rows: s.train.texts.length, finished: new Date().toISOString(), ...result } };
  writeMeta(s.out, meta);
  return meta;
}

// `nla rl`: joint RL of an SFT'd NLA: GRPO on the AV with rewards from the current AR, one AR
// step on the same rollouts, KL to the warm-start AV. Updates the NLA directory.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { Llama } from '../nn/llama.js';
import { parseFields } from '../nla/corpus.js';
import { Verbalizer } from '../nla/av.js';
import { loadNLA, streamWeights } from '../nla/nla.js';
import { writeReferencePair } from '../nla/reference-export.js';
import { writeCurvesSvg } from '../nla/plot.js';
import { trainRl, type RewardKind, type RlMetrics } from '../nla/rl.js';
import { ActivationStore, rowSource } from '../nla/store.js';
import { AV_FILE, AV_REF_FILE, CHAIN_HELP, copyWritable, META, nlaSource, PAIR_OPTIONS, storeRows, trainingStats } from './nla-dir.js';
import { CHECKPOINT_HELP, checkpointOptions, Metrics, Opts, progressBar, withCheckpointFlags, withConfig } from './options.js';

export function registerRl(program: Command): void {
  const cmd = program
    .command('rl')
    .description('joint RL of an SFT\'d NLA: GRPO on the AV rewarded by the current AR, one AR step per batch (step 4 of the chain)')
    .option('--nla <dir>', 'NLA directory with av.safetensors and ar.safetensors (from sft-ar and sft-av), or a reference pair (av/ and ar/ with nla_meta.yaml) (required, or --av/--ar)')
    .option(...PAIR_OPTIONS[0])
    .option(...PAIR_OPTIONS[1])
    .option('--model <path>', 'for a reference pair: the base model\'s HF directory (checked against nothing: the sidecars name only its Hub id)')
    .option('--store <dir>', 'activation store of the same model and layer (required)')
    .option('--out <dir>', 'where to write the updated NLA (default: --nla, in place; required for a reference pair, written there as a new pair)')
    .option('--split <name>', 'store split to sample activations from (or all); score sweeps with nla eval --split dev, never test', 'rl')
    .option('--steps <n>', 'RL steps', '60')
    .option('--activations-per-step <n>', 'activations per step', '8')
    .option('--group-size <n>', 'explanations sampled per activation (G)', '8')
    .option('--max-tokens <n>', 'explanation length cap (default: nla.json maxExplanationTokens)')
    .option('--beta <x>', 'weight of the KL to the warm-start AV', '0.01')
    .option('--epsilon <x>', 'PPO clip range', '0.2')
    .option('--advantage-scale <kind>', 'std (GRPO: divide group-centred rewards by the group std) or none (Dr. GRPO; kept greedy FVE and the facts best here)', 'none')
    .option('--iterations <n>', 'GRPO updates of the AV per batch of rollouts (mu; the clip binds from the second)', '1')
    .option('--reward <kind>', 'mse (-MSE), logmse (-log MSE) or contrastive (-MSE + MSE against another activation)', 'mse')
    .option('--length-penalty <x>', 'subtracted from the reward per generated token', '0')
    .option('--claim-cost <x>', 'subtracted from the reward of a rollout stating a fact (a value of a --claim-fields field: a character\'s name, a place, ...) that its row\'s true summary does not state; rows without a summary are not charged (0 = off)', '0')
    .option('--claim-fields <list>', 'the fields the claim cost charges: all, or a comma-separated list of name, place, object, colour, emotion, event', 'name')
    .option('--quote-cost <x>', 'subtracted from the reward of a rollout whose quotations of the words read (the opening quote and the closing Text: words) differ from its row\'s true summary; rows without a summary are not charged (0 = off)', '0')
    .option('--claim-cost-per <unit>', 'rollout (the cost once per rollout with any unsupported claim) or claim (once per unsupported claim)', 'rollout')
    .option('--claim-cost-rows <which>', 'rows the claim cost charges: all (every row with a summary) or text (rows of documents the known-answer generator did not write: samples of M, a corpus)', 'all')
    .option('--lr-av <x>', 'AV learning rate (1e-4 suits stories260K; 3e-4 degraded it)', '1e-4')
    .option('--lr-ar <x>', 'AR learning rate (its step on noisy rollouts at 3e-4 cost greedy FVE)', '3e-5')
    .option('--logit-scale-lr <x>', 'learn a scalar inverse temperature on the AV logits at this rate (0 = off); folded into the final norm gain when RL ends', '1e-2')
    .option('--gain-lr-scale <x>', 'multiplies the AV learning rate of its 1-D parameters (norm gains); at 30x and 100x the final gain moved only 2% and 5% in 60 steps (per-gain gradients are noisy): use --logit-scale-lr to sharpen', '1')
    .option('--warmup <n>', 'AV learning-rate warm-up steps', '5')
    .option('--clip <x>', 'clip each model\'s global gradient norm (0 = off)', '1')
    .option('--on-nan <what>', 'a NaN or Inf in a loss or a gradient (checked every update): stop, naming it, or skip that update', 'stop')
    .option('--freeze-ar', 'do not train the AR (a frozen AR; for comparison)')
    .option('--seed <n>', 'seed of the activation draws and sampling', '0')
    .option('--metrics <file>', 'JSONL metrics per step (reward, fveSampled, kl, length, ...) (default: <out>/metrics.jsonl)')
    .addHelpText(
      'after',
      `
Each step draws --activations-per-step rows, samples --group-size explanations each at
temperature 1, rewards them with the current AR (unparseable, including any output cut off by
--max-tokens before it stopped: -2, and left out of the AR's step), centres the rewards per
group (and divides by the group std with --advantage-scale std), takes --iterations GRPO + KL
steps on the AV (and on the learned logit scale) and one MSE step on the AR.
Reads --nla (nla.json, av/ar.safetensors) and --store. The first run keeps the warm-start AV as
av-ref.safetensors (the KL reference, reused by later runs and resumes). Writes the updated
av.safetensors, ar.safetensors and nla.json to --out, rl-curves.svg, and metrics lines
{"stage":"rl",step,reward,fveSampled,parseRate,length,kl,clipFrac,loss,arLoss,logitScale,
unsupportedClaims,misquoted,seconds,phases:{generate,score,ar,av}}.
A reference pair (--nla PAIR or --av/--ar): the KL reference is the pair's own AV as given, Var
(for the sampled FVE) comes from the store's training rows (the sidecars carry none), and the
result is written to --out as a new reference pair (av/ + ar/ with sidecars, as nla export
--format reference writes it), ready for the reference trainer or for nla.
Checkpoints (every 10 steps by default):
${CHECKPOINT_HELP}

Example:
  nla rl --nla runs/x/nla --store runs/x/activations --steps 60 --checkpoint-every 10
  nla rl --nla runs/x/nla --store runs/x/activations --steps 60 --resume
Sweeps: compare settings with \`nla eval --split dev\` (the tuning half of the held-out stories);
the test half is for reporting a setting already chosen.
${CHAIN_HELP}`,
    );
  withConfig(withCheckpointFlags(cmd, 10)).action(async (_: unknown, c: Command) => {
    const o = Opts.of(c);
    const { source, label: dir, pair } = nlaSource(o);
    // A reference pair is written back as a new pair: never over the one it was read from.
    if (pair && !o.has('out')) throw new Error(`${dir}: a reference NLA pair is written to a new directory: give --out DIR (it gets av/ and ar/)`);
    const out = o.str('out') ?? dir;
    const reward = o.oneOf('reward', ['mse', 'logmse', 'contrastive'] as const satisfies readonly RewardKind[]);
    const steps = o.int('steps', 0);
    const { checkpoint, resume } = checkpointOptions(o, path.join(out, 'checkpoints', 'rl.ckpt'));
    const metrics = Metrics.open(o.str('metrics') ?? path.join(out, 'metrics.jsonl'), 'rl', resume?.step);

    // The KL reference: the warm-start AV, kept beside the NLA the first time RL touches it.
    // (For a pair: the pair's own AV, loaded a second time.)
    const refFile = path.join(dir, AV_REF_FILE);
    if (!pair && !fs.existsSync(refFile)) fs.copyFileSync(path.join(dir, AV_FILE), refFile);
    const nla = await loadNLA(source, { model: o.str('model') });
    const meta = nla.meta;
    const store = ActivationStore.open(o.need('store', '<dir>'), { layer: meta.layer, d: nla.ar.d });
    // A pair records no model hash (only a Hub id): nothing to compare against.
    if (store.manifest.model.sha256 && meta.model.sha256 && store.manifest.model.sha256 !== meta.model.sha256) throw new Error(`${store.dir}: activations are from model "${store.manifest.model.name}", the NLA is for "${meta.model.name}"`);
    if (store.manifest.d !== nla.ar.d) throw new Error(`${store.dir}: activations of d = ${store.manifest.d}, the NLA reads d = ${nla.ar.d}`);
    const rows = storeRows(store, o.need('split'));
    if (nla.lacksVariance) {
      meta.variance = trainingStats(rows.all, nla.ar.d).variance;
      console.error(`nla: Var ${meta.variance.toFixed(4)} from ${store.dir}'s training rows (the reference sidecars carry none)`);
    }
    const refNla = pair ? await loadNLA(source, { model: o.str('model') }) : undefined;
    if (refNla) refNla.ar.model.w.dispose();
    const ref = refNla ? refNla.av : new Verbalizer(new Llama(meta.model.config, await streamWeights(refFile)), nla.tok, meta.prompts, meta.alpha);
    const maxTokens = o.optNum('maxTokens', { int: true, min: 1 }) ?? meta.maxExplanationTokens;
    const clip = o.num('clip', { min: 0 });
    const onNonFinite = o.oneOf('onNan', ['stop', 'skip'] as const);
    const start = resume?.step ?? 0;
    console.error(`nla: rl on ${rows.meta.length} activations of ${store.dir} (split ${o.str('split')}), ${steps} steps x ${o.str('activationsPerStep')} activations x ${o.str('groupSize')} samples${resume ? `; resuming at step ${start}` : ''}`);
    const bar = progressBar('rl', Math.max(0, steps - start));
    const curves: RlMetrics[] = [];
    const costRows = o.oneOf('claimCostRows', ['all', 'text'] as const);
    const summaries = rows.meta.map((m) => (costRows === 'text' && rowSource(m) === 'known-answer' ? undefined : m.summary));
    await trainRl(nla.av, ref, nla.ar, { h: rows.h, summaries }, {
      steps,
      activationsPerStep: o.int('activationsPerStep', 1),
      groupSize: o.int('groupSize', 2),
      maxTokens,
      beta: o.num('beta', { min: 0 }),
      epsilon: o.num('epsilon', { min: 0 }),
      iterations: o.int('iterations', 1),
      logitScaleLr: o.num('logitScaleLr', { min: 0 }),
      advantageScale: o.oneOf('advantageScale', ['std', 'none'] as const),
      reward,
      lengthPenalty: o.num('lengthPenalty', { min: 0 }),
      claimCost: o.num('claimCost', { min: 0 }),
      claimFields: parseFields(o.str('claimFields') ?? 'name', '--claim-fields'),
      claimCostPer: o.oneOf('claimCostPer', ['rollout', 'claim'] as const),
      quoteCost: o.num('quoteCost', { min: 0 }),
      av: { lr: o.num('lrAv', { min: 0 }), warmup: o.int('warmup', 0), clip: clip > 0 ? clip : undefined, gainLrScale: o.num('gainLrScale', { min: 0 }), onNonFinite },
      ar: { lr: o.num('lrAr', { min: 0 }), clip: clip > 0 ? clip : undefined, onNonFinite },
      freezeAr: o.bool('freezeAr'),
      seed: o.int('seed'),
      variance: meta.variance,
      checkpoint,
      resume,
      onCheckpoint: (step, file) => metrics.write('rl-checkpoint', { step, file }),
      onLog: (m) => {
        curves.push(m);
        metrics.write('rl', m);
        bar.update(m.step + 1 - start, `reward ${m.reward.toFixed(3)} fve ${m.fveSampled.toFixed(3)} kl ${m.kl.toFixed(4)} len ${m.length.toFixed(1)}${m.logitScale !== 1 ? ` scale ${m.logitScale.toFixed(3)}` : ''}${Number.isNaN(m.unsupportedClaims) ? '' : ` unsupported ${m.unsupportedClaims.toFixed(2)} misquoted ${m.misquoted.toFixed(2)}`}`);
      },
    });
    bar.done();
    ref.model.w.dispose();
    const settings = o.plain();
    delete settings.config;
    // The learned scale is folded into the AV; recorded so `nla eval --temperature <scale>` can sample it as the warm start did.
    const logitScale = curves.length ? curves[curves.length - 1].logitScale : undefined;
    meta.training = { ...(meta.training ?? {}), rl: { ...settings, store: path.resolve(store.dir), stepsDone: steps, logitScale, finished: new Date().toISOString() } };
    if (pair) {
      const w = await writeReferencePair(nla, out, { createdBy: 'nla rl' });
      console.log(`wrote the reference pair ${w.av} + ${w.ar}; next: nla eval --nla ${out} --model ${meta.model.path || 'BASE_DIR'} --store ${store.dir}`);
    } else await nla.save(out);
    if (!pair && out !== dir) {
      copyWritable(path.join(dir, meta.tokenizer), path.join(out, meta.tokenizer));
      copyWritable(refFile, path.join(out, AV_REF_FILE));
    }
    if (curves.length > 1) {
      writeCurvesSvg(path.join(out, 'rl-curves.svg'), 'RL', curves.map((m) => m.step), {
        'sampled FVE': curves.map((m) => m.fveSampled),
        reward: curves.map((m) => m.reward),
        'KL x100': curves.map((m) => m.kl * 100),
        'logit scale': curves.map((m) => m.logitScale),
      });
    }
    const last = curves.slice(-Math.min(10, curves.length));
    const avg = (f: (m: RlMetrics) => number) => last.reduce((a, m) => a + f(m), 0) / Math.max(1, last.length);
    if (last.length) console.log(`last ${last.length} steps: reward ${avg((m) => m.reward).toFixed(3)}, sampled FVE ${avg((m) => m.fveSampled).toFixed(3)}, KL ${avg((m) => m.kl).toFixed(4)}, length ${avg((m) => m.length).toFixed(1)}, parsed ${(avg((m) => m.parseRate) * 100).toFixed(0)}%, logit scale ${last[last.length - 1].logitScale.toFixed(3)}`);
    if (!pair) console.log(`wrote ${path.join(out, META)}, av.safetensors, ar.safetensors; next: nla eval --nla ${out} --store ${store.dir}`);
    nla.dispose();
  });
}

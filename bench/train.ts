// Training-step time of a Llama (4 layers, d_model 256, 4 heads, FFN 704, vocab 4096, tied head)
// on [8, 128] batches: forward + backward + clip + AdamW, nla against PyTorch on the CPU
// (bench/train_torch.py) tuned and as installed; then where an nla step's time goes (GPU ms per
// kernel family, dispatches per step and their measured fixed cost, host recording time).
//
// Method (bench/common.ts): each round runs one fresh process per engine, in turn nla, torch as
// installed, torch tuned; per engine the median and [min, max] over rounds of the per-round mean
// step time; ratio = torch median / nla median (= nla tokens/s over torch tokens/s).
//
// Run: npm run bench -- train [--rounds 3] [--steps 10] [--warmup 2] [--threads <cores>] [--no-torch] [--no-profile]
//      [--layers 4 --dim 256 --heads 4 --hidden 704 --vocab 4096 --seq 128 --batch 8] [--kv <kv heads> --bias 0|1]
//      [--shape qwen2.5-0.5b]: a named shape (scripts/large-model.ts: its layers, dim, heads, KV
//      heads, MLP, vocab, q/k/v biases; --seq and --batch stay flags, default 128 and 1 there).
//      Both sides report their process's peak RSS (on lavapipe nla's GPU memory is host memory).
// Internal: --child nla|profile runs one side in this process and prints its JSON line.
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { DataLoader, TokenDataset } from '../src/nn/data.js';
import { initLlamaTensors, llamaConfig } from '../src/nn/init.js';
import { Llama } from '../src/nn/llama.js';
import { Weights } from '../src/nn/weights.js';
import type { LlamaConfig } from '../src/io/config.js';
import { shapeConfig } from '../scripts/large-model.js';
import { Trainer } from '../src/nn/train.js';
import { profileDetail, profileReport, startProfiling } from '../src/tensor/profile.js';
import * as T from '../src/tensor/index.js';
import { SeededRng } from '../src/util/rng.js';
import {
  argCount, argNum, argStr, benchDir, cpuCores, dispatchProbe, emitter, findTorchPython, fmtRange, hasFlag, machineLine, nlaChild, round,
  runChild, summarize, TORCH_MISSING, torchEnv, type TorchConfig,
} from './common.js';

const SHAPE_FLAGS = ['layers', 'dim', 'heads', 'kv', 'hidden', 'vocab', 'bias', 'seq', 'batch'] as const;
type Config = Record<(typeof SHAPE_FLAGS)[number], number>;
const DEFAULTS: Config = { layers: 4, dim: 256, heads: 4, kv: 4, hidden: 704, vocab: 4096, bias: 0, seq: 128, batch: 8 };

/** Flags' defaults for a named shape (seq 128, batch 1: one real-size step is already long). */
function shapeDefaults(name: string): Config {
  const s = shapeConfig(name);
  return { layers: s.nLayers, dim: s.dim, heads: s.nHeads, kv: s.nKvHeads, hidden: s.hiddenDim, vocab: s.vocabSize, bias: s.qkvBias ? 1 : 0, seq: 128, batch: 1 };
}

function family(kernel: string): string {
  return kernel.split('|')[0];
}

/** initLlama, but each tensor uploaded as soon as it is made and its host copy dropped. */
async function initLlamaStreamed(cfg: LlamaConfig, seed: number): Promise<Llama> {
  await T.initGpu();
  const w = new Weights();
  for (const [name, h] of initLlamaTensors(cfg, seed)) w.map.set(name, T.param(T.Tensor.from(h.data as Float32Array, h.shape, 'f32'), name));
  return new Llama(cfg, w);
}

/** The nla model, data and trainer of the bench; `step()` is one timed training step. */
async function setup(c: Config) {
  const gpu = await T.initGpu();
  const cfg = llamaConfig({
    dim: c.dim, nLayers: c.layers, nHeads: c.heads, nKvHeads: c.kv, hiddenDim: c.hidden, vocabSize: c.vocab, maxSeqLen: c.seq,
    qkvBias: c.bias === 1, modelType: c.bias === 1 ? 'qwen2' : 'llama',
  });
  // Initialised a tensor at a time (initLlama would hold the whole model as host f32 first,
  // which at real size doubles the peak memory measured).
  const model = await initLlamaStreamed(cfg, 0);
  const r = new SeededRng(1);
  const corpus = new TokenDataset([Array.from({ length: 200_000 }, () => Math.floor(r.next() * c.vocab))], c.vocab);
  const data = new DataLoader(corpus, { batchSize: c.batch, seqLen: c.seq, seed: 2 });
  const tr = new Trainer(model, data, { steps: 1_000_000, lr: 3e-4, warmupSteps: 0, betas: [0.9, 0.95], weightDecay: 0.1, maxGradNorm: 1 });
  // One step as the timed loop runs it: sample the batch on the host, upload ids and targets,
  // record forward/backward/clip/AdamW (submitted every 32 dispatches). The loss is not read
  // back; the caller's sync waits for the queue to drain.
  const step = () => {
    const { loss, gradNorm } = tr.trainStep();
    loss.dispose();
    gradNorm?.dispose();
  };
  const dispose = () => {
    tr.dispose();
    model.w.dispose();
  };
  return { gpu, model, step, dispose };
}

/** Child side: warm-up, then `steps` steps each timed to completion (sync). */
async function nlaRound(c: Config, steps: number, warmup: number): Promise<Record<string, unknown>> {
  const { gpu, model, step, dispose } = await setup(c);
  for (let i = 0; i < warmup; i++) step();
  await T.sync();
  const s0 = T.runtimeStats();
  let hostMs = 0;
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const h0 = performance.now();
    step();
    hostMs += performance.now() - h0; // recording time, before waiting for the GPU
    await T.sync();
    times.push(performance.now() - h0);
  }
  const s1 = T.runtimeStats();
  const o = {
    bench: 'train-round', engine: 'nla', adapter: gpu.info.description, lp_num_threads: process.env.LP_NUM_THREADS, ...c,
    params: model.w.params().reduce((a, p) => a + p.size, 0), warmup, steps,
    ms_per_step: round(times.reduce((a, b) => a + b, 0) / steps, 2), best_ms_per_step: round(Math.min(...times), 2),
    step_ms: times.map((t) => round(t, 1)), host_record_ms: round(hostMs / steps, 1), peak_rss_mib: Math.round(process.resourceUsage().maxRSS / 1024),
    dispatches_per_step: Math.round((s1.dispatches - s0.dispatches) / steps), submits_per_step: round((s1.submits - s0.submits) / steps, 1),
  };
  dispose();
  return o;
}

/** Child side: where a step's time goes. The dispatch probe runs first, then one profiled step
 * (each dispatch in its own timed pass, which inflates small kernels). */
async function nlaProfile(c: Config, warmup: number): Promise<Record<string, unknown>> {
  const { gpu, step, dispose } = await setup(c);
  if (!gpu.hasTimestamps) {
    dispose();
    return { bench: 'train-profile', engine: 'nla', skipped: 'this adapter has no timestamp queries' };
  }
  for (let i = 0; i < Math.max(1, warmup); i++) step();
  await T.sync();
  const probe = await dispatchProbe();
  const s0 = T.runtimeStats();
  startProfiling();
  step();
  const rep = await profileReport();
  const dispatches = T.runtimeStats().dispatches - s0.dispatches;
  const fam = new Map<string, { ms: number; count: number }>();
  for (const e of rep) {
    const f = fam.get(family(e.kernel)) ?? { ms: 0, count: 0 };
    f.ms += e.ms;
    f.count += e.count;
    fam.set(family(e.kernel), f);
  }
  const gpuMs = rep.reduce((a, e) => a + e.ms, 0);
  const o = {
    bench: 'train-profile', engine: 'nla', gpu_kernel_ms: round(gpuMs, 1), dispatches_per_step: dispatches,
    us_per_dispatch: probe.us_per_dispatch, est_dispatch_overhead_ms: round((dispatches * probe.us_per_dispatch) / 1000, 1),
    kernels: [...fam].sort((a, b) => b[1].ms - a[1].ms).map(([k, v]) => ({ kernel: k, ms: round(v.ms, 2), count: v.count, pct: round((100 * v.ms) / gpuMs, 1) })),
    // The costliest dispatches apart by what they worked on (each matmul's m x n x k and operand layout).
    top_variants: (await profileDetail()).slice(0, 12).map((e) => ({ kernel: e.kernel, ...(e.note ? { note: e.note } : {}), ms: round(e.ms, 2), count: e.count })),
  };
  dispose();
  return o;
}

interface Side { engine: string; label: string; run: () => Record<string, unknown> }

export async function run(args: string[] = []): Promise<Record<string, unknown>[]> {
  const shape = argStr(args, 'shape');
  const defaults = shape ? shapeDefaults(shape) : DEFAULTS;
  const c = Object.fromEntries(SHAPE_FLAGS.map((k) => [k, k === 'bias' ? argCount(args, k, defaults[k]) : argNum(args, k, k === 'kv' && !shape ? argNum(args, 'heads', defaults.heads) : defaults[k], { integer: true })])) as Config;
  if (c.bias > 1) throw new Error(`bench: --bias is 0 or 1, got ${c.bias}`);
  const steps = argNum(args, 'steps', 10, { integer: true }), rounds = argNum(args, 'rounds', 3, { integer: true });
  const warmup = argCount(args, 'warmup', 2);
  const threads = argNum(args, 'threads', cpuCores(), { integer: true });
  const { out, emit } = emitter();

  const child = argStr(args, 'child');
  if (child === 'nla' || child === 'profile') {
    emit(child === 'nla' ? await nlaRound(c, steps, warmup) : await nlaProfile(c, warmup));
    return out;
  }

  const shapeArgs = SHAPE_FLAGS.flatMap((k) => ['--' + k, String(c[k])]);
  const common = [...shapeArgs, '--steps', String(steps), '--warmup', String(warmup)];
  const sides: Side[] = [{ engine: 'nla', label: 'nla', run: () => runChild(...nlaChild('train', ['--child', 'nla', ...common]))[0] }];
  const py = hasFlag(args, 'no-torch') ? undefined : findTorchPython();
  if (hasFlag(args, 'no-torch')) console.log('# torch: skipped (--no-torch)');
  else if (!py) console.log(TORCH_MISSING);
  else {
    const torch = (config: TorchConfig): Side => ({
      engine: 'torch', label: `torch ${config}`,
      run: () => runChild(py, [path.join(benchDir, 'train_torch.py'), ...common, '--threads', String(threads), '--label', config], torchEnv(config))[0],
    });
    sides.push(torch('as installed'), torch('tuned'));
  }
  console.log(machineLine());
  console.log(`# train: ${rounds} round(s); each round runs ${sides.map((s) => s.label).join(', ')} in turn, one fresh process each; ${steps} timed steps after ${warmup} warm-up per process`);

  const perSide = new Map<string, Record<string, unknown>[]>(sides.map((s) => [s.label, []]));
  for (let r = 1; r <= rounds; r++) {
    for (const s of sides) {
      const o = { ...s.run(), round: r };
      perSide.get(s.label)!.push(o);
      emit(o);
    }
  }

  // Per engine: median and range of the rounds' mean step times.
  const tokens = c.batch * c.seq;
  const sum = new Map<string, ReturnType<typeof summarize>>();
  for (const s of sides) {
    const rs = perSide.get(s.label)!;
    const ms = summarize(rs.map((o) => Number(o.ms_per_step)));
    sum.set(s.label, ms);
    const first = rs[0];
    emit({
      bench: 'train', engine: s.engine, ...(s.engine === 'torch' ? { variant: first.variant, torch: first.torch, threads: first.threads, blas: first.blas, env: first.env, attention: first.attention, optimizer: first.optimizer } : { adapter: first.adapter, lp_num_threads: first.lp_num_threads, dispatches_per_step: first.dispatches_per_step, host_record_ms: round(summarize(rs.map((o) => Number(o.host_record_ms))).median, 1) }),
      ...c, ...(shape ? { shape } : {}), params: first.params, rounds, steps, warmup, peak_rss_mib: Math.max(...rs.map((o) => Number(o.peak_rss_mib))),
      ms_per_step: round(ms.median, 1), ms_per_step_min: round(ms.min, 1), ms_per_step_max: round(ms.max, 1), tokens_per_s: round(tokens / (ms.median / 1000), 1),
      round_ms: ms.rounds.map((x) => round(x, 1)),
    });
  }
  const nlaMs = sum.get('nla')!.median;
  const ratioOf = (label: string) => (sum.has(label) ? round(sum.get(label)!.median / nlaMs, 3) : undefined);
  const ratioTuned = ratioOf('torch tuned'), ratio = ratioOf('torch as installed');
  if (ratio !== undefined) {
    // Headline: against the tuned PyTorch (what a good engineer would run); as installed beside it.
    emit({ bench: 'train', engine: 'ratio', method: `median/median over ${rounds} alternating rounds`, rounds, ratio_tuned: ratioTuned, ratio, target: 0.25 });
  }

  console.log(`#\n# ${'engine'.padEnd(20)} ${'ms/step median [min - max]'.padEnd(30)} ${'tokens/s'.padStart(9)}  ${'nla/engine'.padStart(10)}  per round (ms/step)`);
  for (const label of ['torch tuned', 'torch as installed', 'nla']) {
    const s = sum.get(label);
    if (!s) continue;
    const rel = label === 'nla' ? '' : (s.median / nlaMs).toFixed(3);
    console.log(`# ${label.padEnd(20)} ${fmtRange(s).padEnd(30)} ${(tokens / (s.median / 1000)).toFixed(0).padStart(9)}  ${rel.padStart(10)}  ${s.rounds.map((x) => x.toFixed(1)).join(' ')}`);
  }
  if (ratio !== undefined) console.log(`# ratio_tuned ${ratioTuned} (headline: torch tuned median / nla median), ratio ${ratio} (torch as installed); target 0.25`);

  // Where an nla step goes, in a process of its own (profiling stays on once started).
  if (!hasFlag(args, 'no-profile')) {
    const p = runChild(...nlaChild('train', ['--child', 'profile', ...common]))[0];
    if (p.skipped) console.log(`# profile: skipped (${String(p.skipped)})`);
    else {
      emit({ ...p, ms_per_step: round(nlaMs, 1), host_record_ms: out.find((o) => o.bench === 'train' && o.engine === 'nla')?.host_record_ms });
      const kernels = p.kernels as { kernel: string; ms: number; count: number; pct: number }[];
      console.log(`#\n# nla step ${nlaMs.toFixed(1)} ms (median): GPU kernels ${String(p.gpu_kernel_ms)} ms in one profiled step (each dispatch its own timed pass), ${String(p.dispatches_per_step)} dispatches (~${String(p.est_dispatch_overhead_ms)} ms at the measured ${String(p.us_per_dispatch)} us each)`);
      for (const k of kernels.slice(0, 12)) console.log(`#   ${k.kernel.padEnd(28)} ${k.ms.toFixed(1).padStart(8)} ms ${String(k.count).padStart(5)} dispatches ${k.pct.toFixed(1).padStart(5)}%`);
    }
  }
  return out;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  run(process.argv.slice(2)).then(
    () => process.exit(0),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}

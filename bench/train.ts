// Training-step throughput: tokens/s of forward + backward + clip + AdamW for a Llama
// (4 layers, d_model 256, 4 heads, FFN 704, vocab 4096, tied head) on [8, 128] batches, against
// PyTorch on the CPU (bench/train_torch.py) as installed and tuned; then where an nla step's
// time goes: GPU ms per kernel family, dispatches per step and their estimated fixed cost,
// host (JavaScript) time to record a step.
//
// Run: node --import tsx bench/train.ts [--steps N (10; both engines, mean and best reported)] [--warmup N] [--no-torch] [--no-profile]
//      [--layers 4 --dim 256 --heads 4 --hidden 704 --vocab 4096 --seq 128 --batch 8]
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DataLoader, TokenDataset } from '../src/nn/data.js';
import { initLlama, llamaConfig } from '../src/nn/init.js';
import { Trainer } from '../src/nn/train.js';
import * as T from '../src/tensor/index.js';
import { profileDetail, profileReport, startProfiling } from '../src/tensor/profile.js';
import { SeededRng } from '../src/util/rng.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** Fixed cost per dispatch on Mesa lavapipe (measured by bench/main.ts's dispatch probe). */
const DISPATCH_US = 20;

function argOf(args: string[], name: string, def: number): number {
  const i = args.indexOf('--' + name);
  if (i < 0) return def;
  const v = Number(args[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`bench/train: --${name} needs a positive number, got ${args[i + 1]}`);
  return v;
}

/** A python3 that can import torch (Debian's python3-torch lives under /usr/bin/python3), or undefined. */
export function findTorchPython(): string | undefined {
  for (const py of ['python3', '/usr/bin/python3']) {
    const r = spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore' });
    if (r.status === 0) return py;
  }
  return undefined;
}

function hasAvx512(): boolean {
  try {
    return /\bavx512f\b/.test(fs.readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    return false;
  }
}

function family(kernel: string): string {
  return kernel.split('|')[0];
}

export async function run(args: string[] = []): Promise<Record<string, unknown>[]> {
  const c = {
    layers: argOf(args, 'layers', 4), dim: argOf(args, 'dim', 256), heads: argOf(args, 'heads', 4), hidden: argOf(args, 'hidden', 704),
    vocab: argOf(args, 'vocab', 4096), seq: argOf(args, 'seq', 128), batch: argOf(args, 'batch', 8),
  };
  const steps = argOf(args, 'steps', 10), warmup = argOf(args, 'warmup', 2);
  const gpu = await T.initGpu();
  const cfg = llamaConfig({ dim: c.dim, nLayers: c.layers, nHeads: c.heads, hiddenDim: c.hidden, vocabSize: c.vocab, maxSeqLen: c.seq });
  const model = await initLlama(cfg, 0);
  const r = new SeededRng(1);
  const corpus = new TokenDataset([Array.from({ length: 200_000 }, () => Math.floor(r.next() * c.vocab))], c.vocab);
  const data = new DataLoader(corpus, { batchSize: c.batch, seqLen: c.seq, seed: 2 });
  const tr = new Trainer(model, data, { steps: 1_000_000, lr: 3e-4, warmupSteps: 0, betas: [0.9, 0.95], weightDecay: 0.1, maxGradNorm: 1 });
  const step = () => {
    const { loss, gradNorm } = tr.trainStep();
    loss.dispose();
    gradNorm?.dispose();
  };
  for (let i = 0; i < warmup; i++) step();
  await T.sync();
  // Each step is timed to completion (sync), so a noisy machine shows as a spread between the
  // mean and the best step; host recording time is measured before the sync.
  const s0 = T.runtimeStats();
  let hostMs = 0;
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const h0 = performance.now();
    step();
    hostMs += performance.now() - h0;
    await T.sync();
    times.push(performance.now() - h0);
  }
  const wall = times.reduce((a, b) => a + b, 0) / steps;
  const best = Math.min(...times);
  const s1 = T.runtimeStats();
  const tokens = c.batch * c.seq;
  const out: Record<string, unknown>[] = [];
  const emit = (o: Record<string, unknown>) => {
    out.push(o);
    console.log(JSON.stringify(o));
  };
  const dispatches = (s1.dispatches - s0.dispatches) / steps;
  const nla = {
    bench: 'train', engine: 'nla', adapter: gpu.info.description, ...c, params: model.w.params().reduce((a, p) => a + p.size, 0),
    steps, ms_per_step: +wall.toFixed(1), best_ms_per_step: +best.toFixed(1),
    tokens_per_s: +(tokens / (wall / 1000)).toFixed(1), best_tokens_per_s: +(tokens / (best / 1000)).toFixed(1),
    dispatches_per_step: Math.round(dispatches), submits_per_step: +((s1.submits - s0.submits) / steps).toFixed(1),
  };
  emit(nla);

  // Where the time goes: one profiled step (each dispatch in its own timed pass).
  if (!args.includes('--no-profile')) {
    if (!gpu.hasTimestamps) console.log('# profile: this adapter has no timestamp queries; skipped');
    else {
      startProfiling();
      step();
      const rep = await profileReport();
      const fam = new Map<string, { ms: number; count: number }>();
      for (const e of rep) {
        const f = fam.get(family(e.kernel)) ?? { ms: 0, count: 0 };
        f.ms += e.ms;
        f.count += e.count;
        fam.set(family(e.kernel), f);
      }
      const gpuMs = rep.reduce((a, e) => a + e.ms, 0);
      const overheadMs = (dispatches * DISPATCH_US) / 1000;
      emit({
        bench: 'train-profile', engine: 'nla', ms_per_step: nla.ms_per_step, gpu_kernel_ms: +gpuMs.toFixed(1),
        dispatches_per_step: Math.round(dispatches), est_dispatch_overhead_ms: +overheadMs.toFixed(1), host_record_ms: +(hostMs / steps).toFixed(1),
        kernels: [...fam].sort((a, b) => b[1].ms - a[1].ms).map(([k, v]) => ({ kernel: k, ms: +v.ms.toFixed(2), count: v.count, pct: +((100 * v.ms) / gpuMs).toFixed(1) })),
        // The costliest dispatches apart by what they worked on (each matmul's m x n x k and operand layout).
        top_variants: (await profileDetail()).slice(0, 12).map((e) => ({ kernel: e.kernel, ...(e.note ? { note: e.note } : {}), ms: +e.ms.toFixed(2), count: e.count })),
      });
      console.log(`# nla step ${nla.ms_per_step} ms: GPU kernels ${gpuMs.toFixed(1)} ms, ${Math.round(dispatches)} dispatches (~${overheadMs.toFixed(1)} ms at ${DISPATCH_US} us each), host recording ${(hostMs / steps).toFixed(1)} ms`);
      for (const [k, v] of [...fam].sort((a, b) => b[1].ms - a[1].ms).slice(0, 12)) {
        console.log(`#   ${k.padEnd(28)} ${v.ms.toFixed(1).padStart(8)} ms ${String(v.count).padStart(5)} dispatches ${((100 * v.ms) / gpuMs).toFixed(1).padStart(5)}%`);
      }
    }
  }
  tr.dispose();
  model.w.dispose();

  if (args.includes('--no-torch')) return out;
  const py = findTorchPython();
  if (!py) {
    console.log('# torch: skipped (python3 -c "import torch" fails; on Debian: apt-get install python3-torch)');
    return out;
  }
  const script = path.join(here, 'train_torch.py');
  const targs = [script, '--layers', c.layers, '--dim', c.dim, '--heads', c.heads, '--hidden', c.hidden, '--vocab', c.vocab, '--seq', c.seq, '--batch', c.batch].map(String);
  const torchRun = (label: string, env: NodeJS.ProcessEnv) => {
    const line = execFileSync(py, [...targs, '--steps', String(steps), '--label', label], { env, encoding: 'utf8' }).trim().split('\n').pop()!;
    const o = JSON.parse(line) as Record<string, number>;
    emit(o);
    return o;
  };
  const asInstalled = torchRun('as installed', process.env);
  const tuned = torchRun('tuned', { ...process.env, OMP_WAIT_POLICY: 'PASSIVE', ...(hasAvx512() ? { OPENBLAS_CORETYPE: 'SkylakeX' } : {}) });
  const r3 = (x: number) => +x.toFixed(3);
  emit({
    bench: 'train', engine: 'ratio', target: 0.25,
    ratio: r3(nla.tokens_per_s / asInstalled.tokens_per_s), ratio_tuned: r3(nla.tokens_per_s / tuned.tokens_per_s),
    // Best single steps: what each engine does when the machine is quiet.
    ratio_best: r3(nla.best_tokens_per_s / asInstalled.best_tokens_per_s), ratio_tuned_best: r3(nla.best_tokens_per_s / tuned.best_tokens_per_s),
  });
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

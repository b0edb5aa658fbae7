// How a wait for the GPU is done (src/tensor/gpu-wait.ts): 'spin' awaits at once, and Dawn's
// Node bindings then poll from the main thread until the work is done; 'sleep' first sleeps on
// a timer for most of the expected time. On lavapipe the polling takes a core from the threads
// doing the work. One process alternates the two step by step (the same model, data stream and
// learned estimates), a training step of the demos' size: a stories260K-shaped Llama (5 layers,
// d 64, 8 heads, 4 KV heads, FFN 172, vocab 512) on [32, 96] batches, the AV warm start's shape.
//
// Run: npm run bench -- gpu-wait [--steps 40] [--warmup 4] [--layers 5 --dim 64 --heads 8 --kv 4 --hidden 172 --vocab 512 --seq 96 --batch 32]
import { DataLoader, TokenDataset } from '../src/nn/data.js';
import { initLlama, llamaConfig } from '../src/nn/init.js';
import { Trainer } from '../src/nn/train.js';
import { setGpuWait } from '../src/tensor/gpu-wait.js';
import * as T from '../src/tensor/index.js';
import { SeededRng } from '../src/util/rng.js';
import { argCount, emitter, machineLine, round, summarize } from './common.js';

export async function run(args: string[]): Promise<void> {
  const { emit } = emitter();
  const n = (flag: string, d: number) => argCount(args, flag, d);
  const c = { layers: n('layers', 5), dim: n('dim', 64), heads: n('heads', 8), kv: n('kv', 4), hidden: n('hidden', 172), vocab: n('vocab', 512), seq: n('seq', 96), batch: n('batch', 32) };
  const steps = n('steps', 40), warmup = n('warmup', 4);
  const gpu = await T.initGpu();
  const cfg = llamaConfig({ dim: c.dim, nLayers: c.layers, nHeads: c.heads, nKvHeads: c.kv, hiddenDim: c.hidden, vocabSize: c.vocab, maxSeqLen: c.seq });
  const model = await initLlama(cfg, 0);
  const r = new SeededRng(1);
  const data = new DataLoader(new TokenDataset([Array.from({ length: 200_000 }, () => Math.floor(r.next() * c.vocab))], c.vocab), { batchSize: c.batch, seqLen: c.seq, seed: 2 });
  const tr = new Trainer(model, data, { steps: 1_000_000, lr: 3e-4, warmupSteps: 0, betas: [0.9, 0.95], weightDecay: 0.1, maxGradNorm: 1 });
  // A step as the warm starts run it: record it, then read the loss back (the wait measured).
  const step = async () => {
    const { loss, gradNorm } = tr.trainStep();
    await loss.data();
    loss.dispose();
    gradNorm?.dispose();
  };
  for (let i = 0; i < warmup; i++) {
    setGpuWait(i % 2 ? 'sleep' : 'spin');
    await step();
  }
  const times: Record<'spin' | 'sleep', number[]> = { spin: [], sleep: [] };
  const cpu: Record<'spin' | 'sleep', number> = { spin: 0, sleep: 0 };
  for (let i = 0; i < 2 * steps; i++) {
    const mode = i % 2 ? 'sleep' : 'spin';
    setGpuWait(mode);
    const c0 = process.cpuUsage(), t0 = performance.now();
    await step();
    times[mode].push(performance.now() - t0);
    const du = process.cpuUsage(c0);
    cpu[mode] += (du.user + du.system) / 1000;
  }
  setGpuWait('sleep');
  console.log(`# ${machineLine()}; adapter ${gpu.info.description}; ${JSON.stringify(c)}; ${steps} steps per mode, alternating`);
  const med: Record<string, number> = {};
  for (const mode of ['spin', 'sleep'] as const) {
    const s = summarize(times[mode]);
    med[mode] = s.median;
    emit({ bench: 'gpu-wait', mode, ...c, steps, ms_per_step: round(s.median, 1), ms_per_step_min: round(s.min, 1), ms_per_step_max: round(s.max, 1), process_cpu_ms_per_step: round(cpu[mode] / steps, 1) });
    console.log(`# ${mode.padEnd(6)} ${s.median.toFixed(1)} ms/step median [${s.min.toFixed(1)} - ${s.max.toFixed(1)}], process CPU ${(cpu[mode] / steps).toFixed(1)} ms/step`);
  }
  emit({ bench: 'gpu-wait', mode: 'ratio', sleep_over_spin: round(med.sleep! / med.spin!, 3) });
  console.log(`# sleep / spin = ${(med.sleep! / med.spin!).toFixed(3)}`);
  tr.dispose();
  model.w.dispose();
}

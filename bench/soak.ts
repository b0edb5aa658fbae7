// Soak: a tiny joint-RL configuration on stories260K (AV and AR copies of M, 2 activations x
// 2 samples per step, 12-token explanations) for many steps, recording every N steps the GPU
// buffers alive and pooled (count and bytes) and the process RSS and JS heap. A leak shows as
// a trend; flat lines are the pass. tests/soak.test.ts runs a short version and asserts it.
//
// Run: npm run bench -- soak [--steps 2000] [--every 50]
import type { Llama } from '../src/nn/llama.js';
import { loadModel, loadTokenizerFor } from '../src/nn/load.js';
import { Reconstructor } from '../src/nla/ar.js';
import { Verbalizer } from '../src/nla/av.js';
import { knownAnswerItems } from '../src/nla/dataset.js';
import { extractActivations } from '../src/nla/extract.js';
import { DEFAULT_PROMPTS } from '../src/nla/prompts.js';
import { trainRl } from '../src/nla/rl.js';
import { findModelFile } from '../src/io/model-files.js';
import { poolStats } from '../src/tensor/pool.js';
import { runtimeStats } from '../src/tensor/runtime.js';
import { argCount } from './common.js';

export interface SoakSample {
  step: number;
  seconds: number;
  liveBuffers: number;
  liveBytes: number;
  pooledBuffers: number;
  pooledBytes: number;
  rssMiB: number;
  heapMiB: number;
  /** V8's committed heap (MiB): what the JS heap holds of RSS, garbage included. */
  heapTotalMiB: number;
  /** V8's external memory and the part of it held by ArrayBuffers (MiB). */
  externalMiB: number;
  arrayBuffersMiB: number;
  /** Compiled kernels cached (a key that varies per step would grow this). */
  pipelines: number;
  /** WebGPU objects made so far: a bind group per dispatch, a command buffer per submit, a
   * mapped staging buffer per readback (none is freed until V8 collects its wrapper). */
  dispatches: number;
  submits: number;
  readbacks: number;
  /** Bind groups made so far (a cache miss each) and held in the cache now, and staging buffers
   * made so far (bind-groups.ts, staging.ts): after warm-up these stop growing. */
  bindGroupsCreated: number;
  bindGroupsCached: number;
  stagingCreated: number;
  /** Full collections the runtime asked for (src/tensor/collect.ts) and the milliseconds they took. */
  collections: number;
  collectMs: number;
}

/** Run `steps` RL steps, sampling memory after every `every`-th step (and after the first). */
export async function soak(steps: number, every: number, onSample: (s: SoakSample) => void = () => {}): Promise<SoakSample[]> {
  const file = findModelFile('stories260K.bin');
  const M = (await loadModel(file)).model as Llama;
  const tok = loadTokenizerFor(file);
  const items = knownAnswerItems(tok, { stories: 8, cutsPerStory: 2, minTokens: 20, seed: 3 });
  const h = await extractActivations(M, 3, items);
  // Explanations close at the first period, so rollouts parse and both models get updates.
  const prompts = { ...DEFAULT_PROMPTS, explanationEnd: '.' };
  const copy = async () => new Verbalizer(new (M.constructor as typeof Llama)(M.cfg, await M.w.clone()), tok, prompts, 10);
  const av = await copy(), ref = await copy();
  const ar = await Reconstructor.fromModel(M, 3, tok, prompts);
  const samples: SoakSample[] = [];
  const t0 = performance.now();
  const sample = (step: number) => {
    // With --expose-gc, collect first: garbage then cannot pass for a leak.
    (globalThis as { gc?: () => void }).gc?.();
    const p = poolStats(), r = runtimeStats(), mem = process.memoryUsage(), mib = (b: number) => Math.round(b / 2 ** 20);
    const s = {
      step, seconds: Math.round((performance.now() - t0) / 100) / 10, liveBuffers: p.liveBuffers, liveBytes: p.liveBytes, pooledBuffers: p.pooledBuffers, pooledBytes: p.pooledBytes,
      rssMiB: mib(mem.rss), heapMiB: mib(mem.heapUsed), heapTotalMiB: mib(mem.heapTotal), externalMiB: mib(mem.external), arrayBuffersMiB: mib(mem.arrayBuffers), pipelines: r.pipelines, dispatches: r.dispatches, submits: r.submits, readbacks: r.readbacks, collections: r.collections, collectMs: Math.round(r.collectMs), bindGroupsCreated: r.bindGroupsCreated, bindGroupsCached: r.bindGroupsCached, stagingCreated: r.stagingCreated,
    };
    samples.push(s);
    onSample(s);
  };
  await trainRl(av, ref, ar, { h }, {
    steps, activationsPerStep: 2, groupSize: 2, maxTokens: 12, beta: 0.01, epsilon: 0.2, reward: 'mse', seed: 1, variance: 0.77,
    av: { lr: 1e-4, clip: 1 }, ar: { lr: 1e-4, clip: 1 },
    onLog: (m) => {
      if (m.step === 0 || (m.step + 1) % every === 0) sample(m.step + 1);
    },
  });
  for (const x of [av, ref]) x.model.w.dispose();
  ar.model.w.dispose();
  M.w.dispose();
  return samples;
}

/** Least-squares slope of RSS over the samples from `fromStep` on, in MiB per 1,000 steps. */
export function rssSlope(samples: readonly SoakSample[], fromStep: number): number {
  const xs = samples.filter((s) => s.step >= fromStep);
  if (xs.length < 2) throw new Error(`soak: fewer than 2 samples from step ${fromStep}`);
  const mx = xs.reduce((a, s) => a + s.step, 0) / xs.length, my = xs.reduce((a, s) => a + s.rssMiB, 0) / xs.length;
  const sxy = xs.reduce((a, s) => a + (s.step - mx) * (s.rssMiB - my), 0), sxx = xs.reduce((a, s) => a + (s.step - mx) ** 2, 0);
  return (1000 * sxy) / sxx;
}

export async function run(args: string[]): Promise<void> {
  const steps = argCount(args, 'steps', 2000), every = argCount(args, 'every', 50);
  const samples = await soak(steps, every, (s) => console.log(JSON.stringify({ bench: 'soak', ...s })));
  const first = samples.find((s) => s.step >= every) ?? samples[0], last = samples[samples.length - 1];
  console.log(`# ${steps} RL steps in ${last.seconds} s: live buffers ${first.liveBuffers} -> ${last.liveBuffers}, live MiB ${(first.liveBytes / 2 ** 20).toFixed(2)} -> ${(last.liveBytes / 2 ** 20).toFixed(2)}, pooled ${first.pooledBuffers} -> ${last.pooledBuffers}, RSS MiB ${first.rssMiB} -> ${last.rssMiB} (max ${Math.max(...samples.map((s) => s.rssMiB))}), heap MiB ${first.heapMiB} -> ${last.heapMiB}`);
  // "Flat" (BENCHMARKS.md, soak): the slope after the first quarter of the run (warm-up).
  const from = Math.round(steps / 4 / every) * every;
  console.log(`# RSS slope from step ${from}: ${rssSlope(samples, from).toFixed(1)} MiB per 1,000 steps; bind groups made ${first.bindGroupsCreated} -> ${last.bindGroupsCreated} (cached ${last.bindGroupsCached}), staging buffers made ${first.stagingCreated} -> ${last.stagingCreated}, ${last.collections} collections (${last.collectMs} ms)`);
}

// Sampling throughput: tokens/s of batch-64 generation from stories260K with the KV cache at
// temperature 1 (one forward of [64, 1] per step, logits read back, sampled on the host), plus
// dispatches per step and GPU time per kernel family for a profiled run.
//
// Run: node --import tsx bench/generate.ts [--batch 64] [--tokens 128] [--no-profile]
import { pathToFileURL } from 'node:url';
import { generate } from '../src/nn/generate.js';
import { loadModel } from '../src/nn/load.js';
import * as T from '../src/tensor/index.js';
import { profileReport, startProfiling } from '../src/tensor/profile.js';
import { argNum, argStr, emitter } from './common.js';

export async function run(args: string[] = []): Promise<Record<string, unknown>[]> {
  const batch = argNum(args, 'batch', 64, { integer: true }), tokens = argNum(args, 'tokens', 128, { integer: true });
  const file = argStr(args, 'model') ?? 'stories260K.bin';
  let loaded;
  try {
    loaded = await loadModel(file);
  } catch (e) {
    console.log(`# generate: skipped (${(e as Error).message})`);
    return [];
  }
  const { model } = loaded;
  const gpu = await T.initGpu();
  const bos = model.cfg.bosId >= 0 ? model.cfg.bosId : 1;
  const prompts = Array.from({ length: batch }, () => [bos]);
  const opts = { maxNewTokens: tokens, temperature: 1, seed: 7 };
  await generate(model, prompts, { ...opts, maxNewTokens: 4 }); // compile kernels
  const s0 = T.runtimeStats();
  const t0 = performance.now();
  const g = await generate(model, prompts, opts);
  const secs = (performance.now() - t0) / 1000;
  const s1 = T.runtimeStats();
  const made = g.tokens.reduce((a, r) => a + r.length, 0);
  const steps = Math.max(...g.tokens.map((r) => r.length));
  const { out, emit } = emitter();
  emit({
    bench: 'generate', engine: 'nla', adapter: gpu.info.description, model: loaded.name, batch, steps, temperature: 1,
    tokens: made, seconds: +secs.toFixed(2), ms_per_step: +((1000 * secs) / steps).toFixed(2), tokens_per_s: +(made / secs).toFixed(1),
    dispatches_per_step: Math.round((s1.dispatches - s0.dispatches) / steps), readbacks_per_step: +((s1.readbacks - s0.readbacks) / steps).toFixed(2),
  });
  if (!args.includes('--no-profile') && gpu.hasTimestamps) {
    startProfiling();
    const n = 16;
    await generate(model, prompts, { ...opts, maxNewTokens: n });
    const rep = await profileReport();
    const gpuMs = rep.reduce((a, e) => a + e.ms, 0);
    const perStep = (1000 * secs) / steps;
    emit({
      bench: 'generate-profile', engine: 'nla', steps: n, gpu_kernel_ms_per_step: +(gpuMs / n).toFixed(3),
      // The rest of a step: recording, the logits readback's round trip, sampling 64 rows on the host.
      other_ms_per_step: +Math.max(0, perStep - gpuMs / n).toFixed(3),
      kernels: rep.slice(0, 10).map((e) => ({ kernel: e.kernel, ms_per_step: +(e.ms / n).toFixed(3), dispatches_per_step: +(e.count / n).toFixed(1) })),
    });
    console.log(`# generate step ${perStep.toFixed(1)} ms for ${batch} tokens: GPU kernels ${(gpuMs / n).toFixed(1)} ms, other (host, readback) ~${Math.max(0, perStep - gpuMs / n).toFixed(1)} ms`);
    for (const e of rep.slice(0, 6)) console.log(`#   ${e.kernel.padEnd(28)} ${(e.ms / n).toFixed(2).padStart(7)} ms/step ${(e.count / n).toFixed(0).padStart(4)} dispatches/step`);
  }
  model.w.dispose();
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

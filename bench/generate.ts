// Sampling throughput: tokens/s of batch-64 generation from stories260K with the KV cache at
// temperature 1 (one forward of [64, 1] per step, logits read back, sampled on the host), plus
// dispatches per step and GPU time per kernel family for a profiled run.
//
// Run: node --import tsx bench/generate.ts [--batch 64] [--tokens 128] [--no-profile]
//
// With --shape NAME (e.g. qwen2.5-0.5b; shapes in scripts/large-model.ts) the model is that
// shape with seeded random bf16 weights (built into the cache once, by scripts/large-model.ts)
// and nla runs against PyTorch float32 on the same file (bench/generate_torch.py): each round
// one fresh process per engine in turn, as bench/train.ts; tokens/s, ms/step and peak RSS per
// engine (median and range over rounds). Defaults there: --batch 4 --tokens 32 --rounds 2
// --weights-dtype f32 (the GPU dtype of nla's matrices).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { generate } from '../src/nn/generate.js';
import { loadModel } from '../src/nn/load.js';
import * as T from '../src/tensor/index.js';
import { profileReport, startProfiling } from '../src/tensor/profile.js';
import { defaultLargeDir, shapeConfig, writeSyntheticModel } from '../scripts/large-model.js';
import { WEIGHT_DTYPES, type WeightDType } from '../src/nn/stream-load.js';
import {
  argNum, argStr, benchDir, cpuCores, emitter, findTorchPython, fmtRange, hasFlag, machineLine, nlaChild, round, runChild, summarize, TORCH_MISSING, torchEnv,
} from './common.js';

/** The seeded model of a shape, built into the cache on first use. */
function shapeModel(shape: string): string {
  const dir = defaultLargeDir(shape);
  if (!fs.existsSync(path.join(dir, 'model.safetensors'))) {
    console.log(`# building ${dir} (scripts/large-model.ts)`);
    writeSyntheticModel(dir, shapeConfig(shape));
  }
  return dir;
}

/** Child side of a shape round: load, warm up, time `tokens` steps of batch sampling. */
async function nlaShapeRound(model: string, batch: number, tokens: number, dtype: WeightDType): Promise<Record<string, unknown>> {
  const t0 = performance.now();
  const { model: M } = await loadModel(model, { dtype });
  const loadS = (performance.now() - t0) / 1000;
  const gpu = await T.initGpu();
  const prompts = Array.from({ length: batch }, () => [M.cfg.bosId >= 0 ? M.cfg.bosId : 0]);
  await generate(M, prompts, { maxNewTokens: 4, temperature: 1, seed: 7 }); // compile kernels
  const t1 = performance.now();
  // No stop tokens: every row runs all steps, as the torch side does.
  const g = await generate(M, prompts, { maxNewTokens: tokens, temperature: 1, seed: 7 });
  const secs = (performance.now() - t1) / 1000;
  const steps = Math.max(...g.tokens.map((r) => r.length));
  const made = g.tokens.reduce((a, r) => a + r.length, 0);
  M.w.dispose();
  return {
    bench: 'generate-round', engine: 'nla', adapter: gpu.info.description, weights_dtype: dtype, batch, steps, load_s: round(loadS, 2), seconds: round(secs, 2),
    ms_per_step: round((1000 * secs) / steps, 2), tokens_per_s: round(made / secs, 2), peak_rss_mib: Math.round(process.resourceUsage().maxRSS / 1024),
  };
}

/** --shape: nla and PyTorch alternating, one fresh process each per round. */
async function shapeRun(args: string[], shape: string): Promise<Record<string, unknown>[]> {
  const batch = argNum(args, 'batch', 4, { integer: true }), tokens = argNum(args, 'tokens', 32, { integer: true }), rounds = argNum(args, 'rounds', 2, { integer: true });
  const dtype = (argStr(args, 'weights-dtype') ?? 'f32') as WeightDType;
  if (!WEIGHT_DTYPES.includes(dtype)) throw new Error(`bench: --weights-dtype ${dtype}: expected one of ${WEIGHT_DTYPES.join(', ')}`);
  const { out, emit } = emitter();
  const model = shapeModel(shape);
  if (argStr(args, 'child') === 'nla') {
    emit(await nlaShapeRound(model, batch, tokens, dtype));
    return out;
  }
  const cfg = shapeConfig(shape);
  const sides: { label: string; run: () => Record<string, unknown> }[] = [
    { label: 'nla', run: () => runChild(...nlaChild('generate', ['--child', 'nla', '--shape', shape, '--batch', String(batch), '--tokens', String(tokens), '--weights-dtype', dtype]))[0]! },
  ];
  const py = hasFlag(args, 'no-torch') ? undefined : findTorchPython();
  if (!py && !hasFlag(args, 'no-torch')) console.log(TORCH_MISSING);
  if (py) {
    sides.push({
      label: 'torch tuned',
      run: () => runChild(py, [path.join(benchDir, 'generate_torch.py'), '--model', model, '--batch', String(batch), '--tokens', String(tokens), '--bos', String(cfg.bosId >= 0 ? cfg.bosId : 0), '--threads', String(cpuCores()), '--label', 'tuned'], torchEnv('tuned'))[0]!,
    });
  }
  console.log(machineLine());
  console.log(`# generate --shape ${shape}: ${rounds} round(s) of ${sides.map((s) => s.label).join(', ')} in turn, one fresh process each; batch ${batch}, ${tokens} steps, temperature 1, KV cache; nla weights ${dtype} on the GPU`);
  const per = new Map<string, Record<string, unknown>[]>(sides.map((s) => [s.label, []]));
  for (let r = 1; r <= rounds; r++) {
    for (const s of sides) {
      const o = { ...s.run(), round: r, shape };
      per.get(s.label)!.push(o);
      emit(o);
    }
  }
  console.log(`#\n# ${'engine'.padEnd(12)} ${'ms/step median [min - max]'.padEnd(30)} ${'tokens/s'.padStart(9)} ${'peak RSS MiB'.padStart(13)}`);
  for (const s of sides) {
    const rs = per.get(s.label)!;
    const ms = summarize(rs.map((o) => Number(o.ms_per_step)));
    const rss = Math.max(...rs.map((o) => Number(o.peak_rss_mib)));
    emit({ bench: 'generate', engine: s.label, shape, batch, steps: tokens, rounds, ms_per_step: round(ms.median, 1), ms_per_step_min: round(ms.min, 1), ms_per_step_max: round(ms.max, 1), tokens_per_s: round(batch / (ms.median / 1000), 2), peak_rss_mib: rss, ...(s.label === 'nla' ? { weights_dtype: dtype } : {}) });
    console.log(`# ${s.label.padEnd(12)} ${fmtRange(ms).padEnd(30)} ${(batch / (ms.median / 1000)).toFixed(2).padStart(9)} ${String(rss).padStart(13)}`);
  }
  return out;
}

export async function run(args: string[] = []): Promise<Record<string, unknown>[]> {
  const shape = argStr(args, 'shape');
  if (shape) return shapeRun(args, shape);
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

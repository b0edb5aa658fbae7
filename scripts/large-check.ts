// Issue 13's acceptance check on a real-size model: nla against a float32 PyTorch forward of the
// same file (scripts/large_reference.py), each side in its own process under /usr/bin/time.
//   1. `nla activations --layer K --json` (the CLI a user runs): wall time, peak RSS, any GPU
//      error on stderr, and the layer-K rows against the reference's (per-row relative L2
//      error ||nla - ref|| / ||ref||, max over rows; target 2e-3).
//   2. nla greedy generation of --steps tokens from the same ids (this script as a child):
//      tokens equal the reference's at every step compared, where a step is compared while the
//      two sequences agree so far; a differing step whose reference top-2 gap is <= 1e-3 is a
//      near tie (allowed), and the sequences cannot be compared past it.
//   3. the reference (torch float32): its time and peak RSS beside nla's.
// Prints JSON lines and "#" lines; --json-out FILE also writes the summary.
//
// Run: node --import tsx scripts/large-check.ts [--model DIR | --shape qwen2.5-0.5b|qwen2-small] [--layer 11] [--steps 16]
//        [--text "..."] [--weights-dtype auto|f32|f16|bf16] [--json-out runs/large-check.json]
// (default model: the seeded Qwen2.5-0.5B shape from scripts/large-model.ts, built if missing)
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { generate } from '../src/nn/generate.js';
import { loadModel } from '../src/nn/load.js';
import { WEIGHT_DTYPES, type WeightDType } from '../src/nn/stream-load.js';
import { cpuCores, torchEnv } from '../bench/common.js';
import { defaultLargeDir, shapeConfig, writeSyntheticModel } from './large-model.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ACT_TOL = 2e-3, TIE_GAP = 1e-3;

function arg(name: string, def?: string): string | undefined {
  const i = process.argv.indexOf('--' + name);
  return i < 0 ? def : process.argv[i + 1];
}

interface Timed { stdout: string; stderr: string; seconds: number; maxRssMiB: number; status: number | null }

/** Run under GNU time: wall seconds and peak resident set of the child (its last stderr line). */
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Timed {
  const r = spawnSync('/usr/bin/time', ['-f', 'TIME %e %M', cmd, ...args], { cwd: root, env, encoding: 'utf8', maxBuffer: 1 << 30 });
  const m = /TIME ([\d.]+) (\d+)\s*$/.exec(r.stderr ?? '');
  if (!m) throw new Error(`large-check: /usr/bin/time gave no measurement for ${cmd} ${args.join(' ')}:\n${r.stderr}`);
  return { stdout: r.stdout, stderr: r.stderr.replace(/TIME [\d.]+ \d+\s*$/, ''), seconds: Number(m[1]), maxRssMiB: Math.round(Number(m[2]) / 1024), status: r.status };
}

/** Lines of a child's stderr that report GPU trouble (Dawn's start-up warnings are not). */
function gpuErrors(stderr: string): string[] {
  return stderr.split('\n').filter((l) => /error|invalid|validation|lost/i.test(l) && !/Warning: max/.test(l));
}

function jsonLine(stdout: string, what: string): Record<string, unknown> {
  const line = stdout.split('\n').find((l) => l.startsWith('{'));
  if (!line) throw new Error(`large-check: ${what} printed no JSON:\n${stdout.slice(0, 2000)}`);
  return JSON.parse(line) as Record<string, unknown>;
}

/** Child: load, greedy-generate, print the tokens (one JSON line). */
async function child(model: string, ids: number[], steps: number, dtype: WeightDType): Promise<void> {
  const t0 = performance.now();
  const { model: M } = await loadModel(model, { dtype });
  const tLoad = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  const g = await generate(M, [ids], { maxNewTokens: steps, temperature: 0 });
  const tGen = (performance.now() - t1) / 1000;
  console.log(JSON.stringify({ tokens: g.tokens[0], seconds: { load: +tLoad.toFixed(2), generate: +tGen.toFixed(2) } }));
  M.w.dispose();
}

function rowRelErrors(a: number[][], b: number[][]): number[] {
  return a.map((r, i) => {
    let num = 0, den = 0;
    r.forEach((v, j) => ((num += (v - b[i]![j]!) ** 2), (den += b[i]![j]! ** 2)));
    return Math.sqrt(num / den);
  });
}

async function main(): Promise<void> {
  const layer = Number(arg('layer', '11')), steps = Number(arg('steps', '16'));
  const dtype = (arg('weights-dtype', 'auto') ?? 'auto') as WeightDType;
  if (!WEIGHT_DTYPES.includes(dtype)) throw new Error(`--weights-dtype ${dtype}: expected one of ${WEIGHT_DTYPES.join(', ')}`);
  let model = arg('model');
  if (!model) {
    const shape = arg('shape', 'qwen2.5-0.5b')!;
    model = defaultLargeDir(shape);
    if (!fs.existsSync(path.join(model, 'model.safetensors'))) {
      console.log(`# building ${model}`);
      writeSyntheticModel(model, shapeConfig(shape));
    }
  }
  if (process.argv.includes('--child')) {
    await child(model, arg('ids')!.split(',').map(Number), steps, dtype);
    return;
  }
  const text = arg('text', 'The quick brown fox jumps over the lazy dog.')!;
  const node = [process.execPath, [...process.execArgv]] as const;

  const act = timed(node[0], [...node[1], 'src/cli/main.ts', 'activations', '--model', model, '--layer', String(layer), '--text', text, '--json', '--weights-dtype', dtype]);
  const actErrors = gpuErrors(act.stderr);
  if (act.status !== 0) console.log(`# nla activations failed (exit ${act.status}):\n${act.stderr.split('\n').slice(-15).map((l) => '#   ' + l).join('\n')}`);
  const nlaAct = act.status === 0 ? jsonLine(act.stdout, 'nla activations') : undefined;
  // Ids from nla's tokenizer when it ran; else the same text's bytes through the synthetic tokenizer's rule.
  const ids = (nlaAct?.ids as number[] | undefined) ?? [...new TextEncoder().encode(text)];

  const gen = timed(node[0], [...node[1], fileURLToPath(import.meta.url), '--child', '--model', model, '--ids', ids.join(','), '--steps', String(steps), '--weights-dtype', dtype]);
  const genErrors = gpuErrors(gen.stderr);
  if (gen.status !== 0) console.log(`# nla generate failed (exit ${gen.status}):\n${gen.stderr.split('\n').slice(-15).map((l) => '#   ' + l).join('\n')}`);
  const nlaGen = gen.status === 0 ? jsonLine(gen.stdout, 'nla generate') : undefined;

  // The reference costs minutes at real size and depends only on the file and the request: kept
  // under runs/large-ref/ (not committed), keyed by the weights file's size and mtime.
  const st = fs.statSync(path.join(model, 'model.safetensors'));
  const key = createHash('sha256').update(JSON.stringify([path.resolve(model), st.size, st.mtimeMs, ids, layer, steps])).digest('hex').slice(0, 16);
  const cacheFile = path.join(root, 'runs', 'large-ref', `${key}.json`);
  let ref: Timed;
  if (fs.existsSync(cacheFile)) {
    ref = JSON.parse(fs.readFileSync(cacheFile, 'utf8')) as Timed;
    console.log(`# torch reference: cached ${path.relative(root, cacheFile)}`);
  } else {
    ref = timed('/usr/bin/python3', [path.join(root, 'scripts', 'large_reference.py'), '--model', model, '--ids', ids.join(','), '--layer', String(layer), '--steps', String(steps), '--threads', String(cpuCores())], torchEnv('tuned'));
    if (ref.status !== 0) throw new Error(`large-check: the torch reference failed:\n${ref.stderr}`);
    fs.mkdirSync(path.dirname(cacheFile), { recursive: true });
    fs.writeFileSync(cacheFile, JSON.stringify(ref));
  }
  const r = jsonLine(ref.stdout, 'torch reference');

  const summary: Record<string, unknown> = {
    bench: 'large-check', model, weights_dtype: dtype, layer, tokens: ids.length, steps,
    checkpoint_mib: Math.round(fs.statSync(path.join(model, 'model.safetensors')).size / 2 ** 20),
    nla_activations: { seconds: act.seconds, max_rss_mib: act.maxRssMiB, exit: act.status, gpu_errors: actErrors.length, first_gpu_error: actErrors[0] },
    nla_generate: { seconds: gen.seconds, max_rss_mib: gen.maxRssMiB, exit: gen.status, gpu_errors: genErrors.length, first_gpu_error: genErrors[0], ...(nlaGen ? { inner_seconds: nlaGen.seconds } : {}) },
    torch: { seconds: ref.seconds, max_rss_mib: ref.maxRssMiB, inner_seconds: r.seconds, torch: r.torch, threads: r.threads },
  };
  summary.rss_over_checkpoint = +(act.maxRssMiB / (summary.checkpoint_mib as number)).toFixed(2);
  if (nlaAct) {
    const errs = rowRelErrors(nlaAct.activations as number[][], r.activations as number[][]);
    const worst = Math.max(...errs);
    summary.activations = { max_row_rel_l2: +worst.toPrecision(3), median_row_rel_l2: +[...errs].sort((a, b) => a - b)[errs.length >> 1]!.toPrecision(3), tol: ACT_TOL, pass: worst <= ACT_TOL && actErrors.length === 0 };
  }
  if (nlaGen) {
    const a = nlaGen.tokens as number[], b = r.tokens as number[], gaps = r.top2_gap as number[];
    let compared = 0, verdict = 'equal';
    for (let i = 0; i < b.length; i++) {
      if (a[i] === b[i]) { compared++; continue; }
      verdict = gaps[i]! <= TIE_GAP ? `near tie at step ${i} (gap ${gaps[i]!.toExponential(2)}); not comparable after it` : `differs at step ${i} (reference gap ${gaps[i]!.toExponential(2)})`;
      break;
    }
    summary.greedy = { nla: a, torch: b, min_top2_gap: +Math.min(...gaps).toExponential(2), steps_equal: compared, verdict, pass: !verdict.startsWith('differs') && genErrors.length === 0 };
  }
  console.log(JSON.stringify(summary));
  const out = arg('json-out');
  if (out) {
    fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
    fs.writeFileSync(out, JSON.stringify(summary, null, 2) + '\n');
  }
  const s = summary as { activations?: { max_row_rel_l2: number; pass: boolean }; greedy?: { verdict: string; pass: boolean } };
  console.log(`# ${path.basename(model)} (${String(summary.checkpoint_mib)} MiB), weights ${dtype} on the GPU`);
  console.log(`# nla activations: ${act.seconds} s, peak RSS ${act.maxRssMiB} MiB (${String(summary.rss_over_checkpoint)}x the checkpoint; target < 1.5x), GPU errors ${actErrors.length}; layer ${layer} max row rel. error ${s.activations?.max_row_rel_l2 ?? 'n/a'} (target 2e-3): ${s.activations?.pass ? 'PASS' : 'FAIL'}`);
  console.log(`# nla generate: ${gen.seconds} s, peak RSS ${gen.maxRssMiB} MiB, GPU errors ${genErrors.length}; greedy ${steps} tokens ${s.greedy?.verdict ?? 'n/a'}: ${s.greedy?.pass ? 'PASS' : 'FAIL'}`);
  console.log(`# torch float32: ${ref.seconds} s, peak RSS ${ref.maxRssMiB} MiB`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().then(
    () => process.exit(0),
    (e) => {
      console.error(e instanceof Error ? e.stack ?? e.message : e);
      process.exit(1);
    },
  );
}

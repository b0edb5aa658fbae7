// Matmul throughput: the variant select.ts picks for each shape (forward and the two backward
// products of a 2048x3072x768 linear layer, read through transposed views as autograd does),
// every variant at 1024^3, the fixed cost of a small dispatch when batched, and PyTorch on the
// CPU for the same shapes (bench/matmul_torch.py).
//
// Run: npm run bench -- matmul [--no-torch] [--no-variants] [--rounds N] [--min-ms N]
// Timing: one warm-up call (compiles), then `rounds` rounds of back-to-back calls recorded into
// the queue (a submit per 32 dispatches) and awaited with sync(); each round lasts at least min-ms. "ms" is the best round
// (the machine's speed when nothing else runs), "ms_median" the median round.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { softwareSubgroupLanes } from '../src/kernels/matmul/common.js';
import { launchTiled } from '../src/kernels/matmul/register-tiled.js';
import { allMatmulVariants, pickMatmul } from '../src/kernels/matmul/select.js';
import { subgroupConfig } from '../src/kernels/matmul/subgroup-vec4.js';
import type { MatmulProblem, MatmulVariant } from '../src/kernels/matmul/types.js';
import * as T from '../src/tensor/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));

interface Shape { label: string; m: number; n: number; k: number; aT: boolean; bT: boolean }

export const SHAPES: Shape[] = [
  { label: '256^3', m: 256, n: 256, k: 256, aT: false, bT: false },
  { label: '512^3', m: 512, n: 512, k: 512, aT: false, bT: false },
  { label: '1024^3', m: 1024, n: 1024, k: 1024, aT: false, bT: false },
  { label: '2048^3', m: 2048, n: 2048, k: 2048, aT: false, bT: false },
  { label: 'fwd x@W', m: 2048, n: 3072, k: 768, aT: false, bT: false },
  { label: 'dA=dC@W^T', m: 2048, n: 768, k: 3072, aT: false, bT: true },
  { label: 'dW=X^T@dC', m: 768, n: 3072, k: 2048, aT: true, bT: false },
];

function argNum(args: string[], name: string, def: number): number {
  const i = args.indexOf('--' + name);
  if (i < 0) return def;
  const v = Number(args[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`bench/matmul: --${name} needs a positive number, got ${args[i + 1]}`);
  return v;
}

/** Random operands for a shape; transposed operands are stored the other way round and viewed through .transpose(). */
function operands(s: Shape): { a: T.Tensor; b: T.Tensor; dispose: () => void } {
  const rnd = (n: number, seed: number) => {
    let x = seed >>> 0;
    return Float32Array.from({ length: n }, () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32) - 0.5);
  };
  const as = T.Tensor.from(rnd(s.m * s.k, 1), s.aT ? [s.k, s.m] : [s.m, s.k]);
  const bs = T.Tensor.from(rnd(s.k * s.n, 2), s.bT ? [s.n, s.k] : [s.k, s.n]);
  const a = s.aT ? as.transpose() : as, b = s.bT ? bs.transpose() : bs;
  return { a, b, dispose: () => [a, b, as, bs].forEach((t) => t.dispose()) };
}

/** The problem ops/matmul.ts would build for 2-D operands. */
function problem(a: T.Tensor, b: T.Tensor, out: T.Tensor): MatmulProblem {
  const op = (t: T.Tensor) => ({ buffer: t.buffer, dtype: t.dtype, offset: t.offset, batchStride: 0, rowStride: t.strides[0], colStride: t.strides[1] });
  return { batch: 1, m: a.shape[0], n: b.shape[1], k: a.shape[1], a: op(a), b: op(b), out: out.buffer };
}

/** Best and median ms per call of fn (recorded back to back, one sync per round). */
async function time(fn: () => void, rounds: number, minMs: number): Promise<{ best: number; median: number }> {
  fn();
  await T.sync(); // compile + first run
  let t = performance.now();
  fn();
  await T.sync();
  const once = performance.now() - t;
  const reps = Math.max(1, Math.min(200, Math.ceil(minMs / Math.max(once, 0.01))));
  const ms: number[] = [];
  for (let r = 0; r < rounds; r++) {
    t = performance.now();
    for (let i = 0; i < reps; i++) fn();
    await T.sync();
    ms.push((performance.now() - t) / reps);
  }
  ms.sort((x, y) => x - y);
  return { best: ms[0], median: ms[Math.floor(ms.length / 2)] };
}

function hasAvx512(): boolean {
  try {
    return /\bavx512f\b/.test(fs.readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    return false;
  }
}

function findTorchPython(): string | undefined {
  for (const py of ['python3', '/usr/bin/python3']) {
    if (spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0) return py;
  }
  return undefined;
}

const gf = (s: { m: number; n: number; k: number }, ms: number) => (2 * s.m * s.n * s.k) / (ms * 1e6);
const layoutOf = (s: Shape) => `${s.aT ? 'A^T' : 'A'} @ ${s.bT ? 'B^T' : 'B'}`;

export async function run(args: string[] = []): Promise<Record<string, unknown>[]> {
  const rounds = argNum(args, 'rounds', 3), minMs = argNum(args, 'min-ms', 250);
  const g = await T.initGpu();
  const adapter = T.adapterName(g.info);
  const cpus = os.cpus();
  const out: Record<string, unknown>[] = [];
  const emit = (o: Record<string, unknown>) => {
    out.push(o);
    console.log(JSON.stringify(o));
  };
  console.log(`# machine: ${cpus[0]?.model ?? 'unknown CPU'}, ${cpus.length} cores, node ${process.version}`);
  console.log(`# adapter: ${adapter} (${g.info.isSoftware ? 'software: lavapipe/llvmpipe' : 'hardware'}; subgroups ${g.hasSubgroups}, shader-f16 ${g.hasF16})${process.env.LP_NUM_THREADS ? `, LP_NUM_THREADS=${process.env.LP_NUM_THREADS}` : ''}`);
  console.log(`# shapes (m x n x k): ${SHAPES.map((s) => `${s.label} ${s.m}x${s.n}x${s.k} ${layoutOf(s)}`).join('; ')}`);
  console.log(`# timing: best of ${rounds} rounds of >= ${minMs} ms, all calls of a round recorded back to back, one sync`);

  // 1. The chosen variant per shape, through the matmul op.
  const rows: { s: Shape; variant: string; ms: number; median: number }[] = [];
  for (const s of SHAPES) {
    const { a, b, dispose } = operands(s);
    const y0 = T.Tensor.empty([s.m, s.n]);
    const variant = pickMatmul(problem(a, b, y0)).name;
    y0.dispose();
    const r = await time(() => T.matmul(a, b).dispose(), rounds, minMs);
    dispose();
    rows.push({ s, variant, ms: r.best, median: r.median });
    emit({ bench: 'matmul', engine: 'nla', variant, m: s.m, n: s.n, k: s.k, layout: layoutOf(s), gflops: +gf(s, r.best).toFixed(1), ms: +r.best.toFixed(2), ms_median: +r.median.toFixed(2), adapter });
  }

  // 2. Every variant at 1024^3 (row-major operands), so the choice is visible.
  const perVariant: { v: MatmulVariant; ms: number }[] = [];
  if (!args.includes('--no-variants')) {
    const s = SHAPES.find((x) => x.label === '1024^3')!;
    const { a, b, dispose } = operands(s);
    const y = T.Tensor.empty([s.m, s.n]);
    const p = problem(a, b, y);
    for (const v of allMatmulVariants()) {
      if (!v.supports(p)) {
        console.log(`# variant ${v.name}: not available on this adapter/layout`);
        continue;
      }
      const r = await time(() => v.launch(p), rounds, minMs);
      perVariant.push({ v, ms: r.best });
      emit({ bench: 'matmul-variant', variant: v.name, m: s.m, n: s.n, k: s.k, gflops: +gf(s, r.best).toFixed(1), ms: +r.best.toFixed(2), ms_median: +r.median.toFixed(2), adapter, describe: v.describe });
    }
    // The scalar-load path on its own (what an unaligned layout costs): both operands scalar.
    const lanes = softwareSubgroupLanes();
    if (lanes) {
      const r = await time(() => launchTiled(p, subgroupConfig(lanes), 's', 's'), rounds, minMs);
      const name = 'subgroup-scalar [both operands scalar]';
      perVariant.push({ v: { name, describe: 'subgroup-scalar forced to scalar loads for A and B', supports: () => true, launch: () => {} }, ms: r.best });
      emit({ bench: 'matmul-variant', variant: name, m: s.m, n: s.n, k: s.k, gflops: +gf(s, r.best).toFixed(1), ms: +r.best.toFixed(2), ms_median: +r.median.toFixed(2), adapter });
    }
    y.dispose();
    dispose();
  }

  // 3. Fixed cost of a small dispatch: 1000 tiny elementwise ops recorded back to back.
  {
    const x = T.Tensor.from(new Float32Array(64).fill(1), [64]);
    const n = 1000;
    const r = await time(() => {
      for (let i = 0; i < n; i++) T.add(x, x).dispose();
    }, rounds, 0.01);
    x.dispose();
    emit({ bench: 'dispatch', what: '1000 add([64]) back to back', us_per_dispatch: +((r.best * 1000) / n).toFixed(1), us_median: +((r.median * 1000) / n).toFixed(1), adapter });
  }

  // 4. PyTorch on the CPU for the same shapes: as installed, and with OpenBLAS's AVX-512 kernels
  // forced (Debian's OpenBLAS 0.3.21 does not know this Zen CPU and picks its Haswell kernels).
  const torch = new Map<string, number>(), torchTuned = new Map<string, number>();
  if (args.includes('--no-torch')) console.log('# torch: skipped (--no-torch)');
  else {
    const py = findTorchPython();
    if (!py) console.log('# torch: skipped (python3 -c "import torch" fails; on Debian: apt-get install python3-torch)');
    else {
      const shapes = JSON.stringify(SHAPES.map(({ label, m, n, k, aT, bT }) => ({ label, m, n, k, aT, bT })));
      const torchRun = (config: string, env: NodeJS.ProcessEnv, into: Map<string, number>) => {
        const text = execFileSync(py, [path.join(here, 'matmul_torch.py'), '--shapes', shapes, '--rounds', String(rounds), '--min-ms', String(minMs)], { encoding: 'utf8', env });
        for (const line of text.trim().split('\n')) {
          if (!line.startsWith('{')) {
            console.log(`${line} [${config}]`);
            continue;
          }
          const o: Record<string, unknown> = { ...(JSON.parse(line) as Record<string, unknown>), config };
          emit(o);
          into.set(String(o.label), Number(o.gflops));
        }
      };
      torchRun('as installed', process.env, torch);
      if (hasAvx512()) torchRun('tuned', { ...process.env, OPENBLAS_CORETYPE: 'SkylakeX' }, torchTuned);
    }
  }

  // 5. Table.
  const pad = (x: unknown, w: number) => String(x).padStart(w);
  console.log(`#\n# ${'shape'.padEnd(11)} ${'m x n x k'.padEnd(16)} ${'layout'.padEnd(10)} ${'variant'.padEnd(18)} ${pad('ms', 8)} ${pad('GFLOP/s', 8)} ${pad('median', 8)} ${pad('torch', 8)} ${pad('nla/torch', 9)} ${pad('tuned', 8)} ${pad('nla/tuned', 9)}`);
  for (const r of rows) {
    const t = torch.get(r.s.label), tt = torchTuned.get(r.s.label);
    const mine = gf(r.s, r.ms);
    console.log(`# ${r.s.label.padEnd(11)} ${`${r.s.m}x${r.s.n}x${r.s.k}`.padEnd(16)} ${layoutOf(r.s).padEnd(10)} ${r.variant.padEnd(18)} ${pad(r.ms.toFixed(1), 8)} ${pad(mine.toFixed(1), 8)} ${pad(gf(r.s, r.median).toFixed(1), 8)} ${pad(t ? t.toFixed(1) : '-', 8)} ${pad(t ? (mine / t).toFixed(2) : '-', 9)} ${pad(tt ? tt.toFixed(1) : '-', 8)} ${pad(tt ? (mine / tt).toFixed(2) : '-', 9)}`);
  }
  if (perVariant.length) {
    console.log(`#\n# variants at 1024^3 (A @ B), in ${g.info.isSoftware ? 'software' : 'hardware'} preference order where applicable:`);
    for (const { v, ms } of perVariant) console.log(`#   ${v.name.padEnd(40)} ${pad(gf({ m: 1024, n: 1024, k: 1024 }, ms).toFixed(1), 6)} GFLOP/s  ${v.describe ?? ''}`);
  }
  return out;
}

// Matmul throughput: the variant select.ts picks for each shape (forward and the two backward
// products of a 2048x3072x768 linear layer, read through transposed views as autograd does)
// against PyTorch on the CPU (bench/matmul_torch.py) tuned and as installed; then every variant at
// 1024^3 and the fixed cost of a small dispatch when batched.
//
// Run: npm run bench -- matmul [--rounds 3] [--min-ms 250] [--threads <cores>] [--no-torch] [--no-variants]
// Method (bench/common.ts): each round runs one fresh process per engine, in turn nla, torch as
// installed, torch tuned. A process times each shape once: one warm-up call (compiles), then calls
// recorded back to back (a submit per 32 dispatches) for at least min-ms, awaited with one sync;
// ms = mean per call. Per shape and engine: median and [min, max] over rounds;
// ratio = torch median ms / nla median ms (= nla GFLOP/s over torch GFLOP/s), ratio_tuned likewise.
// Internal: --child nla|extras runs nla's side in this process and prints JSON lines.
import * as path from 'node:path';
import { softwareSubgroupLanes } from '../src/kernels/matmul/common.js';
import { launchTiled } from '../src/kernels/matmul/register-tiled.js';
import { allMatmulVariants, pickMatmul } from '../src/kernels/matmul/select.js';
import { subgroupConfig } from '../src/kernels/matmul/subgroup-vec4.js';
import type { MatmulProblem, MatmulVariant } from '../src/kernels/matmul/types.js';
import * as T from '../src/tensor/index.js';
import {
  argNum, argStr, benchDir, cpuCores, dispatchProbe, emitter, findTorchPython, fmtRange, hasFlag, machineLine, nlaChild, round,
  runChild, summarize, type Summary, TORCH_MISSING, torchEnv, type TorchConfig,
} from './common.js';

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

/** ms per call of fn: a warm-up call (compile), a timed call to size the block, then a block of
 * back-to-back calls lasting >= minMs, awaited with one sync. */
async function timeBlock(fn: () => void, minMs: number): Promise<number> {
  fn();
  await T.sync();
  let t = performance.now();
  fn();
  await T.sync();
  const once = performance.now() - t;
  const reps = Math.max(1, Math.min(200, Math.ceil(minMs / Math.max(once, 0.01))));
  t = performance.now();
  for (let i = 0; i < reps; i++) fn();
  await T.sync();
  return (performance.now() - t) / reps;
}

const gf = (s: { m: number; n: number; k: number }, ms: number) => (2 * s.m * s.n * s.k) / (ms * 1e6);
const layoutOf = (s: Shape) => `${s.aT ? 'A^T' : 'A'} @ ${s.bT ? 'B^T' : 'B'}`;

/** Child side, one round: the chosen variant per shape, through the matmul op. */
async function nlaRound(minMs: number, emit: (o: Record<string, unknown>) => void): Promise<void> {
  const g = await T.initGpu();
  const adapter = T.adapterName(g.info);
  console.log(`# adapter: ${adapter} (${g.info.isSoftware ? 'software: lavapipe/llvmpipe' : 'hardware'}; subgroups ${g.hasSubgroups}, shader-f16 ${g.hasF16}), LP_NUM_THREADS=${process.env.LP_NUM_THREADS ?? '-'}`);
  for (const s of SHAPES) {
    const { a, b, dispose } = operands(s);
    const y0 = T.Tensor.empty([s.m, s.n]);
    const variant = pickMatmul(problem(a, b, y0)).name;
    y0.dispose();
    const ms = await timeBlock(() => T.matmul(a, b).dispose(), minMs);
    dispose();
    emit({ bench: 'matmul-round', engine: 'nla', label: s.label, variant, m: s.m, n: s.n, k: s.k, ms: round(ms, 3), gflops: round(gf(s, ms), 1), adapter });
  }
}

/** Child side, after the rounds: every variant at 1024^3 (best of 3 blocks) and the dispatch probe. */
async function nlaExtras(minMs: number, emit: (o: Record<string, unknown>) => void): Promise<void> {
  const g = await T.initGpu();
  const adapter = T.adapterName(g.info);
  const s = SHAPES.find((x) => x.label === '1024^3')!;
  const { a, b, dispose } = operands(s);
  const y = T.Tensor.empty([s.m, s.n]);
  const p = problem(a, b, y);
  const best = async (fn: () => void) => Math.min(await timeBlock(fn, minMs), await timeBlock(fn, minMs), await timeBlock(fn, minMs));
  const variants: MatmulVariant[] = [...allMatmulVariants()];
  // The scalar-load path on its own (what an unaligned layout costs): both operands scalar.
  const lanes = softwareSubgroupLanes();
  if (lanes) variants.push({ name: 'subgroup-scalar [both operands scalar]', describe: 'subgroup-scalar forced to scalar loads for A and B', supports: () => true, launch: (q) => launchTiled(q, subgroupConfig(lanes), 's', 's') });
  for (const v of variants) {
    if (!v.supports(p)) {
      console.log(`# variant ${v.name}: not available on this adapter/layout`);
      continue;
    }
    const ms = await best(() => v.launch(p));
    emit({ bench: 'matmul-variant', variant: v.name, m: s.m, n: s.n, k: s.k, gflops: round(gf(s, ms), 1), ms: round(ms, 2), adapter, describe: v.describe });
  }
  y.dispose();
  dispose();
  emit({ bench: 'dispatch', what: '1000 add([64]) back to back, one sync', ...(await dispatchProbe()), adapter });
}

interface Side { label: string; run: () => Record<string, unknown>[] }

export async function run(args: string[] = []): Promise<Record<string, unknown>[]> {
  const rounds = argNum(args, 'rounds', 3, { integer: true }), minMs = argNum(args, 'min-ms', 250);
  const threads = argNum(args, 'threads', cpuCores(), { integer: true });
  const { out, emit } = emitter();
  const child = argStr(args, 'child');
  if (child === 'nla') {
    await nlaRound(minMs, emit);
    return out;
  }
  if (child === 'extras') {
    await nlaExtras(minMs, emit);
    return out;
  }

  const sides: Side[] = [{ label: 'nla', run: () => runChild(...nlaChild('matmul', ['--child', 'nla', '--min-ms', String(minMs)])) }];
  const py = hasFlag(args, 'no-torch') ? undefined : findTorchPython();
  if (hasFlag(args, 'no-torch')) console.log('# torch: skipped (--no-torch)');
  else if (!py) console.log(TORCH_MISSING);
  else {
    const shapes = JSON.stringify(SHAPES.map(({ label, m, n, k, aT, bT }) => ({ label, m, n, k, aT, bT })));
    const torch = (config: TorchConfig): Side => ({
      label: `torch ${config}`,
      run: () => runChild(py, [path.join(benchDir, 'matmul_torch.py'), '--shapes', shapes, '--min-ms', String(minMs), '--threads', String(threads), '--config', config], torchEnv(config), config),
    });
    sides.push(torch('as installed'), torch('tuned'));
  }
  console.log(machineLine());
  console.log(`# shapes (m x n x k): ${SHAPES.map((s) => `${s.label} ${s.m}x${s.n}x${s.k} ${layoutOf(s)}`).join('; ')}`);
  console.log(`# matmul: ${rounds} round(s); each round runs ${sides.map((s) => s.label).join(', ')} in turn, one fresh process each; per shape a warm-up call, then back-to-back calls for >= ${minMs} ms, one sync`);

  // ms per (side, shape) over rounds.
  const ms = new Map<string, number[]>();
  const variantOf = new Map<string, string>();
  for (let r = 1; r <= rounds; r++) {
    for (const s of sides) {
      for (const o of s.run()) {
        emit({ ...o, round: r });
        const key = `${s.label}\0${String(o.label)}`;
        ms.set(key, [...(ms.get(key) ?? []), Number(o.ms)]);
        if (s.label === 'nla') variantOf.set(String(o.label), String(o.variant));
      }
    }
  }
  const sum = (side: string, shape: Shape): Summary | undefined => {
    const xs = ms.get(`${side}\0${shape.label}`);
    return xs?.length ? summarize(xs) : undefined;
  };

  // Per shape: one line with each engine's median and range and both ratios.
  const rows: { s: Shape; nla: Summary; installed?: Summary; tuned?: Summary }[] = [];
  for (const s of SHAPES) {
    const nla = sum('nla', s)!, installed = sum('torch as installed', s), tuned = sum('torch tuned', s);
    rows.push({ s, nla, installed, tuned });
    const eng = (x: Summary | undefined) => x && { ms: round(x.median, 3), ms_min: round(x.min, 3), ms_max: round(x.max, 3), gflops: round(gf(s, x.median), 1) };
    emit({
      bench: 'matmul', label: s.label, m: s.m, n: s.n, k: s.k, layout: layoutOf(s), variant: variantOf.get(s.label), rounds,
      nla: eng(nla), ...(tuned ? { torch_tuned: eng(tuned), ratio_tuned: round(tuned.median / nla.median, 3) } : {}),
      ...(installed ? { torch: eng(installed), ratio: round(installed.median / nla.median, 3) } : {}),
    });
  }

  // Table: GFLOP/s at each engine's median, with the range of its rounds; tuned first (the headline).
  const pad = (x: unknown, w: number) => String(x).padStart(w);
  const gfRange = (s: Shape, x: Summary | undefined) => (x ? `${gf(s, x.median).toFixed(1)} [${gf(s, x.max).toFixed(1)}-${gf(s, x.min).toFixed(1)}]` : '-');
  console.log(`#\n# GFLOP/s at the median of ${rounds} round(s) [range over rounds]; nla/x = x's median ms / nla's (throughput ratio)`);
  console.log(`# ${'shape'.padEnd(11)} ${'m x n x k'.padEnd(16)} ${'layout'.padEnd(9)} ${'variant'.padEnd(15)} ${pad('nla', 22)} ${pad('torch tuned', 22)} ${pad('nla/tuned', 9)} ${pad('torch installed', 22)} ${pad('nla/torch', 9)}`);
  for (const { s, nla, installed, tuned } of rows) {
    const rel = (x: Summary | undefined) => (x ? (x.median / nla.median).toFixed(3) : '-');
    console.log(`# ${s.label.padEnd(11)} ${`${s.m}x${s.n}x${s.k}`.padEnd(16)} ${layoutOf(s).padEnd(9)} ${String(variantOf.get(s.label)).padEnd(15)} ${pad(gfRange(s, nla), 22)} ${pad(gfRange(s, tuned), 22)} ${pad(rel(tuned), 9)} ${pad(gfRange(s, installed), 22)} ${pad(rel(installed), 9)}`);
  }
  console.log(`# nla ms per shape, median [min - max]: ${rows.map((r) => `${r.s.label} ${fmtRange(r.nla, 2)}`).join('; ')}`);

  if (!hasFlag(args, 'no-variants')) {
    const extras = runChild(...nlaChild('matmul', ['--child', 'extras', '--min-ms', String(minMs)]));
    extras.forEach(emit);
    const vs = extras.filter((o) => o.bench === 'matmul-variant');
    console.log(`#\n# variants at 1024^3 (A @ B), best of 3 blocks, in software preference order where applicable:`);
    for (const v of vs) console.log(`#   ${String(v.variant).padEnd(40)} ${pad(Number(v.gflops).toFixed(1), 6)} GFLOP/s  ${String(v.describe ?? '')}`);
    const d = extras.find((o) => o.bench === 'dispatch');
    if (d) console.log(`# dispatch: ${String(d.us_per_dispatch)} us per tiny dispatch (best; median ${String(d.us_median)}) when 1,000 are recorded back to back`);
  }
  return out;
}

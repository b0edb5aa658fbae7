// Helpers shared by the benches that set nla against PyTorch (train.ts, matmul.ts): flags,
// finding torch, the two PyTorch configurations, rounds of one fresh process per engine run
// alternately, and median/range summaries.
//
// Why separate processes, alternating: on this host PyTorch's step time moved 115-315 ms between
// runs while nla's moved ~10%, so engines timed one after the other in a single run compare
// different machines. One process per engine per round, nla and the two torch configurations
// interleaved round after round, exposes both to the same drift; the median over rounds is
// robust to one disturbed round and [min, max] shows the spread.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as T from '../src/tensor/index.js';

export const benchDir = path.dirname(fileURLToPath(import.meta.url));

/** A positive number flag (--name N), or def when absent. */
export function argNum(args: string[], name: string, def: number, opts: { integer?: boolean } = {}): number {
  const i = args.indexOf('--' + name);
  if (i < 0) return def;
  const v = Number(args[i + 1]);
  if (!Number.isFinite(v) || v <= 0 || (opts.integer && !Number.isInteger(v))) {
    throw new Error(`bench: --${name} needs a positive ${opts.integer ? 'integer' : 'number'}, got ${args[i + 1]}`);
  }
  return v;
}

/** A count flag that may be 0 (--warmup 0), or def when absent. */
export function argCount(args: string[], name: string, def: number): number {
  const i = args.indexOf('--' + name);
  if (i < 0) return def;
  const v = Number(args[i + 1]);
  if (!Number.isInteger(v) || v < 0) throw new Error(`bench: --${name} needs a whole number >= 0, got ${args[i + 1]}`);
  return v;
}

/** A string flag (--name value), or undefined. */
export function argStr(args: string[], name: string): string | undefined {
  const i = args.indexOf('--' + name);
  return i < 0 ? undefined : args[i + 1];
}

export const hasFlag = (args: string[], name: string) => args.includes('--' + name);

/** Cores this process may use: what PyTorch's threads are pinned to. */
export const cpuCores = () => os.availableParallelism();

/** A python3 that can import torch (Debian's python3-torch lives under /usr/bin/python3), or undefined. */
export function findTorchPython(): string | undefined {
  for (const py of ['python3', '/usr/bin/python3']) {
    if (spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0) return py;
  }
  return undefined;
}

export const TORCH_MISSING = '# torch: skipped (python3 -c "import torch" fails; on Debian: apt-get install python3-torch libopenblas0-pthread)';

function cpuFlags(): Set<string> {
  try {
    const m = /^flags\s*:\s*(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    return new Set(m ? m[1].split(/\s+/) : []);
  } catch {
    return new Set();
  }
}

/** The OpenBLAS kernel family for this CPU, from its instruction-set flags (OpenBLAS 0.3.21 knows
 * no Zen past 3 by model number; the flags say which of its Intel kernels fit). */
export function openblasCoretype(): string | undefined {
  const f = cpuFlags();
  if (f.has('avx512f') && f.has('avx512_bf16')) return 'Cooperlake';
  if (f.has('avx512f')) return 'SkylakeX';
  if (f.has('avx2')) return 'Haswell';
  return undefined;
}

export type TorchConfig = 'tuned' | 'as installed';

// Variables that change what PyTorch/OpenBLAS/OpenMP do; "as installed" clears them so the
// package's own choices are measured whatever the calling shell exports (this workplace's
// environment sets OPENBLAS_CORETYPE=Haswell, which older "as installed" runs inherited).
const TUNING_VARS = ['OPENBLAS_CORETYPE', 'OMP_WAIT_POLICY', 'GOMP_SPINCOUNT', 'OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS', 'OMP_PROC_BIND'];

/** Environment of a PyTorch process. Both configurations pin PyTorch's threads to the cores (the
 * scripts call torch.set_num_threads); "tuned" also stops idle OpenMP threads spinning against
 * OpenBLAS's (OMP_WAIT_POLICY=PASSIVE) and names the OpenBLAS kernels for this CPU. */
export function torchEnv(config: TorchConfig): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of TUNING_VARS) delete env[k];
  if (config === 'tuned') {
    env.OMP_WAIT_POLICY = 'PASSIVE';
    const ct = openblasCoretype();
    if (ct) env.OPENBLAS_CORETYPE = ct;
  }
  return env;
}

/** Median and range of per-round values. */
export interface Summary { median: number; min: number; max: number; rounds: number[] }

export function summarize(xs: number[]): Summary {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  const median = n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  return { median, min: s[0], max: s[n - 1], rounds: xs };
}

export const round = (x: number, digits: number) => +x.toFixed(digits);

/** Collects and prints JSON lines (one object per measurement, with a "bench" key). */
export function emitter(): { out: Record<string, unknown>[]; emit: (o: Record<string, unknown>) => void } {
  const out: Record<string, unknown>[] = [];
  return { out, emit: (o) => { out.push(o); console.log(JSON.stringify(o)); } };
}

/** Run a child process to completion and return the JSON objects it printed (one per line).
 * Its "#" lines are passed through; stderr (Dawn's start-up warnings) only on failure. */
export function runChild(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, tag = ''): Record<string, unknown>[] {
  const r = spawnSync(cmd, args, { env, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) {
    throw new Error(`bench: ${path.basename(cmd)} ${args.slice(0, 4).join(' ')} ... failed (${r.error?.message ?? `exit ${r.status}`})\n${r.stderr ?? ''}${r.stdout ?? ''}`);
  }
  const objs: Record<string, unknown>[] = [];
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith('{')) objs.push(JSON.parse(line) as Record<string, unknown>);
    else if (line.startsWith('#')) console.log(tag ? `${line} [${tag}]` : line);
  }
  return objs;
}

/** Command line and environment that run `bench/main.ts <bench> args` in a fresh node with this
 * one's loader flags (tsx). NLA_PROFILE is dropped: it would time every dispatch in its own pass. */
export function nlaChild(bench: string, args: string[]): [string, string[], NodeJS.ProcessEnv] {
  const env = { ...process.env };
  delete env.NLA_PROFILE;
  return [process.execPath, [...process.execArgv, path.join(benchDir, 'main.ts'), bench, ...args], env];
}

/**
 * Fixed cost of a dispatch when batched: 1,000 tiny elementwise ops recorded back to back and
 * awaited with one sync (host recording, bind groups, the driver's launch), best of `rounds`.
 */
export async function dispatchProbe(rounds = 3): Promise<{ us_per_dispatch: number; us_median: number }> {
  const x = T.Tensor.from(new Float32Array(64).fill(1), [64]);
  const n = 1000;
  const per: number[] = [];
  for (let r = 0; r <= rounds; r++) {
    const t = performance.now();
    for (let i = 0; i < n; i++) T.add(x, x).dispose();
    await T.sync();
    if (r > 0) per.push(((performance.now() - t) * 1000) / n); // round 0 compiles
  }
  x.dispose();
  const s = summarize(per);
  return { us_per_dispatch: round(s.min, 1), us_median: round(s.median, 1) };
}

export function machineLine(): string {
  const cpus = os.cpus();
  return `# machine: ${cpus[0]?.model ?? 'unknown CPU'}, ${cpus.length} cores (${cpuCores()} usable), node ${process.version}, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`;
}

/** "median [min - max]" with `d` decimals. */
export const fmtRange = (s: Summary, d = 1) => `${s.median.toFixed(d)} [${s.min.toFixed(d)} - ${s.max.toFixed(d)}]`;

// Row kernels (RMSNorm forward and backward, softmax, fused cross-entropy) in both RowMode
// layouts: one workgroup per row ('wg') and one thread per row ('thread'). This is the bench
// behind rowLaunch()'s choice in src/kernels/softmax.ts.
//
// Run: npm run bench -- rows [--min-ms N]
// Shapes: rows of a model's width (stories260K d=64 over a 32 x 80 batch, d=256/768 over 8 x 128)
// and of a vocab (512, 4096). Timing as in bench/matmul.ts: calls recorded into one submit per
// round, best of 3 rounds.
import * as os from 'node:os';
import { adapterName } from '../src/tensor/device.js';
import * as T from '../src/tensor/index.js';

interface Case { label: string; rows: number; n: number; kind: 'rmsnorm' | 'softmax' | 'ce' }

const CASES: Case[] = [
  { label: 'rmsnorm fwd+bwd', rows: 2560, n: 64, kind: 'rmsnorm' },
  { label: 'rmsnorm fwd+bwd', rows: 1024, n: 256, kind: 'rmsnorm' },
  { label: 'rmsnorm fwd+bwd', rows: 1024, n: 768, kind: 'rmsnorm' },
  { label: 'softmax', rows: 2560, n: 80, kind: 'softmax' },
  { label: 'softmax', rows: 1024, n: 1024, kind: 'softmax' },
  { label: 'cross-entropy fwd', rows: 2560, n: 512, kind: 'ce' },
  { label: 'cross-entropy fwd', rows: 1024, n: 4096, kind: 'ce' },
];

function rnd(n: number, seed: number): Float32Array {
  let x = seed >>> 0;
  return Float32Array.from({ length: n }, () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 4 - 2);
}

function makeCall(c: Case): { call: () => void; dispose: () => void } {
  const x = T.param(T.Tensor.from(rnd(c.rows * c.n, 1), [c.rows, c.n]));
  if (c.kind === 'rmsnorm') {
    const w = T.param(T.Tensor.from(rnd(c.n, 2), [c.n]));
    return {
      call: () => {
        T.tidy(() => T.rmsNorm(x, w, 1e-5).sum().backward());
        T.zeroGrad([x, w]);
      },
      dispose: () => [x, w].forEach((t) => t.dispose()),
    };
  }
  if (c.kind === 'softmax') return { call: () => T.tidy(() => void T.noGrad(() => T.softmax(x))), dispose: () => x.dispose() };
  const t = T.keep(T.Tensor.from(Int32Array.from({ length: c.rows }, (_, i) => (i * 7919) % c.n), [c.rows], 'i32'));
  return { call: () => T.tidy(() => void T.noGrad(() => T.crossEntropy(x, t))), dispose: () => [x, t].forEach((v) => v.dispose()) };
}

async function time(call: () => void, minMs: number): Promise<number> {
  call();
  await T.sync();
  let best = Infinity;
  for (let round = 0; round < 3; round++) {
    let calls = 0;
    const t0 = performance.now();
    do {
      for (let i = 0; i < 8; i++, calls++) call();
      await T.sync();
    } while (performance.now() - t0 < minMs);
    best = Math.min(best, (performance.now() - t0) / calls);
  }
  return best;
}

export async function run(args: string[]): Promise<void> {
  const i = args.indexOf('--min-ms');
  const minMs = i >= 0 ? Number(args[i + 1]) : 200;
  await T.initGpu();
  const adapter = adapterName(T.gpu().info);
  console.log(`# machine: ${os.cpus()[0]?.model ?? '?'}, ${os.cpus().length} cores, node ${process.version}`);
  console.log(`# adapter: ${adapter} (software: ${T.gpu().info.isSoftware})`);
  console.log(`#\n# ${'kernel'.padEnd(20)}${'rows x n'.padEnd(14)}${'wg ms'.padStart(9)}${'thread ms'.padStart(11)}  faster`);
  const saved = process.env.NLA_ROW_MODE;
  for (const c of CASES) {
    const { call, dispose } = makeCall(c);
    const ms: Record<string, number> = {};
    for (const mode of ['wg', 'thread'] as const) {
      process.env.NLA_ROW_MODE = mode;
      ms[mode] = await time(call, minMs);
      console.log(JSON.stringify({ bench: 'rows', kernel: c.label, rows: c.rows, n: c.n, mode, ms: +ms[mode].toFixed(4), adapter }));
    }
    dispose();
    const faster = ms.wg < ms.thread ? 'wg' : 'thread';
    console.log(`# ${c.label.padEnd(20)}${`${c.rows} x ${c.n}`.padEnd(14)}${ms.wg.toFixed(3).padStart(9)}${ms.thread.toFixed(3).padStart(11)}  ${faster} (${(Math.max(ms.wg, ms.thread) / Math.min(ms.wg, ms.thread)).toFixed(1)}x)`);
  }
  if (saved === undefined) delete process.env.NLA_ROW_MODE;
  else process.env.NLA_ROW_MODE = saved;
}

// Linear probe fits: trainProbe (float64 on the CPU, src/nla/probe.ts) against trainProbeGpu
// (the same model on the engine, src/nla/probe-gpu.ts). The world demo fits about 45 of these
// (held summaries, swap probes, probe@P0.9); this bench is behind fitting them on the engine.
//
// Run: npm run bench -- probe [--rounds N]
// Shapes: world-M's rows (6,000 x 128, 8 classes) and stories260K's (8,400 x 64, 8 classes),
// 300 Adam iterations each. Rounds alternate the two sides on the same data; the ratio is the
// median of each side's wall times from that one run. Then the engine alone on the stories
// demo's token probe (20,400 x 64, 513 classes: the previous token of M's text), where the CPU
// would take minutes a fit; its seconds per 100 iterations.
import { adapterName, initGpu } from '../src/tensor/device.js';
import * as T from '../src/tensor/index.js';
import { trainProbe } from '../src/nla/probe.js';
import { trainProbeGpu } from '../src/nla/probe-gpu.js';
import { TOKEN_PROBE_FIT } from '../src/nla/model-text.js';
import { argCount } from './common.js';

const CASES = [
  { label: 'world-M rows', n: 6000, d: 128, k: 8 },
  { label: 'stories260K rows', n: 8400, d: 64, k: 8 },
];

function data(n: number, d: number, k: number) {
  let s = 12345;
  const r = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const y = Int32Array.from({ length: n }, () => Math.floor(r() * k));
  const x = new Float32Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) x[i * d + j] = r() - 0.5 + (j % k === y[i] ? 0.3 : 0);
  return { x, y };
}

const median = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)]!;

export async function run(args: string[]): Promise<void> {
  const rounds = argCount(args, 'rounds', 3);
  await initGpu();
  console.log(`# probe fits, 300 iterations; adapter ${adapterName(T.gpu().info)}; ${rounds} alternating rounds`);
  const rows: string[] = [];
  for (const c of CASES) {
    const { x, y } = data(c.n, c.d, c.k);
    await trainProbeGpu(x, y, c.k, { iters: 5 }); // compile the kernels outside the timing
    const t = { cpu: [] as number[], engine: [] as number[] };
    for (let i = 0; i < rounds; i++) {
      let t0 = performance.now();
      trainProbe(x, y, c.k);
      t.cpu.push((performance.now() - t0) / 1000);
      t0 = performance.now();
      await trainProbeGpu(x, y, c.k);
      t.engine.push((performance.now() - t0) / 1000);
    }
    const out = { bench: 'probe', case: c.label, n: c.n, d: c.d, classes: c.k, cpu_s: median(t.cpu), engine_s: median(t.engine), ratio: median(t.engine) / median(t.cpu), cpu_rounds: t.cpu, engine_rounds: t.engine };
    console.log(JSON.stringify(out));
    rows.push(`| ${c.label} (${c.n} x ${c.d}, ${c.k} classes) | ${out.cpu_s.toFixed(2)} | ${out.engine_s.toFixed(2)} | ${out.ratio.toFixed(2)} |`);
  }
  console.log('# | case | CPU float64 s (median) | engine s (median) | engine / CPU |');
  for (const r of rows) console.log('# ' + r);
  // The stories demo's token probes: full batches against TOKEN_PROBE_FIT's mini-batches, alternating.
  const big = { label: 'token probe of M\'s text', n: 30600, d: 64, k: 513 };
  const { x, y } = data(big.n, big.d, big.k);
  await trainProbeGpu(x, y, big.k, { iters: 5 });
  await trainProbeGpu(x, y, big.k, { ...TOKEN_PROBE_FIT, iters: 5 });
  const t = { full: [] as number[], mini: [] as number[] };
  for (let i = 0; i < rounds; i++) {
    let t0 = performance.now();
    await trainProbeGpu(x, y, big.k, { iters: TOKEN_PROBE_FIT.iters });
    t.full.push((performance.now() - t0) / 1000);
    t0 = performance.now();
    await trainProbeGpu(x, y, big.k, TOKEN_PROBE_FIT);
    t.mini.push((performance.now() - t0) / 1000);
  }
  const out = { bench: 'probe-token-fit', case: big.label, n: big.n, d: big.d, classes: big.k, iters: TOKEN_PROBE_FIT.iters, batch_size: TOKEN_PROBE_FIT.batchSize, full_batch_s: median(t.full), mini_batch_s: median(t.mini), ratio: median(t.mini) / median(t.full), full_rounds: t.full, mini_rounds: t.mini };
  console.log(JSON.stringify(out));
  console.log(`# ${big.label} (${big.n} x ${big.d}, ${big.k} classes), ${out.iters} Adam steps: full batch ${out.full_batch_s.toFixed(2)} s, mini-batches of ${out.batch_size} ${out.mini_batch_s.toFixed(2)} s (median of ${rounds}; ${out.ratio.toFixed(2)} of the time)`);
}

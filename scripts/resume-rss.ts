// Host memory of resuming a training loop's state (weights + AdamW moments, the NLA loops' path:
// saveTrainState / restoreTrainState of src/nla/train-state.ts) against starting fresh (moments
// made as zeros on the GPU by the first step), on one model of scripts/large-model.ts's shapes
// with seeded random f32 weights. One way per process (freed host memory is not all returned to
// the system, so a second measurement in the same process starts above its baseline):
//   node --expose-gc --import tsx scripts/resume-rss.ts --init qwen2.5-0.5b-v32k --blocks 12 --ck runs/rss/ck --way prepare
//   node --expose-gc --import tsx scripts/resume-rss.ts --init qwen2.5-0.5b-v32k --blocks 12 --ck runs/rss/ck --way fresh|resume
// `prepare` writes the checkpoint (after one step with zero gradients). `fresh` takes one step;
// `resume` restores the checkpoint, then takes the same step. With --idle N, the last N blocks
// (and the final norm) have their own optimizer and get no gradient, as the AR of an RL step
// in which no rollout parsed: that optimizer has no moments after the step. Prints JSON lines (MiB): the RSS
// after building the model, after the restore (resume) and after the step, the peak (VmHWM) and
// the pool's live GPU bytes (on lavapipe, GPU buffers are host memory too).
import * as fs from 'node:fs';
import { loadCheckpoint } from '../src/nn/checkpoint.js';
import { initLlamaTensors } from '../src/nn/init.js';
import { Weights } from '../src/nn/weights.js';
import { makeOptimizer } from '../src/nla/optim.js';
import { restoreTrainState, saveTrainState, type TrainParts } from '../src/nla/train-state.js';
import * as T from '../src/tensor/index.js';
import { SeededRng } from '../src/util/rng.js';
import { SHAPES } from './large-model.js';

const opt = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : process.argv[i + 1];
};
const shape = opt('init'), ck = opt('ck'), way = opt('way');
if (!shape || !ck || !way || !['prepare', 'fresh', 'resume'].includes(way)) throw new Error('usage: scripts/resume-rss.ts --init SHAPE [--blocks N] --ck FILE --way prepare|fresh|resume');
const make = SHAPES[shape];
if (!make) throw new Error(`--init: unknown shape ${shape} (known: ${Object.keys(SHAPES).join(', ')})`);

const status = (field: string): number => {
  const m = fs.readFileSync('/proc/self/status', 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
  if (!m) throw new Error(`/proc/self/status: no ${field}`);
  return Math.round(Number(m[1]) / 1024);
};
const mib = (b: number) => Math.round(b / 2 ** 20);

/** Resident MiB by kind of mapping (/proc/self/smaps): the heap, anonymous mappings, memfd, files. */
function residentByKind(): Record<string, number> {
  const out: Record<string, number> = {};
  let kind = '';
  for (const line of fs.readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const head = line.match(/^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/);
    if (head) {
      const name = head[1].trim();
      kind = name === '' ? 'anon' : name.startsWith('[') ? name : name.startsWith('/memfd:') ? 'memfd' : 'file';
      continue;
    }
    const rss = line.match(/^Rss:\s+(\d+) kB/);
    if (rss) out[kind] = (out[kind] ?? 0) + Number(rss[1]) / 1024;
  }
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v >= 1).map(([k, v]) => [k, Math.round(v)]));
}

const log = (event: string, extra: Record<string, unknown> = {}) => {
  global.gc?.();
  console.log(JSON.stringify({ event, way, rssMiB: status('VmRSS'), peakMiB: status('VmHWM'), liveGpuMiB: mib(T.poolStats().liveBytes), byKind: residentByKind(), ...extra }));
};

const t0 = performance.now();
const cfg = { ...make(), nLayers: Number(opt('blocks') ?? make().nLayers) };
await T.initGpu();
const w = new Weights();
for (const [name, h] of initLlamaTensors(cfg, 0)) for (const [n, t] of Weights.fromHost(new Map([[name, h]])).map) w.map.set(n, t);
w.setTrainable(true);
const params = w.params();
const idle = Number(opt('idle') ?? 0);
const idleNames = new Set([...w.map.keys()].filter((n) => n === 'model.norm.weight' || Array.from({ length: idle }, (_, i) => `model.layers.${cfg.nLayers - 1 - i}.`).some((pre) => n.startsWith(pre))));
const active = params.filter((p) => !idleNames.has(p.name!)), idleParams = params.filter((p) => idleNames.has(p.name!));
const optimizer = makeOptimizer(active, { lr: 1e-4, clip: 1 });
const idleOpt = makeOptimizer(idleParams, { lr: 1e-4, clip: 1 });
const parts: TrainParts = { kind: 'rss', weights: { model: w }, optimizers: { model: optimizer, ...(idle ? { idle: idleOpt } : {}) }, rng: new SeededRng(1), identity: { idle } };
await T.sync();
log('built', { params: params.reduce((a, p) => a + p.size, 0), idleParams: idleParams.reduce((a, p) => a + p.size, 0), seconds: +((performance.now() - t0) / 1000).toFixed(1) });

/** One step with zero gradients (the update's memory without a forward's). */
async function step(): Promise<void> {
  for (const p of active) p.grad = T.keep(T.zeros(p.shape));
  await optimizer.step(0);
  await idleOpt.step(0); // no gradients: no update, no moments
  await T.sync();
}

if (way === 'resume') {
  const t = performance.now();
  await restoreTrainState(loadCheckpoint(ck), parts, ck);
  await T.sync();
  log('restored', { seconds: +((performance.now() - t) / 1000).toFixed(1) });
}
await step();
log('stepped');
if (way === 'prepare') {
  await saveTrainState(ck, parts, 1);
  log('saved', { bytes: fs.statSync(ck).size });
}
optimizer.dispose();
idleOpt.dispose();
w.dispose();

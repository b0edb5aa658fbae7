// Peak host memory of saving an NLA: streamed (NLA.save: one parameter read back at a time)
// against the whole-host-copy writer it replaced (writeSafetensors of Weights.toHost()), in one
// process, in alternating order. Before each save the kernel's resident-memory high-water mark
// is reset (/proc/self/clear_refs, Linux), so VmHWM afterwards is that save's own peak; both
// outputs are compared byte for byte. Prints JSON lines (MiB, seconds):
//   node --import tsx scripts/nla-save-rss.ts NLA_DIR OUT_DIR [--rounds 1]
// With --init SHAPE [--blocks N] instead of NLA_DIR, the weights saved are one model of
// scripts/large-model.ts's shape (first N blocks; seeded random f32 weights uploaded a tensor at
// a time): the same writer NLA.save runs per model, at a size one can afford beside other jobs.
//   node --expose-gc --import tsx scripts/nla-save-rss.ts --init qwen2.5-0.5b --blocks 8 OUT_DIR [--only streamed|hostCopy]
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeSafetensors } from '../src/io/safetensors.js';
import { loadNLA } from '../src/nla/nla.js';
import { writeWeights } from '../src/nn/weights-save.js';
import { Weights } from '../src/nn/weights.js';
import { initLlamaTensors } from '../src/nn/init.js';
import { initGpu } from '../src/tensor/device.js';
import { SHAPES } from './large-model.js';

const opt = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : process.argv[i + 1];
};
const positional = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && !all[i - 1]?.startsWith('--'));
const shape = opt('init');
const [dir, out] = shape ? [undefined, positional[0]] : positional;
if ((!shape && !dir) || !out) throw new Error('usage: node --import tsx scripts/nla-save-rss.ts (NLA_DIR | --init SHAPE [--blocks N]) OUT_DIR [--rounds N]');
const rounds = Number(opt('rounds') ?? 1);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a positive integer, got ${opt('rounds')}`);

const status = (field: string): number => {
  const m = fs.readFileSync('/proc/self/status', 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
  if (!m) throw new Error(`/proc/self/status: no ${field}`);
  return Math.round(Number(m[1]) / 1024);
};
const resetPeak = () => fs.writeFileSync('/proc/self/clear_refs', '5');

const t0 = performance.now();
/** The models saved: an NLA's AV and AR, or one random model. */
let models: [string, Weights][];
let done = () => {};
if (shape) {
  const make = SHAPES[shape];
  if (!make) throw new Error(`--init: unknown shape ${shape} (known: ${Object.keys(SHAPES).join(', ')})`);
  const cfg = { ...make(), nLayers: Number(opt('blocks') ?? make().nLayers) };
  await initGpu();
  const w = new Weights();
  for (const [name, h] of initLlamaTensors(cfg, 0)) for (const [n, t] of Weights.fromHost(new Map([[name, h]])).map) w.map.set(n, t);
  models = [['model.safetensors', w]];
  done = () => w.dispose();
} else {
  const nla = await loadNLA(dir!);
  models = [['av.safetensors', nla.av.model.w], ['ar.safetensors', nla.ar.model.w]];
  done = () => nla.dispose();
}
const params = models.reduce((n, [, w]) => n + w.params().reduce((a, t) => a + t.size, 0), 0);
console.log(JSON.stringify({ event: 'loaded', seconds: +((performance.now() - t0) / 1000).toFixed(1), rssMiB: status('VmRSS'), params, largestMiB: Math.round(Math.max(...models.flatMap(([, w]) => w.params().map((t) => t.size))) * 4 / 2 ** 20) }));
const files = models.map(([f]) => f);
const ways: Record<string, (to: string) => Promise<void>> = {
  // NLA.save is exactly writeWeights of the AV and of the AR (src/nla/nla.ts).
  streamed: async (to) => {
    fs.mkdirSync(to, { recursive: true });
    for (const [f, w] of models) await writeWeights(path.join(to, f), w);
  },
  hostCopy: async (to) => {
    fs.mkdirSync(to, { recursive: true });
    for (const [f, w] of models) writeSafetensors(path.join(to, f), Object.fromEntries(await w.toHost()));
  },
};
for (let r = 0; r < rounds; r++) {
  // Freed host memory is not all returned to the system, so a save after another starts above
  // its baseline: --only WAY measures one writer per process (run each in its own).
  const only = opt('only');
  if (only && !ways[only]) throw new Error(`--only: ${only} is not one of ${Object.keys(ways).join(', ')}`);
  for (const way of only ? [only] : r % 2 === 0 ? ['streamed', 'hostCopy'] : ['hostCopy', 'streamed']) {
    global.gc?.();
    resetPeak();
    const before = status('VmRSS'), t = performance.now();
    await ways[way](path.join(out, way));
    const peak = status('VmHWM');
    console.log(JSON.stringify({ event: 'save', round: r, way, seconds: +((performance.now() - t) / 1000).toFixed(1), rssBeforeMiB: before, peakMiB: peak, aboveMiB: peak - before }));
  }
}
for (const f of opt('only') ? [] : files) {
  // cmp streams both files (reading them whole here would add their size to this process).
  const same = spawnSync('cmp', ['-s', path.join(out, 'streamed', f), path.join(out, 'hostCopy', f)]).status === 0;
  console.log(JSON.stringify({ event: 'compare', file: f, identical: same, bytes: fs.statSync(path.join(out, 'streamed', f)).size }));
  if (!same) process.exitCode = 1;
}
done();

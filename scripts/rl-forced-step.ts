// Full GRPO steps of `trainRl` (AR scoring, the AR's supervised update, the AV's GRPO + KL
// update) on an NLA whose AV is untrained, with the rollouts fixed instead of sampled: an AV on
// random weights never closes its explanation, every sample would score as unparseable (-2,
// as the reference does) and the AR's update would never run. Here each activation's G
// rollouts are G different fixed explanations, tokenised as the AV's SFT targets and read back
// through the AV's own parser, so they parse, get different rewards (non-zero advantages) and
// both models are updated. Everything but the sampling is the library's step. Prints each
// step's metrics and the process's RSS as JSON lines; run under /usr/bin/time -v for the peak:
//   node --import tsx scripts/rl-forced-step.ts NLA_DIR STORE_DIR [--steps 2] [--activations 1] [--group 2]
import * as path from 'node:path';
import { Llama } from '../src/nn/llama.js';
import { Verbalizer } from '../src/nla/av.js';
import { loadNLA, streamWeights } from '../src/nla/nla.js';
import { trainRl } from '../src/nla/rl.js';
import { ActivationStore } from '../src/nla/store.js';
import { storeRows } from '../src/cli/nla-dir.js';

const [dir, storeDir] = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && !all[i - 1]?.startsWith('--'));
if (!dir || !storeDir) throw new Error('usage: node --import tsx scripts/rl-forced-step.ts NLA_DIR STORE_DIR [--steps N] [--activations N] [--group G]');
const flag = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  const v = i < 0 ? dflt : Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer, got ${process.argv[i + 1]}`);
  return v;
};
const steps = flag('steps', 2), activations = flag('activations', 1), G = flag('group', 2);
const rss = () => Math.round(process.memoryUsage().rss / 2 ** 20);
const t0 = performance.now();
const nla = await loadNLA(dir);
const meta = nla.meta;
const ref = new Verbalizer(new Llama(meta.model.config, await streamWeights(path.join(dir, 'av-ref.safetensors'))), nla.tok, meta.prompts, meta.alpha);
const store = ActivationStore.open(storeDir, { layer: meta.layer, d: nla.ar.d });
const rows = storeRows(store, 'all');
console.log(JSON.stringify({ loaded_s: (performance.now() - t0) / 1000, rss_mib: rss(), rows: rows.meta.length }));

const TEXTS = ['A story about a small dog who finds a red ball in the park.', 'The text is about two friends sharing lunch at school.', 'Someone is cooking soup on a cold day.', 'A girl reads a book under a tree.'];
if (G > TEXTS.length) throw new Error(`--group ${G}: only ${TEXTS.length} fixed explanations`);
const fixed = TEXTS.slice(0, G).map((text) => {
  const e = nla.av.toExplained(nla.av.targetIds(text), true);
  if (e.explanation === undefined) throw new Error(`the fixed explanation "${text}" does not parse back through the AV's parser`);
  return e;
});

const history = await trainRl(nla.av, ref, nla.ar, { h: rows.h }, {
  steps,
  activationsPerStep: activations,
  groupSize: G,
  maxTokens: Math.max(...fixed.map((e) => e.tokens.length)),
  beta: 0.01,
  epsilon: 0.2,
  reward: 'mse',
  advantageScale: 'none',
  av: { lr: 1e-4, warmup: 0, clip: 1 },
  ar: { lr: 3e-5, clip: 1 },
  seed: 0,
  variance: meta.variance,
  rollouts: async (h, o) => Array.from({ length: (h.length / nla.av.d) * o.samples }, (_, i) => fixed[i % o.samples]),
  onLog: (m) => console.log(JSON.stringify({ ...m, rss_mib: rss() })),
});
const bad = history.find((m) => !Number.isFinite(m.arLoss) || m.parseRate !== 1);
if (bad) throw new Error(`step ${bad.step}: the AR update did not run (arLoss ${bad.arLoss}, parse rate ${bad.parseRate})`);
console.log(JSON.stringify({ total_s: (performance.now() - t0) / 1000, rss_mib: rss() }));
process.exit(0);

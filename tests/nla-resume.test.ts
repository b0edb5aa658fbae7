// Checkpoint + resume of the NLA training loops: a run interrupted after a checkpoint and
// resumed from it ends with exactly the weights of an uninterrupted run with the same seed
// (the checkpoint holds weights, optimizer moments, step, RNG state and the data order).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { HostTensor } from '../src/io/host-tensor.js';
import type { Tokenizer } from '../src/io/tokenizer.js';
import { loadCheckpoint } from '../src/nn/checkpoint.js';
import type { Llama } from '../src/nn/llama.js';
import { loadModel, loadTokenizerFor } from '../src/nn/load.js';
import { Reconstructor } from '../src/nla/ar.js';
import { Verbalizer } from '../src/nla/av.js';
import { knownAnswerItems } from '../src/nla/dataset.js';
import { extractActivations } from '../src/nla/extract.js';
import { DEFAULT_PROMPTS } from '../src/nla/prompts.js';
import { trainRl, type RlOptions } from '../src/nla/rl.js';
import { trainArSft, trainAvSft, type SftData, type SftOptions } from '../src/nla/sft.js';
import { modelFile, SKIP_NO_MODEL } from './helpers.js';

const LAYER = 3;

// An untrained AV never emits EOS within 20 tokens, so under the token-cap rule none of its
// rollouts would parse and RL would not update; these tests are about resuming and the clip,
// so here its outputs count as stopped (the rule itself is tested in nla-measures.test.ts).
class StoppedAv extends Verbalizer {
  override toExplained(tokens: number[]) {
    return super.toExplained(tokens, true);
  }
}

async function setup(): Promise<{ M: Llama; tok: Tokenizer; data: SftData }> {
  const file = modelFile('stories260K.bin');
  const M = (await loadModel(file)).model as Llama;
  const tok = loadTokenizerFor(file);
  const items = knownAnswerItems(tok, { stories: 4, cutsPerStory: 2, minTokens: 20, seed: 3 });
  const h = await extractActivations(M, LAYER, items);
  const texts = items.flatMap((it) => it.meta.map((m) => m.summary!));
  assert.equal(texts.length, h.length / M.cfg.dim);
  return { M, tok, data: { h, texts } };
}

function maxDiff(a: Map<string, HostTensor>, b: Map<string, HostTensor>): number {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  let worst = 0;
  for (const [k, t] of a) {
    const u = b.get(k)!.data;
    for (let i = 0; i < t.data.length; i++) worst = Math.max(worst, Math.abs(t.data[i] - u[i]));
  }
  return worst;
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-resume-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const tmpFile = (name: string) => path.join(tmp, name);

test('AR SFT: interrupted after a checkpoint and resumed equals the uninterrupted run', { skip: SKIP_NO_MODEL }, async () => {
  const { M, tok, data } = await setup();
  // 8 rows, batch 3: the data order wraps into a new epoch between the checkpoint and the end.
  const base: SftOptions = { steps: 5, batchSize: 3, lr: 2e-3, warmup: 2, decaySteps: 5, clip: 1, seed: 11, logEvery: 1 };
  const ar = () => Reconstructor.fromModel(M, LAYER, tok, DEFAULT_PROMPTS);

  const A = await ar();
  const lossesA = await trainArSft(A, data, base);
  const wa = await A.model.w.toHost();

  const file = tmpFile('sft-ar.ckpt');
  const B = await ar();
  const crash = (m: { step: number }) => {
    if (m.step === 2) throw new Error('simulated crash');
  };
  await assert.rejects(trainArSft(B, data, { ...base, checkpoint: { file, every: 2 }, onLog: crash }), /simulated crash/);
  B.model.w.dispose();
  const ck = loadCheckpoint(file);
  assert.equal(ck.step, 2, 'the last checkpoint before the crash is at step 2');

  const C = await ar();
  const lossesC = await trainArSft(C, data, { ...base, resume: ck });
  const diff = maxDiff(wa, await C.model.w.toHost());
  assert.ok(diff <= 1e-6, `resumed weights differ from the uninterrupted run by ${diff}`);
  assert.deepEqual(lossesC, lossesA.slice(2), 'the resumed run logs the same losses for steps 2..4');
  // The training actually moved the weights (else the comparison proves nothing).
  const init = await (await ar()).model.w.toHost();
  assert.ok(maxDiff(init, wa) > 1e-4);

  // A checkpoint does not resume a different loop or a different batch size.
  const D = await ar();
  await assert.rejects(trainArSft(D, data, { ...base, batchSize: 4, resume: ck }), /batchSize/);
  const V = new Verbalizer(new (M.constructor as typeof Llama)(M.cfg, await M.w.clone()), tok, DEFAULT_PROMPTS, 10);
  await assert.rejects(trainAvSft(V, data, { ...base, resume: ck }), /cannot resume `sft-av`/);
  for (const x of [A, C, D, V]) x.model.w.dispose();
  M.w.dispose();
});

test('joint RL: interrupted after a checkpoint and resumed equals the uninterrupted run', { skip: SKIP_NO_MODEL }, async () => {
  const { M, tok, data } = await setup();
  // An untrained AV rarely closes </explanation>; closing at the first period gives parseable
  // rollouts with different rewards, so both the AV and the AR get real updates.
  const prompts = { ...DEFAULT_PROMPTS, explanationEnd: '.' };
  const copy = async () => new StoppedAv(new (M.constructor as typeof Llama)(M.cfg, await M.w.clone()), tok, prompts, 10);
  const ref = await copy();
  const o: RlOptions = {
    steps: 3, activationsPerStep: 2, groupSize: 3, maxTokens: 20, beta: 0.01, epsilon: 0.2, reward: 'mse', seed: 5, variance: 0.77,
    av: { lr: 1e-3, clip: 1 }, ar: { lr: 1e-3, clip: 1 },
    logitScaleLr: 1e-2, // its scalar and optimizer state travel in the checkpoint too
  };
  let parsed = 0;
  const run = async (extra: Partial<RlOptions>) => {
    const av = await copy();
    const ar = await Reconstructor.fromModel(M, LAYER, tok, prompts);
    try {
      parsed = 0;
      await trainRl(av, ref, ar, { h: data.h }, { ...o, ...extra, onLog: (m) => { parsed += m.parseRate; extra.onLog?.(m); } });
      return { av: await av.model.w.toHost(), ar: await ar.model.w.toHost() };
    } finally {
      av.model.w.dispose();
      ar.model.w.dispose();
    }
  };
  const full = await run({});
  assert.ok(parsed > 0, 'some rollouts parse (else no update happens)');
  const initAv = await M.w.toHost();
  const initAr = await (async () => {
    const a = await Reconstructor.fromModel(M, LAYER, tok, prompts);
    const h = await a.model.w.toHost();
    a.model.w.dispose();
    return h;
  })();
  assert.ok(maxDiff(initAv, full.av) > 1e-5 && maxDiff(initAr, full.ar) > 1e-5, 'RL moved both the AV and the AR');
  const file = tmpFile('rl.ckpt');
  await assert.rejects(run({ checkpoint: { file, every: 1 }, onLog: (m) => { if (m.step === 1) throw new Error('simulated crash'); } }), /simulated crash/);
  const ck = loadCheckpoint(file);
  assert.equal(ck.step, 1);
  const resumed = await run({ resume: ck });
  const dAv = maxDiff(full.av, resumed.av), dAr = maxDiff(full.ar, resumed.ar);
  assert.ok(dAv <= 1e-6 && dAr <= 1e-6, `resumed RL differs: AV by ${dAv}, AR by ${dAr}`);
  ref.model.w.dispose();
  M.w.dispose();
});

test('joint RL options: mu > 1 updates make the clip bind; gainLrScale 0 freezes the 1-D gains only', { skip: SKIP_NO_MODEL }, async () => {
  const { M, tok, data } = await setup();
  const prompts = { ...DEFAULT_PROMPTS, explanationEnd: '.' };
  const copy = async () => new StoppedAv(new (M.constructor as typeof Llama)(M.cfg, await M.w.clone()), tok, prompts, 10);
  const ref = await copy();
  const run = async (extra: Partial<RlOptions>) => {
    const av = await copy();
    const ar = await Reconstructor.fromModel(M, LAYER, tok, prompts);
    try {
      const curves = await trainRl(av, ref, ar, { h: data.h }, {
        steps: 2, activationsPerStep: 2, groupSize: 4, maxTokens: 20, beta: 0.01, epsilon: 0.2, reward: 'mse', seed: 5, variance: 0.77,
        av: { lr: 3e-3, clip: 1 }, ar: { lr: 1e-3, clip: 1 }, ...extra,
      });
      return { curves, av: await av.model.w.toHost() };
    } finally {
      av.model.w.dispose();
      ar.model.w.dispose();
    }
  };
  const one = await run({});
  assert.ok(one.curves.every((c) => c.clipFrac === 0), 'one update per batch: the ratio is 1, nothing is clipped');
  const two = await run({ iterations: 3 });
  assert.ok(two.curves.some((c) => c.clipFrac > 0), `mu = 3: the later updates see ratios past 1 +- epsilon (clipFrac ${two.curves.map((c) => c.clipFrac)})`);
  const init = await M.w.toHost();
  const frozen = await run({ av: { lr: 3e-3, clip: 1, gainLrScale: 0 } });
  for (const [k, t] of init) {
    const moved = t.data.some((v, i) => v !== frozen.av.get(k)!.data[i]);
    if (t.shape.length === 1) assert.ok(!moved, `${k} (a gain) moved with gainLrScale 0`);
  }
  assert.ok([...init].some(([k, t]) => t.shape.length > 1 && t.data.some((v, i) => v !== frozen.av.get(k)!.data[i])), 'the matrices still train');
  // A learned logit scale alone (every weight's rate 0): the saved AV differs from the start only
  // in its final norm gain, multiplied by the scale the last step reports.
  const scaled = await run({ av: { lr: 0 }, logitScaleLr: 0.05 });
  const sc = scaled.curves[scaled.curves.length - 1].logitScale;
  assert.ok(Math.abs(sc - 1) > 0.01, `the scale moved (${sc})`);
  for (const [k, t] of init) {
    const want = k === 'model.norm.weight' ? t.data.map((v) => Math.fround(v * sc)) : t.data;
    const got = scaled.av.get(k)!.data;
    for (let i = 0; i < t.data.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= 1e-6 * Math.abs(want[i]) + 1e-9, `${k}[${i}]: ${got[i]} vs ${want[i]}`);
  }
  ref.model.w.dispose();
  M.w.dispose();
});

// trainRl's `rollouts` option: fixed explanations in place of the AV's samples (what
// scripts/rl-forced-step.ts uses to reach the AR's update with an untrained AV at 0.5B). The
// step must score them with the AR, update the AR on them and run the AV's GRPO update on
// their tokens; a wrong number of rollouts is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Llama } from '../src/nn/llama.js';
import { loadModel, loadTokenizerFor } from '../src/nn/load.js';
import { Reconstructor } from '../src/nla/ar.js';
import { Verbalizer } from '../src/nla/av.js';
import { knownAnswerItems } from '../src/nla/dataset.js';
import { extractActivations } from '../src/nla/extract.js';
import { DEFAULT_PROMPTS } from '../src/nla/prompts.js';
import { trainRl, type RlOptions } from '../src/nla/rl.js';
import { modelFile, SKIP_NO_MODEL } from './helpers.js';

test('trainRl with fixed rollouts: every rollout parses, the AR and the AV are both updated', { skip: SKIP_NO_MODEL }, async () => {
  const file = modelFile('stories260K.bin');
  const M = (await loadModel(file)).model as Llama;
  const tok = loadTokenizerFor(file);
  const items = knownAnswerItems(tok, { stories: 2, cutsPerStory: 2, minTokens: 20, seed: 3 });
  const h = await extractActivations(M, 3, items);
  const copy = async () => new Verbalizer(new (M.constructor as typeof Llama)(M.cfg, await M.w.clone()), tok, DEFAULT_PROMPTS, 10);
  const av = await copy(), ref = await copy();
  const ar = await Reconstructor.fromModel(M, 3, tok, DEFAULT_PROMPTS);
  const texts = ['Lily plays with a red ball.', 'A dog runs in the park.'];
  const fixed = texts.map((t) => av.toExplained(av.targetIds(t), true));
  assert.deepEqual(fixed.map((e) => e.explanation), texts, 'the fixed explanations parse back to themselves');
  const before = { ar: await ar.model.w.toHost(), av: await av.model.w.toHost() };
  const calls: { samples: number; maxTokens: number }[] = [];
  const o: RlOptions = {
    steps: 1, activationsPerStep: 2, groupSize: 2, maxTokens: 40, beta: 0.01, epsilon: 0.2, reward: 'mse', advantageScale: 'none', seed: 1, variance: 0.77,
    av: { lr: 1e-3 }, ar: { lr: 1e-3 },
    rollouts: async (x, r) => {
      calls.push({ samples: r.samples, maxTokens: r.maxTokens });
      return Array.from({ length: (x.length / av.d) * r.samples }, (_, i) => fixed[i % r.samples]);
    },
  };
  const [m] = await trainRl(av, ref, ar, { h }, o);
  assert.deepEqual(calls, [{ samples: 2, maxTokens: 40 }]);
  assert.equal(m.parseRate, 1);
  assert.ok(Number.isFinite(m.arLoss) && m.arLoss > 0, `arLoss ${m.arLoss}`);
  assert.equal(m.length, (fixed[0].tokens.length + fixed[1].tokens.length) / 2);
  // Two different explanations per activation: different rewards, non-zero advantages.
  assert.ok(m.reward > -2 && m.reward < 0, `reward ${m.reward}`);
  const moved = async (w: typeof ar.model.w, b: typeof before.ar) => {
    let worst = 0;
    for (const [k, t] of await w.toHost()) for (let i = 0; i < t.data.length; i++) worst = Math.max(worst, Math.abs(t.data[i] - b.get(k)!.data[i]));
    return worst;
  };
  assert.ok((await moved(ar.model.w, before.ar)) > 1e-5, 'the AR was updated');
  assert.ok((await moved(av.model.w, before.av)) > 1e-5, 'the AV was updated');
  await assert.rejects(trainRl(av, ref, ar, { h }, { ...o, rollouts: async () => [fixed[0]] }), /trainRl: 1 rollouts for 2 activations x 2 samples/);
  for (const x of [av, ref]) x.model.w.dispose();
  ar.model.w.dispose();
  M.w.dispose();
});

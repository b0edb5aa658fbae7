// A seeded end-to-end run of a tiny configuration on stories260K: activations of the
// known-answer corpus, a short warm start of AR and AV, joint GRPO+KL RL, and the RL
// objective (mean FVE of temperature-1 explanations, scored by the current AR) measured before
// and after RL on the activations RL trained on, with the same sampling seed. This is the
// "can the loop raise its own objective" check; the held-out numbers are the demo's job.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { loadModel, loadTokenizerFor } from '../src/nn/load.js';
import type { Llama } from '../src/nn/llama.js';
import { Reconstructor } from '../src/nla/ar.js';
import { Verbalizer } from '../src/nla/av.js';
import { knownAnswerItems } from '../src/nla/dataset.js';
import { evaluate } from '../src/nla/evaluate.js';
import { extractActivations } from '../src/nla/extract.js';
import { varianceNormalized } from '../src/nla/fve.js';
import { DEFAULT_PROMPTS } from '../src/nla/prompts.js';
import { trainRl } from '../src/nla/rl.js';
import { rowsOf, trainArSft, trainAvSft } from '../src/nla/sft.js';
import { modelFile, SKIP_NO_MODEL } from './helpers.js';

test('tiny seeded NLA: RL raises the sampled FVE it optimises by at least 0.1', { skip: SKIP_NO_MODEL, timeout: 900_000 }, async (t) => {
  const file = modelFile('stories260K.bin');
  const M = (await loadModel(file)).model as Llama;
  const tok = loadTokenizerFor(file);
  const layer = 3, d = M.cfg.dim;
  const items = knownAnswerItems(tok, { stories: 60, cutsPerStory: 4, minTokens: 30, seed: 5 });
  const h = await extractActivations(M, layer, items);
  const meta = items.flatMap((it) => it.meta);
  const pick = (s: string) => meta.map((m, i) => (m.split === s ? i : -1)).filter((i) => i >= 0);
  const sft = [...pick('av'), ...pick('ar')];
  const rlRows = pick('rl').slice(0, 16);
  const variance = varianceNormalized(h, d);

  const AR = await Reconstructor.fromModel(M, layer, tok, DEFAULT_PROMPTS);
  const AV = new Verbalizer(new (M.constructor as typeof Llama)(M.cfg, await M.w.clone()), tok, DEFAULT_PROMPTS, 10);
  const sftData = { h: rowsOf(h, d, sft), texts: sft.map((i) => meta[i].summary!) };
  await trainArSft(AR, sftData, { steps: 40, batchSize: 16, lr: 1e-3, warmup: 5, seed: 1 });
  await trainAvSft(AV, sftData, { steps: 60, batchSize: 16, lr: 2e-3, warmup: 5, seed: 2 });

  const hRl = rowsOf(h, d, rlRows);
  const metaRl = rlRows.map((i) => ({ ...meta[i], pos: 0, token: 0, prevToken: 0 }));
  const sampled = async () => (await evaluate(AV, AR, hRl, metaRl, variance, { temperature: 1, samples: 4, maxTokens: 48, seed: 11 })).fve;
  const before = await sampled();

  const ref = new Verbalizer(new (M.constructor as typeof Llama)(M.cfg, await AV.model.w.clone()), tok, DEFAULT_PROMPTS, 10);
  const curves = await trainRl(AV, ref, AR, { h: hRl }, {
    steps: 16, activationsPerStep: 8, groupSize: 6, maxTokens: 48,
    av: { lr: 1e-4, warmup: 2, clip: 1 }, ar: { lr: 1e-3, warmup: 2, clip: 1 },
    beta: 0.01, epsilon: 0.2, reward: 'mse', seed: 3, variance,
  });
  const after = await sampled();
  ref.model.w.dispose();
  t.diagnostic(`sampled FVE on the RL activations: ${before.toFixed(3)} -> ${after.toFixed(3)}`);
  assert.equal(curves.length, 16);
  for (const c of curves) for (const k of ['reward', 'fveSampled', 'kl', 'loss', 'arLoss', 'length'] as const) assert.ok(Number.isFinite(c[k]), `step ${c.step}: ${k} = ${c[k]}`);
  assert.ok(curves.every((c) => c.kl >= 0), 'the k3 KL estimate is never negative');
  assert.ok(after > before + 0.1, `sampled FVE ${before.toFixed(3)} -> ${after.toFixed(3)} should rise by 0.1`);
  for (const m of [AV.model, AR.model]) m.w.dispose();
});

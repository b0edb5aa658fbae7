// A seeded end-to-end run of a tiny configuration on stories260K: activations of the
// known-answer corpus, a short warm start of AR and AV, 32 steps of joint GRPO+KL RL on 16 activations, and
// the AV scored before and after RL by a frozen copy of the warm-start AR on the stories of the
// eval split, which neither warm start nor RL saw. The AR that RL trains jointly could fit its 16
// rows and raise the RL objective without the AV changing at all; a frozen scorer on unseen
// stories moves only if the AV's explanations got better.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel, loadTokenizerFor } from '../src/nn/load.js';
import type { Llama } from '../src/nn/llama.js';
import { Reconstructor } from '../src/nla/ar.js';
import { Verbalizer } from '../src/nla/av.js';
import { knownAnswerItems } from '../src/nla/dataset.js';
import { evaluate, type EvalResult } from '../src/nla/evaluate.js';
import { extractActivations } from '../src/nla/extract.js';
import { varianceNormalized } from '../src/nla/fve.js';
import { DEFAULT_PROMPTS } from '../src/nla/prompts.js';
import { trainRl } from '../src/nla/rl.js';
import { rowsOf, trainArSft, trainAvSft } from '../src/nla/sft.js';
import { modelFile, SKIP_NO_MODEL } from './helpers.js';

test('tiny seeded NLA: after RL a frozen warm-start AR scores the AV\'s samples on unseen stories higher', { skip: SKIP_NO_MODEL, timeout: 900_000 }, async (t) => {
  const file = modelFile('stories260K.bin');
  const M = (await loadModel(file)).model as Llama;
  const tok = loadTokenizerFor(file);
  const layer = 3, d = M.cfg.dim;
  const items = knownAnswerItems(tok, { stories: 60, cutsPerStory: 4, minTokens: 30, seed: 5 });
  const h = await extractActivations(M, layer, items);
  const meta = items.flatMap((it) => it.meta).map((m) => ({ ...m, pos: 0, token: 0, prevToken: 0 }));
  const pick = (s: string) => meta.map((m, i) => (m.split === s ? i : -1)).filter((i) => i >= 0);
  const sft = [...pick('av'), ...pick('ar')];
  const rlRows = pick('rl').slice(0, 16);
  const held = pick('eval');
  const docs = (ix: number[]) => new Set(ix.map((i) => meta[i].doc));
  assert.equal(held.length, 36);
  assert.ok([...docs(held)].every((doc) => !docs([...sft, ...rlRows]).has(doc)), 'the scored stories are unseen');
  const variance = varianceNormalized(h, d);

  const AR = await Reconstructor.fromModel(M, layer, tok, DEFAULT_PROMPTS);
  const AV = new Verbalizer(new (M.constructor as typeof Llama)(M.cfg, await M.w.clone()), tok, DEFAULT_PROMPTS, 10);
  const sftData = { h: rowsOf(h, d, sft), texts: sft.map((i) => meta[i].summary!) };
  await trainArSft(AR, sftData, { steps: 40, batchSize: 16, lr: 1e-3, warmup: 5, seed: 1 });
  await trainAvSft(AV, sftData, { steps: 60, batchSize: 16, lr: 2e-3, warmup: 5, seed: 2 });
  const frozenAr = Reconstructor.fromWeights(M.cfg, await AR.model.w.clone(), layer, tok, DEFAULT_PROMPTS);

  const hHeld = rowsOf(h, d, held), metaHeld = held.map((i) => meta[i]);
  // The RL objective's form (4 temperature-1 samples per row, same seed before and after) with
  // the cap RL samples under: 64 (summaries quote the words read twice, ~45-55 tokens with every
  // fact known here; under a cap of 48 nearly every warm-start sample ran into it). The demo's
  // cap is 96: its 3-word quotes make 39% of its story summaries 64 tokens or longer.
  const cap = 64;
  // Batches of 32 rows, as when the bounds below were set: the samples' random stream depends on
  // the batch (evaluate's default is now all 36 rows in one, another draw of the same distribution).
  const score = (): Promise<EvalResult> => evaluate(AV, frozenAr, hHeld, metaHeld, variance, { temperature: 1, samples: 4, maxTokens: cap, seed: 11, batchSize: 32 });
  const parsedFve = (r: EvalResult) => 1 - (r.mse - 2 * (1 - r.parseRate)) / r.parseRate / variance; // unparseable rows score MSE 2
  const before = await score();

  const ref = new Verbalizer(new (M.constructor as typeof Llama)(M.cfg, await AV.model.w.clone()), tok, DEFAULT_PROMPTS, 10);
  const curves = await trainRl(AV, ref, AR, { h: rowsOf(h, d, rlRows) }, {
    steps: 32, activationsPerStep: 8, groupSize: 6, maxTokens: cap,
    av: { lr: 1e-4, warmup: 2, clip: 1 }, ar: { lr: 1e-3, warmup: 2, clip: 1 },
    beta: 0.01, epsilon: 0.2, reward: 'mse', seed: 3, variance,
  });
  const after = await score();
  ref.model.w.dispose();
  t.diagnostic(`frozen AR, ${held.length} unseen rows x 4 samples: FVE ${before.fve.toFixed(3)} -> ${after.fve.toFixed(3)}, parsed ${before.parseRate.toFixed(3)} -> ${after.parseRate.toFixed(3)}, FVE of the parsed ${parsedFve(before).toFixed(3)} -> ${parsedFve(after).toFixed(3)}`);
  assert.equal(curves.length, 32);
  for (const c of curves) for (const k of ['reward', 'fveSampled', 'kl', 'loss', 'arLoss', 'length'] as const) assert.ok(Number.isFinite(c[k]), `step ${c.step}: ${k} = ${c[k]}`);
  assert.ok(curves.every((c) => c.kl >= 0), 'the k3 KL estimate is never negative');
  // At this size what RL teaches is to finish inside the token cap (a capped rollout scores
  // -2): about half the warm start's samples run into it. The content of the finished ones does
  // not improve measurably here (see the diagnostic); the demo's test rows measure that.
  assert.ok(after.parseRate > before.parseRate + 0.2, `parsed share ${before.parseRate.toFixed(3)} -> ${after.parseRate.toFixed(3)} should rise by 0.2`);
  assert.ok(after.fve > before.fve + 0.2, `held-out sampled FVE under the frozen AR ${before.fve.toFixed(3)} -> ${after.fve.toFixed(3)} should rise by 0.2`);
  for (const m of [AV.model, AR.model, frozenAr.model]) m.w.dispose();
});

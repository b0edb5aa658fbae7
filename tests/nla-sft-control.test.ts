// The warm start's control (the reference's main health signal): during AV SFT, the loss on the
// same rows with the activations rotated among them, reported beside the loss at each logged
// step. Checked against an independent computation with the weights the step's loss saw.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel, loadTokenizerFor } from '../src/nn/load.js';
import { Llama } from '../src/nn/llama.js';
import { Verbalizer } from '../src/nla/av.js';
import { DEFAULT_PROMPTS } from '../src/nla/prompts.js';
import { rotated, rowsOf, trainAvSft } from '../src/nla/sft.js';
import * as T from '../src/tensor/index.js';
import { SeededRng } from '../src/util/rng.js';
import { modelFile, SKIP_NO_MODEL } from './helpers.js';

test('rotated: in a batch of two or more every row gets another row\'s activation (one row: itself, so no control)', () => {
  assert.deepEqual(rotated([4, 9, 2]), [9, 2, 4]);
  assert.deepEqual(rotated([7]), [7]);
});

test('AV SFT reports the shuffled-activation loss at logged steps, equal to the loss of rotated rows before the update', { skip: SKIP_NO_MODEL, timeout: 180_000 }, async () => {
  const m = await loadModel(modelFile('stories260K.bin'));
  const M = m.model as Llama;
  const tok = loadTokenizerFor(modelFile('stories260K.bin'));
  const av = new Verbalizer(new Llama(M.cfg, await M.w.clone()), tok, DEFAULT_PROMPTS, 8);
  const d = M.cfg.dim, n = 4;
  const h = Float32Array.from({ length: n * d }, (_, i) => Math.sin(i * 0.61) * (1 + (i % 7)));
  const texts = ['Lily is happy.', 'Tom has a dog.', 'The sun is hot.', 'A big red ball.'];
  // Batch = all rows, in the order the loop draws at step 0 (sft.ts: Fisher-Yates with SeededRng(seed)).
  const r = new SeededRng(3), order = [0, 1, 2, 3];
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(r.next() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const lossOf = async (rows: number[]) => {
    const t = T.noGrad(() => T.tidy(() => av.sftLoss(rowsOf(h, d, rows), order.map((i) => texts[i]))));
    const v = await t.item();
    t.dispose();
    return v;
  };
  // With the initial weights: the loss of the real pairs and of each text with the next row's h.
  const [want, wantShuffled] = [await lossOf(order), await lossOf(rotated(order))];
  const logs: { step: number; loss: number; shuffledLoss?: number }[] = [];
  await trainAvSft(av, { h, texts }, { steps: 2, batchSize: n, seed: 3, lr: 1e-3, logEvery: 1, onLog: (x) => logs.push(x) });
  assert.equal(logs.length, 2);
  assert.ok(Math.abs(logs[0].loss - want) < 1e-5, `step-0 loss ${logs[0].loss}, expected ${want}`);
  assert.ok(logs[0].shuffledLoss !== undefined && Math.abs(logs[0].shuffledLoss - wantShuffled) < 1e-5, `shuffled loss ${logs[0].shuffledLoss}, expected ${wantShuffled}`);
  assert.ok(Math.abs(logs[0].shuffledLoss! - logs[0].loss) > 1e-4, 'the activations change the loss');
  assert.ok(logs[1].shuffledLoss !== undefined);
  // Batches of one row have nothing to rotate with: no control reported.
  const single: { shuffledLoss?: number }[] = [];
  await trainAvSft(av, { h, texts }, { steps: 1, batchSize: 1, seed: 3, lr: 1e-3, logEvery: 1, onLog: (x) => single.push(x) });
  assert.equal(single[0].shuffledLoss, undefined);
  av.model.w.dispose();
  M.w.dispose();
});

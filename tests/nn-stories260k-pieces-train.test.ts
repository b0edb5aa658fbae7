// Training stories260K with its tied embedding (512 x 64 f32 = 128 KiB) in 3 buffers: the engine is
// told maxBufferSize is 48 KiB (setBufferLimit), as a 7B model's embedding meets 4 GiB. The
// embedding's gradient (the input scatter-add plus the head's, logits path or chunked head), its
// AdamW / SGD moments and the clipping norm all go piece by piece. A few steps must give the same
// weights, to f32 rounding, as the same steps with the embedding in one buffer; and a Trainer
// checkpoint written from pieces and resumed into pieces (weights through uploadAt) continues
// exactly as the uninterrupted run; the NLA loops' restoreWeights writes into pieces too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadModel, loadTokenizerFor } from '../src/nn/load.js';
import { DataLoader, TokenDataset } from '../src/nn/data.js';
import { decayGroups, lmLoss, Trainer } from '../src/nn/train.js';
import * as T from '../src/tensor/index.js';
import { setBufferLimit } from '../src/tensor/pool.js';
import { isMulti } from '../src/tensor/pieces.js';
import { restoreWeights } from '../src/nla/train-state.js';
import { hostTensor, type HostTensor } from '../src/io/host-tensor.js';
import { modelFile as find, PUBLISHED_OUTPUT, SKIP_NO_MODEL } from './helpers.js';

const modelFile = () => find('stories260K.bin');
const LIMIT = 48 * 1024;
const EMB = 'model.embed_tokens.weight';
await T.initGpu();

type Model = Awaited<ReturnType<typeof loadModel>>['model'];

const corpus = () => new TokenDataset([loadTokenizerFor(modelFile()).encode(PUBLISHED_OUTPUT, { bos: true })], 512);

/** Load stories260K with the embedding in 3 pieces (limit lowered) or in one buffer. */
async function load(pieces: boolean): Promise<Model> {
  setBufferLimit(pieces ? LIMIT : undefined);
  const { model } = await loadModel(modelFile());
  const e = model.w.get(EMB);
  assert.equal(isMulti(e), pieces);
  if (pieces) assert.equal(e.storage.pieces!.length, 3);
  assert.equal((model.cfg as { tieEmbeddings?: boolean }).tieEmbeddings, true, 'stories260K ties its head to the embedding');
  return model;
}

async function hostWeights(model: Model): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [k, t] of model.w.map) out.set(k, (await t.data()) as Float32Array);
  return out;
}

/** `steps` updates of batch 2 x 8 tokens; the embedding's gradient is checked to be in pieces when it is. */
async function train(pieces: boolean, chunkedHead: boolean, kind: 'adamw' | 'sgd', steps = 3) {
  const model = await load(pieces);
  try {
    const init = (await model.w.get(EMB).data()) as Float32Array;
    model.w.setTrainable(true);
    const params = model.w.params();
    const opt = kind === 'adamw'
      ? new T.AdamW(decayGroups(params, 0.1), { lr: 3e-3, maxGradNorm: 1 })
      : new T.SGD(params, { lr: 0.05, momentum: 0.9, weightDecay: 0.01, maxGradNorm: 0.5 });
    const loader = new DataLoader(corpus(), { batchSize: 2, seqLen: 8, seed: 5 });
    const losses: number[] = [];
    let grads: Map<string, Float32Array> | undefined;
    for (let s = 0; s < steps; s++) {
      const l = T.tidy(() => {
        const l = lmLoss(model, loader.next(), chunkedHead);
        l.backward();
        return l.detach();
      });
      losses.push(await l.item());
      l.dispose();
      assert.equal(isMulti(model.w.get(EMB).grad!), pieces, 'the gradient of the embedding lives as the embedding does');
      if (s === 0) {
        grads = new Map();
        for (const p of params) grads.set(p.name!, (await p.grad!.data()) as Float32Array);
      }
      opt.step();
      opt.zeroGrad();
    }
    opt.dispose();
    return { w: await hostWeights(model), init, losses, grads: grads! };
  } finally {
    model.w.dispose();
    setBufferLimit(undefined);
  }
}

/** Every element within tol(value) (extra: an absolute allowance). */
function sameToRounding(a: Map<string, Float32Array>, b: Map<string, Float32Array>, what: string, extra = 0): void {
  assert.equal(a.size, b.size);
  for (const [k, vb] of b) {
    const va = a.get(k)!;
    for (let i = 0; i < vb.length; i++) assert.ok(Math.abs(va[i] - vb[i]) <= 2e-6 * (1 + Math.abs(vb[i])) + extra, `${what}: ${k}[${i}] ${va[i]} vs ${vb[i]}`);
  }
}

/** Gradients agree to f32 rounding: within 1e-5 of each tensor's largest |g| (the pieces change the sums' order). */
function sameGradients(a: Map<string, Float32Array>, b: Map<string, Float32Array>): void {
  assert.equal(a.size, b.size);
  for (const [k, gb] of b) {
    const ga = a.get(k)!, scale = gb.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    assert.ok(scale > 0, `${k}: a zero gradient`);
    for (let i = 0; i < gb.length; i++) assert.ok(Math.abs(ga[i] - gb[i]) <= 1e-5 * scale, `gradient of ${k}[${i}] ${ga[i]} vs ${gb[i]} (largest ${scale})`);
  }
}

for (const [chunked, kind] of [[false, 'adamw'], [true, 'sgd']] as const) {
  test(`3 steps (${chunked ? 'chunked head' : 'logits path'}, ${kind}, clipped) with the embedding in 3 buffers = the same steps in one buffer`, { skip: SKIP_NO_MODEL }, async () => {
    const whole = await train(false, chunked, kind);
    const split = await train(true, chunked, kind);
    split.losses.forEach((l, i) => assert.ok(Math.abs(l - whole.losses[i]) <= 1e-5, `loss at step ${i + 1}: ${l} vs ${whole.losses[i]}`));
    sameGradients(split.grads, whole.grads);
    // AdamW divides by sqrt(v): where a gradient is near zero its rounding moves the update by a
    // fraction of lr (seen: 4e-6 = 0.14% of lr over 3 steps), so it gets 1% of lr per step on top.
    sameToRounding(split.w, whole.w, 'pieces vs one buffer', kind === 'adamw' ? 0.01 * 3e-3 * 3 : 0);
    // The steps moved the embedding by far more than the tolerance (a test that cannot fail is a defect).
    const e = whole.w.get(EMB)!;
    const moved = e.reduce((m, v, i) => Math.max(m, Math.abs(v - whole.init[i])), 0);
    assert.ok(moved > 1e-3, `the embedding moved by only ${moved}`);
  });
}

test('a Trainer checkpoint written from pieces and resumed into pieces continues exactly as the uninterrupted run', { skip: SKIP_NO_MODEL }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-pieces-train-'));
  const opts = { steps: 4, lr: 3e-3, warmupSteps: 1, logEvery: 2, maxGradNorm: 1 };
  const loader = () => new DataLoader(corpus(), { batchSize: 2, seqLen: 8, seed: 11 });
  try {
    const a = await load(true);
    setBufferLimit(LIMIT);
    const ta = new Trainer(a, loader(), opts);
    await ta.run();
    const wa = await hostWeights(a);
    ta.dispose();
    a.w.dispose();
    const b = await load(true);
    setBufferLimit(LIMIT);
    const ck = path.join(dir, 'b.ck');
    const tb = new Trainer(b, loader(), { ...opts, checkpointPath: ck, checkpointEvery: 2 });
    await tb.run({ until: 2 });
    tb.dispose();
    b.w.dispose();
    const c = await load(true);
    setBufferLimit(LIMIT);
    const tc = new Trainer(c, new DataLoader(corpus(), { batchSize: 2, seqLen: 8, seed: 999 }), opts);
    await tc.resume(ck);
    assert.ok(isMulti(c.w.get(EMB)), 'resumed into pieces');
    await tc.run();
    assert.equal(tc.step, 4);
    const wc = await hostWeights(c);
    for (const [k, va] of wa) assert.deepEqual(wc.get(k), va, `parameter ${k} differs after resume`);
    tc.dispose();
    c.w.dispose();
  } finally {
    setBufferLimit(undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the NLA loops\' restoreWeights writes saved weights into a model whose embedding is in pieces', { skip: SKIP_NO_MODEL }, async () => {
  const src = await load(false);
  const saved: Record<string, HostTensor> = {};
  // Different values from the file's: each weight scaled, so a piece left unwritten shows.
  for (const [k, t] of src.w.map) saved[k] = hostTensor([...t.shape], Float32Array.from((await t.data()) as Float32Array, (v, i) => v * 0.5 + (i % 7) * 1e-3));
  src.w.dispose();
  const model = await load(true);
  try {
    setBufferLimit(LIMIT);
    await restoreWeights(model.w, saved, 'test');
    assert.ok(isMulti(model.w.get(EMB)));
    for (const [k, t] of model.w.map) assert.deepEqual((await t.data()) as Float32Array, saved[k].data, `${k} restored`);
  } finally {
    model.w.dispose();
    setBufferLimit(undefined);
  }
});

// Language-model training: a tiny Llama learns a synthetic corpus below a loss bound; a run
// interrupted at a checkpoint and resumed (into a differently initialised model, with a
// differently seeded loader) ends with exactly the weights of an uninterrupted run; torn
// checkpoints fail with the file's name; padding is ignored by the loss; the loader and the
// initialiser are seeded and shaped as documented.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CharTokenizer, DataLoader, IGNORE_INDEX, TokenDataset } from '../src/nn/data.js';
import { initLlama, initLlamaHost, llamaConfig } from '../src/nn/init.js';
import { Llama } from '../src/nn/llama.js';
import { lmLoss, modelFromCheckpoint, Trainer } from '../src/nn/train.js';
import * as T from '../src/tensor/index.js';
import { SeededRng } from '../src/util/rng.js';

const V = 40;
const cfg = llamaConfig({ dim: 32, nLayers: 2, nHeads: 4, vocabSize: V, maxSeqLen: 64, hiddenDim: 64 });

/** Counting sequences (k, k+1, ... mod 36) and a few repeated patterns, ids 1..39. */
function syntheticCorpus(seed: number): TokenDataset {
  const r = new SeededRng(seed);
  const docs: number[][] = [];
  for (let i = 0; i < 60; i++) {
    const start = Math.floor(r.next() * 36), len = 20 + Math.floor(r.next() * 30);
    docs.push([1, ...Array.from({ length: len }, (_, t) => 2 + ((start + t) % 36))]);
  }
  for (let i = 0; i < 20; i++) docs.push([1, ...Array.from({ length: 8 }, () => [38, 39, 2, 5]).flat()]);
  return new TokenDataset(docs, V);
}

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'nla-train-'));

async function hostWeights(model: Llama): Promise<Map<string, Float32Array>> {
  const h = await model.w.toHost();
  return new Map([...h].map(([k, t]) => [k, t.data as Float32Array]));
}

test('initLlama: seeded normal(0, 0.02) matrices, scaled residual projections, unit norms', async () => {
  const a = initLlamaHost(cfg, 7), b = initLlamaHost(cfg, 7), c = initLlamaHost(cfg, 8);
  assert.deepEqual([...a.keys()], [...Llama.expectedWeights(cfg).keys()]);
  assert.deepEqual(a.get('model.embed_tokens.weight')!.data, b.get('model.embed_tokens.weight')!.data);
  assert.notDeepEqual(a.get('model.embed_tokens.weight')!.data, c.get('model.embed_tokens.weight')!.data);
  const std = (x: ArrayLike<number>) => Math.sqrt(Array.from(x).reduce((s, v) => s + v * v, 0) / x.length);
  assert.ok(Math.abs(std(a.get('model.embed_tokens.weight')!.data) - 0.02) < 0.002);
  const resid = 0.02 / Math.sqrt(2 * cfg.nLayers);
  assert.ok(Math.abs(std(a.get('model.layers.1.mlp.down_proj.weight')!.data) - resid) < 0.15 * resid);
  assert.ok(Math.abs(std(a.get('model.layers.0.self_attn.o_proj.weight')!.data) - resid) < 0.15 * resid);
  assert.ok(a.get('model.norm.weight')!.data.every((v) => v === 1));
  assert.equal(llamaConfig({ dim: 256, nLayers: 4, nHeads: 4, vocabSize: 4096 }).hiddenDim, 704); // llama2.c's rule
  assert.throws(() => llamaConfig({ dim: 30, nLayers: 1, nHeads: 4, vocabSize: 8 }), /not divisible/);
});

test('DataLoader: seeded windows, next-token targets, padding with IGNORE_INDEX in documents mode', () => {
  const ds = new TokenDataset([[1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 20, 21]]);
  const a = new DataLoader(ds, { batchSize: 4, seqLen: 4, seed: 3 });
  const b = new DataLoader(ds, { batchSize: 4, seqLen: 4, seed: 3 });
  const x = a.next();
  assert.deepEqual(x, b.next());
  for (let r = 0; r < 4; r++) for (let t = 0; t < 3; t++) assert.equal(x.targets[r * 4 + t], x.inputs[r * 4 + t + 1]);
  assert.equal(x.count, 16);
  // The state resumes the sequence of batches.
  const s = a.state, next = a.next();
  a.state = s;
  assert.deepEqual(a.next(), next);
  const d = new DataLoader(ds, { batchSize: 64, seqLen: 6, seed: 1, mode: 'documents', padId: 0 });
  const y = d.next();
  let sawShort = false;
  for (let r = 0; r < 64; r++) {
    const row = Array.from(y.inputs.subarray(r * 6, r * 6 + 6)), tg = Array.from(y.targets.subarray(r * 6, r * 6 + 6));
    if (row[1] === 20) {
      sawShort = true;
      assert.deepEqual(row, [1, 20, 21, 0, 0, 0]);
      assert.deepEqual(tg, [20, 21, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]);
    } else for (let t = 0; t < 6; t++) assert.equal(tg[t], row[t] + 1);
  }
  assert.ok(sawShort);
  assert.throws(() => new DataLoader(ds, { batchSize: 1, seqLen: 50, seed: 0 }), /fewer than one window/);
});

test('TokenDataset.fromText: documents split on blank lines, BOS/EOS added, held-out split; CharTokenizer round-trips', () => {
  const text = 'ab ba\n\ncab\n  \n\nbé!';
  const tok = CharTokenizer.fromText(text.replace(/\n\s*\n/g, ''));
  assert.equal(tok.decode(tok.encode('cab bé!', { bos: true, eos: true })), 'cab bé!');
  assert.throws(() => tok.encode('z'), /"z" is not in the vocabulary/);
  const ds = TokenDataset.fromText(text, tok);
  assert.equal(ds.docs.length, 3);
  assert.deepEqual(Array.from(ds.docs[1]), [tok.bosId, ...tok.encode('cab'), tok.eosId]);
  assert.equal(ds.tokens, 7 + 5 + 5);
  const [tr, va] = ds.split(0.3);
  assert.equal(tr.docs.length + va.docs.length, 3);
  assert.ok(va.docs.length >= 1 && tr.docs.length >= 1);
  assert.throws(() => new TokenDataset([[1, 2, 99]], 50), /token 99 is out of range for a vocabulary of 50/);
});

test('lmLoss ignores padded positions: changing pad inputs or adding padded rows leaves the loss unchanged', async () => {
  const model = await initLlama(cfg, 1);
  const base = { inputs: Int32Array.from([1, 5, 6, 7, 8, 9]), targets: Int32Array.from([5, 6, 7, 8, 9, 10]), B: 1, T: 6, count: 6 };
  const padded = {
    inputs: Int32Array.from([1, 5, 6, 7, 8, 9, 1, 11, 3, 3, 3, 3]),
    targets: Int32Array.from([5, 6, 7, 8, 9, 10, 11, 12, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]),
    B: 2, T: 6, count: 8,
  };
  const padded2 = { ...padded, inputs: Int32Array.from([1, 5, 6, 7, 8, 9, 1, 11, 30, 0, 17, 2]) };
  const lossOf = async (b: typeof base) => {
    const l = T.noGrad(() => T.tidy(() => lmLoss(model, b)));
    const v = await l.item();
    l.dispose();
    return v;
  };
  const a = await lossOf(padded), b = await lossOf(padded2);
  assert.equal(a, b, 'pad inputs changed the loss');
  // Mean over the 8 counted targets: (6 * loss(row0) + 2 * loss(row1 unpadded)) / 8.
  const r0 = await lossOf(base);
  const r1 = await lossOf({ inputs: Int32Array.from([1, 11]), targets: Int32Array.from([11, 12]), B: 1, T: 2, count: 2 });
  assert.ok(Math.abs(a - (6 * r0 + 2 * r1) / 8) < 1e-5, `${a} vs ${(6 * r0 + 2 * r1) / 8}`);
  model.w.dispose();
});

test('packed q|k|v and gate|up products (the training path) give the loss and gradients of separate products, GQA and q/k/v biases included', async () => {
  await T.initGpu();
  for (const extra of [{ nKvHeads: 2 }, { nKvHeads: 4, qkvBias: true }]) {
    const c = llamaConfig({ dim: 32, nLayers: 2, nHeads: 4, vocabSize: V, maxSeqLen: 64, hiddenDim: 48, ...extra });
    const model = await initLlama(c, 5);
    if (c.qkvBias) {
      // initLlama leaves biases at zero; make them matter.
      for (const [n, t] of model.w.map) if (n.endsWith('_proj.bias')) T.noGrad(() => T.copyInto(t, T.fill(t.shape, 0.05 * (n.length % 7) - 0.1)));
    }
    const B = 3, Tn = 21;
    const ids = T.Tensor.from(Int32Array.from({ length: B * Tn }, (_, i) => 1 + ((i * 17) % (V - 1))), [B, Tn], 'i32');
    const tg = T.Tensor.from(Int32Array.from({ length: B * Tn }, (_, i) => 1 + ((i * 23 + 5) % (V - 1))), [B, Tn], 'i32');
    const run = async (packed: boolean) => {
      T.zeroGrad(model.w.params());
      const loss = T.tidy(() => {
        const { logits } = model.forward(ids, { packed });
        const l = T.crossEntropy(logits!.reshape([B * Tn, V]), tg.reshape([B * Tn]));
        l.backward();
        return l;
      });
      const grads = new Map<string, Float32Array>();
      for (const [n, t] of model.w.map) grads.set(n, (await t.grad!.data()) as Float32Array);
      const v = await loss.item();
      loss.dispose();
      return { v, grads };
    };
    const a = await run(false), b = await run(true);
    assert.ok(Math.abs(a.v - b.v) <= 1e-6 * Math.abs(a.v), `loss ${a.v} vs ${b.v}`);
    for (const [n, ga] of a.grads) {
      const gb = b.grads.get(n)!;
      let num = 0, den = 0;
      for (let i = 0; i < ga.length; i++) { num += (ga[i] - gb[i]) ** 2; den += ga[i] ** 2; }
      assert.ok(den > 0, `${n}: zero gradient`);
      assert.ok(Math.sqrt(num / den) < 1e-5, `${n}: packed and separate gradients differ (relative ${Math.sqrt(num / den)})`);
    }
    T.zeroGrad(model.w.params());
    model.w.dispose();
    ids.dispose(); tg.dispose();
  }
});

test('a 2-layer d=32 Llama learns a synthetic counting/pattern corpus (loss < 0.5 from ~3.7)', async () => {
  const model = await initLlama(cfg, 11);
  const data = new DataLoader(syntheticCorpus(5), { batchSize: 16, seqLen: 32, seed: 2 });
  const tr = new Trainer(model, data, { steps: 200, lr: 1e-2, warmupSteps: 20, logEvery: 20 });
  const res = await tr.run();
  tr.dispose();
  const first = res.losses[0].loss, last = res.losses[res.losses.length - 1].loss;
  assert.ok(first > 2.5, `initial loss ${first} should be near ln(${V})`);
  assert.ok(last < 0.5, `final loss ${last} should be < 0.5 (losses ${res.losses.map((l) => l.loss.toFixed(3)).join(' ')})`);
  model.w.dispose();
});

test('resume from a checkpoint continues exactly as the uninterrupted run (bit-identical weights)', async () => {
  const dir = tmp();
  const corpus = syntheticCorpus(9);
  const opts = { steps: 24, lr: 5e-3, warmupSteps: 4, logEvery: 4, maxGradNorm: 0.5 };
  // Uninterrupted.
  const a = await initLlama(cfg, 3);
  const ta = new Trainer(a, new DataLoader(corpus, { batchSize: 4, seqLen: 16, seed: 21 }), { ...opts, checkpointPath: path.join(dir, 'a.ck'), checkpointEvery: 8 });
  await ta.run();
  const wa = await hostWeights(a);
  // Interrupted at step 12 (checkpoint written then), resumed by a fresh process-equivalent:
  // a different init and a different loader seed, both overwritten by the checkpoint.
  const b = await initLlama(cfg, 3);
  const ckb = path.join(dir, 'b.ck');
  const tb = new Trainer(b, new DataLoader(corpus, { batchSize: 4, seqLen: 16, seed: 21 }), { ...opts, checkpointPath: ckb, checkpointEvery: 12 });
  await tb.run({ until: 12 });
  tb.dispose();
  b.w.dispose();
  const c = await initLlama(cfg, 999);
  const tc = new Trainer(c, new DataLoader(corpus, { batchSize: 4, seqLen: 16, seed: 12345 }), { ...opts, checkpointPath: path.join(dir, 'c.ck'), checkpointEvery: 12 });
  await tc.resume(ckb);
  assert.equal(tc.step, 12);
  await tc.run();
  assert.equal(tc.step, 24);
  const wc = await hostWeights(c);
  for (const [k, va] of wa) assert.deepEqual(wc.get(k), va, `parameter ${k} differs after resume`);
  // The saved final checkpoints agree too, and rebuild the model.
  const fa = await modelFromCheckpoint(path.join(dir, 'a.ck'));
  assert.equal(fa.step, 24);
  const wf = await hostWeights(fa.model as Llama);
  for (const [k, va] of wa) assert.deepEqual(wf.get(k), va);
  for (const m of [a, c, fa.model]) m.w.dispose();
  ta.dispose();
  tc.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a truncated checkpoint fails with a clear error naming the file', async () => {
  const dir = tmp();
  const model = await initLlama(cfg, 4);
  const data = new DataLoader(syntheticCorpus(1), { batchSize: 2, seqLen: 8, seed: 1 });
  const tr = new Trainer(model, data, { steps: 2, lr: 1e-3, logEvery: 1 });
  await tr.run();
  const file = path.join(dir, 'run.ck');
  await tr.save(file);
  const bytes = fs.readFileSync(file);
  for (const keep of [Math.floor(bytes.length / 2), bytes.length - 7, 10]) {
    const torn = path.join(dir, `torn-${keep}.ck`);
    fs.writeFileSync(torn, bytes.subarray(0, keep));
    await assert.rejects(tr.resume(torn), (e: Error) => e.message.includes(torn) && /truncated|values for shape|missing/.test(e.message), `cut at ${keep}`);
  }
  await assert.rejects(tr.resume(path.join(dir, 'nope.ck')), /nope\.ck: checkpoint not found/);
  // A checkpoint of another architecture is refused by name.
  const other = await initLlama({ ...cfg, dim: 16, nHeads: 2, nKvHeads: 2 }, 1);
  const t2 = new Trainer(other, data, { steps: 1, lr: 1e-3 });
  await assert.rejects(t2.resume(file), /run\.ck: checkpoint was trained with dim=32/);
  t2.dispose();
  other.w.dispose();
  tr.dispose();
  model.w.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

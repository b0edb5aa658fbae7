import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type TokenRows, fveBigram, fveFloor, fveToken } from '../src/nla/baselines.js';
import { meanRow, mseNormalized, normalizeRows } from '../src/nla/fve.js';
import { probeAccuracy, probeProbabilities, trainProbe } from '../src/nla/probe.js';
import { probeAccuracyGpu, probePredictGpu, probeValues, trainProbeGpu } from '../src/nla/probe-gpu.js';
import { tokenProbes } from '../src/nla/model-text.js';
import { initGpu } from '../src/tensor/index.js';
import { type Rng, randInt, rng } from '../src/util/rng.js';

const d = 12;
const vocab = 10;

const gaussian = (r: Rng) => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
const randomVec = (r: Rng, w: number) => Float64Array.from({ length: w }, () => gaussian(r));

// Token sequences, and activations given by f(prev, cur) times a random positive scale (the
// norm varies, the direction does not: a normalised predictor can be exact).
function makeRows(r: Rng, n: number, f: (prev: number, cur: number) => Float64Array): TokenRows {
  const ids = new Int32Array(n);
  const prevIds = new Int32Array(n);
  const h = new Float32Array(n * d);
  let prev = -1;
  for (let i = 0; i < n; i++) {
    const cur = randInt(r, vocab);
    ids[i] = cur;
    prevIds[i] = prev;
    const scale = 0.5 + 2 * r();
    f(prev, cur).forEach((x, j) => (h[i * d + j] = x * scale));
    prev = i % 20 === 19 ? -1 : cur; // documents of 20 tokens
  }
  return { h, ids, prevIds };
}

test('the token lookup is exact when activations depend only on the current token', () => {
  const r = rng(1);
  const table = Array.from({ length: vocab }, () => randomVec(r, d));
  const f = (_p: number, c: number) => table[c]!;
  const res = fveToken(makeRows(r, 2000, f), makeRows(r, 500, f), d);
  assert.ok(Math.abs(res.fve - 1) < 1e-6, `fve ${res.fve}`);
  assert.ok(res.mse < 1e-6 && res.variance > 0.5);
});

test('an unseen token falls back to the global mean, which scores like the floor', () => {
  const r = rng(2);
  const table = Array.from({ length: vocab }, () => randomVec(r, d));
  const train = makeRows(r, 1000, (_p, c) => table[c]!);
  const test_ = { h: Float64Array.from(table[3]!), ids: [999] };
  const global = meanRow(normalizeRows(train.h, d), d);
  const expected = mseNormalized(global, test_.h, d)[0]!;
  assert.ok(Math.abs(fveToken(train, test_, d).mse - expected) < 1e-12);
  assert.ok(Math.abs(fveFloor(train, test_, d).mse - expected) < 1e-12);
});

test('the bigram lookup is exact when activations depend only on the (previous, current) pair', () => {
  const r = rng(3);
  const table = Array.from({ length: (vocab + 1) * vocab }, () => randomVec(r, d));
  const f = (p: number, c: number) => table[(p + 1) * vocab + c]!;
  const train = makeRows(r, 6000, f);
  const held = makeRows(r, 500, f);
  const bigram = fveBigram(train, held, d);
  assert.ok(Math.abs(bigram.fve - 1) < 1e-6, `bigram ${bigram.fve}`);
  // the current token alone cannot be exact here
  const token = fveToken(train, held, d);
  assert.ok(token.fve < 0.5, `token ${token.fve}`);
  // an unseen pair backs off to the token mean
  const unseen = { h: held.h.slice(0, d), ids: [held.ids[0]!], prevIds: [12345] };
  assert.ok(Math.abs(fveBigram(train, unseen, d).mse - fveToken(train, unseen, d).mse) < 1e-12);
});

test('the floor is below 0 on data with a common direction plus noise', () => {
  const r = rng(4);
  const common = randomVec(r, d);
  const f = () => common.map((x) => x + 0.8 * gaussian(r));
  const res = fveFloor(makeRows(r, 1000, f), makeRows(r, 300, f), d);
  assert.ok(res.fve < 0 && res.fve > -3, `floor ${res.fve}`);
});

function probeData(seed: number, n: number, dim: number, classes: number, separation: number) {
  const r = rng(seed);
  const centres = Array.from({ length: classes }, () => randomVec(r, dim));
  const y = new Int32Array(n);
  const x = new Float64Array(n * dim);
  for (let i = 0; i < n; i++) {
    y[i] = randInt(r, classes);
    const c = centres[y[i]!]!;
    for (let j = 0; j < dim; j++) x[i * dim + j] = separation * c[j]! + gaussian(r);
  }
  const v = normalizeRows(x, dim);
  const cut = Math.floor(n * 0.8);
  return { trainX: v.subarray(0, cut * dim), trainY: y.subarray(0, cut), testX: v.subarray(cut * dim), testY: y.subarray(cut) };
}

test('a probe reaches ~1.0 on separable classes (CPU float64 and GPU)', async () => {
  const { trainX, trainY, testX, testY } = probeData(5, 3000, 64, 8, 2);
  const acc = probeAccuracy(trainX, trainY, testX, testY, 8);
  assert.ok(acc > 0.97, `accuracy ${acc}`);
  await initGpu();
  const accGpu = await probeAccuracyGpu(trainX, trainY, testX, testY, 8);
  assert.ok(accGpu > 0.97, `GPU accuracy ${accGpu}`);
});

test('the GPU probe agrees with the CPU one on overlapping classes', async () => {
  const { trainX, trainY, testX, testY } = probeData(7, 2000, 16, 12, 0.4);
  const cpu = probeAccuracy(trainX, trainY, testX, testY, 12);
  await initGpu();
  const gpuAcc = await probeAccuracyGpu(trainX, trainY, testX, testY, 12);
  assert.ok(cpu > 0.2 && cpu < 0.97, `the task should be neither trivial nor hopeless: ${cpu}`);
  assert.ok(Math.abs(cpu - gpuAcc) < 0.05, `CPU ${cpu} vs GPU ${gpuAcc}`);
});

test('trainProbeGpu gives the CPU probe\'s class probabilities (thresholds on confidence depend on them)', async () => {
  const { trainX, trainY, testX } = probeData(8, 2000, 16, 6, 0.5);
  await initGpu();
  const cpu = probeProbabilities(trainProbe(trainX, trainY, 6), testX);
  const gpu = probeProbabilities(await trainProbeGpu(trainX, trainY, 6), testX);
  let worst = 0, mean = 0;
  for (let i = 0; i < cpu.length; i++) {
    const e = Math.abs(cpu[i]! - gpu[i]!);
    worst = Math.max(worst, e);
    mean += e / cpu.length;
  }
  // Same model and optimiser; the GPU's L2 is AdamW's decoupled decay and it runs in float32.
  assert.ok(mean < 0.01 && worst < 0.05, `mean |dp| ${mean}, worst ${worst}`);
  await assert.rejects(trainProbeGpu(trainX, trainY, 3), /label \d+ at \d+ not in \[0, 3\)/);
});

test('trainProbeGpu in mini-batches: a batch of every row is the full-batch fit, smaller ones reach the CPU probe', async () => {
  await initGpu();
  const { trainX, trainY, testX, testY } = probeData(7, 2000, 16, 12, 0.4);
  const full = await trainProbeGpu(trainX, trainY, 12);
  const whole = await trainProbeGpu(trainX, trainY, 12, { batchSize: trainY.length + 5 });
  assert.deepEqual(whole.w, full.w);
  assert.deepEqual(whole.b, full.b);
  const cpu = probeAccuracy(trainX, trainY, testX, testY, 12);
  // 1,600 rows in batches of 200: 300 steps are 37 passes, each step an eighth of the work.
  const mini = await probeAccuracyGpu(trainX, trainY, testX, testY, 12, { batchSize: 200 });
  assert.ok(Math.abs(mini - cpu) < 0.03, `mini-batch ${mini} vs CPU full batch ${cpu}`);
  const sep = probeData(5, 3000, 64, 8, 2);
  assert.ok((await probeAccuracyGpu(sep.trainX, sep.trainY, sep.testX, sep.testY, 8, { batchSize: 256 })) > 0.97);
  for (const bad of [0, 2.5, -1]) await assert.rejects(trainProbeGpu(trainX, trainY, 12, { batchSize: bad }), /batchSize .* is not a positive whole number/);
});

test('a probe is near chance on random labels', async () => {
  const { trainX, trainY, testX, testY } = probeData(6, 3000, 64, 8, 0);
  const acc = probeAccuracy(trainX, trainY, testX, testY, 8);
  assert.ok(Math.abs(acc - 1 / 8) < 0.06, `accuracy ${acc}`);
  assert.throws(() => probeAccuracy(trainX, trainY, testX, testY, 4), /label \d+ at \d+ not in \[0, 4\)/);
  await initGpu();
  const accGpu = await probeAccuracyGpu(trainX, trainY, testX, testY, 8);
  assert.ok(Math.abs(accGpu - 1 / 8) < 0.06, `GPU accuracy ${accGpu}`);
  await assert.rejects(probeAccuracyGpu(trainX, trainY, testX, testY, 4), /label \d+ at \d+ not in \[0, 4\)/);
});

test('token probes read the current and previous token when h holds them, and not the previous when it does not', async () => {
  await initGpu();
  const r = rng(11);
  const cur = Array.from({ length: vocab }, () => randomVec(r, d));
  const prev = Array.from({ length: vocab + 1 }, () => randomVec(r, d)); // index vocab: no previous token
  const both = (p: number, c: number) => cur[c]!.map((x, j) => x + prev[p < 0 ? vocab : p]![j]!);
  const rows = (f: (p: number, c: number) => Float64Array, seed: number) => [makeRows(rng(seed), 2000, f), makeRows(rng(seed + 1), 500, f)] as const;
  const [trainBoth, testBoth] = rows(both, 12);
  const a = await tokenProbes(trainBoth, testBoth, vocab);
  assert.ok(a.token > 0.95 && a.prevToken > 0.95 && a.both > 0.9, JSON.stringify(a));
  const [trainCur, testCur] = rows((_p, c) => cur[c]!, 14);
  const b = await tokenProbes(trainCur, testCur, vocab);
  assert.ok(b.token > 0.95, JSON.stringify(b));
  // Chance for the previous token is about 1/vocab (a row with none is 1 in 20).
  assert.ok(b.prevToken < 0.25, `h does not hold the previous token, yet the probe reads it in ${b.prevToken}`);
  assert.ok(b.both <= Math.min(b.token, b.prevToken) + 1e-12, JSON.stringify(b));
  // Joint means the same rows: counted from the two prediction vectors, not multiplied.
  const predCur = await probePredictGpu(trainCur.h, trainCur.ids, testCur.h, vocab);
  assert.equal(predCur.length, testCur.ids.length);
  const hits = predCur.reduce((s, c, i) => s + +(c === testCur.ids[i]), 0) / predCur.length;
  assert.ok(Math.abs(hits - b.token) < 0.03, `predictions ${hits} vs accuracy ${b.token}`);
});

test('probeValues: classes are the values training saw; an unseen test value counts as wrong; undefined rows are left out', async () => {
  await initGpu();
  const { trainX, trainY, testX, testY } = probeData(5, 3000, 64, 8, 2);
  const names = ['ant', 'bee', 'cat', 'dog', 'eel', 'fox', 'gnu', 'hen'];
  const dim = 64;
  const trainV = Array.from(trainY, (y, i) => (i % 10 === 0 ? undefined : names[y]));
  // Class 7 ('hen') never appears in training: its test rows must count as wrong.
  const trainV2 = trainV.map((v) => (v === 'hen' ? undefined : v));
  const testV = Array.from(testY, (y) => names[y]);
  const all = (await probeValues(Float32Array.from(trainX), trainV, Float32Array.from(testX), testV, dim))!;
  assert.equal(all.n, testV.length);
  assert.ok(all.acc > 0.97, `accuracy ${all.acc}`);
  const missing = (await probeValues(Float32Array.from(trainX), trainV2, Float32Array.from(testX), testV, dim))!;
  const henShare = testV.filter((v) => v === 'hen').length / testV.length;
  assert.ok(henShare > 0.05);
  assert.ok(Math.abs(missing.acc - (all.acc - henShare)) < 0.03, `unseen value rows count as wrong: ${missing.acc} vs ${all.acc} - ${henShare}`);
  const one = await probeValues(Float32Array.from(trainX), trainV.map(() => 'ant'), Float32Array.from(testX), testV, dim);
  assert.equal(one, undefined, 'a single class is no probe');
  assert.equal(await probeValues(Float32Array.from(trainX), trainV, Float32Array.from(testX), testV.map(() => undefined), dim), undefined);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../src/tensor/index.js';
import * as nn from '../src/tensor/reference/nn.js';
import { randomNd } from '../src/testing/property.js';

const shapes = [[3, 5], [7], [1], [2, 1, 3]];

function closeArr(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(got.length, want.length, what);
  for (let i = 0; i < want.length; i++) {
    assert.ok(Math.abs(got[i] - want[i]) <= tol * (1 + Math.abs(want[i])), `${what}[${i}]: got ${got[i]}, want ${want[i]}`);
  }
}

function setup(seed: number) {
  const init = shapes.map((s, i) => randomNd(s, seed + i));
  const params = init.map((x, i) => T.param(T.Tensor.from(x.data, x.shape), `p${i}`));
  const grads = (step: number) => shapes.map((s, i) => randomNd(s, seed * 31 + step * 7 + i, -2, 2));
  const setGrads = (gs: ReturnType<typeof grads>) => params.forEach((p, i) => { p.grad?.dispose(); p.grad = T.keep(T.Tensor.from(gs[i].data, gs[i].shape)); });
  return { init, params, grads, setGrads };
}

test('AdamW matches the float64 PyTorch-semantics reference over several steps (param groups, scheduled lr)', async () => {
  await T.initGpu();
  const { init, params, grads, setGrads } = setup(11);
  const sched = T.cosineSchedule({ maxLr: 0.01, minLr: 0.001, warmupSteps: 2, totalSteps: 6 });
  const opt = new T.AdamW([{ params: params.slice(0, 2) }, { params: params.slice(2), weightDecay: 0, lrScale: 0.5 }], { lr: sched, weightDecay: 0.1, betas: [0.9, 0.95], eps: 1e-8 });
  const ref = init.map((x) => ({ p: x.data.slice(), m: new Float64Array(x.size), v: new Float64Array(x.size) }));
  for (let step = 0; step < 6; step++) {
    const gs = grads(step);
    setGrads(gs);
    const lr = opt.currentLr();
    assert.equal(lr, sched(step));
    ref.forEach((r, i) => nn.adamwStep(r.p, gs[i].data, r.m, r.v, step + 1, { lr: lr * (i < 2 ? 1 : 0.5), beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: i < 2 ? 0.1 : 0 }));
    assert.equal(opt.step(), undefined);
  }
  for (let i = 0; i < params.length; i++) closeArr(await params[i].data(), ref[i].p, 2e-6, `param ${i}`);
  const st = await opt.state();
  closeArr(st.params[0].slots.m, ref[0].m, 1e-5, 'm');
  closeArr(st.params[0].slots.v, ref[0].v, 1e-5, 'v');
  assert.equal(st.params[3].step, 6);
  opt.dispose();
});

test('SGD (plain, momentum, nesterov, weight decay) matches the reference', async () => {
  await T.initGpu();
  for (const h of [{ momentum: 0, nesterov: false, weightDecay: 0 }, { momentum: 0.9, nesterov: false, weightDecay: 0.01 }, { momentum: 0.8, nesterov: true, weightDecay: 0 }]) {
    const { init, params, grads, setGrads } = setup(5);
    const opt = new T.SGD(params, { lr: 0.1, ...h });
    const ref = init.map((x) => ({ p: x.data.slice(), b: new Float64Array(x.size) }));
    for (let step = 0; step < 4; step++) {
      const gs = grads(step);
      setGrads(gs);
      ref.forEach((r, i) => nn.sgdStep(r.p, gs[i].data, r.b, step === 0, { lr: 0.1, ...h }));
      opt.step();
    }
    for (let i = 0; i < params.length; i++) closeArr(await params[i].data(), ref[i].p, 2e-6, `sgd ${JSON.stringify(h)} param ${i}`);
  }
});

test('clipGradNorm returns the global norm as a tensor and scales every gradient exactly once', async () => {
  await T.initGpu();
  const { params, grads, setGrads } = setup(3);
  const gs = grads(0);
  setGrads(gs);
  const want = Math.sqrt(gs.reduce((s, g) => s + g.data.reduce((a, v) => a + v * v, 0), 0));
  const maxNorm = want / 3;
  const norm = T.clipGradNorm(params, maxNorm);
  assert.deepEqual(norm.shape, []);
  assert.ok(Math.abs((await norm.item()) - want) < 1e-5 * want, `norm ${await norm.item()} vs ${want}`);
  const coef = maxNorm / (want + 1e-6);
  for (let i = 0; i < params.length; i++) closeArr(await params[i].grad!.data(), Array.from(gs[i].data, (v) => v * coef), 1e-6, `clipped grad ${i}`);
  // Below the threshold nothing changes.
  setGrads(gs);
  T.clipGradNorm(params, want * 2);
  for (let i = 0; i < params.length; i++) closeArr(await params[i].grad!.data(), gs[i].data, 0, `unclipped grad ${i}`);
  // Two leaves whose gradients share one buffer (a + b) are scaled once each, not twice.
  const a = T.param(T.Tensor.from([3, 0], [2])), b = T.param(T.Tensor.from([0, 0], [2]));
  T.add(a, b).backward(T.Tensor.from([3, 4], [2]));
  assert.ok(Math.abs((await T.clipGradNorm([a, b], 1).item()) - Math.sqrt(50)) < 1e-5);
  closeArr(await a.grad!.data(), [3 / Math.sqrt(50), 4 / Math.sqrt(50)], 1e-6, 'shared a');
  closeArr(await b.grad!.data(), [3 / Math.sqrt(50), 4 / Math.sqrt(50)], 1e-6, 'shared b');
});

test('maxGradNorm inside AdamW.step equals clipGradNorm then step', async () => {
  await T.initGpu();
  const A = setup(8), B = setup(8);
  const optA = new T.AdamW(A.params, { lr: 0.01, maxGradNorm: 0.5 });
  const optB = new T.AdamW(B.params, { lr: 0.01 });
  for (let step = 0; step < 3; step++) {
    A.setGrads(A.grads(step));
    B.setGrads(B.grads(step));
    const na = optA.step()!;
    const nb = T.clipGradNorm(B.params, 0.5);
    optB.step();
    assert.ok(Math.abs((await na.item()) - (await nb.item())) < 1e-5);
  }
  for (let i = 0; i < shapes.length; i++) closeArr(await A.params[i].data(), await B.params[i].data(), 1e-6, `param ${i}`);
});

test('state()/loadState() round trip continues training identically', async () => {
  await T.initGpu();
  const A = setup(21), B = setup(21);
  const optA = new T.AdamW(A.params, { lr: 0.02, weightDecay: 0.05 });
  for (let step = 0; step < 2; step++) { A.setGrads(A.grads(step)); optA.step(); }
  const st = await optA.state();
  for (let i = 0; i < shapes.length; i++) {
    const d = await A.params[i].data();
    B.params[i].dispose();
    B.params[i] = T.param(T.Tensor.from(d, shapes[i]));
  }
  const optB = new T.AdamW(B.params, { lr: 0.02, weightDecay: 0.05 });
  optB.loadState(st);
  assert.equal(optB.stepCount, 2);
  A.setGrads(A.grads(2)); optA.step();
  B.setGrads(A.grads(2)); optB.step();
  for (let i = 0; i < shapes.length; i++) assert.deepEqual(Array.from(await B.params[i].data()), Array.from(await A.params[i].data()));
  const bad = { ...st, params: st.params.slice(1) };
  assert.throws(() => optB.loadState(bad), /AdamW.loadState: state has 3 parameters, optimizer has 4/);
});

test('loadState: a parameter never updated (step 0, zero moments) gets no state tensors until its first update, and training continues identically', async () => {
  await T.initGpu();
  // As an RL step whose rollouts never parsed leaves the AR without moments: only p0 and p1 are updated before saving.
  const A = setup(41), B = setup(41);
  const optA = new T.AdamW(A.params, { lr: 0.02, weightDecay: 0.05 });
  const some = (gs: ReturnType<typeof A.grads>) => A.params.forEach((p, i) => { p.grad?.dispose(); p.grad = i < 2 ? T.keep(T.Tensor.from(gs[i].data, gs[i].shape)) : undefined; });
  for (let step = 0; step < 2; step++) { some(A.grads(step)); optA.step(); }
  const st = await optA.state();
  assert.deepEqual(st.params.map((p) => p.step), [2, 2, 0, 0]);
  const live = () => T.poolStats().liveBuffers;
  for (let i = 0; i < shapes.length; i++) {
    const d = await A.params[i].data();
    B.params[i].dispose();
    B.params[i] = T.param(T.Tensor.from(d, shapes[i]));
  }
  const optB = new T.AdamW(B.params, { lr: 0.02, weightDecay: 0.05 });
  const before = live();
  await optB.loadStateStreamed({ ...st, params: st.params.map((p) => ({ ...p, slots: Object.fromEntries(Object.entries(p.slots).map(([k, v]) => [k, () => v])) })) });
  assert.equal(live() - before, 4, 'moments for the two updated parameters only (m and v each)');
  assert.deepEqual((await optB.state()).params.map((p) => p.step), [2, 2, 0, 0]);
  // All four now updated: the never-updated ones start from zero moments in both runs.
  A.setGrads(A.grads(2)); optA.step();
  B.setGrads(A.grads(2)); optB.step();
  for (let i = 0; i < shapes.length; i++) assert.deepEqual(Array.from(await B.params[i].data()), Array.from(await A.params[i].data()), `p${i}`);
  // Step 0 with a non-zero moment (not what state() writes) is kept as given.
  const odd = await optA.state();
  odd.params[3] = { ...odd.params[3], step: 0, slots: { m: new Float32Array(odd.params[3].slots.m.length), v: Float32Array.from(odd.params[3].slots.v) } };
  const optC = new T.AdamW(B.params, { lr: 0.02 });
  optC.loadState(odd);
  const got = (await optC.state()).params[3];
  assert.deepEqual(Array.from(got.slots.v), Array.from(odd.params[3].slots.v));
  assert.ok(got.slots.v.some((x) => x !== 0));
  for (const o of [optA, optB, optC]) o.dispose();
});

test('schedules: warm-up then cosine decay', () => {
  const f = T.cosineSchedule({ maxLr: 1, minLr: 0.1, warmupSteps: 4, totalSteps: 14 });
  assert.deepEqual([0, 1, 2, 3].map(f), [0.25, 0.5, 0.75, 1]);
  assert.equal(f(4), 1);
  assert.ok(Math.abs(f(9) - 0.55) < 1e-12);
  assert.equal(f(14), 0.1);
  assert.equal(f(100), 0.1);
  assert.equal(T.cosineWithWarmup(9, { baseLr: 1, warmup: 4, total: 14, minRatio: 0.1 }), f(9));
  const l = T.linearSchedule({ maxLr: 1, warmupSteps: 0, totalSteps: 10 });
  assert.equal(l(5), 0.5);
});

test('optimizer errors name the parameter', async () => {
  await T.initGpu();
  const p = T.Tensor.from([1, 2], [2]);
  assert.throws(() => new T.AdamW([p], { lr: 1 }), /AdamW: parameter #\d+ \[2\] does not require grad/);
  const q = T.param(T.Tensor.from([1, 2, 3, 4], [2, 2]), 'w');
  const opt = new T.SGD([q], { lr: 1 });
  q.grad = T.keep(T.Tensor.from([1, 2], [2]));
  assert.throws(() => opt.step(), /SGD.step: gradient \[2\] f32 of w \[2,2\] must be a dense f32 tensor of the same shape/);
  assert.throws(() => T.clipGradNorm([q], 0), /clipGradNorm: maxNorm must be positive/);
});

test('a tiny LM trains (loss falls) with memory flat across steps', async () => {
  await T.initGpu();
  const V = 11, D = 8, N = 12;
  const r = (n: number, s: number) => Float32Array.from(randomNd([n], s, -0.5, 0.5).data);
  const emb = T.param(T.Tensor.from(r(V * D, 1), [V, D]), 'emb');
  const norm = T.param(T.Tensor.from(new Float32Array(D).fill(1), [D]), 'norm');
  const head = T.param(T.Tensor.from(r(V * D, 2), [V, D]), 'head');
  const ids = T.Tensor.from(Int32Array.from({ length: N }, (_, i) => (i * 3) % V));
  const tgt = T.Tensor.from(Int32Array.from({ length: N }, (_, i) => (i * 3 + 1) % V));
  const opt = new T.AdamW([emb, norm, head], { lr: T.cosineSchedule({ maxLr: 0.05, warmupSteps: 2, totalSteps: 40 }), maxGradNorm: 1 });
  const losses: number[] = [];
  let live = 0;
  for (let step = 0; step < 40; step++) {
    const loss = T.tidy(() => {
      const h = T.rmsNorm(T.embedding(emb, ids), norm).reshape([1, N, 2, 4]).rope().reshape([N, D]);
      const l = T.crossEntropy(T.linear(h, head), tgt);
      l.backward();
      return l;
    });
    opt.step();
    opt.zeroGrad();
    losses.push(await loss.item());
    loss.dispose();
    if (step === 5) live = T.poolStats().liveBuffers;
  }
  assert.equal(T.poolStats().liveBuffers, live, 'live buffers grew across steps');
  assert.ok(losses[39] < losses[0] * 0.5, `loss ${losses[0]} -> ${losses[39]}`);
  assert.ok((await opt.gradNorm!.item()) > 0);
});

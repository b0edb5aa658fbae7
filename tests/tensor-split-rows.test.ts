// Row ops over tensors bigger than one storage binding: split into chunks of whole rows. The
// engine is told the binding limit is 16 KiB (setBindingLimit), so tensors of a few thousand
// elements take the split path a real vocabulary's logits take at 128 MiB; every case asserts
// that its tensor is over that limit (an unsplit op would be refused by the runtime). Values
// and gradients against the float64 reference over random shapes; the last test lifts the
// lowering and runs cross-entropy over logits truly above the device's own limit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as T from '../src/tensor/index.js';
import * as nn from '../src/tensor/reference/nn.js';
import * as core from '../src/tensor/reference/core.js';
import { bindingLimit, setBindingLimit } from '../src/tensor/binding.js';
import { checkOp, property, randomInts, randomNd } from '../src/testing/property.js';
import { Nd } from '../src/tensor/reference/nd.js';
import { attention as refAttention } from '../src/tensor/reference/attention.js';

const LIMIT = 16 * 1024;
await T.initGpu();
setBindingLimit(LIMIT);

/** [rows, n] with rows * n f32 above the lowered limit by up to a few chunks. */
const arbRows = (maxN: number) =>
  fc.tuple(fc.integer({ min: 1, max: maxN }), fc.integer({ min: 1, max: 3000 }), fc.integer({ min: 1, max: 1e6 })).map(([n, extra, seed]) => {
    const rows = Math.ceil(LIMIT / 4 / n) + extra;
    return { rows, n, seed };
  });
const over = (shape: number[], bytesPer = 4) => assert.ok(shape.reduce((a, b) => a * b, 1) * bytesPer > LIMIT, `${shape} is not above the lowered limit`);

for (const name of ['softmax', 'logSoftmax'] as const) {
  test(`${name} split by rows matches float64, gradient too`, async () => {
    assert.equal(bindingLimit(), LIMIT);
    await property(arbRows(60), async ({ rows, n, seed }) => {
      over([rows, n]);
      await checkOp({ name, inputs: [randomNd([rows, n], seed, -4, 4)], gpu: ([x]) => T[name](x), ref: ([x]) => nn[name](x), atol: 2e-6, rtol: 2e-5, grad: true, maxFdCoords: 40 });
    }, { numRuns: 8 });
  });
}

test('softmax of a strided view of a big tensor, split (other axis)', async () => {
  const x = randomNd([70, 90], 5, -3, 3);
  over(x.shape);
  await checkOp({ name: 'softmax axis 0', inputs: [x], gpu: ([a]) => T.softmax(a, 0), ref: ([a]) => core.permute(nn.softmax(core.permute(a, [1, 0])), [1, 0]), atol: 2e-6, rtol: 2e-5, grad: true });
});

test('crossEntropy / tokenLogProbs split by rows (mask, ignoreIndex, every reduction) match float64, gradients too', async () => {
  await property(fc.tuple(arbRows(60), fc.constantFrom('mean', 'sum', 'none' as const), fc.boolean(), fc.boolean()), async ([{ rows, n, seed }, reduction, masked, ignore]) => {
    over([rows, n]);
    const x = randomNd([rows, n], seed, -5, 5);
    const t = randomInts([rows], seed + 1, ignore ? -1 : 0, n);
    const mask = masked ? randomInts([rows], seed + 2, 0, 2) : undefined;
    const opts = { reduction, ignoreIndex: ignore ? -1 : undefined };
    await checkOp({
      name: `crossEntropy ${reduction}${masked ? ' masked' : ''}${ignore ? ' ignore' : ''}`,
      inputs: mask ? [x, t, mask] : [x, t],
      dtypes: mask ? ['f32', 'i32', 'f32'] : ['f32', 'i32'],
      gpu: ([a, b, m]) => T.crossEntropy(a, b, { ...opts, mask: m }),
      ref: ([a, b, m]) => nn.crossEntropy(a, b, { ...opts, mask: m }),
      atol: 3e-5, rtol: 3e-5, grad: [0], maxFdCoords: 40,
    });
    const tt = randomInts([rows], seed + 3, 0, n);
    await checkOp({ name: 'tokenLogProbs', inputs: [x, tt], dtypes: ['f32', 'i32'], gpu: ([a, b]) => T.tokenLogProbs(a, b), ref: ([a, b]) => nn.tokenLogProbs(a, b), atol: 3e-5, rtol: 3e-5, grad: [0] });
  }, { numRuns: 8 });
});

test('rmsNorm / layerNorm split by rows match float64, gradients of x, weight and bias too', async () => {
  await property(fc.tuple(arbRows(60), fc.boolean()), async ([{ rows, n, seed }, bias]) => {
    over([rows, n]);
    const x = randomNd([rows, n], seed, -2, 2), w = randomNd([n], seed + 1, 0.5, 1.5), b = randomNd([n], seed + 2);
    await checkOp({ name: 'rmsNorm', inputs: [x, w], gpu: ([a, c]) => T.rmsNorm(a, c, 1e-5), ref: ([a, c]) => nn.rmsNorm(a, c, 1e-5), atol: 2e-5, rtol: 2e-5, grad: true, maxFdCoords: 40 });
    await checkOp({
      name: 'layerNorm', inputs: bias ? [x, w, b] : [x, w],
      gpu: ([a, c, d]) => T.layerNorm(a, c, d, 1e-5), ref: ([a, c, d]) => nn.layerNorm(a, c, d, 1e-5),
      atol: 2e-5, rtol: 2e-5, grad: true, gradAtol: 4e-3, maxFdCoords: 40,
    });
  }, { numRuns: 6 });
});

test('swiglu split by rows matches float64, gradient too', async () => {
  await property(arbRows(30), async ({ rows, n, seed }) => {
    over([rows, 2 * n]);
    await checkOp({ name: 'swiglu', inputs: [randomNd([rows, 2 * n], seed, -3, 3)], gpu: ([y]) => T.swiglu(y), ref: ([y]) => nn.swiglu(y), atol: 2e-6, rtol: 2e-5, grad: true, maxFdCoords: 40 });
  }, { numRuns: 6 });
});

test('reductions of big tensors (by rows, by leading rows, and rows wider than a binding) match float64, gradients too', async () => {
  const ops = ['sum', 'mean', 'max', 'min', 'logsumexp'] as const;
  await property(fc.tuple(arbRows(60), fc.constantFrom(...ops), fc.constantFrom('all', 'last', 'first'), fc.boolean()), async ([{ rows, n, seed }, name, which, keep]) => {
    const x = randomNd(which === 'all' ? [rows * n] : [rows, n], seed, -3, 3);
    over(x.shape);
    // all: one row of every element (wider than the limit); last: rows; first: leading rows (column sums).
    const axes = which === 'all' ? undefined : which === 'last' ? [1] : [0];
    await checkOp({ name: `${name}(${which})`, inputs: [x], gpu: ([a]) => T[name](a, axes, keep), ref: ([a]) => core[name](a, axes ?? [0], keep), atol: 1e-4, rtol: 1e-4, grad: true });
  }, { numRuns: 12 });
});

test('rope split along batch and time (start, positions [T] and [B, T], a strided packed view) matches float64, gradient too', async () => {
  await property(fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 3 }), fc.constantFrom('interleaved' as const, 'half' as const), fc.constantFrom('start', 'shared', 'batch'), fc.integer({ min: 1, max: 1e6 })), async ([B, H, half, layout, pos, seed]) => {
    const Dh = 2 * half, Tn = Math.ceil(LIMIT / 4 / (B * H * Dh)) + 37;
    over([B, Tn, H, Dh]);
    const pshape = pos === 'shared' ? [Tn] : [B, Tn];
    const p = randomInts(pshape, seed + 1, 0, 200);
    if (pos === 'start') {
      await checkOp({ name: `rope ${layout} start`, inputs: [randomNd([B, Tn, H, Dh], seed)], gpu: ([x]) => T.rope(x, { positions: 5, layout }), ref: ([x]) => nn.rope(x, 5, 10000, layout), atol: 2e-6, rtol: 1e-5, grad: true, maxFdCoords: 40 });
      // Heads of a packed [B, T, (H + 1) * Dh] projection: a strided view.
      await checkOp({
        name: `rope ${layout} packed`, inputs: [randomNd([B, Tn, (H + 1) * Dh], seed + 2)],
        gpu: ([x]) => T.rope(x.slice(2, 0, H * Dh).reshape([B, Tn, H, Dh]), { positions: 3, layout }),
        ref: ([x]) => nn.rope(core.slice(x, 2, 0, H * Dh).reshape([B, Tn, H, Dh]), 3, 10000, layout), atol: 2e-6, rtol: 1e-5, grad: true,
      });
    } else {
      await checkOp({
        name: `rope ${layout} positions ${pshape}`, inputs: [randomNd([B, Tn, H, Dh], seed), p], dtypes: ['f32', 'i32'],
        gpu: ([x, q]) => T.rope(x, { positions: q, layout, theta: 500 }), ref: ([x, q]) => nn.rope(x, q, 500, layout), atol: 2e-6, rtol: 1e-5, grad: [0], maxFdCoords: 40,
      });
    }
  }, { numRuns: 10 });
});

test('embedding with an output and gradient beyond one binding (CSR and atomic scatter), weight split by vocabulary too, matches float64', async () => {
  await property(fc.tuple(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 2, max: 300 }), fc.integer({ min: 1, max: 2000 }), fc.boolean(), fc.integer({ min: 1, max: 1e6 })), async ([D, V0, extra, atomic, seed]) => {
    const rows = Math.ceil(LIMIT / 4 / D) + extra;
    over([rows, D]);
    // Some weights are beyond one binding as well (vocabulary chunks of the gather and scatter).
    const V = seed % 2 ? V0 : Math.ceil(LIMIT / 4 / D) + V0;
    const ids = randomInts([rows], seed + 1, 0, V);
    await checkOp({
      name: `embedding ${atomic ? 'atomic' : 'csr'} V ${V}`, inputs: [randomNd([V, D], seed), ids], dtypes: ['f32', 'i32'],
      // A reshaped view has no host copy of the ids: the atomic scatter.
      gpu: ([w, i]) => T.embedding(w, atomic ? i.reshape([-1, 1]).reshape([rows]) : i), ref: ([w, i]) => nn.embedding(w, i), atol: 0, rtol: 0, grad: [0], gradAtol: 1e-3, maxFdCoords: 40,
    });
  }, { numRuns: 8 });
});

test('takeAlong over rows beyond one binding matches float64, gradient too', async () => {
  await property(arbRows(60), async ({ rows, n, seed }) => {
    over([rows, n]);
    await checkOp({ name: 'takeAlong', inputs: [randomNd([rows, n], seed), randomInts([rows], seed + 1, 0, n)], dtypes: ['f32', 'i32'], gpu: ([x, i]) => T.takeAlong(x, i), ref: ([x, i]) => nn.takeAlong(x, i), atol: 0, rtol: 0, grad: [0], maxFdCoords: 40 });
  }, { numRuns: 6 });
});

test('headLogProbs with a weight and logit chunks beyond one binding matches float64, gradients in h and w too', async () => {
  await property(fc.tuple(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 24 }), fc.integer({ min: 1, max: 500 }), fc.integer({ min: 1, max: 1e6 })), async ([rows, d, extra, seed]) => {
    const V = Math.ceil(LIMIT / 4 / d) + extra;
    over([V, d]);
    await checkOp({
      name: 'headLogProbs', inputs: [randomNd([rows, d], seed, -1.5, 1.5), randomNd([V, d], seed + 1, -1.5, 1.5), randomInts([rows], seed + 2, 0, V)], dtypes: ['f32', 'f32', 'i32'],
      gpu: ([h, w, t]) => T.headLogProbs(h, w, t), ref: ([h, w, t]) => nn.tokenLogProbs(core.matmul(h, core.permute(w, [1, 0])), t),
      atol: 2e-5, rtol: 2e-5, grad: [0, 1], maxFdCoords: 40,
    });
  }, { numRuns: 6 });
});

test('attention over q/k/v and outputs beyond one binding (batch chunks; plain, permuted and packed q|k|v views; masks) matches float64, gradients too', async () => {
  const arb = fc.record({
    heads: fc.constantFrom<[number, number]>([2, 1], [4, 2], [4, 1]), T: fc.integer({ min: 3, max: 20 }), D: fc.constantFrom(8, 16),
    layout: fc.constantFrom('plain', 'permuted', 'packed'), causal: fc.boolean(), mask: fc.constantFrom('none', 'keys', 'lengths'), seed: fc.integer({ min: 1, max: 1e6 }),
  });
  await property(arb, async (c) => {
    const [H, Hkv] = c.heads, Ht = H + 2 * Hkv;
    const B = Math.ceil(LIMIT / (4 * c.T * Ht * c.D)) + 1 + (c.seed % 3);
    over([B, c.T, Ht, c.D]);
    const r = randomInts([B * c.T], c.seed + 5, 0, 4);
    const mask = new Nd([B, c.T], Float64Array.from(r.data, (x, i) => +(x > 0 || i % c.T === 0)));
    const lengths = Array.from({ length: B }, (_, b) => 1 + ((b * 7 + c.seed) % c.T));
    const opts = (m?: T.Tensor): T.AttentionOptions => ({ causal: c.causal, keyMask: c.mask === 'keys' ? m : undefined, lengths: c.mask === 'lengths' ? lengths : undefined });
    const refOpts = (m?: Nd) => ({ causal: c.causal, keyMask: c.mask === 'keys' ? m : undefined, lengths: c.mask === 'lengths' ? lengths : undefined });
    if (c.layout === 'packed') {
      // One [B, T, H + 2 Hkv, D] projection; q, k, v are its heads viewed as [B, heads, T, D].
      const heads = (x: T.Tensor, a: number, n: number) => x.slice(2, a, a + n).permute([0, 2, 1, 3]);
      const headsRef = (x: Nd, a: number, n: number) => core.permute(core.slice(x, 2, a, a + n), [0, 2, 1, 3]);
      await checkOp({
        name: `attention packed ${JSON.stringify(c)}`, inputs: [randomNd([B, c.T, Ht, c.D], c.seed, -2, 2), mask],
        gpu: ([x, m]) => T.attention(heads(x, 0, H), heads(x, H, Hkv), heads(x, H + Hkv, Hkv), opts(m)),
        ref: ([x, m]) => refAttention(headsRef(x, 0, H), headsRef(x, H, Hkv), headsRef(x, H + Hkv, Hkv), refOpts(m)).out,
        atol: 2e-5, grad: [0], maxFdCoords: 40, seed: c.seed,
      });
      return;
    }
    const lay = (h: number) => (c.layout === 'permuted' ? [B, c.T, h, c.D] : [B, h, c.T, c.D]);
    const view = (x: T.Tensor) => (c.layout === 'permuted' ? x.permute([0, 2, 1, 3]) : x);
    const viewRef = (x: Nd) => (c.layout === 'permuted' ? core.permute(x, [0, 2, 1, 3]) : x);
    await checkOp({
      name: `attention ${JSON.stringify(c)}`, inputs: [randomNd(lay(H), c.seed, -2, 2), randomNd(lay(Hkv), c.seed + 1, -2, 2), randomNd(lay(Hkv), c.seed + 2), mask],
      gpu: ([q, k, v, m]) => T.attention(view(q), view(k), view(v), opts(m)),
      ref: ([q, k, v, m]) => refAttention(viewRef(q), viewRef(k), viewRef(v), refOpts(m)).out,
      atol: 2e-5, grad: [0, 1, 2], maxFdCoords: 40, seed: c.seed,
    });
  }, { numRuns: 10 });
});

test('attention against a KV cache whose one batch row is beyond one binding (split by kv-head groups) matches float64, gradients too', async () => {
  await property(fc.tuple(fc.constantFrom<[number, number]>([8, 4], [6, 3], [4, 4], [4, 2]), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 2, max: 30 }), fc.integer({ min: 1, max: 1e6 })), async ([[H, Hkv], Tq, Tk, seed]) => {
    // The bytes a slice of the cache spans (all heads' rows up to the last head's Tk) exceed the limit.
    const D = 8, Tmax = Math.ceil(LIMIT / (4 * D * (Hkv - 1))) + 8;
    assert.ok(((Hkv - 1) * Tmax + Tk) * D * 4 > LIMIT);
    await checkOp({
      name: `attention cache H ${H} Hkv ${Hkv} Tq ${Tq} Tk ${Tk}`, inputs: [randomNd([1, H, Tq, D], seed, -2, 2), randomNd([1, Hkv, Tmax, D], seed + 1, -2, 2), randomNd([1, Hkv, Tmax, D], seed + 2)],
      gpu: ([q, kc, vc]) => T.attention(q, kc.slice(2, 0, Tk), vc.slice(2, 0, Tk), { causal: true }),
      ref: ([q, kc, vc]) => refAttention(q, core.slice(kc, 2, 0, Tk), core.slice(vc, 2, 0, Tk), { causal: true }).out,
      atol: 2e-5, grad: [0, 1, 2], maxFdCoords: 40, seed,
    });
  }, { numRuns: 8 });
});

test('attention over the heads of one long packed q|k|v projection (one batch row; each head copied dense) matches float64, gradients too', async () => {
  await property(fc.tuple(fc.constantFrom<[number, number]>([4, 2], [2, 1], [4, 1]), fc.integer({ min: 1, max: 12 }), fc.boolean(), fc.integer({ min: 1, max: 1e6 })), async ([[H, Hkv], extra, causal, seed]) => {
    const D = 16, Ht = H + 2 * Hkv, Tn = Math.ceil(LIMIT / (4 * Ht * D)) + extra;
    over([1, Tn, Ht, D]);
    const heads = (x: T.Tensor, a: number, n: number) => x.slice(2, a, a + n).permute([0, 2, 1, 3]);
    const headsRef = (x: Nd, a: number, n: number) => core.permute(core.slice(x, 2, a, a + n), [0, 2, 1, 3]);
    await checkOp({
      name: `attention packed B 1 H ${H} Hkv ${Hkv} T ${Tn}`, inputs: [randomNd([1, Tn, Ht, D], seed, -2, 2)],
      gpu: ([x]) => T.attention(heads(x, 0, H), heads(x, H, Hkv), heads(x, H + Hkv, Hkv), { causal }),
      ref: ([x]) => refAttention(headsRef(x, 0, H), headsRef(x, H, Hkv), headsRef(x, H + Hkv, Hkv), { causal }).out,
      atol: 2e-5, grad: [0], maxFdCoords: 40, seed,
    });
  }, { numRuns: 6 });
});

test('a row wider than the lowered limit is refused naming the op', async () => {
  await T.initGpu();
  const x = T.Tensor.from(new Float32Array(2 * 5000), [2, 5000]);
  assert.throws(() => T.softmax(x), /softmax: .* beyond this GPU's maxStorageBufferBindingSize of 16384 B/);
  x.dispose();
});

test('a RoPE cos/sin table beyond the lowered limit is refused naming rope and the table, leaking nothing', async () => {
  // Dh 64: 32 frequencies; 70 positions need at least 4 * (32 + 2 * 70 * 32) = 18,048 B of table.
  const x = T.Tensor.from(new Float32Array(70 * 64), [1, 70, 1, 64]);
  const refused = /rope: the cos\/sin table of \d+ positions x 32 frequencies \(\d+ B\) is beyond this GPU's maxStorageBufferBindingSize of 16384 B/;
  assert.throws(() => T.tidy(() => T.rope(x, { positions: 0 })), refused);
  // The first call built (and cached) the table; a second refusal allocates nothing more.
  const before = T.poolStats().liveBytes;
  assert.throws(() => T.tidy(() => T.rope(x, { positions: 0 })), refused);
  assert.equal(T.poolStats().liveBytes, before);
  x.dispose();
});

test("crossEntropy over logits above the device's own binding limit matches float64 (loss and gradient)", async () => {
  setBindingLimit(undefined);
  const V = 131072, limit = bindingLimit();
  const rows = Math.floor(limit / (4 * V)) + 24;
  assert.ok(rows * V * 4 > limit, `logits of ${rows * V * 4} B are not above ${limit} B`);
  const x = randomNd([rows, V], 11, -6, 6), t = randomInts([rows], 12, 0, V);
  const xs = T.Tensor.from(Float32Array.from(x.data), [rows, V]);
  xs.requiresGrad = true;
  const ts = T.Tensor.from(Int32Array.from(t.data), [rows], 'i32');
  const loss = T.crossEntropy(xs, ts, { reduction: 'none' });
  const got = await loss.data();
  const want = nn.crossEntropy(x, t, { reduction: 'none' });
  for (let r = 0; r < rows; r++) assert.ok(Math.abs(got[r] - want.data[r]) <= 1e-4 * Math.abs(want.data[r]) + 1e-4, `row ${r}: ${got[r]} vs ${want.data[r]}`);
  // d sum(w_r * loss_r) / dx = w_r * (softmax(x_r) - onehot(t_r)): checked on rows in every chunk.
  const wr = randomNd([rows], 13);
  T.sum(T.mul(loss, T.Tensor.from(Float32Array.from(wr.data), [rows]))).backward();
  const g = await xs.grad!.data();
  for (const r of [0, 1, Math.floor(rows / 2), rows - 2, rows - 1]) {
    const row = x.data.subarray(r * V, (r + 1) * V);
    const lse = nn.logsumexpRow(row);
    for (const j of [0, t.data[r], V - 1, (r * 7919) % V]) {
      const want = wr.data[r] * (Math.exp(row[j] - lse) - (j === t.data[r] ? 1 : 0));
      assert.ok(Math.abs(g[r * V + j] - want) <= 1e-6 + 1e-4 * Math.abs(want), `grad [${r}, ${j}]: ${g[r * V + j]} vs ${want}`);
    }
  }
  for (const z of [xs, ts, loss]) z.dispose();
  void Nd;
});

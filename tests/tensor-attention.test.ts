import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as T from '../src/tensor/index.js';
import * as ref from '../src/tensor/reference/core.js';
import { permute } from '../src/tensor/reference/core.js';
import { attention as refAttention, type AttentionRefOptions } from '../src/tensor/reference/attention.js';
import { checkOp, Nd, property, randomNd, rng } from '../src/testing/property.js';

const HEADS: [number, number][] = [[1, 1], [2, 1], [4, 2], [8, 4], [4, 1]];
type MaskKind = 'none' | 'f32' | 'i32' | 'lengths';

// Sizes are never block multiples (blocks are 16-64 rows, chunks 4-8 elements of D).
const arbCase = fc.record({
  B: fc.integer({ min: 1, max: 3 }),
  heads: fc.constantFrom(...HEADS),
  Tq: fc.integer({ min: 1, max: 37 }),
  Tk: fc.option(fc.integer({ min: 1, max: 37 }), { nil: undefined }), // undefined: self-attention, Tk = Tq
  D: fc.constantFrom(4, 8, 16, 32),
  causal: fc.boolean(),
  mask: fc.constantFrom<MaskKind>('none', 'f32', 'i32', 'lengths'),
  permuted: fc.boolean(), // q/k/v given as [B,T,H,D] projections viewed as [B,H,T,D]
  seed: fc.integer({ min: 1, max: 1e6 }),
});

/** Random key validity: about a quarter masked, and batch row 0 sometimes entirely masked. */
function randomMask(B: number, Tk: number, seed: number): { mask: Nd; lengths: number[] } {
  const r = rng(seed);
  const empty = r() < 0.3;
  const mask = new Nd([B, Tk], Float64Array.from({ length: B * Tk }, (_, i) => (empty && i < Tk ? 0 : +(r() > 0.25))));
  const lengths = Array.from({ length: B }, (_, b) => (empty && b === 0 ? 0 : Math.floor(r() * (Tk + 1))));
  return { mask, lengths };
}

test('attention forward and gradients match the float64 reference (GQA, causal, masks, strided views)', async () => {
  await property(arbCase, async (c) => {
    const [H, Hkv] = c.heads;
    const Tk = c.Tk ?? c.Tq;
    const { mask, lengths } = randomMask(c.B, Tk, c.seed + 3);
    const lay = (h: number, t: number) => (c.permuted ? [c.B, t, h, c.D] : [c.B, h, t, c.D]);
    const view = (x: T.Tensor) => (c.permuted ? x.permute([0, 2, 1, 3]) : x);
    const viewRef = (x: Nd) => (c.permuted ? permute(x, [0, 2, 1, 3]) : x);
    const inputs = [randomNd(lay(H, c.Tq), c.seed, -2, 2), randomNd(lay(Hkv, Tk), c.seed + 1, -2, 2), randomNd(lay(Hkv, Tk), c.seed + 2)];
    const hasMask = c.mask === 'f32' || c.mask === 'i32';
    const opts = (m?: T.Tensor): T.AttentionOptions => ({ causal: c.causal, keyMask: m, lengths: c.mask === 'lengths' ? lengths : undefined });
    const refOpts = (m?: Nd): AttentionRefOptions => ({ causal: c.causal, keyMask: m, lengths: c.mask === 'lengths' ? lengths : undefined });
    await checkOp({
      name: `attention(${JSON.stringify(c)})`,
      inputs: hasMask ? [...inputs, mask] : inputs,
      dtypes: ['f32', 'f32', 'f32', c.mask === 'i32' ? 'i32' : 'f32'],
      gpu: ([q, k, v, m]) => T.attention(view(q), view(k), view(v), opts(m)),
      ref: ([q, k, v, m]) => refAttention(viewRef(q), viewRef(k), viewRef(v), refOpts(m)).out,
      atol: 2e-5,
      grad: [0, 1, 2],
      seed: c.seed,
    });
  }, { numRuns: 24 });
});

test('logsumexp output matches the reference; fully masked rows give 0 and -3e38, never NaN', async () => {
  // Causal with Tq > Tk: the first queries precede every key. Batch row 1 has no valid key at all.
  const [B, H, Tq, Tk, D] = [2, 2, 9, 5, 8];
  const q = randomNd([B, H, Tq, D], 11), k = randomNd([B, 1, Tk, D], 12), v = randomNd([B, 1, Tk, D], 13);
  const lengths = [5, 0];
  const want = refAttention(q, k, v, { causal: true, lengths });
  const [tq, tk, tv] = [q, k, v].map((x) => T.Tensor.from(Float32Array.from(x.data), x.shape));
  for (const t of [tq, tk, tv]) t.requiresGrad = true;
  const { out, lse } = T.attentionLse(tq, tk, tv, { causal: true, lengths });
  const [o, l] = [await out.data(), await lse.data()];
  for (let i = 0; i < want.out.size; i++) assert.ok(Math.abs(o[i] - want.out.data[i]) < 2e-5, `out[${i}] ${o[i]} vs ${want.out.data[i]}`);
  for (let i = 0; i < want.lse.size; i++) {
    if (want.lse.data[i] === -Infinity) assert.equal(l[i], Math.fround(-3e38), `lse[${i}]`);
    else assert.ok(Math.abs(l[i] - want.lse.data[i]) < 2e-5, `lse[${i}] ${l[i]} vs ${want.lse.data[i]}`);
  }
  out.backward(T.ones(out.shape));
  for (const t of [tq, tk, tv]) for (const g of await t.grad!.data()) assert.ok(Number.isFinite(g), 'gradient has NaN/Inf');
  for (const t of [tq, tk, tv, out]) { t.grad?.dispose(); t.dispose(); }
});

test('keys excluded by keyMask are never read into results (they may hold NaN)', async () => {
  const [B, H, Tq, Tk, D] = [2, 2, 18, 21, 8];
  const mask = new Nd([B, Tk], Float64Array.from({ length: B * Tk }, (_, i) => +(i % 5 !== 2)));
  const poison = (x: Nd) => x.map((a, i) => (mask.data[Math.floor(i / (Tk * D)) % B * Tk + (Math.floor(i / D) % Tk)] ? a : NaN));
  const q = randomNd([B, H, Tq, D], 71), k = poison(randomNd([B, 1, Tk, D], 72)), v = poison(randomNd([B, 1, Tk, D], 73));
  await checkOp({
    name: 'attention(NaN in masked keys)', inputs: [q, k, v, mask], grad: [0], atol: 2e-5,
    gpu: ([a, b, c, m]) => T.attention(a, b, c, { causal: true, keyMask: m }),
    ref: ([a, b, c, m]) => refAttention(a, b, c, { causal: true, keyMask: m }).out,
  });
  const [tq, tk, tv, tm] = [q, k, v, mask].map((x) => T.Tensor.from(Float32Array.from(x.data), x.shape));
  for (const t of [tk, tv]) t.requiresGrad = true;
  const out = T.attention(tq, tk, tv, { causal: true, keyMask: tm });
  out.backward(T.ones(out.shape));
  for (const t of [tk, tv]) {
    const g = await t.grad!.data();
    g.forEach((x, i) => assert.ok(mask.data[Math.floor(i / (Tk * D)) * Tk + (Math.floor(i / D) % Tk)] ? Number.isFinite(x) : x === 0, `grad[${i}] = ${x}`));
  }
  for (const t of [tq, tk, tv, tm, out]) { t.grad?.dispose(); t.dispose(); }
});

test('decode against a KV cache equals the last row of full causal attention', async () => {
  const [B, H, Hkv, Tn, Tmax, D] = [2, 4, 2, 13, 20, 16];
  const q = randomNd([B, H, Tn, D], 21), k = randomNd([B, Hkv, Tn, D], 22), v = randomNd([B, Hkv, Tn, D], 23);
  const want = refAttention(q, k, v, { causal: true }).out;
  const [tq, tk, tv] = [q, k, v].map((x) => T.Tensor.from(Float32Array.from(x.data), x.shape));
  // Cache rows past the current length hold NaN: a correct kernel never reads them.
  const kc = T.fill([B, Hkv, Tmax, D], NaN), vc = T.fill([B, Hkv, Tmax, D], NaN);
  T.writeKV(kc, tk.slice(2, 0, Tn - 1), 0); // prompt
  T.writeKV(vc, tv.slice(2, 0, Tn - 1), 0);
  T.writeKV(kc, tk.slice(2, Tn - 1, Tn), T.Tensor.from(new Int32Array(B).fill(Tn - 1), [B], 'i32')); // new token
  T.writeKV(vc, tv.slice(2, Tn - 1, Tn), [Tn - 1, Tn - 1]);
  const qLast = tq.slice(2, Tn - 1, Tn);
  for (const lengths of [Tn, [Tn, Tn], T.Tensor.from(new Int32Array(B).fill(Tn), [B], 'i32')]) {
    const got = await T.attentionDecode(qLast, kc, vc, lengths).data();
    for (let b = 0; b < B; b++)
      for (let h = 0; h < H; h++)
        for (let d = 0; d < D; d++) {
          const w = want.data[((b * H + h) * Tn + Tn - 1) * D + d], g = got[(b * H + h) * D + d];
          assert.ok(Math.abs(g - w) < 2e-5, `decode ${JSON.stringify(lengths)} [${b},${h},${d}]: ${g} vs ${w}`);
        }
  }
});

test('decode with ragged per-batch lengths and a long split cache matches the reference', async () => {
  for (const [B, H, Hkv, Tmax, D, lengths] of [[3, 4, 4, 30, 8, [30, 7, 1]], [1, 2, 1, 700, 32, [650]], [2, 8, 2, 40, 4, [0, 40]]] as const) {
    const q = randomNd([B, H, 1, D], 31), k = randomNd([B, Hkv, Tmax, D], 32), v = randomNd([B, Hkv, Tmax, D], 33);
    await checkOp({
      name: `attentionDecode(lengths ${lengths})`,
      inputs: [q, k, v],
      gpu: ([a, b, c]) => T.attentionDecode(a, b, c, lengths),
      ref: ([a, b, c]) => refAttention(a, b, c, { lengths }).out,
      atol: 2e-5,
    });
  }
});

test('writeKV places rows at per-batch positions and rejects out-of-range writes', async () => {
  const cache = T.zeros([2, 1, 6, 4]);
  const rows = T.Tensor.from(Float32Array.from({ length: 16 }, (_, i) => i + 1), [2, 1, 2, 4]);
  T.writeKV(cache, rows, [1, 4]);
  const c = await cache.data();
  for (let b = 0; b < 2; b++)
    for (let t = 0; t < 6; t++)
      for (let d = 0; d < 4; d++) {
        const p = b === 0 ? 1 : 4;
        const want = t >= p && t < p + 2 ? b * 8 + (t - p) * 4 + d + 1 : 0;
        assert.equal(c[((b * 6) + t) * 4 + d], want, `cache[${b},0,${t},${d}]`);
      }
  assert.throws(() => T.writeKV(cache, rows, 5), /writeKV: positions \[5, 7\) out of range for cache \[2,1,6,4\]/);
  assert.throws(() => T.writeKV(cache, rows, [0, 5]), /out of range/);
  cache.dispose(); rows.dispose();
});

test('options: explicit qStart, custom scale, keys with non-unit dim stride', async () => {
  const q = randomNd([1, 2, 6, 8], 41), k = randomNd([1, 2, 10, 8], 42), v = randomNd([1, 2, 10, 8], 43);
  await checkOp({
    name: 'attention(qStart 2, scale 0.3)', inputs: [q, k, v], grad: true,
    gpu: ([a, b, c]) => T.attention(a, b, c, { causal: true, qStart: 2, scale: 0.3 }),
    ref: ([a, b, c]) => refAttention(a, b, c, { causal: true, qStart: 2, scale: 0.3 }).out,
  });
  // k stored as [B, H, D, T]: the head dimension is strided, so the op densifies it first.
  const kT = permute(k, [0, 1, 3, 2]);
  await checkOp({
    name: 'attention(k with strided D)', inputs: [q, kT, v], grad: true,
    gpu: ([a, b, c]) => T.attention(a, b.transpose(2, 3), c),
    ref: ([a, b, c]) => refAttention(a, permute(b, [0, 1, 3, 2]), c).out,
  });
});

test('head size 64 (GPT-2) forward and gradients, permuted q view', async () => {
  // Separate from the property test: D = 64 kernels take LLVM ~15 s to compile on lavapipe (once; Mesa caches them).
  const q = randomNd([1, 19, 2, 64], 81), k = randomNd([1, 1, 23, 64], 82), v = randomNd([1, 1, 23, 64], 83);
  await checkOp({
    name: 'attention(D 64)', inputs: [q, k, v], grad: true, atol: 2e-5,
    gpu: ([a, b, c]) => T.attention(a.permute([0, 2, 1, 3]), b, c, { causal: true }),
    ref: ([a, b, c]) => refAttention(permute(a, [0, 2, 1, 3]), b, c, { causal: true }).out,
  });
});

test('q, k, v as consecutive heads of one packed tensor: values, gradients, and the packed gradient needs no assembly', async () => {
  await property(fc.tuple(fc.constantFrom(...HEADS), fc.integer({ min: 1, max: 2 }), fc.integer({ min: 3, max: 29 }), fc.constantFrom(4, 16), fc.integer({ min: 1, max: 1e6 })), async ([[H, Hkv], B, Tn, D, seed]) => {
    const heads = (x: T.Tensor, a: number, n: number) => x.slice(2, a, a + n).permute([0, 2, 1, 3]);
    const refHeads = (x: Nd, a: number, n: number) => permute(ref.slice(x, 2, a, a + n), [0, 2, 1, 3]);
    await checkOp({
      name: `attention(packed q|k|v, H ${H}, Hkv ${Hkv})`, inputs: [randomNd([B, Tn, H + 2 * Hkv, D], seed)], grad: true, atol: 2e-5,
      gpu: ([x]) => T.attention(heads(x, 0, H), heads(x, H, Hkv), heads(x, H + Hkv, Hkv), { causal: true }),
      ref: ([x]) => refAttention(refHeads(x, 0, H), refHeads(x, H, Hkv), refHeads(x, H + Hkv, Hkv), { causal: true }).out,
    });
  }, { numRuns: 6 });
  // The backward is exactly the two attention passes: dQ, dK, dV are written side by side and the
  // packed input's gradient is a view of them (no zeros, copies or adds to assemble it).
  const x = T.param(T.Tensor.from(randomNd([2, 17, 8, 16], 3).data, [2, 17, 8, 16]));
  const y = T.attention(x.slice(2, 0, 4).permute([0, 2, 1, 3]), x.slice(2, 4, 6).permute([0, 2, 1, 3]), x.slice(2, 6, 8).permute([0, 2, 1, 3]), { causal: true });
  const seedT = T.Tensor.from(randomNd([2, 4, 17, 16], 4).data, [2, 4, 17, 16]);
  const before = T.runtimeStats().dispatches;
  y.backward(seedT);
  assert.equal(T.runtimeStats().dispatches - before, 2, 'backward of packed attention runs only the dQ and dK/dV kernels');
  assert.deepEqual(x.grad!.shape, [2, 17, 8, 16]);
  for (const t of [x, y, seedT, x.grad!]) t.dispose();
});

test('kernels without subgroups (plain loads) agree with the reference', async () => {
  const prev = process.env.NLA_ATTN_SUBGROUPS;
  process.env.NLA_ATTN_SUBGROUPS = '0';
  try {
    const q = randomNd([2, 4, 19, 8], 51), k = randomNd([2, 2, 23, 8], 52), v = randomNd([2, 2, 23, 8], 53);
    await checkOp({
      name: 'attention(no subgroups)', inputs: [q, k, v], grad: true,
      gpu: ([a, b, c]) => T.attention(a, b, c, { causal: true }),
      ref: ([a, b, c]) => refAttention(a, b, c, { causal: true }).out,
    });
  } finally {
    if (prev === undefined) delete process.env.NLA_ATTN_SUBGROUPS;
    else process.env.NLA_ATTN_SUBGROUPS = prev;
  }
});

test('f16 inputs (when the adapter has shader-f16)', async (t) => {
  const g = await T.initGpu();
  if (!g.hasF16) return t.skip('no shader-f16');
  // Round the inputs to f16 first so the reference sees exactly what the kernel reads.
  const round = async (x: Nd) => {
    const t16 = T.Tensor.from(x.data, x.shape, 'f16');
    const back = await t16.data();
    t16.dispose();
    return new Nd(x.shape, Float64Array.from(back));
  };
  const [q, k, v] = await Promise.all([randomNd([1, 2, 21, 16], 61), randomNd([1, 1, 21, 16], 62), randomNd([1, 1, 21, 16], 63)].map(round));
  await checkOp({
    name: 'attention(f16)', inputs: [q, k, v], dtypes: ['f16', 'f16', 'f16'], atol: 1e-4,
    gpu: ([a, b, c]) => T.attention(a, b, c, { causal: true }),
    ref: ([a, b, c]) => refAttention(a, b, c, { causal: true }).out,
  });
});

test('bad input names the op and the shapes', async () => {
  await T.initGpu();
  const t = (...s: number[]) => T.zeros(s);
  const q = t(2, 4, 5, 8), k = t(2, 2, 7, 8), v = t(2, 2, 7, 8);
  assert.throws(() => T.attention(q, t(2, 2, 7, 16), v), /attention: shapes do not match: q \[2,4,5,8\], k \[2,2,7,16\], v \[2,2,7,8\]/);
  assert.throws(() => T.attention(q, k, t(2, 2, 6, 8)), /attention: shapes do not match/);
  assert.throws(() => T.attention(q, t(2, 3, 7, 8), t(2, 3, 7, 8)), /attention: query heads 4 must be a multiple of kv heads 3 \(q \[2,4,5,8\]/);
  assert.throws(() => T.attention(t(2, 4, 5, 12), t(2, 2, 7, 12), t(2, 2, 7, 12)), /attention: head size 12 unsupported \(q \[2,4,5,12\].*supported: 4, 8/);
  assert.throws(() => T.attention(t(4, 5, 8), k, v), /attention: expected q \[B,H,Tq,D\]/);
  assert.throws(() => T.attention(q, k, v, { keyMask: t(2, 5) }), /attention: keyMask must be f32\/i32 \[2,7\]/);
  assert.throws(() => T.attention(q, k, v, { keyMask: t(2, 7), lengths: [1, 2] }), /pass keyMask or lengths, not both/);
  assert.throws(() => T.attention(q, k, v, { lengths: [1] }), /attention: lengths \[1\] must be 2 integers/);
  assert.throws(() => T.attention(q, k, v, { qStart: 3 }), /qStart 3 needs causal: true/);
  assert.throws(() => T.attentionDecode(t(2, 4, 2, 8), k, v, [1, 2]), /attentionDecode: per-batch lengths need one query per row/);
  assert.throws(() => T.attentionDecode(t(2, 4, 1, 8), k, v, 9), /attentionDecode: length 9 out of range for cache \[2,2,7,8\]/);
});

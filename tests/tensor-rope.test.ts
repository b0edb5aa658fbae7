import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as T from '../src/tensor/index.js';
import * as nn from '../src/tensor/reference/nn.js';
import * as ref from '../src/tensor/reference/core.js';
import { checkOp, Nd, property, randomInts, randomNd } from '../src/testing/property.js';

const arbRope = fc.tuple(
  fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 5 }),
  fc.constantFrom('interleaved' as const, 'half' as const), fc.integer({ min: 0, max: 50 }), fc.integer({ min: 1, max: 1e6 }),
);

test('rope with a start offset matches the reference (both layouts), gradient = inverse rotation', async () => {
  await property(arbRope, async ([B, Tn, H, halfDh, layout, start, seed]) => {
    await checkOp({
      name: `rope ${layout} start ${start}`, inputs: [randomNd([B, Tn, H, 2 * halfDh], seed)],
      gpu: ([x]) => T.rope(x, { positions: start, layout }), ref: ([x]) => nn.rope(x, start, 10000, layout), atol: 2e-6, rtol: 1e-5, grad: true,
    });
  }, { numRuns: 10 });
});

test('rope with explicit i32 positions, shared [T] and per-batch [B, T]', async () => {
  await property(arbRope, async ([B, Tn, H, halfDh, layout, , seed]) => {
    for (const pshape of [[Tn], [B, Tn]]) {
      await checkOp({
        name: `rope ${layout} positions ${pshape}`, inputs: [randomNd([B, Tn, H, 2 * halfDh], seed), randomInts(pshape, seed + 1, 0, 300)], dtypes: ['f32', 'i32'],
        gpu: ([x, p]) => T.rope(x, { positions: p, layout, theta: 500 }), ref: ([x, p]) => nn.rope(x, p, 500, layout), atol: 2e-6, rtol: 1e-5, grad: [0],
      });
    }
  }, { numRuns: 6 });
});

test('rope on [T, H, Dh] (no batch) and on a strided view; positions past the table fall back to GPU sin/cos', async () => {
  await checkOp({ name: 'rope 3d', inputs: [randomNd([4, 2, 6], 3)], gpu: ([x]) => T.rope(x, { positions: 7 }), ref: ([x]) => nn.rope(x, 7, 10000, 'interleaved'), atol: 2e-6, grad: true });
  const base = randomNd([2, 3, 8], 4);
  const sliced = new Nd([2, 3, 4], Float64Array.from({ length: 24 }, (_, i) => base.data[Math.floor(i / 4) * 8 + 2 + (i % 4)]));
  await checkOp({ name: 'rope(slice)', inputs: [base], gpu: ([x]) => T.rope(x.slice(2, 2, 6), { layout: 'half', positions: 3 }), ref: () => nn.rope(sliced, 3, 10000, 'half'), atol: 2e-6 });
  // Positions through a view have no host copy, so the table is not grown for them.
  const far = randomInts([3], 5, 40000, 41000);
  await checkOp({
    name: 'rope far positions', inputs: [randomNd([1, 3, 1, 4], 6), far], dtypes: ['f32', 'i32'],
    gpu: ([x, p]) => T.rope(x, { positions: p.reshape([1, 3]).reshape([3]) }), ref: ([x, p]) => nn.rope(x, p, 10000, 'interleaved'), atol: 5e-3,
  });
});

test('rope reads strided views in place: heads of a packed q|k|v projection and a head-major tensor permuted, with gradients', async () => {
  await property(arbRope, async ([B, Tn, H, halfDh, layout, start, seed]) => {
    const Dh = 2 * halfDh, extra = 1 + (seed % 3);
    // [B, T, (H + extra) * Dh] projection; the first H heads are rotated.
    await checkOp({
      name: `rope packed ${layout}`, inputs: [randomNd([B, Tn, (H + extra) * Dh], seed)],
      gpu: ([x]) => T.rope(x.slice(2, 0, H * Dh).reshape([B, Tn, H, Dh]), { positions: start, layout }),
      ref: ([x]) => nn.rope(ref.slice(x, 2, 0, H * Dh).reshape([B, Tn, H, Dh]), start, 10000, layout), atol: 2e-6, rtol: 1e-5, grad: true,
    });
    // [B, H, T, Dh] storage viewed as [B, T, H, Dh] (what attention's gradient looks like).
    await checkOp({
      name: `rope permuted ${layout}`, inputs: [randomNd([B, H, Tn, Dh], seed + 1)],
      gpu: ([x]) => T.rope(x.permute([0, 2, 1, 3]), { positions: start, layout }),
      ref: ([x]) => nn.rope(ref.permute(x, [0, 2, 1, 3]), start, 10000, layout), atol: 2e-6, rtol: 1e-5, grad: true,
    });
  }, { numRuns: 8 });
});

test('rope with heads = k rotates the first k heads and copies the rest (a packed q|k|v), with gradients', async () => {
  await property(arbRope, async ([B, Tn, H, halfDh, layout, start, seed]) => {
    const Dh = 2 * halfDh, extra = 1 + (seed % 3), k = seed % (H + 1); // 0..H heads rotated
    await checkOp({
      name: `rope heads ${k} of ${H + extra} ${layout}`, inputs: [randomNd([B, Tn, H + extra, Dh], seed)],
      gpu: ([x]) => T.rope(x, { positions: start, layout, heads: k }),
      ref: ([x]) => {
        const parts = [...(k > 0 ? [nn.rope(ref.slice(x, 2, 0, k), start, 10000, layout)] : []), ref.slice(x, 2, k, H + extra)];
        return ref.concat(parts, 2);
      },
      atol: 2e-6, rtol: 1e-5, grad: true,
    });
  }, { numRuns: 8 });
  await T.initGpu();
  assert.throws(() => T.rope(T.zeros([1, 2, 3, 4]), { heads: 4 }), /heads 4 must be an integer in \[0, 3\]/);
});

test('the RoPE reference itself: pair k of a head of size 4 turns by pos * 10000^(-k/2), interleaved (2k, 2k+1) or half (k, k+2)', () => {
  // Written from the RoPE definition with the frequencies spelled out (1 and 1/100), so the
  // reference is checked against something neither it nor the kernel computes.
  const x = new Nd([3, 1, 4], Float64Array.from({ length: 12 }, (_, i) => Math.sin(3 * i + 1)));
  for (const layout of ['interleaved', 'half'] as const) {
    const got = nn.rope(x, 5, 10000, layout);
    for (let t = 0; t < 3; t++) {
      const pos = 5 + t;
      for (const [k, freq] of [[0, 1], [1, 1 / 100]]) {
        const [i0, i1] = layout === 'interleaved' ? [2 * k, 2 * k + 1] : [k, k + 2];
        const a = pos * freq, v0 = x.data[t * 4 + i0], v1 = x.data[t * 4 + i1];
        // 1e-6: llama2.c rounds the angle to float32 (<= 4e-7 here at pos <= 7).
        assert.ok(Math.abs(got.data[t * 4 + i0] - (v0 * Math.cos(a) - v1 * Math.sin(a))) < 1e-6, `${layout} t ${t} pair ${k} first`);
        assert.ok(Math.abs(got.data[t * 4 + i1] - (v0 * Math.sin(a) + v1 * Math.cos(a))) < 1e-6, `${layout} t ${t} pair ${k} second`);
      }
    }
  }
  // inverse = rotation by the opposite angle: undoes the forward one.
  const back = nn.rope(nn.rope(x, 5, 10000, 'half'), 5, 10000, 'half', true);
  back.data.forEach((v, i) => assert.ok(Math.abs(v - x.data[i]) < 1e-12, `inverse at ${i}`));
});

test('rope angles follow llama2.c float32 arithmetic exactly at large positions', async () => {
  await T.initGpu();
  const f = Math.fround, Dh = 8, pos = 1000;
  const x = T.Tensor.from(Float32Array.from({ length: Dh }, (_, i) => (i % 2 === 0 ? 1 : 0)), [1, 1, Dh]);
  const got = await T.rope(x, { positions: pos }).data();
  for (let i = 0; i < Dh; i += 2) {
    const freq = f(1 / f(Math.pow(10000, f(i / Dh))));
    const val = f(pos * freq);
    assert.equal(got[i], f(Math.cos(val)), `cos at pair ${i}`);
    assert.equal(got[i + 1], f(Math.sin(val)), `sin at pair ${i}`);
  }
});

test('rope errors name the op and shapes', async () => {
  await T.initGpu();
  assert.throws(() => T.rope(T.Tensor.from(new Float32Array(6), [1, 2, 3])), /rope: head size 3 .* must be even/);
  assert.throws(() => T.rope(T.Tensor.from(new Float32Array(4), [2, 2])), /rope: input must be \[..., T, H, Dh\], got \[2,2\]/);
  const x = T.Tensor.from(new Float32Array(16), [2, 2, 2, 2]);
  assert.throws(() => T.rope(x, { positions: T.Tensor.from(new Int32Array([0, 1, 2])) }), /rope: positions \[3\] must be \[2\] or \[2,2\]/);
  assert.throws(() => T.rope(x, { positions: T.Tensor.from(new Int32Array([0, -1])) }), /rope: position -1 at index 1 is negative/);
});

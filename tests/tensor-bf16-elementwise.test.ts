// bf16 inputs to elementwise kernels (cast to f32, and ops with a dense f32 output): packed words
// read by the flat kernel, against each element's bf16 value computed here on the host (round to
// nearest even of the f32 bits), over random shapes, permuted and sliced views, and with the
// binding limit lowered so that one op runs in several bound ranges.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as T from '../src/tensor/index.js';
import { setBindingLimit } from '../src/tensor/binding.js';
import { ewTuning } from '../src/kernels/elementwise.js';
import { randomNd } from '../src/testing/property.js';
import { fcRuns } from '../src/testing/runs.js';

await T.initGpu();

// bf16 of v, independently of the engine's encoder: round the f32 bits to their high half, ties to even.
function bf16(v: number): number {
  const dv = new DataView(new ArrayBuffer(4));
  dv.setFloat32(0, v);
  const bits = dv.getUint32(0);
  const r = (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
  dv.setUint32(0, (r << 16) >>> 0);
  return dv.getFloat32(0);
}

// Element i (row-major over `shape`) of a view with these strides and offset, from flat data.
function gatherView(data: ArrayLike<number>, shape: number[], strides: number[], offset: number): number[] {
  const n = shape.reduce((a, b) => a * b, 1);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    let r = i, o = offset;
    for (let d = shape.length - 1; d >= 0; d--) {
      o += (r % shape[d]!) * strides[d]!;
      r = Math.floor(r / shape[d]!);
    }
    out.push(data[o]!);
  }
  return out;
}

const arb = fc.record({
  shape: fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 3 }),
  seed: fc.integer({ min: 1, max: 1e6 }),
  view: fc.constantFrom('dense', 'transpose', 'slice'),
  lowLimit: fc.boolean(),
  // Both kernel variants (lavapipe takes 'odo'; GPUs 'flat').
  variant: fc.constantFrom('odo' as const, 'flat' as const),
});

test('cast of a bf16 tensor (dense, permuted, sliced) to f32 reads each stored value exactly; add with an f32 tensor too', async () => {
  await fc.assert(
    fc.asyncProperty(arb, async ({ shape, seed, view, lowLimit, variant }) => {
      const src = randomNd(shape, seed, -4, 4).data;
      const x = T.Tensor.from(Float32Array.from(src), shape, 'bf16');
      const stored = Array.from(src, bf16);
      let v = x;
      if (view === 'transpose' && shape.length >= 2) v = T.transpose(x, 0, shape.length - 1);
      if (view === 'slice' && shape[0]! >= 2) v = T.slice(x, 0, 1, shape[0]!);
      const want = gatherView(stored, [...v.shape], [...v.strides], v.offset);
      if (lowLimit) setBindingLimit(1024);
      ewTuning.force = variant;
      try {
        const y = T.cast(v, 'f32');
        assert.equal(y.dtype, 'f32');
        assert.deepEqual(Array.from((await y.data()) as Float32Array), want);
        const b = T.Tensor.from(Float32Array.from(want, (_, i) => i * 0.25), [...v.shape]);
        const s = T.add(v, b);
        const got = Array.from((await s.data()) as Float32Array);
        want.forEach((w, i) => assert.ok(Math.abs(got[i]! - Math.fround(w + i * 0.25)) <= 1e-6 * Math.max(1, Math.abs(w + i * 0.25)), `add at ${i}: ${got[i]} vs ${w + i * 0.25}`));
        for (const t of [y, b, s]) t.dispose();
      } finally {
        setBindingLimit(undefined);
        ewTuning.force = undefined;
        x.dispose();
      }
    }),
    { numRuns: fcRuns(40) },
  );
});

test('a bf16 tensor is read, never written: its cast passes no gradient to it, and a bf16 output is refused by name', async () => {
  const x = T.Tensor.from([1.5, -2, 3], [3], 'bf16');
  const w = T.Tensor.from([0.5, 0.25, 2], [3]);
  w.requiresGrad = true;
  const loss = T.sum(T.mul(T.cast(x, 'f32'), w));
  loss.backward();
  assert.deepEqual(Array.from((await w.grad!.data()) as Float32Array), [1.5, -2, 3]);
  assert.equal(x.grad, undefined);
  assert.throws(() => T.cast(w, 'bf16'), /does not read bf16|bf16/);
});

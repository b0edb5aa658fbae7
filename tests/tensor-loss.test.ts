import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as T from '../src/tensor/index.js';
import * as nn from '../src/tensor/reference/nn.js';
import * as ref from '../src/tensor/reference/core.js';
import { checkOp, property, randomInts, randomNd } from '../src/testing/property.js';

const arbCase = fc.tuple(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 13 }), fc.integer({ min: 1, max: 1e6 }));

for (const reduction of ['mean', 'sum', 'none'] as const) {
  test(`crossEntropy (${reduction}) matches the reference, gradient matches finite differences`, async () => {
    await property(arbCase, async ([N, V, seed]) => {
      await checkOp({
        name: `crossEntropy ${reduction}`,
        inputs: [randomNd([N, V], seed, -3, 3), randomInts([N], seed + 1, 0, V)],
        dtypes: ['f32', 'i32'],
        gpu: ([x, t]) => T.crossEntropy(x, t, { reduction }),
        ref: ([x, t]) => nn.crossEntropy(x, t, { reduction }),
        atol: 1e-5, rtol: 1e-5, grad: [0],
      });
    }, { numRuns: 8 });
  });
}

test('crossEntropy with ignoreIndex: ignored rows contribute 0 and are not counted by mean', async () => {
  await property(arbCase, async ([N, V, seed]) => {
    const t = randomInts([N], seed + 1, -1, V); // -1 = ignore
    for (const reduction of ['mean', 'none'] as const) {
      await checkOp({
        name: `crossEntropy ignore ${reduction}`,
        inputs: [randomNd([N, V], seed, -3, 3), t],
        dtypes: ['f32', 'i32'],
        gpu: ([x, tt]) => T.crossEntropy(x, tt, { ignoreIndex: -1, reduction }),
        ref: ([x, tt]) => nn.crossEntropy(x, tt, { ignoreIndex: -1, reduction }),
        atol: 1e-5, rtol: 1e-5, grad: [0],
      });
    }
  }, { numRuns: 6 });
});

test('crossEntropy with a mask, on a GPU-made target tensor (count summed on the GPU), and [B,T,V] logits', async () => {
  const [B, Tn, V] = [2, 3, 7];
  const logits = randomNd([B, Tn, V], 5, -2, 2), targets = randomInts([B, Tn], 6, 0, V);
  const mask = randomInts([B, Tn], 7, 0, 2);
  mask.data[0] = 1;
  await checkOp({
    name: 'crossEntropy mask', inputs: [logits, targets, mask], dtypes: ['f32', 'i32', 'f32'],
    gpu: ([x, t, m]) => T.crossEntropy(x, t, { mask: m }),
    ref: ([x, t, m]) => nn.crossEntropy(x, t, { mask: m }), atol: 1e-5, grad: [0],
  });
  await checkOp({
    name: 'crossEntropy device targets', inputs: [logits, targets], dtypes: ['f32', 'i32'],
    // A slice view has no host copy, so the op takes the GPU path for the count.
    gpu: ([x, t]) => T.crossEntropy(x, T.concat([t, t], 1).slice(1, 0, Tn), { ignoreIndex: 2 }),
    ref: ([x, t]) => nn.crossEntropy(x, t, { ignoreIndex: 2 }), atol: 1e-5, grad: [0],
  });
});

test('crossEntropy on a wide vocab with large logits stays finite and exact', async () => {
  await checkOp({
    name: 'crossEntropy wide', inputs: [randomNd([3, 1500], 9, -40, 40), randomInts([3], 10, 0, 1500)], dtypes: ['f32', 'i32'],
    gpu: ([x, t]) => T.crossEntropy(x, t), ref: ([x, t]) => nn.crossEntropy(x, t), atol: 1e-4, rtol: 1e-5, grad: [0], gradAtol: 1e-4,
  });
});

test('crossEntropy with a bias = crossEntropy of the biased logits (values and both gradients), any reduction, ignore and mask', async () => {
  // The reference adds the [V] bias to every row itself (broadcast add), then takes the plain loss.
  const biased = (x: ReturnType<typeof randomNd>, b: ReturnType<typeof randomNd>) => ref.binary('add', x, b);
  await property(fc.tuple(fc.integer({ min: 1, max: 3 }), arbCase), async ([B, [N, V, seed]]) => {
    const x = randomNd([B, N, V], seed, -3, 3), b = randomNd([V], seed + 2, -2, 2);
    const t = randomInts([B, N], seed + 1, -1, V); // -1 = ignore
    for (const reduction of ['mean', 'sum', 'none'] as const) {
      await checkOp({
        name: `crossEntropy bias ${reduction}`, inputs: [x, t, b], dtypes: ['f32', 'i32', 'f32'],
        gpu: ([xx, tt, bb]) => T.crossEntropy(xx, tt, { bias: bb, reduction, ignoreIndex: -1 }),
        ref: ([xx, tt, bb]) => nn.crossEntropy(biased(xx, bb), tt, { reduction, ignoreIndex: -1 }),
        atol: 1e-5, rtol: 1e-5, grad: [0, 2],
      });
    }
    const mask = randomInts([B, N], seed + 3, 0, 2);
    await checkOp({
      name: 'crossEntropy bias mask', inputs: [x, randomInts([B, N], seed + 1, 0, V), b, mask], dtypes: ['f32', 'i32', 'f32', 'f32'],
      gpu: ([xx, tt, bb, m]) => T.crossEntropy(xx, tt, { bias: bb, mask: m }),
      ref: ([xx, tt, bb, m]) => nn.crossEntropy(biased(xx, bb), tt, { mask: m }),
      atol: 1e-5, rtol: 1e-5, grad: [0, 2],
    });
  }, { numRuns: 6 });
});

test('crossEntropy bias errors name the shapes', async () => {
  await T.initGpu();
  const x = T.Tensor.from(new Float32Array(12), [3, 4]), t = T.Tensor.from(new Int32Array([0, 1, 2]));
  assert.throws(() => T.crossEntropy(x, t, { bias: T.zeros([3]) }), /crossEntropy: bias \[3\] must be \[4\], the vocab axis of logits \[3,4\]/);
  assert.throws(() => T.crossEntropy(x, t, { bias: T.Tensor.from(new Int32Array(4)) }), /crossEntropy: bias \[4\] must be floating point, got i32/);
});

test('tokenLogProbs = log-softmax gathered at the targets, with gradient', async () => {
  await property(fc.tuple(fc.integer({ min: 1, max: 3 }), arbCase), async ([B, [N, V, seed]]) => {
    await checkOp({
      name: 'tokenLogProbs', inputs: [randomNd([B, N, V], seed, -3, 3), randomInts([B, N], seed + 1, 0, V)], dtypes: ['f32', 'i32'],
      gpu: ([x, t]) => T.tokenLogProbs(x, t), ref: ([x, t]) => nn.tokenLogProbs(x, t), atol: 1e-5, rtol: 1e-5, grad: [0],
    });
  }, { numRuns: 8 });
});

test('loss errors name the op and shapes; out-of-range targets are caught on the CPU', async () => {
  await T.initGpu();
  const x = T.Tensor.from(new Float32Array(12), [3, 4]);
  assert.throws(() => T.crossEntropy(x, T.Tensor.from(new Int32Array([0, 4, 1]))), /crossEntropy: target 4 at position 1 is out of range for logits \[3,4\] \(vocab 4\)/);
  assert.throws(() => T.crossEntropy(x, T.Tensor.from(new Int32Array([0, 1]))), /crossEntropy: targets \[2\] must match the leading dims of logits \[3,4\]/);
  assert.throws(() => T.crossEntropy(x, T.Tensor.from([0, 1, 2])), /crossEntropy: targets \[3\] must be i32, got f32/);
  assert.throws(() => T.tokenLogProbs(x, T.Tensor.from(new Int32Array([0, -1, 1]))), /tokenLogProbs: target -1 at position 1/);
  // ignoreIndex values are allowed even though they are out of range.
  assert.equal(await T.crossEntropy(x, T.Tensor.from(new Int32Array([-100, -100, -100])), { ignoreIndex: -100 }).item(), 0);
});

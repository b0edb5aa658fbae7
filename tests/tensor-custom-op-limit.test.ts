// Custom ops (defineOp) and the storage-binding limit: a user kernel may index anywhere in its
// tensors, so nla cannot split it; an operand beyond one binding is refused before anything is
// allocated or dispatched, naming the op, the operand and the limit. A tensor whose data fits
// runs even when its pooled buffer is a larger size class. Limit lowered to 3,600 B.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../src/tensor/index.js';
import { setBindingLimit } from '../src/tensor/binding.js';
import { sizeClass } from '../src/tensor/pool.js';
import { checkOp, Nd, randomNd } from '../src/testing/property.js';
import { defineSwish } from '../examples/custom-op.js';

const LIMIT = 3600;
await T.initGpu();
const swish = await defineSwish();
// out = the rows of in0 repeated param(0) times: its output outgrows its input.
const tile = await T.defineOp({
  name: 'tileRows', inputs: 1, params: 1,
  outputShape: ([x], [n]) => [x[0] * n, x[1]],
  forward: { wgsl: 'fn kernel(i: u32) { out[i] = in0[i % numel(0u)]; }' },
  reference: ([x], [n]) => new Nd([x.shape[0] * n, x.shape[1]], Float64Array.from({ length: x.size * n }, (_, i) => x.data[i % x.size])),
});
setBindingLimit(LIMIT);

const live = () => {
  const s = T.poolStats();
  return [s.liveBuffers, s.liveBytes];
};

test('an input beyond one binding is refused before dispatch, naming the op, the operand and the limit; nothing leaks', () => {
  const x = T.Tensor.from(new Float32Array(1000), [10, 100]); // 4,000 B
  const before = live();
  assert.throws(() => swish(x, [1]), /^Error: swishBeta: input 0 \[10,100\] \(4000 B\) is beyond this GPU's maxStorageBufferBindingSize of 3600 B; a custom op binds each tensor whole/);
  assert.deepEqual(live(), before);
  x.dispose();
});

test('an output beyond one binding is refused the same way (before it is allocated)', () => {
  const x = T.Tensor.from(new Float32Array(600), [6, 100]); // 2,400 B in, 4,800 B out
  const before = live();
  assert.throws(() => tile(x, [2]), /tileRows: output \[12,100\] \(4800 B\) is beyond this GPU's maxStorageBufferBindingSize of 3600 B/);
  assert.deepEqual(live(), before);
  x.dispose();
});

test('a tensor whose data fits runs although its pooled buffer is larger than the limit (value and gradient)', async () => {
  assert.ok(sizeClass(900 * 4) > LIMIT, `size class ${sizeClass(900 * 4)} of 3,600 B is not above the limit`);
  await checkOp({ name: 'swishBeta at the limit', inputs: [randomNd([9, 100], 5, -3, 3)], gpu: ([x]) => swish(x, [1.5]), ref: (xs) => swish.reference(xs, [1.5]), atol: 1e-5, rtol: 1e-5, grad: true, maxFdCoords: 12 });
  await checkOp({ name: 'tileRows at the limit', inputs: [randomNd([3, 100], 6)], gpu: ([x]) => tile(x, [3]), ref: (xs) => tile.reference(xs, [3]), atol: 0 });
});

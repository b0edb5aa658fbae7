// tidy() when its function throws: every tensor created inside is disposed before the error goes
// on, so an op refused halfway (its output already allocated) leaks nothing. Counted by the
// pool's live buffers and bytes before and after.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../src/tensor/index.js';
import { setBindingLimit } from '../src/tensor/binding.js';
import { sizeClass } from '../src/tensor/pool.js';

await T.initGpu();

const live = () => {
  const s = T.poolStats();
  return { buffers: s.liveBuffers, bytes: s.liveBytes };
};

test('a throwing tidy disposes the tensors it created and rethrows the same error', () => {
  const keepOut = T.Tensor.from(new Float32Array(8), [8]);
  const before = live();
  const err = new Error('boom');
  let kept: T.Tensor | undefined;
  assert.throws(
    () =>
      T.tidy(() => {
        const a = T.Tensor.from(new Float32Array(1000), [1000]);
        T.tidy(() => T.add(a, a)); // an inner scope that returns: its result belongs to the outer one
        kept = T.keep(T.mul(a, a));
        T.add(keepOut, keepOut);
        throw err;
      }),
    (e) => e === err,
  );
  assert.ok(kept && !kept.disposed, 'a kept tensor survives the throw');
  const bytesKept = sizeClass(1000 * 4); // the pool rounds buffers to size classes
  assert.deepEqual(live(), { buffers: before.buffers + 1, bytes: before.bytes + bytesKept });
  assert.equal(keepOut.disposed, false, 'a tensor from outside the scope is not touched');
  kept!.dispose();
  keepOut.dispose();
});

test('a row op refused inside tidy (row wider than one binding) leaves no output allocated', () => {
  setBindingLimit(16 * 1024);
  try {
    const x = T.Tensor.from(new Float32Array(2 * 5000), [2, 5000]);
    const before = live();
    assert.throws(() => T.tidy(() => T.softmax(x)), /softmax: .* beyond this GPU's maxStorageBufferBindingSize of 16384 B/);
    assert.deepEqual(live(), before, 'live buffers/bytes after the refused softmax');
    x.dispose();
  } finally {
    setBindingLimit(undefined);
  }
});

test('tidyAsync disposes on a rejected promise too', async () => {
  const before = live();
  await assert.rejects(
    T.tidyAsync(async () => {
      T.Tensor.from(new Float32Array(500), [500]);
      await Promise.resolve();
      throw new Error('later');
    }),
    /later/,
  );
  assert.deepEqual(live(), before);
});

// The JS half of the soak's RSS creep (BENCHMARKS.md, soak): every readback waited in
// unlessLost (src/tensor/gpu-errors.ts) by racing the device-lost promise, which never settles
// in a healthy run, so each call left a reaction and 3 promises on it for good (heap snapshots
// 200 RL steps apart: +9,600 promises, 48 per step). Here 20,000 waits must leave the live heap
// where it was.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { unlessLost } from '../src/tensor/gpu-errors.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

test('20,000 unlessLost waits leave nothing behind on the device-lost promise', async () => {
  const live = async () => {
    for (let i = 0; i < 3; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 0));
    }
    return process.memoryUsage().heapUsed;
  };
  for (let i = 0; i < 1000; i++) await unlessLost(Promise.resolve(i)); // warm up code and caches
  const before = await live();
  for (let i = 0; i < 20_000; i++) assert.equal(await unlessLost(Promise.resolve(i)), i);
  const grew = (await live()) - before;
  // Leaking, each wait kept ~250 B (about 5 MB here); not leaking, the heap moves by noise.
  assert.ok(grew < 1e6, `live JS heap grew by ${grew} bytes over 20,000 waits`);
});

// The GPU wait (gpu-wait.ts) on a virtual clock against a fake GPU whose work ends a fixed time
// after it is submitted: every figure is exact. 'spin' starts the awaited call at once; 'sleep'
// learns the time per outstanding workgroup and starts the call at 0.8 of the expected time,
// never ending after the work; when the work gets shorter each oversleep shrinks the estimate by
// a quarter until the call starts before the work ends again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { noteDispatch, setGpuWait, setGpuWaitClock, waitForGpu, type GpuWaitClock } from '../src/tensor/gpu-wait.js';

let now = 0;
/** What the awaited call costs when the work is already done (one poll). */
const POLL_MS = 0.5;
const virtual: GpuWaitClock = { now: () => now, sleep: async (ms) => void (now += ms) };

/** Submit `dispatches` of fake work lasting `ms`; wait for it; when the awaited call started and when the wait ended, after submission. */
async function fakeWait(dispatches: number, ms: number, workgroups = 1): Promise<{ startedAt: number; endedAt: number }> {
  const t0 = now, done = t0 + ms;
  for (let i = 0; i < dispatches; i++) noteDispatch(workgroups);
  let startedAt = NaN;
  await waitForGpu(async () => {
    startedAt = now - t0;
    now = now < done ? done : now + POLL_MS;
  });
  return { startedAt, endedAt: now - t0 };
}

const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-9, `${what}: ${a}, expected ${b}`);

test('spin starts the wait at once; sleep starts it at 0.8 of the learned time and never ends after the work', async () => {
  const was = setGpuWaitClock(virtual);
  try {
    setGpuWait('spin');
    for (let i = 0; i < 3; i++) assert.deepEqual(await fakeWait(200, 60), { startedAt: 0, endedAt: 60 });
    setGpuWait('sleep');
    setGpuWaitClock(virtual); // forget what spin learned
    // Nothing learned yet: the first wait starts at once; then 0.3 ms per dispatch x 200 x 0.8.
    assert.deepEqual(await fakeWait(200, 60), { startedAt: 0, endedAt: 60 });
    for (let i = 0; i < 5; i++) {
      const w = await fakeWait(200, 60);
      close(w.startedAt, 48, `wait ${i + 2} starts`);
      close(w.endedAt, 60, `wait ${i + 2} ends`);
    }
    // The work gets 6x shorter: each wait that finds it done shrinks the estimate by a quarter
    // (48, 36, 27, 20.25, 15.1875, 11.390625 ms: each of these ends one poll after it starts)...
    const short: { startedAt: number; endedAt: number }[] = [];
    for (let i = 0; i < 10; i++) short.push(await fakeWait(200, 10));
    [48, 36, 27, 20.25, 15.1875, 11.390625].forEach((s, i) => {
      close(short[i]!.startedAt, s, `short wait ${i + 1} starts`);
      close(short[i]!.endedAt, s + POLL_MS, `short wait ${i + 1} ends`);
    });
    // ... until the call starts before the work ends, and the wait ends with it.
    for (const w of short.slice(6)) {
      assert.ok(w.startedAt > 5 && w.startedAt < 10, `started at ${w.startedAt}`);
      close(w.endedAt, 10, 'ends with the work');
    }
    // Another bucket (100 dispatches) is learned apart: nothing slept for it at first.
    assert.equal((await fakeWait(100, 5)).startedAt, 0);
    // Few outstanding dispatches are never slept, however long they took before.
    for (let i = 0; i < 3; i++) assert.equal((await fakeWait(20, 40)).startedAt, 0);
  } finally {
    setGpuWait('sleep');
    setGpuWaitClock(was === virtual ? undefined : was);
  }
});

test('the estimate scales with the workgroups outstanding: the same kernels on 8 times fewer rows sleep 8 times less', async () => {
  const was = setGpuWaitClock(virtual);
  try {
    setGpuWait('sleep');
    // A full-batch fit: 3,000 dispatches of 80 workgroups, 40 s, one wait at its end.
    for (let i = 0; i < 3; i++) await fakeWait(3000, 40_000, 80);
    close((await fakeWait(3000, 40_000, 80)).startedAt, 32_000, 'full batches start at 0.8 of 40 s');
    // The same kernels in mini-batches of an eighth: 10 workgroups each, 5 s. A rate per dispatch
    // slept 32 s here; per workgroup it sleeps 4 s and ends with the work.
    const mini = await fakeWait(3000, 5_000, 10);
    close(mini.startedAt, 4_000, 'mini-batches start at 0.8 of 5 s');
    close(mini.endedAt, 5_000, 'and end with the work');
  } finally {
    setGpuWaitClock(was === virtual ? undefined : was);
  }
});

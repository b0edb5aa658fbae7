// The GPU wait (gpu-wait.ts) against a fake GPU whose work ends a fixed time after it is
// submitted: 'spin' starts the awaited call at once; 'sleep' learns the time per outstanding
// dispatch and starts the call late, near the end of the work, without ever finishing after it by
// more than the polled share; when the work gets shorter it stops oversleeping within a few waits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { noteDispatch, setGpuWait, waitForGpu } from '../src/tensor/gpu-wait.js';

/** Submit `dispatches` of fake work lasting `ms`; wait for it; when the awaited call started and when it all ended, after submission. */
async function fakeWait(dispatches: number, ms: number): Promise<{ startedAt: number; endedAt: number }> {
  const t0 = performance.now(), done = t0 + ms;
  for (let i = 0; i < dispatches; i++) noteDispatch();
  let startedAt = NaN;
  await waitForGpu(() => {
    startedAt = performance.now() - t0;
    return new Promise<void>((r) => setTimeout(r, Math.max(0, done - performance.now())));
  });
  return { startedAt, endedAt: performance.now() - t0 };
}

test('spin starts the wait at once; sleep learns to start it late in the work, and never ends much after it', async () => {
  setGpuWait('spin');
  for (let i = 0; i < 3; i++) assert.ok((await fakeWait(200, 60)).startedAt < 15, 'spin: the awaited call starts right away');
  setGpuWait('sleep');
  const waits = [];
  for (let i = 0; i < 6; i++) waits.push(await fakeWait(200, 60));
  const last = waits.at(-1)!;
  // Learned: about 0.8 of 60 ms slept before the call (timers are coarse; wide bounds).
  assert.ok(last.startedAt > 30 && last.startedAt < 75, `started at ${last.startedAt.toFixed(1)} ms of 60`);
  for (const w of waits) assert.ok(w.endedAt < 60 + 30, `ended at ${w.endedAt.toFixed(1)} ms: the work took 60`);
  // The work gets 6x shorter: the first waits oversleep (by the old estimate), then each oversleep
  // shrinks it by a quarter (measured: 49, 36, 28, 22, 17, 13, 10, 10 ... ms); a moving average
  // alone would still be near 26 ms at the tenth wait.
  const short = [];
  for (let i = 0; i < 10; i++) short.push(await fakeWait(200, 10));
  assert.ok(short[0]!.endedAt > 30, `the first short wait oversleeps (${short[0]!.endedAt.toFixed(1)} ms)`);
  assert.ok(short[9]!.endedAt < 18, `after re-learning, a 10 ms wait ends at ${short[9]!.endedAt.toFixed(1)} ms`);
  // Another bucket (a few dispatches, as in a weight read) is learned apart: nothing slept for it at first.
  assert.ok((await fakeWait(100, 5)).startedAt < 4, 'a new bucket starts without an estimate');
  // Few outstanding dispatches are never slept, however long they took before.
  for (let i = 0; i < 3; i++) assert.ok((await fakeWait(20, 40)).startedAt < 15, 'a wait on 20 dispatches starts at once');
});

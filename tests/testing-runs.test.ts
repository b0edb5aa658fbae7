// FC_RUNS scales every property's run count (unset: the counts in the code, what CI runs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fcRuns } from '../src/testing/runs.js';
import { property } from '../src/testing/property.js';

async function withFcRuns<T>(value: string | undefined, fn: () => T | Promise<T>): Promise<T> {
  const prev = process.env.FC_RUNS;
  if (value === undefined) delete process.env.FC_RUNS;
  else process.env.FC_RUNS = value;
  try {
    return await fn();
  } finally {
    if (prev === undefined) delete process.env.FC_RUNS;
    else process.env.FC_RUNS = prev;
  }
}

test('fcRuns: unset keeps the count, FC_RUNS multiplies it (at least 1), anything but a positive number is an error', async () => {
  assert.equal(await withFcRuns(undefined, () => fcRuns(12)), 12);
  assert.equal(await withFcRuns('', () => fcRuns(12)), 12);
  assert.equal(await withFcRuns('4', () => fcRuns(12)), 48);
  assert.equal(await withFcRuns('0.5', () => fcRuns(12)), 6);
  assert.equal(await withFcRuns('0.01', () => fcRuns(12)), 1);
  for (const bad of ['0', '-2', 'lots', 'Infinity']) await assert.rejects(withFcRuns(bad, () => fcRuns(12)), /FC_RUNS .*positive number.*got/);
});

test('property() runs numRuns scaled by FC_RUNS (default 25)', async () => {
  const count = (value: string | undefined, opts?: { numRuns: number }) =>
    withFcRuns(value, async () => {
      let n = 0;
      await property(fc.integer(), async () => void n++, opts);
      return n;
    });
  assert.equal(await count(undefined, { numRuns: 7 }), 7);
  assert.equal(await count('3', { numRuns: 7 }), 21);
  assert.equal(await count(undefined), 25);
  assert.equal(await count('2'), 50);
});

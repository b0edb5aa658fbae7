// Periodic full garbage collection, for native memory V8 cannot see. Dawn frees a bind group,
// a command encoder or buffer, or a staging buffer's wrapper state only when V8 collects its
// small JS wrapper, and V8 counts the wrapper, not the native memory behind it, so it collects
// old wrappers rarely and process RSS creeps up (bench/dawn-objects.ts --object ...: a bind
// group holds ~4.7 KB until collected). The runtime reuses what it can (bind-groups.ts, the
// staging pool) and counts every native object it still makes and drops (a bind group on a
// cache miss, a command encoder per submit, a readback); after COLLECT_EVERY of them it asks
// for one full collection. NLA_COLLECT_EVERY overrides it (0 turns it off).
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** ~4.7 KB each at most: a collection before ~25 MiB of garbage is held (soak: every ~60 RL steps). */
const COLLECT_EVERY = 5_000;

let every: number | undefined;
let gcFn: (() => void) | undefined;
let since = 0;
export const collectStats = { collections: 0, ms: 0 };

function collectEvery(): number {
  if (every !== undefined) return every;
  const raw = process.env.NLA_COLLECT_EVERY;
  const n = raw === undefined || raw === '' ? COLLECT_EVERY : Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`NLA_COLLECT_EVERY must be a whole number of native objects (0 = never); got ${JSON.stringify(raw)}`);
  return (every = n);
}

/** The full collector: global gc() under --expose-gc, else one exposed to a fresh context. */
function gc(): () => void {
  if (gcFn) return gcFn;
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) return (gcFn = g);
  // The flag only exposes gc() in contexts created after it is set: make one and take it.
  setFlagsFromString('--expose-gc');
  return (gcFn = runInNewContext('gc') as () => void);
}

/** Count `n` native objects made and dropped; collect once enough have passed since the last collection. */
export function countNative(n = 1): void {
  const k = collectEvery();
  if (k === 0 || (since += n) < k) return;
  since = 0;
  const t0 = performance.now();
  gc()();
  collectStats.collections++;
  collectStats.ms += performance.now() - t0;
}

// Periodic full garbage collection, for native memory V8 cannot see. Dawn frees a bind group,
// a command buffer or a staging buffer only when V8 collects its JS wrapper, and V8 counts the
// small wrapper, not the native memory behind it, so it collects old wrappers rarely and process
// RSS creeps up: ~45 MiB per 1,000 steps of the RL soak (BENCHMARKS.md, soak), while GPU buffers
// and the JS heap stay flat. The same creep shows with raw Dawn calls alone
// (bench/dawn-objects.ts), and a full collection every few dozen steps flattens both. So the
// runtime asks for one every COLLECT_EVERY dispatches (~30 RL soak steps; a collection of the
// small heap costs milliseconds). NLA_COLLECT_EVERY overrides it (0 turns it off).
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const COLLECT_EVERY = 50_000;

let every: number | undefined;
let gcFn: (() => void) | undefined;
let since = 0;
export const collectStats = { collections: 0, ms: 0 };

function collectEvery(): number {
  if (every !== undefined) return every;
  const raw = process.env.NLA_COLLECT_EVERY;
  const n = raw === undefined || raw === '' ? COLLECT_EVERY : Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`NLA_COLLECT_EVERY must be a whole number of dispatches (0 = never); got ${JSON.stringify(raw)}`);
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

/** Count `n` dispatches; collect once enough have passed since the last collection. */
export function countDispatches(n = 1): void {
  const k = collectEvery();
  if (k === 0 || (since += n) < k) return;
  since = 0;
  const t0 = performance.now();
  gc()();
  collectStats.collections++;
  collectStats.ms += performance.now() - t0;
}

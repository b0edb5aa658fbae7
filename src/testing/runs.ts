// How many cases each property test runs. Every property names its own count (GPU properties few,
// since each run compiles and reads back; host ones hundreds); FC_RUNS scales them all, so one
// variable runs the whole suite harder (FC_RUNS=10) or quicker (FC_RUNS=0.5) without editing
// tests. Unset it means 1: the counts in the code, which is what CI runs.
// No imports, so host-only tests can use it without loading the GPU engine.

/** `n` runs scaled by FC_RUNS (a positive number, default 1), at least 1. */
export function fcRuns(n: number): number {
  const raw = process.env.FC_RUNS;
  const scale = raw === undefined || raw === '' ? 1 : Number(raw);
  if (!(scale > 0) || !Number.isFinite(scale)) throw new Error(`FC_RUNS scales every property's run count and must be a positive number; got ${JSON.stringify(raw)}`);
  return Math.max(1, Math.round(n * scale));
}

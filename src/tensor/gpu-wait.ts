// Waiting for the GPU without taking a core from it. While a mapAsync or onSubmittedWorkDone is
// pending, Dawn's Node bindings poll for it from the main thread on every event-loop turn, which
// keeps one core busy until the promise settles. On lavapipe the "GPU" is the CPU's other
// threads, so that loop slows the work it waits for. So a wait first sleeps on a timer (no CPU)
// for most of the time the outstanding work is expected to take, and only then starts the
// awaited call, polling for the rest. The expectation is learned from past waits, per
// outstanding workgroup, in buckets by how many dispatches are outstanding (a training step's
// readback, a generation step's and a weight read differ by orders of magnitude). Per workgroup,
// not per dispatch: the same kernels on 8 times fewer rows (a probe fitted in mini-batches after
// one fitted in full batches, one wait at the end of each) are 8 times fewer workgroups, where a
// rate per dispatch slept through the full batches' time (BENCHMARKS.md, "gpu-wait").
// NLA_GPU_WAIT=spin turns the sleep off (the bench compares the two).

/** Sleep this share of the expected time; the rest is polled, so a slow step is never overslept by much. */
const SLEEP_SHARE = 0.8;
/** Below this expectation a timer costs more than it saves. */
const MIN_SLEEP_MS = 2;
/**
 * Waits on fewer outstanding dispatches are never slept: their cost varies most from one wait to
 * the next (a fast-check loop of single kernels of random sizes, a weight read), where a learned
 * estimate would oversleep; a training step's readback waits on hundreds.
 */
const MIN_DISPATCHES = 64;
/**
 * Under this much polling, the work had (most likely) finished during the sleep: the estimate
 * was high, by an amount the wait cannot see, so it shrinks by OVERSLEPT_SHRINK. A wait that
 * polls longer gives its true length, and the estimate moves toward it.
 */
const OVERSLEPT_MS = 2;
const OVERSLEPT_SHRINK = 0.75;

let outstanding = 0;
let outstandingWork = 0;
/** Learned milliseconds per outstanding workgroup, by bucket of outstanding dispatches. */
const msPerWorkgroup = new Map<number, number>();
let mode: 'sleep' | 'spin' = process.env.NLA_GPU_WAIT === 'spin' ? 'spin' : 'sleep';

/** Count a dispatch of `workgroups` workgroups (at least 1 is counted) recorded since the last completed wait. */
export function noteDispatch(workgroups = 1): void {
  outstanding++;
  outstandingWork += Math.max(1, workgroups);
}

/** 'sleep' (default) or 'spin' (await at once, as Dawn alone would). Returns the previous mode. */
export function setGpuWait(m: 'sleep' | 'spin'): 'sleep' | 'spin' {
  const was = mode;
  mode = m;
  return was;
}

/** What the wait reads time from and sleeps on: real timers, or a test's virtual clock. */
export interface GpuWaitClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}
const REAL_CLOCK: GpuWaitClock = { now: () => performance.now(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)) };
let clock = REAL_CLOCK;

/** Replace the clock (undefined: real timers) and forget what was learned. Returns the previous clock. */
export function setGpuWaitClock(c?: GpuWaitClock): GpuWaitClock {
  const was = clock;
  clock = c ?? REAL_CLOCK;
  msPerWorkgroup.clear();
  outstanding = 0;
  outstandingWork = 0;
  return was;
}

const bucketOf = (n: number) => (n <= 0 ? 0 : Math.floor(Math.log2(n)) + 1);

/**
 * Run `start` (which begins the GPU wait and returns its promise) after sleeping for most of the
 * expected time of the dispatches outstanding, then learn from how long it took. Always yields to
 * the event loop first (Dawn's await spins a core otherwise).
 */
export async function waitForGpu<T>(start: () => Promise<T>): Promise<T> {
  const n = outstanding, work = outstandingWork, bucket = bucketOf(n);
  outstanding = 0;
  outstandingWork = 0;
  const rate = msPerWorkgroup.get(bucket);
  const expect = mode === 'sleep' && rate !== undefined && n >= MIN_DISPATCHES ? rate * work * SLEEP_SHARE : 0;
  const t0 = clock.now();
  await clock.sleep(expect >= MIN_SLEEP_MS ? expect : 0);
  const t1 = clock.now();
  const out = await start();
  const t2 = clock.now();
  if (n > 0) {
    if (expect >= MIN_SLEEP_MS && t2 - t1 < OVERSLEPT_MS) msPerWorkgroup.set(bucket, rate! * OVERSLEPT_SHRINK);
    else msPerWorkgroup.set(bucket, rate === undefined ? (t2 - t0) / work : 0.7 * rate + 0.3 * ((t2 - t0) / work));
  }
  return out;
}

// GPU errors that surface. WebGPU reports a bad buffer, bind group, dispatch or submit
// asynchronously; unwatched, it goes to the console and the next readback returns stale data.
// So every submission (and whatever was created or uploaded before it) runs inside a
// validation error scope: one scope per submit (at most every 32 dispatches), popped without
// awaiting, so the hot path never waits. The next sync() or readback awaits the popped scopes
// and throws an Error naming the batch's kernels, their shapes and WebGPU's message. Errors
// outside any scope (out-of-memory, internal) arrive by the uncaptured-error event and are
// thrown the same way. A lost device (destroyed, or a driver reset) makes every later GPU call
// throw at once instead of hanging.
import type { KernelSpec } from './runtime.js';

/**
 * The tensor each buffer was last handed out for (shape and dtype, no string built until an
 * error is described): a kernel's error names its operands' shapes, not just byte counts.
 */
const owners = new WeakMap<GPUBuffer, { shape: readonly number[]; dtype: string }>();

/** Record that `buffer` now holds a tensor of `shape` and `dtype` (called where tensors get storage). */
export function ownBuffer(buffer: GPUBuffer, shape: readonly number[], dtype: string): void {
  owners.set(buffer, { shape, dtype });
}

function ownerText(buffer: GPUBuffer): string {
  const o = owners.get(buffer);
  return o ? ` ([${o.shape.join(',')}] ${o.dtype})` : '';
}

/** What the open scope covers: the dispatches recorded and other GPU calls made since the last submit. */
let covered: (KernelSpec | string)[] = [];
const errors: string[] = [];
const outstanding = new Set<Promise<void>>();
let lost: string | undefined;
let lostSignal: Promise<string> = new Promise(() => {});

/** Start watching a new device (called once by initGpu). */
export function watchDevice(device: GPUDevice): void {
  device.addEventListener?.('uncapturederror', (e) => {
    errors.push(`nla: GPU error outside any batch: ${(e as GPUUncapturedErrorEvent).error.message.trim()}`);
  });
  lostSignal = device.lost.then((info) => {
    lost = `nla: the GPU device was lost (${info.reason}${info.message ? `: ${info.message}` : ''}); every tensor on it is gone, so this process cannot continue its GPU work`;
    for (const drop of waiting) drop(new Error(lost));
    return lost;
  });
  device.pushErrorScope('validation');
}

/** Throws at once if the device is lost: called before recording or submitting anything. */
export function assertDeviceAlive(): void {
  if (lost) throw new Error(lost);
}

/** Record that `what` (a dispatch, or a description of an upload or copy) belongs to the open batch. */
export function cover(what: KernelSpec | string): void {
  covered.push(what);
}

/** Close the batch just submitted: pop its scope (not awaited) and open the next one. */
export function closeBatch(device: GPUDevice): void {
  const batch = covered;
  covered = [];
  const p: Promise<void> = device
    .popErrorScope()
    .then((e) => {
      if (e) errors.push(describe(e.message, batch));
    }, (e: Error) => void errors.push(`nla: GPU error scope failed: ${e.message}`))
    .finally(() => outstanding.delete(p));
  outstanding.add(p);
  device.pushErrorScope('validation');
}

/**
 * Watch one compile (its own scope, popped by the caller): on an error, `onError` runs (the
 * caller drops the invalid pipeline from its cache) and the error is thrown at the next sync.
 */
export function watchCompile(popped: Promise<GPUError | null>, key: string, onError: () => void): void {
  const p: Promise<void> = popped
    .then((e) => {
      if (!e) return;
      onError();
      errors.push(`nla: kernel "${key}" failed to compile: ${e.message.trim()}`);
    })
    .finally(() => outstanding.delete(p));
  outstanding.add(p);
}

/** Await the scopes popped so far; throw what they (or the uncaptured-error event, or a loss) reported. */
export async function throwGpuErrors(): Promise<void> {
  if (outstanding.size) await Promise.all([...outstanding]);
  if (lost) throw new Error(lost);
  if (errors.length) throw new Error(errors.splice(0).join('\n'));
}

/**
 * Calls waiting in unlessLost, each rejected if the device is lost first. A Set, not a race
 * against one long-lived promise: every race (or then) on a promise that never settles leaves a
 * reaction on it for good, 3 promises and a closure per readback (~8 MiB of JS heap per 1,000
 * RL soak steps, BENCHMARKS.md, soak).
 */
const waiting = new Set<(e: Error) => void>();

/**
 * `work` (a mapAsync or onSubmittedWorkDone), or the device-lost error if the device goes first.
 * A rejection is rethrown as the loss or the pending GPU errors when there are some, since those
 * say more than a bare "operation aborted".
 */
export async function unlessLost<T>(work: Promise<T>): Promise<T> {
  let drop!: (e: Error) => void;
  const dropped = new Promise<never>((_, reject) => (drop = reject));
  if (lost) drop(new Error(lost));
  else waiting.add(drop);
  try {
    return await Promise.race([work, dropped]);
  } catch (e) {
    await Promise.race([lostSignal, new Promise((r) => setTimeout(r, 50))]);
    await throwGpuErrors();
    throw e;
  } finally {
    waiting.delete(drop);
  }
}

/** The error of a batch: WebGPU's message, then each distinct dispatch with its shapes. */
function describe(message: string, batch: (KernelSpec | string)[]): string {
  const seen = new Map<string, number>();
  for (const w of batch) {
    const d = typeof w === 'string' ? w : dispatchText(w);
    seen.set(d, (seen.get(d) ?? 0) + 1);
  }
  const lines = [...seen].map(([d, n]) => `  ${d}${n > 1 ? ` (x${n})` : ''}`);
  const shown = lines.length > 12 ? [...lines.slice(0, 12), `  ... and ${lines.length - 12} more`] : lines;
  const kernels = [...new Set(batch.filter((w): w is KernelSpec => typeof w !== 'string').map((s) => s.key))];
  return `nla: GPU error in a batch with kernel(s) ${kernels.map((k) => `"${k}"`).join(', ') || '(none)'}: ${message.trim()}\n${shown.join('\n')}`;
}

function dispatchText(s: KernelSpec): string {
  const [x, y = 1, z = 1] = s.workgroups;
  const note = s.note ? ` ${s.note()}` : '';
  return `kernel "${s.key}"${note}: workgroups ${x}x${y}x${z}, buffers ${s.buffers.map((b) => ('buffer' in b ? `${b.size} B at ${b.offset} of ${b.buffer.size} B${ownerText(b.buffer)}` : `${b.size} B${ownerText(b)}`)).join(', ')}`;
}

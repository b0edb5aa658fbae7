// Buffer pool. GPU buffer creation costs far more than reuse, and a training loop allocates
// the same sizes every step, so freed buffers wait in per-size free lists. Sizes are rounded
// up to a size class (powers of two split in 4) so near-equal requests share buffers.
// Counters of live buffers/bytes let tests assert that memory stays flat.
import { forgetBindGroups } from './bind-groups.js';
import { gpu } from './device.js';
import { trimStaging } from './staging.js';

const usage = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

export interface PoolStats { liveBuffers: number; liveBytes: number; pooledBuffers: number; pooledBytes: number; created: number }

const free = new Map<number, GPUBuffer[]>();
const stats: PoolStats = { liveBuffers: 0, liveBytes: 0, pooledBuffers: 0, pooledBytes: 0, created: 0 };
const sizeOf = new WeakMap<GPUBuffer, number>();

export function sizeClass(bytes: number): number {
  const b = Math.max(16, bytes);
  if (b <= 256) return Math.ceil(b / 16) * 16;
  const p = 2 ** Math.floor(Math.log2(b));
  const step = p / 4;
  return Math.ceil(b / step) * step;
}

/**
 * The largest buffer a tensor may have: maxBufferSize. Beyond maxStorageBufferBindingSize a
 * tensor still fits one buffer; the ops that meet it bind ranges of it (binding.ts), and any
 * other op refuses it at dispatch, naming the kernel. Beyond maxBufferSize it lives in several
 * buffers of whole rows (pieces.ts).
 */
export function bufferLimit(): { bytes: number; name: string } {
  const device = gpu().device.limits.maxBufferSize;
  return { bytes: loweredBuffer === undefined ? device : Math.min(device, loweredBuffer), name: 'maxBufferSize' };
}

let loweredBuffer: number | undefined = process.env.NLA_BUFFER_LIMIT ? Number(process.env.NLA_BUFFER_LIMIT) : undefined;

/**
 * Treat maxBufferSize as `bytes` when that is below the device's (undefined: the device's again).
 * For tests: small tensors then live in several buffers (pieces.ts), as only huge ones do on a
 * real device. NLA_BUFFER_LIMIT sets it for a whole process.
 */
export function setBufferLimit(bytes: number | undefined): void {
  if (bytes !== undefined && !(Number.isInteger(bytes) && bytes >= 256 && bytes % 16 === 0)) throw new Error(`setBufferLimit: ${bytes} must be a multiple of 16 of at least 256 B`);
  loweredBuffer = bytes;
}

/** Above this a size class would waste up to a quarter of a big weight: such buffers get their exact size. */
const EXACT_ABOVE = 64 * 2 ** 20;
let exactDepth = 0;

/**
 * Buffers acquired inside fn get their exact size (rounded to 16 B), not a size class: for
 * weights, allocated once and never recycled into other sizes (a 0.5B model's 8.3 MiB block
 * matrices would take 10 MiB each, 130 MiB in all).
 */
export function exactSizes<T>(fn: () => T): T {
  exactDepth++;
  try {
    return fn();
  } finally {
    exactDepth--;
  }
}

/**
 * A buffer of at least `bytes`. Beyond the device's limit it throws, naming `what()` (the op and
 * shape asking) and the limit: WebGPU would only report it later, as an invalid buffer.
 */
export function acquire(bytes: number, what: () => string = () => 'a buffer'): GPUBuffer {
  const max = bufferLimit();
  if (bytes > max.bytes) throw new Error(`${what()} needs ${mib(bytes)}, more than this GPU's ${max.name} of ${mib(max.bytes)}`);
  const size = exactDepth > 0 || bytes > EXACT_ABOVE || sizeClass(bytes) > max.bytes ? Math.min(Math.ceil(bytes / 16) * 16, Math.floor(max.bytes / 4) * 4) : sizeClass(bytes);
  const list = free.get(size);
  let buf = list?.pop();
  if (buf) {
    stats.pooledBuffers--;
    stats.pooledBytes -= size;
  } else {
    buf = gpu().device.createBuffer({ size, usage: usage() });
    sizeOf.set(buf, size);
    stats.created++;
  }
  stats.liveBuffers++;
  stats.liveBytes += size;
  return buf;
}

export function release(buf: GPUBuffer): void {
  const size = sizeOf.get(buf)!;
  let list = free.get(size);
  if (!list) free.set(size, (list = []));
  list.push(buf);
  stats.liveBuffers--;
  stats.liveBytes -= size;
  stats.pooledBuffers++;
  stats.pooledBytes += size;
}

/** Destroy every pooled (free) buffer and waiting staging buffer, e.g. between unrelated jobs. */
export function trimPool(): void {
  // A cached bind group may name a buffer destroyed here: forget them all first.
  forgetBindGroups();
  trimStaging();
  for (const list of free.values()) for (const b of list) b.destroy();
  free.clear();
  stats.pooledBuffers = 0;
  stats.pooledBytes = 0;
}

export function poolStats(): PoolStats {
  return { ...stats };
}

const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB (${b} B)`;

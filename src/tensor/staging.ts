// Staging buffers for readbacks, kept and reused. A readback copies into a MAP_READ buffer and
// maps it; making and destroying one per readback (16 per RL soak step) leaves native memory
// behind until V8 collects the wrappers, and buffers made and destroyed in a loop grow RSS by
// ~1 KB each even with collections (bench/dawn-objects.ts --object buffer). Unmapped buffers go
// back to a free list per power-of-two size; big ones (beyond KEEP_MAX) are destroyed as before,
// and at most KEEP_TOTAL bytes wait.
import { gpu } from './device.js';

const KEEP_MAX = 16 * 2 ** 20;
const KEEP_TOTAL = 64 * 2 ** 20;
const free = new Map<number, GPUBuffer[]>();
let kept = 0;
export const stagingStats = { created: 0, reused: 0 };

const sizeOf = (bytes: number): number => (bytes <= 256 ? 256 : 2 ** Math.ceil(Math.log2(bytes)));

/** An unmapped MAP_READ | COPY_DST buffer of at least `bytes`. */
export function acquireStaging(bytes: number): GPUBuffer {
  const size = bytes > KEEP_MAX ? Math.max(4, Math.ceil(bytes / 4) * 4) : sizeOf(bytes);
  const b = size <= KEEP_MAX ? free.get(size)?.pop() : undefined;
  if (b) {
    kept -= size;
    stagingStats.reused++;
    return b;
  }
  stagingStats.created++;
  return gpu().device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
}

/** Give back an unmapped staging buffer (a failed one is destroyed by the caller instead). */
export function releaseStaging(b: GPUBuffer): void {
  if (b.size > KEEP_MAX || kept + b.size > KEEP_TOTAL) return void b.destroy();
  let list = free.get(b.size);
  if (!list) free.set(b.size, (list = []));
  list.push(b);
  kept += b.size;
}

/** Destroy every waiting staging buffer. */
export function trimStaging(): void {
  for (const list of free.values()) for (const b of list) b.destroy();
  free.clear();
  kept = 0;
}

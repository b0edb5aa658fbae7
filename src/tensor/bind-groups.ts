// Bind groups kept and reused. A bind group costs ~4.7 KB of native memory in Dawn + lavapipe
// that is freed only when V8 collects its small JS wrapper, so one per dispatch (1,570 per RL
// soak step) piled up hundreds of MiB between collections and RSS crept (BENCHMARKS.md, soak).
// Buffers come from the pool and the uniform arena is one buffer bound at a dynamic offset, so
// the same (pipeline, buffers) recur step after step: a cache keyed by them makes a bind group
// only on a miss. Least recently used entries leave beyond MAX_CACHED; trimPool forgets all
// (a destroyed buffer must never be bound again).
import type { Binding } from './binding.js';
import { countNative } from './collect.js';

/** Enough for every distinct (kernel, buffers) of a training or RL step (soak: ~1,600 per step). */
export const MAX_CACHED = 8192;

const cache = new Map<string, GPUBindGroup>();
const ids = new WeakMap<object, number>();
let nextId = 1;
export const bindGroupStats = { created: 0, reused: 0 };

function idOf(o: object): number {
  let id = ids.get(o);
  if (id === undefined) ids.set(o, (id = nextId++));
  return id;
}

/**
 * The bind group of `layout` with the uniform block (`uniformBytes` of `uniform`, bound at a
 * dynamic offset) as binding 0 and `buffers` as bindings 1..n: a cached one, or a new one.
 */
export function bindGroupFor(device: GPUDevice, layout: GPUBindGroupLayout, uniform: GPUBuffer, uniformBytes: number, buffers: Binding[], label: string): GPUBindGroup {
  let key = `${idOf(layout)}|${idOf(uniform)}:${uniformBytes}`;
  for (const b of buffers) key += 'buffer' in b ? `|${idOf(b.buffer)}@${b.offset}+${b.size}` : `|${idOf(b)}`;
  const hit = cache.get(key);
  if (hit) {
    // Most recently used goes last: Map keeps insertion order, so the first key is the oldest.
    cache.delete(key);
    cache.set(key, hit);
    bindGroupStats.reused++;
    return hit;
  }
  const group = device.createBindGroup({
    label,
    layout,
    entries: [{ binding: 0, resource: { buffer: uniform, offset: 0, size: uniformBytes } }, ...buffers.map((b, i) => ({ binding: i + 1, resource: 'buffer' in b ? b : { buffer: b } }))],
  });
  bindGroupStats.created++;
  countNative();
  cache.set(key, group);
  if (cache.size > MAX_CACHED) cache.delete(cache.keys().next().value!);
  return group;
}

/** Drop every cached bind group (their buffers are about to be destroyed). */
export function forgetBindGroups(): void {
  cache.clear();
}

export const cachedBindGroups = (): number => cache.size;

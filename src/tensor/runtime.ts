// Records kernel dispatches into one command encoder and submits rarely: on readback, on
// upload into a recycled buffer, or when many dispatches are pending. Each dispatch gets
// its own slot in a uniform arena that is written once per submit (queue.writeBuffer is
// ordered with submits, so the arena can be reused by the next batch). The arena is bound at a
// dynamic offset, so a dispatch's bind group depends only on its pipeline and buffers and is
// reused from a cache (bind-groups.ts) rather than made anew.
import { bindingLimit, boundBytes, type Binding } from './binding.js';
import { debugLevel, gpu } from './device.js';
import { assertDeviceAlive, closeBatch, cover, throwGpuErrors, unlessLost, watchCompile } from './gpu-errors.js';
import { CHECK_KERNELS, checkOutputs, throwFirstBadOutput } from './nan-check.js';
import { bindGroupFor, bindGroupStats, cachedBindGroups } from './bind-groups.js';
import { collectStats, countNative } from './collect.js';
import { acquireStaging, releaseStaging, stagingStats } from './staging.js';
import { activeProfiler } from './profile.js';
import { noteDispatch, waitForGpu } from './gpu-wait.js';

export interface KernelSpec {
  /** Cache key: everything that changes the WGSL text. */
  key: string;
  /** Produces the WGSL; called once per key. */
  source: () => string;
  /** Storage buffers (or byte ranges of one) in binding order (bindings 1..n; binding 0 is the uniform block). */
  buffers: Binding[];
  /** Which storage bindings are read-only (default: all but the last). */
  readOnly?: boolean[];
  /** Uniform words (u32 view; write f32 through a Float32Array over the same buffer). */
  uniforms: Uint32Array;
  /** Workgroup counts; x above the 65535 limit is split into y automatically by callers via grid(). */
  workgroups: [number, number?, number?];
  /** What this dispatch works on (e.g. a matmul's m x n x k), kept apart per value by the
   * profiler; a function so it costs nothing unless profiling. */
  note?: () => string;
}

const pipelines = new Map<string, { pipeline: GPUComputePipeline; layout: GPUBindGroupLayout }>();
let encoder: GPUCommandEncoder | undefined;
let pass: GPUComputePassEncoder | undefined;
let pendingDispatches = 0;
let stats = { dispatches: 0, submits: 0, compiles: 0, readbacks: 0 };

// Uniform arena: one big buffer, fixed-size slots.
const SLOT = 256;
const ARENA_SLOTS = 1024;
let arena: GPUBuffer | undefined;
let arenaHost = new Uint8Array(SLOT * ARENA_SLOTS);
let arenaUsed = 0;
// Arenas already submitted in this batch window are kept until the queue is drained.
// Submit every 32 dispatches: the GPU starts on a step while the host is still recording the
// rest of it (train bench, same process, alternating steps: median 898 -> 863 ms per step vs
// one submit per 2,048); submits stay rare next to dispatches.
const MAX_PENDING = 32;

export function runtimeStats() {
  return {
    ...stats, pipelines: pipelines.size, pending: pendingDispatches, collections: collectStats.collections, collectMs: collectStats.ms,
    bindGroupsCreated: bindGroupStats.created, bindGroupsCached: cachedBindGroups(), stagingCreated: stagingStats.created,
  };
}

function getPipeline(spec: KernelSpec) {
  let p = pipelines.get(spec.key);
  if (p) return p;
  const device = gpu().device;
  const code = spec.source();
  if (debugLevel() > 1) console.error(`nla: compile ${spec.key}\n${debugLevel() > 2 ? code : ''}`);
  device.pushErrorScope('validation');
  const module = device.createShaderModule({ code, label: spec.key });
  const ro = spec.readOnly ?? spec.buffers.map((_, i) => i < spec.buffers.length - 1);
  const entries: GPUBindGroupLayoutEntry[] = [
    { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform', hasDynamicOffset: true } },
    ...spec.buffers.map((_, i) => ({
      binding: i + 1,
      visibility: GPUShaderStage.COMPUTE,
      buffer: { type: (ro[i] ? 'read-only-storage' : 'storage') as GPUBufferBindingType },
    })),
  ];
  const layout = device.createBindGroupLayout({ entries, label: spec.key });
  const pipeline = device.createComputePipeline({
    layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
    compute: { module, entryPoint: 'main' },
    label: spec.key,
  });
  // Compile errors surface asynchronously: the pipeline is used now and its scope checked in
  // the background; an invalid one leaves the cache (the next use compiles again) and fails the
  // next sync point loudly.
  const entry = { pipeline, layout };
  watchCompile(device.popErrorScope(), spec.key, () => {
    if (pipelines.get(spec.key) === entry) pipelines.delete(spec.key);
  });
  stats.compiles++;
  pipelines.set(spec.key, entry);
  return entry;
}

/** Compile a kernel now and throw a clear error if its WGSL is invalid (used by custom ops). */
export async function compileChecked(spec: Pick<KernelSpec, 'key' | 'source' | 'buffers' | 'readOnly'>): Promise<void> {
  const device = gpu().device;
  const module = device.createShaderModule({ code: spec.source(), label: spec.key });
  const info = await module.getCompilationInfo();
  const errs = info.messages.filter((m) => m.type === 'error');
  if (errs.length) {
    throw new Error(`nla: WGSL compile error in kernel "${spec.key}":\n` + errs.map((m) => `  line ${m.lineNum}:${m.linePos}: ${m.message}`).join('\n'));
  }
}

export function dispatch(spec: KernelSpec): void {
  assertDeviceAlive();
  const device = gpu().device;
  refuseOversize(spec);
  const { pipeline, layout } = getPipeline(spec);
  if (arenaUsed >= ARENA_SLOTS) flush();
  if (!arena) arena = device.createBuffer({ size: SLOT * ARENA_SLOTS, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  const slot = arenaUsed++;
  const bytes = new Uint8Array(spec.uniforms.buffer, spec.uniforms.byteOffset, spec.uniforms.byteLength);
  if (bytes.byteLength > SLOT) throw new Error(`nla: kernel "${spec.key}" uniforms exceed ${SLOT} bytes`);
  arenaHost.set(bytes, slot * SLOT);
  const bindGroup = bindGroupFor(device, layout, arena, Math.max(16, Math.ceil(bytes.byteLength / 16) * 16), spec.buffers, spec.key);
  encoder ??= device.createCommandEncoder();
  const profiler = activeProfiler();
  if (profiler) {
    // Profiling (profile.ts): one pass per dispatch, bracketed by GPU timestamps.
    if (pass) { pass.end(); pass = undefined; }
    pass = encoder.beginComputePass({ timestampWrites: profiler.slot(spec.note ? `${spec.key}|@${spec.note()}` : spec.key) });
  }
  pass ??= encoder.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup, [slot * SLOT]);
  const [x, y = 1, z = 1] = spec.workgroups;
  if (x > 0 && y > 0 && z > 0) pass.dispatchWorkgroups(x, y, z);
  stats.dispatches++;
  noteDispatch(x * y * z);
  cover(spec);
  if (profiler) { pass.end(); pass = undefined; }
  if (++pendingDispatches >= MAX_PENDING || profiler?.full()) flush();
  if (CHECK_KERNELS) checkOutputs(spec);
}

/**
 * A binding beyond the device's limit would be an invalid bind group and a wrong number later:
 * refuse it now, naming the kernel. Ops that meet big tensors bind ranges of them (binding.ts).
 */
function refuseOversize(spec: KernelSpec): void {
  const limit = bindingLimit();
  const i = spec.buffers.findIndex((b) => boundBytes(b) > limit);
  if (i < 0) return;
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  throw new Error(
    `nla: kernel "${spec.key}"${spec.note ? ` (${spec.note()})` : ''} would bind ${mib(boundBytes(spec.buffers[i]))} as binding ${i + 1}, ` +
      `beyond this GPU's maxStorageBufferBindingSize of ${mib(limit)} (${limit} B); this op does not split tensors that big`,
  );
}

/** Submit everything recorded so far. */
export function flush(): void {
  if (!encoder) return;
  const device = gpu().device;
  if (pass) { pass.end(); pass = undefined; }
  if (arenaUsed > 0) device.queue.writeBuffer(arena!, 0, arenaHost, 0, arenaUsed * SLOT);
  const profiler = activeProfiler();
  profiler?.resolve(encoder);
  device.queue.submit([encoder.finish()]);
  closeBatch(device);
  profiler?.collect();
  encoder = undefined;
  // The next batch may overwrite the arena: writeBuffer is queued after this submit.
  arenaUsed = 0;
  pendingDispatches = 0;
  stats.submits++;
  // The encoder, its pass and command buffer are garbage now (collect.ts).
  countNative();
}

/** Upload host data. Writes are queue-ordered before pending commands, so flush first. */
export function upload(dst: GPUBuffer, offsetBytes: number, data: ArrayBufferView): void {
  assertDeviceAlive();
  if (encoder) flush();
  cover(`upload of ${data.byteLength} B at offset ${offsetBytes} into a buffer of ${dst.size} B`);
  const bytes = new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
  // writeBuffer needs a multiple of 4 bytes.
  if (bytes.byteLength % 4 !== 0) {
    const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
    padded.set(bytes);
    gpu().device.queue.writeBuffer(dst, offsetBytes, padded);
  } else gpu().device.queue.writeBuffer(dst, offsetBytes, bytes);
}

/** Read bytes back. Sleeps through most of the outstanding work before awaiting (gpu-wait.ts). */
export async function readback(src: GPUBuffer, offsetBytes: number, bytes: number): Promise<ArrayBuffer> {
  assertDeviceAlive();
  const device = gpu().device;
  const size = Math.ceil(bytes / 4) * 4;
  const span = Math.max(4, size);
  const staging = acquireStaging(span);
  encoder ??= device.createCommandEncoder();
  if (pass) { pass.end(); pass = undefined; }
  if (size > 0) encoder.copyBufferToBuffer(src, offsetBytes, staging, 0, size);
  cover(`readback of ${bytes} B at offset ${offsetBytes} from a buffer of ${src.size} B`);
  flush();
  stats.readbacks++;
  try {
    await waitForGpu(() => unlessLost(staging.mapAsync(GPUMapMode.READ, 0, span)));
  } catch (e) {
    staging.destroy();
    throw e;
  }
  const out = staging.getMappedRange(0, span).slice(0, bytes);
  staging.unmap();
  releaseStaging(staging);
  // Data read after a failed batch may be stale: the error wins over the bytes.
  await throwGpuErrors();
  if (CHECK_KERNELS) await throwFirstBadOutput();
  return out;
}

/** Wait for all submitted work (benchmarks). */
export async function sync(): Promise<void> {
  assertDeviceAlive();
  flush();
  closeBatch(gpu().device); // uploads since the last submit are watched too
  await waitForGpu(() => unlessLost(gpu().device.queue.onSubmittedWorkDone()));
  await throwGpuErrors();
  if (CHECK_KERNELS) await throwFirstBadOutput();
}

/** Split a large 1-D workgroup count over x and y (each dimension is capped at 65535). */
export function grid(n: number): [number, number] {
  if (n <= 65535) return [n, 1];
  const y = Math.ceil(n / 65535);
  return [Math.ceil(n / y), y];
}

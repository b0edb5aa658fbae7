// One place that owns the WebGPU device: Dawn instance, adapter, device, features, limits.
// The object returned by webgpu's create() must stay referenced for the process's life
// (if it is collected Node segfaults or hangs), so it lives in a module-level variable.
import * as os from 'node:os';
import { create, globals } from 'webgpu';

export interface DeviceInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  backend: string;
  isSoftware: boolean;
  features: string[];
  limits: Record<string, number>;
}

export interface Gpu {
  device: GPUDevice;
  info: DeviceInfo;
  hasF16: boolean;
  hasTimestamps: boolean;
  hasSubgroups: boolean;
}

// WebGPU's constants (GPUBufferUsage, GPUMapMode, ...) are globals in browsers; install them now.
Object.assign(globalThis, globals);

let dawn: GPU | undefined; // kept alive on purpose, see above
let current: Gpu | undefined;
let pending: Promise<Gpu> | undefined;

export const debugLevel = (): number => Number(process.env.NLA_DEBUG ?? 0) || 0;

const WANTED: GPUFeatureName[] = ['shader-f16', 'timestamp-query', 'subgroups'] as GPUFeatureName[];

/** Initialise (once) and return the GPU device. Concurrent callers share one init. */
export function initGpu(): Promise<Gpu> {
  if (current) return Promise.resolve(current);
  pending ??= doInit().then((g) => (current = g));
  return pending;
}

/** The device after initGpu() resolved; throws a clear error if called before. */
export function gpu(): Gpu {
  if (!current) throw new Error('nla: the GPU is not initialised; `await initGpu()` first (the library entry points do this for you)');
  return current;
}

async function doInit(): Promise<Gpu> {
  process.env.XDG_RUNTIME_DIR ??= `/tmp/xdg-runtime-${process.getuid?.() ?? 0}`;
  // lavapipe splits each dispatch across LP_NUM_THREADS workers (default: one per core). With
  // one worker per core, a core shared with this process's own threads holds the whole dispatch
  // back; four per core balance it: on 2 cores 1024^3 matmul 31 -> 47 GFLOP/s and the training
  // bench step 1,276 -> 988 ms (BENCHMARKS.md). Read by the driver at init; hardware drivers ignore it.
  process.env.LP_NUM_THREADS ??= String(4 * Math.max(1, os.availableParallelism()));
  const flags = (process.env.NLA_DAWN_FLAGS ?? '').split(/\s+/).filter(Boolean);
  dawn = create(flags);
  const adapter = await dawn.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) {
    throw new Error(
      'nla: no WebGPU adapter found. On a machine without a GPU install Mesa lavapipe ' +
        '(Debian bookworm: `bash scripts/setup.sh`, which installs mesa-vulkan-drivers and libvulkan1 from bookworm-backports) ' +
        'and make sure XDG_RUNTIME_DIR is set.',
    );
  }
  const features = WANTED.filter((f) => adapter.features.has(f));
  // Ask for the adapter's maxima: big models want large storage buffers and many bindings.
  const requiredLimits: Record<string, number> = {};
  const limits: Record<string, number> = {};
  for (const k in adapter.limits) {
    const v = (adapter.limits as unknown as Record<string, number>)[k];
    if (typeof v !== 'number') continue;
    limits[k] = v;
    if (k.startsWith('max') && !k.includes('Dynamic')) requiredLimits[k] = v;
  }
  const device = await adapter.requestDevice({ requiredFeatures: features, requiredLimits });
  device.addEventListener?.('uncapturederror', (e) => {
    // Validation errors should never reach here: ops check shapes first. If one does, say so loudly.
    console.error('nla: uncaptured WebGPU error:', (e as GPUUncapturedErrorEvent).error.message);
  });
  const ai = adapter.info;
  const description = `${ai.vendor} ${ai.architecture} ${ai.device} ${ai.description}`.trim();
  const isSoftware = /llvmpipe|lavapipe|swiftshader|software|cpu/i.test(description) || (ai as { type?: string }).type === 'CPU';
  const info: DeviceInfo = {
    vendor: ai.vendor,
    architecture: ai.architecture,
    device: ai.device,
    description: ai.description,
    backend: (ai as { backendType?: string }).backendType ?? 'unknown',
    isSoftware,
    features: [...adapter.features].map(String).sort(),
    limits,
  };
  const g: Gpu = {
    device,
    info,
    hasF16: features.includes('shader-f16' as GPUFeatureName),
    hasTimestamps: features.includes('timestamp-query' as GPUFeatureName),
    hasSubgroups: features.includes('subgroups' as GPUFeatureName),
  };
  if (debugLevel() > 0) console.error(`nla: adapter "${adapterName(info)}" software=${isSoftware} features=${features.join(',')}`);
  return g;
}

export function adapterName(info: DeviceInfo): string {
  return [info.vendor, info.device || info.architecture, info.description].filter(Boolean).join(' / ') || 'unknown adapter';
}

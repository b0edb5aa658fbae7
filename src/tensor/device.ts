// One place that owns the WebGPU device: Dawn instance, adapter, device, features, limits.
// The object returned by webgpu's create() must stay referenced for the process's life
// (if it is collected Node segfaults or hangs), so it lives in a module-level variable.
import * as os from 'node:os';
import { create, globals } from 'webgpu';
import { watchDevice } from './gpu-errors.js';

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
  /** Dawn's robustness (bounds clamps) is on; off only on llvmpipe, which checks bounds itself. */
  robust: boolean;
}

// WebGPU's constants (GPUBufferUsage, GPUMapMode, ...) are globals in browsers; install them now.
Object.assign(globalThis, globals);

const dawn: GPU[] = []; // every create() result, kept alive on purpose (see above)
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
  const requestAdapter = (f: string[]) => {
    const instance = create(f);
    dawn.push(instance);
    return instance.requestAdapter({ powerPreference: 'high-performance' });
  };
  let adapter = await requestAdapter(flags);
  let robust = !flags.some((f) => /disable_robustness/.test(f));
  if (adapter && robust && unchecked(adapter.info)) {
    const fast = await requestAdapter(withDawnFeature(flags, 'disable_robustness'));
    if (fast) [adapter, robust] = [fast, false];
  }
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
  watchDevice(device);
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
    robust,
  };
  if (debugLevel() > 0) console.error(`nla: adapter "${adapterName(info)}" software=${isSoftware} features=${features.join(',')}`);
  return g;
}

/**
 * Whether to create the device without Dawn's robustness (its bounds clamps and Vulkan's
 * robustBufferAccess): only on llvmpipe, which bounds-checks every storage access in its own
 * generated code whatever the device asks for (an out-of-bounds load reads 0 and a store is
 * dropped; tests/device-robustness.test.ts holds it to that), so the clamps are a second check of
 * the same thing. The training step runs ~7% faster without them (BENCHMARKS.md). NLA_ROBUST=1
 * keeps them; hardware adapters always keep them.
 */
function unchecked(info: GPUAdapterInfo): boolean {
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`;
  return process.env.NLA_ROBUST !== '1' && /llvmpipe|lavapipe/i.test(text);
}

/** Dawn's flags with one more `enable-dawn-features` toggle (merged into an existing entry). */
function withDawnFeature(flags: string[], feature: string): string[] {
  const key = 'enable-dawn-features=';
  const i = flags.findIndex((f) => f.startsWith(key));
  if (i < 0) return [...flags, key + feature];
  return flags.map((f, j) => (j === i ? `${f},${feature}` : f));
}

export function adapterName(info: DeviceInfo): string {
  return [info.vendor, info.device || info.architecture, info.description].filter(Boolean).join(' / ') || 'unknown adapter';
}

// Process RSS under the WebGPU objects an nla step creates and drops, with nla's runtime out of
// the way: raw Dawn calls in a loop shaped like one RL soak step (bench/soak.ts: ~1,570 bind
// groups and dispatches, ~58 submits, ~16 mapped staging buffers per step). Dawn frees such an
// object only when V8 collects its JS wrapper, and V8 does not know the native memory behind a
// small wrapper, so RSS can climb between full collections. --gc N collects (needs
// --expose-gc) every N steps to separate garbage from a leak.
//
// Run: node --expose-gc --import tsx bench/main.ts dawn-objects [--steps 2000] [--every 100] [--gc 0] [--mode all|bindgroups|staging|submits]
// One object type alone: ... dawn-objects --object bindgroup|encoder|submit|pass|buffer|uniform|mapasync|writebuffer|workdone|errorscope [--count 100000] [--every 10000] [--gc 0]
import { initGpu } from '../src/tensor/device.js';
import { argCount } from './common.js';

const WGSL = `@group(0) @binding(0) var<uniform> u: vec4<u32>;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read_write> b: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  if (g.x < u.x) { b[g.x] = a[g.x] + 1.0; }
}`;

/** The device, one compute pipeline, a uniform arena and 8 storage buffers of n floats: what each loop binds. */
async function setup(gcEvery: number) {
  const { device } = await initGpu();
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gcEvery && !gc) throw new Error('dawn-objects: --gc needs node --expose-gc');
  const module = device.createShaderModule({ code: WGSL });
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const layout = pipeline.getBindGroupLayout(0);
  const n = 1024;
  const uni = device.createBuffer({ size: 256 * 64, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  const bufs = Array.from({ length: 8 }, () => device.createBuffer({ size: 4 * n, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST }));
  return { device, gc, pipeline, layout, n, uni, bufs };
}

export async function run(args: string[]): Promise<void> {
  if (args.includes('--object')) return runObject(args);
  const steps = argCount(args, 'steps', 2000), every = argCount(args, 'every', 100), gcEvery = argCount(args, 'gc', 0);
  const mode = args[args.indexOf('--mode') + 1] && args.includes('--mode') ? args[args.indexOf('--mode') + 1] : 'all';
  const { device, gc, pipeline, layout, n, uni, bufs } = await setup(gcEvery);
  device.queue.writeBuffer(uni, 0, new Uint32Array(64 * 64).fill(n));
  const dispatches = mode === 'all' || mode === 'bindgroups' ? 1570 : 0;
  const submits = mode === 'staging' ? 0 : 58;
  const readbacks = mode === 'all' || mode === 'staging' ? 16 : 0;
  const t0 = performance.now();
  const sample = (step: number) => {
    const m = process.memoryUsage();
    console.log(JSON.stringify({ bench: 'dawn-objects', mode, gcEvery, step, seconds: Math.round((performance.now() - t0) / 100) / 10, rssMiB: Math.round(m.rss / 2 ** 20), heapMiB: Math.round(m.heapUsed / 2 ** 20) }));
  };
  for (let step = 1; step <= steps; step++) {
    let d = 0;
    for (let s = 0; s < Math.max(submits, 1); s++) {
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      const per = submits ? Math.ceil(dispatches / submits) : dispatches;
      for (let k = 0; k < per && d < dispatches; k++, d++) {
        const bg = device.createBindGroup({ layout, entries: [{ binding: 0, resource: { buffer: uni, offset: 256 * (d % 64), size: 16 } }, { binding: 1, resource: { buffer: bufs[d % 8] } }, { binding: 2, resource: { buffer: bufs[(d + 1) % 8] } }] });
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, bg);
        pass.dispatchWorkgroups(n / 64);
      }
      pass.end();
      device.pushErrorScope('validation');
      device.queue.submit([enc.finish()]);
      void device.popErrorScope();
    }
    for (let r = 0; r < readbacks; r++) {
      const staging = device.createBuffer({ size: 4 * n, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      const enc = device.createCommandEncoder();
      enc.copyBufferToBuffer(bufs[r % 8], 0, staging, 0, 4 * n);
      device.queue.submit([enc.finish()]);
      await staging.mapAsync(GPUMapMode.READ);
      staging.getMappedRange().slice(0);
      staging.unmap();
      staging.destroy();
    }
    await device.queue.onSubmittedWorkDone();
    if (gcEvery && step % gcEvery === 0) gc!();
    if (step === 1 || step % every === 0) sample(step);
  }
}

/** The native objects one nla dispatch, submit or readback makes, each looped alone. */
const OBJECTS = ['bindgroup', 'dispatch', 'encoder', 'submit', 'pass', 'buffer', 'uniform', 'mapasync', 'mapreuse', 'writebuffer', 'workdone', 'errorscope'] as const;

async function runObject(args: string[]): Promise<void> {
  const object = args[args.indexOf('--object') + 1] as (typeof OBJECTS)[number];
  if (!OBJECTS.includes(object)) throw new Error(`dawn-objects: --object must be one of ${OBJECTS.join(', ')}; got ${object}`);
  const count = argCount(args, 'count', 100_000), every = argCount(args, 'every', 10_000), gcEvery = argCount(args, 'gc', 0);
  const { device, gc, pipeline, layout, n, uni, bufs } = await setup(gcEvery);
  const host = new Uint8Array(256 * 64);
  let enc: GPUCommandEncoder | undefined, pass: GPUComputePassEncoder | undefined, staging: GPUBuffer | undefined;
  const t0 = performance.now();
  const sample = (i: number) => {
    const m = process.memoryUsage(), mib = (b: number) => Math.round(b / 2 ** 20);
    console.log(JSON.stringify({ bench: 'dawn-objects', object, gcEvery, i, seconds: Math.round((performance.now() - t0) / 100) / 10, rssMiB: mib(m.rss), heapUsedMiB: mib(m.heapUsed), heapTotalMiB: mib(m.heapTotal), externalMiB: mib(m.external), arrayBuffersMiB: mib(m.arrayBuffers) }));
  };
  sample(0);
  for (let i = 1; i <= count; i++) {
    switch (object) {
      case 'bindgroup':
        device.createBindGroup({ layout, entries: [{ binding: 0, resource: { buffer: uni, offset: 256 * (i % 64), size: 16 } }, { binding: 1, resource: { buffer: bufs[i % 8] } }, { binding: 2, resource: { buffer: bufs[(i + 1) % 8] } }] });
        break;
      case 'dispatch': {
        // What nla does per dispatch: a bind group used in a pass, submitted 32 at a time.
        const k = (i - 1) % 32;
        if (k === 0) { enc = device.createCommandEncoder(); pass = enc.beginComputePass(); }
        const bg = device.createBindGroup({ layout, entries: [{ binding: 0, resource: { buffer: uni, offset: 256 * (i % 64), size: 16 } }, { binding: 1, resource: { buffer: bufs[i % 8] } }, { binding: 2, resource: { buffer: bufs[(i + 1) % 8] } }] });
        pass!.setPipeline(pipeline);
        pass!.setBindGroup(0, bg);
        pass!.dispatchWorkgroups(n / 64);
        if (k === 31) { pass!.end(); device.queue.submit([enc!.finish()]); }
        break;
      }
      case 'encoder':
        device.createCommandEncoder().finish();
        break;
      case 'submit':
        device.queue.submit([device.createCommandEncoder().finish()]);
        break;
      case 'pass': {
        const enc = device.createCommandEncoder();
        enc.beginComputePass().end();
        enc.finish();
        break;
      }
      case 'buffer':
        device.createBuffer({ size: 4 * n, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST }).destroy();
        break;
      case 'uniform':
        device.createBuffer({ size: 256, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST }).destroy();
        break;
      case 'mapasync': {
        // A readback as nla did it: a fresh staging buffer, copied into, mapped, read, destroyed.
        const fresh = device.createBuffer({ size: 4 * n, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
        const e = device.createCommandEncoder();
        e.copyBufferToBuffer(bufs[i % 8], 0, fresh, 0, 4 * n);
        device.queue.submit([e.finish()]);
        await fresh.mapAsync(GPUMapMode.READ);
        fresh.getMappedRange().slice(0);
        fresh.unmap();
        fresh.destroy();
        break;
      }
      case 'mapreuse': {
        // The same, through one staging buffer kept for the whole run.
        staging ??= device.createBuffer({ size: 4 * n, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
        const e = device.createCommandEncoder();
        e.copyBufferToBuffer(bufs[i % 8], 0, staging, 0, 4 * n);
        device.queue.submit([e.finish()]);
        await staging.mapAsync(GPUMapMode.READ);
        staging.getMappedRange().slice(0);
        staging.unmap();
        break;
      }
      case 'writebuffer':
        device.queue.writeBuffer(uni, 0, host, 0, 256 * 32);
        break;
      case 'workdone':
        await device.queue.onSubmittedWorkDone();
        break;
      case 'errorscope':
        device.pushErrorScope('validation');
        void device.popErrorScope();
        break;
    }
    // Let promise callbacks and Dawn's event processing (deferred frees) run now and then.
    if (i % 1000 === 0) {
      await new Promise((r) => setTimeout(r, 0));
      if (object !== 'workdone') await device.queue.onSubmittedWorkDone();
    }
    if (gcEvery && i % gcEvery === 0) gc!();
    if (i % every === 0) sample(i);
  }
  await device.queue.onSubmittedWorkDone();
  gc?.();
  sample(count);
}

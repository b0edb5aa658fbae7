// GPU errors surface (src/tensor/gpu-errors.ts): each test makes WebGPU fail one way (a dispatch
// past the workgroup limit, a destroyed buffer in a submit, WGSL that does not compile, an upload
// out of range, a tensor past the buffer limit, an elementwise op on a destroyed buffer, an error
// outside any scope, a destroyed device) and checks the next sync point throws an Error naming
// the kernel, its operands' shapes and WebGPU's message, and that the engine then works on. The device is destroyed last: nothing on the GPU runs after it in this file.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../src/tensor/index.js';
import { gpu } from '../src/tensor/device.js';
import { poolStats } from '../src/tensor/pool.js';
import { dispatch, runtimeStats, upload, type KernelSpec } from '../src/tensor/runtime.js';

// Writes 7 to o[i] for each invocation; `body` replaces the statement (to make it not compile).
const wgsl = (body = 'o[g.x] = 7.0;') => `@group(0) @binding(0) var<uniform> u: vec4<u32>;
@group(0) @binding(1) var<storage, read_write> o: array<f32>;
@compute @workgroup_size(1) fn main(@builtin(global_invocation_id) g: vec3<u32>) { ${body} }`;

function spec(key: string, buffer: GPUBuffer, workgroups: number, body?: string): KernelSpec {
  return { key, source: () => wgsl(body), buffers: [buffer], readOnly: [false], uniforms: new Uint32Array(4), workgroups: [workgroups] };
}

before(() => T.initGpu());

/** The engine still computes right after an error was reported. */
async function stillWorks(): Promise<void> {
  const x = T.Tensor.from([1, 2, 3]);
  const y = T.add(x, x);
  assert.deepEqual(Array.from((await y.data()) as Float32Array), [2, 4, 6]);
  x.dispose();
  y.dispose();
}

test('a dispatch past the workgroup limit: the readback throws naming the kernel, its workgroups and buffers, and WebGPU\'s message (not stale data)', async () => {
  const a = T.Tensor.from([1, 2, 3, 4]);
  dispatch(spec('test_too_many_groups', a.buffer, 70_000));
  await assert.rejects(a.data(), (e: Error) => {
    assert.match(e.message, /GPU error in a batch with kernel\(s\) "test_too_many_groups"/);
    assert.match(e.message, /workgroups 70000x1x1, buffers 16 B/);
    assert.match(e.message, /exceeds max compute workgroups per dimension \(65535\)/);
    return true;
  });
  // Reported once: the next readback is clean.
  assert.deepEqual(Array.from((await a.data()) as Float32Array), [1, 2, 3, 4]);
  a.dispose();
  await stillWorks();
});

test('a destroyed buffer in a submit: sync() throws naming the kernel and the destroyed buffer', async () => {
  const b = gpu().device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE, label: 'doomed' });
  b.destroy();
  dispatch(spec('test_destroyed_input', b, 1));
  await assert.rejects(T.sync(), /kernel\(s\) "test_destroyed_input"[^]*\[Buffer "doomed"\] used in submit while destroyed/);
  await stillWorks();
});

test('WGSL that does not compile: the error names the kernel and the line; the invalid pipeline leaves the cache', async () => {
  const a = T.Tensor.from([0, 0]);
  let compiles = 0;
  const bad: KernelSpec = { ...spec('test_bad_wgsl', a.buffer, 1, 'o[g.x] = nope;'), source: () => (compiles++, wgsl('o[g.x] = nope;')) };
  const before = runtimeStats().pipelines;
  dispatch(bad);
  await assert.rejects(a.data(), (e: Error) => {
    assert.match(e.message, /kernel "test_bad_wgsl" failed to compile: [^]*unresolved value 'nope'/);
    assert.match(e.message, /\[Invalid ComputePipeline "test_bad_wgsl"\]/);
    return true;
  });
  assert.equal(runtimeStats().pipelines, before, 'the invalid pipeline is not cached');
  dispatch(bad);
  assert.equal(compiles, 2, 'the next use compiles again');
  await assert.rejects(T.sync(), /test_bad_wgsl/);
  // The same buffer with a valid kernel: the result is the kernel's, not stale.
  dispatch(spec('test_good_wgsl', a.buffer, 2));
  assert.deepEqual(Array.from((await a.data()) as Float32Array), [7, 7]);
  a.dispose();
});

test('an upload past the end of its buffer is reported at the next sync, named', async () => {
  const a = T.Tensor.from([1, 2, 3, 4]);
  upload(a.buffer, 64, new Float32Array(4));
  await assert.rejects(T.sync(), (e: Error) => {
    assert.match(e.message, /upload of 16 B at offset 64 into a buffer of 16 B/);
    assert.match(e.message, /WriteBuffer|out of range|exceeds/i);
    return true;
  });
  a.dispose();
  await stillWorks();
});

test('a tensor beyond the buffer limit is refused where it is created, naming the op, the shape and the limit', async () => {
  const max = gpu().device.limits.maxBufferSize;
  const live = poolStats().liveBuffers;
  const n = Math.floor(max / 4) + 1; // one float more than fits
  assert.throws(() => T.Tensor.empty([n]), (e: Error) => e.message.includes(`a tensor [${n}] f32 needs`) && e.message.includes(`maxBufferSize of`) && e.message.includes(`(${max} B)`));
  // An op's output: the op is named (elementwise by its name, others by the function and line).
  const side = Math.ceil(Math.sqrt(max / 4)) + 1;
  const col = T.zeros([side, 1]), row = T.zeros([1, side]);
  assert.throws(() => T.add(col, row), new RegExp(`^Error: add: a tensor \\[${side},${side}\\] f32 needs .* more than this GPU's maxBufferSize`));
  assert.throws(() => T.matmul(col, row), new RegExp(`^Error: matmul\\w* \\(src/tensor/ops/matmul\\.ts:\\d+\\): a tensor \\[${side},${side}\\] f32`));
  col.dispose();
  row.dispose();
  assert.equal(poolStats().liveBuffers, live, 'nothing allocated for the refused tensors');
  await stillWorks();
});

test('a tensor beyond one storage binding: ops that split it work, an op that does not is refused at dispatch naming the kernel and the limit', async () => {
  const limit = gpu().device.limits.maxStorageBufferBindingSize;
  const n = limit / 4 + 1000;
  const big = T.fill([n], 2); // elementwise: bound a range at a time
  const doubled = T.mul(big, 3);
  const tail = doubled.slice(0, n - 4, n);
  assert.deepEqual(Array.from(await tail.data()), [6, 6, 6, 6]);
  assert.equal(await T.sum(doubled.slice(0, 0, 8)).item(), 48);
  // Row ops split by whole rows (binding.ts rowSplit); one row wider than a binding is refused
  // before anything is dispatched, naming the op, the row's bytes and the limit.
  assert.throws(() => T.tidy(() => T.softmax(doubled.reshape([1, n]), -1)), (e: Error) =>
    e.message.startsWith(`softmax: one row (${4 * n} + ${4 * n} B across its operands)`) && e.message.includes(`beyond this GPU's maxStorageBufferBindingSize of ${limit} B`));
  for (const t of [tail, doubled, big]) t.dispose();
  await stillWorks();
});

test('an elementwise kernel\'s error names its operands\' tensor shapes, not only their byte sizes', async () => {
  const x = T.Tensor.from([1, 2, 3, 4, 5, 6], [2, 3]);
  const y = T.Tensor.from([1, 1, 1, 1, 1, 1], [2, 3]);
  await x.data();
  // A buffer destroyed under a live tensor (x is deliberately never disposed: its buffer must
  // not return to the pool). The add that reads it fails at submit.
  x.buffer.destroy();
  const z = T.add(x, y);
  await assert.rejects(T.sync(), (e: Error) => {
    assert.match(e.message, /GPU error in a batch with kernel\(s\) "ew\|x0 \+ x1\|/);
    // Byte sizes are the pool's size class; the shapes are the tensors'.
    assert.match(e.message, /buffers \d+ B \(\[2,3\] f32\), \d+ B \(\[2,3\] f32\), \d+ B \(\[2,3\] f32\)/);
    assert.match(e.message, /used in submit while destroyed/);
    return true;
  });
  y.dispose();
  z.dispose();
  await stillWorks();
});

test('an error outside any scope arrives by the uncaptured-error event and is thrown at the next sync', async () => {
  const device = gpu().device;
  // Every call runs inside the engine's open scope; close it for one bad call, then reopen it.
  await device.popErrorScope();
  device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE, label: 'unscoped' });
  device.pushErrorScope('validation');
  // The event is delivered asynchronously: give Dawn a moment, as a real run's next step would.
  await new Promise((r) => setTimeout(r, 200));
  await assert.rejects(T.sync(), /nla: GPU error outside any batch: [^]*unscoped/);
  await T.sync(); // reported once
  await stillWorks();
});

test('a destroyed device is a clear error at once, not a hang: readback, sync and new work', async () => {
  const a = T.Tensor.from([1, 2]);
  const pending = T.add(a, a);
  gpu().device.destroy();
  const lost = /the GPU device was lost \(destroyed/;
  const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('hung')), 10_000));
  await assert.rejects(Promise.race([pending.data(), timeout]), lost);
  await assert.rejects(Promise.race([T.sync(), timeout]), lost);
  assert.throws(() => T.add(a, a), lost);
  assert.throws(() => T.Tensor.from([3]), lost);
});

// On llvmpipe the device is created without Dawn's robustness (src/tensor/device.ts) because
// the driver bounds-checks every storage access itself. This holds the driver to that: if a
// Mesa update ever stopped checking, an out-of-bounds access would read a neighbour's data or
// corrupt it, and this test fails instead of a model going silently wrong.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../src/tensor/index.js';
import { adapterName, gpu } from '../src/tensor/device.js';
import { dispatch, readback, upload } from '../src/tensor/runtime.js';
import { storage, uniformBlock } from '../src/kernels/uniforms.js';

test('without Dawn robustness (llvmpipe) out-of-bounds loads read 0 and stores are dropped', async (t) => {
  await T.initGpu();
  const g = gpu();
  if (g.robust) {
    // On llvmpipe robustness is on only when asked for; if the faster device could not be made,
    // fail rather than skip, or this check would quietly stop running on the CI machine.
    const llvmpipe = /llvmpipe|lavapipe/i.test(adapterName(g.info));
    assert.ok(!llvmpipe || process.env.NLA_ROBUST === '1', `llvmpipe without NLA_ROBUST=1 should run without Dawn robustness (${adapterName(g.info)})`);
    t.skip(`Dawn robustness is on for ${adapterName(g.info)} (${llvmpipe ? 'NLA_ROBUST=1' : 'not llvmpipe'}): its bounds clamps, not the driver's checks, decide what out-of-bounds accesses do`);
    return;
  }
  const dev = g.device;
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  // Small exact-size buffers surrounded by neighbours full of a marker value.
  const mk = (n: number, v: number) => {
    const b = dev.createBuffer({ size: 4 * n, usage });
    upload(b, 0, new Float32Array(n).fill(v));
    return b;
  };
  const before = mk(64, 7), a = mk(4, 1), between = mk(64, 7), out = mk(8, -1), after = mk(64, 7);
  // Reads a[i] for i = 4 (just past the end), 5, 63, 10^6 and 5*10^8; writes out[8..] and far.
  const source = () =>
    uniformBlock(4) + storage(1, 'a', 'f32', false) + storage(2, 'o', 'f32', true) +
    `@compute @workgroup_size(1) fn main() {
  o[0] = a[3u + u(0u)]; o[1] = a[4u + u(0u)]; o[2] = a[5u + u(0u)]; o[3] = a[63u + u(0u)];
  o[4] = a[1000000u + u(0u)]; o[5] = a[500000000u + u(0u)];
  o[8u + u(0u)] = 9.0; o[40u + u(0u)] = 9.0; o[600000000u + u(0u)] = 9.0;
}
`;
  dispatch({ key: 'test_oob_probe', source, buffers: [a, out], uniforms: new Uint32Array(4), workgroups: [1] });
  const got = new Float32Array(await readback(out, 0, 32));
  assert.deepEqual([...got], [1, 0, 0, 0, 0, 0, -1, -1], 'in-bounds read, then out-of-bounds reads must be 0');
  for (const [name, b] of [['before', before], ['between', between], ['after', after]] as const) {
    const v = new Float32Array(await readback(b, 0, 256));
    assert.ok(v.every((x) => x === 7), `neighbour buffer "${name}" changed by an out-of-bounds store`);
  }
  for (const b of [before, a, between, out, after]) b.destroy();
});

// NLA_CHECK=1: after every dispatch, each buffer it writes is scanned for a NaN or an infinity
// (read as f32; kernels whose key names an i32 tensor are left out, as an i32 -1 reads as a NaN)
// into one flag per dispatch, on the GPU. The next sync() or readback reads the flags back once
// and throws naming the first kernel that wrote a bad value: where a NaN was born, not where it
// was noticed. Slow (a scan per dispatch), for debugging; off, it costs one boolean per dispatch.
import { nonFiniteKernel } from '../kernels/optim.js';
import { Uniforms } from '../kernels/uniforms.js';
import { boundBytes } from './binding.js';
import { acquire } from './pool.js';
import { dispatch, readback, upload, type KernelSpec } from './runtime.js';

export const CHECK_KERNELS = process.env.NLA_CHECK === '1';

const SLOTS = 4096; // flags per buffer; more buffers as a batch needs them
const flagBuffers: GPUBuffer[] = [];
let checked: { spec: KernelSpec; binding: number }[] = [];
let busy = false;

/** Queue the scan of every buffer `spec` writes (called by dispatch() after recording it). */
export function checkOutputs(spec: KernelSpec): void {
  if (busy || /\|i32(\||$)/.test(spec.key)) return;
  busy = true; // the scans are dispatches too
  try {
    const ro = spec.readOnly ?? spec.buffers.map((_, i) => i < spec.buffers.length - 1);
    spec.buffers.forEach((buffer, binding) => {
      if (ro[binding]) return;
      const slot = checked.length;
      if (slot === flagBuffers.length * SLOTS) flagBuffers.push(zeroed(acquire(SLOTS * 4)));
      checked.push({ spec, binding });
      const n = Math.floor(boundBytes(buffer) / 4), groups = Math.min(64, Math.max(1, Math.ceil(n / 16384)));
      const u = new Uniforms(4).set(0, n).set(1, 0).set(2, slot % SLOTS).set(3, groups);
      dispatch({ ...nonFiniteKernel(), buffers: [buffer, flagBuffers[Math.floor(slot / SLOTS)]], uniforms: u.u32, workgroups: [groups] });
    });
  } finally {
    busy = false;
  }
}

/** Read the flags of the dispatches since the last call; throw naming the first that wrote a NaN or Inf. */
export async function throwFirstBadOutput(): Promise<void> {
  if (busy || checked.length === 0) return;
  busy = true;
  const list = checked;
  checked = [];
  try {
    for (let b = 0; b * SLOTS < list.length; b++) {
      const count = Math.min(SLOTS, list.length - b * SLOTS);
      const flags = new Int32Array(await readback(flagBuffers[b], 0, count * 4));
      zeroed(flagBuffers[b]);
      const i = flags.findIndex((f) => f !== 0);
      if (i < 0) continue;
      const { spec, binding } = list[b * SLOTS + i];
      const [x, y = 1, z = 1] = spec.workgroups;
      throw new Error(
        `NLA_CHECK: kernel "${spec.key}"${spec.note ? ` (${spec.note()})` : ''} wrote a NaN or an infinity into binding ${binding + 1} ` +
          `(a binding of ${boundBytes(spec.buffers[binding])} B; workgroups ${x}x${y}x${z}): the first of ${list.length} checked outputs since the last sync to hold one`,
      );
    }
  } finally {
    busy = false;
  }
}

function zeroed(buf: GPUBuffer): GPUBuffer {
  upload(buf, 0, new Int32Array(SLOTS));
  return buf;
}

// Reads a training checkpoint as a resume does, without a GPU: the header and every CRC-32
// (loadCheckpoint), then each tensor once; prints the times as JSON. Run under /usr/bin/time -v
// for the peak RSS:  node --import tsx scripts/checkpoint-read.ts FILE
import { loadCheckpoint } from '../src/nn/checkpoint.js';
const f = process.argv[2];
if (!f) throw new Error("usage: node --import tsx scripts/checkpoint-read.ts CHECKPOINT_FILE");
const t0 = performance.now();
const ck = loadCheckpoint(f);
const t1 = performance.now();
let n = 0, bytes = 0;
const todo: unknown[] = [ck];
while (todo.length) {
  const x = todo.pop() as Record<string, unknown>;
  if (x && typeof x === 'object' && !ArrayBuffer.isView(x)) {
    if ('data' in x && 'shape' in x) { const d = x.data as Float32Array; n++; bytes += d.byteLength; continue; }
    todo.push(...Object.values(x));
  }
}
const t2 = performance.now();
console.log(JSON.stringify({ file: f, format: ck.format, step: ck.step, open_and_verify_s: (t1 - t0) / 1000, read_all_tensors_s: (t2 - t1) / 1000, tensors: n, bytes }));

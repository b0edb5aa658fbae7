// NLA_CHECK=1 (src/tensor/nan-check.ts) scans every kernel's output and names the first one that
// wrote a NaN or an infinity. Read once at start-up, so each case runs in a child process: two
// clean training steps of a tiny Llama raise nothing (no false alarm from the engine's own
// kernels), then log of a negative number is named as the kernel where the NaN was born, not
// the later multiply where it was read; without NLA_CHECK the same NaN comes back silently.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const src = (f: string) => JSON.stringify(path.join(root, 'src', f));

const script = `
import * as T from ${src('tensor/index.ts')};
import { initLlama, llamaConfig } from ${src('nn/init.ts')};
import { lmLoss } from ${src('nn/train.ts')};
await T.initGpu();
const M = await initLlama(llamaConfig({ dim: 32, nLayers: 2, nHeads: 4, hiddenDim: 48, vocabSize: 64, maxSeqLen: 32 }), 1);
M.w.setTrainable(true);
const opt = new T.AdamW(M.w.params(), { lr: 1e-3, maxGradNorm: 1 });
const ids = Int32Array.from({ length: 64 }, (_, i) => (i * 13) % 64);
for (let s = 0; s < 2; s++) {
  const l = T.tidy(() => { const l = lmLoss(M, { inputs: ids, targets: ids, B: 4, T: 16, count: 64 }); l.backward(); return l.detach(); });
  opt.step(); opt.zeroGrad();
  console.log('loss ' + (await l.item()).toFixed(3));
}
const y = T.exp(T.Tensor.from([2, -4, 6]));
const z = T.log(T.add(y, -3));
try { console.log('data ' + Array.from(await T.mul(z, 2).data()).join(',')); } catch (e) { console.log('threw ' + e.message); }
process.exit(0);
`;

function run(env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, env: { ...process.env, ...env }, timeout: 120_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
    );
  });
}

test('NLA_CHECK=1: clean training steps pass; the kernel that made the NaN is named', async () => {
  const lines = (await run({ NLA_CHECK: '1' })).trim().split('\n');
  assert.equal(lines.length, 3, lines.join('\n'));
  assert.match(lines[0], /^loss \d+\.\d{3}$/);
  assert.match(lines[1], /^loss \d+\.\d{3}$/);
  assert.match(lines[2], /^threw NLA_CHECK: kernel "ew\|log\(x0\)\|[^"]*" wrote a NaN or an infinity into binding 2 \(a buffer of 16 B/);
});

test('without NLA_CHECK the NaN is returned unnoticed (what the check is for)', async () => {
  const lines = (await run({ NLA_CHECK: '' })).trim().split('\n');
  assert.match(lines[2], /^data [\d.]+,NaN,[\d.]+$/);
});

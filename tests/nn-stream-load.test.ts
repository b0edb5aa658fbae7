// Loading streams a Hugging Face checkpoint to the GPU a chunk at a time (src/nn/stream-load.ts):
// the parameters equal what the whole-file reader decodes, bit for bit, whatever the chunk size;
// a bf16 checkpoint loads as f32 (default), or keeps 16-bit matrices (f16, and bf16 once the
// engine has it) with norms and biases in f32, and its logits stay close to the f32 load's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeHfConfig } from '../src/io/config.js';
import { readSafetensorsDir, writeSafetensors, type TensorToSave } from '../src/io/safetensors.js';
import { listSafetensorsDir } from '../src/io/safetensors-stream.js';
import { initLlamaHost, llamaConfig } from '../src/nn/init.js';
import { build, loadModel, type AnyModel } from '../src/nn/load.js';
import { gpuHasDType, uploadSpans } from '../src/nn/stream-load.js';
import * as T from '../src/tensor/index.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-stream-load-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

// Qwen2-like: q/k/v biases, grouped KV heads, tied embeddings; odd sizes so chunks split rows.
const cfg = llamaConfig({ dim: 48, nLayers: 2, nHeads: 6, nKvHeads: 2, hiddenDim: 88, vocabSize: 97, qkvBias: true, modelType: 'qwen2', ropeTheta: 1e6, normEps: 1e-6 });

function writeModel(name: string, dtype: 'f32' | 'bf16', withLmHead = false): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir, { recursive: true });
  const host = initLlamaHost(cfg, 5);
  // Non-trivial norm gains and biases, so keeping them f32 is visible in the logits.
  for (const [k, t] of host) if (t.shape.length === 1) (t.data as Float32Array).forEach((_, i, a) => (a[i] = 1 + 0.1 * Math.sin(i + k.length)));
  const tensors: Record<string, TensorToSave> = {};
  for (const [k, t] of host) tensors[k] = { ...t, saveAs: dtype };
  if (withLmHead) tensors['lm_head.weight'] = { ...host.get('model.embed_tokens.weight')!, saveAs: dtype };
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
  writeHfConfig(path.join(dir, 'config.json'), cfg);
  return dir;
}

async function logits(m: AnyModel): Promise<Float32Array> {
  const ids = T.Tensor.from(new Int32Array([3, 14, 15, 92, 65, 35, 89, 79]), [2, 4]);
  const out = T.noGrad(() => m.forward(ids).logits!);
  const d = (await out.data()) as Float32Array;
  out.dispose();
  ids.dispose();
  return d;
}

function maxRel(a: Float32Array, b: Float32Array): number {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) (num = Math.max(num, Math.abs(a[i]! - b[i]!))), (den = Math.max(den, Math.abs(b[i]!)));
  return num / den;
}

test('chunked uploads equal the whole-file decode bit for bit, for chunk sizes that split rows', async () => {
  await T.initGpu();
  const dir = writeModel('bf16', 'bf16');
  const whole = readSafetensorsDir(dir);
  for (const chunkElements of [2, 46, 1 << 22]) {
    const up = await uploadSpans(listSafetensorsDir(dir), { chunkElements });
    assert.deepEqual([...up.keys()].sort(), [...whole.keys()].sort());
    for (const [k, t] of up) {
      assert.equal(t.dtype, 'f32');
      assert.ok(t.requiresGrad, `${k} is a trainable parameter`);
      assert.deepEqual(await t.data(), whole.get(k)!.data, `${k} with chunks of ${chunkElements}`);
      t.dispose();
    }
  }
  await assert.rejects(uploadSpans([], { chunkElements: 3 }), /chunkElements must be a positive even integer, got 3/);
});

test('loadModel streams: same logits as the whole-file path; tied lm_head never uploaded', async () => {
  const dir = writeModel('bf16-head', 'bf16', true);
  const streamed = await loadModel(dir);
  assert.equal(streamed.model.w.has('lm_head.weight'), false);
  const host = readSafetensorsDir(dir);
  const ref = build(cfg, host, dir);
  assert.deepEqual(await logits(streamed.model), await logits(ref));
  streamed.model.w.dispose();
  ref.w.dispose();
});

test('16-bit matrices on the GPU: norms and biases stay f32, logits close to the f32 load', async () => {
  const dir = writeModel('bf16-half', 'bf16');
  const f32 = await loadModel(dir);
  const want = await logits(f32.model);
  const f16 = await loadModel(dir, { dtype: 'f16' });
  for (const [k, t] of f16.model.w.map) assert.equal(t.dtype, t.rank >= 2 ? 'f16' : 'f32', k);
  const got = await logits(f16.model);
  // bf16 values inside f16's normal range convert exactly; the rest differ by < 2^-25 absolute.
  const rel = maxRel(got, want);
  assert.ok(rel < 1e-3, `f16 weights: max relative logit error ${rel}`);
  f16.model.w.dispose();
  if (gpuHasDType('bf16')) {
    const bf = await loadModel(dir, { dtype: 'bf16' });
    for (const [k, t] of bf.model.w.map) assert.equal(t.dtype, t.rank >= 2 ? 'bf16' : 'f32', k);
    // The file's bf16 values as they are: the same model the f32 load holds.
    const r = maxRel(await logits(bf.model), want);
    assert.ok(r < 1e-4, `bf16 weights: max relative logit error ${r}`);
    const auto = await loadModel(dir, { dtype: 'auto' });
    assert.equal(auto.model.w.get('model.embed_tokens.weight').dtype, 'bf16');
    bf.model.w.dispose();
    auto.model.w.dispose();
  } else {
    await assert.rejects(loadModel(dir, { dtype: 'bf16' }), /model\.safetensors: cannot keep ".*" as bf16 on the GPU: this engine has no bf16 storage/);
    const auto = await loadModel(dir, { dtype: 'auto' });
    assert.equal(auto.model.w.get('model.embed_tokens.weight').dtype, 'f32');
    auto.model.w.dispose();
  }
  f32.model.w.dispose();
});

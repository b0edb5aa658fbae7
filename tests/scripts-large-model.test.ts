// scripts/large-model.ts writes seeded real-size-shaped checkpoints for issue 13's checks. On a
// tiny config: the file is what nla loads (names, shapes, bf16 kept as bf16 with --weights-dtype
// auto), the same seed gives the same bytes and another seed others, matrices have the std asked
// for, and the byte-level tokenizer maps text to its UTF-8 bytes after BOS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readSafetensors } from '../src/io/safetensors.js';
import { llamaConfig } from '../src/nn/init.js';
import { loadModel, loadTokenizerFor } from '../src/nn/load.js';
import { writeSyntheticModel, shapeConfig } from '../scripts/large-model.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-large-model-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

const cfg = llamaConfig({ modelType: 'qwen2', dim: 64, nLayers: 2, nHeads: 4, nKvHeads: 2, hiddenDim: 96, vocabSize: 300, qkvBias: true, ropeTheta: 1e6, normEps: 1e-6, bosId: 299, eosId: 299 });
const sha = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');

test('the 0.5B shape is Qwen2.5-0.5B\'s: 494,032,768 parameters', () => {
  const c = shapeConfig('qwen2.5-0.5b');
  const hd = c.dim / c.nHeads, kv = c.nKvHeads * hd;
  const block = 2 * c.dim + c.dim * c.dim + c.dim + 2 * (kv * c.dim + kv) + c.dim * c.dim + 3 * c.hiddenDim * c.dim;
  assert.equal(c.vocabSize * c.dim + c.dim + c.nLayers * block, 494_032_768);
  assert.throws(() => shapeConfig('qwen9'), /unknown shape "qwen9" \(known: qwen2\.5-0\.5b/);
});

test('seeded bf16 checkpoint: loads as bf16, same seed same bytes, std as asked, byte tokenizer', async () => {
  const a = writeSyntheticModel(path.join(tmp, 'a'), cfg, { seed: 1, std: 0.02 });
  writeSyntheticModel(path.join(tmp, 'b'), cfg, { seed: 1, std: 0.02 });
  writeSyntheticModel(path.join(tmp, 'c'), cfg, { seed: 2, std: 0.02 });
  assert.equal(sha(a.file), sha(path.join(tmp, 'b', 'model.safetensors')));
  assert.notEqual(sha(a.file), sha(path.join(tmp, 'c', 'model.safetensors')));
  const host = readSafetensors(a.file);
  const up = host.get('model.layers.0.mlp.up_proj.weight')!;
  assert.equal(up.dtype, 'bf16');
  const d = up.data as Float32Array;
  const mean = d.reduce((s, v) => s + v, 0) / d.length, sd = Math.sqrt(d.reduce((s, v) => s + (v - mean) ** 2, 0) / d.length);
  assert.ok(Math.abs(mean) < 0.002 && Math.abs(sd - 0.02) < 0.001, `up_proj mean ${mean} std ${sd}`);
  const down = host.get('model.layers.1.mlp.down_proj.weight')!.data as Float32Array;
  const sdDown = Math.sqrt(down.reduce((s, v) => s + v * v, 0) / down.length);
  assert.ok(Math.abs(sdDown - 0.02 / 2) < 0.001, `down_proj std ${sdDown} (0.02 / sqrt(2 * 2 blocks))`);
  const { model } = await loadModel(path.join(tmp, 'a'), { dtype: 'auto' });
  assert.equal(model.w.get('model.embed_tokens.weight').dtype, 'bf16');
  assert.equal(model.w.get('model.norm.weight').dtype, 'f32');
  assert.equal(model.w.params().reduce((s, p) => s + p.size, 0), a.params);
  model.w.dispose();
  const tok = loadTokenizerFor(path.join(tmp, 'a'));
  // One token per UTF-8 byte, id = the byte (GPT-2's byte alphabet in byte order), after BOS.
  assert.deepEqual(tok.encode('hé!', { bos: true }), [299, 0x68, 0xc3, 0xa9, 0x21]);
});

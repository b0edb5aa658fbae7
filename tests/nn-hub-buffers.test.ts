// Hub checkpoints as published: GPT-2's model.safetensors keeps the causal-mask buffers
// `h.N.attn.bias` (f32, or bool in later exports) and sometimes `h.N.attn.masked_bias`; older
// Llama-family files keep `rotary_emb.inv_freq`. The files here are written byte by byte from
// the safetensors spec (not by nla's writer, which cannot write bool), in the Hub's layout
// (GPT-2 names without the "transformer." prefix). Known buffers of the right shape load and
// change nothing; a wrong shape, a buffer of a block the config lacks, or any other unknown
// tensor is refused naming the tensor.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeHfConfig, type ModelConfig } from '../src/io/config.js';
import type { HostTensor } from '../src/io/host-tensor.js';
import { gpt2Config, initGpt2Host, initLlamaHost, llamaConfig } from '../src/nn/init.js';
import { build, loadModel, type AnyModel } from '../src/nn/load.js';
import * as T from '../src/tensor/index.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-hub-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

interface Raw {
  name: string;
  dtype: 'F32' | 'BOOL';
  shape: number[];
  bytes: Uint8Array;
}

const f32Bytes = (a: Float32Array): Uint8Array => new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
const fromHost = (name: string, t: HostTensor): Raw => ({ name, dtype: 'F32', shape: t.shape, bytes: f32Bytes(t.data as Float32Array) });

/** u64 header length | JSON header | data, tensors in the given order (safetensors spec). */
function writeRaw(file: string, tensors: Raw[]): void {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let off = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + t.bytes.length] };
    off += t.bytes.length;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const head = new Uint8Array(8);
  new DataView(head.buffer).setBigUint64(0, BigInt(json.length), true);
  fs.writeFileSync(file, Buffer.concat([head, json, ...tensors.map((t) => t.bytes)]));
}

/** Lower-triangular n x n mask, [1, 1, n, n], as GPT2Attention registers it. */
function causalMask(n: number, dtype: 'F32' | 'BOOL', name: string): Raw {
  const bytes = dtype === 'BOOL' ? new Uint8Array(n * n) : new Uint8Array(n * n * 4);
  const f = dtype === 'F32' ? new Float32Array(bytes.buffer) : undefined;
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) (f ? (f[i * n + j] = 1) : (bytes[i * n + j] = 1));
  return { name, dtype, shape: [1, 1, n, n], bytes };
}

function hfDir(name: string, cfg: ModelConfig, tensors: Raw[]): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir, { recursive: true });
  writeHfConfig(path.join(dir, 'config.json'), cfg);
  writeRaw(path.join(dir, 'model.safetensors'), tensors);
  return dir;
}

async function logits(model: AnyModel, ids: number[]): Promise<Float32Array> {
  const out = T.noGrad(() => T.tidy(() => model.forward(T.Tensor.from(Int32Array.from(ids), [1, ids.length], 'i32')).logits!));
  const d = (await out.data()) as Float32Array;
  out.dispose();
  return d;
}

const g = gpt2Config({ dim: 16, nLayers: 2, nHeads: 2, vocabSize: 23, maxSeqLen: 12 });
const gHost = initGpt2Host(g, 7);
// The Hub's GPT2LMHeadModel layout: no "transformer." prefix.
const gParams = (): Raw[] => [...gHost].map(([k, t]) => fromHost(k.replace(/^transformer\./, ''), t));
const ids = [3, 17, 4, 4, 22, 0, 9];

async function gpt2Reference(): Promise<Float32Array> {
  await T.initGpu();
  const copy = new Map([...gHost].map(([k, t]) => [k, { ...t, data: (t.data as Float32Array).slice() }]));
  const m = build(g, copy, 'reference');
  const out = await logits(m, ids);
  m.w.dispose();
  return out;
}

test('a GPT-2 checkpoint in the Hub layout (h.N.attn.bias f32 and attn.masked_bias) loads and gives the same logits', async () => {
  const want = await gpt2Reference();
  const tensors = gParams();
  for (let l = 0; l < g.nLayers; l++) {
    tensors.push(causalMask(g.maxSeqLen, 'F32', `h.${l}.attn.bias`));
    tensors.push({ name: `h.${l}.attn.masked_bias`, dtype: 'F32', shape: [], bytes: f32Bytes(Float32Array.of(-1e4)) });
  }
  const loaded = await loadModel(hfDir('gpt2-hub-f32', g, tensors));
  assert.equal([...loaded.model.w.map.keys()].filter((k) => /\.attn\.(bias|masked_bias)$/.test(k)).length, 0, 'buffers are not parameters');
  assert.equal(loaded.model.w.map.size, gHost.size);
  assert.deepEqual(await logits(loaded.model, ids), want);
  loaded.model.w.dispose();
});

test('a GPT-2 checkpoint whose causal masks are stored as bool loads too', async () => {
  const want = await gpt2Reference();
  const tensors = [...gParams(), ...[0, 1].map((l) => causalMask(g.maxSeqLen, 'BOOL', `transformer.h.${l}.attn.bias`))];
  const loaded = await loadModel(hfDir('gpt2-hub-bool', g, tensors));
  assert.deepEqual(await logits(loaded.model, ids), want);
  loaded.model.w.dispose();
});

test('sharded Hub checkpoints list the buffers in weight_map; they are skipped there too', async () => {
  const want = await gpt2Reference();
  const dir = path.join(tmp, 'gpt2-sharded');
  fs.mkdirSync(dir, { recursive: true });
  writeHfConfig(path.join(dir, 'config.json'), g);
  const params = gParams();
  const shards = [params.slice(0, 5).concat(causalMask(g.maxSeqLen, 'F32', 'h.0.attn.bias')), params.slice(5).concat(causalMask(g.maxSeqLen, 'BOOL', 'h.1.attn.bias'))];
  const weightMap: Record<string, string> = {};
  shards.forEach((s, i) => {
    const f = `model-0000${i + 1}-of-00002.safetensors`;
    writeRaw(path.join(dir, f), s);
    for (const t of s) weightMap[t.name] = f;
  });
  fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  const loaded = await loadModel(dir);
  assert.deepEqual(await logits(loaded.model, ids), want);
  loaded.model.w.dispose();
});

test('a known buffer with the wrong shape is refused naming the tensor and both shapes', async () => {
  const dir = hfDir('gpt2-bad-mask', g, [...gParams(), causalMask(g.maxSeqLen + 1, 'F32', 'h.0.attn.bias')]);
  await assert.rejects(loadModel(dir), (e: Error) => {
    assert.match(e.message, /gpt2-bad-mask/);
    assert.match(e.message, /"h\.0\.attn\.bias"/);
    assert.match(e.message, /\[1,1,13,13\], expected \[1,1,12,12\]/);
    return true;
  });
  const scalar = hfDir('gpt2-bad-masked-bias', g, [...gParams(), { name: 'h.1.attn.masked_bias', dtype: 'F32', shape: [1], bytes: f32Bytes(Float32Array.of(-1e4)) }]);
  await assert.rejects(loadModel(scalar), /"h\.1\.attn\.masked_bias".*shape \[1\], expected \[\]/);
});

test('unknown tensors are still refused: another name, or a buffer of a block the config does not have', async () => {
  const other = hfDir('gpt2-unknown', g, [...gParams(), { name: 'h.0.attn.rotary', dtype: 'F32', shape: [2], bytes: f32Bytes(Float32Array.of(1, 2)) }]);
  await assert.rejects(loadModel(other), /unexpected tensor "transformer\.h\.0\.attn\.rotary"/);
  const extra = hfDir('gpt2-extra-block', g, [...gParams(), causalMask(g.maxSeqLen, 'F32', 'h.2.attn.bias')]);
  await assert.rejects(loadModel(extra), /unexpected tensor "transformer\.h\.2\.attn\.bias"/);
});

test('Llama-family files with rotary_emb.inv_freq buffers load; a wrong-shaped one is refused', async () => {
  await T.initGpu();
  const c = { ...llamaConfig({ dim: 16, nLayers: 2, nHeads: 2, vocabSize: 19, maxSeqLen: 16 }), ropeLayout: 'half' as const };
  const host = initLlamaHost(c, 3);
  const ref = build(c, new Map([...host].map(([k, t]) => [k, { ...t, data: (t.data as Float32Array).slice() }])), 'reference');
  const want = await logits(ref, [1, 5, 9, 2]);
  ref.w.dispose();
  const invFreq = (l: number, n = 4): Raw => ({ name: `model.layers.${l}.self_attn.rotary_emb.inv_freq`, dtype: 'F32', shape: [n], bytes: f32Bytes(new Float32Array(n).fill(0.5)) });
  const params = [...host].map(([k, t]) => fromHost(k, t));
  const loaded = await loadModel(hfDir('llama-inv-freq', c, [...params, invFreq(0), invFreq(1)]));
  assert.deepEqual(await logits(loaded.model, [1, 5, 9, 2]), want);
  loaded.model.w.dispose();
  await assert.rejects(loadModel(hfDir('llama-bad-inv-freq', c, [...params, invFreq(0, 8)])), /rotary_emb\.inv_freq".*shape \[8\], expected \[4\]/);
});

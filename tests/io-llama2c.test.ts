// llama2.c checkpoints (the real stories260K.bin plus small synthetic ones) and the q/k RoPE
// row permutation between llama2.c's interleaved pairs and HF's rotate-half.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { readLlama2c, writeLlama2c } from '../src/io/llama2c.js';
import { halfToInterleaved, interleavedToHalf, permuteRopeTensor } from '../src/io/rope-permute.js';
import type { LlamaConfig } from '../src/io/config.js';
import type { HostTensor } from '../src/io/host-tensor.js';
import { rng as seeded } from '../src/util/rng.js';
import { fcRuns } from '../src/testing/runs.js';
import { modelFile, SKIP_NO_MODEL } from './helpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-l2c-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

function throwsNaming(fn: () => unknown, ...parts: string[]): void {
  assert.throws(fn, (e: Error) => {
    for (const p of parts) assert.ok(e.message.includes(p), `message ${JSON.stringify(e.message)} should include ${JSON.stringify(p)}`);
    return true;
  });
}

function assertSameWeights(a: Map<string, HostTensor>, b: Map<string, HostTensor>): void {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [k, t] of a) {
    const u = b.get(k)!;
    assert.deepEqual(u.shape, t.shape, k);
    assert.deepEqual(Buffer.from(u.data.buffer, u.data.byteOffset, u.data.byteLength), Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength), k);
  }
}

describe('stories260K.bin', () => {
  const stories = () => modelFile('stories260K.bin');

  test('header, names and shapes', { skip: SKIP_NO_MODEL }, () => {
    const { config, weights, ropeLayout } = readLlama2c(stories());
    assert.deepEqual(config, {
      arch: 'llama', dim: 64, hiddenDim: 172, nLayers: 5, nHeads: 8, nKvHeads: 4, vocabSize: 512, maxSeqLen: 512,
      normEps: 1e-5, ropeTheta: 10000, ropeLayout: 'interleaved', tieEmbeddings: true, qkvBias: false, bosId: 1, eosId: 2,
    });
    assert.equal(ropeLayout, 'interleaved');
    assert.equal(weights.size, 2 + 9 * 5);
    assert.ok(!weights.has('lm_head.weight'), 'classifier is shared');
    const shape = (k: string): number[] => weights.get(k)!.shape;
    assert.deepEqual(shape('model.embed_tokens.weight'), [512, 64]);
    assert.deepEqual(shape('model.layers.0.input_layernorm.weight'), [64]);
    assert.deepEqual(shape('model.layers.4.self_attn.q_proj.weight'), [64, 64]);
    assert.deepEqual(shape('model.layers.4.self_attn.k_proj.weight'), [32, 64]);
    assert.deepEqual(shape('model.layers.4.self_attn.v_proj.weight'), [32, 64]);
    assert.deepEqual(shape('model.layers.2.mlp.gate_proj.weight'), [172, 64]);
    assert.deepEqual(shape('model.layers.2.mlp.down_proj.weight'), [64, 172]);
    assert.deepEqual(shape('model.layers.2.mlp.up_proj.weight'), [172, 64]);
    assert.deepEqual(shape('model.norm.weight'), [64]);
  });

  test('values come from the right file offsets', { skip: SKIP_NO_MODEL }, () => {
    const { weights } = readLlama2c(stories());
    const raw = fs.readFileSync(stories());
    const f = (byte: number): number => raw.readFloatLE(byte);
    const at = (floats: number): number => 28 + 4 * floats;
    assert.equal(weights.get('model.embed_tokens.weight')!.data[0], f(at(0)));
    assert.equal(weights.get('model.embed_tokens.weight')!.data[512 * 64 - 1], f(at(512 * 64 - 1)));
    // rms_att of layer 1 starts after the embedding and layer 0's dim floats
    assert.equal(weights.get('model.layers.1.input_layernorm.weight')!.data[0], f(at(512 * 64 + 64)));
    // wk of layer 0 follows all 5 wq matrices
    const wkStart = 512 * 64 + 5 * 64 + 5 * 64 * 64;
    assert.equal(weights.get('model.layers.0.self_attn.k_proj.weight')!.data[3], f(at(wkStart + 3)));
    // rms_final is the last 64 floats before the 2 * 512 * 4 freq_cis floats
    const finalStart = (raw.length - 28) / 4 - 2 * 512 * 4 - 64;
    assert.equal(weights.get('model.norm.weight')!.data[63], f(at(finalStart + 63)));
  });

  test('write -> read round trip; bytes identical to the original except freq_cis (recomputed, within 1e-6)', { skip: SKIP_NO_MODEL }, () => {
    const ck = readLlama2c(stories());
    const out = path.join(tmp, 'copy.bin');
    writeLlama2c(out, ck.config, ck.weights);
    const back = readLlama2c(out);
    assert.deepEqual(back.config, ck.config);
    assertSameWeights(ck.weights, back.weights);
    const a = fs.readFileSync(stories());
    const b = fs.readFileSync(out);
    assert.equal(b.length, a.length);
    const freqBytes = 2 * 512 * 4 * 4;
    assert.ok(a.subarray(0, a.length - freqBytes).equals(b.subarray(0, b.length - freqBytes)));
    for (let off = a.length - freqBytes; off < a.length; off += 4) assert.ok(Math.abs(a.readFloatLE(off) - b.readFloatLE(off)) < 1e-6);
  });

  test('truncated file: error names the file and expected vs actual bytes', { skip: SKIP_NO_MODEL }, () => {
    const cut = path.join(tmp, 'stories260K-cut.bin');
    fs.writeFileSync(cut, fs.readFileSync(stories()).subarray(0, 1000));
    throwsNaming(() => readLlama2c(cut), 'stories260K-cut.bin', 'vocab_size=512', 'file has 1000 bytes', 'expected 1056540');
  });

  test('HF layout (rotate-half) weights write back to the same interleaved file', { skip: SKIP_NO_MODEL }, () => {
    const ck = readLlama2c(stories());
    const half = new Map(ck.weights);
    for (const [k, t] of half) {
      if (k.endsWith('q_proj.weight')) half.set(k, permuteRopeTensor(t, 8, 'half'));
      if (k.endsWith('k_proj.weight')) half.set(k, permuteRopeTensor(t, 4, 'half'));
    }
    assert.notDeepEqual([...half.get('model.layers.0.self_attn.q_proj.weight')!.data], [...ck.weights.get('model.layers.0.self_attn.q_proj.weight')!.data]);
    const out = path.join(tmp, 'from-half.bin');
    writeLlama2c(out, { ...ck.config, ropeLayout: 'half' }, half);
    assertSameWeights(readLlama2c(out).weights, ck.weights);
  });
});

describe('llama2.c format edge cases (synthetic)', () => {
  const cfg: LlamaConfig = {
    arch: 'llama', dim: 8, hiddenDim: 12, nLayers: 2, nHeads: 2, nKvHeads: 1, vocabSize: 10, maxSeqLen: 4,
    normEps: 1e-5, ropeTheta: 10000, ropeLayout: 'interleaved', tieEmbeddings: false, qkvBias: false, bosId: 1, eosId: 2,
  };
  const rng = seeded(7);
  const rand = (shape: number[]): HostTensor => ({ dtype: 'f32', shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng() - 0.5) });
  const weights = new Map<string, HostTensor>([['model.embed_tokens.weight', rand([10, 8])], ['model.norm.weight', rand([8])], ['lm_head.weight', rand([10, 8])]]);
  for (let i = 0; i < 2; i++) {
    const p = `model.layers.${i}.`;
    weights.set(p + 'input_layernorm.weight', rand([8])).set(p + 'post_attention_layernorm.weight', rand([8]));
    weights.set(p + 'self_attn.q_proj.weight', rand([8, 8])).set(p + 'self_attn.k_proj.weight', rand([4, 8]));
    weights.set(p + 'self_attn.v_proj.weight', rand([4, 8])).set(p + 'self_attn.o_proj.weight', rand([8, 8]));
    weights.set(p + 'mlp.gate_proj.weight', rand([12, 8])).set(p + 'mlp.down_proj.weight', rand([8, 12])).set(p + 'mlp.up_proj.weight', rand([12, 8]));
  }

  test('unshared classifier: negative vocab_size and wcls after freq_cis', () => {
    const file = path.join(tmp, 'unshared.bin');
    writeLlama2c(file, cfg, weights);
    const raw = fs.readFileSync(file);
    assert.equal(raw.readInt32LE(20), -10);
    const floats = 80 + 2 * (8 + 64 + 32 + 32 + 64 + 8 + 96 + 96 + 96) + 8 + 4 * 4 + 80;
    assert.equal(raw.length, 28 + 4 * floats);
    assert.equal(raw.readFloatLE(raw.length - 4), weights.get('lm_head.weight')!.data[79]);
    const back = readLlama2c(file);
    assert.equal(back.config.tieEmbeddings, false);
    assert.equal(back.config.vocabSize, 10);
    assertSameWeights(back.weights, weights);
  });

  test('absurd or inconsistent headers name the field', () => {
    const file = path.join(tmp, 'unshared.bin');
    writeLlama2c(file, cfg, weights);
    const raw = fs.readFileSync(file);
    const variant = (name: string, index: number, value: number): string => {
      const b = Buffer.from(raw);
      b.writeInt32LE(value, index * 4);
      const p = path.join(tmp, name);
      fs.writeFileSync(p, b);
      return p;
    };
    throwsNaming(() => readLlama2c(variant('dim.bin', 0, 1 << 30)), 'dim.bin', 'dim=1073741824');
    throwsNaming(() => readLlama2c(variant('layers.bin', 2, -3)), 'layers.bin', 'n_layers=-3');
    throwsNaming(() => readLlama2c(variant('heads.bin', 3, 3)), 'heads.bin', 'n_heads=3');
    throwsNaming(() => readLlama2c(variant('kv.bin', 4, 3)), 'kv.bin', 'n_kv_heads=3');
    throwsNaming(() => readLlama2c(variant('seq.bin', 6, 5)), 'seq.bin', 'expected');
    throwsNaming(() => readLlama2c(variant('magic.bin', 0, 0x616b3432)), 'magic.bin', 'ak42');
    const short = path.join(tmp, 'short.bin');
    fs.writeFileSync(short, raw.subarray(0, 10));
    throwsNaming(() => readLlama2c(short), 'short.bin', 'too short');
  });

  test('writer checks names and shapes', () => {
    const missing = new Map(weights);
    missing.delete('model.layers.1.mlp.up_proj.weight');
    throwsNaming(() => writeLlama2c(path.join(tmp, 'x.bin'), cfg, missing), 'model.layers.1.mlp.up_proj.weight');
    const wrong = new Map(weights).set('model.norm.weight', rand([9]));
    throwsNaming(() => writeLlama2c(path.join(tmp, 'x.bin'), cfg, wrong), 'model.norm.weight', '[9]');
    assert.ok(!fs.existsSync(path.join(tmp, 'x.bin')));
  });
});

describe('RoPE q/k row permutation', () => {
  test('worked example: head_dim 4 and 6, one column', () => {
    // interleaved pairs (r0,r1),(r2,r3) -> rotate-half halves [r0,r2 | r1,r3]
    assert.deepEqual([...interleavedToHalf(Float32Array.from([0, 1, 2, 3]), 1, 4, 1)], [0, 2, 1, 3]);
    assert.deepEqual([...interleavedToHalf(Float32Array.from([0, 1, 2, 3, 4, 5]), 1, 6, 1)], [0, 2, 4, 1, 3, 5]);
    // two heads of dim 4, two columns: rows move as units, heads independently
    const w = Float32Array.from([0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 5.5, 6, 6.5, 7, 7.5]);
    assert.deepEqual([...interleavedToHalf(w, 2, 8, 2)], [0, 0.5, 2, 2.5, 1, 1.5, 3, 3.5, 4, 4.5, 6, 6.5, 5, 5.5, 7, 7.5]);
    assert.deepEqual([...halfToInterleaved(Float32Array.from([0, 2, 4, 1, 3, 5]), 1, 6, 1)], [0, 1, 2, 3, 4, 5]);
  });

  test('inverse(forward(x)) == x and forward matches the torch view/transpose formula', () => {
    const arb = fc.record({ heads: fc.integer({ min: 1, max: 4 }), half: fc.integer({ min: 1, max: 4 }), cols: fc.integer({ min: 1, max: 3 }) });
    fc.assert(
      fc.property(arb, ({ heads, half, cols }) => {
        const rows = heads * half * 2;
        const x = Float32Array.from({ length: rows * cols }, (_, i) => i);
        const f = interleavedToHalf(x, heads, rows, cols);
        assert.deepEqual([...halfToInterleaved(f, heads, rows, cols)], [...x]);
        // w.view(heads, half, 2, cols).transpose(1, 2): out[h][j][i][c] = w[h][i][j][c]
        for (let h = 0; h < heads; h++) for (let j = 0; j < 2; j++) for (let i = 0; i < half; i++) for (let c = 0; c < cols; c++) {
          assert.equal(f[((h * 2 + j) * half + i) * cols + c], x[((h * half + i) * 2 + j) * cols + c]);
        }
      }),
      { seed: 11, numRuns: fcRuns(100) },
    );
  });

  test('interleaved RoPE on W x equals rotate-half RoPE on permuted(W) x, up to the same row permutation', () => {
    const heads = 2, hd = 8, dim = 5, pos = 3, theta = 10000;
    const rng = seeded(3);
    const W = Float32Array.from({ length: heads * hd * dim }, () => rng() - 0.5);
    const x = Float32Array.from({ length: dim }, () => rng() - 0.5);
    const matvec = (m: Float32Array): number[] => Array.from({ length: heads * hd }, (_, r) => x.reduce((s, xv, c) => s + m[r * dim + c]! * xv, 0));
    const freq = (i: number): number => pos * theta ** ((-2 * i) / hd);
    const q = matvec(W);
    const ropeInterleaved = q.slice();
    const qh = matvec(interleavedToHalf(W, heads, heads * hd, dim));
    const ropeHalf = qh.slice();
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < hd / 2; i++) {
        const [c, s] = [Math.cos(freq(i)), Math.sin(freq(i))];
        const a = h * hd + 2 * i, b = a + 1; // llama2.c: pairs (2i, 2i+1)
        ropeInterleaved[a] = q[a]! * c - q[b]! * s;
        ropeInterleaved[b] = q[a]! * s + q[b]! * c;
        const a2 = h * hd + i, b2 = a2 + hd / 2; // HF rotate_half: pairs (i, i + hd/2)
        ropeHalf[a2] = qh[a2]! * c - qh[b2]! * s;
        ropeHalf[b2] = qh[a2]! * s + qh[b2]! * c;
      }
    }
    const permuted = interleavedToHalf(Float32Array.from(ropeInterleaved), heads, heads * hd, 1);
    permuted.forEach((v, i) => assert.ok(Math.abs(v - ropeHalf[i]!) < 1e-5, `row ${i}`));
  });

  test('permuteRopeTensor handles a 1-D bias and keeps dtype', () => {
    const t: HostTensor = { dtype: 'bf16', shape: [4], data: Float32Array.from([0, 1, 2, 3]) };
    const h = permuteRopeTensor(t, 1, 'half');
    assert.deepEqual(h, { dtype: 'bf16', shape: [4], data: Float32Array.from([0, 2, 1, 3]) });
    assert.deepEqual(permuteRopeTensor(h, 1, 'interleaved').data, t.data);
  });
});

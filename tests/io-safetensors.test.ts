// safetensors reader/writer and HF config.json: exact round trips in every dtype, files built
// by hand from the spec (independent of our writer), and every kind of corruption failing with
// a message that names the file.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  parseSafetensors, readSafetensors, readSafetensorsDir, readSafetensorsWithMetadata, writeSafetensors,
  type TensorToSave,
} from '../src/io/safetensors.js';
import { hfConfigJson, parseHfConfig, readHfConfig, writeHfConfig, type LlamaConfig } from '../src/io/config.js';
import { FormatError } from '../src/io/errors.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-st-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
const f32 = (xs: number[]): Float32Array => Float32Array.from(xs);

/** Build a safetensors file by hand: u64 header length, JSON, data. */
function handmade(header: unknown, data: Uint8Array, headerText?: string): Uint8Array {
  const json = new TextEncoder().encode(headerText ?? JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function throwsNaming(fn: () => unknown, ...parts: string[]): void {
  assert.throws(fn, (e: Error) => {
    for (const p of parts) assert.ok(e.message.includes(p), `message ${JSON.stringify(e.message)} should include ${JSON.stringify(p)}`);
    return true;
  });
}

describe('safetensors round trips', () => {
  test('f32 and i32 are stored bit-exactly', () => {
    const file = path.join(tmp, 'a.safetensors');
    const x = f32([0, -0, 1.5, -3.25, 3.4028234663852886e38, 1e-45, Infinity, -Infinity, NaN, 0.1]);
    const ids = Int32Array.from([0, -1, 2147483647, -2147483648, 42, 7]);
    writeSafetensors(file, {
      x: { dtype: 'f32', shape: [2, 5], data: x },
      ids: { dtype: 'i32', shape: [3, 2], data: ids },
      scalar: { dtype: 'f32', shape: [], data: f32([7]) },
      empty: { dtype: 'f32', shape: [0, 3], data: new Float32Array(0) },
    });
    const m = readSafetensors(file);
    assert.deepEqual([...m.keys()].sort(), ['empty', 'ids', 'scalar', 'x']);
    const rx = m.get('x')!;
    assert.equal(rx.dtype, 'f32');
    assert.deepEqual(rx.shape, [2, 5]);
    assert.deepEqual(new Uint32Array(rx.data.buffer, rx.data.byteOffset, 10), new Uint32Array(x.buffer));
    assert.ok(rx.data instanceof Float32Array);
    const ri = m.get('ids')!;
    assert.ok(ri.data instanceof Int32Array);
    assert.deepEqual([...ri.data], [...ids]);
    assert.deepEqual(m.get('scalar')!.shape, []);
    assert.deepEqual([...m.get('scalar')!.data], [7]);
    assert.deepEqual(m.get('empty')!.shape, [0, 3]);
  });

  test('f16: values decode to the exact nearest half', () => {
    const file = path.join(tmp, 'h.safetensors');
    const x = f32([1, 0.1, -2.5, 1 / 3, 65504, 70000, 1e-8, 6e-8, -0, 2049]);
    writeSafetensors(file, { x: { dtype: 'f32', shape: [10], data: x, saveAs: 'f16' } });
    const t = readSafetensors(file).get('x')!;
    assert.equal(t.dtype, 'f16');
    // 0.1 -> 0x2E66; 1/3 -> 0x3555; 70000 overflows; 1e-8 underflows; 6e-8 -> smallest subnormal 2^-24;
    // 2049 is a tie between 2048 and 2050 -> even mantissa 2048.
    assert.deepEqual([...t.data], [1, 0.0999755859375, -2.5, 0.333251953125, 65504, Infinity, 0, 2 ** -24, -0, 2048]);
    assert.ok(Object.is(t.data[8], -0));
    // re-saving keeps f16 (dtype remembered), byte-identical
    writeSafetensors(path.join(tmp, 'h2.safetensors'), { x: t });
    assert.deepEqual(fs.readFileSync(path.join(tmp, 'h2.safetensors')), fs.readFileSync(file));
  });

  test('bf16: round-to-nearest-even on the dropped 16 bits', () => {
    const file = path.join(tmp, 'b.safetensors');
    const x = f32([1, 0.1, -2.5, 3.14159, 1 / 3, 1 + 2 ** -8, 1 + 3 * 2 ** -8, -Infinity, NaN]);
    writeSafetensors(file, { x: { dtype: 'f32', shape: [9], data: x, saveAs: 'bf16' } });
    const t = readSafetensors(file).get('x')!;
    assert.equal(t.dtype, 'bf16');
    // 0.1 = 0x3DCCCCCD -> 0x3DCD; pi-ish 0x40490FD0 -> 0x4049; 1/3 0x3EAAAAAB -> 0x3EAB;
    // 1+2^-8 is a tie -> even 1.0; 1+3*2^-8 is a tie -> even 1+2^-6.
    assert.deepEqual([...t.data.subarray(0, 8)], [1, 0.10009765625, -2.5, 3.140625, 0.333984375, 1, 1.015625, -Infinity]);
    assert.ok(Number.isNaN(t.data[8]));
    const raw = fs.readFileSync(file);
    const n = Number(raw.readBigUInt64LE(0));
    assert.equal(raw.readUInt16LE(8 + n + 2), 0x3dcd);
  });

  test('metadata round trip; "format": "pt" added for transformers', () => {
    const file = path.join(tmp, 'm.safetensors');
    writeSafetensors(file, { w: { dtype: 'f32', shape: [1], data: f32([2]) } }, { step: '100' });
    const { metadata } = readSafetensorsWithMetadata(file);
    assert.deepEqual(metadata, { format: 'pt', step: '100' });
  });

  test('header is space-padded to 8 bytes and tensors are aligned to their element size', () => {
    const file = path.join(tmp, 'p.safetensors');
    const tensors: Record<string, TensorToSave> = {
      a_half: { dtype: 'f32', shape: [3], data: f32([1, 2, 3]), saveAs: 'f16' },
      b: { dtype: 'f32', shape: [1], data: f32([4]) },
      zz: { dtype: 'i32', shape: [1], data: Int32Array.from([5]) },
    };
    writeSafetensors(file, tensors);
    const raw = fs.readFileSync(file);
    const n = Number(raw.readBigUInt64LE(0));
    assert.equal((8 + n) % 8, 0);
    const text = raw.subarray(8, 8 + n).toString('utf8');
    assert.match(text, /^\{.*\} *$/);
    const h = JSON.parse(text) as Record<string, { dtype: string; data_offsets: number[] }>;
    // 4-byte tensors first (by name), then 2-byte ones
    assert.deepEqual(h.b!.data_offsets, [0, 4]);
    assert.deepEqual(h.zz!.data_offsets, [4, 8]);
    assert.deepEqual(h.a_half!.data_offsets, [8, 14]);
    assert.equal(h.a_half!.dtype, 'F16');
  });

  test('parses a hand-built file, including from an unaligned pooled Buffer', () => {
    const data = new Uint8Array(12);
    new DataView(data.buffer).setFloat32(0, 1.25, true);
    new DataView(data.buffer).setUint16(4, 0x3c00, true); // f16 1.0
    new DataView(data.buffer).setUint16(6, 0xc000, true); // f16 -2.0
    new DataView(data.buffer).setUint16(8, 0x4049, true); // bf16 3.140625
    new DataView(data.buffer).setUint16(10, 0xbf80, true); // bf16 -1
    const bytes = handmade(
      {
        b: { dtype: 'BF16', shape: [2], data_offsets: [8, 12] },
        a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
        h: { dtype: 'F16', shape: [2, 1], data_offsets: [4, 8] },
      },
      data,
    );
    const padded = Buffer.alloc(bytes.length + 3);
    padded.set(bytes, 3);
    const m = parseSafetensors(padded.subarray(3), 'hand.safetensors');
    assert.deepEqual([...m.get('a')!.data], [1.25]);
    assert.deepEqual([...m.get('h')!.data], [1, -2]);
    assert.deepEqual(m.get('h')!.shape, [2, 1]);
    assert.deepEqual([...m.get('b')!.data], [3.140625, -1]);
  });
});

describe('safetensors corruption gives errors naming the file', () => {
  const good = (): Uint8Array => handmade({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, new Uint8Array(8));
  const write = (name: string, bytes: Uint8Array): string => {
    const p = path.join(tmp, name);
    fs.writeFileSync(p, bytes);
    return p;
  };

  test('sanity: the good file parses', () => {
    assert.equal(readSafetensors(write('good.safetensors', good())).get('w')!.data.length, 2);
  });
  test('absurd header length', () => {
    const b = good();
    new DataView(b.buffer).setBigUint64(0, 1n << 40n, true);
    throwsNaming(() => readSafetensors(write('huge.safetensors', b)), 'huge.safetensors', 'header_size');
  });
  test('header length beyond end of file', () => {
    const b = good();
    new DataView(b.buffer).setBigUint64(0, 5000n, true);
    throwsNaming(() => readSafetensors(write('long.safetensors', b)), 'long.safetensors', 'header_size=5000');
  });
  test('file shorter than 8 bytes', () => {
    throwsNaming(() => readSafetensors(write('tiny.safetensors', new Uint8Array(3))), 'tiny.safetensors', 'too short');
  });
  test('invalid JSON', () => {
    const b = handmade(null, new Uint8Array(0), '{"w": {"dtype": ');
    throwsNaming(() => readSafetensors(write('json.safetensors', b)), 'json.safetensors', 'JSON');
  });
  test('offsets out of range', () => {
    const b = handmade({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 16] } }, new Uint8Array(8));
    throwsNaming(() => readSafetensors(write('range.safetensors', b)), 'range.safetensors', '"w"', 'out of range');
  });
  test('offsets disagree with shape * dtype size', () => {
    const b = handmade({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8));
    throwsNaming(() => readSafetensors(write('lying.safetensors', b)), 'lying.safetensors', '"w"', 'needs 12');
  });
  test('overlapping tensors', () => {
    const b = handmade(
      { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } },
      new Uint8Array(8),
    );
    throwsNaming(() => readSafetensors(write('overlap.safetensors', b)), 'overlap.safetensors', 'overlap');
  });
  test('hole between tensors', () => {
    const b = handmade(
      { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } },
      new Uint8Array(12),
    );
    throwsNaming(() => readSafetensors(write('hole.safetensors', b)), 'hole.safetensors', 'hole');
  });
  test('truncated file', () => {
    const file = path.join(tmp, 'trunc.safetensors');
    writeSafetensors(file, { w: { dtype: 'f32', shape: [100], data: new Float32Array(100) } });
    const raw = fs.readFileSync(file);
    fs.writeFileSync(file, raw.subarray(0, raw.length - 10));
    throwsNaming(() => readSafetensors(file), 'trunc.safetensors', '"w"');
  });
  test('unknown and unsupported dtypes name the tensor; unsupported can be skipped', () => {
    const b = handmade({ q: { dtype: 'Q4_K', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4));
    throwsNaming(() => readSafetensors(write('dtype.safetensors', b)), 'dtype.safetensors', '"q"', 'Q4_K');
    const c = handmade(
      { pos: { dtype: 'I64', shape: [1], data_offsets: [0, 8] }, w: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } },
      new Uint8Array(12),
    );
    const p = write('i64.safetensors', c);
    throwsNaming(() => readSafetensors(p), 'i64.safetensors', '"pos"', 'I64');
    assert.deepEqual([...readSafetensors(p, { skipUnsupportedDtypes: true }).keys()], ['w']);
  });
  test('errors are FormatError with file and field', () => {
    const b = handmade({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8));
    try {
      parseSafetensors(b, 'x.safetensors');
      assert.fail('should throw');
    } catch (e) {
      assert.ok(e instanceof FormatError);
      assert.equal(e.file, 'x.safetensors');
      assert.equal(e.field, 'w');
    }
  });
  test('writer rejects data that does not match the shape', () => {
    throwsNaming(() => writeSafetensors(path.join(tmp, 'bad.safetensors'), { w: { dtype: 'f32', shape: [3], data: f32([1]) } }), '"w"', 'needs 3');
    assert.ok(!fs.existsSync(path.join(tmp, 'bad.safetensors')));
  });
});

describe('safetensors directories and atomic writes', () => {
  test('sharded checkpoint via model.safetensors.index.json', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'shard-'));
    writeSafetensors(path.join(dir, 'model-00001-of-00002.safetensors'), { a: { dtype: 'f32', shape: [2], data: f32([1, 2]) } });
    writeSafetensors(path.join(dir, 'model-00002-of-00002.safetensors'), {
      b: { dtype: 'f32', shape: [1], data: f32([3]), saveAs: 'bf16' },
      c: { dtype: 'i32', shape: [1], data: Int32Array.from([4]) },
    });
    const index = { metadata: { total_size: 14 }, weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors', c: 'model-00002-of-00002.safetensors' } };
    fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify(index));
    const m = readSafetensorsDir(dir);
    assert.deepEqual([...m.keys()].sort(), ['a', 'b', 'c']);
    assert.deepEqual([...m.get('a')!.data], [1, 2]);
    assert.equal(m.get('b')!.dtype, 'bf16');
    assert.deepEqual([...m.get('c')!.data], [4]);

    index.weight_map.c = 'model-00001-of-00002.safetensors'; // lies about where c is
    fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify(index));
    throwsNaming(() => readSafetensorsDir(dir), 'model.safetensors.index.json', '"c"');
    index.weight_map.c = '../elsewhere.safetensors';
    fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify(index));
    throwsNaming(() => readSafetensorsDir(dir), 'model.safetensors.index.json', 'weight_map');
  });

  test('single-file directory, and a clear error for an empty one', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'single-'));
    throwsNaming(() => readSafetensorsDir(dir), dir, 'model.safetensors');
    writeSafetensors(path.join(dir, 'model.safetensors'), { a: { dtype: 'f32', shape: [1], data: f32([9]) } });
    assert.deepEqual([...readSafetensorsDir(dir).get('a')!.data], [9]);
  });

  test('overwrite is atomic: no temp files left behind', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'atomic-'));
    const file = path.join(dir, 'w.safetensors');
    writeSafetensors(file, { a: { dtype: 'f32', shape: [1], data: f32([1]) } });
    writeSafetensors(file, { a: { dtype: 'f32', shape: [1], data: f32([2]) } });
    assert.deepEqual(fs.readdirSync(dir), ['w.safetensors']);
    assert.deepEqual([...readSafetensors(file).get('a')!.data], [2]);
  });
});

describe('HF config.json', () => {
  const write = (name: string, obj: unknown): string => {
    const p = path.join(tmp, name);
    fs.writeFileSync(p, JSON.stringify(obj));
    return p;
  };
  const tinyllama = {
    architectures: ['LlamaForCausalLM'], bos_token_id: 1, eos_token_id: 2, hidden_act: 'silu', hidden_size: 2048,
    initializer_range: 0.02, intermediate_size: 5632, max_position_embeddings: 2048, model_type: 'llama',
    num_attention_heads: 32, num_hidden_layers: 22, num_key_value_heads: 4, pretraining_tp: 1, rms_norm_eps: 1e-5,
    rope_scaling: null, rope_theta: 10000.0, tie_word_embeddings: false, torch_dtype: 'bfloat16',
    transformers_version: '4.35.0', use_cache: true, vocab_size: 32000,
  };

  test('llama (TinyLlama config)', () => {
    const { config, warnings } = readHfConfig(write('llama.json', tinyllama));
    assert.deepEqual(warnings, []);
    assert.deepEqual(config, {
      arch: 'llama', modelType: 'llama', dim: 2048, hiddenDim: 5632, nLayers: 22, nHeads: 32, nKvHeads: 4, vocabSize: 32000,
      maxSeqLen: 2048, normEps: 1e-5, ropeTheta: 10000, ropeLayout: 'half', tieEmbeddings: false, qkvBias: false, bosId: 1, eosId: 2,
    });
  });

  test('qwen2: q/k/v bias, tied embeddings, no bos; mistral: sliding window', () => {
    const qwen = {
      architectures: ['Qwen2ForCausalLM'], attention_dropout: 0.0, bos_token_id: 151643, eos_token_id: 151645, hidden_act: 'silu',
      hidden_size: 896, initializer_range: 0.02, intermediate_size: 4864, max_position_embeddings: 32768, max_window_layers: 21,
      model_type: 'qwen2', num_attention_heads: 14, num_hidden_layers: 24, num_key_value_heads: 2, rms_norm_eps: 1e-6,
      rope_theta: 1000000.0, sliding_window: 32768, tie_word_embeddings: true, torch_dtype: 'bfloat16',
      transformers_version: '4.43.1', use_cache: true, use_sliding_window: false, vocab_size: 151936,
    };
    const q = readHfConfig(write('qwen.json', qwen));
    assert.deepEqual(q.warnings, []);
    assert.equal(q.config.arch, 'llama');
    assert.ok(q.config.arch === 'llama' && q.config.qkvBias && q.config.slidingWindow === undefined);
    assert.equal(q.config.tieEmbeddings, true);
    assert.equal(q.config.nKvHeads, 2);
    const m = readHfConfig(write('mistral.json', { ...tinyllama, model_type: 'mistral', sliding_window: 4096, eos_token_id: [2, 5] }));
    assert.ok(m.config.arch === 'llama' && m.config.slidingWindow === 4096 && m.config.eosId === 2);
  });

  test('gpt2 field names', () => {
    const gpt2 = {
      activation_function: 'gelu_new', architectures: ['GPT2LMHeadModel'], attn_pdrop: 0.1, bos_token_id: 50256, embd_pdrop: 0.1,
      eos_token_id: 50256, initializer_range: 0.02, layer_norm_epsilon: 1e-5, model_type: 'gpt2', n_ctx: 1024, n_embd: 768,
      n_head: 12, n_layer: 12, n_positions: 1024, resid_pdrop: 0.1, summary_activation: null, summary_first_dropout: 0.1,
      summary_proj_to_labels: true, summary_type: 'cls_index', summary_use_proj: true,
      task_specific_params: { 'text-generation': { do_sample: true, max_length: 50 } }, vocab_size: 50257,
    };
    const { config, warnings } = readHfConfig(write('gpt2.json', gpt2));
    assert.deepEqual(warnings, []);
    assert.deepEqual(config, {
      arch: 'gpt2', dim: 768, hiddenDim: 3072, nLayers: 12, nHeads: 12, nKvHeads: 12, vocabSize: 50257, maxSeqLen: 1024,
      normEps: 1e-5, tieEmbeddings: true, bosId: 50256, eosId: 50256,
    });
  });

  test('unknown model_type and missing fields name file and field; extras become warnings', () => {
    throwsNaming(() => readHfConfig(write('bert.json', { model_type: 'bert', hidden_size: 1 })), 'bert.json', 'model_type', 'bert');
    const { hidden_size: _, ...noHidden } = tinyllama;
    throwsNaming(() => readHfConfig(write('nohidden.json', noHidden)), 'nohidden.json', 'hidden_size');
    throwsNaming(() => readHfConfig(write('badheads.json', { ...tinyllama, num_key_value_heads: 5 })), 'badheads.json', 'num_key_value_heads');
    const { warnings } = readHfConfig(write('extra.json', { ...tinyllama, fancy_new_thing: 3, rope_theta: undefined }));
    assert.equal(warnings.length, 2);
    assert.ok(warnings[0]!.includes('fancy_new_thing'));
    assert.ok(warnings[1]!.includes('"rope_theta" missing, using 10000'));
    // What changes outputs is refused, not warned about: tests/io-config.test.ts.
    throwsNaming(() => readHfConfig(write('scaled.json', { ...tinyllama, rope_scaling: { rope_type: 'llama3', factor: 8 } })), 'scaled.json', 'rope_scaling');
  });

  test('writeHfConfig -> readHfConfig round trip, and it refuses interleaved RoPE', () => {
    const cfg: LlamaConfig = {
      arch: 'llama', modelType: 'llama', dim: 64, hiddenDim: 172, nLayers: 5, nHeads: 8, nKvHeads: 4, vocabSize: 512, maxSeqLen: 512,
      normEps: 1e-5, ropeTheta: 10000, ropeLayout: 'half', tieEmbeddings: true, qkvBias: false, bosId: 1, eosId: 2,
    };
    const file = path.join(tmp, 'out-config.json');
    writeHfConfig(file, cfg);
    const back = readHfConfig(file);
    assert.deepEqual(back.warnings, []);
    assert.deepEqual(back.config, cfg);
    const json = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
    assert.equal(json.model_type, 'llama');
    assert.deepEqual(json.architectures, ['LlamaForCausalLM']);
    assert.equal(json.torch_dtype, 'float32');
    assert.throws(() => writeHfConfig(file, { ...cfg, ropeLayout: 'interleaved' }), /interleaved/);
    const g = parseHfConfig(hfConfigJson({ arch: 'gpt2', dim: 8, hiddenDim: 32, nLayers: 1, nHeads: 2, nKvHeads: 2, vocabSize: 10, maxSeqLen: 16, normEps: 1e-5, tieEmbeddings: true, bosId: -1, eosId: 3 }), 'mem');
    assert.deepEqual(g.config, { arch: 'gpt2', dim: 8, hiddenDim: 32, nLayers: 1, nHeads: 2, nKvHeads: 2, vocabSize: 10, maxSeqLen: 16, normEps: 1e-5, tieEmbeddings: true, bosId: -1, eosId: 3 });
  });
});

// Fuzzed model-file readers: safetensors (and its shard index), llama2.c checkpoints and
// tokenizers, tokenizer.json and config.json. Each starts from a small valid file that nla
// itself writes, mutated at random (tests/fuzz.ts); the reader must return or throw an Error
// naming the file, and a truncated binary must never read as if whole. Named cases below the
// properties are the adversarial headers and the regressions the fuzzing found.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { readSafetensors, readSafetensorsDir, serializeSafetensors } from '../src/io/safetensors.js';
import { readLlama2c, writeLlama2c } from '../src/io/llama2c.js';
import { Llama2cTokenizer } from '../src/io/tokenizer-llama2c.js';
import { HfTokenizer } from '../src/io/tokenizer-hf.js';
import { hfConfigJson, readHfConfig, type LlamaConfig } from '../src/io/config.js';
import type { HostTensor } from '../src/io/host-tensor.js';
import { fcRuns } from '../src/testing/runs.js';
import { check, cleanRead, cleanReadOf, editJson, jsonEditsArb, mutate, mutationArb, rejectsNaming, Tally, toJsonText } from './fuzz.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-fuzz-io-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
const enc = new TextEncoder();

const concat = (chunks: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) (out.set(c, o), (o += c.length));
  return out;
};

/** A safetensors file whose header is `header` (JSON text) followed by `data` bytes. */
function rawSafetensors(header: string, data: Uint8Array | number = 0): Uint8Array {
  const h = enc.encode(header);
  const pre = new Uint8Array(8);
  new DataView(pre.buffer).setBigUint64(0, BigInt(h.length), true);
  return concat([pre, h, typeof data === 'number' ? new Uint8Array(data) : data]);
}

const ST_TENSORS: Record<string, HostTensor & { saveAs?: 'f16' | 'bf16' }> = {
  a: { dtype: 'f32', shape: [3, 4], data: Float32Array.from({ length: 12 }, (_, i) => i / 3) },
  b: { dtype: 'f32', shape: [5], data: Float32Array.from([1, 2, 3, 4, 5]), saveAs: 'f16' },
  c: { dtype: 'i32', shape: [2, 2], data: Int32Array.from([7, -1, 0, 9]) },
  d: { dtype: 'f32', shape: [0, 3], data: new Float32Array(0) },
};
const ST = concat(serializeSafetensors(ST_TENSORS));
const ST_HEADER = JSON.parse(new TextDecoder().decode(ST.subarray(8, 8 + Number(new DataView(ST.buffer).getBigUint64(0, true)))));

const TINY: LlamaConfig = {
  arch: 'llama', dim: 8, hiddenDim: 12, nLayers: 2, nHeads: 2, nKvHeads: 1, vocabSize: 10, maxSeqLen: 4,
  normEps: 1e-5, ropeTheta: 10000, ropeLayout: 'interleaved', tieEmbeddings: false, qkvBias: false, bosId: 1, eosId: 2,
};
function tinyWeights(): Map<string, HostTensor> {
  const w = new Map<string, HostTensor>();
  const put = (name: string, shape: number[]) => w.set(name, { dtype: 'f32', shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i)) });
  put('model.embed_tokens.weight', [10, 8]);
  put('lm_head.weight', [10, 8]);
  put('model.norm.weight', [8]);
  for (let l = 0; l < 2; l++) {
    const p = `model.layers.${l}.`;
    put(p + 'input_layernorm.weight', [8]);
    put(p + 'post_attention_layernorm.weight', [8]);
    put(p + 'self_attn.q_proj.weight', [8, 8]);
    put(p + 'self_attn.k_proj.weight', [4, 8]);
    put(p + 'self_attn.v_proj.weight', [4, 8]);
    put(p + 'self_attn.o_proj.weight', [8, 8]);
    put(p + 'mlp.gate_proj.weight', [12, 8]);
    put(p + 'mlp.up_proj.weight', [12, 8]);
    put(p + 'mlp.down_proj.weight', [8, 12]);
  }
  return w;
}
const L2C_FILE = path.join(tmp, 'valid.bin');
writeLlama2c(L2C_FILE, TINY, tinyWeights());
const L2C = new Uint8Array(fs.readFileSync(L2C_FILE));

/** A llama2.c tokenizer.bin: max_token_length, then (score f32, len i32, bytes) per token. */
function tokBin(pieces: string[], maxLen = 8): Uint8Array {
  const parts: Uint8Array[] = [Uint8Array.from(new Uint8Array(Int32Array.of(maxLen).buffer))];
  pieces.forEach((p, i) => {
    const b = enc.encode(p);
    const h = new DataView(new ArrayBuffer(8));
    h.setFloat32(0, -i, true);
    h.setInt32(4, b.length, true);
    parts.push(new Uint8Array(h.buffer), b);
  });
  return concat(parts);
}
const TOK_PIECES = ['<unk>', '<s>', '</s>', ...Array.from({ length: 256 }, (_, i) => `<0x${i.toString(16).toUpperCase().padStart(2, '0')}>`), ' a', 'b', ' ab', 'c'];
const TOK_BIN = tokBin(TOK_PIECES);

const TOK_JSON = {
  added_tokens: [{ id: 9, content: '<|x|>', special: true }, { id: 10, content: '[NOTE]', special: false }],
  normalizer: { type: 'Sequence', normalizers: [{ type: 'NFC' }] },
  pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, use_regex: true },
  decoder: { type: 'Sequence', decoders: [{ type: 'ByteLevel' }, { type: 'Strip', content: ' ', start: 0, stop: 0 }] },
  model: { type: 'BPE', vocab: { a: 0, b: 1, c: 2, Ġ: 3, ab: 4, abc: 5, Ġa: 6, bc: 7, 'Ġab': 8 }, merges: ['a b', 'Ġ a', 'b c', 'ab c', 'Ġa b'] },
};

const CONFIGS = [
  hfConfigJson({ ...TINY, ropeLayout: 'half', modelType: 'qwen2', qkvBias: true, slidingWindow: 4 }),
  hfConfigJson({ arch: 'gpt2', dim: 8, hiddenDim: 32, nLayers: 2, nHeads: 2, nKvHeads: 2, vocabSize: 10, maxSeqLen: 16, normEps: 1e-5, tieEmbeddings: true, bosId: 0, eosId: 0 }),
];

// Each fuzz case gets a file name of its own, so an error naming a stale file cannot pass.
let serial = 0;
const fresh = (ext: string) => path.join(tmp, `case-${serial++}${ext}`);
const isTruncation = (muts: { kind: string }[]) => muts.every((m) => m.kind === 'truncate');

describe('fuzz: safetensors', () => {
  test('byte mutations: a clean read or an error naming the file; truncations always fail', async () => {
    const t = new Tally();
    await check(
      fc.asyncProperty(fc.oneof(mutationArb(ST.length), mutationArb(96)), async (muts) => {
        const bytes = mutate(ST, muts);
        const o = await cleanReadOf(fresh('.safetensors'), bytes, (f) => readSafetensors(f));
        t.add(o);
        if (isTruncation(muts) && bytes.length < ST.length) assert.ok(!o.ok, 'a truncated file read as whole');
      }),
      { seed: 1401, numRuns: fcRuns(600) },
    );
    assert.ok(t.ok > 0 && t.errors > 0, `fuzz reached both outcomes (ok ${t.ok}, errors ${t.errors})`);
  });

  test('header edits (wrong types, huge / negative sizes and offsets, deep nesting): clean read or named error', async () => {
    const t = new Tally();
    await check(
      fc.asyncProperty(jsonEditsArb, async (edits) => {
        const bytes = rawSafetensors(toJsonText(editJson(ST_HEADER, edits)), ST.subarray(8 + Number(new DataView(ST.buffer).getBigUint64(0, true))));
        const o = await cleanReadOf(fresh('.safetensors'), bytes, (f) => readSafetensors(f));
        t.add(o);
        if (o.ok) {
          // A read that succeeds reads what the header says, nothing invented.
          for (const [name, v] of o.value as Map<string, HostTensor>) assert.equal(v.data.length, v.shape.reduce((a, b) => a * b, 1), name);
        }
      }),
      { seed: 1402, numRuns: fcRuns(500) },
    );
    assert.ok(t.errors > 0, 'some edits must be refused');
  });

  test('index edits: readSafetensorsDir on a sharded directory', async () => {
    const dir = path.join(tmp, 'sharded');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'model-00001.safetensors'), concat(serializeSafetensors({ a: ST_TENSORS.a })));
    fs.writeFileSync(path.join(dir, 'model-00002.safetensors'), concat(serializeSafetensors({ c: ST_TENSORS.c })));
    const index = { metadata: { total_size: 64 }, weight_map: { a: 'model-00001.safetensors', c: 'model-00002.safetensors' } };
    const indexFile = path.join(dir, 'model.safetensors.index.json');
    await check(
      fc.asyncProperty(jsonEditsArb, async (edits) => {
        const text = toJsonText(editJson(index, edits));
        fs.writeFileSync(indexFile, text);
        await cleanRead(dir, text.length + 200, () => readSafetensorsDir(dir));
      }),
      { seed: 1403, numRuns: fcRuns(200) },
    );
  });

  test('adversarial headers are refused naming the file and the field', async () => {
    const f = fresh('.safetensors');
    const at = (bytes: Uint8Array) => (fs.writeFileSync(f, bytes), () => readSafetensors(f));
    const u64max = new Uint8Array(16).fill(0xff);
    await rejectsNaming(at(u64max), f, 'header_size');
    await rejectsNaming(at(rawSafetensors('{"x":{"dtype":"F32","shape":[9007199254740991,9007199254740991],"data_offsets":[0,8]}}', 8)), f, '"x"', 'shape');
    await rejectsNaming(at(rawSafetensors('{"x":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}', 8)), f, '"x"', 'data_offsets');
    await rejectsNaming(at(rawSafetensors('{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', 12)), f, 'overlap');
    await rejectsNaming(at(rawSafetensors('{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,8]}}', 8)), f, '"x"', 'needs 16');
    await rejectsNaming(at(rawSafetensors('{"x":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}}', 8)), f, '"x"', 'dtype "Q4"');
    await rejectsNaming(at(rawSafetensors('[' .repeat(100_000) + ']'.repeat(100_000))), f, 'header');
    await rejectsNaming(at(rawSafetensors('{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', 1 << 20)), f, 'trailing');
  });

  test('regression (fuzz seed 1402): a header nesting 4,111 arrays deep is refused naming the file, not a stack overflow', async () => {
    const f = fresh('.safetensors');
    const deep = '['.repeat(4111) + '0' + ']'.repeat(4111);
    fs.writeFileSync(f, rawSafetensors(`{"x":{"dtype":"F32","shape":${deep},"data_offsets":[0,4]}}`, 4));
    await rejectsNaming(() => readSafetensors(f), f, 'nests deeper than 256');
    const dir = path.join(tmp, 'deep-index');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), `{"weight_map":{"a":${deep}}}`);
    await rejectsNaming(() => readSafetensorsDir(dir), path.join(dir, 'model.safetensors.index.json'), 'nests deeper');
  });
});

describe('fuzz: llama2.c checkpoint and tokenizer', () => {
  test('checkpoint byte mutations (anywhere, and in the 28-byte header): clean read or named error; truncations fail', async () => {
    const t = new Tally();
    await check(
      fc.asyncProperty(fc.oneof(mutationArb(L2C.length), mutationArb(28)), async (muts) => {
        const bytes = mutate(L2C, muts);
        const o = await cleanReadOf(fresh('.bin'), bytes, (f) => readLlama2c(f));
        t.add(o);
        if (isTruncation(muts) && bytes.length < L2C.length) assert.ok(!o.ok, 'a truncated checkpoint read as whole');
      }),
      { seed: 1404, numRuns: fcRuns(400) },
    );
    assert.ok(t.ok > 0 && t.errors > 0, `fuzz reached both outcomes (ok ${t.ok}, errors ${t.errors})`);
  });

  test('checkpoint headers declaring huge models are refused before any allocation', async () => {
    const f = fresh('.bin');
    const header = (h: number[]) => (fs.writeFileSync(f, concat([new Uint8Array(Int32Array.from(h).buffer), new Uint8Array(64)])), () => readLlama2c(f));
    await rejectsNaming(header([65536, 262144, 1024, 1024, 1024, 4194304, 4194304]), f, 'file has 92 bytes, expected 282576099213340');
    await rejectsNaming(header([-1, 8, 1, 1, 1, 8, 8]), f, 'dim=-1');
    await rejectsNaming(header([8, 8, 1, 2, 2, -2147483648, 8]), f, 'vocab_size');
    await rejectsNaming(header([0x616b3432, 1, 1, 1, 1, 1, 1]), f, 'ak42');
  });

  test('tokenizer.bin byte mutations: clean read or named error', async () => {
    const t = new Tally();
    await check(
      fc.asyncProperty(fc.oneof(mutationArb(TOK_BIN.length), mutationArb(16)), async (muts) => {
        const o = await cleanReadOf(fresh('.tok'), mutate(TOK_BIN, muts), (f) => {
          const tok = Llama2cTokenizer.fromFile(f);
          return tok.decode(tok.encode('ab c abc'));
        });
        t.add(o);
      }),
      { seed: 1405, numRuns: fcRuns(400) },
    );
    assert.ok(t.ok > 0 && t.errors > 0, `fuzz reached both outcomes (ok ${t.ok}, errors ${t.errors})`);
  });

  test('regression (fuzz seed 1405): a tokenizer.bin cut at a token boundary, whose byte fallback would emit ids past the vocab, is refused', async () => {
    const f = fresh('.tok');
    fs.writeFileSync(f, mutate(TOK_BIN, [{ kind: 'truncate', at: 1328 }]));
    await rejectsNaming(() => Llama2cTokenizer.fromFile(f), f, 'vocab_size', 'byte pieces');
    const swapped = [...TOK_PIECES];
    [swapped[40], swapped[41]] = [swapped[41], swapped[40]];
    fs.writeFileSync(f, tokBin(swapped));
    await rejectsNaming(() => Llama2cTokenizer.fromFile(f), f, 'token 40', '<0x25>');
  });

  test('a tokenizer.bin cut at a token boundary is caught when the vocab size is known', async () => {
    const f = fresh('.tok');
    const cut = TOK_BIN.subarray(0, TOK_BIN.length - (8 + 1)); // drop the last token "c"
    fs.writeFileSync(f, cut);
    await rejectsNaming(() => Llama2cTokenizer.parse(new Uint8Array(fs.readFileSync(f)), f, TOK_PIECES.length), f, 'vocab_size');
  });
});

describe('fuzz: tokenizer.json and config.json', () => {
  test('tokenizer.json edits: load (then encode/decode) cleanly or a named error', async () => {
    const t = new Tally();
    await check(
      fc.asyncProperty(jsonEditsArb, async (edits) => {
        const text = toJsonText(editJson(TOK_JSON, edits));
        const o = await cleanReadOf(fresh('.json'), enc.encode(text), (f) => {
          const tok = HfTokenizer.fromFile(f);
          return tok.decode(tok.encode('ab abc [NOTE]'));
        }, 64);
        t.add(o);
      }),
      { seed: 1406, numRuns: fcRuns(500) },
    );
    assert.ok(t.ok > 0 && t.errors > 0, `fuzz reached both outcomes (ok ${t.ok}, errors ${t.errors})`);
  });

  test('regressions (fuzz seeds 1406, 1407): non-list added_tokens, normalizers, decoders and merges are named, not TypeErrors', async () => {
    const f = fresh('.json');
    const load = (doc: unknown) => (fs.writeFileSync(f, JSON.stringify(doc)), () => HfTokenizer.fromFile(f));
    await rejectsNaming(load({ ...TOK_JSON, added_tokens: '../../etc/passwd' }), f, 'added_tokens', 'expected a list');
    await rejectsNaming(load({ ...TOK_JSON, normalizer: { type: 'Sequence', 'normalizers ': [] } }), f, 'normalizer.normalizers', 'expected a list');
    await rejectsNaming(load({ ...TOK_JSON, decoder: { type: 'Sequence', decoders: {} } }), f, 'decoder.decoders');
    await rejectsNaming(load({ ...TOK_JSON, decoder: { type: 'Sequence', decoders: [null] } }), f, 'decoder.decoders[0].type');
    await rejectsNaming(load({ ...TOK_JSON, model: { ...TOK_JSON.model, merges: ['a b', [9007199254740992]] } }), f, 'model.merges[1]');
    await rejectsNaming(load({ ...TOK_JSON, model: { ...TOK_JSON.model, vocab: { ...TOK_JSON.model.vocab, z: 2 ** 40 } } }), f, 'model.vocab');
  });

  test('tokenizer.json byte mutations: clean read or named error', async () => {
    const text = enc.encode(JSON.stringify(TOK_JSON));
    await check(
      fc.asyncProperty(mutationArb(text.length), async (muts) => {
        await cleanReadOf(fresh('.json'), mutate(text, muts), (f) => HfTokenizer.fromFile(f), 64);
      }),
      { seed: 1407, numRuns: fcRuns(300) },
    );
  });

  test('config.json edits (llama-family and gpt2): a config or a named error', async () => {
    const t = new Tally();
    await check(
      fc.asyncProperty(fc.constantFrom(0, 1), jsonEditsArb, async (which, edits) => {
        const text = toJsonText(editJson(CONFIGS[which], edits));
        const o = await cleanReadOf(fresh('.json'), enc.encode(text), (f) => readHfConfig(f).config);
        t.add(o);
        if (o.ok) {
          // What loads is a usable shape: positive integer sizes, heads dividing the width.
          const c = o.value as LlamaConfig;
          for (const k of ['dim', 'hiddenDim', 'nLayers', 'nHeads', 'nKvHeads', 'vocabSize', 'maxSeqLen'] as const) assert.ok(Number.isSafeInteger(c[k]) && c[k] > 0, `${k}=${c[k]}`);
          assert.equal(c.dim % c.nHeads, 0);
          assert.equal(c.nHeads % c.nKvHeads, 0);
        }
      }),
      { seed: 1408, numRuns: fcRuns(500) },
    );
    assert.ok(t.ok > 0 && t.errors > 0, `fuzz reached both outcomes (ok ${t.ok}, errors ${t.errors})`);
  });
});

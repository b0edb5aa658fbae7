// Injection writes exactly one row; the untrained AR reproduces M's layer-K activation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel, loadTokenizerFor } from '../src/nn/load.js';
import type { Llama } from '../src/nn/llama.js';
import { injectAt } from '../src/nn/llama.js';
import { Reconstructor } from '../src/nla/ar.js';
import { Verbalizer } from '../src/nla/av.js';
import { extractActivations } from '../src/nla/extract.js';
import { DEFAULT_PROMPTS, arIds, avPrompt, parseExplanation } from '../src/nla/prompts.js';
import { normalizedMseHost } from '../src/nla/loss.js';
import * as T from '../src/tensor/index.js';
import type { Tokenizer } from '../src/io/tokenizer.js';
import { modelFile, SKIP_NO_MODEL } from './helpers.js';

const file = () => modelFile('stories260K.bin');

test('injection replaces exactly the placeholder row with the scaled vector, every other row untouched', { skip: SKIP_NO_MODEL }, async () => {
  const { model } = await loadModel(file());
  const tok = loadTokenizerFor(file());
  const av = new Verbalizer(model as Llama, tok, DEFAULT_PROMPTS, 10);
  const p = av.prompt;
  assert.equal(p.ids.filter((t) => t === p.placeholderId).length, 1);
  const d = 64;
  const h = Float32Array.from({ length: 2 * d }, (_, i) => Math.sin(i) * 3);
  const vec = av.injection(h);
  const B = 2, Tn = p.ids.length;
  const ids = T.Tensor.from(Int32Array.from([...p.ids, ...p.ids]), [B, Tn], 'i32');
  const emb = T.embedding(model.w.get('model.embed_tokens.weight'), ids);
  const x = (await injectAt(emb, [p.position, p.position], vec).data()) as Float32Array;
  const e = (await emb.data()) as Float32Array;
  for (let b = 0; b < B; b++) {
    let n = 0;
    for (let i = 0; i < d; i++) n += h[b * d + i] ** 2;
    for (let t = 0; t < Tn; t++) {
      for (let i = 0; i < d; i++) {
        const got = x[(b * Tn + t) * d + i];
        const want = t === p.position ? (h[b * d + i] * 10) / Math.sqrt(n) : e[(b * Tn + t) * d + i];
        assert.ok(Math.abs(got - want) < 1e-5, `row b=${b} t=${t} dim ${i}: ${got} vs ${want}`);
      }
    }
  }
  model.w.dispose();
});

/** One token per UTF-16 unit (id = code + 3, BOS 1): enough to parse prompts without a model. */
const charTok = {
  vocabSize: 0x10003, bosId: 1, eosId: 2,
  encode: (s: string, o?: { bos?: boolean }) => [...(o?.bos ? [1] : []), ...[...s].map((c) => c.charCodeAt(0) + 3)],
  pieces: (ids: number[]) => ids.map((i) => String.fromCharCode(i - 3)),
} as unknown as Tokenizer;

test('prompts (no model): zero or two placeholders are errors; the placeholder position; explanations parse non-greedily', () => {
  assert.throws(() => avPrompt(charTok, { ...DEFAULT_PROMPTS, av: 'no slot here' }), /no \{concept\} slot/);
  assert.throws(() => avPrompt(charTok, { ...DEFAULT_PROMPTS, av: '{concept} and \u007f' }), /exactly once; found it 2 times/);
  assert.throws(() => avPrompt(charTok, { ...DEFAULT_PROMPTS, placeholder: 'ab' }), /encodes to 2 tokens \(a b\); it must be one token/);
  const p = avPrompt(charTok, { ...DEFAULT_PROMPTS, av: 'ab{concept}c' });
  assert.deepEqual(p, { ids: [1, 97 + 3, 98 + 3, 0x7f + 3, 99 + 3], position: 3, placeholderId: 0x7f + 3 });
  assert.equal(parseExplanation(' a cat </explanation> more </explanation>', DEFAULT_PROMPTS), 'a cat');
  assert.equal(parseExplanation('never closed', DEFAULT_PROMPTS), undefined);
  assert.equal(parseExplanation('</explanation>', DEFAULT_PROMPTS), '');
});

test('prompts on tok512: the DEL placeholder is one token, found once in the default AV prompt', { skip: SKIP_NO_MODEL }, () => {
  const tok = loadTokenizerFor(file());
  const p = avPrompt(tok, DEFAULT_PROMPTS);
  assert.equal(p.placeholderId, 0x7f + 3, 'byte-fallback piece <0x7F>');
  assert.equal(p.ids[p.position], p.placeholderId);
  assert.equal(p.ids.filter((t) => t === p.placeholderId).length, 1);
  assert.throws(() => avPrompt(tok, { ...DEFAULT_PROMPTS, av: '{concept} and \u007f' }), /exactly once; found it 2 times/);
});

test('the AR with its identity head, before training, reproduces M\'s layer-K activation of the same text', { skip: SKIP_NO_MODEL }, async () => {
  const { model } = await loadModel(file());
  const tok = loadTokenizerFor(file());
  for (const layer of [0, 3, 4]) {
    const ar = await Reconstructor.fromModel(model as Llama, layer, tok, DEFAULT_PROMPTS);
    const texts = ['Lily in the park with a red ball', 'Tom was sad'];
    const pred = await ar.predictHost(texts);
    for (let i = 0; i < texts.length; i++) {
      const ids = arIds(tok, DEFAULT_PROMPTS, texts[i]);
      const h = await extractActivations(model, layer, [{ ids, positions: [ids.length - 1], meta: [] }]);
      for (let k = 0; k < 64; k++) assert.ok(Math.abs(pred[i * 64 + k] - h[k]) < 1e-4, `layer ${layer} text ${i} dim ${k}: ${pred[i * 64 + k]} vs ${h[k]}`);
      assert.ok(normalizedMseHost(pred, h, 64, i, 0) < 1e-8);
    }
    ar.model.w.dispose();
  }
  await assert.rejects(() => Reconstructor.fromModel(model as Llama, 5, tok, DEFAULT_PROMPTS), /layer 5 out of range \(M has blocks 0\.\.4\)/);
  model.w.dispose();
});

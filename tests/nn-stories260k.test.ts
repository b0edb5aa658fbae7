// The real pretrained model: llama2.c's published greedy output reproduced exactly, through
// the KV cache and through the full-sequence path; the two paths agree on logits; the HF
// export reloads to identical logits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { generate } from '../src/nn/generate.js';
import { loadModel, loadTokenizerFor, saveHf } from '../src/nn/load.js';
import * as T from '../src/tensor/index.js';
import { property } from '../src/testing/property.js';
import { modelFile as find, PUBLISHED_OUTPUT, SKIP_NO_MODEL } from './helpers.js';

const modelFile = () => find('stories260K.bin');

async function greedyText(noCache: boolean): Promise<string> {
  const { model } = await loadModel(modelFile());
  const tok = loadTokenizerFor(modelFile());
  const prompt = tok.encode('Once upon a time', { bos: true });
  // llama2.c runs 200 steps from BOS: the prompt's tokens are forced, the rest generated.
  const g = await generate(model, [prompt], { maxNewTokens: 200 - (prompt.length - 1), temperature: 0, noCache });
  model.w.dispose();
  const ids = [...prompt, ...g.tokens[0]];
  let s = '';
  for (let i = 1; i < ids.length; i++) s += tok.decodeToken(ids[i - 1], ids[i]);
  return s.trim();
}

test('greedy 200 steps with the KV cache reproduce llama2.c exactly', { skip: SKIP_NO_MODEL }, async () => {
  assert.equal(await greedyText(false), PUBLISHED_OUTPUT);
});

test('greedy 200 steps through the full-sequence path reproduce llama2.c exactly', { skip: SKIP_NO_MODEL }, async () => {
  assert.equal(await greedyText(true), PUBLISHED_OUTPUT);
});

async function logitsOf(model: Awaited<ReturnType<typeof loadModel>>['model'], ids: number[]): Promise<Float32Array> {
  const out = T.noGrad(() => T.tidy(() => model.forward(T.Tensor.from(Int32Array.from(ids), [1, ids.length], 'i32')).logits!));
  const d = (await out.data()) as Float32Array;
  out.dispose();
  return d;
}

test('teacher-forced logits: full-sequence path equals the KV-cache path token by token (random prompts)', { skip: SKIP_NO_MODEL }, async () => {
  const { model } = await loadModel(modelFile());
  const V = model.cfg.vocabSize;
  await property(fc.array(fc.integer({ min: 3, max: 511 }), { minLength: 2, maxLength: 23 }), async (body) => {
    const ids = [1, ...body];
    const full = await logitsOf(model, ids);
    const cache = model.newCache(1, ids.length);
    try {
      for (let t = 0; t < ids.length; t++) {
        const step = T.noGrad(() => T.tidy(() => model.forward(T.Tensor.from(Int32Array.of(ids[t]), [1, 1], 'i32'), { cache }).logits!));
        const row = (await step.data()) as Float32Array;
        step.dispose();
        for (let v = 0; v < V; v++) {
          const a = full[t * V + v], b = row[v];
          assert.ok(Math.abs(a - b) <= 1e-4 + 1e-4 * Math.abs(a), `token ${t} logit ${v}: full ${a} vs cached ${b}`);
        }
      }
    } finally {
      cache.dispose();
    }
  }, { numRuns: 6 });
  model.w.dispose();
});

test('stories260K -> HF layout (rotate-half q/k, safetensors, config.json) -> reload gives identical logits', { skip: SKIP_NO_MODEL }, async () => {
  const a = await loadModel(modelFile());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-hf-'));
  await saveHf(a.model, dir);
  const b = await loadModel(dir);
  assert.equal((b.model.cfg as { ropeLayout: string }).ropeLayout, 'half');
  const ids = [1, 403, 407, 261, 378, 11, 300, 42, 77];
  const la = await logitsOf(a.model, ids), lb = await logitsOf(b.model, ids);
  for (let i = 0; i < la.length; i++) assert.ok(Math.abs(la[i] - lb[i]) <= 1e-4, `logit ${i}: ${la[i]} vs ${lb[i]}`);
  a.model.w.dispose();
  b.model.w.dispose();
});

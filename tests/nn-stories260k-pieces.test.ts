// stories260K with its embedding (tied LM head, 512 x 64 f32 = 128 KiB) in several buffers: the
// engine is told maxBufferSize is 48 KiB (setBufferLimit), so the embedding lives in 3 pieces as a
// 7B model's would at 4 GiB, while every activation of KV-cached decoding stays in one buffer.
// Greedy decoding must still reproduce llama2.c's published text, through the logits path
// (linear over pieces) and the fused GPU sampler (headSample over pieces); and the model saved
// (read back piece by piece) and reloaded (streamed into pieces) gives identical logits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { generate } from '../src/nn/generate.js';
import { loadModel, loadTokenizerFor, saveHf } from '../src/nn/load.js';
import * as T from '../src/tensor/index.js';
import { setBufferLimit } from '../src/tensor/pool.js';
import { isMulti } from '../src/tensor/pieces.js';
import { modelFile as find, PUBLISHED_OUTPUT, SKIP_NO_MODEL } from './helpers.js';

const modelFile = () => find('stories260K.bin');
const LIMIT = 48 * 1024;
await T.initGpu();
setBufferLimit(LIMIT);

type Model = Awaited<ReturnType<typeof loadModel>>['model'];

function embeddingInPieces(model: Model): void {
  const e = model.w.get('model.embed_tokens.weight');
  assert.ok(isMulti(e), 'the embedding is not in several buffers');
  assert.equal(e.storage.pieces!.length, 3);
  assert.equal((model.cfg as { tieEmbeddings?: boolean }).tieEmbeddings, true, 'stories260K ties its head to the embedding');
}

async function greedyText(model: Model, fusedSample: boolean): Promise<string> {
  const tok = loadTokenizerFor(modelFile());
  const prompt = tok.encode('Once upon a time', { bos: true });
  const g = await generate(model, [prompt], { maxNewTokens: 200 - (prompt.length - 1), temperature: 0, fusedSample });
  const ids = [...prompt, ...g.tokens[0]];
  let s = '';
  for (let i = 1; i < ids.length; i++) s += tok.decodeToken(ids[i - 1], ids[i]);
  return s.trim();
}

test('greedy 200 steps with the embedding in 3 buffers reproduce llama2.c (logits path and fused sampler)', { skip: SKIP_NO_MODEL }, async () => {
  const { model } = await loadModel(modelFile());
  embeddingInPieces(model);
  assert.equal(await greedyText(model, false), PUBLISHED_OUTPUT);
  assert.equal(await greedyText(model, true), PUBLISHED_OUTPUT);
  model.w.dispose();
});

test('saved from pieces and reloaded (streamed) into pieces: identical logits', { skip: SKIP_NO_MODEL }, async () => {
  const a = await loadModel(modelFile());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-pieces-'));
  try {
    await saveHf(a.model, dir);
    const b = await loadModel(dir);
    embeddingInPieces(b.model);
    const ids = [1, 403, 407, 261, 378, 11, 300, 42, 77];
    const logits = async (m: Model) => {
      const out = T.noGrad(() => T.tidy(() => m.forward(T.Tensor.from(Int32Array.from(ids), [1, ids.length], 'i32')).logits!));
      const d = (await out.data()) as Float32Array;
      out.dispose();
      return d;
    };
    const la = await logits(a.model), lb = await logits(b.model);
    assert.equal(la.length, ids.length * 512);
    for (let i = 0; i < la.length; i++) assert.ok(Math.abs(la[i] - lb[i]) <= 1e-4, `logit ${i}: ${la[i]} vs ${lb[i]}`);
    // The reloaded embedding equals the original, element for element.
    const [ea, eb] = [await a.model.w.get('model.embed_tokens.weight').data(), await b.model.w.get('model.embed_tokens.weight').data()];
    assert.deepEqual(eb, ea);
    b.model.w.dispose();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    a.model.w.dispose();
  }
});

// loadNLA streams av.safetensors and ar.safetensors to the GPU a chunk at a time (no decoded
// host copy of the models): a saved NLA must come back with every parameter bit-identical and
// in the order the whole-file reader gave (optimizer state and checkpoints follow that order).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readSafetensors } from '../src/io/safetensors.js';
import type { Llama } from '../src/nn/llama.js';
import { loadModel, loadTokenizerFor } from '../src/nn/load.js';
import { Reconstructor } from '../src/nla/ar.js';
import { Verbalizer } from '../src/nla/av.js';
import { loadNLA, NLA, streamWeights, type NlaMeta } from '../src/nla/nla.js';
import { DEFAULT_PROMPTS } from '../src/nla/prompts.js';
import { Llama as LlamaModel } from '../src/nn/llama.js';
import { modelFile, SKIP_NO_MODEL } from './helpers.js';

test('a saved NLA loads back streamed: every AV and AR parameter bit-identical, in the order of the whole-file reader', { skip: SKIP_NO_MODEL }, async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-load-stream-'));
  try {
    const loaded = await loadModel(modelFile('stories260K.bin'));
    const M = loaded.model as Llama;
    const tok = loadTokenizerFor(modelFile('stories260K.bin'));
    const av = new Verbalizer(new LlamaModel(M.cfg, await M.w.clone()), tok, DEFAULT_PROMPTS, 10);
    const ar = await Reconstructor.fromModel(M, 3, tok, DEFAULT_PROMPTS);
    const meta: NlaMeta = {
      format: 'nla/1', model: { name: loaded.name, path: path.resolve(loaded.source), sha256: loaded.sha256, config: M.cfg }, tokenizer: 'tokenizer.bin', layer: 3, alpha: 10,
      variance: 0.77, mean: new Array(M.cfg.dim).fill(0), prompts: DEFAULT_PROMPTS, placeholderId: av.prompt.placeholderId, maxExplanationTokens: 24, created: new Date().toISOString(),
    };
    const nla = new NLA(meta, av, ar, tok, M);
    await nla.save(tmp);
    fs.copyFileSync(modelFile('tok512.bin'), path.join(tmp, 'tokenizer.bin'));
    const back = await loadNLA(tmp);
    for (const [name, before, after] of [['av', av.model.w, back.av.model.w], ['ar', ar.model.w, back.ar.model.w]] as const) {
      // The saved file's order (by name), as the whole-file reader returned it before streaming.
      assert.deepEqual([...after.map.keys()], [...readSafetensors(path.join(tmp, `${name}.safetensors`)).keys()], `${name}: order of the whole-file reader`);
      for (const [k, t] of before.map) {
        const a = (await t.data()) as Float32Array, b = (await after.get(k).data()) as Float32Array;
        assert.deepEqual(after.get(k).shape, t.shape, `${name} ${k} shape`);
        assert.ok(a.every((x, i) => Object.is(x, b[i])), `${name} ${k}: values differ`);
        assert.ok(after.get(k).requiresGrad, `${name} ${k} is a trainable parameter`);
      }
    }
    await assert.rejects(streamWeights(path.join(tmp, 'missing.safetensors')), /missing\.safetensors/);
    nla.dispose();
    back.dispose();
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

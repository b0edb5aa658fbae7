// loadNLA streams av.safetensors and ar.safetensors to the GPU a chunk at a time (no decoded
// host copy of the models): a saved NLA must come back with every parameter bit-identical and
// in the order the whole-file reader gave (optimizer state and checkpoints follow that order).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readSafetensors } from '../src/io/safetensors.js';
import { loadNLA, streamWeights } from '../src/nla/nla.js';
import { modelFile, SKIP_NO_MODEL } from './helpers.js';
import { untrainedStoriesNla } from './stories-nla.js';

test('a saved NLA loads back streamed: every AV and AR parameter bit-identical, in the order of the whole-file reader', { skip: SKIP_NO_MODEL }, async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-load-stream-'));
  try {
    const { nla, av, ar } = await untrainedStoriesNla();
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

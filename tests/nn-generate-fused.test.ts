// generate({ fusedSample }) on stories260K: tokens drawn on the GPU by T.headSample. Greedy
// gives the host path's tokens; sampled, each recorded log p equals the teacher-forced
// log-probability of the drawn token, a row's text depends on its seed alone, and top-k is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generate, sequenceLogProbs } from '../src/nn/generate.js';
import { loadModel, loadTokenizerFor } from '../src/nn/load.js';
import * as T from '../src/tensor/index.js';
import { modelFile, SKIP_NO_MODEL } from './helpers.js';

test('fused sampling: greedy equals the host greedy; sampled log-probs equal the teacher-forced ones; a row depends on its seed', { skip: SKIP_NO_MODEL }, async () => {
  const file = modelFile('stories260K.bin');
  const { model } = await loadModel(file);
  const tok = loadTokenizerFor(file);
  try {
    const prompts = [tok.encode('Once upon a time', { bos: true }), tok.encode('The little dog ran', { bos: true })];
    const L = Math.min(...prompts.map((p) => p.length));
    const ps = prompts.map((p) => p.slice(0, L));
    const host = await generate(model, ps, { maxNewTokens: 24, temperature: 0 });
    const fused = await generate(model, ps, { maxNewTokens: 24, temperature: 0, fusedSample: true });
    assert.deepEqual(fused.tokens, host.tokens);
    fused.logprobs.flat().forEach((lp, i) => assert.ok(Math.abs(lp - host.logprobs.flat()[i]) < 1e-4, `greedy log p ${i}: ${lp} vs ${host.logprobs.flat()[i]}`));

    const sampled = await generate(model, ps, { maxNewTokens: 20, temperature: 1, seeds: [11, 12], fusedSample: true });
    for (let b = 0; b < ps.length; b++) {
      const ids = [...ps[b], ...sampled.tokens[b]];
      const lp = T.noGrad(() => T.tidy(() => sequenceLogProbs(model, Int32Array.from(ids), 1, ids.length)));
      const tf = (await lp.data()) as Float32Array;
      lp.dispose();
      sampled.logprobs[b].forEach((x, t) => assert.ok(Math.abs(x - tf[L - 1 + t]) < 1e-4, `row ${b} token ${t}: log p ${x} vs teacher-forced ${tf[L - 1 + t]}`));
    }
    // Row 1 alone with seed 12 draws what it drew beside row 0.
    const alone = await generate(model, [ps[1]], { maxNewTokens: 20, temperature: 1, seeds: [12], fusedSample: true });
    assert.deepEqual(alone.tokens[0], sampled.tokens[1]);
    // Different seeds give different texts (20 tokens at T = 1 from a 512-token vocabulary).
    const other = await generate(model, [ps[1]], { maxNewTokens: 20, temperature: 1, seeds: [13], fusedSample: true });
    assert.notDeepEqual(other.tokens[0], alone.tokens[0]);
    await assert.rejects(generate(model, ps, { maxNewTokens: 2, temperature: 1, topK: 5, fusedSample: true }), /fusedSample .* no topK/);
  } finally {
    model.w.dispose();
  }
});

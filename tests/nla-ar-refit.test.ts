// The AR refitted on what the AV writes (ar-refit.ts): rows are an even spread, unparseable
// explanations are left out (their rows keep their true summary), and the refitted AR rebuilds
// the AV's word as the mean h of the rows where the AV wrote it, whatever that word says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel, loadTokenizerFor } from '../src/nn/load.js';
import type { Llama } from '../src/nn/llama.js';
import { Reconstructor } from '../src/nla/ar.js';
import type { Explained, Verbalizer } from '../src/nla/av.js';
import { evenSpread, refitArOnAv } from '../src/nla/ar-refit.js';
import { normalizedMseHost } from '../src/nla/loss.js';
import { COMPACT_PROMPTS } from '../src/nla/prompts.js';
import { rng } from '../src/util/rng.js';
import { modelFile, SKIP_NO_MODEL } from './helpers.js';

test('evenSpread: k indices spread over n, all of them for k = 0 or k >= n', () => {
  assert.deepEqual(evenSpread(10, 4), [0, 2, 5, 7]);
  assert.deepEqual(evenSpread(3, 0), [0, 1, 2]);
  assert.deepEqual(evenSpread(3, 5), [0, 1, 2]);
  assert.deepEqual(evenSpread(0, 2), []);
});

test('refitArOnAv: the AR learns the mean h of the rows where the AV writes a word', { skip: SKIP_NO_MODEL, timeout: 120_000 }, async () => {
  const file = modelFile('stories260K.bin');
  const M = (await loadModel(file)).model as Llama;
  const tok = loadTokenizerFor(file);
  const AR = await Reconstructor.fromModel(M, 3, tok, COMPACT_PROMPTS);
  const d = AR.d, n = 24, r = rng(3);
  // Even rows lie near direction u, where the AV writes "the cat"; on odd rows (near v) it writes
  // nothing that parses. Each row's true summary is its own.
  const u = Array.from({ length: d }, () => r() - 0.5), v = Array.from({ length: d }, () => r() - 0.5);
  const h = new Float32Array(n * d);
  for (let k = 0; k < n; k++) for (let j = 0; j < d; j++) h[k * d + j] = (k % 2 ? v : u)[j]! * 10 + (r() - 0.5);
  const summaries = [...Array(n).keys()].map((k) => `"w${k}". Then "x". Text: ... w${k}`);
  const seen: number[][] = [];
  const av = {
    async explain(rows: Float32Array) {
      const ks = [...Array(rows.length / d).keys()].map((i) => [...Array(n).keys()].find((k) => rows[i * d] === h[k * d])!);
      seen.push(ks);
      return ks.map((k): Explained => ({ text: k % 2 ? 'garbage' : '"the cat". Text: ... the cat', explanation: k % 2 ? undefined : '"the cat". Text: ... the cat', tokens: [], logprobs: [], stopped: true }) as Explained);
    },
  } as unknown as Verbalizer;
  const toU = async () => normalizedMseHost(await AR.predictHost(['"the cat". Text: ... the cat']), Float32Array.from(u), d, 0, 0);
  const before = await toU();
  const res = await refitArOnAv(av, AR, { h, summaries }, { rows: 0, steps: 40, batchSize: 8, lr: 3e-3, warmup: 2, clip: 1, seed: 1, maxTokens: 16, explainBatch: 10 });
  assert.deepEqual(res, { explained: n, parsed: n / 2 });
  assert.deepEqual(seen.flat(), [...Array(n).keys()], 'every row explained once, in batches of 10');
  const after = await toU();
  assert.ok(after < before / 2 && after < 0.3, `the AV's "the cat" rebuilt toward u: normalised MSE ${before.toFixed(3)} -> ${after.toFixed(3)}`);
  // A spread of 6 rows: those are the rows explained.
  seen.length = 0;
  const six = await refitArOnAv(av, AR, { h, summaries }, { rows: 6, steps: 1, batchSize: 4, lr: 1e-4, seed: 1, maxTokens: 16 });
  assert.deepEqual(seen.flat(), [0, 4, 8, 12, 16, 20]);
  assert.deepEqual(six, { explained: 6, parsed: 6 });
  // The AV's explanations alone, when none of them parses, leave nothing to fit.
  const odd = [1, 3, 5].map((k) => h.subarray(k * d, (k + 1) * d));
  const oddH = new Float32Array(3 * d);
  odd.forEach((x, j) => oddH.set(x, j * d));
  await assert.rejects(refitArOnAv(av, AR, { h: oddH, summaries: ['a', 'b', 'c'] }, { rows: 0, steps: 1, batchSize: 2, lr: 1e-4, seed: 1, maxTokens: 16, withTrueSummaries: false }), /none of the AV's 3 explanations parsed/);
  AR.model.w.dispose();
  M.w.dispose();
});

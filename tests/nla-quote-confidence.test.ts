// The AV's confidence in its own quotation: which generated tokens count (the opening quotation
// through the token holding its closing mark), and the AUC that says how well it tells the exact
// quotes from the rest, against a pairwise count written apart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { initLlama } from '../src/nn/init.js';
import { Verbalizer } from '../src/nla/av.js';
import { COMPACT_PROMPTS } from '../src/nla/prompts.js';
import { confidenceAuc, quoteConfidenceAuc, quoteLogProb } from '../src/nla/quote-confidence.js';
import { modelFile } from './helpers.js';

const tok = loadTokenizer(modelFile('tok512.bin'));
const M = await initLlama({ arch: 'llama', dim: 16, hiddenDim: 32, nLayers: 1, nHeads: 2, nKvHeads: 2, vocabSize: 512, maxSeqLen: 96, normEps: 1e-5, ropeTheta: 10000, ropeLayout: 'interleaved', tieEmbeddings: true, qkvBias: false, bosId: 1, eosId: 2 } as never, 3);
const av = new Verbalizer(M, tok, COMPACT_PROMPTS, 4);

test('quoteLogProb sums the log-probs of the opening quotation\'s tokens, through the one holding its closing mark', () => {
  for (const [e, quote] of [['"bec". Then "because". Text: ... bec', '"bec"'], ['".". Then "She". Text: ... .', '"."'], ['"bathroom". Lily. Then "and". Text: ... bathroom', '"bathroom"']] as const) {
    const ids = av.targetIds(e);
    const logprobs = ids.map((_, i) => -(i + 1) * 0.25);
    // Independently: the fewest leading ids whose text covers the quotation and its closing mark.
    let k = 1;
    while (av.decode(ids.slice(0, k)).length < quote.length) k++;
    const want = logprobs.slice(0, k).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(quoteLogProb(av, ids, logprobs)! - want) < 1e-12, `${e}: ${quoteLogProb(av, ids, logprobs)} vs ${want} over ${k} ids`);
    assert.ok(k < ids.length, 'the rest of the explanation does not count');
  }
  const plain = av.targetIds('Lily in the park. Then "ball".');
  assert.equal(quoteLogProb(av, plain, plain.map(() => -1)), undefined, 'no opening quotation, no confidence');
  const ids = av.targetIds('"bec". Then "because".');
  assert.equal(quoteLogProb(av, ids, []), undefined, 'a generation that recorded no log-probs');
});

test('confidenceAuc equals the share of (right, wrong) pairs the score orders rightly, ties half', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: -5, max: 5 }), fc.boolean()), { minLength: 1, maxLength: 60 }), (rows) => {
      const score = rows.map(([s]) => s), right = rows.map(([, r]) => r);
      let pairs = 0, won = 0;
      rows.forEach(([a, ra]) => rows.forEach(([b, rb]) => {
        if (ra && !rb) { pairs++; won += a > b ? 1 : a === b ? 0.5 : 0; }
      }));
      const got = confidenceAuc(score, right);
      if (!pairs) return Number.isNaN(got);
      return Math.abs(got - won / pairs) < 1e-12;
    }),
    { numRuns: 300 },
  );
  assert.equal(confidenceAuc([3, 2, 1], [true, true, false]), 1);
  assert.equal(confidenceAuc([1, 2, 3], [true, true, false]), 0);
  assert.throws(() => confidenceAuc([1, 2], [true]), /2 scores for 1 rows/);
});

test('quoteConfidenceAuc ranks an explanation without a quotation as least sure', () => {
  const sure = av.targetIds('"bec". Then "because".'), none = av.targetIds('Then "because".');
  const rows = [{ tokens: sure, logprobs: sure.map(() => -0.1) }, { tokens: sure, logprobs: sure.map(() => -3) }, { tokens: none, logprobs: none.map(() => -0.01) }];
  assert.equal(quoteConfidenceAuc(av, rows, [true, false, false]), 1);
  assert.equal(quoteConfidenceAuc(av, rows, [false, true, true]), 0);
});

// Fact-token weights in the AV warm start (issue 11): the weight lands on exactly the tokens of
// each known value named outside quotations, W = 1 is the old loss bit for bit, the weighted loss
// is sum(w * nll) / sum(w), and its reduction's gradient matches finite differences.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Tokenizer } from '../src/io/tokenizer.js';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { initLlama } from '../src/nn/init.js';
import { Verbalizer, weightedNll } from '../src/nla/av.js';
import { extractClaims } from '../src/nla/claims.js';
import { describeCut, FIELD_VALUES, FIELDS, type Field } from '../src/nla/corpus.js';
import { blankQuotes, factSpans, factTokenWeights, quoteSpan } from '../src/nla/fact-weights.js';
import { DEFAULT_PROMPTS } from '../src/nla/prompts.js';
import { avTokenWeights, rowsOf } from '../src/nla/sft.js';
import { generateWorldStories } from '../src/nla/world.js';
import { checkOp, Nd, property, randomNd } from '../src/testing/property.js';
import * as T from '../src/tensor/index.js';
import { modelFile } from './helpers.js';

/** One token per UTF-16 unit (id = code + 3): token i covers character i of the text. */
const charTok = {
  vocabSize: 0x10003, bosId: 1, eosId: 2,
  encode: (s: string, o?: { bos?: boolean }) => [...(o?.bos ? [1] : []), ...[...s].map((c) => c.charCodeAt(0) + 3)],
  tokenBytes: (_prev: number, id: number) => new TextEncoder().encode(id < 3 ? '' : String.fromCharCode(id - 3)),
} as unknown as Tokenizer;

test('blankQuotes keeps offsets: quotations and the closing words read become spaces', () => {
  const e = '"the red". Lily, a ball. Then "ball". Text: ... the red';
  const b = blankQuotes(e);
  assert.equal(b.length, e.length);
  assert.equal(b, '         . Lily, a ball. Then       . ' + ' '.repeat(e.length - e.indexOf('Text: ...')));
  assert.equal(blankQuotes('a "b c'), 'a     '); // an unclosed quote runs to the end
});

test('factSpans: each known value outside quotations, whole words, its forms; other values and unread facts are not facts', () => {
  const e = '"Lily had a cat". Lily in the park with cats, she shared it. Then "fish". Text: ... a fish';
  const spans = factSpans(e, { name: 'Lily', place: 'park', object: 'cat', event: 'shared' });
  assert.deepEqual(spans.map((s) => [s.field, e.slice(s.start, s.end)]), [['name', 'Lily'], ['place', 'park'], ['object', 'cats'], ['event', 'shared']]);
  assert.equal(spans[0].start, e.indexOf('Lily', 5)); // not the quoted "Lily"
  // A value of the field that is not the known one, and a fact not read, carry no weight.
  assert.deepEqual(factSpans('Tom with a ball.', { name: 'Lily', object: 'ring' }), []);
  // Names keep their capital ("jack" is no name); "scat" is not "cat".
  assert.deepEqual(factSpans('jack saw a scat.', { name: 'Jack', object: 'cat' }), []);
});

test('factSpans agrees with the claim extractor on world summaries: a span for exactly the true claims', () => {
  const stories = generateWorldStories(60, 5);
  let checked = 0;
  for (const s of stories) {
    for (const at of [40, 90, 140, s.text.length - 3]) {
      const cut = describeCut(s, Math.min(at, s.text.length - 1));
      const claims = extractClaims(cut.summary);
      const trueClaims = FIELDS.filter((f) => cut.known[f] !== undefined && claims[f]!.includes(cut.known[f]!)).sort();
      const spanned = [...new Set(factSpans(cut.summary, cut.known).map((x) => x.field))].sort();
      assert.deepEqual(spanned, trueClaims, `summary ${JSON.stringify(cut.summary)} known ${JSON.stringify(cut.known)}`);
      checked += trueClaims.length;
    }
  }
  assert.ok(checked > 100, `only ${checked} claims checked`);
});

// A summary built from parts whose character positions are known: values stated outside quotes
// (facts), values inside quotes (not facts), and filler.
const arbSummary = fc.array(
  fc.record({ kind: fc.constantFrom('fact', 'quoted', 'filler'), field: fc.constantFrom(...FIELDS), pick: fc.nat() }),
  { minLength: 1, maxLength: 8 },
);

test('factTokenWeights (one token per character): W on exactly the characters of each fact word, 1 elsewhere', async () => {
  await property(fc.tuple(arbSummary, fc.double({ min: 1.5, max: 20, noNaN: true })), async ([parts, W]) => {
    const known: Partial<Record<Field, string>> = {};
    let text = '';
    const want: boolean[] = [];
    const add = (s: string, fact: boolean) => {
      text += s;
      for (const _ of s) want.push(fact);
    };
    for (const p of parts) {
      const values = FIELD_VALUES[p.field];
      // One value per field, so no other value of a known field appears.
      const v = (known[p.field] ??= values[p.pick % values.length]);
      if (p.kind === 'fact') add(v, true);
      else if (p.kind === 'quoted') add(`"${v}"`, false);
      else add('and so', false);
      add('. ', false);
    }
    const ids = charTok.encode(text);
    const w = factTokenWeights(charTok, 1, ids, text, factSpans(text, known), W);
    assert.deepEqual(w, want.map((f) => (f ? W : 1)), text);
  });
});

test('quoteSpan: the words of the opening quotation, a fragment\'s dots and a quoted quote mark included; none without one', () => {
  const words = (e: string) => {
    const q = quoteSpan(e);
    return q && e.slice(q.start, q.end);
  };
  assert.equal(words('"very happy bec". Lily. Then "because". Text: ... very happy bec'), 'very happy bec');
  assert.equal(words('"...ck". Then "pocket". Text: ...ck'), '...ck');
  assert.equal(words('""". Then "Let\'s". Text: ... "'), '"');
  assert.equal(words('".". Then "She". Text: ... .'), '.');
  assert.equal(words('"day"'), undefined); // no full stop after it: not the summary format
  assert.equal(words('Lily. Then "ball". Text: ... a'), undefined);
  assert.equal(words('"". Then "a".'), undefined);
});

test('factTokenWeights with the quotation weighted (one token per character): Q on its words, W on facts, 1 elsewhere', async () => {
  await property(fc.tuple(fc.constantFrom('the red', 'bec', '.', '...ck'), fc.constantFrom(...FIELD_VALUES.object), fc.double({ min: 1.5, max: 20, noNaN: true }), fc.double({ min: 1.5, max: 20, noNaN: true })), async ([q, obj, W, Q]) => {
    const text = `"${q}". with a ${obj}. Then "${obj}". Text: ... ${q}`;
    const spans = [...factSpans(text, { object: obj }), { ...quoteSpan(text)!, weight: Q }];
    const w = factTokenWeights(charTok, 1, charTok.encode(text), text, spans, W);
    const objAt = text.indexOf(` ${obj}.`) + 1;
    const want = [...text].map((_, i) => (i >= 1 && i < 1 + q.length ? Q : i >= objAt && i < objAt + obj.length ? W : 1));
    assert.deepEqual(w, want, text);
  });
});

test('factTokenWeights refuses ids that do not decode to the summary (offsets would be wrong)', () => {
  assert.throws(() => factTokenWeights(charTok, 1, charTok.encode('a cat'), 'a dog', [], 3), /decode to "a cat", not the summary "a dog"/);
});

// A tiny random Llama on the real tok512: the loss paths of Verbalizer.sftLoss.
async function tinyAv(): Promise<Verbalizer> {
  const tok = loadTokenizer(modelFile('tok512.bin'));
  const M = await initLlama({ arch: 'llama', dim: 16, hiddenDim: 32, nLayers: 1, nHeads: 2, nKvHeads: 2, vocabSize: 512, maxSeqLen: 96, normEps: 1e-5, ropeTheta: 10000, ropeLayout: 'interleaved', tieEmbeddings: true, qkvBias: false, bosId: 1, eosId: 2 } as never, 7);
  return new Verbalizer(M, tok, DEFAULT_PROMPTS, 4);
}
const summaries = ['"He held the". with a ball. Then "ball". Text: ... He held the', '". Everyone liked". Mia. Then "Mia". Text: ... . Everyone liked', '"in the". Lily in the park. Then "park". Text: ... in the'];
const known = [{ object: 'ball', name: 'Tom' }, { name: 'Mia' }, { name: 'Lily', place: 'park' }];

/** The target pieces of an explanation whose weight is not 1, as "piece:weight" joined by "|". */
function weightedPieces(av: Verbalizer, e: string, k: Partial<Record<Field, string>>, W: number, Q = 1): string {
  const ids = av.targetIds(e), w = av.targetWeights(e, k, W, Q);
  let prev = av.prompt.ids[av.prompt.ids.length - 1];
  return ids.map((id, i) => {
    const s = av.tok.decodeToken(prev, id);
    prev = id;
    return [s, w[i]] as const;
  }).filter(([, x]) => x !== 1).map(([s, x]) => `${s}:${x}`).join('|');
}

test('targetWeights on tok512: W on the pieces of " ball" / " Mia" / " Lily", " park" outside the quotations only', async () => {
  const av = await tinyAv();
  const pieces = (e: string, k: Partial<Record<Field, string>>) => weightedPieces(av, e, k, 5);
  assert.equal(pieces(summaries[0], known[0]), ' b:5|all:5');
  assert.equal(pieces(summaries[1], known[1]), ' M:5|i:5|a:5');
  assert.equal(pieces(summaries[2], known[2]), ' Lily:5| p:5|ar:5|k:5');
  av.model.w.dispose();
});

test('targetWeights with a quote weight on tok512: Q on exactly the pieces of the opening quotation, not on the closing one', async () => {
  const av = await tinyAv();
  const pieces = (e: string, k: Partial<Record<Field, string>>, W: number, Q: number) => weightedPieces(av, e, k, W, Q);
  const quoted = (e: string) => {
    const ids = av.targetIds(e), w = av.targetWeights(e, {}, 1, 3);
    let prev = av.prompt.ids[av.prompt.ids.length - 1], text = '';
    ids.forEach((id, i) => {
      if (w[i] === 3) text += av.tok.decodeToken(prev, id);
      prev = id;
    });
    return text;
  };
  // The weighted pieces spell the quotation (tok512 may merge the opening mark into its first piece).
  assert.match(quoted(summaries[0]), /^"?He held the"?$/);
  assert.match(quoted(summaries[2]), /^"?in the"?$/);
  // With both weights: facts at W, the quotation at Q, and the same text's plain weights without Q.
  const both = pieces(summaries[0], known[0], 5, 3);
  assert.ok(both.endsWith(' b:5|all:5') && /:3/.test(both), both);
  assert.equal(pieces(summaries[0], known[0], 5, 1), ' b:5|all:5');
  assert.equal(avTokenWeights(av, { h: new Float32Array(0), texts: summaries }, undefined, 3)!.length, 3, 'a quote weight needs no facts');
  assert.throws(() => avTokenWeights(av, { h: new Float32Array(0), texts: summaries }, undefined, -1), /quoteWeight: -1 is not a positive number/);
  av.model.w.dispose();
});

test('sftLoss: weights of 1 give the plain loss exactly; weights W give sum(w * nll) / sum(w) of the per-token log-probs', async () => {
  const av = await tinyAv();
  const d = av.d, B = summaries.length;
  const h = Float32Array.from({ length: B * d }, (_, i) => Math.sin(i * 0.37) * 2);
  const read = async (f: () => T.Tensor) => {
    const t = T.noGrad(() => T.tidy(f));
    const v = await t.data();
    t.dispose();
    return v as Float32Array;
  };
  const plain = (await read(() => av.sftLoss(h, summaries)))[0];
  const ones = (await read(() => av.sftLoss(h, summaries, summaries.map((e) => av.targetIds(e).map(() => 1)))))[0];
  assert.equal(ones, plain, 'W = 1 is the old loss, bit for bit');
  // W = 1 through the training path: no weights at all.
  assert.equal(avTokenWeights(av, { h, texts: summaries, known }, 1), undefined);
  const weights = avTokenWeights(av, { h, texts: summaries, known }, 4)!;
  assert.ok(weights.every((w) => w.some((x) => x === 4)), 'every summary has a weighted token');
  const got = (await read(() => av.sftLoss(rowsOf(h, d, [0, 1, 2]), summaries, weights)))[0];
  // Independently: the per-token log-probs, weighted on the host in float64.
  const targets = summaries.map((e) => av.targetIds(e));
  const lp = await read(() => av.completionLogProbs(h, targets).logp);
  // completionLogProbs: logp[b, k] scores target token k of row b (the head skips the prompt).
  const Tm = lp.length / B;
  assert.equal(Tm, Math.max(...targets.map((t) => t.length)));
  let num = 0, den = 0;
  targets.forEach((ids, b) => ids.forEach((_, k) => {
    num -= weights[b][k] * lp[b * Tm + k];
    den += weights[b][k];
  }));
  assert.ok(Math.abs(got - num / den) < 1e-5 * Math.max(1, Math.abs(num / den)), `weighted loss ${got}, host ${num / den}`);
  assert.ok(Math.abs(got - plain) > 1e-3, 'the weights change the loss');
  assert.throws(() => avTokenWeights(av, { h, texts: summaries }, 3), /carry no facts/);
  assert.throws(() => avTokenWeights(av, { h, texts: summaries, known }, 0), /not a positive number/);
  av.model.w.dispose();
});

test('weightedNll: forward against float64 and its gradient wrt the log-probs against finite differences, random shapes and weights', async () => {
  await property(fc.tuple(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 0, max: 1000 })), async ([B, Tm, seed]) => {
    const logp = randomNd([B, Tm], seed, -6, 0);
    // Weights 0 (off target), 1, or a fact weight.
    const w = new Nd([B, Tm], Float64Array.from(randomNd([B, Tm], seed + 1, 0, 3).data, (x) => (x < 1 ? 0 : x < 2 ? 1 : 7)));
    await checkOp({
      name: 'weightedNll',
      inputs: [logp, w],
      grad: [0],
      gpu: ([a, b]) => weightedNll(a, b),
      ref: ([a, b]) => {
        let num = 0, den = 0;
        for (let i = 0; i < a.size; i++) {
          num += a.data[i] * b.data[i];
          den += b.data[i];
        }
        return new Nd([], Float64Array.of(-num / Math.max(den, 1)));
      },
    });
  });
});

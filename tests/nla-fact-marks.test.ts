// Facts marked true or false for the viewer: the facts read at each token of a known-answer
// text (declared as its latents) are exactly the truth the claims are scored against in issue
// 11 (describeCut on the generator's spans), and each claim is marked as scoreClaims counts it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { markClaims, scoreClaims } from '../src/nla/claims.js';
import { cutPoints, describeCut, FIELD_VALUES, FIELDS, generateStories, type Field } from '../src/nla/corpus.js';
import { checkFacts, factSpans, knownPerToken, markExplanation, markScored, parseFactsText } from '../src/nla/fact-marks.js';
import { tokenizeWithOffsets } from '../src/nla/extract.js';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { worldStory } from '../src/nla/world.js';
import { rng } from '../src/util/rng.js';
import { modelFile } from './helpers.js';

test('factSpans from the latents alone find the generators\' own first mentions (world and corpus stories)', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 0, max: 500 }), (seed, i) => {
      const w = worldStory(seed, i);
      assert.deepEqual(factSpans(w.text, w.latents), w.spans);
      const [c] = generateStories(1, seed + i);
      assert.deepEqual(factSpans(c.text, c.latents), c.spans);
    }),
    { numRuns: 200 },
  );
});

test('knownPerToken at a cut = describeCut\'s known facts there (the truth issue 11 scores claims against)', () => {
  const tok = loadTokenizer(modelFile('tok512.bin'));
  const tokenize = (s: string) => tokenizeWithOffsets(tok, s);
  let checked = 0;
  for (let i = 0; i < 40; i++) {
    const story = i % 2 ? worldStory(5, i) : generateStories(1, 100 + i)[0];
    const { offsets } = tokenize(story.text);
    const known = knownPerToken(story.text, offsets, story.latents);
    assert.equal(known.length, offsets.length);
    for (const cut of cutPoints(story, tokenize, 1, rng(i), 6)) {
      assert.deepEqual(known[cut.tokenIndex], cut.known, `story ${i} token ${cut.tokenIndex}`);
      checked++;
    }
    // All six facts are read by the end of every generated story.
    assert.deepEqual(known.at(-1), story.latents);
    assert.deepEqual(known[0], {});
  }
  assert.ok(checked > 200);
});

test('markClaims: true when the one stated value has been read, false for another value, an unread fact or two values; quotations claim nothing', () => {
  const known = { name: 'Lily', place: 'park' };
  assert.deepEqual(markClaims('"girl named". Lily in the park. Then "she".', known, FIELDS), [
    { field: 'name', said: ['Lily'], truth: 'Lily', ok: true },
    { field: 'place', said: ['park'], truth: 'park', ok: true },
  ]);
  assert.deepEqual(markClaims('Tom at the beach with a red ball.', known, ['name', 'place', 'colour']), [
    { field: 'name', said: ['Tom'], truth: 'Lily', ok: false },
    { field: 'place', said: ['beach'], truth: 'park', ok: false },
    { field: 'colour', said: ['red'], truth: undefined, ok: false },
  ]);
  assert.deepEqual(markClaims('Lily and Tom.', known, FIELDS), [{ field: 'name', said: ['Lily', 'Tom'], truth: 'Lily', ok: false }]);
  assert.deepEqual(markClaims('"Tom at the beach". Then "ran". Text: ... Tom', known, FIELDS), []);
  // Only the declared fields are judged.
  assert.deepEqual(markExplanation('Tom with a red ball.', { name: 'Lily' }, { name: 'Lily' }), [{ field: 'name', said: ['Tom'], truth: 'Lily', ok: false }]);
  // An unparseable output (NLA.explain: MSE 2, raw text after "(unparseable) ") states nothing, as scoreClaims counts it.
  assert.deepEqual(markScored({ text: '(unparseable) Tom at the park', mse: 2 }, known, { name: 'Lily' }), []);
  assert.deepEqual(markScored({ text: 'Tom at the park', mse: 0.5 }, known, { name: 'Lily' }), [{ field: 'name', said: ['Tom'], truth: 'Lily', ok: false }]);
});

test('scoreClaims counts exactly the marks (stated = marks, stated true = true marks) on random explanations', () => {
  const value = (f: Field) => fc.constantFrom(...FIELD_VALUES[f]);
  const expl = fc.array(fc.oneof(...FIELDS.map((f) => value(f)), fc.constantFrom('the', 'went', '"', 'Then', '.', 'Text: ...', ',')), { maxLength: 14 }).map((w) => w.join(' '));
  const known = fc.record(Object.fromEntries(FIELDS.map((f) => [f, value(f)])) as Record<Field, fc.Arbitrary<string>>, { requiredKeys: [] });
  fc.assert(
    fc.property(fc.array(fc.tuple(expl, known), { minLength: 1, maxLength: 8 }), (rows) => {
      const rep = scoreClaims(rows.map((r) => r[0]), rows.map((r) => ({ known: r[1], currentWord: '' })));
      const marks = rows.map((r) => markClaims(r[0], r[1]));
      for (const f of FIELDS) {
        const m = marks.flat().filter((x) => x.field === f);
        assert.equal(rep.fields[f].stated, m.length);
        assert.equal(rep.fields[f].statedTrue, m.filter((x) => x.ok).length);
      }
      assert.equal(rep.noFalseClaim, marks.filter((m) => m.every((x) => x.ok)).length / rows.length);
    }),
    { numRuns: 300 },
  );
});

test('declared facts: checked field by field; the serve page\'s "name=Lily place=park" form', () => {
  assert.deepEqual(checkFacts({ name: 'Tom', event: 'broke' }), { name: 'Tom', event: 'broke' });
  assert.throws(() => checkFacts({ name: 'Bob' }, 'x.jsonl:2: facts'), /x\.jsonl:2: facts\.name: "Bob" is not one of Lily, Tom/);
  assert.throws(() => checkFacts({ size: 'big' }), /facts: field "size" is not a known-answer field \(name, place/);
  assert.throws(() => checkFacts([]), /facts: expected an object/);
  assert.throws(() => checkFacts({}), /facts: no facts given/);
  assert.deepEqual(parseFactsText(' name=Lily, place=park '), { name: 'Lily', place: 'park' });
  assert.equal(parseFactsText('   '), undefined);
  assert.throws(() => parseFactsText('name Lily'), /facts: "name" is not field=value/);
  // A declared fact the text never states is never read: a claim of it is false everywhere.
  const text = 'Lily went to the park.';
  const known = knownPerToken(text, [0, 0, 4, 9, 12, 16, 21], { name: 'Lily', colour: 'red' });
  assert.deepEqual(known.at(-1), { name: 'Lily' });
  assert.deepEqual(describeCut({ text, latents: { name: 'Lily' } as never, spans: factSpans(text, { name: 'Lily' }) }, text.length).known, { name: 'Lily' });
});

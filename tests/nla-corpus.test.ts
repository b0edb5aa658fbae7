import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  FIELDS,
  FIELD_VALUES,
  type CutTruth,
  cutPoints,
  describeCut,
  fieldsChance,
  generateStories,
  scoreFields,
} from '../src/nla/corpus.js';
import { rng as seeded } from '../src/util/rng.js';
import { fcRuns } from '../src/testing/runs.js';
import { parseQuote } from '../src/nla/quote-format.js';

// A word-level stand-in for the BPE tokenizer: one token per word or punctuation mark,
// each starting at its leading space, as SentencePiece pieces do.
const wordTokenize = (s: string) => {
  const ids: number[] = [];
  const offsets: number[] = [];
  for (const m of s.matchAll(/\s*([A-Za-z']+|[^\sA-Za-z'])/g)) {
    ids.push(m[1]!.length);
    offsets.push(m.index);
  }
  return { ids, offsets };
};

const wordIn = (text: string, w: string) => new RegExp(`\\b${w}\\b`, 'i').test(text);

test('the seeded rng (mulberry32) is deterministic and uniform in [0, 1)', () => {
  const a = seeded(42);
  const b = seeded(42);
  let sum = 0;
  for (let i = 0; i < 10000; i++) {
    const x = a();
    assert.equal(x, b());
    assert.ok(x >= 0 && x < 1);
    sum += x;
  }
  assert.ok(Math.abs(sum / 10000 - 0.5) < 0.02);
  assert.notEqual(seeded(1)(), seeded(2)());
});

test('generateStories is the same for the same seed and differs across seeds', () => {
  assert.deepEqual(generateStories(30, 7), generateStories(30, 7));
  assert.notDeepEqual(generateStories(30, 7), generateStories(30, 8));
});

test('every latent value is written at its span, and no other value of its field appears', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), (seed) => {
      for (const s of generateStories(5, seed)) {
        const words = s.text.split(/\s+/).length;
        assert.ok(words >= 60 && words <= 120, `${words} words`);
        assert.deepEqual(s.spans.map((p) => p.field).sort(), [...FIELDS].sort());
        for (const { field, start, end } of s.spans) {
          assert.equal(s.text.slice(start, end), s.latents[field]);
          // the span is the first mention
          assert.equal(s.text.search(new RegExp(`\\b${s.latents[field]}\\b`)), start);
          for (const other of FIELD_VALUES[field]) {
            if (other !== s.latents[field]) assert.ok(!wordIn(s.text, other), `${other} in "${s.text}"`);
          }
        }
        // the order a reader expects: name, place, colour, object, emotion, event
        const order = s.spans.map((p) => p.field);
        assert.deepEqual(order, ['name', 'place', 'colour', 'object', 'emotion', 'event']);
      }
    }),
    { numRuns: fcRuns(40) },
  );
});

test('over a corpus every value of every field occurs', () => {
  const stories = generateStories(400, 1);
  for (const f of FIELDS) {
    for (const v of FIELD_VALUES[f]) assert.ok(stories.some((s) => s.latents[f] === v && wordIn(s.text, v)), `${f}=${v}`);
  }
});

test('a cut knows exactly the fields read so far; its summary opens and ends with the last words', () => {
  const stories = generateStories(20, 3);
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 19 }), fc.double({ min: 0.05, max: 1, noNaN: true }), (k, frac) => {
      const s = stories[k]!;
      const endChar = Math.max(1, Math.round(frac * s.text.length));
      const cut = describeCut(s, endChar);
      for (const { field, end } of s.spans) {
        assert.equal(cut.known[field], end <= endChar ? s.latents[field] : undefined);
      }
      assert.ok(cut.summary.startsWith(`"${cut.lastWords}". `) && cut.summary.endsWith(`Text: ... ${cut.lastWords}`.trimEnd()), cut.summary);
      assert.equal(parseQuote(cut.summary), cut.lastWords);
      const read = s.text.slice(0, endChar).replace(/\s+/g, ' ').trim();
      assert.ok(read.endsWith(cut.lastWords), `${cut.lastWords} | ${read}`);
      assert.ok(read.endsWith(cut.currentWord) || /[^A-Za-z]$/.test(read));
      assert.ok(cut.summary.split(/\s+/).length <= 26, cut.summary); // 20 words and the words read again
      // the target explanation states every known fact correctly
      const sc = scoreFields(cut.summary, cut, FIELDS);
      assert.equal(sc.correct, sc.total, `${cut.summary} ${JSON.stringify(sc.perField)}`);
    }),
    { numRuns: fcRuns(200) },
  );
});

test('at every cut of 30 stories the summary states every known fact correctly', () => {
  for (const s of generateStories(30, 4)) {
    for (let endChar = 1; endChar <= s.text.length; endChar++) {
      const cut = describeCut(s, endChar);
      const sc = scoreFields(cut.summary, cut, FIELDS);
      assert.equal(sc.correct, sc.total, `${cut.summary} ${JSON.stringify(sc.perField)}`);
    }
  }
});

test('describeCut on a hand-picked position', () => {
  const s = generateStories(1, 5)[0]!;
  const objectSpan = s.spans.find((p) => p.field === 'object')!;
  const cut = describeCut(s, objectSpan.end);
  const { name, place, colour, object } = s.latents;
  assert.deepEqual(cut.known, { name, place, colour, object });
  assert.equal(cut.currentWord, object);
  assert.ok(cut.lastWords.endsWith(`${colour} ${object}`));
  const prep = place === 'beach' ? 'at' : 'in';
  assert.equal(cut.summary, `"${cut.lastWords}". ${name} ${prep} the ${place} with a ${colour} ${object}. Then "${cut.nextWord}". Text: ... ${cut.lastWords}`);
  const end = describeCut(s, s.spans.find((p) => p.field === 'event')!.end);
  assert.ok(end.summary.includes(`, ${s.latents.emotion}, `), end.summary);
  assert.ok(end.summary.includes(s.latents.event), end.summary);
  // inside a word: the partial word is the current word, the whole word is what comes next
  const mid = describeCut(s, objectSpan.start + 2);
  assert.equal(mid.currentWord, object.slice(0, 2));
  assert.equal(mid.nextWord, object);
  assert.equal(mid.known.object, undefined);
});

test('cutPoints: distinct positions at or after minTokens, deterministic by rng', () => {
  const s = generateStories(1, 9)[0]!;
  const n = wordTokenize(s.text).ids.length;
  const a = cutPoints(s, wordTokenize, 20, seeded(1), 5);
  const b = cutPoints(s, wordTokenize, 20, seeded(1), 5);
  assert.deepEqual(a, b);
  assert.equal(new Set(a.map((c) => c.tokenIndex)).size, 5);
  for (const c of a) {
    assert.ok(c.tokenIndex >= 20 && c.tokenIndex < n);
    assert.equal(c.ids.length, c.tokenIndex + 1);
  }
  assert.deepEqual(cutPoints(s, wordTokenize, n, seeded(1), 3), []);
});

test('scoreFields: correct, wrong-value, ambiguous and unknown fields', () => {
  const truth: CutTruth = { known: { name: 'Lily', place: 'park', object: 'ball', colour: 'red' }, currentWord: 'red' };
  const good = scoreFields('Words: "the big red". Story: Lily at the park with a red ball.', truth);
  assert.deepEqual(good, {
    correct: 4,
    total: 4,
    perField: { name: true, place: true, object: true, currentWord: true },
  });
  // a wrong name, an object named next to another, emotion not yet known (not counted)
  const bad = scoreFields('Tom plays at the parks with a ball and a kite. He is happy.', truth);
  assert.deepEqual(bad.perField, { name: false, place: true, object: false, currentWord: false });
  assert.equal(bad.correct, 1);
  assert.equal(bad.total, 4);
  // "hat" inside "that" is not a mention of the object hat
  const hat = scoreFields('Lily saw that', { known: { name: 'Lily', object: 'hat' }, currentWord: '' });
  assert.deepEqual(hat.perField, { name: true, object: false });
  // the event counts through its verb forms when asked for
  const ev = scoreFields('she will find it', { known: { event: 'found' }, currentWord: 'it' }, ['event']);
  assert.deepEqual(ev.perField, { event: true, currentWord: true });
  assert.equal(scoreFields('she finds it and breaks it', { known: { event: 'found' }, currentWord: '' }, ['event']).correct, 0);
});

test('fieldsChance is 1/choices per known field, pooled like scoreFields', () => {
  const truths: CutTruth[] = [
    { known: { name: 'Lily', place: 'park' }, currentWord: 'park' },
    { known: { name: 'Tom', emotion: 'sad', colour: 'red' }, currentWord: 'sad' },
  ];
  const c = fieldsChance(truths);
  // name 1/8 twice, place 1/6, emotion 1/4, current word 1/2 twice (2 distinct words); colour not scored
  const expected = 2 / 8 + 1 / 6 + 1 / 4 + 2 / 2;
  assert.equal(c.total, 6);
  assert.ok(Math.abs(c.expectedCorrect - expected) < 1e-12);
  assert.ok(Math.abs(c.rate - expected / 6) < 1e-12);
  const noWord = fieldsChance(truths, ['name'], false);
  assert.deepEqual(noWord, { expectedCorrect: 0.25, total: 2, rate: 0.125 });
  // a random guesser's measured score matches the expected chance
  const rng = seeded(11);
  const stories = generateStories(300, 2);
  const cuts = stories.map((s) => describeCut(s, Math.floor(s.text.length * 0.7)));
  let correct = 0;
  let total = 0;
  for (const cut of cuts) {
    const guess = FIELDS.map((f) => FIELD_VALUES[f][Math.floor(rng() * FIELD_VALUES[f].length)]).join(' ');
    const sc = scoreFields(guess, cut, undefined, false);
    correct += sc.correct;
    total += sc.total;
  }
  const chance = fieldsChance(cuts, undefined, false);
  assert.equal(total, chance.total);
  assert.ok(Math.abs(correct / total - chance.rate) < 0.05, `${correct / total} vs ${chance.rate}`);
});

// Summaries of cuts of text without latents (src/nla/text-summary.ts) with the real tok512
// tokenizer: the quote is exactly the decoded text ending at the cut, the next word comes from
// the rest of the document, the facts are the generator's vocabulary read off the text so far.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { loadTokenizer, type Tokenizer } from '../src/io/tokenizer.js';
import { FIELD_VALUES, cutPoints, describeCut, generateStories, wordUnits, type Latents } from '../src/nla/corpus.js';
import { rng } from '../src/util/rng.js';
import { tokenizeWithOffsets } from '../src/nla/extract.js';
import { decodeDoc, decodePieces, describeTextCut, parseTextSummary, renderFacts, textFacts } from '../src/nla/text-summary.js';
import { quoteRow } from '../src/nla/quotes.js';
import { parseQuote } from '../src/nla/quote-format.js';
import { fcRuns } from '../src/testing/runs.js';
import { modelFile, SKIP_NO_MODEL } from './helpers.js';

let tokCache: Tokenizer | undefined;
const tok = () => (tokCache ??= loadTokenizer(modelFile('tok512.bin')));
const norm = (s: string) => s.replace(/\s+/g, ' ').trim();

// TinyStories-like text written for this test (not from the generator): dialogue, newlines,
// apostrophes, names outside the vocabulary, plurals, a capitalised "Jack" and "Tim" inside
// longer words ("Timmy"; "jack" must be capitalised to count).
const HANDWRITTEN = [
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball.',
  'Tom and his dog Spot went to the beach. "Look, Mom!" Tom said. "I found two shells and a box!" Mom smiled because the sun was warm.',
  'Timmy had many balls and kites.\nHe liked the garden best.\n\nOne day Mia came to play, and they ate fish under the trees.',
  'Sue\'s cat was scared of the rain. It hid in the house, behind a chair. "Don\'t be sad," said Ben. "The rain will stop soon."',
  'The little bird could not fly. Jack wanted to help, so he made a tiny nest in a hat and kept it warm all night.',
];

const texts = () => [...HANDWRITTEN, ...generateStories(3, 7).map((s) => s.text)];

test('describeTextCut: a known cut, written as documented', { skip: SKIP_NO_MODEL }, () => {
  const t = tok();
  const text = 'Lily and Tom went to the park with a ball. They were very happy because';
  const ids = t.encode(text, { bos: true });
  // Find the token where the context first ends inside "because" (after "bec" or similar).
  const { offsets } = tokenizeWithOffsets(t, text);
  const start = text.indexOf('because');
  const i = offsets.findIndex((o, k) => k > 0 && (offsets[k + 1] ?? text.length) > start && (offsets[k + 1] ?? text.length) < start + 7);
  assert.ok(i > 0, 'some token ends inside "because"');
  const cut = describeTextCut(t, ids, i);
  const partial = text.slice(start, offsets[i + 1]);
  assert.equal(cut.lastWords, `very happy ${partial}`);
  assert.equal(cut.currentWord, partial);
  assert.equal(cut.nextWord, 'because');
  assert.deepEqual(cut.facts, { names: ['Lily', 'Tom'], places: ['park'], objects: ['ball'] });
  assert.equal(cut.summary, `"very happy ${partial}". Lily and Tom, park, ball. Then "because". Text: ... very happy ${partial}`);
  assert.equal(parseQuote(cut.summary), cut.lastWords);

  // The last token: no next word.
  const end = describeTextCut(t, ids, ids.length - 1);
  assert.equal(end.nextWord, '');
  assert.equal(end.summary, '"very happy because". Lily and Tom, park, ball. Text: ... very happy because');
  // BOS alone: nothing read.
  const bos = describeTextCut(t, ids, 0);
  assert.equal(bos.lastWords, '');
  assert.equal(bos.currentWord, '');
  assert.equal(bos.nextWord, 'Lily');
  assert.equal(bos.summary, '"". Then "Lily". Text: ...');
  assert.throws(() => describeTextCut(t, ids, ids.length), RangeError);
  assert.throws(() => describeTextCut(t, ids, -1), RangeError);
});

test('describeTextCut: every cut of several texts quotes a suffix of the context ending at the cut', { skip: SKIP_NO_MODEL }, () => {
  const t = tok();
  for (const text of texts()) {
    const { ids, offsets } = tokenizeWithOffsets(t, text);
    assert.equal(t.decode(ids), text, 'tok512 round-trips the test texts');
    for (let i = 0; i < ids.length; i++) {
      const cut = describeTextCut(t, ids, i);
      const endChar = offsets[i + 1] ?? text.length;
      const context = text.slice(0, endChar);
      assert.equal(cut.context, context, `context of cut ${i}`);
      const ctx = norm(context);
      // The quote is a suffix of the (whitespace-normalised) context: it ends where the cut ends
      // and every word in it is the text's own, cut where the text is cut.
      assert.ok(ctx.endsWith(cut.lastWords), `quote ${JSON.stringify(cut.lastWords)} ends ${JSON.stringify(ctx.slice(-40))}`);
      if (ctx) assert.ok(cut.lastWords.length > 0);
      const before = ctx[ctx.length - cut.lastWords.length - 1];
      assert.ok(before === undefined || before === ' ' || !/[A-Za-z]/.test(before) || !/^[A-Za-z]/.test(cut.lastWords), 'the quote starts at a word boundary');
      assert.ok(!cut.lastWords.includes('". '));
      assert.equal(parseQuote(cut.summary), cut.lastWords, `summary ${cut.summary}`);
      assert.equal(quoteRow(cut.summary, context).exact, true, 'a summary\'s own quote is exact');
      assert.deepEqual(quoteRow(cut.summary, context).inventedNames, [], 'a summary names no character the text lacks');
      // The next word: the rest of the current word's unit, or the next unit, from the whole text.
      const rest = text.slice(endChar);
      // Inside a word unit ("Sue|'s" is inside "Sue's"); the facts leave out only letters the
      // word goes on with ("Tim|my").
      const unit = wordUnits(text).find((u) => u.start < endChar && u.end > endChar);
      const inside = /[A-Za-z]$/.test(context) && /^[A-Za-z]/.test(rest);
      // At most lastWordCount word units of the text (a cut unit counted whole: "Don'" of "Don't" is one).
      assert.ok(wordUnits(cut.lastWords + (unit ? text.slice(endChar, unit.end) : '')).length <= 3);
      if (unit) {
        assert.equal(cut.nextWord, text.slice(unit.start, unit.end));
        assert.ok(cut.nextWord.startsWith(cut.currentWord), `${cut.nextWord} completes ${cut.currentWord}`);
        assert.ok(text.slice(endChar - cut.currentWord.length).startsWith(cut.nextWord));
        assert.ok(cut.nextWord.length > cut.currentWord.length);
      } else if (rest.trim()) {
        assert.ok(rest.trimStart().startsWith(cut.nextWord), `next ${JSON.stringify(cut.nextWord)} starts ${JSON.stringify(rest.slice(0, 20))}`);
        assert.ok(cut.nextWord.length > 0);
      } else {
        assert.equal(cut.nextWord, '');
      }
      // The facts: vocabulary words of the complete words read so far, in order of first occurrence.
      const complete = inside ? context.replace(/[A-Za-z]+$/, '') : context;
      const words = complete.match(/[A-Za-z]+/g) ?? [];
      assert.deepEqual(cut.facts.names, [...new Set(words.filter((w) => (FIELD_VALUES.name as readonly string[]).includes(w)))]);
      const base = (w: string, vocab: readonly string[]) => vocab.find((v) => [v, v + 's', v + 'es'].includes(w.toLowerCase()));
      const firstOf = (vocab: readonly string[]) => [...new Set(words.map((w) => base(w, vocab)).filter((v): v is string => !!v))];
      assert.deepEqual(cut.facts.places, firstOf(FIELD_VALUES.place));
      assert.deepEqual(cut.facts.objects, firstOf(FIELD_VALUES.object));
      assert.deepEqual(parseTextSummary(cut.summary), { lastWords: cut.lastWords, facts: cut.facts, nextWord: cut.nextWord }, `read back ${cut.summary}`);
      const factText = renderFacts(cut.facts);
      assert.equal(cut.summary, [`"${cut.lastWords}".`, factText ? `${factText}.` : '', cut.nextWord ? `Then "${cut.nextWord}".` : '', `Text: ... ${cut.lastWords}`.trimEnd()].filter(Boolean).join(' '));
    }
  }
});

test('describeTextCut: "Tim" of "Timmy" is no name, and facts of hand-written text', { skip: SKIP_NO_MODEL }, () => {
  const t = tok();
  const text = HANDWRITTEN[2]!;
  const { ids } = tokenizeWithOffsets(t, text);
  const last = describeTextCut(t, ids, ids.length - 1);
  assert.deepEqual(last.facts, { names: ['Mia'], places: ['garden'], objects: ['ball', 'kite', 'fish'] });
  assert.equal(renderFacts(last.facts), 'Mia, garden, ball, kite, fish');
  assert.deepEqual(textFacts('Tom, Lily and Jack saw Tim. tim and jack are not names.').names, ['Tom', 'Lily', 'Jack', 'Tim']);
  assert.equal(renderFacts({ names: ['Tom', 'Lily', 'Jack'], places: [], objects: ['dog'] }), 'Tom, Lily and Jack, dog');
  assert.equal(renderFacts({ names: [], places: [], objects: [] }), '');
});

test('describeTextCut: on generator stories, the quote and next word agree with describeCut', { skip: SKIP_NO_MODEL }, () => {
  const t = tok();
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 1e6 }), fc.nat(), (seed, k) => {
      const story = generateStories(1, seed)[0]!;
      const { ids, offsets } = tokenizeWithOffsets(t, story.text);
      const i = 1 + (k % (ids.length - 1));
      const endChar = offsets[i + 1] ?? story.text.length;
      const ref = describeCut(story, endChar);
      const cut = describeTextCut(t, ids, i);
      assert.equal(cut.lastWords, ref.lastWords);
      assert.equal(cut.nextWord, ref.nextWord);
      assert.equal(cut.currentWord, ref.currentWord);
      // The facts read off the text include every known name/place/object latent.
      if (ref.known.name) assert.ok(cut.facts.names.includes(ref.known.name));
      if (ref.known.place) assert.ok(cut.facts.places.includes(ref.known.place));
      if (ref.known.object) assert.ok(cut.facts.objects.includes(ref.known.object));
    }),
    { numRuns: fcRuns(200) },
  );
});

test('describeTextCut: random texts and cuts, the quote is always the context\'s own words', { skip: SKIP_NO_MODEL }, () => {
  const t = tok();
  const word = fc.constantFrom('Lily', 'Tom', 'the', 'park', 'balls', 'because', 'happy', 'Timmy', 'said', 'Mom', "didn't", 'kite', 'a', 'up');
  const sep = fc.constantFrom(' ', ' ', ' ', ', ', '. ', '\n', '! "', '" ', '."\n', ' - ', '  ');
  const textArb = fc.array(fc.tuple(word, sep), { minLength: 1, maxLength: 25 }).map((xs) => xs.map(([w, s]) => w + s).join('').trim());
  fc.assert(
    fc.property(textArb, fc.nat(), fc.integer({ min: 1, max: 6 }), (text, k, n) => {
      fc.pre(text.length > 0);
      const { ids, offsets } = tokenizeWithOffsets(t, text);
      const i = k % ids.length;
      const cut = describeTextCut(t, ids, i, { lastWordCount: n });
      const context = text.slice(0, i === 0 ? 0 : (offsets[i + 1] ?? text.length));
      assert.equal(cut.context, context);
      assert.ok(norm(context).endsWith(cut.lastWords));
      assert.equal(parseQuote(cut.summary), cut.lastWords);
      assert.ok(quoteRow(cut.summary, context).exact);
      for (const name of cut.facts.names) assert.match(context, new RegExp(`\\b${name}\\b`));
    }),
    { numRuns: fcRuns(300) },
  );
});

test('describeTextCut: latent facts only where they exist; a shared decoded document; non-ASCII text', { skip: SKIP_NO_MODEL }, () => {
  const t = tok();
  const story = generateStories(1, 3)[0]!;
  const { ids, offsets } = tokenizeWithOffsets(t, story.text);
  const doc = decodeDoc(t, ids);
  for (let i = 1; i < ids.length; i += 5) {
    const endChar = offsets[i + 1] ?? story.text.length;
    const ref = describeCut(story, endChar);
    const plain = describeTextCut(t, ids, i);
    assert.deepEqual(describeTextCut(t, ids, i, { doc }), plain, 'the decoded document changes nothing');
    const withLatents = describeTextCut(t, ids, i, { doc, known: ref.known, latentName: story.latents.name });
    const k: Partial<Latents> = ref.known;
    const extra = [k.colour, k.emotion, k.event && (k.event === 'broke' ? 'it broke' : `${['Lily', 'Mia', 'Sue', 'Anna'].includes(story.latents.name) ? 'she' : 'he'} ${k.event} it`)].filter(Boolean);
    const facts = [renderFacts(plain.facts), ...extra].filter(Boolean).join(', ');
    assert.equal(withLatents.summary, [`"${plain.lastWords}".`, facts ? `${facts}.` : '', plain.nextWord ? `Then "${plain.nextWord}".` : '', `Text: ... ${plain.lastWords}`.trimEnd()].filter(Boolean).join(' '));
    // The parser still reads the quote, the text's facts and the next word.
    assert.deepEqual(parseTextSummary(withLatents.summary), { lastWords: plain.lastWords, facts: plain.facts, nextWord: plain.nextWord });
  }
  assert.throws(() => describeTextCut(t, ids, 1, { doc: decodeDoc(t, ids.slice(1)) }), /pieces/);

  // Curly quotes and an accent are byte-fallback pieces in tok512: the context is the per-token
  // decoding (as extract.ts's offsets count it), and the quote is still its suffix.
  const text = 'Lily said, \u201cI love caf\u00e9 fish!\u201d Tom\u2019s dog ran.';
  const enc = t.encode(text, { bos: true });
  const ps = decodePieces(t, enc);
  for (let i = 0; i < enc.length; i++) {
    const cut = describeTextCut(t, enc, i, { doc: decodeDoc(t, enc) });
    assert.equal(cut.context, ps.slice(0, i + 1).join(''));
    assert.ok(norm(cut.context!).endsWith(cut.lastWords));
    assert.equal(parseQuote(cut.summary), cut.lastWords);
  }
  const last = describeTextCut(t, enc, enc.length - 1, { doc: decodeDoc(t, enc) });
  assert.deepEqual(last.facts, { names: ['Lily', 'Tom'], places: [], objects: ['fish', 'dog'] });
});

test('describeTextCut: factsWindow states only the facts of the last n word units read', { skip: SKIP_NO_MODEL }, () => {
  const t = tok();
  // Word units counted by hand: "... in the park . Then Tom found a ball" ends with the 6 units
  // "Then Tom found a ball" preceded by "."; Lily and the park lie further back.
  const text = 'Lily played in the park. Then Tom found a ball';
  const ids = t.encode(text, { bos: true });
  const end = ids.length - 1;
  const all = describeTextCut(t, ids, end);
  assert.deepEqual(all.facts, { names: ['Lily', 'Tom'], places: ['park'], objects: ['ball'] });
  assert.deepEqual(describeTextCut(t, ids, end, { factsWindow: 5 }).facts, { names: ['Tom'], places: [], objects: ['ball'] });
  assert.deepEqual(describeTextCut(t, ids, end, { factsWindow: 7 }).facts, { names: ['Tom'], places: ['park'], objects: ['ball'] });
  assert.deepEqual(describeTextCut(t, ids, end, { factsWindow: 1 }).facts, { names: [], places: [], objects: ['ball'] });
  const none = describeTextCut(t, ids, end, { factsWindow: 0 });
  assert.deepEqual(none.facts, { names: [], places: [], objects: [] });
  assert.equal(none.summary, `"${all.lastWords}". Text: ... ${all.lastWords}`, 'no facts and no next word: the words read, twice');
  // A window larger than the text is the whole text.
  assert.deepEqual(describeTextCut(t, ids, end, { factsWindow: 1000 }).facts, all.facts);
});

test('describeTextCut quote "token": the last token read, "...ck" inside a word, the same as describeCut on stories', { skip: SKIP_NO_MODEL }, () => {
  const t = tok();
  const word = fc.constantFrom('Lily', 'Tom', 'the', 'pocket', 'balls', 'because', 'happy', 'Timmy', 'said', 'chimney', "didn't", 'kite', 'a', 'up');
  const sep = fc.constantFrom(' ', ' ', ', ', '. ', '\n', '! "', '" ', '  ');
  const textArb = fc.array(fc.tuple(word, sep), { minLength: 1, maxLength: 20 }).map((xs) => xs.map(([w, s]) => w + s).join('').trim());
  let fragments = 0, words = 0;
  fc.assert(
    fc.property(textArb, fc.nat(), (text, k) => {
      fc.pre(text.length > 0);
      const { ids, offsets } = tokenizeWithOffsets(t, text);
      const i = 1 + (k % Math.max(ids.length - 1, 1));
      fc.pre(i < ids.length);
      const cut = describeTextCut(t, ids, i, { quote: 'token', lastWordCount: 1 });
      const start = offsets[i]!, end = offsets[i + 1] ?? text.length;
      const piece = text.slice(start, end);
      if (piece.trim() === '') {
        // A whitespace token quotes the last word unit instead, as quote "words" does.
        assert.equal(cut.lastWords, describeTextCut(t, ids, i, { lastWordCount: 1 }).lastWords);
      } else {
        assert.equal(cut.lastWords, piece.replace(/\s+/g, ' ').trim());
        const inside = /[A-Za-z]/.test(text[start - 1] ?? '') && /[A-Za-z]/.test(text[start]!);
        assert.equal(cut.fragment, inside);
        if (inside) fragments++;
        else words++;
        assert.ok(cut.summary.startsWith(`"${inside ? '...' : ''}${cut.lastWords}".`));
        assert.ok(cut.summary.endsWith(inside ? `Text: ...${cut.lastWords}` : `Text: ... ${cut.lastWords}`));
      }
      const q = quoteRow(cut.summary, cut.context!);
      assert.ok(q.exact, `${JSON.stringify(cut.summary)} quotes ${JSON.stringify(cut.context)}`);
      assert.equal(q.fragment, cut.fragment);
    }),
    { numRuns: fcRuns(300) },
  );
  assert.ok(fragments > 0 && words > 0, `both kinds drawn (${fragments} fragments, ${words} words)`);
  // On generator stories describeCut (through cutPoints' token offsets) writes the same summary.
  for (let seed = 0; seed < 20; seed++) {
    const story = generateStories(1, seed)[0]!;
    const ids = t.encode(story.text, { bos: true });
    for (const c of cutPoints(story, (s) => tokenizeWithOffsets(t, s), 5, rng(seed), 4, { quote: 'token', lastWordCount: 1 })) {
      const mine = describeTextCut(t, ids, c.tokenIndex, { quote: 'token', lastWordCount: 1 });
      assert.equal(c.lastWords, mine.lastWords);
      assert.equal(parseQuote(c.summary), mine.lastWords);
      assert.equal(c.summary.endsWith(`Text: ...${mine.lastWords}`), mine.fragment);
    }
  }
});

test('describeTextCut at every cut against a plain reading of the documented rules (the units read filtered per cut)', { skip: SKIP_NO_MODEL }, () => {
  const t = tok();
  for (const text of texts()) {
    const ids = t.encode(text, { bos: true });
    const pieces = decodePieces(t, ids);
    const doc = decodeDoc(t, ids);
    for (let i = 0; i < ids.length; i++) {
      // The reference: the context is the pieces up to i; the units read are those of the whole
      // decoded text that start before its end; the quote is the last n of them cut at the end.
      const context = pieces.slice(0, i + 1).join('');
      const whole = pieces.join('');
      const units = wordUnits(whole);
      const read = units.filter((u) => u.start < context.length);
      for (const n of [1, 3]) {
        const tail = read.slice(-n);
        const want = tail.length ? whole.slice(tail[0]!.start, context.length).replace(/\s+/g, ' ').trim() : '';
        const got = describeTextCut(t, ids, i, { lastWordCount: n, doc, factsWindow: 2 });
        assert.equal(got.lastWords, want, `cut ${i}, ${n} units`);
        assert.equal(got.context, context);
        const alpha = [...read].reverse().find((u) => u.alpha);
        assert.equal(got.currentWord, alpha ? whole.slice(alpha.start, Math.min(alpha.end, context.length)) : '');
        const last = read.at(-1);
        const next = last && last.end > context.length ? last : units.find((u) => u.start >= context.length);
        assert.equal(got.nextWord, next ? whole.slice(next.start, next.end) : '');
        // factsWindow 2: the facts of the last two units read, complete words only.
        const win = context.slice(read.at(-2)?.start ?? 0);
        assert.deepEqual(got.facts, textFacts(/[A-Za-z]/.test(whole[context.length] ?? '') ? win.replace(/[A-Za-z]+$/, '') : win));
      }
    }
  }
});

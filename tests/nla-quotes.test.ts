// Quote accuracy (src/nla/quotes.ts) on constructed explanations: a correct quote, a misquote,
// a quote completing or stopping before the cut word, an invented name, an unparseable one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { quoteAccuracy, quoteRow } from '../src/nla/quotes.js';
import { parseQuote, parseQuoteParts, renderQuote, renderSummary, tokenQuote } from '../src/nla/quote-format.js';
import { fcRuns } from '../src/testing/runs.js';

const CONTEXT = 'Lily and Tom went to the park with a ball. They were very happy bec';

test('parseQuote: everything after the first `Text: ...`, to the end', () => {
  assert.equal(parseQuote('Lily and Tom, park, ball. Then "because". Text: ... very happy bec'), 'very happy bec');
  assert.equal(parseQuote('Lily. Then "Lily". Text: ... said, "Hi". Lily'), 'said, "Hi". Lily');
  assert.equal(parseQuote('Text: ... the park.'), 'the park.');
  assert.equal(parseQuote('Then "Once". Text: ...'), '');
  assert.equal(parseQuote('Text: ...   a  b  '), 'a  b');
  assert.equal(parseQuote('Text: ... one Text: ... two'), 'one Text: ... two');
  assert.equal(parseQuote('no quote here "happy"'), undefined);
  assert.equal(parseQuote('Text: .. almost'), undefined);
  // renderQuote writes what parseQuote reads, whitespace runs as one space.
  for (const w of ['very happy bec', 'said, "Hi". Lily', '', ' a\n\nb ']) assert.equal(parseQuote(`Lily. ${renderQuote(w)}`), w.replace(/\s+/g, ' ').trim());
  assert.equal(renderQuote('  a\n b'), 'Text: ... a b');
  assert.equal(renderQuote(''), 'Text: ...');
});

test('quoteAccuracy: constructed explanations, asserted values', () => {
  const explanations: (string | undefined)[] = [
    'Lily and Tom, park, ball. Then "because". Text: ... very happy bec', // 0 correct
    'Lily and Tom, park. Then "because". Text: ... very sad bec', // 1 misquote
    'Lily, park. Then "because". Text: ... very happy because', // 2 completes the cut word
    'Lily. Then "because". Text: ... very happy be', // 3 a shorter cut of the cut word
    'Lily. Text: ... very happy', // 4 stops before the cut word
    'Lily. Text: ... very happy sad', // 5 a different last word
    'Lily and Mia, park. Then "because". Text: ... very happy bec', // 6 invents Mia
    'Then "because". Text: ... ery happy bec', // 7 starts inside a word
    undefined, // 8 unparseable (never closed)
    'Lily and Tom in the park.', // 9 no quote
    'Jack and Ben. Then "Sue". Text: ... happy bec', // 10 invents Jack and Ben; Sue only as the next word
    'Lily. Text: ...  very\nhappy   bec ', // 11 whitespace differs
  ];
  const res = quoteAccuracy(explanations, explanations.map(() => CONTEXT));
  const rows = res.rows;
  assert.deepEqual(
    rows.map((r) => [r.exact, r.ignoringCutWord]),
    [
      [true, true],
      [false, false],
      [false, true],
      [false, true],
      [false, true],
      [false, false],
      [true, true],
      [false, false],
      [false, false],
      [false, false],
      [true, true],
      [true, true],
    ],
  );
  assert.equal(rows[0]!.quoted, 'very happy bec');
  assert.equal(rows[8]!.quoted, undefined);
  assert.equal(rows[8]!.unparseable, true);
  assert.equal(rows[9]!.quoted, undefined);
  assert.equal(rows[9]!.unparseable, false);
  assert.deepEqual(rows[6]!.inventedNames, ['Mia']);
  assert.deepEqual(rows[10]!.inventedNames, ['Jack', 'Ben']);
  assert.deepEqual(quoteRow(explanations[10], CONTEXT, { countNextWord: true }).inventedNames, ['Jack', 'Ben', 'Sue']);
  for (const i of [0, 1, 2, 3, 4, 5, 7, 8, 9, 11]) assert.deepEqual(rows[i]!.inventedNames, [], `row ${i}`);
  assert.equal(res.n, 12);
  assert.equal(res.quoteExact, 4 / 12);
  assert.equal(res.quoteLoose, 7 / 12);
  assert.equal(res.inventedNameRate, 2 / 12);
  assert.equal(res.unparseable, 1);
  assert.equal(res.noQuote, 1);
});

test('quoteAccuracy: names are capitalised whole words; contexts ending in a word or not', () => {
  // "tim" and "Timmy" are not the name Tim; a context with Tim makes Tim no invention.
  assert.deepEqual(quoteRow('Tim. Text: ... a', 'Timmy had a').inventedNames, ['Tim']);
  assert.deepEqual(quoteRow('tim and timmy. Text: ... a', 'Timmy had a').inventedNames, []);
  assert.deepEqual(quoteRow('Tim. Text: ... a', 'Tim had a').inventedNames, []);
  // A name quoted wrongly is invented too: the quote is a claim about the text.
  assert.deepEqual(quoteRow('Text: ... Mia had a', 'Tim had a').inventedNames, ['Mia']);
  // A context ending in punctuation has no cut word: loose is exact.
  const r = quoteRow('Lily. Text: ... the park', 'Lily went to the park.');
  assert.deepEqual([r.exact, r.ignoringCutWord], [false, false]);
  const s = quoteRow('Lily. Text: ... the park.', 'Lily went to the park.');
  assert.deepEqual([s.exact, s.ignoringCutWord], [true, true]);
  // Empty quotes and contexts.
  assert.equal(quoteRow('Then "Once". Text: ...', '').exact, true);
  assert.equal(quoteRow('Then "Once". Text: ...', 'Once').exact, false);
  assert.equal(quoteRow('Then "Once". Text: ...', 'Once').ignoringCutWord, true);
  assert.deepEqual(quoteAccuracy([], []), { rows: [], n: 0, quoteExact: 0, quoteLoose: 0, inventedNameRate: 0, fragmentRate: 0, unparseable: 0, noQuote: 0 });
  assert.throws(() => quoteAccuracy(['Text: ... a'], []), /1 explanations but 0 contexts/);
});

test('quoteAccuracy: any suffix of the context starting at a word is exact; changing its last word is not', () => {
  const word = fc.constantFrom('Lily', 'the', 'park', 'happy', 'because', 'ball', 'a', 'big', 'red');
  const sep = fc.constantFrom(' ', ', ', '. ', '\n', ' "', '" ');
  fc.assert(
    fc.property(fc.array(fc.tuple(word, sep), { minLength: 2, maxLength: 12 }), word, fc.nat(), fc.nat(), (xs, other, k, cut) => {
      const words = xs.map(([w]) => w);
      const context = xs.map(([w, s]) => w + s).join('') + words[0]; // ends in a word
      const all = context.split(/(?<=[^A-Za-z])(?=[A-Za-z])/); // pieces starting at words
      const from = k % all.length;
      const quote = all.slice(from).join('');
      assert.equal(quoteRow(`Then "x". Text: ... ${quote}`, context).exact, true);
      // Cutting the last word shorter (the cut word read further than quoted) is loose, not exact.
      const last = words[0]!;
      const n = 1 + (cut % last.length);
      if (n < last.length) {
        const shorter = quote.slice(0, quote.length - last.length + n);
        const r = quoteRow(`Text: ... ${shorter}`, context);
        assert.deepEqual([r.exact, r.ignoringCutWord], [false, true]);
      }
      // Another last word that is not prefix-compatible is neither (unless the wrong quote happens
      // to be the text just before the cut word: "the" for "Lily the Lily" stops before it).
      const wrong = quote.slice(0, quote.length - last.length) + other;
      // Compared as the scorer compares: whitespace runs as one space ("big big" ends "big\nbig").
      const ws = (s: string) => s.replace(/\s+/g, ' ').trim();
      const beforeCut = ws(context.slice(0, context.length - last.length));
      if (!other.startsWith(last) && !last.startsWith(other) && !beforeCut.endsWith(ws(wrong))) {
        const r = quoteRow(`Text: ... ${wrong}`, context);
        assert.deepEqual([r.exact, r.ignoringCutWord], [false, false]);
      }
    }),
    { numRuns: fcRuns(300) },
  );
});

test('fragments: written with no space after the mark, read back, exact when the context ends with them', () => {
  // Written and read.
  assert.equal(renderQuote('ck', true), 'Text: ...ck');
  assert.equal(renderQuote('', true), 'Text: ...');
  assert.equal(renderSummary('ck', 'Lily, park', 'pocket', true), '"...ck". Lily, park. Then "pocket". Text: ...ck');
  assert.equal(renderSummary('pock', '', '', false), '"pock". Text: ... pock');
  assert.deepEqual(parseQuoteParts('"...ck". Then "pocket". Text: ...ck'), { quote: 'ck', fragment: true });
  assert.deepEqual(parseQuoteParts('Text: ... ck'), { quote: 'ck', fragment: false });
  assert.deepEqual(parseQuoteParts('Text: ...'), { quote: '', fragment: false });
  assert.equal(parseQuoteParts('no mark'), undefined);
  assert.equal(parseQuote('Text: ...ck'), 'ck');
  // The token's text, a fragment only when it starts between two letters.
  const text = 'in its pocket. Then';
  const at = text.indexOf('ck');
  assert.deepEqual(tokenQuote(text, at, at + 2), { words: 'ck', fragment: true });
  assert.deepEqual(tokenQuote(text, at - 3, at + 2), { words: 'pock', fragment: false }); // " pock" starts at the space
  assert.deepEqual(tokenQuote(text, at + 4, at + 5), { words: '.', fragment: false }); // "." after a letter: not inside a word
  assert.deepEqual(tokenQuote(text, at + 5, at + 6), { words: '', fragment: false }); // whitespace alone
  assert.throws(() => tokenQuote(text, 5, 4), RangeError);
  // Scored: a fragment is exact when the context ends with it, wherever its word starts.
  const ctx = 'The bunny hid it in its pock';
  const rows = [
    quoteRow('"...ck". Then "pocket". Text: ...ck', ctx), // right
    quoteRow('"...ock". Text: ...ock', ctx), // right, longer
    quoteRow('"...ket". Text: ...ket', ctx), // wrong
    quoteRow('"ck". Text: ... ck', ctx), // the same letters as a word: not a quote of "pock"
    quoteRow('Text: ... pock', ctx), // the whole word
  ];
  assert.deepEqual(rows.map((r) => [r.fragment, r.exact, r.ignoringCutWord]), [
    [true, true, true],
    [true, true, true],
    [true, false, false],
    [false, false, false],
    [false, true, true],
  ]);
  const acc = quoteAccuracy(rows.map((_, i) => ['Text: ...ck', 'Text: ...ock', 'Text: ...ket', 'Text: ... ck', 'Text: ... pock'][i]), rows.map(() => ctx));
  assert.equal(acc.fragmentRate, 3 / 5);
  assert.equal(acc.quoteExact, 3 / 5);
});

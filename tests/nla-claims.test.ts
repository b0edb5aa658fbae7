// The claim extractor and its scores on constructed explainers with known answers: the truth
// rendered as a summary scores precision 1 and recall 1, random values score chance, quoting
// the text alone claims nothing (recall 0), and wrong or premature claims are confabulations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chanceClaims, claimSpans, extractClaims, falseClaimPairs, scoreClaims, withoutQuotes } from '../src/nla/claims.js';
import { claimConfidences, confidentCounts } from '../src/nla/claim-confidence.js';
import { describeCut, eventPhrase, FIELD_VALUES, FIELDS, type CutTruth, type Latents } from '../src/nla/corpus.js';
import { generateWorldStories, sampleWorldLatents } from '../src/nla/world.js';
import { randInt, rng } from '../src/util/rng.js';

// Cuts of world stories at random characters after the first sentence.
const r = rng(11);
const cuts = generateWorldStories(400, 21).flatMap((s) => [0, 1, 2].map(() => ({ s, cut: describeCut(s, 20 + randInt(r, s.text.length - 20)) })));
const truths: CutTruth[] = cuts.map(({ cut }) => ({ known: cut.known, currentWord: cut.currentWord }));

test('extractClaims: values outside quotations, per field; quotations are not claims', () => {
  const c = extractClaims('"named Lily. She went to the park". Tom at the beach with a red kite, sad, he lost it. Then "ball".');
  assert.deepEqual(c, { name: ['Tom'], place: ['beach'], object: ['kite'], colour: ['red'], emotion: ['sad'], event: ['lost'] });
  assert.equal(withoutQuotes('"a b". c "d'), ' . c  ');
  // The closing words read (quote-format.ts) are a quotation: a name there is no claim.
  assert.equal(withoutQuotes('"Tom ran". Lily. Then "to". Text: ... Tom ran'), ' . Lily. Then  . ');
  assert.deepEqual(extractClaims('"Tom ran". Lily. Then "to". Text: ... Tom ran').name, ['Lily']);
  assert.deepEqual(extractClaims('"the big red ball').colour, []); // an unclosed quote runs to the end
  assert.deepEqual(extractClaims('Lily and Tom, it broke.').name, ['Lily', 'Tom']);
  assert.deepEqual(extractClaims('Lily, it broke.').event, ['broke']);
  assert.deepEqual(extractClaims('the time was max').name, []); // names only capitalised
});

test('a perfect explainer (the truth rendered as a summary) scores precision 1 and recall 1 on every field', () => {
  const rep = scoreClaims(cuts.map(({ cut }) => cut.summary), truths);
  for (const f of FIELDS) {
    const x = rep.fields[f]!;
    assert.ok(x.known > 50, `${f} known on ${x.known} rows`);
    assert.equal(x.precision, 1, f);
    assert.equal(x.recall, 1, f);
    assert.equal(x.confab, 0, f);
  }
  assert.equal(rep.noFalseClaim, 1);
});

test('a random explainer (a random value of every field) scores chance', () => {
  const rr = rng(5);
  const random = (): string => {
    const l: Latents = sampleWorldLatents(rr);
    return `"the words". ${l.name} in the ${l.place} with a ${l.colour} ${l.object}, ${l.emotion}, ${eventPhrase(l.event, l.name)}. Then "x".`;
  };
  const rep = scoreClaims(cuts.map(() => random()), truths);
  const chance = chanceClaims(truths);
  for (const f of FIELDS) {
    const x = rep.fields[f]!, c = chance[f]!;
    assert.equal(x.stated, cuts.length, `${f} always stated`);
    // 1,200 rows: a binomial share at p <= 0.25 has sd <= 0.0125 (0.025 for recall on ~1/3 of rows).
    assert.ok(Math.abs(x.precision - c.precision) < 0.04, `${f} precision ${x.precision} vs chance ${c.precision}`);
    assert.ok(Math.abs(x.recall - c.recall) < 0.07, `${f} recall ${x.recall} vs chance ${c.recall}`);
    assert.ok(Math.abs(c.recall - 1 / FIELD_VALUES[f].length) < 1e-12);
  }
  assert.ok(rep.noFalseClaim < 0.01);
});

test('a quoting-only explainer claims nothing: recall 0 on every fact, precision undefined', () => {
  const rep = scoreClaims(cuts.map(({ cut }) => `"${cut.lastWords}". Then "${cut.nextWord}".`), truths);
  // The quotations do contain fact values (the words just read), so this tests the quote rule.
  assert.ok(cuts.some(({ s, cut }) => cut.lastWords.includes(s.latents.name)));
  for (const f of FIELDS) {
    assert.equal(rep.fields[f]!.recall, 0, f);
    assert.equal(rep.fields[f]!.stated, 0, f);
    assert.ok(Number.isNaN(rep.fields[f]!.precision));
  }
  assert.equal(rep.anyClaim, 0);
  assert.equal(rep.noFalseClaim, 1);
});

test('false claims: a wrong value, two values, or a fact not yet read', () => {
  const truth: CutTruth = { known: { name: 'Lily', place: 'park' }, currentWord: 'park' };
  const rep = scoreClaims(['Lily in the park.', 'Tom in the park.', 'Lily and Tom in the park.', 'Lily in the park with a ball.', undefined], [truth, truth, truth, truth, truth], ['name', 'place', 'object']);
  assert.deepEqual([rep.fields.name!.stated, rep.fields.name!.statedTrue], [4, 2]);
  assert.equal(rep.fields.name!.precision, 0.5);
  assert.equal(rep.fields.name!.recall, 2 / 5);
  assert.equal(rep.fields.place!.precision, 1);
  // The object is not read yet: claiming one is a confabulation.
  assert.deepEqual([rep.fields.object!.stated, rep.fields.object!.statedTrue, rep.fields.object!.confab], [1, 0, 1]);
  assert.ok(Number.isNaN(rep.fields.object!.recall));
  assert.equal(rep.noFalseClaim, 2 / 5); // row 1 and the unparseable row 5
  assert.throws(() => scoreClaims(['a'], []), /1 explanations for 0 truths/);
});

test('falseClaimPairs counts each false claim by truth > said; true claims and no claim are not counted', () => {
  const ex = ['Tom with a cat.', 'Lily with a cat.', '"a fish". Lily with a fish.', 'Mia with a ball and a ring.', 'Jack.'];
  const known = [{ name: 'Tom', object: 'fish' }, { name: 'Lily', object: 'fish' }, { name: 'Lily', object: 'fish' }, { name: 'Mia', object: 'ring' }, {}];
  assert.deepEqual(falseClaimPairs(ex.map((e) => extractClaims(e)), known), { object: { 'fish>cat': 2, 'ring>ball+ring': 1 }, name: { '?>Jack': 1 } });
  assert.throws(() => falseClaimPairs([{}], []), /1 rows of claims for 0 truths/);
});

test('claimSpans: the values extractClaims finds, at their first place outside quotations', () => {
  const e = '"Tom ran to the park". Lily in the park with a red kite, sad. Then "Lily". Text: ... the park';
  const spans = claimSpans(e);
  assert.deepEqual(spans.map((s) => [s.field, s.value, e.slice(s.start, s.end)]), [['name', 'Lily', 'Lily'], ['place', 'park', 'park'], ['object', 'kite', 'kite'], ['colour', 'red', 'red'], ['emotion', 'sad', 'sad']]);
  assert.equal(spans[1]!.start, e.indexOf('park', e.indexOf('Lily')), 'not the quoted "park"');
  // On every summary of the corpus cuts above, the spans name exactly extractClaims' values.
  for (const { cut } of cuts.slice(0, 300)) {
    const fromSpans: Record<string, string[]> = Object.fromEntries(FIELDS.map((f) => [f, []]));
    for (const s of claimSpans(cut.summary)) fromSpans[s.field]!.push(s.value);
    assert.deepEqual(fromSpans, extractClaims(cut.summary), cut.summary);
  }
});

test('claimConfidences: the product of the probabilities of the tokens that wrote the value', () => {
  // Tokens: ["\"a b\". ", "Li", "ly", " at the ", "be", "ach", "."]: Lily is tokens 1-2, beach 4-5.
  const pieces = ['"a b". ', 'Li', 'ly', ' at the ', 'be', 'ach', '.'];
  const text = '  ' + pieces.join(''); // leading space: the parsed explanation is trimmed
  const starts: number[] = [];
  pieces.reduce((at, p) => (starts.push(at), at + p.length), 2);
  const lp = [-0.1, Math.log(0.5), Math.log(0.8), -0.2, Math.log(0.9), Math.log(0.95), -0.3];
  const c = claimConfidences(text.trim(), text, [0, ...starts.slice(1)], lp);
  assert.ok(Math.abs(c.name! - 0.4) < 1e-12 && Math.abs(c.place! - 0.855) < 1e-12, JSON.stringify(c));
  assert.deepEqual(Object.keys(c).sort(), ['name', 'place']);
  // Counting only confident claims: Lily (0.4) dropped, beach (0.855) kept at 0.8.
  const counts = confidentCounts([{ name: ['Lily'], place: ['beach'] }], [c], [{ name: 'Lily', place: 'park' }], 'place', 0.8);
  assert.deepEqual(counts, { stated: 1, right: 0, known: 1 });
  assert.deepEqual(confidentCounts([{ name: ['Lily'] }], [c], [{ name: 'Lily' }], 'name', 0.8), { stated: 0, right: 0, known: 1 });
  assert.throws(() => claimConfidences('not there', text, starts, lp), /not in the output/);
});

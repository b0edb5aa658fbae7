// Content ablations on constructed cases: the text edits do what they say, and the swap test
// moves a probe-perfect reconstruction (an "AR" that writes the stated name as a direction)
// to the swapped value every time, while an AR that ignores the facts never follows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ablations, dropQuotes, fieldLabels, sentences, shuffleSentences, swapValue } from '../src/nla/ablations.js';
import { extractClaims } from '../src/nla/claims.js';
import { FIELD_VALUES, type CutTruth } from '../src/nla/corpus.js';
import { trainProbe } from '../src/nla/probe.js';
import { gaussian, rng } from '../src/util/rng.js';

test('text edits: shuffle keeps the sentences, dropQuotes removes quotations, swapValue changes the claims and the predicted next word, not quotations', () => {
  const e = '"named Lily". Lily in the park with a red ball, happy, she found it. Then "ball".';
  const s = shuffleSentences(e, rng(3));
  assert.deepEqual(s.split(/(?<=\.)\s/).sort(), ['"named Lily".', 'Lily in the park with a red ball, happy, she found it.', 'Then "ball".'].sort());
  assert.equal(dropQuotes(e), 'Lily in the park with a red ball, happy, she found it. Then');
  const w = swapValue(e, 'name', 'Lily', 'Tom');
  assert.equal(w, '"named Lily". Tom in the park with a red ball, happy, she found it. Then "ball".');
  assert.deepEqual(extractClaims(swapValue(e, 'object', 'ball', 'kite')).object, ['kite']);
  // The next-word clause states the value too: swapped with it.
  assert.equal(swapValue(e, 'object', 'ball', 'kite'), '"named Lily". Lily in the park with a red kite, happy, she found it. Then "kite".');
  assert.equal(swapValue('"the" . at the park. Then "park". Text: ... at the', 'place', 'park', 'beach'), '"the" . at the beach. Then "beach". Text: ... at the');
  assert.deepEqual(extractClaims(swapValue(e, 'event', 'found', 'lost')).event, ['lost']);
  // The closing words read stay as written under a swap and go with the quotations.
  const t = '"the ball". Lily, ball. Then "rolled". Text: ... the ball';
  assert.equal(swapValue(t, 'object', 'ball', 'kite'), '"the ball". Lily, kite. Then "rolled". Text: ... the ball');
  assert.equal(dropQuotes(t), 'Lily, ball. Then');
  assert.deepEqual(sentences(t), [
    { text: '"the ball".', kind: 'quote' }, { text: 'Lily, ball.', kind: 'facts' }, { text: 'Then "rolled".', kind: 'next' }, { text: 'Text: ... the ball', kind: 'text' },
  ]);
});

test('the swap test moves a probe-perfect reconstruction; an AR blind to the facts does not follow', async () => {
  const d = 8, names = FIELD_VALUES.name as readonly string[];
  const noise = gaussian(rng(1));
  // Activations: the name as a one-hot direction plus noise; a probe trained on them.
  const n = 400;
  const truths: CutTruth[] = Array.from({ length: n }, (_, i) => ({ known: { name: names[i % 8]! }, currentWord: 'x' }));
  const h = new Float32Array(n * d);
  truths.forEach((t, i) => {
    for (let j = 0; j < d; j++) h[i * d + j] = 0.2 * noise() + (j === names.indexOf(t.known.name!) ? 3 : 0);
  });
  const probe = trainProbe(h, fieldLabels(truths, 'name'), 8);
  const explanations = truths.map((t) => `"words". ${t.known.name} in the park.`);
  // A reader of the stated name, and a reader of nothing (a constant).
  const reader = async (texts: string[]) => {
    const out = new Float32Array(texts.length * d);
    texts.forEach((t, k) => {
      const said = extractClaims(t, ['name']).name!;
      if (said.length === 1) out[k * d + names.indexOf(said[0]!)] = 3;
    });
    return out;
  };
  const blind = async (texts: string[]) => new Float32Array(texts.length * d).fill(1);
  // The stated-row probe reads names; a probe fitted where every label is the first name reads only that one.
  const constant = trainProbe(h, new Int32Array(n), 8);
  const r = await ablations(reader, h, explanations, d, 1, { name: { stated: probe, known: constant } }, rng(2));
  assert.equal(r.swap.name!.rows, n);
  assert.equal(r.swap.name!.follows, 1);
  assert.equal(r.swap.name!.probe_rows, 'stated');
  assert.ok(r.swap.name!.follows_known < 0.3, `the every-row probe here reads one name: ${r.swap.name!.follows_known}`);
  assert.ok(r.fve > 0.9, `the reader reconstructs: ${r.fve}`);
  assert.ok(Math.abs(r.fve_shuffled_sentences - r.fve) < 1e-9, 'order does not matter to this reader');
  assert.ok(r.swap.name!.fve < r.fve - 0.5, 'a swapped name reconstructs another story');
  // Removing the sentence that states the name costs this reader its reconstruction; the quotation costs nothing.
  assert.equal(r.removed.facts!.sentences, n);
  assert.equal(r.removed.quote!.sentences, n);
  assert.ok(r.removed.facts!.fve_drop > 0.5, `facts removed: ${r.removed.facts!.fve_drop}`);
  assert.ok(Math.abs(r.removed.quote!.fve_drop) < 1e-9, `quote removed: ${r.removed.quote!.fve_drop}`);
  const b = await ablations(blind, h, explanations, d, 1, { name: { known: probe } }, rng(2));
  assert.equal(b.swap.name!.probe_rows, 'known');
  assert.equal(b.swap.name!.follows, b.swap.name!.follows_known);
  assert.ok(b.swap.name!.follows < 0.2, `a blind AR follows ${b.swap.name!.follows}`);
  // Unparseable explanations are not edited; with none parseable there is nothing to measure.
  const none = await ablations(reader, h.subarray(0, 2 * d), [undefined, undefined], d, 1, { name: { known: probe } }, rng(2));
  assert.equal(none.rows, 0);
  assert.ok(Number.isNaN(none.fve));
  assert.deepEqual(none.swap, {});
  assert.deepEqual(none.removed, {});
});

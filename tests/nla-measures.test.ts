// What the NLA's reported figures are made of: token-capped rollouts are unparseable (reward -2,
// no AR step), the held-out stories split into dev and test, the shuffled control pairs rows of
// different stories, and facts are scored per field apart from the current word.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel, loadTokenizerFor } from '../src/nn/load.js';
import type { Llama } from '../src/nn/llama.js';
import type { Reconstructor } from '../src/nla/ar.js';
import { Verbalizer, type Explained } from '../src/nla/av.js';
import { FIELDS, fieldsChance, parseFields, type CutTruth } from '../src/nla/corpus.js';
import { heldOutRows } from '../src/nla/dataset.js';
import { otherStoryRows, scoreFacts } from '../src/nla/evaluate.js';
import { DEFAULT_PROMPTS } from '../src/nla/prompts.js';
import { misquotes, unsupportedClaims } from '../src/nla/quotes.js';
import { scoreRollouts, UNPARSEABLE_REWARD } from '../src/nla/rl.js';
import { modelFile, SKIP_NO_MODEL } from './helpers.js';

test('a rollout cut off by the token cap is unparseable even with its tag closed: reward -2, left out of the AR step', { skip: SKIP_NO_MODEL }, async () => {
  const file = modelFile('stories260K.bin');
  const { model } = await loadModel(file);
  const tok = loadTokenizerFor(file);
  const av = new Verbalizer(model as Llama, tok, DEFAULT_PROMPTS, 10);
  const closed = av.targetIds('Lily in the park'); // explanation, closing tag, EOS
  assert.equal(closed[closed.length - 1], tok.eosId);
  const rambling = [...closed.slice(0, -1), ...tok.encode(' and more').slice(1)]; // closed, then no EOS before the cap

  const finished = av.toExplained(closed, true);
  const capped = av.toExplained(rambling, false);
  const unclosed = av.toExplained(tok.encode(' Lily in the').slice(1), false);
  assert.equal(finished.explanation, 'Lily in the park');
  assert.ok(capped.text.includes(DEFAULT_PROMPTS.explanationEnd), `the capped rollout closed its tag: ${JSON.stringify(capped.text)}`);
  assert.equal(capped.explanation, undefined);
  assert.equal(unclosed.explanation, undefined);

  // Rewards from a stub AR that predicts the target exactly: MSE 0 for anything it scores.
  const d = 4, G = 3;
  const h = Float32Array.from([1, 2, 3, 4]);
  const seen: string[][] = [];
  const ar = { d, predictHost: async (texts: string[]) => (seen.push(texts), Float32Array.from(texts.flatMap(() => [...h]))) } as unknown as Reconstructor;
  const { rewards, mse, ok } = await scoreRollouts(ar, h, [finished, capped, unclosed], G, { reward: 'mse' }, () => 0);
  assert.deepEqual(rewards.map((r) => r + 0), [0, UNPARSEABLE_REWARD, UNPARSEABLE_REWARD]); // + 0: -MSE is -0
  assert.equal(UNPARSEABLE_REWARD, -2);
  assert.deepEqual(mse, [0, 2, 2]);
  assert.deepEqual(ok, [0], 'only the finished rollout reaches the AR (its training step uses these rows)');
  assert.deepEqual(seen, [['Lily in the park']]);
  model.w.dispose();
});

test('the claim cost: a rollout stating a fact its row\'s summary does not loses claimCost, on the fields charged; rows without a summary are not charged', async () => {
  const d = 2, G = 4;
  const h = Float32Array.from([1, 0, 0, 1]); // two activations
  const ar = { d, predictHost: async (texts: string[]) => Float32Array.from(texts.flatMap(() => [1, 0])) } as unknown as Reconstructor;
  const ex = (explanation: string | undefined) => ({ explanation, tokens: [1, 2], text: explanation ?? '' }) as unknown as Explained;
  const rollouts = [
    ex('"day". Lily in the parks. Then "she". Text: ... day'), // Lily and the park (another form) are in the summary: no cost
    ex('"day". Tom. Then "she". Text: ... day'), // Tom is not: cost
    ex('"day". Lily in the forest. Text: ... day'), // the forest is not: cost only when place is charged
    ex(undefined), // unparseable: -2 and nothing else
    ex('"ran". Tom in the beach. Text: ... ran'), // second row has no summary: never charged
    ex('"ran". Then "Tom". Text: ... ran'),
    ex('"ran". Text: ... ran'),
    ex('"ran". Lily. Text: ... ran'),
  ];
  const refs = ['"day". Lily and Ben in the park. Then "Tom". Text: ... day', undefined]; // a name only in Then is not a supported claim
  const base = await scoreRollouts(ar, h, rollouts, G, { reward: 'mse' }, () => 0, refs);
  const names = await scoreRollouts(ar, h, rollouts, G, { reward: 'mse', claimCost: 0.5 }, () => 0, refs);
  assert.deepEqual(names.unsupported, [false, true, false, undefined, undefined, undefined, undefined, undefined], 'default fields: names only');
  assert.deepEqual(names.rewards.map((r, i) => +(r - base.rewards[i]!).toFixed(9)), [0, -0.5, 0, 0, 0, 0, 0, 0]);
  const places = await scoreRollouts(ar, h, rollouts, G, { reward: 'mse', claimCost: 0.25, claimFields: ['name', 'place'] }, () => 0, refs);
  assert.deepEqual(places.rewards.map((r, i) => +(r - base.rewards[i]!).toFixed(9)), [0, -0.25, -0.25, 0, 0, 0, 0, 0]);
  // Per claim: Tom and the forest together cost twice; per rollout (the default), once.
  const two = [ex('"day". Tom in the forest. Text: ... day'), ex('"day". Tom. Text: ... day'), ex('"day". Lily. Text: ... day'), ex('"day". Lily. Text: ... day')];
  const twoBase = await scoreRollouts(ar, h.subarray(0, 2), two, G, { reward: 'mse' }, () => 0, refs);
  const diff = async (per?: 'rollout' | 'claim') => (await scoreRollouts(ar, h.subarray(0, 2), two, G, { reward: 'mse', claimCost: 0.25, claimFields: ['name', 'place'], claimCostPer: per }, () => 0, refs)).rewards.map((r, i) => +(r - twoBase.rewards[i]!).toFixed(9));
  assert.deepEqual(await diff(), [-0.25, -0.25, 0, 0]);
  assert.deepEqual(await diff('claim'), [-0.5, -0.25, 0, 0]);
  assert.equal(base.rewards[3], UNPARSEABLE_REWARD);
  // Not charged without references, whatever the cost.
  assert.deepEqual((await scoreRollouts(ar, h, rollouts, G, { reward: 'mse', claimCost: 0.5 }, () => 0)).rewards, base.rewards);
  // The claims themselves: field=value, names with their capital, next-word clauses ignored on both sides.
  assert.deepEqual(unsupportedClaims('"x". Tom and lily lost the kites in a park. Then "Ben".', '"x". Ben in the garden. Then "Tom".', ['name', 'place', 'object', 'event']), ['name=Tom', 'place=park', 'object=kite', 'event=lost'], 'lowercase lily is not a name');
  assert.deepEqual(unsupportedClaims('"x". Ben.', '"x". Lily.', []), []);
  // The quote cost: a rollout whose opening or closing quotation differs from its row's summary.
  const ref = '"He liked". Ben. Then "blue". Text: ... He liked';
  assert.equal(misquotes('"He  liked". Tom. Then "red". Text: ...  He liked', ref), false, 'facts and the next word are not quotations; spaces normalised');
  assert.equal(misquotes('"Everyone liked". Then "Tom". Text: ... Everyone liked', ref), true);
  assert.equal(misquotes('"He liked". Ben. Text: ... Everyone liked', ref), true, 'the closing words alone');
  assert.equal(misquotes('Ben. Text: ... He liked', ref), true, 'no opening quote');
  const q = [ex('"day". Lily. Text: ... day'), ex('"dog". Lily. Text: ... dog'), ex(undefined), ex('"day". Text: ... day')];
  const qBase = await scoreRollouts(ar, h.subarray(0, 2), q, G, { reward: 'mse' }, () => 0, refs);
  const qCost = await scoreRollouts(ar, h.subarray(0, 2), q, G, { reward: 'mse', quoteCost: 0.3 }, () => 0, refs);
  assert.deepEqual(qCost.misquoted, [false, true, undefined, false]);
  assert.deepEqual(qCost.rewards.map((r, i) => +(r - qBase.rewards[i]!).toFixed(9)), [0, -0.3, 0, 0]);
});

test('parseFields: all, a comma list, and an error that names the flag', () => {
  assert.deepEqual(parseFields('all', '--f'), [...FIELDS]);
  assert.deepEqual(parseFields(' name, place,name ', '--f'), ['name', 'place']);
  assert.throws(() => parseFields('name,places', '--claim-fields'), /--claim-fields: expected all or a comma-separated list of name, place.*got "name,places"/);
  assert.throws(() => parseFields('', '--claim-fields'), /--claim-fields/);
});

const row = (doc: number, split: string) => ({ doc, split });

test('dev and test split the eval rows by story: disjoint, together all of eval, dev the first half of its stories', () => {
  // Eval stories 7, 9, 12, 15, 20 (rows out of doc order), plus training rows that must stay out.
  const meta = [row(1, 'av'), row(12, 'eval'), row(7, 'eval'), row(3, 'rl'), row(9, 'eval'), row(12, 'eval'), row(20, 'eval'), row(15, 'eval'), row(7, 'eval'), row(2, 'ar')];
  const dev = heldOutRows(meta, 'dev'), test = heldOutRows(meta, 'test');
  assert.deepEqual(dev, [1, 2, 4, 5, 8]); // stories 7, 9, 12 (ceil(5 / 2) = 3 stories)
  assert.deepEqual(test, [6, 7]); // stories 15, 20
  const docsOf = (ix: number[]) => new Set(ix.map((i) => meta[i].doc));
  assert.deepEqual([...docsOf(dev)].filter((x) => docsOf(test).has(x)), [], 'no story in both');
  assert.deepEqual([...dev, ...test].sort((a, b) => a - b), meta.map((m, i) => (m.split === 'eval' ? i : -1)).filter((i) => i >= 0));
  assert.deepEqual(heldOutRows([row(1, 'av')], 'test'), []);
});

test('dev and test halve each source\'s eval documents apart: a mixed store has stories and samples of M in both', () => {
  // The stories' doc ids come before the samples' (as extract numbers them): halving all eval
  // documents at once would put stories 4, 6 in dev and samples 10, 11 in test.
  const ka = (doc: number) => ({ doc, split: 'eval' }), m = (doc: number) => ({ doc, split: 'eval', source: 'model' as const });
  const meta = [ka(4), m(10), ka(6), m(11), ka(4), { doc: 5, split: 'av' }, m(10)];
  assert.deepEqual(heldOutRows(meta, 'dev'), [0, 1, 4, 6]); // story 4, sample 10
  assert.deepEqual(heldOutRows(meta, 'test'), [2, 3]); // story 6, sample 11
  // The same doc id in two sources is two documents.
  assert.deepEqual(heldOutRows([ka(1), m(1)], 'dev'), [0, 1]);
  assert.deepEqual(heldOutRows([ka(1), m(1)], 'test'), []);
});

test('the shuffled control pairs every row with a row of another story, each story serving as a partner once', () => {
  const docs = [5, 5, 5, 8, 8, 2, 2, 2, 2, 9];
  const meta = docs.map((doc) => ({ doc }));
  const p = otherStoryRows(meta);
  assert.deepEqual(p, [3, 4, 3, 5, 6, 9, 9, 9, 9, 0]); // 5 -> 8 -> 2 -> 9 -> 5, row of the same rank (cyclic)
  p.forEach((j, i) => assert.notEqual(meta[j].doc, meta[i].doc, `row ${i}`));
  assert.deepEqual(otherStoryRows([{ doc: 1 }, { doc: 1 }]), [-1, -1], 'one story: no control');
});

test('facts are scored per field and pooled without the current word; the pooled fields keep their old meaning', () => {
  const truths: CutTruth[] = [
    { known: { name: 'Lily', place: 'park' }, currentWord: 'park' },
    { known: { name: 'Tom', place: 'beach', object: 'kite', emotion: 'sad' }, currentWord: 'sad' },
    { known: { name: 'Mia' }, currentWord: 'went' },
  ];
  const explanations = [
    'Lily in the park. Text: ... went to the park', // name right, place right, word right
    'Tom at the beach with a ball, happy. Text: ... was so sad', // name right, place right, object wrong, emotion wrong (says happy), word right
    undefined, // unparseable: every field wrong
  ];
  const s = scoreFacts(explanations, truths);
  assert.deepEqual(s.fieldCounts, {
    name: { correct: 2, total: 3 },
    place: { correct: 2, total: 2 },
    object: { correct: 0, total: 1 },
    emotion: { correct: 0, total: 1 },
    currentWord: { correct: 2, total: 3 },
  });
  assert.equal(s.facts, 4 / 7);
  assert.equal(s.fields, 6 / 10);
  // Chance over the same (row, fact) pairs: names 1/8 x3, places 1/6 x2, object 1/8, emotion 1/4.
  assert.ok(Math.abs(fieldsChance(truths, undefined, false).rate - (3 / 8 + 2 / 6 + 1 / 8 + 1 / 4) / 7) < 1e-12);
});

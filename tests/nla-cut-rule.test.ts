// Where the training cuts of text fall (src/nla/model-text.ts): the balanced rule draws each cut in
// proportion to 1 / (1 + n), n the split's rows so far quoting its word; opening cuts draw some of
// a document's random cuts from its first tokens; neither touches the held-out documents, which
// are cut at random as before.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ActivationStore } from '../src/nla/store.js';
import { okCli, runCli } from './cli-helpers.js';
import { loadTokenizer, type Tokenizer } from '../src/io/tokenizer.js';
import { balancedCuts, openingCuts, textCutItems, type CutRule } from '../src/nla/model-text.js';
import { describeTextCut } from '../src/nla/text-summary.js';
import { rng } from '../src/util/rng.js';
import { fcRuns } from '../src/testing/runs.js';
import { modelFile, SKIP_NO_MODEL } from './helpers.js';

test('balancedCuts: distinct ascending indices, min(count, n) of them, and counts gain each pick', () => {
  fc.assert(
    fc.property(fc.array(fc.constantFrom('a', 'b', 'c', 'dog', 'the'), { maxLength: 40 }), fc.integer({ min: 0, max: 12 }), fc.integer({ min: 0, max: 1e6 }), (words, count, seed) => {
      const counts = new Map([['the', 5]]);
      const got = balancedCuts(words, counts, count, rng(seed));
      assert.equal(got.length, Math.min(count, words.length));
      got.forEach((k, i) => {
        assert.ok(Number.isInteger(k) && k >= 0 && k < words.length);
        if (i) assert.ok(k > got[i - 1]!);
      });
      const picked = new Map<string, number>();
      for (const k of got) picked.set(words[k]!, (picked.get(words[k]!) ?? 0) + 1);
      for (const w of new Set(words)) assert.equal(counts.get(w) ?? 0, (w === 'the' ? 5 : 0) + (picked.get(w) ?? 0));
    }),
    { numRuns: fcRuns(200) },
  );
});

test('balancedCuts: a word quoted often is drawn rarely, in the stated proportion', () => {
  // 90 candidates quoting "the" (already quoted 50 times: weight 1/51 each) and 10 distinct rare
  // words (weight 1): the first draw is rare with probability 10 / (10 + 90/51) = 0.850.
  const words = [...Array(90).fill('the'), ...[...Array(10).keys()].map((i) => `w${i}`)];
  let rareFirst = 0, rareAll = 0;
  const trials = 2000;
  const r = rng(3);
  for (let t = 0; t < trials; t++) {
    // One pick alone: its word is the draw.
    const [k] = balancedCuts(words, new Map([['the', 50]]), 1, r);
    rareFirst += +(words[k!] !== 'the');
    rareAll += balancedCuts(words, new Map([['the', 50]]), 8, r).filter((j) => words[j] !== 'the').length;
  }
  const p = rareFirst / trials, se = Math.sqrt(0.85 * 0.15 / trials);
  assert.ok(Math.abs(p - 0.85) < 4 * se, `first draw rare ${p.toFixed(3)}, expected 0.850`);
  // Uniform cuts would give 8 x 0.1 = 0.8 rare of 8; the rule gives most of the 10 rare words.
  assert.ok(rareAll / trials > 6, `rare picks of 8: ${(rareAll / trials).toFixed(2)}`);
  // Seeded: the same stream gives the same cuts.
  assert.deepEqual(balancedCuts(words, new Map(), 8, rng(9)), balancedCuts(words, new Map(), 8, rng(9)));
});

let tokCache: Tokenizer | undefined;
const tok = () => (tokCache ??= loadTokenizer(modelFile('tok512.bin')));
// Text that repeats a few words: uniform cuts quote them again and again.
const DOC = `${'the big dog '.repeat(12)}then a happy farmer found his wonderful grandmother singing quietly near yellow mountains.`;
const items = (rule: CutRule, splits: string[], seed: number) => {
  const ids = tok().encode(DOC, { bos: true });
  return textCutItems(tok(), splits.map(() => ({ ids, source: 'text' as const })), { cuts: 6, minTokens: 5, rand: rng(seed), docBase: 0, splits, lastWordCount: 1, cutRule: rule });
};

test('textCutItems: balanced cuts quote the commonest word less than random ones, with true summaries', { skip: SKIP_NO_MODEL }, () => {
  // The mean count of the most quoted word over 20 seeds (24 cuts of 4 copies each).
  const most = (rule: CutRule) => {
    let sum = 0;
    for (let seed = 0; seed < 20; seed++) {
      const its = items(rule, ['av', 'av', 'av', 'av'], seed);
      const quotes = new Map<string, number>();
      for (const it of its) {
        it.positions.forEach((p, k) => {
          assert.ok(p >= 5 && p < it.ids.length);
          // Each row's summary is the cut's own (the rule moves cuts, not what is said of them).
          assert.equal(it.meta[k]!.summary, describeTextCut(tok(), it.ids, p, { lastWordCount: 1 }).summary);
          const w = describeTextCut(tok(), it.ids, p, { lastWordCount: 1 }).lastWords;
          quotes.set(w, (quotes.get(w) ?? 0) + 1);
        });
        assert.equal(it.positions.length, 6);
      }
      sum += Math.max(...quotes.values());
    }
    return sum / 20;
  };
  const random = most('random'), balanced = most('balanced');
  assert.ok(balanced < random - 1, `the most quoted word's rows: balanced ${balanced}, random ${random}`);
});

test('textCutItems: held-out documents are cut at random whatever the rule', { skip: SKIP_NO_MODEL }, () => {
  for (const seed of [0, 1, 2]) {
    const pos = (rule: CutRule) => items(rule, ['eval', 'eval', 'eval'], seed).map((it) => it.positions);
    assert.deepEqual(pos('balanced'), pos('random'));
    // Documents with no split (a user's corpus without splits) too.
    const none = (rule: CutRule) => {
      const ids = tok().encode(DOC, { bos: true });
      return textCutItems(tok(), [{ ids, source: 'text' }], { cuts: 6, minTokens: 5, rand: rng(seed), docBase: 0, cutRule: rule }).map((it) => it.positions);
    };
    assert.deepEqual(none('balanced'), none('random'));
  }
  // And a training split under the balanced rule does move them (the comparison above can fail).
  assert.notDeepEqual(items('balanced', ['av', 'av', 'av'], 0).map((it) => it.positions), items('random', ['av', 'av', 'av'], 0).map((it) => it.positions));
});

test('nla extract --cut-rule: balanced is recorded in the manifest; without a text source it is refused by name', { skip: SKIP_NO_MODEL, timeout: 120_000 }, async () => {
  const run = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-cut-rule-'));
  const textFile = path.join(run, 'docs.txt');
  fs.writeFileSync(textFile, [...Array(8).keys()].map((i) => `${DOC} Doc ${i}.`).join('\n\n') + '\n');
  const model = modelFile('stories260K.bin');
  const base = ['extract', '--model', model, '--layer', '3', '--cuts', '3', '--min-tokens', '5'];
  await okCli([...base, '--out', path.join(run, 'bal'), '--text', textFile, '--cut-rule', 'balanced', '--shares', '0.5,0.25,0,0.25']);
  const bal = ActivationStore.open(path.join(run, 'bal'));
  assert.equal(bal.manifest.sources!.cutRule, 'balanced');
  await okCli([...base, '--out', path.join(run, 'rnd'), '--text', textFile]);
  assert.equal(ActivationStore.open(path.join(run, 'rnd')).manifest.sources!.cutRule, undefined, 'random is the default and is not recorded');
  const refused = await runCli([...base, '--out', path.join(run, 'ka'), '--stories', '4', '--cut-rule', 'balanced']);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /--cut-rule balanced places the cuts of --sample, --text and --jsonl documents/);
  const bad = await runCli([...base, '--out', path.join(run, 'bad'), '--text', textFile, '--cut-rule', 'rare']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /--cut-rule/);
  fs.rmSync(run, { recursive: true, force: true });
});

test('openingCuts: distinct ascending cuts, min(count, length - minTokens) of them, at least the opening\'s share before `below`', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 600 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 1, max: 60 }), fc.integer({ min: 0, max: 1e6 }), (length, minTokens, count, k, below, seed) => {
      const got = openingCuts(length, minTokens, count, { cuts: k, below }, rng(seed));
      assert.equal(got.length, Math.max(0, Math.min(count, length - minTokens)));
      got.forEach((p, i) => {
        assert.ok(Number.isInteger(p) && p >= minTokens && p < length, `cut ${p} of a ${length}-token document from ${minTokens}`);
        if (i) assert.ok(p > got[i - 1]!);
      });
      // The opening holds min(k, count, its own candidates) of them, or more by chance.
      const openingCandidates = Math.max(0, Math.min(length, below) - minTokens);
      assert.ok(got.filter((p) => p < below).length >= Math.min(k, count, openingCandidates));
    }),
    { numRuns: fcRuns(300) },
  );
});

test('openingCuts: the rest are uniform over the document, so the opening gets its cut and then its share', () => {
  // 400 tokens from 1, 4 cuts, 1 in the opening (below 30): P(a given cut index < 30) is about
  // (1 + 3 x 29/399) / 4 = 0.305 per cut, against 29/399 = 0.073 uniformly.
  let early = 0, all = 0;
  for (let seed = 0; seed < 2000; seed++) {
    const got = openingCuts(400, 1, 4, { cuts: 1, below: 30 }, rng(seed));
    early += got.filter((p) => p < 30).length;
    all += got.length;
  }
  assert.ok(Math.abs(early / all - 0.305) < 0.02, `share before 30: ${early / all}`);
});

test('textCutItems: opening cuts move the training documents\' cuts only', { skip: SKIP_NO_MODEL }, () => {
  const ids = tok().encode(DOC, { bos: true });
  const cut = (splits: string[] | undefined, opening: { cuts: number; below: number } | undefined, seed: number) =>
    textCutItems(tok(), [0, 1, 2, 3].map(() => ({ ids, source: 'text' as const })), { cuts: 3, minTokens: 1, rand: rng(seed), docBase: 0, splits, lastWordCount: 1, ...(opening ? { opening } : {}) }).map((it) => it.positions);
  for (const seed of [0, 1, 2]) {
    assert.deepEqual(cut(['eval', 'eval', 'eval', 'eval'], { cuts: 2, below: 6 }, seed), cut(['eval', 'eval', 'eval', 'eval'], undefined, seed));
    assert.deepEqual(cut(undefined, { cuts: 2, below: 6 }, seed), cut(undefined, undefined, seed));
    for (const pos of cut(['av', 'ar', 'rl', 'av'], { cuts: 2, below: 6 }, seed)) assert.ok(pos.filter((p) => p < 6).length >= 2, `training cuts ${pos}: two before 6`);
  }
  assert.throws(() => textCutItems(tok(), [{ ids, source: 'text' }], { cuts: 3, minTokens: 1, rand: rng(0), docBase: 0, splits: ['av'], cutRule: 'balanced', opening: { cuts: 1, below: 6 } }), /do not combine with the balanced cut rule/);
});

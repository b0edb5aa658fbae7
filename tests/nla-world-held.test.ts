// 'held' summaries: a fact is stated besides the cued one only where a confident probe on h reads
// it rightly (out of fold for training rows), and the restated summary names exactly those facts.
import test from 'node:test';
import assert from 'node:assert/strict';
import { FIELD_VALUES, type Field } from '../src/nla/corpus.js';
import { extractClaims } from '../src/nla/claims.js';
import { heldFacts, restateSummaries } from '../src/nla/world-held.js';
import { worldItems } from '../src/nla/world-data.js';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { findModelFile } from '../src/io/model-files.js';
import { rng } from '../src/util/rng.js';
import { trainProbe } from '../src/nla/probe.js';
import { initGpu } from '../src/tensor/index.js';

for (const [how, fit] of [['engine', undefined], ['CPU', trainProbe]] as const)
test(`heldFacts (${how} fits): the name is held on rows whose h carries it, not on noise rows nor on rows where it is unread`, async () => {
  await initGpu();
  const d = 16;
  const names = FIELD_VALUES.name as readonly string[];
  const r = rng(7);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  const n = 1600;
  const h = new Float32Array(n * d);
  const rows: { doc: number; train: boolean; known: Partial<Record<Field, string>> }[] = [];
  const carries: boolean[] = [];
  for (let i = 0; i < n; i++) {
    const v = Math.floor(r() * names.length);
    const clean = i % 2 === 0;
    const unread = i % 10 === 9; // odd rows: noise; one in ten: the name not read yet
    for (let j = 0; j < d; j++) h[i * d + j] = 0.3 * gauss() + (clean && j === v ? 3 : 0);
    rows.push({ doc: Math.floor(i / 4), train: i < 1200, known: unread ? {} : { name: names[v]! } });
    carries.push(clean && !unread);
  }
  const { held, thresholds } = await heldFacts(h, d, rows, 0.9, fit);
  assert.ok(thresholds.name! > 1 / names.length && thresholds.name! <= 1, `threshold ${thresholds.name}`);
  const share = (keep: (i: number) => boolean) => {
    const idx = rows.map((_, i) => i).filter(keep);
    return idx.filter((i) => held[i]!.has('name')).length / idx.length;
  };
  for (const [side, inSide] of [['train (out of fold)', (i: number) => i < 1200], ['held-out', (i: number) => i >= 1200]] as const) {
    assert.ok(share((i) => inSide(i) && carries[i]!) > 0.9, `${side}: clean rows held ${share((i) => inSide(i) && carries[i]!)}`);
    assert.ok(share((i) => inSide(i) && !carries[i]! && rows[i]!.known.name !== undefined) < 0.1, `${side}: noise rows held`);
  }
  assert.equal(share((i) => rows[i]!.known.name === undefined), 0, 'an unread fact is never held');
  // Held facts are right by construction: the probe named the true value.
  assert.ok(held.every((s) => !s.has('place')), 'no field is held without rows that know it');
});

test('restateSummaries: each cue cut states exactly the fields asked, the quoted words unchanged', () => {
  const tok = loadTokenizer(findModelFile('tok512.bin'));
  const cued = new Map<string, Field>();
  const items = worldItems(tok, { stories: 12, cutsPerStory: 3, minTokens: 10, seed: 5, at: 'cue', summary: 'held', cued });
  const before = items.flatMap((it) => it.meta.map((m) => m.summary!));
  const asked: Set<Field>[] = [];
  const fieldsOf = (row: number) => {
    const all = items.flatMap((it) => it.meta.map((m) => Object.keys(m.truth!.known) as Field[]))[row]!;
    const s = new Set(all.filter((_, k) => (row + k) % 2 === 0));
    asked[row] = s;
    return s;
  };
  restateSummaries(tok, items, { seed: 5 }, fieldsOf);
  const after = items.flatMap((it) => it.meta.map((m) => ({ summary: m.summary!, known: m.truth!.known as Partial<Record<Field, string>> })));
  assert.ok(after.length > 10);
  after.forEach(({ summary, known }, row) => {
    const claims = extractClaims(summary);
    for (const f of ['name', 'place', 'object', 'event'] as Field[]) {
      if (asked[row]!.has(f)) assert.deepEqual(claims[f], [known[f]], `row ${row}: ${f} asked, in "${summary}"`);
      else assert.ok(!claims[f]?.length, `row ${row}: ${f} not asked, yet in "${summary}"`);
    }
    // The quotation (the words just read) is the text's, whatever the facts.
    assert.equal(summary.split('"')[1], before[row]!.split('"')[1]);
  });
});

test('worldItems and restateSummaries quote lastWordCount word units of the words just read', () => {
  const tok = loadTokenizer(findModelFile('tok512.bin'));
  const quotes = (n: number | undefined) => {
    const items = worldItems(tok, { stories: 8, cutsPerStory: 3, minTokens: 10, seed: 7, at: 'cue', summary: 'held', lastWordCount: n });
    const first = items.flatMap((it) => it.meta.map((m) => m.summary!.split('"')[1]!));
    restateSummaries(tok, items, { seed: 7, lastWordCount: n }, () => new Set<Field>(['name']));
    return { first, restated: items.flatMap((it) => it.meta.map((m) => m.summary!.split('"')[1]!)) };
  };
  const three = quotes(undefined), one = quotes(1);
  assert.ok(one.first.length > 10);
  assert.deepEqual(one.restated, one.first, 'restated summaries keep the quotation');
  assert.deepEqual(three.restated, three.first);
  one.first.forEach((q, i) => {
    // One unit: a word or a punctuation mark, and the last unit of the three-unit quote.
    assert.ok(/^([A-Za-z']+|[^A-Za-z\s])$/.test(q), `one unit: "${q}"`);
    assert.ok(three.first[i]!.endsWith(q) && three.first[i]!.length > q.length, `"${q}" ends "${three.first[i]}"`);
  });
});

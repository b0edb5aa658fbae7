// Text from the studied model's own distribution, tiny and end to end on stories260K: a store
// mixing samples of M with known-answer stories and a text file (nla extract --sample / --text),
// each row's source and seed recorded, the sampled rows' summaries quoting exactly the text
// before the cut (checked by regenerating the documents from their seeds), held-out evaluation
// on fresh samples whose seeds are asserted disjoint from the store's, and file:line errors for
// bad JSONL and text input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadModel, loadTokenizerFor } from '../src/nn/load.js';
import type { Llama } from '../src/nn/llama.js';
import { Reconstructor } from '../src/nla/ar.js';
import { Verbalizer } from '../src/nla/av.js';
import { evaluate } from '../src/nla/evaluate.js';
import { assertSeedsDisjoint, evaluateModelText, readJsonlDocs, readTextDocs, sampleModelText, summaryOptionsOf } from '../src/nla/model-text.js';
import { DEFAULT_PROMPTS } from '../src/nla/prompts.js';
import { ActivationStore, rowSource } from '../src/nla/store.js';
import { decodePieces, describeTextCut } from '../src/nla/text-summary.js';
import { okCli, runCli } from './cli-helpers.js';
import { modelFile, SKIP_NO_MODEL } from './helpers.js';

const norm = (s: string) => s.replace(/\s+/g, ' ').trim();

test('nla extract mixes samples of M, known-answer stories and a text file; eval on held-out samples with disjoint seeds', { skip: SKIP_NO_MODEL, timeout: 180_000 }, async () => {
  const file = modelFile('stories260K.bin');
  const run = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-model-text-'));
  const out = path.join(run, 'store'), textFile = path.join(run, 'docs.txt');
  fs.writeFileSync(textFile, 'Once upon a time there was a girl named Lily.\nShe went to the park with her ball and played all day.\n\nTom had a red kite. He ran to the beach and flew the kite high in the sky, and he laughed.\n');
  const ex = await okCli(['extract', '--model', file, '--layer', '3', '--out', out, '--stories', '6', '--sample', '6', '--sample-seed', '100', '--sample-tokens', '80', '--text', textFile, '--cuts', '2', '--min-tokens', '10', '--quote', 'token', '--facts-window', '4']);
  assert.match(ex.stdout, /known-answer +6 \/ +6 +12 rows +42\.9%/);
  assert.match(ex.stdout, /seeds 100\.\.105/);

  const store = ActivationStore.open(out);
  const src = store.manifest.sources!;
  assert.deepEqual(store.manifest.summary, { quote: 'token', quoteWords: 1, factsWindow: 4 }, 'the summary format is recorded');
  assert.deepEqual(src.asked, { 'known-answer': 6, model: 6, text: 2 });
  assert.deepEqual(src.model, { seedBase: 100, count: 6, temperature: 1, maxTokens: 80 });
  assert.equal(src.proportions.model, 6 / 14);
  // --min-tokens cuts the stories; the text sources are cut from their first token (--text-min-tokens, default 1).
  assert.equal(src.minTokens, 10);
  assert.equal(src.textMinTokens, 1);
  const all = store.readAll();
  // Doc ids: stories 0..5, samples 6..11, text documents 12..13.
  for (const m of all.meta) {
    const want = m.doc < 6 ? 'known-answer' : m.doc < 12 ? 'model' : 'text';
    assert.equal(rowSource(m), want, `doc ${m.doc}`);
    assert.equal(m.seed !== undefined, want === 'model', `doc ${m.doc}: a seed exactly on sampled rows`);
    assert.equal(!!m.truth, want === 'known-answer', `doc ${m.doc}: truth only on known-answer rows`);
    assert.ok(m.summary && m.split, `doc ${m.doc}: summary and split`);
    assert.ok(m.pos >= (want === 'known-answer' ? 10 : 1), `doc ${m.doc}: cut at ${m.pos}`);
  }
  assert.equal(rowSource({}), 'known-answer', 'rows of old stores read as known-answer');
  const sampled = all.meta.filter((m) => m.source === 'model');
  assert.equal(sampled.length, 12);
  const seedOf = new Map(sampled.map((m) => [m.doc, m.seed!]));
  assert.deepEqual([...seedOf.values()].sort((a, b) => a - b), [100, 101, 102, 103, 104, 105], 'one distinct recorded seed per sampled document');

  // Regenerate the samples from their seeds: the stored rows are at their tokens, and each
  // summary quotes exactly the decoded text that ends at the cut.
  const M = (await loadModel(file)).model as Llama;
  const tok = loadTokenizerFor(file);
  const docs = await sampleModelText(M, tok, { docs: 6, seed: 100, maxTokens: 80 });
  let fragments = 0;
  for (const m of sampled) {
    const d = docs[m.seed! - 100];
    assert.equal(d.seed, m.seed);
    assert.equal(d.ids[m.pos], m.token, `doc ${m.doc}: the row's token is the sample's token at pos ${m.pos}`);
    const s = describeTextCut(tok, d.ids, m.pos, summaryOptionsOf(store.manifest.summary));
    assert.equal(m.summary, s.summary);
    if (s.fragment) fragments++;
    const context = norm(decodePieces(tok, d.ids).slice(0, m.pos + 1).join(''));
    assert.ok(s.lastWords.length > 0 && context.endsWith(s.lastWords), `doc ${m.doc} pos ${m.pos}: ${JSON.stringify(context.slice(-30))} ends with ${JSON.stringify(s.lastWords)}`);
    assert.ok(m.summary!.endsWith(`Text: ...${s.fragment ? '' : ' '}${s.lastWords}`), m.summary);
    assert.equal(s.lastWords, norm(decodePieces(tok, d.ids)[m.pos]!) || s.lastWords, 'quote "token": the last token read (or a word unit after a whitespace token)');
  }
  assert.ok(fragments > 0, 'some cut of the samples is inside a word');

  // Held-out model text: an untrained NLA (the numbers mean nothing; the bookkeeping does).
  const AR = await Reconstructor.fromModel(M, 3, tok, DEFAULT_PROMPTS);
  const AV = new Verbalizer(new (M.constructor as typeof Llama)(M.cfg, await M.w.clone()), tok, DEFAULT_PROMPTS, 10);
  const nla = { av: AV, ar: AR, tok, layer: 3, variance: store.manifest.variance };
  const st = { ...all, dir: out, sources: src };
  const r = await evaluateModelText(nla, M, st, { docs: 3, maxTokens: 6, docTokens: 60, minTokens: 10, cuts: 2, tokenProbes: true, bestOf: { samples: 3, temperature: 1 } });
  assert.equal(r.seeds.base, 106, 'the default base seed is above every seed of the store');
  const heldSeeds = new Set(r.meta.map((m) => m.seed!));
  assert.ok([...heldSeeds].every((s) => s >= 106 && !seedOf.has(s) && ![...seedOf.values()].includes(s)), 'held-out seeds disjoint from training seeds');
  assert.ok(r.meta.every((m) => m.source === 'model' && m.split === 'eval'));
  assert.equal(r.contexts.length, r.rows);
  for (const k of ['token', 'bigram', 'floor'] as const) assert.ok(Number.isFinite(r[k]), k);
  const p = r.tokenProbes!;
  assert.ok(p.token >= 0 && p.token <= 1 && p.prevToken >= 0 && p.prevToken <= 1 && p.both <= Math.min(p.token, p.prevToken), JSON.stringify(p));
  assert.ok(Number.isFinite(r.greedy.fve) && r.greedy.parseRate >= 0);
  // Best of 3: one pick per row, the AR's closest of the same 3 samples that a plain sampled pass
  // (same seed) averages, so its mean MSE is at most theirs.
  const b = r.bestOf!;
  assert.equal(b.examples.length, r.rows);
  const all3 = await evaluate(AV, AR, r.h, r.meta, nla.variance, { temperature: 1, samples: 3, maxTokens: 6, seed: 0 });
  assert.ok(b.mse <= all3.mse + 1e-9, `best of 3 ${b.mse} vs the mean of the 3 samples ${all3.mse}`);
  const plain = await evaluateModelText(nla, M, st, { docs: 3, maxTokens: 6, docTokens: 60, minTokens: 10, cuts: 2 });
  assert.equal(plain.bestOf, undefined, 'no best-of pass unless asked');
  await assert.rejects(evaluateModelText(nla, M, st, { docs: 3, seed: 104, maxTokens: 6 }), /seeds 104\.\.106 overlap 2 seed\(s\) of the store/);
  // The manifest's range counts even where a sample left no row.
  assert.throws(() => assertSeedsDisjoint(5, 2, new Set([6]), 'x'), /overlap 1 seed/);
  AV.model.w.dispose();
  AR.model.w.dispose();
  M.w.dispose();
  fs.rmSync(run, { recursive: true, force: true });
});

test('bad JSONL and text input: errors name the file and line', { skip: SKIP_NO_MODEL, timeout: 60_000 }, async () => {
  const run = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-model-text-bad-'));
  const jl = path.join(run, 'docs.jsonl'), txt = path.join(run, 'docs.txt');
  fs.writeFileSync(jl, '{"body": "Once upon a time."}\n\n{"body": 3}\n');
  assert.throws(() => readJsonlDocs(jl, 'body'), new RegExp(`${jl.replace(/[.]/g, '\\.')}:3: field "body" missing or not a string`));
  fs.writeFileSync(jl, '{"text": "Once upon a time."}\n{"text": "Lily ran."\n');
  assert.throws(() => readJsonlDocs(jl), /docs\.jsonl:2: not valid JSON/);
  fs.writeFileSync(txt, Buffer.concat([Buffer.from('Once upon a time.\n\nLily ran\n'), Buffer.from([0x66, 0xff, 0x0a])]));
  assert.throws(() => readTextDocs(txt), /docs\.txt:4: not valid UTF-8/);
  fs.writeFileSync(txt, 'One.\nStill one.\n\n\nTwo.\n');
  assert.deepEqual(readTextDocs(txt), ['One.\nStill one.', 'Two.']);
  // Through the CLI: the file is read (and fails) before the model is loaded.
  fs.writeFileSync(jl, '{"text": "Once upon a time."}\n{"story": "Lily ran."}\n');
  const r = await runCli(['extract', '--model', modelFile('stories260K.bin'), '--layer', '3', '--out', path.join(run, 'store'), '--jsonl', jl]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /docs\.jsonl:2: field "text" missing or not a string \(fields: story; choose one with --jsonl-field\)/);
  assert.ok(!fs.existsSync(path.join(run, 'store', 'manifest.json')));
  fs.rmSync(run, { recursive: true, force: true });
});

test('samples of M do not depend on the batch they are drawn in (each document has its own seed)', { skip: SKIP_NO_MODEL, timeout: 120_000 }, async () => {
  const file = modelFile('stories260K.bin');
  const M = (await loadModel(file)).model as Llama;
  const tok = loadTokenizerFor(file);
  const a = await sampleModelText(M, tok, { docs: 5, seed: 7, maxTokens: 40, batchSize: 2 });
  const b = await sampleModelText(M, tok, { docs: 5, seed: 7, maxTokens: 40, batchSize: 5 });
  assert.deepEqual(a.map((d) => d.seed), [7, 8, 9, 10, 11]);
  assert.deepEqual(b.map((d) => d.ids), a.map((d) => d.ids));
  assert.notDeepEqual(a[0]!.ids, a[1]!.ids, 'different seeds, different documents');
  M.w.dispose();
});

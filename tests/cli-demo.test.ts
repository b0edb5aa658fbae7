// The README's main command in its quick form: `nla demo --quick` runs the whole pipeline
// (extract, both warm starts, RL with the learned logit scale, eval) and ends with the JSON
// line the issue specifies; its outputs load back. Its numbers mean nothing at this size, so
// the test checks the contract: every key present and in its range, the files usable.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadNLA } from '../src/nla/nla.js';
import { ActivationStore } from '../src/nla/store.js';
import { okCli } from './cli-helpers.js';
import { requireModels, SKIP_NO_MODEL } from './helpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-demo-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('nla demo --quick: the final JSON line, the table, a loadable NLA and per-step RL metrics', { skip: SKIP_NO_MODEL, timeout: 600_000 }, async () => {
  requireModels(); // the CLI finds them by the same lookup; missing ones fail here, with how to provide them
  const out = path.join(tmp, 'demo');
  // --alpha-scale 1.5: the injection norm in nla.json is 1.5 x the store's 75th percentile of |h|;
  // --warm-start-rows shared: both warm starts read the av and ar rows (the world demo runs the split path).
  const r = await okCli(['demo', '--quick', '--alpha-scale', '1.5', '--warm-start-rows', 'shared', '--model-cut-rule', 'balanced', '--model-doc-tokens', '60', '--model-text-tokens', '70', '--out', out], 540_000); // a hang guard, not a speed bound: 224-280 s on a loaded 2-core machine
  const lines = r.stdout.trim().split('\n');
  const res = JSON.parse(lines[lines.length - 1]) as Record<string, unknown>;
  assert.equal(res.demo, 'nla');
  const fves = ['fve_sft', 'fve_rl', 'fve_sampled_sft', 'fve_sampled_rl_same_t', 'fve_sampled_rl', 'fve_shuffled_other_story', 'fve_shuffled', 'fve_token', 'fve_bigram', 'fve_floor', 'fve_ar_true_summary'];
  const shares = ['facts_sft', 'facts_rl', 'facts_chance', 'facts_probe', 'fields_sft', 'fields_rl', 'fields_chance', 'fields_probe'];
  // Held-out samples of M (issue 10): FVEs on them, their baselines, the gap, quote accuracy.
  const mtFves = ['fve_model_text_sft', 'fve_model_text', 'fve_model_text_token', 'fve_model_text_bigram', 'fve_model_text_floor', 'fve_model_text_ar_true_summary'];
  const mtShares = ['quote_exact', 'quote_loose', 'invented_name_rate', 'quote_fragment_rate', 'quote_exact_sft', 'quote_loose_sft', 'invented_name_rate_sft', 'quote_fragment_rate_sft'];
  const keys = [...fves, 'gain_sampled_same_t', 'gain_sampled', ...shares, 'rl_logit_scale', ...mtFves, 'fve_model_text_gap', ...mtShares, 'model_text_rows', 'minutes'];
  for (const k of keys) {
    assert.equal(typeof res[k], 'number', `${k} is a number`);
    assert.ok(Number.isFinite(res[k]), `${k} = ${res[k]}`);
    assert.ok(r.stdout.includes(`\n${k.padEnd(32)}`), `the table has a row for ${k}`);
  }
  assert.equal(res.eval_split, 'test');
  assert.equal(res.eval_rows, 24, 'the quick demo reports 24 test rows');
  const n = res as Record<string, number>;
  // Unit vectors are at most 2 apart (MSE <= 4), so FVE = 1 - MSE / Var lies in [1 - 4 / Var, 1].
  const { variance, alpha } = JSON.parse(fs.readFileSync(path.join(out, 'nla', 'nla.json'), 'utf8')) as { variance: number; alpha: number };
  assert.ok(variance > 0 && variance < 2, `Var ${variance}`);
  for (const k of [...fves, ...mtFves]) assert.ok(n[k] <= 1 && n[k] >= 1 - 4 / variance, `${k} = ${n[k]} is an FVE of unit vectors`);
  for (const k of [...shares, ...mtShares]) assert.ok(n[k] >= 0 && n[k] <= 1, `${k} = ${n[k]} is a share`);
  for (const k of ['quote_exact', 'quote_exact_sft'] as const) assert.ok(n[k] <= n[k.replace('exact', 'loose')], `${k} <= its loose form`);
  assert.ok(Math.abs(n.fve_model_text_gap - (n.fve_rl - n.fve_model_text)) < 1e-12, 'the gap is fve_rl - fve_model_text');
  // 95% intervals over the held-out documents, each around its figure, and printed against the targets.
  const ci = res.model_text_ci as Record<string, [number, number]>;
  for (const [k, x] of [['fve', n.fve_model_text], ['quote_exact', n.quote_exact], ['invented_name_rate', n.invented_name_rate], ['fve_minus_token', n.fve_model_text - n.fve_model_text_token], ['rl_minus_sft', n.fve_model_text - n.fve_model_text_sft], ['gap', n.fve_model_text_gap]] as const) {
    assert.ok(ci[k]![0] <= ci[k]![1] && ci[k]![0] <= x + 1e-9 && x <= ci[k]![1] + 1e-9, `${k} ${x} in [${ci[k]}]`);
  }
  assert.match(r.stdout, /M's text against issue 10's targets, 95% intervals over its held-out documents/);
  assert.ok(n.fve_model_text_floor < 0 && n.fve_model_text_bigram >= n.fve_model_text_token - 0.05, `model-text baselines: floor ${n.fve_model_text_floor}, token ${n.fve_model_text_token}, bigram ${n.fve_model_text_bigram}`);
  // Quick mode samples 16 training documents of M (seeds 0..15) and 6 held-out ones x 2 cuts.
  assert.ok(Number.isInteger(n.model_text_rows) && n.model_text_rows > 0 && n.model_text_rows <= 12, `model_text_rows ${n.model_text_rows}`);
  type Seeds = { base: number; count: number };
  const trainSeeds = res.train_model_seeds as Seeds, heldSeeds = res.model_text_seeds as Seeds;
  assert.deepEqual(trainSeeds, { base: 0, count: 16 });
  assert.equal(heldSeeds.count, 6);
  assert.ok(heldSeeds.base > trainSeeds.base + trainSeeds.count - 1 || heldSeeds.base + heldSeeds.count - 1 < trainSeeds.base, 'held-out seed range disjoint from the training range');
  // The store really mixes the sources, and no held-out seed is one a stored row came from.
  const store = ActivationStore.open(path.join(out, 'activations'));
  assert.ok(Math.abs(alpha - 1.5 * store.manifest.norms.q75) < 1e-9 * alpha, `alpha ${alpha} = 1.5 x q75 ${store.manifest.norms.q75}`);
  assert.deepEqual(store.manifest.sources?.asked, { 'known-answer': 120, model: 16 });
  assert.equal(store.manifest.sources?.cutRule, 'balanced', 'the cut rule is recorded');
  assert.equal(res.model_cut_rule, 'balanced');
  // M's text is cut from its first token on (the stories from 30), and the store says so.
  assert.equal(res.model_min_tokens, 1);
  assert.equal(store.manifest.sources?.textMinTokens, 1);
  assert.equal(store.manifest.sources?.minTokens, 30);
  // --model-doc-tokens caps the training samples of M, and the store says so; --model-text-tokens the held-out ones.
  assert.equal(res.model_doc_tokens, 60);
  assert.equal(res.model_text_doc_tokens, 70);
  assert.equal(store.manifest.sources?.model?.maxTokens, 60);
  const stored = store.readAll().meta;
  const warmRows = stored.filter((m) => m.split === 'av' || m.split === 'ar').length;
  assert.match(r.stderr, new RegExp(`warm starts: both on the av and ar documents \\(${warmRows} rows each\\)`));
  const storedSeeds = new Set(stored.filter((m) => m.source === 'model').map((m) => m.seed!));
  assert.ok(storedSeeds.size > 0 && [...storedSeeds].every((s) => s >= 0 && s < 16), 'stored samples carry seeds 0..15');
  assert.ok(['av', 'ar', 'rl'].every((sp) => stored.some((m) => m.source === 'model' && m.split === sp)), 'samples of M in every training split');
  assert.ok(stored.some((m) => m.source === 'model' && m.pos < 30), 'samples of M cut before token 30');
  assert.ok(stored.every((m) => (m.source === 'model' ? m.pos >= 1 && m.pos <= 60 : m.pos >= 30)), 'no cut at BOS nor past the cap; the stories from 30');
  const metrics = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const mt = metrics.find((m) => m.stage === 'model-text-rl');
  assert.deepEqual(mt.seeds, heldSeeds);
  assert.equal(mt.docTokens, 70, 'the held-out samples have their own cap');
  // The examples, by rule: every kth held-out row, k the smallest odd step that shows at most 11.
  const ex = metrics.find((m) => m.stage === 'model-text-examples') as { rule: string; of: number; rows: { row: number; seed: number }[] };
  const k = Number(/^every (\d+)th row$/.exec(ex.rule)?.[1]);
  assert.equal(ex.of, n.model_text_rows);
  assert.ok(n.quote_confidence_auc === null || (n.quote_confidence_auc >= 0 && n.quote_confidence_auc <= 1), `quote_confidence_auc ${n.quote_confidence_auc}`);
  assert.ok(k % 2 === 1 && Math.ceil(ex.of / k) <= 11 && (k === 1 || Math.ceil(ex.of / (k - 2)) > 11), `step ${k} for ${ex.of} rows`);
  assert.equal(ex.rows.length, Math.ceil(ex.of / k));
  assert.ok(ex.rows.every((e) => e.row % k === 0 && !storedSeeds.has(e.seed) && e.seed >= heldSeeds.base && e.seed < heldSeeds.base + heldSeeds.count), `examples: every ${k}th held-out row, seeds not trained on`);
  assert.match(r.stdout, new RegExp(`held-out samples of M, every ${k}th row of ${ex.of}`), 'the examples are on stdout');
  // The failures, by rule: every kth of the rows with a wrong quote or an invented name (at most 7), and only those.
  const wrong = metrics.find((m) => m.stage === 'model-text-examples-wrong') as { rule: string; of: number; rows: { quote_exact: boolean; invented: string[] }[] };
  const wk = Number(/^every (\d+)th row/.exec(wrong.rule)?.[1]);
  assert.ok(wk % 2 === 1 && wrong.rows.length <= 7);
  assert.equal(wrong.rows.length, Math.ceil(wrong.of / wk));
  assert.ok(wrong.rows.every((x) => !x.quote_exact || x.invented.length > 0), 'only failures are shown');
  const nonExact = Math.round((1 - n.quote_exact) * n.model_text_rows), invented = Math.round(n.invented_name_rate * n.model_text_rows);
  assert.ok(wrong.of >= nonExact && wrong.of <= nonExact + invented, `failures ${wrong.of}: ${nonExact} wrong quotes, ${invented} with invented names`);
  assert.ok(Math.abs(n.gain_sampled - (n.fve_sampled_rl - n.fve_sampled_sft)) < 1e-12 && Math.abs(n.gain_sampled_same_t - (n.fve_sampled_rl_same_t - n.fve_sampled_sft)) < 1e-12, 'gains are differences of the reported FVEs');
  assert.notEqual(n.fve_sampled_rl_same_t, n.fve_sampled_rl, 'dividing the learned scale out changes the samples');
  // Chance of the facts: between the rarest field's 1/8 and emotion's 1/4, the facts' own values only.
  assert.ok(n.facts_chance >= 1 / 8 && n.facts_chance <= 1 / 4, `facts_chance ${n.facts_chance}`);
  // Per field: sft, rl, probe shares; chance 1/(number of values); rows where the field is known.
  type Field = { sft: number; rl: number; chance: number; probe: number; n: number };
  const perField = res.facts_fields as Record<string, Field>;
  assert.deepEqual(Object.keys(perField), ['name', 'place', 'object', 'emotion']);
  const choices: Record<string, number> = { name: 8, place: 6, object: 8, emotion: 4 };
  let pooled = 0, rows = 0;
  for (const [f, v] of Object.entries(perField)) {
    for (const k of ['sft', 'rl', 'probe'] as const) assert.ok(v[k] >= 0 && v[k] <= 1, `${f}.${k} = ${v[k]}`);
    assert.equal(v.chance, 1 / choices[f]);
    assert.ok(Number.isInteger(v.n) && v.n > 0 && v.n <= 24, `${f}: ${v.n} rows`);
    assert.ok(r.stdout.includes(`\n${f.padEnd(14)}`), `the per-field table has a row for ${f}`);
    pooled += v.rl * v.n;
    rows += v.n;
  }
  assert.ok(Math.abs(pooled / rows - n.facts_rl) < 1e-9, 'facts_rl pools the per-field shares by their rows');
  const cw = res.current_word as Field;
  for (const k of ['sft', 'rl', 'chance', 'probe'] as const) assert.ok(cw[k] >= 0 && cw[k] <= 1, `current_word.${k} = ${cw[k]}`);
  assert.equal(cw.n, 24, 'every row has a current word');
  assert.ok(n.fve_floor < 0 && n.fve_bigram >= n.fve_token, `baselines: floor ${n.fve_floor}, token ${n.fve_token}, bigram ${n.fve_bigram}`);
  assert.ok(n.rl_logit_scale !== 1 && n.rl_logit_scale > 0.5 && n.rl_logit_scale < 2, `RL learned a logit scale (${n.rl_logit_scale})`);
  assert.ok(n.minutes > 0);

  const rl = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((m) => m.stage === 'rl');
  assert.equal(rl.length, 4, 'one metrics line per RL step');
  assert.equal(rl[rl.length - 1].logitScale, n.rl_logit_scale, 'the result reports the last step\'s scale');
  for (const m of rl) for (const p of ['generate', 'score', 'ar', 'av']) assert.ok(m.phases[p] >= 0, `phase ${p} timed`);
  assert.ok(fs.readFileSync(path.join(out, 'rl-curves.svg'), 'utf8').includes('logit scale'));

  for (const dir of ['nla', 'nla-sft']) {
    const nla = await loadNLA(path.join(out, dir));
    const [t] = await nla.explain('Lily went to the park.', [3]);
    assert.equal(t.position, 3);
    assert.ok(t.explanations.length === 1 && Number.isFinite(t.explanations[0].mse), `${dir} explains and scores`);
    nla.dispose();
  }
});

// `nla demo --world --quick` (issue 11): the whole chain on a tiny world-M (trained, then reused
// from its directory), ending with the {"demo":"world",...} line. Its numbers mean nothing at
// this size, so the test checks the contract: every figure present, a number in its range, or
// null only where its denominator is empty (no claim made, no cued row).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { okCli, runCli } from './cli-helpers.js';
import { misplacedFlag } from '../src/cli/demo.js';
import { loadOrTrainWorldModel, WORLD_DEMO_DEFAULTS } from '../src/nla/demo-world.js';
import { FIELD_VALUES } from '../src/nla/corpus.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-demo-world-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const lastJson = (stdout: string) => JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
const FIELDS = ['name', 'place', 'object', 'colour', 'emotion', 'event'];

test('nla demo --world --quick: trains world-M, runs the chain, prints the table and the JSON line; then reuses world-M from its directory', { timeout: 300_000 }, async () => {
  const out = path.join(tmp, 'w');
  // --quote-weight, --av-lr and --max-tokens reach the world demo (checked in nla.json below).
  const r = await okCli(['demo', '--world', '--quick', '--quote-weight', '2', '--av-lr', '0.003', '--max-tokens', '20', '--out', out], 280_000);
  const res = lastJson(r.stdout);
  assert.equal(res.demo, 'world');
  assert.equal(res.world_trained, true);
  assert.equal(res.world_model, path.resolve(out, 'world-M-quick'));
  for (const f of ['world-M.bin', 'tok512.bin', 'world.json', 'hf/config.json']) assert.ok(fs.existsSync(path.join(out, 'world-M-quick', f)), `world-M saved: ${f}`);
  for (const f of ['nla-sft/nla.json', 'nla/nla.json', 'metrics.jsonl']) assert.ok(fs.existsSync(path.join(out, f)), `${f} written`);
  assert.equal(res.at, 'cue');
  assert.equal(res.summary, 'held');
  // Held summaries: per field, the share of rows stating it besides the cued fact, and the gate's precision.
  const held = res.held_share as Record<string, number>;
  assert.deepEqual(Object.keys(held), FIELDS);
  for (const f of FIELDS) assert.ok(held[f]! >= 0 && held[f]! <= 1, `held_share.${f} = ${held[f]}`);
  assert.equal(res.held_precision, 0.9);
  assert.equal(res.layer, 1, 'the last block of the 2-block quick world-M');
  assert.equal(res.eval_rows, 8);
  const n = res as Record<string, number>;
  const variance = (JSON.parse(fs.readFileSync(path.join(out, 'nla', 'nla.json'), 'utf8')) as { variance: number }).variance;
  assert.ok(variance > 0 && variance < 2, `Var ${variance}`);
  // Unit vectors are at most 2 apart, so an FVE lies in [1 - 4 / Var, 1].
  for (const k of ['fve_sft', 'fve_rl', 'fve_token', 'fve_bigram', 'fve_floor', 'fve_ar_true_summary', 'fve_shuffled_other_story']) {
    assert.equal(typeof res[k], 'number', `${k} is a number`);
    assert.ok(n[k] <= 1 && n[k] >= 1 - 4 / variance, `${k} = ${n[k]} is an FVE of unit vectors`);
  }
  for (const k of ['world_recall', 'world_first_seen', 'world_first_control', 'no_false_claim_sft', 'no_false_claim_rl']) assert.ok(typeof res[k] === 'number' && n[k] >= 0 && n[k] <= 1, `${k} = ${res[k]} is a share`);
  assert.ok(n.minutes > 0 && n.minutes < 10, `minutes ${n.minutes}`);
  assert.equal(n.fact_weight, WORLD_DEMO_DEFAULTS.avSft.factWeight ?? 1, 'the AV warm start\'s fact weight is reported');
  assert.equal(n.claim_cost, WORLD_DEMO_DEFAULTS.rl.claimCost, 'RL\'s claim cost is reported');
  assert.equal(n.quote_weight, 2, 'the AV warm start\'s quote weight, from --quote-weight');
  const trained = (JSON.parse(fs.readFileSync(path.join(out, 'nla-sft', 'nla.json'), 'utf8')) as { training: { demo: { avSft: { lr: number }; maxTokens: number; rl: { maxTokens: number } } } }).training.demo;
  assert.equal(trained.avSft.lr, 0.003, '--av-lr reached the AV warm start');
  assert.equal(trained.maxTokens, 20, '--max-tokens reached the evaluation');
  assert.equal(trained.rl.maxTokens, 20, '--max-tokens reached the RL rollouts');
  assert.match(r.stderr, /the opening quotation's tokens weighted 2/);
  assert.deepEqual(n.claim_fields, WORLD_DEMO_DEFAULTS.rl.claimFields, 'and the fields it charges');
  assert.equal(n.quote_words, WORLD_DEMO_DEFAULTS.quoteWords, 'the quoted word units are reported');
  const fields = res.fields as Record<string, Record<string, number | null>>;
  assert.deepEqual(Object.keys(fields), FIELDS);
  const share = (x: number | null | undefined) => typeof x === 'number' && x >= 0 && x <= 1;
  for (const f of FIELDS) {
    const x = fields[f]!;
    // Always defined: recall (over rows where the fact was read), chance, the probe ceilings.
    for (const k of ['recall_sft', 'recall_rl', 'chance', 'chance_recall', 'probe', 'probe_recall_p90']) assert.ok(share(x[k]), `${f}.${k} = ${x[k]}`);
    // The probe held to precision 0.9 states a value on some rows or none: its precision is null only when it states none.
    assert.ok(x.probe_precision_p90 === null ? x.probe_recall_p90 === 0 : share(x.probe_precision_p90), `${f}: probe_precision_p90 ${x.probe_precision_p90}`);
    // Precision and confabulation: undefined (null) only when nothing was stated; otherwise they sum to 1.
    for (const s of ['sft', 'rl']) {
      const p = x[`precision_${s}`], c = x[`confab_${s}`];
      if (p === null) assert.equal(c, null, `${f}: confab_${s} null with precision`);
      else assert.ok(share(p) && share(c) && Math.abs(p! + c! - 1) < 1e-9, `${f}: precision_${s} ${p} + confab_${s} ${c} = 1`);
    }
    // Intervals hold their figure; the paired change is RL minus SFT on the same rows.
    const within = (y: number | null, ci: [number | null, number | null]) => y === null || (ci[0] !== null && ci[1] !== null && ci[0] <= y + 1e-12 && y <= ci[1] + 1e-12);
    const xi = x as unknown as Record<string, [number | null, number | null]> & { confab_change: { diff: number | null; ci: [number | null, number | null] } };
    assert.ok(within(x.precision_rl, xi.precision_rl_ci) && within(x.precision_sft, xi.precision_sft_ci) && within(x.confab_rl, xi.confab_rl_ci), `${f}: intervals ${JSON.stringify([xi.precision_sft_ci, xi.precision_rl_ci, xi.confab_rl_ci])}`);
    if (x.confab_rl !== null && x.confab_sft !== null) assert.ok(Math.abs(xi.confab_change.diff! - (x.confab_rl - x.confab_sft)) < 1e-9, `${f}: confab_change = confab_rl - confab_sft`);
    assert.ok(Number.isInteger(x.rows_cued) && x.rows_cued! >= 0);
    for (const k of ['probe_cued', 'recall_cued_sft', 'recall_cued_rl']) assert.ok(x.rows_cued === 0 ? x[k] === null : share(x[k]), `${f}.${k} = ${x[k]} (${x.rows_cued} cued rows)`);
  }
  assert.ok(FIELDS.reduce((a, f) => a + fields[f]!.rows_cued!, 0) > 0, 'some scored rows are cue cuts');
  assert.ok(Number.isInteger(n.eval_docs) && n.eval_docs >= 1 && n.eval_docs <= 8, `eval_docs ${n.eval_docs}`);
  const nfc = res.no_false_claim_change as { diff: number; ci: [number, number] };
  assert.ok(Math.abs(nfc.diff - (n.no_false_claim_rl - n.no_false_claim_sft)) < 1e-9, 'no_false_claim_change = rl - sft');
  assert.match(r.stdout, /95% intervals \(bootstrap over the \d+ scored stories/);
  assert.equal(fields.emotion!.rows_cued, 0, 'the emotion is never recalled, so never cued');
  for (const s of ['sft', 'rl']) {
    const ab = res[`ablations_${s}`] as { rows: number; swap: object; removed: object };
    assert.ok(Number.isInteger(ab.rows) && ab.rows >= 0 && ab.rows <= 8, `ablations_${s}.rows`);
    assert.equal(typeof ab.swap, 'object');
    assert.equal(typeof ab.removed, 'object');
    for (const [f, x] of Object.entries(ab.swap as Record<string, { follows: number; follows_known: number; probe_rows: string }>)) {
      assert.ok(share(x.follows) && share(x.follows_known), `swap ${f}: follows ${x.follows}, follows_known ${x.follows_known}`);
      assert.ok(['stated', 'known'].includes(x.probe_rows), `swap ${f}: probe_rows ${x.probe_rows}`);
    }
  }
  for (const k of ['world_recall', 'fve_rl', 'fve_bigram', 'no_false_claim_rl', 'minutes']) assert.ok(r.stdout.includes(`\n${k.padEnd(28)}`), `the table has a row for ${k}`);
  assert.match(r.stdout, /\nname {6}/, 'the per-fact table has a row per field');
  assert.match(r.stdout, /content ablations after RL/);
  const costs = res.confusion_cost as Record<string, { min: number; mean: number; pair: string[] }>;
  assert.ok(Object.keys(costs).length > 0, 'confusion costs reported');
  for (const [f, c] of Object.entries(costs)) assert.ok(c.min >= 0 && c.mean >= c.min && c.pair.length === 2 && c.pair.every((v) => (FIELD_VALUES as Record<string, readonly string[]>)[f]!.includes(v)), `confusion cost ${f}: ${JSON.stringify(c)}`);
  assert.match(r.stdout, /FVE lost by naming another value/);

  assert.match(r.stderr, /world-M: training 2 blocks, d 32/);

  // nla faithfulness --explanations: one line per scored row, whose claims add up to the report's per-field counts.
  const rowsFile = path.join(tmp, 'rows.jsonl');
  // --against the warm start: the same paired changes as the demo's (the same rows, greedy explanations).
  const fr = await okCli(['faithfulness', '--nla', path.join(out, 'nla'), '--against', path.join(out, 'nla-sft'), '--store', path.join(out, 'activations'), '--split', 'test', '--rows', '8', '--json', '--explanations', rowsFile], 180_000);
  const rep = lastJson(fr.stdout) as { rows: number; fields: Record<string, { stated: number; confab: number | null }>; changes: { fields: Record<string, { confab: { diff: number | null } }>; no_false_claim: { diff: number } } };
  for (const f of FIELDS) assert.equal(rep.changes.fields[f]!.confab.diff, (fields[f] as unknown as { confab_change: { diff: number | null } }).confab_change.diff, `${f}: --against gives the demo's change`);
  assert.equal(rep.changes.no_false_claim.diff, nfc.diff);
  const lines = fs.readFileSync(rowsFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { row: number; truth: Record<string, string>; explanation: string | null; claims: { field: string; said: string[]; truth: string | null; ok: boolean }[] });
  assert.equal(lines.length, rep.rows);
  assert.deepEqual(lines.map((l) => l.row), [...Array(rep.rows).keys()]);
  for (const l of lines) {
    for (const c of l.claims) {
      assert.equal(c.truth, l.truth[c.field] ?? null, `row ${l.row}: the claim's truth is the row's`);
      assert.equal(c.ok, c.said.length === 1 && c.said[0] === c.truth, `row ${l.row}: ${c.field} ${c.said} vs ${c.truth}`);
    }
    if (l.explanation === null) assert.deepEqual(l.claims, []);
  }
  for (const f of FIELDS) {
    const mine = lines.flatMap((l) => l.claims.filter((c) => c.field === f));
    assert.equal(mine.length, rep.fields[f]!.stated, `${f}: stated claims`);
    if (mine.length) assert.ok(Math.abs(mine.filter((c) => !c.ok).length / mine.length - rep.fields[f]!.confab!) < 1e-9, `${f}: false claims`);
  }

  // Reuse: the same directory is loaded, not retrained (checked in-process; the chain after it is the one above).
  const logs: string[] = [];
  const dir = path.join(out, 'world-M-quick');
  const binBefore = fs.statSync(path.join(dir, 'world-M.bin')).mtimeMs;
  const wm = await loadOrTrainWorldModel({ worldModel: dir, tokenizer: 'no-such-tokenizer.bin', train: WORLD_DEMO_DEFAULTS.train, recallStories: 1 }, (s) => logs.push(s));
  assert.equal(wm.trained, false);
  assert.equal(wm.bin, path.join(dir, 'world-M.bin'));
  assert.equal(wm.report.recall?.pooled, res.world_recall, 'the reused world-M reports its saved recall');
  assert.equal(fs.statSync(wm.bin).mtimeMs, binBefore, 'world-M.bin untouched');
  assert.match(logs.join('\n'), /reusing/);
});

test('nla demo --world refuses --model (world-M is the model) and names the flag', async () => {
  const r = await runCli(['demo', '--world', '--model', 'x.bin', '--out', path.join(tmp, 'bad')], 60_000);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /--world-model/);
});

test('nla demo refuses a flag of the other demo by name: --world with a stories flag, the stories demo with a world flag', async () => {
  for (const args of [['--world', '--alpha-scale', '2'], ['--world', '--model-cuts', '4']]) {
    const r = await runCli(['demo', ...args, '--out', path.join(tmp, 'bad-flag')], 60_000);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, new RegExp(`nla demo --world: ${args[1]} applies to the stories demo only`));
  }
  const r = await runCli(['demo', '--world-summary', 'cued', '--out', path.join(tmp, 'bad-flag')], 60_000);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /nla demo: --world-summary applies to the world demo only \(add --world\)/);
  assert.ok(!fs.existsSync(path.join(tmp, 'bad-flag')), 'refused before any work');
});

test('misplacedFlag: each demo\'s own flags pass, every flag of the other is named', () => {
  const only = (key: string) => (k: string) => k === key;
  for (const k of ['modelSamples', 'modelCuts', 'lengthPool', 'alphaScale', 'warmStartRows', 'quote', 'factsWindow', 'arRefitSteps', 'arRefitRows']) {
    assert.match(misplacedFlag(only(k), true) ?? '', /--world: --[a-z-]+ applies to the stories demo only/, k);
    assert.equal(misplacedFlag(only(k), false), undefined, k);
  }
  for (const k of ['worldModel', 'worldSummary', 'heldPrecision', 'factWeight']) {
    assert.match(misplacedFlag(only(k), false) ?? '', /--[a-z-]+ applies to the world demo only/, k);
    assert.equal(misplacedFlag(only(k), true), undefined, k);
  }
  for (const k of ['seed', 'avSteps', 'avLr', 'quoteWeight', 'maxTokens', 'quoteWords', 'prompts', 'claimCost']) {
    assert.equal(misplacedFlag(only(k), true), undefined, k);
    assert.equal(misplacedFlag(only(k), false), undefined, k);
  }
});

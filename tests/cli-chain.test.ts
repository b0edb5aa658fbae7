// The directory chain through the CLI, tiny: extract -> sft-ar (checkpoint, then --resume to
// more steps) -> sft-av -> rl -> eval -> explain. Checks what each step writes and that the
// next step reads it; not the quality of the (barely trained) NLA.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { okCli, runCli } from './cli-helpers.js';
import { modelFile, SKIP_NO_MODEL } from './helpers.js';

const lines = (f: string) => fs.readFileSync(f, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

test('extract -> sft-ar (+ resume) -> sft-av -> rl -> eval -> explain', { skip: SKIP_NO_MODEL, timeout: 240_000 }, async () => {
  const M = modelFile('stories260K.bin');
  const run = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-chain-'));
  const store = path.join(run, 'activations'), dir = path.join(run, 'nla'), metrics = path.join(run, 'metrics.jsonl');

  await okCli(['extract', '--model', M, '--layer', '3', '--out', store, '--stories', '24', '--cuts', '2']);
  const manifest = JSON.parse(fs.readFileSync(path.join(store, 'manifest.json'), 'utf8'));
  assert.equal(manifest.layer, 3);
  assert.equal(manifest.count, 48);
  const again = await runCli(['extract', '--model', M, '--layer', '3', '--out', store, '--stories', '4']);
  assert.notEqual(again.code, 0);
  assert.match(again.stderr, /already holds an activation store; pass --force/);

  // AR warm start from a --config file, 4 steps with a checkpoint every 2; then resume to 6.
  const cfg = path.join(run, 'sft-ar.json');
  fs.writeFileSync(cfg, JSON.stringify({ store, model: M, out: dir, 'batch-size': 4, warmup: 1, 'log-every': 1, 'checkpoint-every': 2, 'eval-rows': 4, metrics }));
  await okCli(['sft-ar', '--config', cfg, '--steps', '4']);
  assert.ok(fs.existsSync(path.join(dir, 'ar.safetensors')) && fs.existsSync(path.join(dir, 'nla.json')) && !fs.existsSync(path.join(dir, 'av.safetensors')));
  const partial = await runCli(['eval', '--nla', dir, '--store', store]);
  assert.notEqual(partial.code, 0);
  assert.match(partial.stderr, /no av\.safetensors yet/);
  const resumed = await okCli(['sft-ar', '--config', cfg, '--steps', '6', '--resume']);
  assert.match(resumed.stderr, /resuming at step 4/);
  const arSteps = lines(metrics).filter((m) => m.stage === 'sft-ar').map((m) => m.step);
  assert.deepEqual(arSteps, [0, 1, 2, 3, 4, 5], 'metrics: each step once across the two runs');
  assert.ok(lines(metrics).some((m) => m.stage === 'sft-ar-eval' && typeof m.fve === 'number'));

  await okCli(['sft-av', '--store', store, '--model', M, '--out', dir, '--steps', '3', '--batch-size', '4', '--eval-rows', '2', '--max-tokens', '12', '--metrics', metrics]);
  const meta = JSON.parse(fs.readFileSync(path.join(dir, 'nla.json'), 'utf8'));
  assert.equal(meta.maxExplanationTokens, 12);
  assert.ok(meta.training['sft-ar'] && meta.training['sft-av']);

  const rl = await okCli(['rl', '--nla', dir, '--store', store, '--steps', '2', '--activations-per-step', '2', '--group-size', '2', '--metrics', metrics]);
  assert.match(rl.stdout, /sampled FVE/);
  assert.ok(fs.existsSync(path.join(dir, 'av-ref.safetensors')) && fs.existsSync(path.join(dir, 'checkpoints', 'rl.ckpt')));
  const rlm = lines(metrics).filter((m) => m.stage === 'rl');
  assert.deepEqual(rlm.map((m) => m.step), [0, 1]);
  for (const k of ['reward', 'fveSampled', 'kl', 'length']) assert.equal(typeof rlm[0][k], 'number', k);
  const logitScale = JSON.parse(fs.readFileSync(path.join(dir, 'nla.json'), 'utf8')).training.rl.logitScale;
  assert.equal(logitScale, rlm[1].logitScale, 'nla.json records the learned logit scale of the last step');

  const rowsFile = path.join(run, 'eval-rows.jsonl');
  const ev = await okCli(['eval', '--nla', dir, '--store', store, '--rows', '4', '--no-sampled', '--json', '--model-text', '2', '--model-text-cuts', '2', '--model-text-tokens', '48', '--explanations', rowsFile]);
  const e = JSON.parse(ev.stdout);
  assert.equal(e.rows, 4);
  // --explanations: every scored row, whose per-row figures average to the reported ones.
  const rowsOut = fs.readFileSync(rowsFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; row: number; fve: number; explanation: string | null; context?: string; quote_exact?: boolean });
  const kind = (k: string) => rowsOut.filter((l) => l.kind === k);
  const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / xs.length;
  assert.deepEqual(kind('store').map((l) => l.row), [0, 1, 2, 3]);
  assert.ok(Math.abs(mean(kind('store').map((l) => l.fve)) - e.fve_greedy) < 1e-9, 'store rows: mean row FVE = fve_greedy');
  assert.equal(kind('model_text').length, e.model_text_rows);
  assert.ok(Math.abs(mean(kind('model_text').map((l) => l.fve)) - e.fve_model_text) < 1e-9, 'model-text rows: mean row FVE = fve_model_text');
  assert.equal(kind('model_text').filter((l) => l.quote_exact).length / e.model_text_rows, e.quote_exact);
  assert.ok(kind('model_text').every((l) => typeof l.context === 'string' && l.context.length > 0));
  // quote_p: the AV's own probability of an explanation's opening quotation, there exactly when it has one.
  const opens = (t: string | null) => t !== null && /^"(.*?)"\./s.test(t);
  for (const l of rowsOut as { explanation: string | null; quote_p?: number | null }[]) {
    assert.ok(opens(l.explanation) ? typeof l.quote_p === 'number' && l.quote_p > 0 && l.quote_p <= 1 : l.quote_p === null, `quote_p ${l.quote_p} for ${JSON.stringify(l.explanation)}`);
  }
  assert.ok(e.quote_confidence_auc === null || (e.quote_confidence_auc >= 0 && e.quote_confidence_auc <= 1), `quote_confidence_auc ${e.quote_confidence_auc}`);
  // Intervals over the held-out documents, each around its figure (model-text-intervals.ts).
  const ci = e.model_text_ci as Record<string, [number, number]>;
  for (const [k, x] of [['fve', e.fve_model_text], ['quote_exact', e.quote_exact], ['invented_name_rate', e.invented_name_rate], ['fve_minus_token', e.fve_model_text - e.fve_model_text_token], ['gap', e.fve_gap]] as const) {
    assert.ok(ci[k]![0] <= x + 1e-9 && x <= ci[k]![1] + 1e-9, `${k} ${x} in [${ci[k]}]`);
  }
  assert.equal(ci.rl_minus_sft, undefined, 'eval scores one NLA: no paired RL change');
  for (const k of ['fve_greedy', 'fve_shuffled', 'fve_shuffled_other_story', 'parse_rate', 'fve_token', 'fve_bigram', 'fve_floor', 'facts', 'facts_chance', 'fields', 'fields_chance']) assert.equal(typeof e[k], 'number', k);
  assert.equal(e.facts_fields.currentWord.n, 4, 'every row has a current word');
  for (const [f, v] of Object.entries(e.facts_fields as Record<string, { stated: number; chance: number; n: number }>)) assert.ok(v.stated >= 0 && v.stated <= 1 && v.chance > 0 && v.chance <= 1 && v.n > 0, `${f}: ${JSON.stringify(v)}`);
  // --against: an NLA against itself changes by exactly 0 on every figure, with zero-width intervals.
  const self = JSON.parse((await okCli(['eval', '--nla', dir, '--against', dir, '--store', store, '--rows', '4', '--no-sampled', '--json', '--model-text', '2', '--model-text-cuts', '2', '--model-text-tokens', '48'])).stdout);
  assert.equal(self.against, dir);
  assert.equal(self.fve_greedy_against, self.fve_greedy);
  assert.deepEqual(Object.keys(self.changes).sort(), ['fve_greedy', 'fve_model_text', 'quote_exact']);
  for (const [k, ch] of Object.entries(self.changes as Record<string, { diff: number; ci: [number, number] }>)) assert.deepEqual(ch, { diff: 0, ci: [0, 0] }, k);
  const evTest = JSON.parse((await okCli(['eval', '--nla', dir, '--store', store, '--split', 'test', '--rows', '2', '--no-sampled', '--json'])).stdout);
  assert.equal(evTest.rows, 2, 'the test half of the held-out stories is evaluable');

  const ex = await okCli(['explain', '--nla', dir, '--text', 'Once upon a time', '--position', '1,3', '--json']);
  const x = JSON.parse(ex.stdout);
  assert.deepEqual(x.tokens.map((t: { position: number }) => t.position), [1, 3]);
  assert.equal(typeof x.tokens[0].explanations[0].fve, 'number');
  for (const t of x.tokens as { explanations: { text: string; quoteP?: number }[] }[]) for (const y of t.explanations) {
    assert.ok(opens(y.text) ? typeof y.quoteP === 'number' && y.quoteP > 0 && y.quoteP <= 1 : y.quoteP === undefined, `quoteP ${y.quoteP} for ${JSON.stringify(y.text)}`);
  }
  fs.rmSync(run, { recursive: true, force: true });
});

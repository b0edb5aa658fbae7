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
import { okCli } from './cli-helpers.js';
import { SKIP_NO_MODEL } from './helpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-demo-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('nla demo --quick: the final JSON line, the table, a loadable NLA and per-step RL metrics', { skip: SKIP_NO_MODEL, timeout: 300_000 }, async () => {
  const out = path.join(tmp, 'demo');
  const r = await okCli(['demo', '--quick', '--out', out], 280_000);
  const lines = r.stdout.trim().split('\n');
  const res = JSON.parse(lines[lines.length - 1]) as Record<string, unknown>;
  assert.equal(res.demo, 'nla');
  const keys = ['fve_sft', 'fve_rl', 'fve_sampled_sft', 'fve_sampled_rl', 'fve_shuffled', 'fve_token', 'fve_bigram', 'fve_floor', 'fields_sft', 'fields_rl', 'fields_chance', 'fields_probe', 'rl_logit_scale', 'minutes'];
  for (const k of keys) {
    assert.equal(typeof res[k], 'number', `${k} is a number`);
    assert.ok(Number.isFinite(res[k]), `${k} = ${res[k]}`);
    assert.ok(r.stdout.includes(`\n${k.padEnd(16)}`), `the table has a row for ${k}`);
  }
  const n = res as Record<string, number>;
  // Unit vectors are at most 2 apart (MSE <= 4), so FVE = 1 - MSE / Var lies in [1 - 4 / Var, 1].
  const variance = (JSON.parse(fs.readFileSync(path.join(out, 'nla', 'nla.json'), 'utf8')) as { variance: number }).variance;
  assert.ok(variance > 0 && variance < 2, `Var ${variance}`);
  for (const k of ['fve_sft', 'fve_rl', 'fve_sampled_sft', 'fve_sampled_rl', 'fve_shuffled', 'fve_token', 'fve_bigram', 'fve_floor']) assert.ok(n[k] <= 1 && n[k] >= 1 - 4 / variance, `${k} = ${n[k]} is an FVE of unit vectors`);
  for (const k of ['fields_sft', 'fields_rl', 'fields_chance', 'fields_probe']) assert.ok(n[k] >= 0 && n[k] <= 1, `${k} = ${n[k]} is a share`);
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

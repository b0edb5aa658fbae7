// The `nla world` and `nla faithfulness` commands: help that teaches, stories with their facts,
// errors that name the flag or the file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { okCli, runCli } from './cli-helpers.js';
import { worldStory } from '../src/nla/world.js';

test('nla world sample prints story i of a seed with its facts and recalls', async () => {
  const r = await okCli(['world', 'sample', '--n', '1', '--seed', '3'], 120_000);
  const s = worldStory(3, 0);
  assert.ok(r.stdout.includes(s.text));
  assert.ok(r.stdout.includes(`name=${s.latents.name}`) && r.stdout.includes(`emotion=${s.latents.emotion}`));
  assert.match(r.stdout, /recalls: name@\d+|recalls: \w+@\d+/);
});

test('help teaches: world train / probe / extract and faithfulness explain their figures and give examples', async () => {
  const train = await okCli(['world', 'train', '--help'], 120_000);
  assert.match(train.stdout, /recall-token accuracy/);
  assert.match(train.stdout, /control/);
  assert.match(train.stdout, /Example/);
  const probe = await okCli(['world', 'probe', '--help'], 120_000);
  assert.match(probe.stdout, /--at <rule>/);
  const f = await okCli(['faithfulness', '--help'], 120_000);
  for (const w of ['precision', 'confabulation', 'recall', 'probe', 'swapped']) assert.match(f.stdout, new RegExp(w));
});

test('errors name what is wrong', async () => {
  const a = await runCli(['world', 'probe', '--stories', '10'], 120_000);
  assert.notEqual(a.code, 0);
  assert.match(a.stderr, /needs --model/);
  const b = await runCli(['faithfulness', '--nla', '/nonexistent/nla', '--store', '/nonexistent/s'], 120_000);
  assert.notEqual(b.code, 0);
  assert.match(b.stderr, /\/nonexistent\/nla: not an NLA directory/);
  const c = await runCli(['world', 'train', '--dim', '30', '--heads', '4', '--steps', '1', '--out', '/tmp/nla-world-bad'], 120_000);
  assert.notEqual(c.code, 0);
  assert.match(c.stderr, /dim 30 is not divisible by nHeads 4/);
});

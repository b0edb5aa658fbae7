// The CLI on a reference NLA pair (fixture: tests/reference-fixture.ts): `nla explain` with
// --nla DIR (holding av/ and ar/) and with --av DIR --ar DIR gives the same greedy output, with
// FVE over Var computed from the text's own activations (the sidecars carry none);
// half a pair or both forms at once are refused saying why; `nla rl` on a pair writes a new pair.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { trainingStats } from '../src/cli/nla-dir.js';
import { loadNLA } from '../src/nla/nla.js';
import { ActivationStore } from '../src/nla/store.js';
import { okCli, runCli } from './cli-helpers.js';
import { SKIP_NO_MODEL } from './helpers.js';
import { buildReferencePair, type Fixture } from './reference-fixture.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-cli-ref-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
let f: Fixture;
before(async () => {
  if (!SKIP_NO_MODEL) f = await buildReferencePair(path.join(tmp, 'pair'), 'llama3');
});

test('nla explain reads a reference pair by --nla DIR and by --av/--ar, with --model for M', { skip: SKIP_NO_MODEL, timeout: 180_000 }, async () => {
  const args = ['--model', f.base, '--text', 'Once upon', '--position', '0,2', '--max-tokens', '3', '--json'];
  const a = JSON.parse((await okCli(['explain', '--nla', f.nla, ...args], 120_000)).stdout);
  assert.equal(a.layer, f.K);
  assert.deepEqual(a.tokens.map((t: { position: number }) => t.position), [0, 2]);
  // Llama 3 has a BOS: position 0 is <|begin_of_text|>, 2 is the second byte of "Once".
  assert.deepEqual(a.tokens.map((t: { token: string }) => t.token), ['<|begin_of_text|>', 'n']);
  // The sidecars carry no Var: it is computed over this text's activations at every token, and said.
  assert.match(a.variance_note, /^Var \d+\.\d{3} computed over the activations at every token of this text: the reference sidecars carry no Var/);
  const nla = await loadNLA(f.nla, { model: f.base });
  const { variance } = nla.statsOf((await nla.activations('Once upon')).h);
  nla.dispose();
  assert.equal(a.variance, variance);
  for (const t of a.tokens) {
    assert.match(t.explanations[0].text, /^\(unparseable\)/);
    assert.equal(t.explanations[0].mse, 2);
    assert.equal(t.explanations[0].fve, 1 - 2 / variance);
  }
  const b = JSON.parse((await okCli(['explain', '--av', f.av, '--ar', f.ar, ...args], 120_000)).stdout);
  assert.deepEqual(b.tokens, a.tokens);
});

test('half a pair, --nla with --av/--ar, or nla rl on a pair without --out are refused saying why', { skip: SKIP_NO_MODEL, timeout: 120_000 }, async () => {
  const half = await runCli(['explain', '--av', f.av, '--text', 'x']);
  assert.notEqual(half.code, 0);
  assert.match(half.stderr, /--av and --ar go together/);
  const both = await runCli(['explain', '--nla', f.nla, '--av', f.av, '--ar', f.ar, '--text', 'x']);
  assert.match(both.stderr, /either --nla or --av\/--ar, not both/);
  const rl = await runCli(['rl', '--nla', f.nla, '--store', path.join(tmp, 'none')]);
  assert.notEqual(rl.code, 0);
  assert.match(rl.stderr, /a reference NLA pair is written to a new directory: give --out DIR/);
});

test('nla rl on a reference pair: Var from the store\'s training rows, the result written as a new pair that loads', { skip: SKIP_NO_MODEL, timeout: 240_000 }, async () => {
  const store = path.join(tmp, 'store'), out = path.join(tmp, 'pair-rl');
  await okCli(['extract', '--model', f.base, '--layer', String(f.K), '--out', store, '--stories', '12', '--cuts', '2'], 120_000);
  const r = await okCli(['rl', '--av', f.av, '--ar', f.ar, '--model', f.base, '--store', store, '--out', out, '--steps', '1', '--activations-per-step', '2', '--group-size', '2', '--max-tokens', '3'], 180_000);
  assert.match(r.stdout, /wrote the reference pair .*pair-rl\/av \+ .*pair-rl\/ar/);
  const all = ActivationStore.open(store).readAll();
  const { variance } = trainingStats(all, f.d);
  assert.match(r.stderr, new RegExp(`Var ${variance.toFixed(4)} from .*store's training rows \\(the reference sidecars carry none\\)`));
  // The fixture's AV is untrained: every sample is unparseable (reward -2), so the sampled FVE is 1 - 2/Var exactly.
  const line = JSON.parse(fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').split('\n')[0]);
  assert.equal(line.stage, 'rl');
  assert.equal(line.fveSampled, 1 - 2 / variance);
  for (const half of ['av', 'ar']) {
    const side = fs.readFileSync(path.join(out, half, 'nla_meta.yaml'), 'utf8');
    assert.match(side, new RegExp(`parent_checkpoints:\\n  - ${path.join(f.nla, half).replace(/[/.]/g, '\\$&')}`));
    assert.match(side, /created_by: nla rl/);
  }
  // The written pair opens and explains as the input did (no update: all advantages were 0).
  const args = ['--model', f.base, '--text', 'Once upon', '--position', '2', '--max-tokens', '3', '--json'];
  const a = JSON.parse((await okCli(['explain', '--nla', f.nla, ...args], 120_000)).stdout);
  const b = JSON.parse((await okCli(['explain', '--nla', out, ...args], 120_000)).stdout);
  assert.deepEqual(b.tokens, a.tokens);
});

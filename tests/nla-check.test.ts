// The injection check: its verdict on an AV that reads the vector and on one that ignores it
// (stand-in AVs whose outputs are known), random vectors of the real rows' norms, the AR means;
// then on a reference pair (tests/reference-fixture.ts) through the CLI, and the marker's
// embedding row against the file it came from.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readSafetensors } from '../src/io/safetensors.js';
import { injectionCheck, nlaCheckParts, type CheckParts } from '../src/nla/check.js';
import { loadNLA } from '../src/nla/nla.js';
import { okCli } from './cli-helpers.js';
import { SKIP_NO_MODEL } from './helpers.js';
import { buildReferencePair, INJECTION_ID } from './reference-fixture.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-check-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
const d = 8, n = 4;
const H = Float32Array.from({ length: n * d }, (_, i) => Math.cos(i * 1.3) * (1 + Math.floor(i / d)));
const norms = (h: Float32Array) => [...Array(h.length / d).keys()].map((r) => Math.hypot(...h.subarray(r * d, (r + 1) * d)));

function parts(explain: (h: Float32Array) => string[], calls: Float32Array[] = []): CheckParts {
  return {
    d,
    explain: async (h) => (calls.push(h), explain(h).map((text) => ({ text, parsed: true }))),
    // The AR stand-in: 0.25 for an explanation that names its own row's first value, else 2.
    score: async (ex, h) => ex.map((e, i) => (e.text === `v${h[i * d].toFixed(3)}` ? 0.25 : 2)),
    marker: async () => Float32Array.from({ length: d }, (_, i) => (i === 0 ? 9 : 0)),
  };
}

test('an AV that writes what the vector holds reads the injection; one that writes the same for everything does not', async () => {
  const calls: Float32Array[] = [];
  const reads = await injectionCheck(parts((h) => [...Array(h.length / d).keys()].map((r) => `v${h[r * d].toFixed(3)}`), calls), H, 1);
  assert.deepEqual([reads.rows, reads.distinctReal, reads.sameAsMarker, reads.sameAsRandom, reads.readsInjection], [n, n, 0, 0, true]);
  assert.deepEqual([reads.mseReal, reads.mseMarker, reads.mseRandom], [0.25, 2, 2]);
  assert.equal(reads.marker, 'v9.000');
  // The random vectors (third call) have the real rows' norms and other directions.
  const [, , random] = calls;
  norms(random).forEach((x, r) => assert.ok(Math.abs(x - norms(H)[r]) < 1e-4 * norms(H)[r], `row ${r}: norm ${x} vs ${norms(H)[r]}`));
  assert.ok(random.some((x, i) => Math.abs(x - H[i]) > 1e-3));

  const deaf = await injectionCheck(parts((h) => Array(h.length / d).fill('The character ㈎ is a parenthesized Hangul letter.')), H);
  assert.deepEqual([deaf.distinctReal, deaf.sameAsMarker, deaf.sameAsRandom, deaf.readsInjection], [1, 1, 1, false]);
  // Half the rows written as for noise is still reading; more is not.
  const noisy = (every: number) => parts((h) => [...Array(h.length / d).keys()].map((r) => (r % every ? 'noise' : `v${h[r * d].toFixed(3)}`)));
  const half = await injectionCheck(noisy(2), H);
  assert.deepEqual([half.sameAsRandom, half.readsInjection], [0.5, true]);
  const most = await injectionCheck(noisy(4), H);
  assert.deepEqual([most.sameAsRandom, most.readsInjection], [0.75, false]);
  await assert.rejects(injectionCheck(parts(() => ['x']), H.subarray(0, d)), /at least two activations/);
});

test('nla check on a reference pair: the marker row is the AV\'s embedding of the injection id; an untrained copy of M does not read the injection', { skip: SKIP_NO_MODEL, timeout: 240_000 }, async () => {
  const f = await buildReferencePair(path.join(tmp, 'pair'), 'qwen2');
  const nla = await loadNLA(f.nla);
  const E = readSafetensors(path.join(f.av, 'model.safetensors')).get('model.embed_tokens.weight')!;
  const D = E.shape[1];
  assert.deepEqual(await nlaCheckParts(nla).marker(), (E.data as Float32Array).slice(INJECTION_ID * D, (INJECTION_ID + 1) * D));
  nla.dispose();
  const out = JSON.parse((await okCli(['check', '--nla', f.nla, '--model', f.base, '--text', 'Once upon a time there was', '--rows', '3', '--max-tokens', '3', '--json'], 180_000)).stdout);
  assert.equal(out.rows, 3);
  assert.equal(out.real.length, 3);
  assert.equal(out.random.length, 3);
  // stories260K wrapped in a chat template it never saw writes the same few tokens whatever is injected.
  assert.equal(out.readsInjection, false, JSON.stringify(out));
});

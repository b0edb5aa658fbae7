// Writing a reference pair back (nla export --format reference): a pair built by the test from
// the format document (tests/reference-fixture.ts, with a random bf16 value head so the head
// must travel), loaded, exported, loaded again: same prompt, same greedy explanations token for
// token, same reconstructions bit for bit; the written files have the layout the format
// document gives (K+1 layers, no final norm or lm_head, one bf16 "weight" in value_head).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readSafetensorsHeader, writeSafetensors } from '../src/io/safetensors.js';
import { loadNLA, type NLA } from '../src/nla/nla.js';
import { writeReferencePair } from '../src/nla/reference-export.js';
import { readModelSidecar } from '../src/nla/reference-sidecar.js';
import { gaussian, SeededRng } from '../src/util/rng.js';
import { okCli } from './cli-helpers.js';
import { SKIP_NO_MODEL } from './helpers.js';
import { buildReferencePair } from './reference-fixture.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-ref-export-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

async function greedy(nla: NLA, h: Float32Array): Promise<number[][]> {
  return (await nla.av.explain(h, { temperature: 0, maxTokens: 6 })).map((e) => e.tokens);
}

test('export -> load gives the same prompt, greedy explanations and reconstructions; files as the format lays them out', { skip: SKIP_NO_MODEL, timeout: 300_000 }, async () => {
  const f = await buildReferencePair(path.join(tmp, 'src'), 'qwen2');
  // A trained-looking head: random values (bf16-exact after the round through bf16 on disk).
  const n = gaussian(new SeededRng(5).fn()), d = f.d;
  writeSafetensors(path.join(f.ar, 'value_head.safetensors'), { weight: { dtype: 'f32', shape: [d, d], data: Float32Array.from({ length: d * d }, () => 0.2 * n()), saveAs: 'bf16' } });
  const a = await loadNLA(f.nla);
  const out = path.join(tmp, 'out');
  await writeReferencePair(a, out);
  const b = await loadNLA(out);

  assert.deepEqual(b.av.prompt, a.av.prompt);
  assert.deepEqual([b.meta.layer, b.meta.alpha, b.meta.placeholderId], [a.meta.layer, a.meta.alpha, a.meta.placeholderId]);
  const h = Float32Array.from({ length: 3 * d }, () => n());
  assert.deepEqual(await greedy(b, h), await greedy(a, h));
  const ex = ['Lily had a red ball.', 'The dog ran to the park and barked.'];
  const [pa, pb] = [await a.ar.predictHost(ex), await b.ar.predictHost(ex)];
  assert.deepEqual(pb, pa);
  assert.ok(pa.some((x) => Math.abs(x) > 1e-3), 'reconstructions are not all zero');

  // The layout: AR config K+1 layers; AR weights = embedding + blocks 0..K only; the head alone, bf16.
  assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'ar', 'config.json'), 'utf8')).num_hidden_layers, f.K + 1);
  const names = readSafetensorsHeader(path.join(out, 'ar', 'model.safetensors')).entries.map((e) => e.name);
  assert.ok(names.includes('model.embed_tokens.weight'));
  assert.ok(!names.some((x) => x === 'model.norm.weight' || x === 'lm_head.weight' || /^nla\./.test(x)), names.join(' '));
  assert.deepEqual([...new Set(names.flatMap((x) => /^model\.layers\.(\d+)\./.exec(x)?.[1] ?? []))].map(Number).sort(), [...Array(f.K + 1).keys()]);
  const head = fs.readFileSync(path.join(out, 'ar', 'value_head.safetensors'));
  const hdr = JSON.parse(head.subarray(8, 8 + Number(head.readBigUInt64LE(0))).toString('utf8'));
  assert.deepEqual(Object.keys(hdr).filter((k) => k !== '__metadata__'), ['weight']);
  assert.deepEqual([hdr.weight.dtype, hdr.weight.shape], ['BF16', [d, d]]);
  // Sidecars: the same contract, the source recorded as a parent.
  for (const half of ['av', 'ar'] as const) {
    const s = readModelSidecar(path.join(out, half)), src = readModelSidecar(half === 'av' ? f.av : f.ar);
    assert.deepEqual([s.tokens, s.templates, s.dModel, s.injectionScale, s.mseScale, s.extractionLayerIndex, s.roleName], [src.tokens, src.templates, src.dModel, src.injectionScale, src.mseScale, src.extractionLayerIndex, src.roleName]);
    assert.deepEqual(s.provenance.parent_checkpoints, [path.resolve(half === 'av' ? f.av : f.ar)]);
  }
  a.dispose();
  b.dispose();

  // The CLI writes the same layout (bf16 weights this time) and refuses to write over its source.
  const r = await okCli(['export', '--format', 'reference', '--nla', out, '--out', path.join(tmp, 'cli'), '--dtype', 'bf16'], 120_000);
  assert.match(r.stdout, /wrote .*cli\/av and .*cli\/ar/);
  assert.equal(readSafetensorsHeader(path.join(tmp, 'cli', 'av', 'model.safetensors')).entries[0].dtype, 'bf16');
  const c = await loadNLA(path.join(tmp, 'cli'));
  assert.deepEqual(c.av.prompt, b.av.prompt);
  c.dispose();
});

// nla's own NLAs are exported too: tests/nla-reference-export-own.test.ts.

// An NLA trained by nla (nla.json, stories260K with its llama2.c tokenizer) exported in the
// reference layout and opened again as a reference pair: the same prompt ids, the same greedy
// explanations (token for token and as parsed), the same SFT targets, and the same
// reconstructions (to float rounding: the export permutes q/k to HF's rotate-half order, which
// changes the summation order in attention; the value head is bf16 as the reference stores it,
// so the test's head is made bf16-exact first).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { decodeBf16, encodeBf16 } from '../src/io/half.js';
import { readSafetensorsHeader } from '../src/io/safetensors.js';
import { Llama } from '../src/nn/llama.js';
import { loadModel, loadTokenizerFor } from '../src/nn/load.js';
import { AR_HEAD, Reconstructor } from '../src/nla/ar.js';
import { Verbalizer } from '../src/nla/av.js';
import { extractActivations } from '../src/nla/extract.js';
import { loadNLA, NLA, type NlaMeta } from '../src/nla/nla.js';
import { COMPACT_PROMPTS, DEFAULT_PROMPTS, type PromptSpec } from '../src/nla/prompts.js';
import { writeReferencePair } from '../src/nla/reference-export.js';
import { readModelSidecar } from '../src/nla/reference-sidecar.js';
import { trainArSft, trainAvSft } from '../src/nla/sft.js';
import * as T from '../src/tensor/index.js';
import { okCli } from './cli-helpers.js';
import { modelFile, SKIP_NO_MODEL } from './helpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-ref-own-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
const LAYER = 3;
const TEXTS = ['Lily went to the park.', 'Tom had a red ball.', 'Mia was very happy.', 'Ben saw a big dog.'];

/** A small NLA as nla trains one: the AV taught to write short explanations, the AR a few steps. */
async function buildOwnNla(dir: string, prompts: PromptSpec = DEFAULT_PROMPTS): Promise<void> {
  const loaded = await loadModel(modelFile('stories260K.bin'));
  const M = loaded.model as Llama;
  const tok = loadTokenizerFor(modelFile('stories260K.bin'));
  const ids = TEXTS.map((t) => tok.encode(t, { bos: true }));
  const h = await extractActivations(M, LAYER, ids.map((x) => ({ ids: x, positions: [x.length - 1], meta: [] })));
  const data = { h, texts: TEXTS };
  const av = new Verbalizer(new Llama(M.cfg, await M.w.clone()), tok, prompts, 10);
  await trainAvSft(av, data, { steps: 30, batchSize: 4, lr: 3e-3, warmup: 2, seed: 1 });
  const ar = await Reconstructor.fromModel(M, LAYER, tok, prompts);
  await trainArSft(ar, data, { steps: 3, batchSize: 4, lr: 1e-3, warmup: 1, seed: 2 });
  // The value head travels as bf16 (the reference's dtype): make it bf16-exact here.
  const head = ar.model.w.get(AR_HEAD);
  const exact = decodeBf16(encodeBf16((await head.data()) as Float32Array));
  ar.model.w.map.set(AR_HEAD, T.Tensor.from(exact, head.shape));
  head.dispose();
  const meta: NlaMeta = {
    format: 'nla/1',
    model: { name: loaded.name, path: path.resolve(loaded.source), sha256: loaded.sha256, config: M.cfg },
    tokenizer: 'tokenizer.bin',
    layer: LAYER,
    alpha: 10,
    variance: 0.77,
    mean: new Array(M.cfg.dim).fill(0),
    prompts,
    placeholderId: av.prompt.placeholderId,
    maxExplanationTokens: 24,
    created: new Date().toISOString(),
    training: { 'sft-av': { steps: 30 }, 'sft-ar': { steps: 3 } },
  };
  const nla = new NLA(meta, av, ar, tok, M);
  await nla.save(dir);
  fs.copyFileSync(modelFile('tok512.bin'), path.join(dir, 'tokenizer.bin'));
  nla.dispose();
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test('an nla-trained NLA exported as a reference pair opens with the same prompt, greedy explanations, targets and reconstructions', { skip: SKIP_NO_MODEL, timeout: 900_000 }, async () => {
  const own = path.join(tmp, 'own');
  await buildOwnNla(own);
  const a = await loadNLA(own);
  const out = path.join(tmp, 'pair');
  await writeReferencePair(a, out, { source: own });
  const b = await loadNLA(out, { model: a.meta.model.path });
  assert.ok(b.meta.reference, 'opened as a reference pair');

  assert.deepEqual(b.av.prompt, a.av.prompt);
  assert.deepEqual(b.av.stopIds, a.av.stopIds);
  assert.deepEqual([b.meta.layer, b.meta.alpha, b.meta.placeholderId], [a.meta.layer, a.meta.alpha, a.meta.placeholderId]);

  // Activations the AV was trained on (its outputs close the tag) and two of other text.
  const { h: hText } = await a.activations('Once upon a time, there was a little girl.');
  const d = a.ar.d;
  const { h: hTrain } = await a.activations(TEXTS[0]);
  const h = new Float32Array(3 * d);
  h.set(hTrain.subarray(hTrain.length - d));
  h.set(hText.subarray(2 * d, 4 * d), d);
  const [ea, eb] = [await a.av.explain(h, { temperature: 0, maxTokens: 24 }), await b.av.explain(h, { temperature: 0, maxTokens: 24 })];
  assert.deepEqual(eb.map((e) => e.tokens), ea.map((e) => e.tokens));
  assert.deepEqual(eb.map((e) => [e.text, e.explanation, e.stopped]), ea.map((e) => [e.text, e.explanation, e.stopped]));
  assert.ok(ea.some((e) => e.explanation !== undefined), `some greedy output parses (else the parse is not compared): ${JSON.stringify(ea.map((e) => e.text))}`);
  // Parsing a closed output, and the SFT target of an explanation (the reference's wrapped
  // target rendered through the exported chat template), agree with nla's own.
  const closed = [...a.av.targetIds('The cat sat.')];
  assert.deepEqual(b.av.toExplained(closed, true).explanation, 'The cat sat.');
  assert.deepEqual(a.av.toExplained(closed, true).explanation, 'The cat sat.');
  for (const e of ['The cat sat.', 'Lily had a red ball and a dog', ' two  spaces\nand a line']) assert.deepEqual(b.av.targetIds(e), a.av.targetIds(e), e);

  const ex = ['Lily had a red ball.', 'The dog ran to the park and barked.', ...TEXTS];
  const [pa, pb] = [await a.ar.predictHost(ex), await b.ar.predictHost(ex)];
  const scale = Math.max(...Array.from(pa, Math.abs));
  assert.ok(scale > 1e-3, 'reconstructions are not all zero');
  const diff = maxAbsDiff(pa, pb);
  assert.ok(diff <= 1e-5 * scale, `reconstructions differ by ${diff} (largest |value| ${scale})`);
  // Scores through the pair's sidecar scale equal nla's own (mse_scale = sqrt(d)).
  assert.ok(Math.abs(b.mse(pb, hText, 0, 1) - a.mse(pa, hText, 0, 1)) < 1e-5);

  // The files as the format document lays them out.
  const av = readModelSidecar(path.join(out, 'av')), ar = readModelSidecar(path.join(out, 'ar'));
  assert.deepEqual([av.roleName, ar.roleName, av.dModel, av.injectionScale, ar.injectionScale, ar.mseScale, ar.extractionLayerIndex], ['actor', 'critic', d, 10, undefined, Math.sqrt(d), LAYER]);
  assert.deepEqual(av.tokens, { injectionChar: '\u007f', injectionTokenId: a.av.prompt.placeholderId, leftNeighborId: a.av.prompt.ids[a.av.prompt.position - 1], rightNeighborId: a.av.prompt.ids[a.av.prompt.position + 1], criticSuffixIds: undefined });
  assert.equal(av.templates.av, 'Explain the thought.\n<concept>{injection_char}</concept>\n<explanation>\n');
  assert.equal(ar.templates.ar, DEFAULT_PROMPTS.ar);
  assert.deepEqual(av.provenance.parent_checkpoints, [path.resolve(own)]);
  // PyYAML (the reference's reader) refuses raw control characters: the DEL marker is escaped.
  const arText = fs.readFileSync(path.join(out, 'ar', 'nla_meta.yaml'), 'utf8');
  assert.ok(!arText.includes('\u007f') && arText.includes('injection_char: "\\u007f"'), arText);
  const rawAr = parseYaml(fs.readFileSync(path.join(out, 'ar', 'nla_meta.yaml'), 'utf8')) as Record<string, unknown>;
  assert.equal((rawAr.tokens as Record<string, unknown>).critic_suffix_ids, null);
  const cfg = (half: string) => JSON.parse(fs.readFileSync(path.join(out, half, 'config.json'), 'utf8'));
  assert.deepEqual([cfg('av').model_type, cfg('av').num_hidden_layers, cfg('ar').num_hidden_layers, cfg('av').hidden_size], ['llama', a.meta.model.config.nLayers, LAYER + 1, d]);
  const names = readSafetensorsHeader(path.join(out, 'ar', 'model.safetensors')).entries.map((e) => e.name);
  assert.ok(!names.some((x) => x === 'model.norm.weight' || x === 'lm_head.weight' || /^nla\./.test(x)), names.join(' '));
  assert.deepEqual([...new Set(names.flatMap((x) => /^model\.layers\.(\d+)\./.exec(x)?.[1] ?? []))].map(Number).sort(), [...Array(LAYER + 1).keys()]);
  assert.deepEqual(readSafetensorsHeader(path.join(out, 'ar', 'value_head.safetensors')).entries.map((e) => [e.name, e.dtype, e.shape]), [['weight', 'bf16', [d, d]]]);
  const tc = JSON.parse(fs.readFileSync(path.join(out, 'av', 'tokenizer_config.json'), 'utf8'));
  assert.equal(typeof tc.chat_template, 'string');
  assert.deepEqual([tc.bos_token, tc.eos_token], ['<s>', '</s>']);
  a.dispose();
  b.dispose();

  // The CLI takes nla's own directory.
  const r = await okCli(['export', '--format', 'reference', '--nla', own, '--out', path.join(tmp, 'cli')], 300_000);
  assert.match(r.stdout, /wrote .*cli\/av and .*cli\/ar/);
  const c = await loadNLA(path.join(tmp, 'cli'));
  const a2 = await loadNLA(own);
  assert.deepEqual(c.av.prompt, a2.av.prompt);
  c.dispose();
  a2.dispose();
});

test('the stories demo\'s compact prompts export too: the same prompt ids, greedy tokens and reconstructions', { skip: SKIP_NO_MODEL, timeout: 900_000 }, async () => {
  const own = path.join(tmp, 'own-compact');
  await buildOwnNla(own, COMPACT_PROMPTS);
  const a = await loadNLA(own);
  assert.equal(a.av.prompt.ids.length, 22, 'BOS + "Thought: " + marker + newline + "<explanation>" + newline under tok512');
  const out = path.join(tmp, 'pair-compact');
  await writeReferencePair(a, out, { source: own });
  const b = await loadNLA(out, { model: a.meta.model.path });
  assert.deepEqual(b.av.prompt, a.av.prompt);
  const { h } = await a.activations(TEXTS[1]);
  const [ea, eb] = [await a.av.explain(h, { temperature: 0, maxTokens: 24 }), await b.av.explain(h, { temperature: 0, maxTokens: 24 })];
  assert.deepEqual(eb.map((e) => e.tokens), ea.map((e) => e.tokens));
  assert.ok(ea.some((e) => e.explanation !== undefined), `some greedy output parses: ${JSON.stringify(ea.map((e) => e.text))}`);
  const [pa, pb] = [await a.ar.predictHost(TEXTS), await b.ar.predictHost(TEXTS)];
  const scale = Math.max(...Array.from(pa, Math.abs));
  assert.ok(maxAbsDiff(pa, pb) <= 1e-5 * scale, `reconstructions differ by ${maxAbsDiff(pa, pb)}`);
  assert.equal(readModelSidecar(path.join(out, 'ar')).templates.ar, COMPACT_PROMPTS.ar);
  a.dispose();
  b.dispose();
});

test('an nla NLA whose prompts the reference cannot read is refused, naming the field', { skip: SKIP_NO_MODEL }, async () => {
  const tok = loadTokenizerFor(modelFile('stories260K.bin'));
  const fake = (prompts: typeof DEFAULT_PROMPTS) => ({ meta: { prompts, model: { config: {} }, layer: 3 }, tok }) as unknown as NLA;
  await assert.rejects(writeReferencePair(fake({ ...DEFAULT_PROMPTS, explanationEnd: '.' }), path.join(tmp, 'x')), /field "prompts": .*explanationEnd/);
  await assert.rejects(writeReferencePair(fake({ ...DEFAULT_PROMPTS, av: 'Explain {concept}:' }), path.join(tmp, 'x')), /field "prompts"/);
});

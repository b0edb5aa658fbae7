// Reading NLAs published in the reference implementation's layout (an av/ + ar/ pair of HF
// directories with nla_meta.yaml sidecars). Fixtures: tests/reference-fixture.ts builds them
// from stories260K following ../shared/docs/NLA-REFERENCE-FORMAT.md, with a byte-level
// tokenizer whose ids are known by construction (an ASCII byte's id is its value), so every
// expected id below is written from the format, not computed by nla.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadModel } from '../src/nn/load.js';
import type { Llama } from '../src/nn/llama.js';
import { extractActivations } from '../src/nla/extract.js';
import { loadNLA } from '../src/nla/nla.js';
import { parseModelSidecar, readModelSidecar } from '../src/nla/reference-sidecar.js';
import * as T from '../src/tensor/index.js';
import { SKIP_NO_MODEL } from './helpers.js';
import { AR_TEMPLATE, asciiIds, AV_TEMPLATE, buildReferencePair, INJECTION_ID, specialId, STYLES, type Fixture } from './reference-fixture.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-ref-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
const opts = { skip: SKIP_NO_MODEL };

let qwen: Fixture, llama: Fixture;
before(async () => {
  if (SKIP_NO_MODEL) return;
  qwen = await buildReferencePair(path.join(tmp, 'qwen2'), 'qwen2');
  llama = await buildReferencePair(path.join(tmp, 'llama3'), 'llama3', { K: 3 });
});

const [pre, post] = AV_TEMPLATE.split('{injection_char}');

/** The canonical AV prompt's ids, written out from the two templates (see the fixture). */
function expectedAvIds(f: Fixture): { ids: number[]; position: number } {
  const s = (n: string) => specialId(f.style, n);
  const content = [...asciiIds(pre), INJECTION_ID, ...asciiIds(post)];
  const ids =
    f.style === 'qwen2'
      ? // <|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n{content}<|im_end|>\n<|im_start|>assistant\n
        [s('<|im_start|>'), ...asciiIds('system\nYou are a helpful assistant.'), s('<|im_end|>'), ...asciiIds('\n'), s('<|im_start|>'), ...asciiIds('user\n'), ...content, s('<|im_end|>'), ...asciiIds('\n'), s('<|im_start|>'), ...asciiIds('assistant\n')]
      : // <|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n{content|trim}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n (one BOS, from the template)
        [s('<|begin_of_text|>'), s('<|start_header_id|>'), ...asciiIds('user'), s('<|end_header_id|>'), ...asciiIds('\n\n'), ...content, s('<|eot_id|>'), s('<|start_header_id|>'), ...asciiIds('assistant'), s('<|end_header_id|>'), ...asciiIds('\n\n')];
  return { ids, position: ids.indexOf(INJECTION_ID) };
}

test('nla_meta.yaml is read field by field (PyYAML folded single-quoted template, \\u escapes, scales, K)', opts, () => {
  const s = readModelSidecar(qwen.av);
  assert.equal(s.templates.av, AV_TEMPLATE);
  assert.equal(s.templates.ar, AR_TEMPLATE);
  assert.equal(s.tokens.injectionChar, '\u320E');
  assert.deepEqual([s.tokens.injectionTokenId, s.tokens.leftNeighborId, s.tokens.rightNeighborId], [257, 62, 60]);
  assert.deepEqual(s.tokens.criticSuffixIds, asciiIds('/text> <summary>'));
  assert.deepEqual([s.role, s.roleName, s.stage, s.dModel, s.injectionScale, s.mseScale, s.extractionLayerIndex, s.schemaVersion], ['av', 'actor', 'sl', 64, 150, 8, 2, 2]);
  assert.equal(s.provenance.base_checkpoint, 'karpathy/tinyllamas/stories260K');
  const ar = readModelSidecar(qwen.ar);
  assert.deepEqual([ar.role, ar.injectionScale, ar.mseScale], ['ar', undefined, 8]);

  // Scales: null/"raw"/"none" -> none, "sqrt_d_model" -> sqrt(d), numbers and numeric strings as given; absent mse_scale -> sqrt(d).
  const base = { kind: 'nla_model', role: 'av', d_model: 16, tokens: { injection_char: 'x', injection_token_id: 1, injection_left_neighbor_id: 2, injection_right_neighbor_id: 3 }, prompt_templates: { av: 'a{injection_char}b', ar: 'x{explanation}' } };
  const scales = (ext: unknown) => {
    const r = parseModelSidecar({ ...base, extraction: ext }, 'f.yaml');
    return [r.injectionScale, r.mseScale];
  };
  assert.deepEqual(scales({ injection_scale: 'sqrt_d_model', mse_scale: null }), [4, undefined]);
  assert.deepEqual(scales({ injection_scale: 'raw', mse_scale: 'none' }), [undefined, undefined]);
  assert.deepEqual(scales({ injection_scale: '80000' }), [80000, 4]);
  assert.deepEqual(scales(undefined), [undefined, 4]);
  // Template lookup: av before actor, ar before critic.
  const both = parseModelSidecar({ ...base, prompt_templates: { actor: 'old{injection_char}', av: 'new{injection_char}', critic: 'c{explanation}', ar: 'r{explanation}' } }, 'f.yaml');
  assert.deepEqual(both.templates, { av: 'new{injection_char}', ar: 'r{explanation}' });
  // Errors name the file and the field.
  assert.throws(() => parseModelSidecar({ ...base, extraction: { injection_scale: 'lots' } }, 'f.yaml'), /f\.yaml: field "extraction\.injection_scale" is "lots"/);
  assert.throws(() => parseModelSidecar({ ...base, kind: 'nla_dataset' }, 'f.yaml'), /field "kind"/);
  assert.throws(() => parseModelSidecar({ ...base, tokens: { ...base.tokens, injection_left_neighbor_id: undefined } }, 'f.yaml'), /field "tokens\.injection_left_neighbor_id" is missing/);
  assert.throws(() => parseModelSidecar({ ...base, prompt_templates: { av: 'no slot' } }, 'f.yaml'), /field "prompt_templates\.av" has no \{injection_char\} slot/);
  assert.throws(() => parseModelSidecar({ ...base, critic: { extraction_layer_index: 3 }, extraction_layer_index: 4 }, 'f.yaml'), /field "extraction_layer_index" is 4 but critic\.extraction_layer_index is 3/);
});

for (const style of ['qwen2', 'llama3'] as const) {
  test(`${style}: a reference pair loads; AV prompt through the chat template, injection position and AR ids as the format says`, opts, async () => {
    const f = style === 'qwen2' ? qwen : llama;
    const nla = await loadNLA(f.nla, { model: f.base });
    const want = expectedAvIds(f);
    assert.deepEqual(nla.av.prompt.ids, want.ids);
    assert.equal(nla.av.prompt.position, want.position);
    if (style === 'llama3') assert.equal(nla.av.prompt.ids.filter((id) => id === specialId(style, '<|begin_of_text|>')).length, 1, 'no second BOS');
    else assert.equal(nla.tok.bosId, -1, 'Qwen2 has no BOS');
    assert.deepEqual(nla.av.stopIds, [specialId(style, STYLES[style].eos)]);
    assert.deepEqual([nla.meta.layer, nla.meta.alpha, nla.meta.placeholderId, nla.ar.model.cfg.nLayers], [f.K, 150, INJECTION_ID, f.K + 1]);
    // AR input: the filled template with the tokenizer's specials (BOS for Llama 3, none for Qwen2), no chat template.
    const filled = asciiIds(AR_TEMPLATE.replace('{explanation}', 'a cat'));
    assert.deepEqual(nla.ar.encodeExplanation!('a cat'), style === 'llama3' ? [specialId(style, '<|begin_of_text|>'), ...filled] : filled);
    // The SFT target: "<explanation>\n" + text + "\n</explanation>" then the end-of-turn token.
    assert.deepEqual(nla.av.targetIds('hi'), [...asciiIds('<explanation>\nhi\n</explanation>'), specialId(style, STYLES[style].eos)]);
    nla.dispose();
  });
}

test('the AR (blocks 0..K, identity bf16 value head, no final norm) reproduces M\'s layer-K activation at the last AR token', opts, async () => {
  for (const f of [qwen, llama]) {
    const nla = await loadNLA({ av: f.av, ar: f.ar });
    const M = (await loadModel(f.base)).model as Llama;
    const e = 'Lily saw a big red ball.';
    const ids = nla.ar.encodeExplanation!(e);
    const want = await extractActivations(M, f.K, [{ ids, positions: [ids.length - 1], meta: [] }]);
    const got = await nla.reconstruct(e);
    let worst = 0;
    for (let i = 0; i < f.d; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / (1 + Math.abs(want[i])));
    assert.ok(worst < 1e-5, `${f.style}: AR prediction differs from M's layer-${f.K} activation by ${worst}`);
    // A prediction scored against itself is perfect, against its negation maximal (mse_scale = sqrt(d): 2(1-cos)).
    assert.ok(Math.abs(nla.mse(got, want)) < 1e-9);
    assert.ok(Math.abs(nla.mse(got, want.map((x) => -x)) - 4) < 1e-6);
    M.w.dispose();
    nla.dispose();
  }
});

test('the AV reads the injected vector at the marker (different vectors, different log-probs) and explains text of M', opts, async () => {
  const nla = await loadNLA(qwen.nla, { model: qwen.base });
  const d = qwen.d;
  const h = Float32Array.from({ length: 2 * d }, (_, i) => Math.sin(i * (i < d ? 0.37 : 1.91)));
  const target = nla.av.targetIds('a girl and a ball');
  const { logp, mask } = T.noGrad(() => nla.av.completionLogProbs(h, [target, target]));
  const lp = (await logp.data()) as Float32Array, m = (await mask.data()) as Float32Array;
  logp.dispose();
  mask.dispose();
  const Tm1 = lp.length / 2;
  const rowSum = (b: number) => lp.slice(b * Tm1, (b + 1) * Tm1).reduce((a, x, i) => a + x * m[b * Tm1 + i], 0);
  assert.ok(Math.abs(rowSum(0) - rowSum(1)) > 1e-3, `log-probs ${rowSum(0)} and ${rowSum(1)} do not depend on the injected vector`);
  nla.meta.maxExplanationTokens = 3;
  const out = await nla.explain('Once upon a time', [1, 2]);
  assert.deepEqual(out.map((t) => t.position), [1, 2]);
  // Qwen2 has no BOS and this tokenizer has no ASCII merges: position i is the i-th byte.
  assert.deepEqual(out.map((t) => t.token), ['n', 'c']);
  for (const t of out) {
    assert.equal(t.explanations.length, 1);
    // Three tokens never close the tag: unparseable, scored as the failure MSE 2.
    assert.match(t.explanations[0].text, /^\(unparseable\)/);
    assert.equal(t.explanations[0].mse, 2);
  }
  nla.dispose();
});

test('without --model a reference pair cannot read text, and says what to pass', opts, async () => {
  const nla = await loadNLA(qwen.nla);
  await assert.rejects(nla.explain('Once', [0]), /base_checkpoint karpathy\/tinyllamas\/stories260K.*--model/);
  nla.dispose();
});

// ---- refusals: each names the file, the field, the expected and the found value ------------

async function refused(name: string, build: Parameters<typeof buildReferencePair>[2], re: RegExp): Promise<void> {
  const f = await buildReferencePair(path.join(tmp, name), 'qwen2', build);
  await assert.rejects(loadNLA(f.nla, { model: f.base }), (e: Error) => {
    assert.match(e.message, re);
    return true;
  });
}

test('a wrong neighbour id is refused naming the field, expected and found ids', opts, async () => {
  await refused('left', { edit: (v) => (v.av.left = 99) }, /av\/nla_meta\.yaml: field "tokens\.injection_left_neighbor_id": expected 99, found 62/);
  await refused('right', { edit: (v) => (v.ar.right = 7) }, /ar\/nla_meta\.yaml: field "tokens\.injection_right_neighbor_id": expected 7, found 60/);
});

test('a chat template that shifts the injection position is refused naming the neighbour field', opts, async () => {
  // Same template, but the content is wrapped so a space lands before the marker.
  const shifted = STYLES.qwen2.template.replace("message['content']", "message['content'] | replace('<concept>', '<concept> ')");
  await refused('shifted', { template: shifted }, /field "tokens\.injection_left_neighbor_id": expected 62, found 32/);
});

test('wrong injection id, suffix ids, K, d_model or role are refused naming the field', opts, async () => {
  await refused('inj', { edit: (v) => ((v.av.injectionId = 256), (v.ar.injectionId = 256)) }, /field "tokens\.injection_token_id": expected \[256\] for "\u320E", the tokenizer gives \[257\]/);
  await refused('suffix', { edit: (v) => (v.ar.suffix = [1, 2, 3]) }, /ar\/nla_meta\.yaml: field "tokens\.critic_suffix_ids"/);
  await refused('suffix-ar', { edit: (v) => ((v.ar.suffix = [1, 2, 3]), (v.av.suffix = [1, 2, 3])) }, /field "tokens\.critic_suffix_ids": expected \[1, 2, 3\], found \[114, 121, 62\]/);
  await refused('k', { edit: (v) => (v.ar.K = 4) }, /field "critic\.extraction_layer_index": expected 2 .*found 4/);
  await refused('d', { edit: (v) => ((v.av.d = 32), (v.ar.d = 32)) }, /field "d_model": expected hidden_size 64 .*found 32/);
  await refused('role', { edit: (v) => (v.ar.role = 'actor') }, /field "role": expected critic\/ar for the AR directory, found "actor"/);
  await refused('scale', { edit: (v) => (v.av.injectionScale = null) }, /field "extraction\.injection_scale" is null/);
});

test('an AR without value_head.safetensors, or whose config (K+1 layers) disagrees with the sidecar\'s K, is refused', opts, async () => {
  const f = await buildReferencePair(path.join(tmp, 'nohead'), 'qwen2');
  fs.rmSync(path.join(f.ar, 'value_head.safetensors'));
  await assert.rejects(loadNLA(f.nla), /no value_head\.safetensors/);
  const g = await buildReferencePair(path.join(tmp, 'short'), 'qwen2');
  const cfg = JSON.parse(fs.readFileSync(path.join(g.ar, 'config.json'), 'utf8'));
  fs.writeFileSync(path.join(g.ar, 'config.json'), JSON.stringify({ ...cfg, num_hidden_layers: 4 }));
  // config says K = 3 but the sidecar says 2.
  await assert.rejects(loadNLA(g.nla), /field "critic\.extraction_layer_index": expected 3/);
});

test('a pair of an architecture nla does not implement is refused at load with its name', opts, async () => {
  const f = await buildReferencePair(path.join(tmp, 'qwen3'), 'qwen2');
  const cfg = JSON.parse(fs.readFileSync(path.join(f.av, 'config.json'), 'utf8'));
  fs.writeFileSync(path.join(f.av, 'config.json'), JSON.stringify({ ...cfg, model_type: 'qwen3' }));
  await assert.rejects(loadNLA(f.nla), /av\/config\.json: model_type="qwen3" is not supported: Qwen3 adds per-head q\/k RMSNorm/);
});

// Fuzzed chat templates: tokenizer_config.json (its chat_template and special-token fields),
// chat_template.jinja and chat_template.json, mutated at random (tests/fuzz.ts), and templates
// assembled from hostile pieces (loops over huge ranges, nested loops, string doubling, wide
// indents, recursion, raise_exception). A template is code from a downloaded directory: each
// case must render text within RENDER_LIMITS or fail with an Error naming the file (and
// `chat_template` when the template is at fault), quickly; never hang, crash or allocate
// gigabytes. Named cases follow the properties.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { ChatTemplate, RENDER_LIMITS, readChatTemplate } from '../src/io/chat-template.js';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { readModelSidecar } from '../src/nla/reference-sidecar.js';
import { referenceAvPrompt } from '../src/nla/reference.js';
import { fcRuns } from '../src/testing/runs.js';
import { check, cleanRead, editJson, jsonEditsArb, mutate, mutationArb, rejectsNaming, Tally, toJsonText } from './fuzz.js';
import { LLAMA3_TEMPLATE, QWEN2_TEMPLATE, sidecarYaml, writeTokenizer } from './reference-fixture.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-fuzz-chat-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
const enc = new TextEncoder();
let serial = 0;
const freshDir = () => {
  const d = path.join(tmp, `case-${serial++}`);
  fs.mkdirSync(d);
  return d;
};

const USER = [{ role: 'user', content: 'Here is the vector:\n\n<concept>\u320E</concept>\n' }];
const CONFIG = { bos_token: { content: '<s>', lstrip: false }, eos_token: '<|im_end|>', pad_token: '<|endoftext|>', chat_template: QWEN2_TEMPLATE, model_max_length: 1024 };

/** Read the template of `dir` and render the user turn with a generation prompt, timed. */
function renderDir(dir: string): string | undefined {
  const t = readChatTemplate(dir);
  return t?.render(USER, { addGenerationPrompt: true });
}

/** A clean outcome for `file`, in bounded time, the output within the render limit. */
async function cleanRender(file: string, bytes: number, run: () => unknown): Promise<ReturnType<typeof cleanRead>> {
  const t0 = performance.now();
  const o = await cleanRead(file, bytes, run, 1e9); // the output bound is checked below
  const ms = performance.now() - t0;
  assert.ok(ms < 20_000, `rendering ${file} took ${Math.round(ms)} ms`);
  if (o.ok && typeof o.value === 'string') assert.ok(o.value.length <= RENDER_LIMITS.chars, `rendered ${o.value.length} characters`);
  if (!o.ok && o.error.message.includes('render')) assert.match(o.error.message, /chat_template/, 'a render error names the field');
  return o;
}

describe('fuzz: chat templates', () => {
  test('tokenizer_config.json edits (template, special tokens, structure): text or an error naming the file', async () => {
    const t = new Tally();
    await check(
      fc.asyncProperty(jsonEditsArb, async (edits) => {
        const dir = freshDir(), file = path.join(dir, 'tokenizer_config.json');
        const text = toJsonText(editJson(CONFIG, edits));
        fs.writeFileSync(file, text);
        t.add(await cleanRender(file, text.length, () => renderDir(dir)));
      }),
      { seed: 1430, numRuns: fcRuns(400) },
    );
    assert.ok(t.ok > 0 && t.errors > 0, `fuzz reached both outcomes (ok ${t.ok}, errors ${t.errors})`);
  });

  test('byte mutations of the template text (Qwen2, Llama 3) in tokenizer_config.json and chat_template.jinja: text or a named error', async () => {
    const t = new Tally();
    await check(
      fc.asyncProperty(fc.boolean(), fc.boolean(), mutationArb(LLAMA3_TEMPLATE.length), async (llama, jinja, muts) => {
        const source = new TextDecoder().decode(mutate(enc.encode(llama ? LLAMA3_TEMPLATE : QWEN2_TEMPLATE), muts));
        const dir = freshDir();
        let file: string;
        if (jinja) {
          fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ ...CONFIG, chat_template: undefined }));
          fs.writeFileSync((file = path.join(dir, 'chat_template.jinja')), source);
        } else fs.writeFileSync((file = path.join(dir, 'tokenizer_config.json')), JSON.stringify({ ...CONFIG, chat_template: source }));
        t.add(await cleanRender(file, source.length, () => renderDir(dir)));
      }),
      { seed: 1431, numRuns: fcRuns(400) },
    );
    assert.ok(t.ok > 0 && t.errors > 0, `fuzz reached both outcomes (ok ${t.ok}, errors ${t.errors})`);
  });

  test('byte mutations of tokenizer_config.json and chat_template.json (truncations, flips, lying brackets): text or a named error', async () => {
    const t = new Tally();
    const cfgBytes = enc.encode(JSON.stringify(CONFIG));
    const jsonBytes = enc.encode(JSON.stringify({ chat_template: [{ name: 'default', template: LLAMA3_TEMPLATE }, { name: 'tool_use', template: 'T' }] }));
    await check(
      fc.asyncProperty(fc.boolean(), fc.oneof(mutationArb(cfgBytes.length), mutationArb(40)), async (isJson, muts) => {
        const dir = freshDir();
        let file: string, bytes: Uint8Array;
        if (isJson) {
          fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ eos_token: '<|eot_id|>' }));
          bytes = mutate(jsonBytes, muts);
          fs.writeFileSync((file = path.join(dir, 'chat_template.json')), bytes);
        } else {
          bytes = mutate(cfgBytes, muts);
          fs.writeFileSync((file = path.join(dir, 'tokenizer_config.json')), bytes);
        }
        t.add(await cleanRender(file, bytes.length, () => renderDir(dir)));
      }),
      { seed: 1432, numRuns: fcRuns(400) },
    );
    assert.ok(t.ok > 0 && t.errors > 0, `fuzz reached both outcomes (ok ${t.ok}, errors ${t.errors})`);
  });

  // Hostile pieces nested at random: each piece may wrap the rest, so loops nest loops.
  const big = fc.constantFrom(0, 1, 3, 1000, 50_000, 1_000_000, 10 ** 7, 10 ** 9, -1, 2 ** 53);
  const leaf: fc.Arbitrary<string> = fc.oneof(
    fc.constant('{{ messages[0].content }}'),
    big.map((n) => `{{ messages[${n}].content }}`),
    big.map((n) => `{{ 'ab\\ncd' | indent(${n}) }}`),
    big.map((n) => `{{ messages | tojson(indent=${n}) }}`),
    fc.constant('{% set ns = namespace(s=messages[0].content) %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}'),
    fc.constant('{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}'),
    fc.constant("{{ raise_exception('roles must alternate') }}"),
    fc.constant('{{ bos_token }}{{ undefined_thing.attr }}'),
    fc.constant('{{ messages[0].content * 3 }}'),
    fc.constant('{% for c in messages[0].content %}{{ c }}{% endfor %}'),
  );
  const template: fc.Arbitrary<string> = fc.letrec<{ t: string }>((tie) => ({
    t: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      leaf,
      fc.tuple(big, tie('t')).map(([n, body]) => `{% for i in range(${n}) %}${body}{% endfor %}`),
      fc.tuple(tie('t'), tie('t')).map(([a, b]) => a + b),
      tie('t').map((body) => `{% if add_generation_prompt %}${body}{% endif %}`),
    ),
  })).t;

  test('templates built from hostile pieces (huge and nested loops, doubling strings, wide indents, recursion): text within the limits or a named error, in bounded time', async () => {
    const t = new Tally();
    await check(
      fc.asyncProperty(template, async (source) => {
        const tpl = new ChatTemplate(source, { bos_token: '<s>', eos_token: '</s>' }, 'hostile/tokenizer_config.json');
        t.add(await cleanRender('hostile/tokenizer_config.json', source.length, () => tpl.render(USER, { addGenerationPrompt: true })));
      }),
      { seed: 1433, numRuns: fcRuns(200) },
    );
    assert.ok(t.ok > 0 && t.errors > 0, `fuzz reached both outcomes (ok ${t.ok}, errors ${t.errors})`);
  });
});

test('named: a loop that would run for hours, a gigabyte indent, a doubling string, range(10^9), deep recursion, a huge file: each refused by file and field within seconds', async () => {
  const file = 'x/tokenizer_config.json';
  const render = (src: string) => () => new ChatTemplate(src, {}, file).render(USER);
  const timed = async (what: string, fn: () => unknown, ...parts: string[]) => {
    const t0 = performance.now();
    await rejectsNaming(fn, file, 'chat_template', ...parts);
    assert.ok(performance.now() - t0 < 10_000, `${what} took ${Math.round(performance.now() - t0)} ms`);
  };
  // 10^9 iterations of an empty body: without the step budget this runs for about an hour.
  await timed('nested loops', render('{% set r = range(1000) %}{% for a in r %}{% for b in r %}{% for c in r %}{% endfor %}{% endfor %}{% endfor %}x'), 'evaluation steps');
  // indent(2*10^8) would build a 200 MB string in one call.
  await timed('indent', render("{{ 'a\\nb' | indent(200000000) }}"), 'computes the number 200000000');
  await timed('doubling', render('{% set ns = namespace(s="xxxxxxxx") %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}'), 'builds a string of');
  await timed('range', render('{% for i in range(1000000000) %}{% endfor %}'), 'computes the number 1000000000');
  // Many small pieces adding up: 20,000 x 1,000 characters.
  await timed('output', render("{% for i in range(20000) %}{{ messages[0].content ~ ('y' | indent(950, true)) }}{% endfor %}"), 'renders more than');
  await timed('recursion', render('{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}'), 'failed to render');
  await timed('parse', () => new ChatTemplate('{{ ' + '('.repeat(100_000) + ' }}', {}, file), 'does not parse as Jinja');
  // A legitimate template is untouched by the limits (the published Qwen2 template, its documented output).
  assert.equal(new ChatTemplate(QWEN2_TEMPLATE, {}, file).render([{ role: 'user', content: 'U' }], { addGenerationPrompt: true }), '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n');
  // A file far larger than any template is refused before it is read.
  const dir = freshDir();
  fs.writeFileSync(path.join(dir, 'chat_template.jinja'), Buffer.alloc(RENDER_LIMITS.sourceBytes + 1, 0x20));
  await rejectsNaming(() => readChatTemplate(dir), path.join(dir, 'chat_template.jinja'), 'bytes, more than');
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), '[' + '['.repeat(10_000) + ']'.repeat(10_000) + ']');
  await rejectsNaming(() => readChatTemplate(dir), path.join(dir, 'tokenizer_config.json'), 'nests deeper');
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), '"just a string"');
  await rejectsNaming(() => readChatTemplate(dir), path.join(dir, 'tokenizer_config.json'), 'expected a JSON object');
});

test('named: a template that never writes the message (so the AV prompt lacks its placeholder) is refused naming the template file', () => {
  const dir = freshDir();
  // Qwen2-style ids (tests/reference-fixture.ts): the char is id 257 between ">" (62) and "<" (60).
  fs.writeFileSync(path.join(dir, 'nla_meta.yaml'), sidecarYaml({ role: 'av', d: 4, injectionScale: 2, mseScale: null, char: '\u320E', injectionId: 257, left: 62, right: 60, suffix: null, K: 1 }));
  writeTokenizer(dir, 'qwen2');
  const tok = loadTokenizer(dir), side = readModelSidecar(dir);
  // The published template places the char once, between its neighbours.
  const ok = referenceAvPrompt(tok, readChatTemplate(dir)!, side);
  assert.equal(ok.ids[ok.position], 257);
  writeTokenizer(dir, 'qwen2', { template: "{% for m in messages %}<|im_start|>{{ m['role'] }}\n<|im_end|>\n{% endfor %}" });
  const file = path.join(dir, 'tokenizer_config.json');
  assert.throws(() => referenceAvPrompt(tok, readChatTemplate(dir)!, side), (e: Error) => e.message.includes('occurs 0 times') && e.message.includes(file) && e.message.includes('chat_template'));
});

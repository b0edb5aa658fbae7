// Chat templates rendered with @huggingface/jinja as transformers' apply_chat_template renders
// them. Python transformers cannot run here, so the expected strings are written by hand from
// the published templates' documented output (Qwen2-Instruct: ChatML with the default system
// message; Meta-Llama-3-Instruct: header ids, "\n\n", trimmed content, <|eot_id|>, and BOS
// written by the template itself), not produced by the code under test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ChatTemplate, readChatTemplate } from '../src/io/chat-template.js';
import { LLAMA3_TEMPLATE, QWEN2_TEMPLATE } from './reference-fixture.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-chat-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

const user = [{ role: 'user', content: '  Here is the vector:\n\n<concept>\u320E</concept>\n' }];

test('Qwen2-style template: default system turn, ChatML user turn, generation prompt', () => {
  const t = new ChatTemplate(QWEN2_TEMPLATE, { eos_token: '<|im_end|>' }, 'qwen');
  assert.equal(
    t.render(user, { addGenerationPrompt: true }),
    '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n  Here is the vector:\n\n<concept>\u320E</concept>\n<|im_end|>\n<|im_start|>assistant\n',
  );
  // Without add_generation_prompt the assistant header is absent; with an explicit system message no default is added.
  assert.equal(t.render([{ role: 'system', content: 'S' }, { role: 'user', content: 'U' }]), '<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n');
});

test('Llama-3-style template: BOS from bos_token, headers, trimmed content, <|eot_id|>, assistant header', () => {
  const t = new ChatTemplate(LLAMA3_TEMPLATE, { bos_token: '<|begin_of_text|>', eos_token: '<|eot_id|>' }, 'llama3');
  assert.equal(
    t.render(user, { addGenerationPrompt: true }),
    '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHere is the vector:\n\n<concept>\u320E</concept><|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
  );
  // An assistant turn after the user turn: BOS only once, at the start.
  assert.equal(
    t.render([{ role: 'user', content: 'Hi' }, { role: 'assistant', content: '<explanation>\nx\n</explanation>' }]),
    '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n<explanation>\nx\n</explanation><|eot_id|>',
  );
});

test('readChatTemplate: tokenizer_config.json string or named list, chat_template.jinja, special tokens as strings or AddedToken objects', () => {
  const dir = (n: string) => fs.mkdirSync(path.join(tmp, n), { recursive: true }) ?? path.join(tmp, n);
  const a = dir('a');
  fs.writeFileSync(path.join(a, 'tokenizer_config.json'), JSON.stringify({ bos_token: { content: '<s>', lstrip: false }, eos_token: '</s>', chat_template: '{{ bos_token }}{{ messages[0].content }}{{ eos_token }}' }));
  assert.equal(readChatTemplate(a)!.render([{ role: 'user', content: 'x' }]), '<s>x</s>');
  const b = dir('b');
  fs.writeFileSync(path.join(b, 'tokenizer_config.json'), JSON.stringify({ chat_template: [{ name: 'tool_use', template: 'T' }, { name: 'default', template: 'D{{ messages|length }}' }] }));
  assert.equal(readChatTemplate(b)!.render(user), 'D1');
  const c = dir('c');
  fs.writeFileSync(path.join(c, 'tokenizer_config.json'), JSON.stringify({ eos_token: '</s>' }));
  fs.writeFileSync(path.join(c, 'chat_template.jinja'), '{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}');
  assert.equal(readChatTemplate(c)!.render([{ role: 'user', content: 'q' }], { addGenerationPrompt: true }), '[user]q[assistant]');
  const d = dir('d');
  fs.writeFileSync(path.join(d, 'tokenizer_config.json'), JSON.stringify({ eos_token: '</s>' }));
  assert.equal(readChatTemplate(d), undefined);
  const e = dir('e');
  fs.writeFileSync(path.join(e, 'tokenizer_config.json'), JSON.stringify({ chat_template: [{ name: 'tool_use', template: 'T' }] }));
  assert.throws(() => readChatTemplate(e), /tokenizer_config\.json: chat_template lists templates \["tool_use"\] but none named "default"/);
  // raise_exception in a template surfaces as an error naming the file.
  const f = dir('f');
  fs.writeFileSync(path.join(f, 'tokenizer_config.json'), JSON.stringify({ chat_template: "{{ raise_exception('roles must alternate') }}" }));
  assert.throws(() => readChatTemplate(f)!.render(user), /f\/tokenizer_config\.json: chat_template failed to render \(.*roles must alternate/);
});

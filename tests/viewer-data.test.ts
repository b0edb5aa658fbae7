// The viewer's host-side pieces that need no GPU or browser: metrics.jsonl -> curves and eval
// rows, where the metrics are looked for, `nla report --data` files, the page's inlining.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readDataTexts } from '../src/cli/report.js';
import { findMetrics, readMetrics } from '../src/viewer/metrics.js';
import { renderPage } from '../src/viewer/page.js';
import { checkSettings, InputError } from '../src/viewer/view-data.js';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'nla-viewer-'));

test('readMetrics: one series per numeric field over step, a resumed step once (the later line), evals without a step', () => {
  const dir = tmp(), f = path.join(dir, 'metrics.jsonl');
  fs.writeFileSync(f, [
    { stage: 'sft-ar', step: 0, loss: 2, lr: 0.1 },
    { stage: 'sft-ar', step: 1, loss: 1.5, lr: 0.1 },
    { stage: 'sft-ar-checkpoint', step: 1, file: 'x.ckpt' },
    { stage: 'sft-ar', step: 1, loss: 1.25, lr: 0.1 }, // a resume rewrote step 1
    { stage: 'sft-ar-eval', fve: 0.5 },
    { stage: 'rl', step: 0, reward: -1, kl: 0, logitScale: 1, phases: { av: 3 }, seconds: 2 },
    { stage: 'rl', step: 1, reward: -0.5, logitScale: 1.1 },
    { stage: 'model-text-examples', rule: 'every 20th row', rows: [] },
    { stage: 'eval-rl', fve: 0.25, parse: 1, seeds: { base: 0 } },
  ].map((o) => JSON.stringify(o)).join('\n') + '\n\n');
  const m = readMetrics(f);
  assert.deepEqual(m.curves.map((c) => c.stage), ['sft-ar', 'rl']);
  assert.deepEqual(m.curves[0], { stage: 'sft-ar', steps: [0, 1], series: { loss: [2, 1.25] } }, 'lr is not plotted; step 1 is the resumed line');
  assert.deepEqual(m.curves[1].series, { reward: [-1, -0.5], kl: [0, null], logitScale: [1, 1.1] }, 'seconds and nested phases are left out; a missing value is null');
  assert.deepEqual(m.evals, [{ stage: 'sft-ar-eval', values: { fve: 0.5 } }, { stage: 'eval-rl', values: { fve: 0.25, parse: 1 } }], 'lines with no number (examples) are not rows');
  fs.appendFileSync(f, '{"stage": "rl", "step": 2,\n');
  assert.throws(() => readMetrics(f), new RegExp(`${f.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:11: not valid JSON`));
  fs.writeFileSync(f, '{"step": 2}\n');
  assert.throws(() => readMetrics(f), /metrics\.jsonl:1: field "stage" missing/);
});

test('findMetrics: --metrics, else <nla>/metrics.jsonl, else <nla>/../metrics.jsonl (nla demo), else none', () => {
  const run = tmp(), nla = path.join(run, 'nla');
  fs.mkdirSync(nla);
  assert.equal(findMetrics(nla), undefined);
  fs.writeFileSync(path.join(run, 'metrics.jsonl'), '');
  assert.equal(findMetrics(nla), path.join(nla, '..', 'metrics.jsonl'));
  fs.writeFileSync(path.join(nla, 'metrics.jsonl'), '');
  assert.equal(findMetrics(nla), path.join(nla, 'metrics.jsonl'));
  assert.throws(() => findMetrics(nla, path.join(run, 'nope.jsonl')), /--metrics .*nope\.jsonl: file not found/);
});

test('readDataTexts: .jsonl is one {"text"} a line, optionally with its "facts" (errors name the line), any other file is one text', () => {
  const dir = tmp();
  const j = path.join(dir, 'texts.jsonl');
  fs.writeFileSync(j, '{"text": "Once upon a time"}\n\n{"text": "The cat sat."}\n');
  assert.deepEqual(readDataTexts(j), [{ text: 'Once upon a time' }, { text: 'The cat sat.' }]);
  fs.writeFileSync(j, '{"text": "a"}\n{"txt": "b"}\n');
  assert.throws(() => readDataTexts(j), /texts\.jsonl:2: field "text" missing/);
  fs.writeFileSync(j, '{"text": "Lily went to the park.", "facts": {"name": "Lily", "place": "park"}}\n');
  assert.deepEqual(readDataTexts(j), [{ text: 'Lily went to the park.', facts: { name: 'Lily', place: 'park' } }]);
  fs.writeFileSync(j, '{"text": "a"}\n{"text": "b", "facts": {"place": "moon"}}\n');
  assert.throws(() => readDataTexts(j), /texts\.jsonl:2: field "facts"\.place: "moon" is not one of park, garden/);
  fs.writeFileSync(j, '{"text": "b", "facts": {"hair": "red"}}\n');
  assert.throws(() => readDataTexts(j), /texts\.jsonl:1: field "facts": field "hair" is not a known-answer field/);
  const t = path.join(dir, 'story.txt');
  fs.writeFileSync(t, 'One line.\nTwo lines.\n\n');
  assert.deepEqual(readDataTexts(t), [{ text: 'One line.\nTwo lines.' }]);
  assert.throws(() => readDataTexts(path.join(dir, 'none.txt')), /--data .*none\.txt: file not found/);
});

test('checkSettings: defaults as nla explain (greedy for one sample, t=1 for several), range errors name the field', () => {
  assert.deepEqual(checkSettings({}), { samples: 1, temperature: 0, seed: 0 });
  assert.deepEqual(checkSettings({ samples: '4', seed: '7' }), { samples: 4, temperature: 1, seed: 7 });
  assert.deepEqual(checkSettings({ samples: 2, temperature: '0.5' }), { samples: 2, temperature: 0.5, seed: 0 });
  assert.throws(() => checkSettings({ samples: 0 }), (e: Error) => e instanceof InputError && /samples: 0 is not an integer from 1 to 16/.test(e.message));
  assert.throws(() => checkSettings({ temperature: 'hot' }, '--'), /--temperature: "hot" is not a number/);
});

test('renderPage: data inlined so that no text can close the script, and no external URL in the page', () => {
  const evil = '</script><script>alert(1)</script><!--';
  const html = renderPage({ mode: 'report', error: evil });
  const boot = html.match(/<script type="application\/json" id="nla-boot">(.*?)<\/script>/s);
  assert.ok(boot, 'the boot JSON is one script element');
  assert.equal(JSON.parse(boot[1]).error, evil, 'the text comes back exactly');
  assert.equal(html.split('</script>').length - 1, 3, 'exactly the three script elements close');
  assert.match(html, /uPlot/, 'uPlot is inlined');
  assert.doesNotMatch(html, /<(script|link|img)[^>]+(src|href)=/i, 'nothing is loaded from elsewhere');
});

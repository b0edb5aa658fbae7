// The viewer in a real Chromium (tests/browser.ts): a tiny NLA trained through the CLI, then
// `nla report` opened from file:// and `nla serve` driven through its form. Each checks that
// the panel shows, for a clicked token, the explanation and FVE the library returns for that
// position, that the page asks nothing of the network, and saves screenshots to test-artifacts/.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import type { ClaimMark } from '../src/nla/claims.js';
import { tokenizeWithOffsets } from '../src/nla/extract.js';
import { knownPerToken, markScored, type Facts } from '../src/nla/fact-marks.js';
import { normalizedMseHost } from '../src/nla/loss.js';
import { worldStory } from '../src/nla/world.js';
import { loadNLA, type NLA } from '../src/nla/nla.js';
import { launchChromium, localOnlyContext, screenshotPath } from './browser.js';
import { okCli, runCli } from './cli-helpers.js';
import { modelFile, SKIP_NO_MODEL } from './helpers.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const run = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-viewer-'));
const store = path.join(run, 'activations'), dir = path.join(run, 'nla');
const TEXT = 'Once upon a time, there was a little girl.';
let nla: NLA;
let browser: Browser;
const children: ChildProcess[] = [];

before(async () => {
  if (SKIP_NO_MODEL) return;
  browser = await launchChromium(); // first: a missing Chromium fails every test here at once
  const M = modelFile('stories260K.bin');
  // A small NLA from the chain with metrics and a store; its AV is trained just long enough
  // (60 steps: 30 did not once summaries quoted the words read twice) to close its explanations,
  // so FVEs are real scores, not the unparseable MSE 2.
  await okCli(['extract', '--model', M, '--layer', '3', '--out', store, '--stories', '24', '--cuts', '2']);
  await okCli(['sft-ar', '--store', store, '--model', M, '--out', dir, '--steps', '4', '--batch-size', '4', '--warmup', '1', '--log-every', '1', '--eval-rows', '4'], 120_000);
  await okCli(['sft-av', '--store', store, '--model', M, '--out', dir, '--steps', '60', '--batch-size', '16', '--lr', '0.002', '--eval-rows', '2'], 120_000);
  nla = await loadNLA(dir);
}, { timeout: 300_000 });

after(async () => {
  for (const c of children) c.kill('SIGTERM');
  await browser?.close();
  nla?.dispose();
  fs.rmSync(run, { recursive: true, force: true });
});

/** What the library says at a position: the best explanation (greedy, one sample) and its FVE. */
async function libraryAt(text: string, p: number): Promise<{ text: string; fve: string; quoteP: string }> {
  const [t] = await nla.explain(text, [p]);
  assert.equal(t.position, p);
  assert.doesNotMatch(t.explanations[0].text, /^\(unparseable\)/, 'a parsed explanation, so its FVE is a real score');
  const q = t.explanations[0].quoteP;
  return { text: t.explanations[0].text, fve: t.explanations[0].fve.toFixed(3), quoteP: q === undefined ? '\u2014' : q.toFixed(2) };
}

async function panelBest(page: Page): Promise<{ text: string; fve: string; quoteP: string; rank: string }> {
  const row = page.locator('#panel-body tr.expl').first();
  return { text: (await row.locator('td.text .expl-text').textContent())!, fve: (await row.locator('td.fve').textContent())!, quoteP: (await row.locator('td.quote-p').textContent())!, rank: (await row.locator('td.rank').textContent())! };
}

function startServe(nlaDir: string): Promise<{ url: string; child: ChildProcess; stderr: () => string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src/cli/main.ts'), 'serve', '--nla', nlaDir, '--port', '0'], {
    cwd: root,
    env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? os.tmpdir() },
  });
  children.push(child);
  let out = '', err = '';
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`nla serve did not print its URL in 60 s\nstderr: ${err}`)), 60_000);
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const m = out.match(/nla serve: (http:\/\/\S+)/);
      if (m) (clearTimeout(timer), resolve({ url: m[1], child, stderr: () => err }));
    });
    child.on('exit', (code) => (clearTimeout(timer), reject(new Error(`nla serve exited ${code}\nstderr: ${err}`))));
  });
}

test('nla report: one file that opens offline; a clicked token shows the library\'s explanation, FVE and baselines; training charts', { skip: SKIP_NO_MODEL, timeout: 240_000 }, async () => {
  const out = path.join(run, 'report.html'), data = path.join(run, 'texts.jsonl');
  const SECOND = 'The dog ran to the park.';
  fs.writeFileSync(data, JSON.stringify({ text: TEXT }) + '\n' + JSON.stringify({ text: SECOND }) + '\n');
  const r = await okCli(['report', '--nla', dir, '--data', data, '--samples', '1', '--out', out], 120_000);
  assert.match(r.stdout, /2 text\(s\), \d+ tokens, 1 explanation\(s\) each, training charts from .*metrics\.jsonl/);
  const { context, outside } = await localOnlyContext(browser);
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(pathToFileURL(out).href);
  await page.waitForSelector('body[data-ready="1"]');

  const ids = nla.tok.encode(TEXT, { bos: true });
  assert.equal(await page.locator('.doc').count(), 2, 'one block per text of --data');
  assert.equal(await page.locator('.doc[data-doc="0"] .tok').count(), ids.length, 'one token element per token, BOS included');
  assert.deepEqual(await page.locator('.doc[data-doc="0"] .tok').evaluateAll((es) => es.slice(1).map((e) => e.textContent)), nla.tok.pieces(ids).slice(1));
  await page.click('.tok[data-doc="1"][data-pos="2"]');
  assert.deepEqual(await panelBest(page), { ...(await libraryAt(SECOND, 2)), rank: '1' }, 'the second text\'s token');
  const p = 4;
  await page.click(`.tok[data-doc="0"][data-pos="${p}"]`);
  assert.deepEqual(await panelBest(page), { ...(await libraryAt(TEXT, p)), rank: '1' });
  assert.match((await page.locator('.tok.sel').getAttribute('title'))!, new RegExp(`position ${p} · best FVE ${(await libraryAt(TEXT, p)).fve}`));

  // The floor baseline: the NLA's mean activation scored against h at this token.
  const { h } = await nla.activations(TEXT);
  const d = nla.ar.d;
  const floor = 1 - normalizedMseHost(nla.meta.mean, h.subarray(p * d, (p + 1) * d), d) / nla.meta.variance;
  assert.equal(await page.locator('#panel-body tr.baseline-floor td.num').textContent(), floor.toFixed(3));
  assert.match((await page.locator('#panel-body tr.baseline-token td.num').textContent())!, /^-?\d+\.\d{3}$/, 'the token baseline is fitted (the store is found beside the NLA)');
  const tokenBase = Number(await page.locator('#panel-body tr.baseline-token td.num').textContent());
  const gap = Number((await libraryAt(TEXT, p)).fve) - tokenBase;
  // Both shown values are rounded to 3 decimals, so their gap is known to within 0.001.
  const vs = (await page.locator('#panel-body .vs-token').textContent())!.match(/^best explanation (beats|trails) the current-token baseline by (\d\.\d{3})$/);
  assert.ok(vs, 'the gap to the token baseline is stated');
  if (Math.abs(gap) > 0.001) assert.equal(vs[1], gap > 0 ? 'beats' : 'trails');
  assert.ok(Math.abs(Number(vs[2]) - Math.abs(gap)) <= 0.0011, `${vs[2]} vs ${gap}`);
  assert.match((await page.locator('#baseline-note').textContent())!, /fitted on the \d+ training rows .* of .*activations/);

  // Charts drawn by uPlot (a canvas each) from the sft-ar and sft-av losses; the eval table.
  for (const stage of ['sft-ar', 'sft-av']) assert.equal(await page.locator(`.chart[data-stage="${stage}"][data-key="loss"] canvas`).count(), 1, `${stage} loss chart`);
  assert.ok(await page.locator('#evals th', { hasText: 'sft-ar-eval' }).count() === 1, 'eval table has the sft-ar-eval column');
  await page.screenshot({ path: screenshotPath('viewer-report.png'), fullPage: true });
  assert.deepEqual(outside, [], 'the report asks nothing of the network');
  assert.deepEqual(errors, []);
  await context.close();
});

test('nla report refuses bad input with a message naming it (no file written)', { skip: SKIP_NO_MODEL, timeout: 120_000 }, async () => {
  const out = path.join(run, 'bad.html');
  const cases: [string[], RegExp][] = [
    [['--text', '  '], /text: empty/],
    [['--text', 'Once upon a time '.repeat(200)], /text: \d+ tokens \(with BOS\), longer than the model's context of 512/],
    [[], /needs exactly one of --text TEXT, --data FILE or --vectors FILE/],
    [['--text', 'a', '--data', 'x.jsonl'], /needs exactly one of --text TEXT, --data FILE or --vectors FILE/],
    [['--text', 'a', '--vectors', 'v.npy'], /needs exactly one of --text TEXT, --data FILE or --vectors FILE/],
    [['--text', 'a', '--samples', '0'], /--samples: "0" is not an integer from 1 to 16/],
  ];
  for (const [args, msg] of cases) {
    const r = await runCli(['report', '--nla', dir, '--out', out, ...args]);
    assert.notEqual(r.code, 0, args.join(' '));
    assert.match(r.stderr, msg);
  }
  const r = await runCli(['report', '--nla', path.join(run, 'nope'), '--text', TEXT, '--out', out]);
  assert.match(r.stderr, /nope: not an NLA directory \(no nla\.json/);
  assert.equal(fs.existsSync(out), false);
});

test('nla serve: submit text, progress, click a token = the library; bad input -> message + 4xx, and it keeps serving; requests queue', { skip: SKIP_NO_MODEL, timeout: 240_000 }, async () => {
  const srv = await startServe(dir);
  const { context, outside } = await localOnlyContext(browser);
  const page = await context.newPage();
  const first = await page.goto(srv.url);
  assert.equal(first!.status(), 200);
  await page.waitForSelector('body[data-ready="1"]');
  assert.match((await page.locator('#nla-info').textContent())!, /layer 3 · Var \d\.\d{3} · context 512 tokens/);

  // Submit through the form (greedy, one sample), wait for the tokens, click one.
  const submit = async (text: string): Promise<number> => {
    await page.fill('#text', text);
    const [res] = await Promise.all([page.waitForResponse('**/api/explain'), page.click('#go')]);
    await page.waitForFunction(() => !(document.getElementById('go') as HTMLButtonElement).disabled);
    return res.status();
  };
  await page.fill('#samples', '1');
  await page.fill('#temperature', '0');
  assert.equal(await submit(TEXT), 200);
  const ids = nla.tok.encode(TEXT, { bos: true });
  assert.equal(await page.locator('.tok').count(), ids.length);
  assert.equal(await page.locator('#status').textContent(), `done: ${ids.length} tokens`);
  assert.equal(await page.locator('#message').isHidden(), true);
  const p = 3;
  await page.click(`.tok[data-pos="${p}"]`);
  assert.deepEqual(await panelBest(page), { ...(await libraryAt(TEXT, p)), rank: '1' });
  assert.equal(await page.locator('.chart canvas').count() > 0, true, 'the training charts are on the served page too');
  await page.screenshot({ path: screenshotPath('viewer-serve.png'), fullPage: true });

  // Several samples: as many rows, best (highest FVE) first.
  await page.fill('#samples', '3');
  await page.fill('#temperature', '1');
  assert.equal(await submit('The cat sat.'), 200);
  await page.click('.tok[data-pos="2"]');
  const fves = (await page.locator('#panel-body tr.expl td.fve').allTextContents()).map(Number);
  assert.equal(fves.length, 3);
  assert.deepEqual(fves, [...fves].sort((a, b) => b - a), 'best first');

  // Bad input: a message on the page and a 4xx; the previous tokens stay.
  assert.equal(await submit('   '), 400);
  assert.match((await page.locator('#message').textContent())!, /^text: empty/);
  assert.equal(await submit('Once upon a time '.repeat(200)), 400);
  assert.match((await page.locator('#message').textContent())!, /^text: \d+ tokens \(with BOS\), longer than the model's context of 512/);
  await page.fill('#nla-dir', path.join(run, 'not-an-nla'));
  assert.equal(await submit(TEXT), 422);
  assert.match((await page.locator('#message').textContent())!, /not-an-nla: not an NLA directory \(no nla\.json/);
  await page.screenshot({ path: screenshotPath('viewer-serve-error.png'), fullPage: true });
  // ... and it keeps serving.
  await page.fill('#nla-dir', dir);
  await page.fill('#samples', '1');
  await page.fill('#temperature', '0');
  assert.equal(await submit(TEXT), 200);
  assert.equal(await page.locator('#message').isHidden(), true);
  await page.click(`.tok[data-pos="${p}"]`);
  assert.deepEqual(await panelBest(page), { ...(await libraryAt(TEXT, p)), rank: '1' });
  assert.deepEqual(outside, [], 'the served page asks nothing beyond localhost');

  // Two requests at once: one waits for the other, and its GPU work starts only after the
  // other's result (lines are timed as they stream in).
  const log: { name: string; type: string; ahead?: number; t: number }[] = [];
  const post = async (name: string, text: string) => {
    const res = await fetch(srv.url + 'api/explain', { method: 'POST', body: JSON.stringify({ text }) });
    assert.equal(res.status, 200);
    const dec = new TextDecoder();
    let buf = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += dec.decode(chunk, { stream: true });
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines) if (l.trim()) log.push({ name, ...(JSON.parse(l) as { type: string; ahead?: number }), t: performance.now() });
    }
  };
  await Promise.all([post('A', 'One day, a dog ran to the big tree.'), post('B', 'The sun was hot.')]);
  const queued = log.filter((l) => l.type === 'queued');
  assert.deepEqual(queued.map((l) => l.ahead).sort(), [0, 1], 'one request waited for the other');
  const [firstName, secondName] = queued[0].ahead === 0 ? [queued[0].name, queued[1].name] : [queued[1].name, queued[0].name];
  const firstResult = log.find((l) => l.name === firstName && l.type === 'result')!;
  const secondWork = log.filter((l) => l.name === secondName && l.type === 'progress');
  assert.ok(firstResult && secondWork.length > 0);
  assert.ok(secondWork.every((l) => l.t >= firstResult.t), `the second request's progress comes after the first's result: ${JSON.stringify(log)}`);
  assert.ok(!srv.stderr().includes('error:'), srv.stderr());
  await context.close();
});

/**
 * What the library marks at a position of known-answer text: the best (greedy) explanation's
 * claims against the facts read by that token, as the page should show them.
 */
async function libraryMarks(text: string, facts: Facts, p: number): Promise<{ known: Facts; marks: string[] }> {
  const [t] = await nla.explain(text, [p]);
  const known = knownPerToken(text, tokenizeWithOffsets(nla.tok, text).offsets, facts)[p];
  const marks = markScored(t.explanations[0], known, facts);
  return { known, marks: marks.map(shownMark) };
}
const shownMark = (c: ClaimMark) => `${c.ok}|${c.ok ? '\u2713' : '\u2717'} ${c.field} = ${c.said.join(' / ')}${c.ok ? '' : c.truth === undefined ? ' (not read yet)' : ` (text: ${c.truth})`}`;

async function panelMarks(page: Page): Promise<string[]> {
  return page.locator('#panel-body tr.expl').first().locator('.claim').evaluateAll((es) => es.map((e) => `${(e as HTMLElement).dataset.ok}|${e.textContent}`));
}

test('known-answer text (nla world sample --jsonl -> report --data): each stated fact is marked true or false as the library marks it', { skip: SKIP_NO_MODEL, timeout: 240_000 }, async () => {
  const story = worldStory(3, 0);
  const data = path.join(run, 'world.jsonl'), out = path.join(run, 'facts.html');
  const r0 = await okCli(['world', 'sample', '--jsonl', '--n', '1', '--seed', '3']);
  fs.writeFileSync(data, r0.stdout);
  assert.deepEqual(JSON.parse(r0.stdout), { text: story.text, facts: story.latents, seed: 3, story: 0 }, 'the generator\'s story and its latents');
  await okCli(['report', '--nla', dir, '--data', data, '--samples', '1', '--out', out], 180_000);
  const { context, outside } = await localOnlyContext(browser);
  const page = await context.newPage();
  await page.goto(pathToFileURL(out).href);
  await page.waitForSelector('body[data-ready="1"]');
  assert.match((await page.locator('.doc .facts-line').textContent())!, /known facts of this text: name=Mia place=house object=hat colour=red emotion=happy event=lost/);
  // Every token's data on the page = the library: the best explanation, the facts read there
  // and each mark (computed here from the library's explanations and knownPerToken).
  const boot = await page.evaluate(() => JSON.parse(document.getElementById('nla-boot')!.textContent!));
  const toks = boot.data.docs[0].tokens as { position: number; known: Facts; explanations: { text: string; claims: ClaimMark[] }[] }[];
  const libAll = await nla.explain(story.text);
  const knownAll = knownPerToken(story.text, tokenizeWithOffsets(nla.tok, story.text).offsets, story.latents);
  assert.equal(toks.length, libAll.length);
  for (const [p, t] of toks.entries()) {
    assert.equal(t.explanations[0].text, libAll[p].explanations[0].text, `token ${p}`);
    assert.deepEqual(t.known, knownAll[p], `facts read by token ${p}`);
    assert.deepEqual(t.explanations[0].claims.map(shownMark), markScored(libAll[p].explanations[0], knownAll[p], story.latents).map(shownMark), `marks at token ${p}`);
  }
  // The token where the name is read: the panel's list of facts read changes there.
  const nameAt = knownAll.findIndex((k) => k.name !== undefined);
  await page.click(`.tok[data-doc="0"][data-pos="${nameAt}"]`);
  assert.match((await page.locator('#panel-body .known-here').textContent())!, new RegExp(`^facts read by this token: name=${story.latents.name} · not read yet: place`));
  // Tokens whose best explanation the page marks with a true fact and with a false one.
  const withTrue = toks.find((t) => t.explanations[0].claims.some((c) => c.ok));
  const withFalse = toks.find((t) => t.explanations[0].claims.some((c) => !c.ok) && t !== withTrue);
  assert.ok(withTrue, 'the fixture NLA states at least one true fact of this story (else the test has nothing to check)');
  assert.ok(withFalse, 'and at least one false fact');
  const seen = { true: 0, false: 0 };
  for (const p of [withTrue.position, withFalse.position]) {
    await page.click(`.tok[data-doc="0"][data-pos="${p}"]`);
    const lib = await libraryMarks(story.text, story.latents, p);
    assert.deepEqual(await panelMarks(page), lib.marks, `marks at token ${p}`);
    const kv = Object.entries(lib.known).map(([k, v]) => `${k}=${v}`).join(' ');
    assert.match((await page.locator('#panel-body .known-here').textContent())!, new RegExp(`^facts read by this token: ${kv || 'none'}`));
    for (const m of lib.marks) seen[m.startsWith('true') ? 'true' : 'false']++;
  }
  assert.ok(seen.true > 0 && seen.false > 0, JSON.stringify(seen));
  await page.screenshot({ path: screenshotPath('viewer-facts.png'), fullPage: true });
  assert.deepEqual(outside, []);
  await context.close();
});

test('nla serve with known facts: the form\'s facts field marks the clicked token as the library does; bad facts -> 400 naming the field', { skip: SKIP_NO_MODEL, timeout: 180_000 }, async () => {
  const srv = await startServe(dir);
  const { context, outside } = await localOnlyContext(browser);
  const page = await context.newPage();
  await page.goto(srv.url);
  await page.waitForSelector('body[data-ready="1"]');
  const text = 'Mia was a little girl. She liked to play at the house. There, she saw a red hat.';
  const facts = { name: 'Mia', place: 'house', colour: 'red' } as Facts;
  await page.fill('#samples', '1');
  await page.fill('#temperature', '0');
  await page.fill('#text', text);
  await page.fill('#facts', 'name=Mia place=house colour=red');
  const submit = async (): Promise<number> => {
    const [res] = await Promise.all([page.waitForResponse('**/api/explain'), page.click('#go')]);
    await page.waitForFunction(() => !(document.getElementById('go') as HTMLButtonElement).disabled);
    return res.status();
  };
  assert.equal(await submit(), 200);
  // The library's marks at every token; click the first token with any, and one without.
  const n = nla.tok.encode(text, { bos: true }).length;
  let marked = -1;
  for (let p = n - 1; p > 0 && marked < 0; p--) if ((await libraryMarks(text, facts, p)).marks.length) marked = p;
  assert.ok(marked > 0, 'the fixture NLA states a fact somewhere in the text');
  await page.click(`.tok[data-pos="${marked}"]`);
  assert.deepEqual(await panelMarks(page), (await libraryMarks(text, facts, marked)).marks);
  await page.click('.tok[data-pos="1"]');
  assert.deepEqual(await panelMarks(page), (await libraryMarks(text, facts, 1)).marks);
  await page.fill('#facts', 'place=moon');
  assert.equal(await submit(), 400);
  assert.match((await page.locator('#message').textContent())!, /^facts\.place: "moon" is not one of park, garden/);
  assert.deepEqual(outside, []);
  await context.close();
});

test('nla serve with an NLA directory that does not load: the page says so with a 500, and the server keeps answering', { skip: SKIP_NO_MODEL, timeout: 120_000 }, async () => {
  const bad = path.join(run, 'broken-nla');
  fs.mkdirSync(bad, { recursive: true });
  fs.writeFileSync(path.join(bad, 'nla.json'), '{"format": "nla/1"');
  const srv = await startServe(bad);
  const { context, outside } = await localOnlyContext(browser);
  const page = await context.newPage();
  for (let i = 0; i < 2; i++) {
    const res = await page.goto(srv.url);
    assert.equal(res!.status(), 500);
    await page.waitForSelector('body[data-ready="1"]');
    assert.match((await page.locator('#message').textContent())!, /The NLA directory did not load: .*broken-nla: no ar\.safetensors yet/);
  }
  const api = await fetch(srv.url + 'api/explain', { method: 'POST', body: JSON.stringify({ text: TEXT }) });
  assert.equal(api.status, 422);
  assert.match(((await api.json()) as { error: string }).error, /broken-nla: no ar\.safetensors yet/);
  assert.deepEqual(outside, []);
  await context.close();
});

// The viewer on a reference NLA pair (tests/reference-fixture.ts, built from stories260K in the
// reference layout) and on vectors from a file, in a real Chromium: `nla report` with --nla PAIR
// (a text) and with --vectors FILE, and `nla serve --av --ar` driven through its form. The panel
// must show what the library returns, with FVE over the Var the library computes from the data
// shown (the sidecars carry none), and the page must say where Var came from.
// The fixture's AV is untrained (its few greedy tokens are unparseable, MSE 2), so these tests
// check plumbing and numbers, not explanation quality.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { loadNLA, type NLA } from '../src/nla/nla.js';
import { launchChromium, localOnlyContext, screenshotPath } from './browser.js';
import { okCli, runCli } from './cli-helpers.js';
import { SKIP_NO_MODEL } from './helpers.js';
import { buildReferencePair, type Fixture } from './reference-fixture.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const run = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-viewer-ref-'));
const TEXT = 'Once upon a time';
const MAX_TOKENS = '4';
let f: Fixture, nla: NLA, browser: Browser;
const children: ChildProcess[] = [];
const npyFile = path.join(run, 'v.npy');
let V: Float32Array;

/** A (3, d) float32 .npy of fixed pseudo-random vectors. */
function writeNpy(file: string, n: number, d: number): Float32Array {
  const v = Float32Array.from({ length: n * d }, (_, i) => Math.sin(i * 12.9898 + 1) * 2);
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${n}, ${d}), }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre.writeUInt8(1, 6);
  pre.writeUInt8(0, 7);
  pre.writeUInt16LE(header.length, 8);
  fs.writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'), Buffer.from(v.buffer)]));
  return v;
}

before(async () => {
  if (SKIP_NO_MODEL) return;
  browser = await launchChromium();
  f = await buildReferencePair(path.join(run, 'pair'), 'llama3');
  nla = await loadNLA(f.nla, { model: f.base });
  nla.meta.maxExplanationTokens = Number(MAX_TOKENS);
  V = writeNpy(npyFile, 3, f.d);
}, { timeout: 120_000 });

after(async () => {
  for (const c of children) c.kill('SIGTERM');
  await browser?.close();
  nla?.dispose();
  fs.rmSync(run, { recursive: true, force: true });
});

/** The library at a text position: Var over every token of the text (as the page takes it), then the greedy best. */
async function libraryText(text: string, p: number): Promise<{ text: string; fve: string; variance: number }> {
  nla.useEvaluatedVariance((await nla.activations(text)).h, 'this text');
  const [t] = await nla.explain(text, [p]);
  return { text: t.explanations[0].text, fve: t.explanations[0].fve.toFixed(3), variance: nla.meta.variance };
}

/** The library on the file's vectors: Var over the vectors, explanations seeded 0 (one batch). */
async function libraryVectors(samples: number, temperature: number): Promise<{ text: string; fve: string }[][]> {
  nla.useEvaluatedVariance(V, 'the vectors');
  const ex = await nla.explainActivations(V, { samples, temperature, seed: 0 });
  return ex.map((rows) => rows.map((e) => ({ text: e.text, fve: e.fve.toFixed(3) })));
}

async function panelRows(page: Page): Promise<{ text: string; fve: string }[]> {
  return page.locator('#panel-body tr.expl').evaluateAll((rs) => rs.map((r) => ({ text: r.querySelector('.expl-text')!.textContent!, fve: r.querySelector('td.fve')!.textContent! })));
}

test('nla report on a reference pair: tokens, the clicked token = the library, Var computed from the text and said so', { skip: SKIP_NO_MODEL, timeout: 180_000 }, async () => {
  const out = path.join(run, 'pair.html');
  const r = await okCli(['report', '--nla', f.nla, '--model', f.base, '--text', TEXT, '--samples', '1', '--max-tokens', MAX_TOKENS, '--out', out], 150_000);
  assert.match(r.stdout, /1 text\(s\), \d+ tokens, 1 explanation\(s\) each; Var \d+\.\d{3} computed over the \d+ activations at every token of this text: the reference sidecars carry no Var/);
  const { context, outside } = await localOnlyContext(browser);
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(pathToFileURL(out).href);
  await page.waitForSelector('body[data-ready="1"]');
  const ids = nla.textIds(TEXT);
  assert.equal(await page.locator('.doc .tok').count(), ids.length);
  assert.match((await page.locator('#nla-info').textContent())!, new RegExp(`^reference pair ${f.av} \\+ ${f.ar} · .* · layer ${f.K} · Var `));
  assert.match((await page.locator('#variance-note').textContent())!, /computed over the \d+ activations at every token of this text: the reference sidecars carry no Var/);
  const p = 5;
  await page.click(`.tok[data-doc="0"][data-pos="${p}"]`);
  const lib = await libraryText(TEXT, p);
  assert.deepEqual(await panelRows(page), [{ text: lib.text, fve: lib.fve }]);
  assert.match((await page.locator('#baseline-note').textContent())!, /reference pair records no activation store/);
  await page.screenshot({ path: screenshotPath('viewer-reference.png'), fullPage: true });
  assert.deepEqual(outside, []);
  assert.deepEqual(errors, []);
  await context.close();
});

test('nla report --vectors FILE: one entry per vector; a clicked vector shows the library\'s explanations and FVE (Var over the vectors)', { skip: SKIP_NO_MODEL, timeout: 180_000 }, async () => {
  const out = path.join(run, 'vectors.html');
  const r = await okCli(['report', '--nla', f.nla, '--vectors', npyFile, '--samples', '2', '--temperature', '1', '--max-tokens', MAX_TOKENS, '--out', out], 150_000);
  assert.match(r.stdout, /3 vector\(s\) of .*v\.npy, 2 explanation\(s\) each; Var \d\.\d{3} computed over the 3 vector\(s\)/);
  const { context, outside } = await localOnlyContext(browser);
  const page = await context.newPage();
  await page.goto(pathToFileURL(out).href);
  await page.waitForSelector('body[data-ready="1"]');
  assert.deepEqual(await page.locator('.vec').allTextContents(), ['[0] array[0]', '[1] array[1]', '[2] array[2]']);
  const lib = await libraryVectors(2, 1);
  for (const i of [1, 2]) {
    await page.click(`.vec[data-index="${i}"]`);
    assert.deepEqual(await panelRows(page), lib[i], `vector ${i}`);
  }
  assert.match((await page.locator('#variance-note').textContent())!, /computed over the 3 vector\(s\) of .*v\.npy/);
  await page.screenshot({ path: screenshotPath('viewer-vectors.png'), fullPage: true });
  assert.deepEqual(outside, []);
  await context.close();
  // A vectors file that does not fit is refused, naming it.
  const bad = path.join(run, 'bad.jsonl');
  fs.writeFileSync(bad, '[1, 2, 3]\n');
  const e = await runCli(['report', '--nla', f.nla, '--vectors', bad, '--out', path.join(run, 'bad.html')], 120_000);
  assert.notEqual(e.code, 0);
  assert.match(e.stderr, /vectors: .*bad\.jsonl holds vectors of 3 values, the NLA reads d = 64/);
});

test('nla serve --av --ar: a text and a vectors file through the form = the library; a missing vectors file -> 400', { skip: SKIP_NO_MODEL, timeout: 240_000 }, async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src/cli/main.ts'), 'serve', '--av', f.av, '--ar', f.ar, '--model', f.base, '--max-tokens', MAX_TOKENS, '--port', '0'], {
    cwd: root,
    env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? os.tmpdir() },
  });
  children.push(child);
  let err = '';
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`nla serve did not print its URL in 60 s\nstderr: ${err}`)), 60_000);
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const m = out.match(/nla serve: (http:\/\/\S+)/);
      if (m) (clearTimeout(timer), resolve(m[1]));
    });
    child.on('exit', (code) => (clearTimeout(timer), reject(new Error(`nla serve exited ${code}\nstderr: ${err}`))));
  });
  // Before the pair is loaded: a text past its context is still refused with a status, not a streamed error.
  const early = await fetch(new URL('api/explain', url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: 'Once upon a time '.repeat(200) }) });
  assert.equal(early.status, 400);
  assert.match(((await early.json()) as { error: string }).error, /context/);
  const { context, outside } = await localOnlyContext(browser);
  const page = await context.newPage();
  assert.equal((await page.goto(url))!.status(), 200);
  await page.waitForSelector('body[data-ready="1"]');
  assert.match((await page.locator('#nla-info').textContent())!, /^reference pair /);
  const submit = async (): Promise<number> => {
    const [res] = await Promise.all([page.waitForResponse('**/api/explain'), page.click('#go')]);
    await page.waitForFunction(() => !(document.getElementById('go') as HTMLButtonElement).disabled);
    return res.status();
  };
  await page.fill('#samples', '1');
  await page.fill('#temperature', '0');
  await page.fill('#text', TEXT);
  assert.equal(await submit(), 200);
  await page.click('.tok[data-pos="3"]');
  const lib = await libraryText(TEXT, 3);
  assert.deepEqual(await panelRows(page), [{ text: lib.text, fve: lib.fve }]);

  await page.fill('#vectors', npyFile);
  assert.equal(await submit(), 200);
  assert.equal(await page.locator('#status').textContent(), 'done: 3 vectors');
  await page.click('.vec[data-index="2"]');
  assert.deepEqual(await panelRows(page), (await libraryVectors(1, 0))[2]);

  await page.fill('#vectors', path.join(run, 'none.npy'));
  assert.equal(await submit(), 400);
  assert.match((await page.locator('#message').textContent())!, /^vectors: .*none\.npy: file not found/);
  assert.deepEqual(outside, []);
  await context.close();
});

// The CLI as a user runs it (spawned processes): generate reproduces llama2.c, activations
// --json has one row per token and rejects a layer past the last block, explain --json on a
// small untrained NLA directory gives scored explanations per token, and bad input exits
// non-zero with a message that says what is wrong.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { Llama } from '../src/nn/llama.js';
import { loadModel, loadTokenizerFor } from '../src/nn/load.js';
import { Reconstructor } from '../src/nla/ar.js';
import { Verbalizer } from '../src/nla/av.js';
import { NLA, type NlaMeta } from '../src/nla/nla.js';
import { DEFAULT_PROMPTS } from '../src/nla/prompts.js';
import { trainAvSft } from '../src/nla/sft.js';
import { okCli, runCli } from './cli-helpers.js';
import { modelFile, PUBLISHED_OUTPUT, SKIP_NO_MODEL } from './helpers.js';

const model = () => modelFile('stories260K.bin');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-cli-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('generate --temperature 0 prints llama2.c\'s greedy text', { skip: SKIP_NO_MODEL }, async () => {
  const r = await okCli(['generate', '--model', model(), '--prompt', 'Once upon a time', '--steps', '200', '--temperature', '0']);
  assert.ok(r.stdout.trim().startsWith(PUBLISHED_OUTPUT), `got:\n${r.stdout}`);
});

test('NLA_PROFILE=1 prints GPU ms per kernel at exit (the dispatch counts add up, the shares sum to 100%); unset, nothing', { skip: SKIP_NO_MODEL }, async () => {
  const args = ['generate', '--model', model(), '--prompt', 'Once', '--steps', '5', '--temperature', '0'];
  const r = await okCli(args, undefined, { NLA_PROFILE: '1' });
  const head = /GPU time per kernel .*: ([\d.]+) ms in (\d+) dispatches/.exec(r.stderr);
  assert.ok(head, `no profile header in stderr:\n${r.stderr}`);
  const rows = [...r.stderr.matchAll(/^ {2}(.+?)\s+([\d.]+) ms\s+(\d+)\s+([\d.]+)%$/gm)];
  assert.ok(rows.some((m) => m[1].startsWith('mm_tile') || m[1].startsWith('mm')), 'a matmul row');
  assert.equal(rows.reduce((a, m) => a + Number(m[3]), 0), Number(head[2]), 'dispatches per kernel add up to the total');
  assert.ok(Math.abs(rows.reduce((a, m) => a + Number(m[2]), 0) - Number(head[1])) < 0.01 * rows.length + 0.05, 'ms per kernel add up to the total');
  assert.ok(Math.abs(rows.reduce((a, m) => a + Number(m[4]), 0) - 100) < 0.1 * rows.length, 'shares sum to 100%');
  const plain = await okCli(args);
  assert.doesNotMatch(plain.stderr, /GPU time per kernel/);
  assert.equal(plain.stdout, r.stdout, 'profiling does not change the output');
});

test('activations --json: one row of width d per token; layer 5 of a 5-block model is an error naming the range', { skip: SKIP_NO_MODEL }, async () => {
  const r = await okCli(['activations', '--model', model(), '--layer', '3', '--text', 'Once upon a time', '--json']);
  const j = JSON.parse(r.stdout) as { layer: number; tokens: string[]; ids: number[]; activations: number[][] };
  assert.equal(j.layer, 3);
  assert.ok(j.tokens.length >= 5, `tokens: ${JSON.stringify(j.tokens)}`);
  assert.equal(j.activations.length, j.tokens.length);
  assert.equal(j.ids.length, j.tokens.length);
  for (const row of j.activations) {
    assert.equal(row.length, 64);
    assert.ok(row.every(Number.isFinite));
  }
  assert.equal(j.tokens.slice(1).join('').trim(), 'Once upon a time');

  const bad = await runCli(['activations', '--model', model(), '--layer', '5', '--text', 'Hi', '--json']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /--layer 5 out of range/);
  assert.match(bad.stderr, /5 blocks/);
  assert.match(bad.stderr, /0\.\.4/);
  assert.equal(bad.stdout, '');
});

test('--config supplies options, flags override it, unknown keys are errors naming the file and key', { skip: SKIP_NO_MODEL }, async () => {
  const cfg = path.join(tmp, 'act.json');
  fs.writeFileSync(cfg, JSON.stringify({ model: model(), layer: 3, text: 'Once upon', json: true }));
  const r = await okCli(['activations', '--config', cfg, '--layer', '1']);
  assert.equal(JSON.parse(r.stdout).layer, 1, 'the flag wins over the file');

  const badCfg = path.join(tmp, 'bad.json');
  fs.writeFileSync(badCfg, JSON.stringify({ model: model(), layer: 3, text: 'Hi', bogusKey: 1 }));
  const bad = await runCli(['activations', '--config', badCfg]);
  assert.notEqual(bad.code, 0);
  assert.ok(bad.stderr.includes(badCfg) && bad.stderr.includes('unknown key "bogusKey"'), bad.stderr);
});

test('bad input: a missing model file, a missing required flag', async () => {
  const r = await runCli(['generate', '--model', '/nonexistent/dir/no-such-model.bin', '--prompt', 'x']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /no-such-model\.bin.*not found/);
  const m = await runCli(['activations', '--layer', '3', '--text', 'x']);
  assert.notEqual(m.code, 0);
  assert.match(m.stderr, /needs --model/);
});

// A small NLA made from M without training: AV = a copy of M, AR = M's blocks 0..K + identity
// head. Its explanations close at the first period so that most of them parse and get scored.
// Built by the first test that needs it, not in a before hook: a failing hook would fail this
// file's model-free tests too.
const nlaDir = path.join(tmp, 'nla');
let nlaBuilt: Promise<void> | undefined;
const buildNla = () => (nlaBuilt ??= makeNla());
async function makeNla(): Promise<void> {
  const loaded = await loadModel(model());
  const M = loaded.model as Llama;
  const tok = loadTokenizerFor(model());
  const prompts = { ...DEFAULT_PROMPTS, explanationEnd: '.' };
  const av = new Verbalizer(new Llama(M.cfg, await M.w.clone()), tok, prompts, 10);
  // A few steps teach the AV to end with "." and EOS: an output that runs into the token cap
  // without stopping is unparseable, and the untrained model never emits EOS within 16 tokens.
  const texts = ['Lily went to the park', 'Tom had a red ball', 'Mia was very happy', 'Ben saw a big dog'];
  await trainAvSft(av, { h: Float32Array.from({ length: texts.length * M.cfg.dim }, (_, i) => Math.sin(i)), texts }, { steps: 30, batchSize: 4, lr: 3e-3, warmup: 2, seed: 1 });
  const ar = await Reconstructor.fromModel(M, 3, tok, prompts);
  const meta: NlaMeta = {
    format: 'nla/1',
    model: { name: loaded.name, path: path.resolve(loaded.source), sha256: loaded.sha256, config: M.cfg },
    tokenizer: 'tokenizer.bin',
    layer: 3,
    alpha: 10,
    variance: 0.77,
    mean: new Array(64).fill(0),
    prompts,
    placeholderId: av.prompt.placeholderId,
    maxExplanationTokens: 16,
    created: new Date().toISOString(),
  };
  const nla = new NLA(meta, av, ar, tok, M);
  await nla.save(nlaDir);
  fs.copyFileSync(modelFile('tok512.bin'), path.join(nlaDir, 'tokenizer.bin'));
  nla.dispose();
}

test('explain --json: every token gets k explanations sorted by the AR\'s score, fve = 1 - mse/Var', { skip: SKIP_NO_MODEL }, async () => {
  await buildNla();
  const r = await okCli(['explain', '--nla', nlaDir, '--text', 'Once upon a time', '--samples', '2', '--json']);
  const j = JSON.parse(r.stdout) as { layer: number; tokens: { position: number; token: string; explanations: { text: string; mse: number; fve: number }[] }[] };
  assert.equal(j.layer, 3);
  assert.ok(j.tokens.length >= 5);
  j.tokens.forEach((t, i) => {
    assert.equal(t.position, i);
    assert.equal(typeof t.token, 'string');
    assert.equal(t.explanations.length, 2);
    for (const e of t.explanations) {
      assert.equal(typeof e.text, 'string');
      assert.ok(e.mse >= 0 && e.mse <= 4, `mse ${e.mse}`);
      assert.ok(Math.abs(e.fve - (1 - e.mse / 0.77)) < 1e-9);
    }
    assert.ok(t.explanations[0].mse <= t.explanations[1].mse, 'best first');
  });
  assert.ok(j.tokens.some((t) => t.explanations.some((e) => e.mse < 2)), 'some explanations parsed and were scored by the AR');

  const one = await okCli(['explain', '--nla', nlaDir, '--text', 'Once upon a time', '--position', '2', '--json']);
  const j1 = JSON.parse(one.stdout) as { tokens: { position: number; explanations: unknown[] }[] };
  assert.deepEqual(j1.tokens.map((t) => t.position), [2]);
  assert.equal(j1.tokens[0].explanations.length, 1);

  const out = await runCli(['explain', '--nla', nlaDir, '--text', 'Once upon a time', '--position', '99']);
  assert.notEqual(out.code, 0);
  assert.match(out.stderr, /--position 99: out of range/);
});

test('explain on a partial NLA directory says which stage is missing', async () => {
  const dir = path.join(tmp, 'partial');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'nla.json'), '{}');
  fs.writeFileSync(path.join(dir, 'ar.safetensors'), '');
  const r = await runCli(['explain', '--nla', dir, '--text', 'x']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /no av\.safetensors yet; run `nla sft-av/);
});

test('datagen summarize: corpus cut into "DOC:POS" contexts, summarised by an OpenAI-compatible endpoint, key from the named env var', { skip: SKIP_NO_MODEL }, async () => {
  const seen: { auth?: string; user: string }[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (b) => (body += b));
    req.on('end', () => {
      const j = JSON.parse(body) as { messages: { role: string; content: string }[] };
      const user = j.messages.find((m) => m.role === 'user')!.content;
      seen.push({ auth: req.headers.authorization, user });
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ choices: [{ message: { content: `summary of ${user.length} chars` } }] }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  try {
    const corpus = path.join(tmp, 'corpus.txt');
    fs.writeFileSync(corpus, 'Once upon a time there was a little girl named Lily. She liked to play in the park with her red ball.\n\nTom had a big dog. The dog liked to run and jump in the garden all day long.\n');
    const out = path.join(tmp, 'summaries.jsonl');
    const args = ['datagen', 'summarize', '--corpus', corpus, '--model', model(), '--cuts', '2', '--min-tokens', '5', '--out', out, '--endpoint', `http://127.0.0.1:${port}/v1`, '--api-model', 'fake', '--api-key-env', 'NLA_TEST_KEY'];
    const r = await okCli(args, 60_000, { NLA_TEST_KEY: 'secret-123' });
    assert.match(r.stdout, /4 written, 0 already there, 4 items/);
    const rows = fs.readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { id: string; text: string; summary: string });
    assert.equal(rows.length, 4);
    for (const row of rows) {
      assert.match(row.id, /^[01]:\d+$/);
      assert.equal(row.summary, `summary of ${row.text.length} chars`);
    }
    assert.ok(seen.every((s) => s.auth === 'Bearer secret-123'));
    // extract --summaries reads the activation at each context's last token, with its summary.
    const store = path.join(tmp, 'from-summaries');
    const ex = await okCli(['extract', '--model', model(), '--layer', '2', '--summaries', out, '--out', store, '--shares', '0.5,0.5,0,0']);
    assert.match(ex.stdout, /4 activations/);
    assert.equal(JSON.parse(fs.readFileSync(path.join(store, 'manifest.json'), 'utf8')).layer, 2);
    // A rerun skips what is done; a missing key variable is an error naming it.
    const again = await okCli(args, 60_000, { NLA_TEST_KEY: 'secret-123' });
    assert.match(again.stdout, /0 written, 4 already there/);
    const nokey = await runCli(args.map((a) => (a === 'NLA_TEST_KEY' ? 'NLA_TEST_KEY_UNSET' : a)));
    assert.notEqual(nokey.code, 0);
    assert.match(nokey.stderr, /NLA_TEST_KEY_UNSET/);
  } finally {
    server.close();
  }
});

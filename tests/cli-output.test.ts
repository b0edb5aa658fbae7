// Output that arrives whole: every JSON-printing command's stdout, piped to a reader that is
// slower than the command (it pauses after the first chunk, as `| node -e ...` does while it
// starts), parses. Before the CLI flushed before exiting, such a reader got the first 64 KiB.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { okCli } from './cli-helpers.js';
import { modelFile, SKIP_NO_MODEL } from './helpers.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-output-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Piped {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `node <args>` with stdout read by a reader that stops for `pauseMs` after its first chunk. */
function slowRead(args: string[], pauseMs = 1500, timeoutMs = 120_000): Promise<Piped> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? os.tmpdir() } });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => {
      if (out.length === 0) {
        child.stdout.pause();
        setTimeout(() => child.stdout.resume(), pauseMs);
      }
      out.push(b);
    });
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => (child.kill('SIGKILL'), reject(new Error(`${args.join(' ')}: timed out\n${stderr}`))), timeoutMs);
    child.on('close', (code) => (clearTimeout(timer), resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr })));
  });
}

const nla = (args: string[]) => slowRead(['--import', 'tsx', path.join(root, 'src/cli/main.ts'), ...args]);

/** Parse a command's stdout as one JSON value; the message says how much arrived. */
function parsed(r: Piped, what: string): Record<string, unknown> {
  assert.equal(r.code, 0, `${what} exited ${r.code}: ${r.stderr}`);
  try {
    return JSON.parse(r.stdout) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${what}: stdout (${r.stdout.length} bytes) is not whole JSON: ${(e as Error).message}`);
  }
}

const story = 'Once upon a time there was a little girl. ';

test('the flush helper delivers 1 MB to a slow reader on exit 0 and on exit 1; without it the reader gets less', async () => {
  const script = (flush: boolean, code: number) =>
    `import { exitFlushed } from ${JSON.stringify(path.join(root, 'src/cli/flush.ts'))};` +
    `process.stdout.write('y'.repeat(1 << 20));` +
    (flush ? `await exitFlushed(${code});` : `process.exit(${code});`);
  for (const code of [0, 1]) {
    const r = await slowRead(['--import', 'tsx', '--input-type=module', '-e', script(true, code)]);
    assert.equal(r.code, code);
    assert.equal(r.stdout.length, 1 << 20, `exit ${code}: all of it`);
  }
  // The control: the same write followed by a bare process.exit loses the tail (this is what
  // makes the test above able to fail).
  const bare = await slowRead(['--import', 'tsx', '--input-type=module', '-e', script(false, 0)]);
  assert.ok(bare.stdout.length < 1 << 20, `bare exit delivered ${bare.stdout.length} bytes`);
});

test('activations --json: a 600 KB line arrives whole through a slow pipe', { skip: SKIP_NO_MODEL }, async () => {
  const r = await nla(['activations', '--model', modelFile('stories260K.bin'), '--layer', '3', '--text', story.repeat(40), '--json']);
  const j = parsed(r, 'activations --json');
  assert.ok(r.stdout.length > 500_000, `${r.stdout.length} bytes`);
  const rows = j.activations as number[][];
  assert.equal(rows.length, (j.ids as number[]).length);
  assert.ok(rows.every((row) => row.length === 64));
});

test('info --json, eval --json and explain --json (160 KB) arrive whole through a slow pipe', { skip: SKIP_NO_MODEL, timeout: 300_000 }, async () => {
  const info = parsed(await nla(['info', '--json']), 'info --json');
  assert.equal(typeof info.adapter, 'string');
  assert.equal(typeof info.robust, 'boolean');

  // A barely trained NLA: one step of each SFT stage is enough to have every file eval and
  // explain read.
  const M = modelFile('stories260K.bin'), store = path.join(tmp, 'act'), dir = path.join(tmp, 'nla');
  await okCli(['extract', '--model', M, '--layer', '3', '--out', store, '--stories', '12', '--cuts', '2']);
  await okCli(['sft-ar', '--store', store, '--model', M, '--out', dir, '--steps', '1', '--batch-size', '2', '--eval-rows', '2']);
  await okCli(['sft-av', '--store', store, '--model', M, '--out', dir, '--steps', '1', '--batch-size', '2', '--eval-rows', '2', '--max-tokens', '2']);

  const ev = parsed(await nla(['eval', '--nla', dir, '--store', store, '--rows', '2', '--no-sampled', '--json']), 'eval --json');
  assert.equal(ev.rows, 2);
  assert.equal(typeof ev.fve_greedy, 'number');

  const ex = await nla(['explain', '--nla', dir, '--text', story.repeat(24), '--samples', '8', '--json']);
  const x = parsed(ex, 'explain --json');
  assert.ok(ex.stdout.length > 150_000, `${ex.stdout.length} bytes`);
  const tokens = x.tokens as { position: number; explanations: unknown[] }[];
  assert.deepEqual(tokens.map((t) => t.position), [...tokens.keys()]);
  assert.ok(tokens.every((t) => t.explanations.length === 8));
});

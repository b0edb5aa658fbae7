// The one atomic-write helper (src/io/atomic-write.ts): a target is either the old file or the
// complete new one, and no temp file is left behind either way.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AtomicFile, copyFileAtomic, writeFileAtomic } from '../src/io/atomic-write.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-atomic-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('abort keeps the old file; commit replaces it', () => {
  const dir = fs.mkdtempSync(path.join(tmp, 'ac-'));
  const target = path.join(dir, 'f.txt');
  writeFileAtomic(target, [Buffer.from('old')]);
  const f = new AtomicFile(target);
  f.write(Buffer.from('half of the new'));
  f.abort();
  assert.equal(fs.readFileSync(target, 'utf8'), 'old');
  const g = new AtomicFile(target);
  g.write(Buffer.from('new '));
  g.write(Buffer.from('content'));
  g.commit();
  assert.equal(fs.readFileSync(target, 'utf8'), 'new content');
  assert.throws(() => g.write(Buffer.from('x')), /after commit or abort/);
  assert.deepEqual(fs.readdirSync(dir), ['f.txt']);
});

test('a failing chunk source leaves the target untouched', () => {
  const dir = fs.mkdtempSync(path.join(tmp, 'fail-'));
  const target = path.join(dir, 'f.bin');
  writeFileAtomic(target, [Buffer.from('old')]);
  const chunks = function* () {
    yield Buffer.from('partial');
    throw new Error('source failed');
  };
  assert.throws(() => writeFileAtomic(target, chunks()), /source failed/);
  assert.equal(fs.readFileSync(target, 'utf8'), 'old');
  assert.deepEqual(fs.readdirSync(dir), ['f.bin']);
});

test('copyFileAtomic copies a multi-chunk file byte for byte, and an empty one', () => {
  const dir = fs.mkdtempSync(path.join(tmp, 'copy-'));
  const src = path.join(dir, 'src.bin');
  const data = Uint8Array.from({ length: (5 << 19) + 123 }, (_, i) => (i * 31 + (i >> 11)) & 255); // 2.5 MiB + 123
  fs.writeFileSync(src, data);
  copyFileAtomic(src, path.join(dir, 'dst.bin'));
  assert.deepEqual(new Uint8Array(fs.readFileSync(path.join(dir, 'dst.bin'))), data);
  fs.writeFileSync(path.join(dir, 'empty'), '');
  copyFileAtomic(path.join(dir, 'empty'), path.join(dir, 'empty-copy'));
  assert.equal(fs.readFileSync(path.join(dir, 'empty-copy')).length, 0);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['dst.bin', 'empty', 'empty-copy', 'src.bin']);
});

test('a temp file left by a killed writer (its pid gone) is removed by the next write; a live writer\'s is kept', async () => {
  const dir = fs.mkdtempSync(path.join(tmp, 'stale-'));
  const target = path.join(dir, 'run.ckpt');
  // A pid that surely ran and is gone: a child that has exited.
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => child.on('exit', r));
  const stale = path.join(dir, `.run.ckpt.tmp-${child.pid}-abc`);
  const live = path.join(dir, `.run.ckpt.tmp-${process.ppid}-def`); // our parent runs
  const other = path.join(dir, `.other.ckpt.tmp-${child.pid}-ghi`); // another target's: not ours to judge
  for (const f of [stale, live, other]) fs.writeFileSync(f, 'partial');
  writeFileAtomic(target, [Buffer.from('whole')]);
  assert.deepEqual(fs.readdirSync(dir).sort(), [path.basename(live), path.basename(other), 'run.ckpt'].sort());
  assert.equal(fs.readFileSync(target, 'utf8'), 'whole');
});

test('a temp file of a writer that is now a zombie (dead, never reaped) is removed too', async () => {
  const dir = fs.mkdtempSync(path.join(tmp, 'zombie-'));
  const target = path.join(dir, 'run.ckpt');
  // The background `sleep 1` exits after its parent has exec'd into `sleep 20`, which never reaps
  // it: a zombie until the end. (A child that exits at once can be reaped by the shell itself
  // before the exec, on a loaded machine: then its pid is simply gone.)
  const { spawn } = await import('node:child_process');
  const sh = spawn('sh', ['-c', 'sleep 1 & echo $!; exec sleep 20'], { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const pid = Number(await new Promise<string>((r) => sh.stdout.once('data', (b: Buffer) => r(b.toString()))));
    const state = () => {
      let s: string;
      try {
        s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      } catch {
        return 'gone (reaped)';
      }
      return s[s.lastIndexOf(')') + 2];
    };
    for (let i = 0; i < 1000 && state() !== 'Z'; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(state(), 'Z', `pid ${pid} is a zombie`);
    assert.doesNotThrow(() => process.kill(pid, 0), 'a zombie answers kill(pid, 0)');
    fs.writeFileSync(path.join(dir, `.run.ckpt.tmp-${pid}-abc`), 'partial');
    writeFileAtomic(target, [Buffer.from('whole')]);
    assert.deepEqual(fs.readdirSync(dir), ['run.ckpt']);
  } finally {
    sh.kill('SIGKILL');
  }
});

// Killed runs resume. `nla sft-ar`, `nla sft-av` and `nla rl` are killed with SIGKILL several
// times each: twice the moment a checkpoint's temp file appears (the writing process, so the
// write is cut off), then at random delays (seeded) the `nla` process only, as `kill -9 <pid>`
// would (its relaunched child must die with it); each restart resumes from the checkpoint on disk. After every kill the checkpoint
// on disk is whole (it loads) and never goes back; at the end no temp file is left, every step
// has exactly one metrics line, and the weights equal those of an uninterrupted run.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '../src/io/safetensors.js';
import { loadCheckpoint } from '../src/nn/checkpoint.js';
import { SeededRng } from '../src/util/rng.js';
import { okCli } from './cli-helpers.js';
import { modelFile, SKIP_NO_MODEL } from './helpers.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-kill-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Running (a zombie, dead but not yet reaped by init, counts as gone). */
const alive = (pid: number) => {
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2] !== 'Z';
  } catch {
    return false;
  }
};
const describe = (pid: number) => {
  try {
    return `${fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').slice(0, 120)} [${fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2]}]`;
  } catch {
    return 'gone';
  }
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Run `nla args` and SIGKILL it when `when` calls kill: its top process only (`kill -9 <pid>`;
 * the relaunched child must then exit by itself), or with `all` the child first (the process
 * that writes, so a write is cut off where it is). Waits until the children are gone too.
 * Resolves 'killed', or 'done' if it exited by itself first (code 0 required).
 */
async function runAndKill(args: string[], when: (kill: (all?: boolean) => void) => void): Promise<'killed' | 'done'> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src/cli/main.ts'), ...args], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  let killed = false;
  const kill = (all = false) => {
    if (killed || child.exitCode !== null) return;
    killed = true;
    const kids = fs.readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    if (all) for (const k of kids) process.kill(k, 'SIGKILL');
    child.kill('SIGKILL');
    // The relaunched child dies at its next event-loop turn; while kernels compile on the
    // first step the loop can be busy for seconds (more on a loaded machine).
    void Promise.all(kids.map(async (k) => {
      for (let i = 0; i < 1800 && alive(k); i++) await sleep(50);
      assert.ok(!alive(k), `child ${k} of the killed nla outlived it by 90 s: ${describe(k)}`);
    })).then(() => (kidsGone = true));
  };
  let kidsGone = false;
  when(kill);
  const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  if (!killed) {
    assert.equal(code, 0, `nla ${args.join(' ')} failed:\n${stderr}`);
    return 'done';
  }
  for (let i = 0; i < 1850 && !kidsGone; i++) await sleep(50);
  assert.ok(kidsGone, 'the killed command\'s children exited');
  return 'killed';
}

/** Kill the writer the moment a temp file of `ckpt` appears (a checkpoint being written). */
function midWrite(ckpt: string) {
  return (kill: (all?: boolean) => void) => {
    const dir = path.dirname(ckpt), prefix = `.${path.basename(ckpt)}.tmp-`;
    fs.mkdirSync(dir, { recursive: true });
    const w = fs.watch(dir, (_e, name) => {
      if (name?.startsWith(prefix)) (kill(true), w.close());
    });
    setTimeout(() => w.close(), 60_000);
  };
}

const atDelay = (ms: number) => (kill: () => void) => void setTimeout(kill, ms);

/** Kill `args` (+ --resume when a checkpoint exists) repeatedly, then let it finish. */
async function killAndResume(stage: string, args: string[], ckpt: string, rng: SeededRng): Promise<{ kills: number; midWrite: number }> {
  let lastStep = 0, kills = 0, mid = 0;
  for (let attempt = 0; attempt < 4; attempt++) {
    const resume = fs.existsSync(ckpt) ? ['--resume'] : [];
    // The first two kills cut a checkpoint write (the one being written at that moment).
    const when = attempt < 2 ? midWrite(ckpt) : atDelay(4000 + Math.floor(rng.next() * 6000));
    const r = await runAndKill([...args, ...resume], when);
    if (r === 'done') return { kills, midWrite: mid };
    kills++;
    const dir = path.dirname(ckpt);
    if (fs.readdirSync(dir).some((n) => n.startsWith(`.${path.basename(ckpt)}.tmp-`))) mid++;
    if (fs.existsSync(ckpt)) {
      const step = loadCheckpoint(ckpt).step; // whole: it parses
      assert.ok(step >= lastStep, `${stage}: the checkpoint went back from step ${lastStep} to ${step}`);
      lastStep = step;
    }
  }
  await okCli([...args, ...(fs.existsSync(ckpt) ? ['--resume'] : [])], 120_000);
  return { kills, midWrite: mid };
}

function sameWeights(a: string, b: string): void {
  const x = readSafetensors(a), y = readSafetensors(b);
  assert.deepEqual([...x.keys()].sort(), [...y.keys()].sort());
  let worst = 0;
  for (const [k, t] of x) {
    const u = y.get(k)!.data;
    for (let i = 0; i < t.data.length; i++) worst = Math.max(worst, Math.abs(t.data[i] - u[i]));
  }
  assert.equal(worst, 0, `${path.basename(a)}: the resumed weights differ from the uninterrupted run by up to ${worst}`);
}

function checkDir(dir: string, stage: string, steps: number): void {
  const temps = fs.readdirSync(dir, { recursive: true }).map(String).filter((n) => /\.tmp-/.test(n));
  assert.deepEqual(temps, [], `${stage}: temp files left in ${dir}`);
  const lines = fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { stage: string; step: number });
  assert.deepEqual(lines.filter((m) => m.stage === stage).map((m) => m.step), [...Array(steps).keys()], `${stage}: one metrics line per step`);
}

test('sft-ar, sft-av and rl killed with SIGKILL (mid-checkpoint and at random) resume to the weights of an uninterrupted run', { skip: SKIP_NO_MODEL, timeout: 900_000 }, async () => {
  const M = modelFile('stories260K.bin'), store = path.join(tmp, 'act');
  const rng = new SeededRng(Number(process.env.NLA_KILL_SEED ?? 14));
  await okCli(['extract', '--model', M, '--layer', '3', '--out', store, '--stories', '12', '--cuts', '2']);
  const sft = (stage: string, out: string, steps: number) => [
    stage, '--store', store, '--model', M, '--out', out, '--steps', String(steps), '--batch-size', '2', '--eval-rows', '0', '--log-every', '1', '--checkpoint-every', '1',
    ...(stage === 'sft-av' ? ['--max-tokens', '8'] : []),
  ];
  const report: string[] = [];
  let midWrites = 0;
  for (const [stage, steps] of [['sft-ar', 12], ['sft-av', 12]] as const) {
    const clean = path.join(tmp, `${stage}-clean`), killed = path.join(tmp, `${stage}-killed`);
    await okCli(sft(stage, clean, steps), 120_000);
    const r = await killAndResume(stage, sft(stage, killed, steps), path.join(killed, 'checkpoints', `${stage}.ckpt`), rng);
    report.push(`${stage}: ${r.kills} kills, ${r.midWrite} mid-write`);
    midWrites += r.midWrite;
    const file = stage === 'sft-ar' ? 'ar.safetensors' : 'av.safetensors';
    sameWeights(path.join(clean, file), path.join(killed, file));
    checkDir(killed, stage, steps);
  }
  // RL starts from a complete NLA: the clean AR beside the clean AV, copied for both runs.
  const base = path.join(tmp, 'sft-av-clean');
  fs.copyFileSync(path.join(tmp, 'sft-ar-clean', 'ar.safetensors'), path.join(base, 'ar.safetensors'));
  const meta = JSON.parse(fs.readFileSync(path.join(base, 'nla.json'), 'utf8'));
  meta.training = { ...JSON.parse(fs.readFileSync(path.join(tmp, 'sft-ar-clean', 'nla.json'), 'utf8')).training, ...meta.training };
  fs.writeFileSync(path.join(base, 'nla.json'), JSON.stringify(meta));
  const rlDirs = ['rl-clean', 'rl-killed'].map((n) => path.join(tmp, n));
  for (const d of rlDirs) {
    fs.mkdirSync(d);
    for (const f of ['ar.safetensors', 'av.safetensors', 'nla.json', ...fs.readdirSync(base).filter((f) => f.startsWith('tokenizer'))]) fs.copyFileSync(path.join(base, f), path.join(d, f));
  }
  const rl = (dir: string) => ['rl', '--nla', dir, '--store', store, '--steps', '6', '--activations-per-step', '2', '--group-size', '2', '--checkpoint-every', '1', '--metrics', path.join(dir, 'metrics.jsonl')];
  await okCli(rl(rlDirs[0]), 180_000);
  const r = await killAndResume('rl', rl(rlDirs[1]), path.join(rlDirs[1], 'checkpoints', 'rl.ckpt'), rng);
  report.push(`rl: ${r.kills} kills, ${r.midWrite} mid-write`);
  midWrites += r.midWrite;
  for (const f of ['av.safetensors', 'ar.safetensors']) sameWeights(path.join(rlDirs[0], f), path.join(rlDirs[1], f));
  checkDir(rlDirs[1], 'rl', 6);
  console.log(`# kills: ${report.join('; ')}`);
  assert.ok(midWrites >= 1, `no kill landed during a checkpoint write (${report.join('; ')})`);
});

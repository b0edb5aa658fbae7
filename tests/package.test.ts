// The package as another project gets it: `npm pack` (whose `prepare` script builds dist/, as
// a git install does, so dist/ is never committed) -> install the tarball into a temporary
// project -> `npx nla` runs and `import { ... } from 'nla'` works with type declarations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

test('npm pack (prepare builds) -> install -> npx nla --help, nla info, import { Tensor, ... } from "nla"', { timeout: 600_000 }, () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-pack-'));
  try {
    // No dist/ beforehand: the tarball's build must come from `prepare`.
    fs.rmSync(path.join(root, 'dist'), { recursive: true, force: true });
    const out = execFileSync('npm', ['pack', '--silent', '--pack-destination', tmp], { cwd: root, encoding: 'utf8' }).trim().split('\n').pop()!;
    const tarball = path.join(tmp, out);
    const proj = path.join(tmp, 'user');
    fs.mkdirSync(proj);
    fs.writeFileSync(path.join(proj, 'package.json'), JSON.stringify({ name: 'user', type: 'module', private: true }));
    // Dependencies come from the local npm cache (they were installed for this repo already).
    execFileSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', tarball], { cwd: proj, stdio: 'pipe' });
    assert.ok(fs.existsSync(path.join(proj, 'node_modules', 'nla', 'dist', 'src', 'index.d.ts')), 'type declarations are shipped');

    const env = { ...process.env, NLA_DEBUG: '' };
    const help = spawnSync('npx', ['--no-install', 'nla', '--help'], { cwd: proj, encoding: 'utf8', env });
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /^Usage: nla /m);
    for (const cmd of ['demo', 'extract', 'sft-av', 'rl', 'eval', 'explain']) assert.match(help.stdout, new RegExp(`^  ${cmd}\\b`, 'm'), `--help lists ${cmd}`);
    // The installed bin relaunches itself to filter Dawn's native warnings (src/cli/quiet-dawn.ts).
    const info = spawnSync('npx', ['--no-install', 'nla', 'info'], { cwd: proj, encoding: 'utf8', env });
    assert.equal(info.status, 0, info.stderr);
    assert.match(info.stdout, /^adapter:/m);
    assert.doesNotMatch(info.stderr, /artificially reduced/);

    fs.writeFileSync(
      path.join(proj, 'main.mjs'),
      `import { initGpu, Tensor, matmul, DEFAULT_PROMPTS, loadNLA, checkOp } from 'nla';
       await initGpu();
       const y = matmul(Tensor.from([1, 2, 3, 4], [2, 2]), Tensor.from([1, 0, 0, 1], [2, 2]));
       console.log(JSON.stringify({ y: Array.from(await y.data()), prompts: typeof DEFAULT_PROMPTS.ar, loadNLA: typeof loadNLA, checkOp: typeof checkOp }));
       process.exit(0);`,
    );
    const res = JSON.parse(execFileSync('node', ['main.mjs'], { cwd: proj, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n').pop()!);
    assert.deepEqual(res, { y: [1, 2, 3, 4], prompts: 'string', loadNLA: 'function', checkOp: 'function' });
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

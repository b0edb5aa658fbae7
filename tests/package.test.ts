// The package builds to JS with type declarations and `import { ... } from 'nla'` works from
// another project: pack the tarball, install it into a temporary project, import and run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

test('npm pack -> install into a fresh project -> import { Tensor, ... } from "nla" runs a GPU op', { timeout: 600_000 }, () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-pack-'));
  execFileSync('npm', ['run', '-s', 'build'], { cwd: root, stdio: 'pipe' });
  const out = execFileSync('npm', ['pack', '--silent', '--pack-destination', tmp], { cwd: root, encoding: 'utf8' }).trim().split('\n').pop()!;
  const tarball = path.join(tmp, out);
  const proj = path.join(tmp, 'user');
  fs.mkdirSync(proj);
  fs.writeFileSync(path.join(proj, 'package.json'), JSON.stringify({ name: 'user', type: 'module', private: true }));
  // Dependencies come from the local npm cache (they were installed for this repo already).
  execFileSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', tarball], { cwd: proj, stdio: 'pipe' });
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
  assert.ok(fs.existsSync(path.join(proj, 'node_modules', 'nla', 'dist', 'src', 'index.d.ts')), 'type declarations are shipped');
});

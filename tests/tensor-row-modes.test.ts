// The row kernels (norms, softmax, cross-entropy) have two layouts (RowMode in
// src/kernels/softmax.ts); the adapter and the row width pick one, so the other would go
// untested here. Re-run their test files with each mode forced.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

const FILES = ['tests/tensor-norm.test.ts', 'tests/tensor-softmax.test.ts', 'tests/tensor-loss.test.ts'];

for (const mode of ['wg', 'thread']) {
  test(`norm, softmax and cross-entropy kernels pass their tests with NLA_ROW_MODE=${mode}`, { timeout: 300_000 }, () => {
    // Without NODE_TEST_CONTEXT the child runner prints plain TAP instead of talking to this one.
    const env: NodeJS.ProcessEnv = { ...process.env, NLA_ROW_MODE: mode };
    delete env.NODE_TEST_CONTEXT;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=tap', ...FILES], { env, encoding: 'utf8' });
    const fails = (r.stdout.match(/^not ok .*/gm) ?? []).join('\n');
    assert.equal(r.status, 0, `exit ${r.status}\n${fails}\n${r.stderr.slice(-2000)}`);
    assert.match(r.stdout, /^# pass [1-9]/m);
    assert.match(r.stdout, /^# fail 0/m);
  });
}

// The metrics file a resumed run appends to (Metrics.open in src/cli/options.ts): the stage's
// lines from the checkpoint's step on are dropped (they are redone), other stages' lines and
// foreign lines stay, and a last line cut off by a killed run (no newline) is dropped.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Metrics } from '../src/cli/options.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-metrics-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('resume keeps the steps before the checkpoint and drops a line cut off mid-write', () => {
  const file = path.join(tmp, 'metrics.jsonl');
  const line = (stage: string, step: number) => JSON.stringify({ stage, step, loss: step / 10 });
  const before = [line('extract', 0), ...[0, 1, 2, 3, 4].map((s) => line('sft-ar', s)), line('sft-ar-checkpoint', 3), 'a note someone added', line('sft-av', 0)];
  fs.writeFileSync(file, before.join('\n') + '\n' + line('sft-ar', 5).slice(0, 17));
  const m = Metrics.open(file, 'sft-ar', 3);
  m.write('sft-ar', { step: 3, loss: 0.3 });
  const after = fs.readFileSync(file, 'utf8');
  assert.ok(after.endsWith('\n'));
  assert.deepEqual(after.trim().split('\n'), [line('extract', 0), ...[0, 1, 2].map((s) => line('sft-ar', s)), 'a note someone added', line('sft-av', 0), line('sft-ar', 3)]);
});

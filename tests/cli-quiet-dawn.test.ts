// Dawn's Vulkan backend prints "maxDynamic...BuffersPerPipelineLayout artificially reduced"
// from native code at adapter discovery; the CLI relaunches itself with stderr piped and drops
// exactly those lines (src/cli/quiet-dawn.ts). Here: a GPU command's stderr is clean, its exit
// code survives the relaunch, and the filter passes everything else through unchanged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DawnNoiseFilter } from '../src/cli/quiet-dawn.js';
import { okCli, runCli } from './cli-helpers.js';

const U = 'Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.\n';
const S = 'Warning: maxDynamicStorageBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.\n';

test('nla info: no Dawn limit warnings on stderr', async () => {
  const r = await okCli(['info']);
  assert.match(r.stdout, /^adapter:/m);
  assert.doesNotMatch(r.stderr, /artificially reduced/, r.stderr);
});

test('the relaunched command keeps its exit code and its own errors', async () => {
  const r = await runCli(['generate', '--model', 'no-such-model.bin']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no-such-model\.bin.*not found/);
  assert.doesNotMatch(r.stderr, /artificially reduced/);
});

test('DawnNoiseFilter drops only the two warnings, however the text is chunked', () => {
  const text = U + S + 'nla: real message\nWarning: something else\n' + U + '\rstep 1/10\rstep 2/10\n' + S;
  const want = 'nla: real message\nWarning: something else\n\rstep 1/10\rstep 2/10\n';
  for (const size of [1, 3, 7, 64, text.length]) {
    const f = new DawnNoiseFilter();
    let out = '';
    for (let i = 0; i < text.length; i += size) out += f.push(text.slice(i, i + size));
    assert.equal(out + f.end(), want, `chunks of ${size}`);
  }
});

test('DawnNoiseFilter passes a progress redraw on at once and holds only a possible warning', () => {
  const f = new DawnNoiseFilter();
  assert.equal(f.push('\rtrain [###.....] 3/8'), '\rtrain [###.....] 3/8');
  assert.equal(f.push('\n'), '\n');
  assert.equal(f.push('Warning: maxDyn'), '');
  assert.equal(f.push('amicSomethingNew unfinished'), '');
  assert.equal(f.end(), 'Warning: maxDynamicSomethingNew unfinished');
  assert.equal(f.push('Wall\n'), 'Wall\n');
});

// Peak host memory of saving an NLA: streamed (NLA.save: one parameter read back at a time)
// against the whole-host-copy writer it replaced (writeSafetensors of Weights.toHost()), in one
// process, in alternating order. Before each save the kernel's resident-memory high-water mark
// is reset (/proc/self/clear_refs, Linux), so VmHWM afterwards is that save's own peak; both
// outputs are compared byte for byte. Prints JSON lines (MiB, seconds):
//   node --import tsx scripts/nla-save-rss.ts NLA_DIR OUT_DIR [--rounds 1]
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeSafetensors } from '../src/io/safetensors.js';
import { loadNLA } from '../src/nla/nla.js';

const [dir, out] = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && !all[i - 1]?.startsWith('--'));
if (!dir || !out) throw new Error('usage: node --import tsx scripts/nla-save-rss.ts NLA_DIR OUT_DIR [--rounds N]');
const ri = process.argv.indexOf('--rounds');
const rounds = ri < 0 ? 1 : Number(process.argv[ri + 1]);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a positive integer, got ${process.argv[ri + 1]}`);

const status = (field: string): number => {
  const m = fs.readFileSync('/proc/self/status', 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
  if (!m) throw new Error(`/proc/self/status: no ${field}`);
  return Math.round(Number(m[1]) / 1024);
};
const resetPeak = () => fs.writeFileSync('/proc/self/clear_refs', '5');

const t0 = performance.now();
const nla = await loadNLA(dir);
console.log(JSON.stringify({ event: 'loaded', seconds: +((performance.now() - t0) / 1000).toFixed(1), rssMiB: status('VmRSS') }));
const files = ['av.safetensors', 'ar.safetensors'];
const ways: Record<string, (to: string) => Promise<void>> = {
  streamed: (to) => nla.save(to),
  hostCopy: async (to) => {
    fs.mkdirSync(to, { recursive: true });
    writeSafetensors(path.join(to, files[0]), Object.fromEntries(await nla.av.model.w.toHost()));
    writeSafetensors(path.join(to, files[1]), Object.fromEntries(await nla.ar.model.w.toHost()));
  },
};
for (let r = 0; r < rounds; r++) {
  for (const way of r % 2 === 0 ? ['streamed', 'hostCopy'] : ['hostCopy', 'streamed']) {
    global.gc?.();
    resetPeak();
    const before = status('VmRSS'), t = performance.now();
    await ways[way](path.join(out, way));
    const peak = status('VmHWM');
    console.log(JSON.stringify({ event: 'save', round: r, way, seconds: +((performance.now() - t) / 1000).toFixed(1), rssBeforeMiB: before, peakMiB: peak, aboveMiB: peak - before }));
  }
}
for (const f of files) {
  // cmp streams both files (reading them whole here would add their size to this process).
  const same = spawnSync('cmp', ['-s', path.join(out, 'streamed', f), path.join(out, 'hostCopy', f)]).status === 0;
  console.log(JSON.stringify({ event: 'compare', file: f, identical: same, bytes: fs.statSync(path.join(out, 'streamed', f)).size }));
  if (!same) process.exitCode = 1;
}
nla.dispose();

// Does the AV read h or remember its rows? Its teacher-forced loss on the summaries of its own
// training rows (split av) against the store's held-out rows (split eval), per source (samples
// of M, known-answer stories): per summary token, and on the first four tokens (the opening
// quote of the word read). A large gap on one source says the warm start memorised those rows
// (docs/experiments.md, "More cuts of M's text, on dev").
//   node --import tsx scripts/av-fit-gap.ts --nla DIR --store DIR [--rows 480]
import { loadNLA } from '../src/nla/nla.js';
import { ActivationStore, rowSource } from '../src/nla/store.js';
import { rowsOf } from '../src/nla/sft.js';
import * as T from '../src/tensor/index.js';
import { argReader } from './args.js';

const arg = argReader('av-fit-gap');
const nla = await loadNLA(arg('nla'));
const store = ActivationStore.open(arg('store'));
const rows = Number(arg('rows', '480'));
const all = store.readAll();
const d = store.manifest.d;
const FIRST = 4;

const pick = (split: string, source: string) =>
  all.meta.map((m, i) => (m.split === split && rowSource(m) === source && m.summary ? i : -1)).filter((i) => i >= 0).slice(0, rows);

async function loss(idx: number[]): Promise<{ rows: number; per_token: number; first4: number }> {
  let total = 0, count = 0, first = 0, firstCount = 0;
  for (let s = 0; s < idx.length; s += 32) {
    const b = idx.slice(s, s + 32);
    const targets = b.map((i) => nla.av.targetIds(all.meta[i].summary!));
    const { logp, mask } = T.noGrad(() => nla.av.completionLogProbs(rowsOf(all.h, d, b), targets));
    const lp = (await logp.data()) as Float32Array, m = (await mask.data()) as Float32Array;
    const width = mask.shape[1]!;
    for (let r = 0; r < b.length; r++) {
      let k = 0;
      for (let t = 0; t < width; t++) {
        if (!m[r * width + t]) continue;
        total -= lp[r * width + t]!;
        count++;
        if (k++ < FIRST) { first -= lp[r * width + t]!; firstCount++; }
      }
    }
    logp.dispose();
    mask.dispose();
  }
  return { rows: idx.length, per_token: total / Math.max(count, 1), first4: first / Math.max(firstCount, 1) };
}

for (const source of ['model', 'known-answer']) {
  const train = pick('av', source), heldOut = pick('eval', source);
  if (!train.length || !heldOut.length) throw new Error(`av-fit-gap: the store has no ${source} rows with summaries in split ${train.length ? 'eval' : 'av'}`);
  console.log(JSON.stringify({ source, train: await loss(train), held_out: await loss(heldOut) }));
}
process.exit(0);

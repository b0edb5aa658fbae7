// How much of h on M's own text does a lookup table explain, by what it is keyed on? Mean
// normalised h per key over a store's training rows of M's text (splits av, ar, rl), scored as
// FVE on its held-out rows of M's text (split eval), each key backing off to the next and then to
// the global mean: the token, the (previous, current) pair, the word read (the summary's opening
// quotation), each with and without the row's position in six bands (1-9, 10-29, 30-59, 60-99,
// 100-149, 150+).
//   node --import tsx scripts/lookup-keys.ts --store DIR
import { ActivationStore, rowSource } from '../src/nla/store.js';
import { quoteSpan } from '../src/nla/fact-weights.js';
import { fve, meanRow, mseNormalized, normalizeRows, varianceNormalized } from '../src/nla/fve.js';
import { argReader } from './args.js';
const store = ActivationStore.open(argReader('lookup-keys')('store'));
const all = store.readAll(); const d = store.manifest.d;
const M = all.meta;
const idx = (f: (i: number) => boolean) => M.map((_, i) => (f(i) ? i : -1)).filter((i) => i >= 0);
const tr = idx((i) => ['av', 'ar', 'rl'].includes(M[i]!.split ?? '') && rowSource(M[i]!) === 'model');
const te = idx((i) => M[i]!.split === 'eval' && rowSource(M[i]!) === 'model');
const q = (i: number) => { const e = M[i]!.summary ?? ''; const s = quoteSpan(e); return s ? e.slice(s.start, s.end) : ''; };
const pb = (p: number) => (p < 10 ? 0 : p < 30 ? 1 : p < 60 ? 2 : p < 100 ? 3 : p < 150 ? 4 : 5);
const sub = (rows: number[]) => { const h = new Float64Array(rows.length * d); rows.forEach((r, k) => { for (let j = 0; j < d; j++) h[k * d + j] = all.h[r * d + j]!; }); return h; };
const htr = sub(tr), hte = sub(te); const vtr = normalizeRows(htr, d);
const variance = varianceNormalized(htr, d); const glob = meanRow(vtr, d);
function run(name: string, keys: ((i: number) => string)[]) {
  // backoff chain of keys
  const tables = keys.map((key) => { const s = new Map<string, Float64Array>(), c = new Map<string, number>();
    tr.forEach((r, k) => { const kk = key(r); let a = s.get(kk); if (!a) s.set(kk, (a = new Float64Array(d))); for (let j = 0; j < d; j++) a[j] += vtr[k * d + j]!; c.set(kk, (c.get(kk) ?? 0) + 1); });
    for (const [kk, a] of s) { const n = c.get(kk)!; for (let j = 0; j < d; j++) a[j] /= n; } return s; });
  const pred = new Float64Array(te.length * d);
  te.forEach((r, k) => { let p = glob; for (let t = 0; t < keys.length; t++) { const v = tables[t]!.get(keys[t]!(r)); if (v) { p = v; break; } } pred.set(p, k * d); });
  const per = mseNormalized(pred, hte, d); let m = 0; for (const e of per) m += e; m /= per.length;
  console.log(name.padEnd(30), fve(m, variance).toFixed(3));
}
console.log('train', tr.length, 'test', te.length);
const T = (i: number) => `${M[i]!.token}`, P = (i: number) => `${M[i]!.prevToken}`, B = (i: number) => `${pb(M[i]!.pos)}`;
run('token', [T]);
run('token+pos', [(i) => T(i) + '|' + B(i), T]);
run('bigram', [(i) => P(i) + '|' + T(i), T]);
run('bigram+pos', [(i) => P(i) + '|' + T(i) + '|' + B(i), (i) => P(i) + '|' + T(i), T]);
run('word', [q, T]);
run('word+pos', [(i) => q(i) + '|' + B(i), q, T]);
run('word+token', [(i) => q(i) + '|' + T(i), T]);

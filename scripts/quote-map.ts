// Would the AV's own most likely quote be right more often than its greedy one? For held-out rows
// of M's text (split eval, source model), the greedy explanation's opening quotation against the
// true one (the row's summary's): the AV's teacher-forced log-probability of each as the
// explanation's opening `"..."` (nothing of h through the AR). Where greedy is wrong and the true
// quote is more likely under the AV, a decoder that found the AV's most likely quotation (a beam
// search) would turn the row right; the count bounds what such a decoder could gain. And whether
// the AV's confidence in its quotation tells its right rows from its wrong ones.
//   node --import tsx scripts/quote-map.ts --nla DIR --store DIR [--rows 600]
import { loadNLA } from '../src/nla/nla.js';
import { ActivationStore, rowSource } from '../src/nla/store.js';
import { rowsOf } from '../src/nla/sft.js';
import * as T from '../src/tensor/index.js';
import { argReader } from './args.js';
import { confidenceAuc } from '../src/nla/quote-confidence.js';

const arg = argReader('quote-map');
await T.initGpu();
const nla = await loadNLA(arg('nla'));
const av = nla.av, d = nla.ar.d;
const store = ActivationStore.open(arg('store'), { layer: nla.meta.layer, d });
const all = store.readAll();
const rows = all.meta.map((m, i) => (m.split === 'eval' && m.summary && rowSource(m) === 'model' ? i : -1)).filter((i) => i >= 0).slice(0, Number(arg('rows', '600')));
const quotation = (t: string | undefined) => (t ? /^"(.*?)"\./s.exec(t)?.[1] : undefined);
const h = rowsOf(all.h, d, rows);
const truth = rows.map((i) => quotation(all.meta[i]!.summary)!);
const greedy = (await nla.explainActivations(h, { samples: 1, temperature: 0 })).map((c) => quotation(c[0]!.text));

// log P of the ids of `"Q"` (through the token holding the closing mark) after the injected prompt.
async function quoteLogP(hh: Float32Array, quotes: string[]): Promise<number[]> {
  const ids = quotes.map((q) => {
    const t = av.targetIds(`"${q}". x`);
    const { starts } = av.decodeWithStarts(t);
    const L = starts.filter((s) => s <= q.length + 1).length; // tokens starting at or before the closing mark
    return t.slice(0, L);
  });
  const out: number[] = [];
  for (let b0 = 0; b0 < ids.length; b0 += 64) {
    const part = ids.slice(b0, b0 + 64);
    const lp = T.noGrad(() => av.completionLogProbs(hh.subarray(b0 * d, (b0 + part.length) * d), part).logp);
    const a = (await lp.data()) as Float32Array;
    const Tn = lp.shape[1]!; // logp[r, t] scores completion token t of row r
    lp.dispose();
    part.forEach((c, r) => { let s = 0; for (let t = 0; t < c.length; t++) s += a[r * Tn + t]!; out.push(s); });
  }
  return out;
}
const lpTrue = await quoteLogP(h, truth);
const lpGreedy = await quoteLogP(h, greedy.map((g) => g ?? ''));
let right = 0, wrong = 0, fixable = 0, unparsed = 0;
const pieces = (q: string) => Math.min(3, nla.tok.encode(q).length);
const by: Record<number, [number, number, number]> = {};
truth.forEach((t, r) => {
  const p = pieces(t), b = (by[p] ??= [0, 0, 0]);
  b[2]++;
  if (greedy[r] === t) { right++; b[0]++; return; }
  if (greedy[r] === undefined) unparsed++;
  wrong++;
  if (lpTrue[r]! > lpGreedy[r]!) { fixable++; b[1]++; }
});
const n = truth.length;
// Does the AV know when it misreads? The AUC of its log-probability of its own quotation, right
// rows against wrong ones (1: every right quote more probable than every wrong one; 0.5: blind),
// and the share of rows it gets right above and below the median.
const isRight = truth.map((t, r) => greedy[r] === t);
const auc = confidenceAuc(lpGreedy, isRight);
const median = [...lpGreedy].sort((a, b) => a - b)[Math.floor(n / 2)]!;
const half = (above: boolean) => { const rs = isRight.filter((_, r) => (lpGreedy[r]! >= median) === above); return rs.filter(Boolean).length / Math.max(1, rs.length); };
console.log(JSON.stringify({ rows: n, greedy_exact: right / n, wrong, unparsed, true_more_likely_than_greedy: fixable, map_bound: (right + fixable) / n,
  confidence_auc: +auc.toFixed(3), exact_above_median_logp: +half(true).toFixed(3), exact_below_median_logp: +half(false).toFixed(3),
  by_pieces: Object.fromEntries(Object.entries(by).map(([p, [a, f, c]]) => [p === '3' ? '3+' : p, { rows: c, greedy: +(a / c).toFixed(3), bound: +((a + f) / c).toFixed(3) }])) }));
nla.dispose();

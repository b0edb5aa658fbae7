// Does reranking by the AR fix the quotes? For held-out rows of a store (split eval; M's text and
// the demo's stories apart), greedy explanations against the AR's best of k samples (T = 1):
// quote exact (the opening quotation equals the row's summary's), FVE, and how often any of the
// k samples had the exact quote (what a perfect reranker could reach); and each split by whether
// the row's word occurs among the AV warm start's training quotations, and by how many times.
//   node --import tsx scripts/best-of-quotes.ts --nla DIR --store DIR [--rows 600] [--k 4,8,16] [--kinds model,stories]
import { loadNLA } from '../src/nla/nla.js';
import { ActivationStore, rowSource } from '../src/nla/store.js';
import { rowsOf } from '../src/nla/sft.js';
import * as T from '../src/tensor/index.js';
import { argReader } from './args.js';

const arg = argReader('best-of-quotes');
await T.initGpu();
const nla = await loadNLA(arg('nla'));
const d = nla.ar.d;
const store = ActivationStore.open(arg('store'), { layer: nla.meta.layer, d });
const all = store.readAll();
const N = Number(arg('rows', '600'));
const quotation = (t: string | undefined) => (t ? /^"(.*?)"\./s.exec(t)?.[1] : undefined);
const out: Record<string, unknown> = { nla: arg('nla'), store: store.dir };
// The words the AV warm start was trained on (its split's opening quotations): a held-out row whose
// word is among them is "seen".
const taught = new Map<string | undefined, number>();
for (const m of all.meta) if (m.split === 'av' && m.summary) taught.set(quotation(m.summary), (taught.get(quotation(m.summary)) ?? 0) + 1);
const countBin = (c: number) => (c === 0 ? '0' : c === 1 ? '1' : c <= 3 ? '2-3' : c <= 10 ? '4-10' : c <= 50 ? '11-50' : '51+');
for (const kind of arg('kinds', 'model,stories').split(',')) {
  const rows = all.meta.map((m, i) => (m.split === 'eval' && m.summary && (rowSource(m) === 'model') === (kind === 'model') ? i : -1)).filter((i) => i >= 0).slice(0, N);
  const h = rowsOf(all.h, d, rows);
  const truth = rows.map((i) => quotation(all.meta[i]!.summary));
  const pieces = truth.map((t) => nla.tok.encode(t ?? '').length);
  const res: Record<string, unknown> = { rows: rows.length };
  for (const k of [1, ...arg('k', '4,8,16').split(',').filter(Boolean).map(Number)]) {
    const ex = await nla.explainActivations(h, k === 1 ? { samples: 1, temperature: 0 } : { samples: k, temperature: 1, seed: 7 });
    let exact = 0, anyExact = 0, fve = 0;
    const byP: Record<string, [number, number]> = {};
    const bySeen: Record<string, [number, number]> = {};
    const byCount: Record<string, [number, number]> = {};
    ex.forEach((c, r) => {
      const ok = quotation(c[0]!.text) === truth[r];
      exact += +ok;
      anyExact += +c.some((x) => quotation(x.text) === truth[r]);
      fve += c[0]!.fve;
      const key = pieces[r]! >= 3 ? '3+' : String(pieces[r]);
      const b = (byP[key] ??= [0, 0]);
      b[0] += +ok;
      b[1]++;
      const times = taught.get(truth[r]) ?? 0;
      for (const [g, key] of [[bySeen, times > 0 ? 'seen' : 'unseen'], [byCount, countBin(times)]] as const) {
        const x = (g[key] ??= [0, 0]);
        x[0] += +ok;
        x[1]++;
      }
    });
    const n = ex.length;
    res[k === 1 ? 'greedy' : `best_of_${k}`] = { quote_exact: +(exact / n).toFixed(3), any_exact: +(anyExact / n).toFixed(3), fve: +(fve / n).toFixed(3), by_pieces: Object.fromEntries(Object.entries(byP).sort().map(([p, [a, b]]) => [p, +(a / b).toFixed(3)])), by_seen: Object.fromEntries(Object.entries(bySeen).sort().map(([p, [a, b]]) => [p, { rows: b, quote_exact: +(a / b).toFixed(3) }])), by_training_count: Object.fromEntries(Object.entries(byCount).map(([p, [a, b]]) => [p, { rows: b, quote_exact: +(a / b).toFixed(3) }])) };
    process.stderr.write(`${kind} k=${k}: ${JSON.stringify(res[k === 1 ? 'greedy' : `best_of_${k}`])}\n`);
  }
  out[kind] = res;
}
console.log(JSON.stringify(out));
nla.dispose();

// How fast does the AV learn to read the word off h? The AV warm start alone, as the stories demo
// runs it (batch 32, peak lr 4e-3 after 20 warm-up steps, cosine decay to 10%, clip 1, the
// opening quotation weighted 4, the compact prompts, alpha = the store's q75 of |h|), on a demo
// store's av rows, then greedy explanations of the store's held-out rows of M's text (split
// eval, source model; documents no training row came from), scored by whether the opening
// quotation equals the row's summary's, overall and by the word's tok512 pieces (encoded on its
// own). Prints minutes and the scores as one JSON line.
//
// `--quote-only Q` follows every full step with a step on Q rows cut after their opening
// quotation (loss on the quotation's tokens alone): a short sequence that trains the same
// conditionals as the start of a full summary, at less cost per row (docs/experiments.md, "The AV's
// learning curve").
// `--eval-store DIR` scores another store's held-out rows instead (the same rows for AVs trained on
// different stores; its held-out documents must be none of the training ones, checked by seed).
//   node --import tsx scripts/av-steps.ts --store DIR --steps 1600 [--quote-only 64] [--noise S] [--by-kind] [--temper G] [--rows 600] [--seed 1] [--eval-store DIR] [--batch 32] [--fragments N | --fragment-share F] [--gate] [--aux-pieces W]
import { ActivationStore, rowSource } from '../src/nla/store.js';
import { avTokenWeights, rowsOf } from '../src/nla/sft.js';
import { Verbalizer, weightedNll } from '../src/nla/av.js';
import { makeOptimizer } from '../src/nla/optim.js';
import { padRight } from '../src/nla/batch.js';
import { COMPACT_PROMPTS } from '../src/nla/prompts.js';
import { findModelFile } from '../src/io/model-files.js';
import { loadModel, loadTokenizerFor } from '../src/nn/load.js';
import type { Llama } from '../src/nn/llama.js';
import { SeededRng } from '../src/util/rng.js';
import * as T from '../src/tensor/index.js';
import { argReader } from './args.js';
import { confidenceAuc, quoteLogProb } from '../src/nla/quote-confidence.js';

const arg = argReader('av-steps');
const STEPS = Number(arg('steps')), Q = Number(arg('quote-only', '0')), QW = 4, BATCH = Number(arg('batch', '32'));
await T.initGpu();
const file = findModelFile('stories260K.bin');
const M = (await loadModel(file)).model as Llama;
const tok = loadTokenizerFor(file);
const store = ActivationStore.open(arg('store'), { layer: 3, d: M.cfg.dim });
const all = store.readAll(), d = store.manifest.d;
const pick = (f: (i: number) => boolean) => all.meta.map((_, i) => (f(i) ? i : -1)).filter((i) => i >= 0);
const train = pick((i) => all.meta[i]!.split === 'av' && !!all.meta[i]!.summary);
const evalStore = ActivationStore.open(arg('eval-store', store.dir), { layer: 3, d: M.cfg.dim });
const evalAll = evalStore.dir === store.dir ? all : evalStore.readAll();
const held = evalAll.meta.map((m, i) => (m.split === 'eval' && rowSource(m) === 'model' && m.summary ? i : -1)).filter((i) => i >= 0).slice(0, Number(arg('rows', '600')));
if (!train.length || !held.length) throw new Error(`av-steps: ${store.dir} has ${train.length} av rows, ${evalStore.dir} ${held.length} held-out rows of M's text`);
const trainSeeds = new Set(train.flatMap((i) => (all.meta[i]!.seed === undefined ? [] : [all.meta[i]!.seed!])));
const shared = held.filter((i) => trainSeeds.has(evalAll.meta[i]!.seed ?? -1));
if (shared.length) throw new Error(`av-steps: ${shared.length} held-out rows of ${evalStore.dir} come from documents the AV trains on (seed ${evalAll.meta[shared[0]!]!.seed})`);
const data = { h: rowsOf(all.h, d, train), texts: train.map((i) => all.meta[i]!.summary!), known: train.map((i) => all.meta[i]!.truth?.known) };
// `--fragments N`: rows of M's text whose word (the opening quotation) is quoted by fewer than N
// of the AV's rows and whose current token starts inside it quote that token alone, as a
// fragment (`"...hr". Then "bathroom". Text: ...hr`): does the AV learn to write the piece it
// reads when the word is one it hardly knows, and keep whole words for the ones it does?
const quotation = (t: string | undefined) => (t ? /^"(.*?)"\./s.exec(t)?.[1] : undefined);
const FRAG = Number(arg('fragments', '0'));
// `--fragment-share F`: instead, a share F of all the rows of M's text whose current token starts
// inside the word (drawn by seed, whatever the word) quote that token as a fragment, so the AV
// learns the hedge for any word; `--gate` then decodes with it where the AV is unsure (below).
const FRAG_SHARE = Number(arg('fragment-share', '0'));
const fragRng = new SeededRng(Number(arg('seed', '1')) + 2000);
const taughtCount = new Map<string | undefined, number>();
for (const t of data.texts) taughtCount.set(quotation(t), (taughtCount.get(quotation(t)) ?? 0) + 1);
let fragmented = 0;
if (FRAG || FRAG_SHARE) {
  data.texts = data.texts.map((t, k) => {
    const m = all.meta[train[k]!]!, w = quotation(t);
    if (rowSource(m) !== 'model' || !w || m.prevToken === undefined || m.prevToken < 0) return t;
    if (FRAG ? (taughtCount.get(w) ?? 0) >= FRAG : fragRng.next() >= FRAG_SHARE) return t;
    const piece = tok.decodeToken(m.prevToken, m.token);
    if (!piece || /^\s/.test(piece) || piece.length >= w.length || !w.endsWith(piece)) return t;
    fragmented++;
    return t.replace(`"${w}".`, `"...${piece}".`).replace(new RegExp(`Text: \\.\\.\\. ${w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`), `Text: ...${piece}`);
  });
}

const av = new Verbalizer(new (M.constructor as typeof Llama)(M.cfg, await M.w.clone()), tok, COMPACT_PROMPTS, store.manifest.norms.q75!);
const full = data.texts.map((t) => av.targetIds(t));
const fullW = avTokenWeights(av, data, 1, QW)!;
// Cut after the last token of the opening quotation (the tokens weighted QW); weight 1 there, 0 on the rest.
const quoteIds = full.map((ids, r) => ids.slice(0, fullW[r]!.lastIndexOf(QW) + 1));
const quoteW = fullW.map((w, r) => w.slice(0, quoteIds[r]!.length).map((x) => (x === QW ? 1 : 0)));
const quoteRows = [...quoteIds.keys()].filter((r) => quoteW[r]!.includes(1));

const P = av.prompt.ids.length;
// `--noise S`: each training h gets Gaussian noise of S times its per-coordinate RMS (a regulariser
// against memorising the rows' words; the injection then rescales to alpha as always).
const NOISE = Number(arg('noise', '0'));
const noiseRng = new SeededRng(Number(arg('seed', '1')) + 1000);
const gauss = () => Math.sqrt(-2 * Math.log(1 - noiseRng.next())) * Math.cos(2 * Math.PI * noiseRng.next());
function noisy(h: Float32Array): Float32Array {
  if (!NOISE) return h;
  for (let r = 0; r < h.length / d; r++) {
    let ss = 0;
    for (let j = 0; j < d; j++) ss += h[r * d + j]! ** 2;
    const s = NOISE * Math.sqrt(ss / d);
    for (let j = 0; j < d; j++) h[r * d + j]! += s * gauss();
  }
  return h;
}
// `--aux-pieces W`: the prompt's positions from the placeholder on (teacher-forced, their loss
// otherwise masked) are also trained, with weight W, to predict the opening quotation's tokens one
// by one: the AV's states at the injected vector must spell the word out, which the later
// positions, where it writes the quote, read by attention. Costs nothing: those logits are
// computed anyway.
const AUX = Number(arg('aux-pieces', '0'));
function auxLoss(rows: number[], ids: number[][], ws: number[][]): T.Tensor {
  const p = av.prompt.position, batch = padRight(rows.map((r) => [...av.prompt.ids, ...ids[r]!]), 0);
  const { B, T: Tn } = batch, V = M.cfg.vocabSize;
  const targets = new Int32Array(B * (Tn - 1)), w = new Float32Array(B * (Tn - 1));
  for (let b = 0; b < B; b++) for (let t = 0; t < Tn - 1; t++) targets[b * (Tn - 1) + t] = batch.ids[b * Tn + t + 1]!;
  rows.forEach((r, b) => {
    ws[r]!.forEach((x, k) => (w[b * (Tn - 1) + P - 1 + k] = x));
    const quoted = ids[r]!.filter((_, k) => fullW[r]![k] === QW).slice(0, P - 1 - p);
    quoted.forEach((id, j) => {
      targets[b * (Tn - 1) + p + j] = id;
      w[b * (Tn - 1) + p + j] = AUX;
    });
  });
  const vectors = av.injection(noisy(rowsOf(data.h, d, rows)));
  const { logits } = av.model.forward(T.Tensor.from(batch.ids, [B, Tn], 'i32'), { inject: { positions: new Array(B).fill(p), vectors } });
  const logp = T.tokenLogProbs(logits!.slice(1, 0, Tn - 1).reshape([B * (Tn - 1), V]), T.Tensor.from(targets, [B * (Tn - 1)], 'i32')).reshape([B, Tn - 1]);
  return weightedNll(logp, T.Tensor.from(w, [B, Tn - 1]));
}
function loss(rows: number[], ids: number[][], ws: number[][]): T.Tensor {
  if (AUX && ids === full) return auxLoss(rows, ids, ws);
  const { logp, mask } = av.completionLogProbs(noisy(rowsOf(data.h, d, rows)), rows.map((r) => ids[r]!));
  const [B, Tm] = mask.shape;
  mask.dispose();
  const w = new Float32Array(B * Tm);
  rows.forEach((r, b) => ws[r]!.forEach((x, k) => (w[b * Tm + k] = x))); // logp[b, k]: completion token k
  return weightedNll(logp, T.Tensor.from(w, [B, Tm]));
}
const rng = new SeededRng(Number(arg('seed', '1')));
const shuffled = (rows: number[]) => {
  const a = [...rows];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
};
const opt = makeOptimizer(av.params(), { lr: 4e-3, warmup: 20, decaySteps: STEPS, clip: 1 }, 'av-steps');
const update = async (step: number, rows: number[], ids: number[][], ws: number[][]) => {
  const l = T.tidy(() => {
    const x = loss(rows, ids, ws);
    x.backward();
    return x.detach();
  });
  try {
    await opt.step(step, l);
  } finally {
    l.dispose();
  }
};
const everyRow = [...full.keys()];
// `--by-kind`: every batch holds rows of one source (M's text or the stories), the batches of an
// epoch in shuffled order; M's text's summaries are short (29 tokens against 47), so its batches
// pad to less.
const BY_KIND = process.argv.includes('--by-kind');
const kindOf = train.map((i) => rowSource(all.meta[i]!) === 'model');
// `--temper G`: an "epoch" is everyRow.length draws (with replacement) at probability proportional
// to n^-G, n the number of training rows quoting the row's word: rare words get more of the steps.
const TEMPER = Number(arg('temper', '0'));
const wordCount = new Map<string | undefined, number>();
for (const t of data.texts) wordCount.set(quotation(t), (wordCount.get(quotation(t)) ?? 0) + 1);
const cumulative = (() => {
  let acc = 0;
  return data.texts.map((t) => (acc += wordCount.get(quotation(t))! ** -TEMPER));
})();
function tempered(): number[] {
  const total = cumulative[cumulative.length - 1]!;
  return everyRow.map(() => {
    const x = rng.next() * total;
    let lo = 0, hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid]! > x) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  });
}
function epoch(): number[] {
  if (TEMPER) return tempered();
  if (!BY_KIND) return shuffled(everyRow);
  const batches: number[][] = [];
  for (const k of [true, false]) {
    const rows = shuffled(everyRow.filter((r) => kindOf[r] === k));
    for (let i = 0; i + BATCH <= rows.length; i += BATCH) batches.push(rows.slice(i, i + BATCH));
  }
  const ix = shuffled([...batches.keys()]);
  return ix.flatMap((b) => batches[b]!);
}
let order: number[] = [], qOrder: number[] = [];
const t0 = performance.now();
for (let s = 0; s < STEPS; s++) {
  if (order.length < BATCH) order = order.concat(epoch());
  await update(s, order.splice(0, BATCH), full, fullW);
  if (Q > 0) {
    if (qOrder.length < Q) qOrder = qOrder.concat(shuffled(quoteRows));
    await update(s, qOrder.splice(0, Q), quoteIds, quoteW);
  }
  if (s % 200 === 199) process.stderr.write(`step ${s + 1}/${STEPS}, ${((performance.now() - t0) / 60000).toFixed(1)} min\n`);
}
const minutes = (performance.now() - t0) / 60000;

const out = await av.explain(rowsOf(evalAll.h, d, held), { temperature: 0, maxTokens: 40 });

// `--gate`: does the AV know when it misreads, and does hedging there pay? Each greedy word
// quotation's log-probability (the AV's own, from generation: nothing of h through the AR); the
// rows under a threshold are decoded again with the opening `"...` forced, so the AV writes the
// piece it reads as a fragment. Per share of rows gated (the least confident first): exact words,
// right fragments, wrong quotes, and the FVE they would give at the rates measured on dev (an
// exact quote 0.76, a right fragment 0.385, a wrong quote -0.11: docs/experiments.md).
const GATE = process.argv.includes('--gate');
let gate: Record<string, unknown> | undefined;
if (GATE) {
  const quoteLogP = out.map((e) => quoteLogProb(av, e.tokens, e.logprobs) ?? -Infinity);
  // The ids of the opening `"...` as training summaries tokenise it: the shortest prefix of a fragment quotation's ids.
  const forced = av.targetIds('"...x". y');
  const heldH = rowsOf(evalAll.h, d, held);
  const vectors = av.injection(heldH);
  const { generate } = await import('../src/nn/generate.js');
  const prefix = forced.slice(0, [...forced.keys()].find((i) => av.decode(forced.slice(0, i + 1)).startsWith('"...'))! + 1);
  if (av.decode(prefix) !== '"...') throw new Error(`av-steps --gate: the forced prefix decodes as ${JSON.stringify(av.decode(prefix))}`);
  const gen = await generate(av.model, held.map(() => [...av.prompt.ids, ...prefix]), { maxNewTokens: 40, temperature: 0, stopTokens: [tok.eosId], inject: { positions: held.map(() => av.prompt.position), vectors } });
  vectors.dispose();
  const hedged = gen.tokens.map((t) => av.decode([...prefix, ...t]));
  const truthOf = (k: number) => quotation(evalAll.meta[held[k]!]!.summary)!;
  const kind = (q: string, truth: string) => (q.startsWith('...') ? (q.length > 3 && truth.endsWith(q.slice(3)) ? 'frag' : 'wrong') : q === truth ? 'exact' : 'wrong');
  const order = [...out.keys()].sort((a, b) => (quoteLogP[a]! < quoteLogP[b]! ? -1 : quoteLogP[a]! > quoteLogP[b]! ? 1 : 0)); // -Infinity (no quotation) first
  const rank = new Map(order.map((k, i) => [k, i]));
  const curve: Record<string, unknown>[] = [];
  for (const share of [0, 0.1, 0.2, 0.3, 0.4, 0.5, 1]) {
    const cut = Math.round(share * out.length);
    const c = { exact: 0, frag: 0, wrong: 0 };
    out.forEach((e, k) => {
      const q = rank.get(k)! < cut ? quotation(hedged[k]) ?? '' : quotation(e.explanation) ?? '';
      c[kind(q, truthOf(k)) as keyof typeof c]++;
    });
    const n = out.length;
    curve.push({ gated: share, exact_words: +(c.exact / n).toFixed(3), right_fragments: +(c.frag / n).toFixed(3), wrong: +(c.wrong / n).toFixed(3), fve_at_rates: +((0.76 * c.exact + 0.385 * c.frag - 0.11 * c.wrong) / n).toFixed(3) });
  }
  const auc = confidenceAuc(quoteLogP, out.map((e, k) => quotation(e.explanation) === truthOf(k)));
  gate = { confidence_auc: +auc.toFixed(3), greedy_fragments: out.filter((e) => (quotation(e.explanation) ?? '').startsWith('...')).length, curve };
}
// With --fragments: each held-out row's opening quotation as a whole word (exact or not) or a
// fragment (right when the word read ends with it), by how often the AV's rows quote the word.
const frag = { rows: 0, exact: 0, fragRight: 0, fragWrong: 0, wrongWord: 0, byCount: {} as Record<string, { rows: number; exact: number; fragRight: number; fragWrong: number }> };
out.forEach((e, k) => {
  const truth = quotation(evalAll.meta[held[k]!]!.summary)!, q = quotation(e.explanation) ?? '';
  const c = taughtCount.get(truth) ?? 0, key = c === 0 ? '0' : c < 4 ? '1-3' : '4+';
  const g = (frag.byCount[key] ??= { rows: 0, exact: 0, fragRight: 0, fragWrong: 0 });
  frag.rows++, g.rows++;
  if (q.startsWith('...')) {
    const right = q.length > 3 && truth.endsWith(q.slice(3));
    if (right) frag.fragRight++, g.fragRight++;
    else frag.fragWrong++, g.fragWrong++;
  } else if (q === truth) frag.exact++, g.exact++;
  else frag.wrongWord++;
});
const by = new Map<string, { rows: number; exact: number }>();
out.forEach((e, k) => {
  const truth = quotation(evalAll.meta[held[k]!]!.summary)!;
  const n = tok.encode(truth).length, key = n >= 3 ? '3+' : String(n);
  const g = by.get(key) ?? { rows: 0, exact: 0 };
  g.rows++;
  g.exact += +(quotation(e.explanation) === truth);
  by.set(key, g);
});
const exact = [...by.values()].reduce((a, g) => a + g.exact, 0) / out.length;
console.log(JSON.stringify({
  store: store.dir, eval_store: evalStore.dir, steps: STEPS, batch: BATCH, quote_only_rows: Q, aux_pieces: AUX, noise: NOISE, by_kind: BY_KIND, temper: TEMPER, train_rows: train.length, held_rows: out.length, minutes: +minutes.toFixed(2), quote_exact: +exact.toFixed(3),
  ...(FRAG || FRAG_SHARE ? { fragments_below: FRAG, fragment_share: FRAG_SHARE, fragmented_rows: fragmented, quotes: frag } : {}),
  ...(gate ? { gate } : {}),
  by_pieces: Object.fromEntries([...by].sort().map(([k, g]) => [k, { rows: g.rows, quote_exact: +(g.exact / g.rows).toFixed(3) }])),
}));
av.model.w.dispose();

// How much of the words read does h hold, for a reader that is not linear? A 2-hidden-layer MLP
// on h (ReLU, AdamW, minibatches of 1,024) fitted on the store's training rows (splits av, ar,
// rl; every source) to three labels: the current token, the previous token, and the word unit
// read (each row's summary's opening quotation, a class per distinct quotation in training).
// Scored on the store's held-out rows of one source (split eval): the epoch is chosen on the
// even-numbered rows ("dev") and reported on the odd ones ("test"). Beside it, the linear probe
// the demo reports (probe-gpu.ts) on the same rows for the two tokens. The word's ceiling is the
// share of held-out rows whose quotation occurs in training at all (docs/experiments.md, "Reading the word
// off h"), and the word by its tok512 pieces.
// `--splits av` fits on the AV warm start's rows alone (the rows the AV learns the words from).
//   node --import tsx scripts/word-reader.ts --store DIR [--splits av,ar,rl] [--source model] [--epochs 24] [--hidden 512] [--seed 0] [--vocab 512]
import { ActivationStore, rowSource } from '../src/nla/store.js';
import { probePredictGpu } from '../src/nla/probe-gpu.js';
import { quoteSpan } from '../src/nla/fact-weights.js';
import { rowsOf } from '../src/nla/sft.js';
import { rng } from '../src/util/rng.js';
import * as T from '../src/tensor/index.js';
import { findModelFile } from '../src/io/model-files.js';
import { loadTokenizerFor } from '../src/nn/load.js';
import { argReader } from './args.js';

const arg = argReader('word-reader');
await T.initGpu();
const tok = loadTokenizerFor(findModelFile('stories260K.bin'));
const store = ActivationStore.open(arg('store'));
const source = arg('source', 'model');
const EPOCHS = Number(arg('epochs', '24')), H = Number(arg('hidden', '512')), B = 1024, LR = 2e-3, WD = 0.01;
const rand = rng(Number(arg('seed', '0')));
const all = store.readAll();
const d = store.manifest.d, V = Number(arg('vocab', '512')); // the studied model's vocabulary (tok512)
const pick = (f: (i: number) => boolean) => all.meta.map((_, i) => (f(i) ? i : -1)).filter((i) => i >= 0);
const splits = arg('splits', 'av,ar,rl').split(',');
const tr = pick((i) => splits.includes(all.meta[i]!.split ?? '') && !!all.meta[i]!.summary);
const held = pick((i) => all.meta[i]!.split === 'eval' && rowSource(all.meta[i]!) === source && !!all.meta[i]!.summary);
if (!tr.length || !held.length) throw new Error(`word-reader: ${store.dir} has ${tr.length} training rows and ${held.length} held-out rows of source ${source}`);
const dev = held.filter((_, k) => k % 2 === 0), test = held.filter((_, k) => k % 2 === 1);

const quotation = (i: number) => {
  const e = all.meta[i]!.summary!, q = quoteSpan(e);
  return q ? e.slice(q.start, q.end) : '';
};
const words = [...new Set(tr.map(quotation))];
const wordIndex = new Map(words.map((w, k) => [w, k]));
const tokenClass = (t: number) => (t < 0 ? V : t); // no previous token: class V
const labels: Record<string, { classes: number; of: (i: number) => number }> = {
  token: { classes: V + 1, of: (i) => tokenClass(all.meta[i]!.token) },
  prev_token: { classes: V + 1, of: (i) => tokenClass(all.meta[i]!.prevToken) },
  word: { classes: words.length, of: (i) => wordIndex.get(quotation(i)) ?? -1 }, // -1: never seen in training, always wrong
};

// Standardised on the training rows' mean and spread, as the linear probe does.
const mean = new Float64Array(d), sd = new Float64Array(d);
for (const i of tr) for (let j = 0; j < d; j++) mean[j] += all.h[i * d + j]! / tr.length;
for (const i of tr) for (let j = 0; j < d; j++) sd[j] += (all.h[i * d + j]! - mean[j]!) ** 2 / tr.length;
for (let j = 0; j < d; j++) sd[j] = Math.sqrt(sd[j]!) || 1;
const z = (idx: number[]) => {
  const x = rowsOf(all.h, d, idx);
  for (let k = 0; k < x.length; k++) x[k] = (x[k]! - mean[k % d]!) / sd[k % d]!;
  return x;
};
const ztr = z(tr), zdev = z(dev), ztest = z(test);
const gauss = (n: number, s: number) => Float32Array.from({ length: n }, () => s * Math.sqrt(-2 * Math.log(rand() || 1e-12)) * Math.cos(2 * Math.PI * rand()));
const accuracy = (pred: ArrayLike<number>, idx: number[], of: (i: number) => number) => idx.reduce((a, i, k) => a + +(pred[k] === of(i)), 0) / idx.length;

async function mlp(classes: number, of: (i: number) => number): Promise<{ epoch: number; dev: number; test: number; testPred: Int32Array }> {
  const y = Int32Array.from(tr, of);
  const W1 = T.param(T.Tensor.from(gauss(d * H, Math.sqrt(2 / d)), [d, H]), 'w1'), b1 = T.param(T.zeros([H]), 'b1');
  const W2 = T.param(T.Tensor.from(gauss(H * H, Math.sqrt(2 / H)), [H, H]), 'w2'), b2 = T.param(T.zeros([H]), 'b2');
  const W3 = T.param(T.zeros([H, classes]), 'w3'), b3 = T.param(T.zeros([classes]), 'b3');
  const opt = new T.AdamW([{ params: [W1, W2, W3], weightDecay: WD }, { params: [b1, b2, b3], weightDecay: 0 }], { lr: LR });
  const hidden = (x: T.Tensor) => T.relu(T.add(T.relu(T.add(x.matmul(W1), b1)).matmul(W2), b2));
  const predict = async (zx: Float32Array) => {
    const n = zx.length / d, out = new Int32Array(n);
    for (let s = 0; s < n; s += 2048) {
      const m = Math.min(2048, n - s);
      const logits = T.noGrad(() => T.tidy(() => T.keep(T.add(hidden(T.Tensor.from(zx.subarray(s * d, (s + m) * d), [m, d])).matmul(W3), b3))));
      const v = (await logits.data()) as Float32Array;
      logits.dispose();
      for (let r = 0; r < m; r++) {
        let best = 0;
        for (let c = 1; c < classes; c++) if (v[r * classes + c]! > v[r * classes + best]!) best = c;
        out[s + r] = best;
      }
    }
    return out;
  };
  let best = { epoch: 0, dev: -1, test: 0, testPred: new Int32Array(0) };
  try {
    for (let ep = 1; ep <= EPOCHS; ep++) {
      const order = [...tr.keys()];
      for (let k = order.length - 1; k > 0; k--) {
        const j = Math.floor(rand() * (k + 1));
        [order[k], order[j]] = [order[j]!, order[k]!];
      }
      for (let s = 0; s + B <= order.length; s += B) {
        const xb = new Float32Array(B * d), yb = new Int32Array(B);
        for (let k = 0; k < B; k++) {
          xb.set(ztr.subarray(order[s + k]! * d, (order[s + k]! + 1) * d), k * d);
          yb[k] = y[order[s + k]!]!;
        }
        T.tidy(() => T.crossEntropy(hidden(T.Tensor.from(xb, [B, d])).matmul(W3), T.Tensor.from(yb, [B], 'i32'), { bias: b3 }).backward());
        opt.step();
        opt.zeroGrad();
      }
      if (ep % 3 === 0 || ep === EPOCHS) {
        const a = accuracy(await predict(zdev), dev, of);
        if (a > best.dev) {
          const testPred = await predict(ztest);
          best = { epoch: ep, dev: a, test: accuracy(testPred, test, of), testPred };
        }
        process.stderr.write(`  epoch ${ep}: dev ${a.toFixed(3)}\n`);
      }
    }
    return best;
  } finally {
    opt.dispose();
    for (const t of [W1, b1, W2, b2, W3, b3]) t.dispose();
  }
}

const seen = held.filter((i) => wordIndex.has(quotation(i))).length / held.length;
console.log(`${store.dir}: ${tr.length} training rows, held-out ${source} rows ${dev.length} dev / ${test.length} test; ${words.length} distinct words read in training, ${(seen * 100).toFixed(1)}% of held-out rows read one of them`);
const out: Record<string, unknown> = { store: store.dir, source, train_rows: tr.length, dev_rows: dev.length, test_rows: test.length, word_classes: words.length, word_seen: seen };
for (const [name, l] of Object.entries(labels)) {
  const linear = name === 'word' ? undefined : accuracy(await probePredictGpu(rowsOf(all.h, d, tr), Int32Array.from(tr, l.of), rowsOf(all.h, d, test), l.classes), test, l.of);
  const m = await mlp(l.classes, l.of);
  console.log(`${name.padEnd(11)} MLP (epoch ${m.epoch} on dev) test ${m.test.toFixed(3)}${linear === undefined ? '' : `, linear probe test ${linear.toFixed(3)}`}`);
  out[name] = { mlp: m.test, mlp_dev: m.dev, epoch: m.epoch, linear: linear ?? null };
  if (name === 'word') {
    // By the word's tok512 pieces (encoded on its own), as scripts/av-steps.ts counts them.
    const by = new Map<string, { rows: number; right: number }>();
    test.forEach((i, k) => {
      const n = tok.encode(quotation(i)).length, key = n >= 3 ? '3+' : String(n);
      const g = by.get(key) ?? { rows: 0, right: 0 };
      g.rows++;
      g.right += +(m.testPred[k] === l.of(i));
      by.set(key, g);
    });
    out.word_by_pieces = Object.fromEntries([...by].sort().map(([k, g]) => [k, { rows: g.rows, mlp: +(g.right / g.rows).toFixed(3) }]));
    console.log(`word by pieces: ${JSON.stringify(out.word_by_pieces)}`);
  }
}
console.log(JSON.stringify(out));
process.exit(0);

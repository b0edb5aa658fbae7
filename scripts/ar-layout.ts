// Where the AR should read the words of a summary: an AR-only experiment on a demo's activation
// store (docs/experiments.md, "The words read, first and last"). Layout A: the summary as stored, read in the
// previous AR prompt at `<summary>` (the words read came first); layout B: the same summary with
// its words moved to the end, read at its last token. Prints the AR's FVE on the store's held-out
// rows of each source, untrained and after training on the ar split's true summaries.
//   node --import tsx scripts/ar-layout.ts runs/e1/activations A|B [steps] [lr]
// The store must hold summaries written with the words first ('"<words>". <facts>. Then "<next>".'),
// as demos before commit 5518eb8 wrote them.
import { loadModel, loadTokenizerFor } from '../src/nn/load.js';
import { findModelFile } from '../src/io/model-files.js';
import { ActivationStore, rowSource } from '../src/nla/store.js';
import { Reconstructor } from '../src/nla/ar.js';
import { trainArSft, rowsOf } from '../src/nla/sft.js';
import { DEFAULT_PROMPTS } from '../src/nla/prompts.js';
import { mseNormalized, varianceNormalized } from '../src/nla/fve.js';
const [storeDir, fmt = 'A', steps = '1200', lr = '1e-3'] = process.argv.slice(2);
const f = findModelFile('stories260K.bin');
const { model } = await loadModel(f); const tok = loadTokenizerFor(f);
const s = ActivationStore.open(storeDir!); const { h, meta } = s.readAll(); const d = 64;
// The quote of a words-first summary: from its first '"' to the '". ' that closes it.
const firstQuote = (sum: string) => /^"(.*?)"\.(\s|$)/.exec(sum)![1]!;
function transform(sum: string): string {
  if (fmt === 'A') return sum;
  const q = firstQuote(sum);
  const rest = sum.slice(q.length + 3).trim(); // after '"<q>". '
  if (fmt === 'B') return `${rest ? rest + ' ' : ''}Text: ...${/^[A-Za-z]/.test(q) ? ' ' : ''}${q}`;
  throw new Error(fmt);
}
const prompts = { ...DEFAULT_PROMPTS, ar: fmt === 'A' ? 'Summary of the following text: <text>{explanation}</text> <summary>' : 'Summary of the following text: {explanation}' };
const ix = (f: (m: any) => boolean) => meta.map((m, i) => (f(m) ? i : -1)).filter((i) => i >= 0);
const arIx = ix((m) => m.split === 'ar');
const trainIx = ix((m) => m.split !== 'eval');
const variance = varianceNormalized(rowsOf(h, d, trainIx), d);
console.log('example:', transform(meta[arIx[0]!]!.summary!), '|', transform(meta[arIx.find((i) => rowSource(meta[i]!) === 'model')!]!.summary!));
const AR = await Reconstructor.fromModel(model as any, 3, tok, prompts);
const evalSets = { model: ix((m) => m.split === 'eval' && rowSource(m) === 'model').slice(0, 400), stories: ix((m) => m.split === 'eval' && rowSource(m) === 'known-answer').slice(0, 400) };
const score = async () => Object.fromEntries(await Promise.all(Object.entries(evalSets).map(async ([k, e]) => {
  const p = await AR.predictHost(e.map((i) => transform(meta[i]!.summary!)));
  const m = mseNormalized(p, rowsOf(h, d, e), d);
  return [k, +(1 - m.reduce((a, v) => a + v, 0) / m.length / variance).toFixed(3)];
})));
console.log('untrained', JSON.stringify(await score()));
const t0 = Date.now();
await trainArSft(AR, { h: rowsOf(h, d, arIx), texts: arIx.map((i) => transform(meta[i]!.summary!)) }, { steps: Number(steps), batchSize: 32, lr: Number(lr), seed: 0, warmup: 20, decaySteps: Number(steps), clip: 1, onLog: (m) => { if (m.step % 200 === 0) console.log(m.step, m.loss.toFixed(4)); } });
console.log(`fmt ${fmt} steps ${steps} lr ${lr}:`, JSON.stringify(await score()), `${((Date.now() - t0) / 60000).toFixed(1)} min`);
process.exit(0);

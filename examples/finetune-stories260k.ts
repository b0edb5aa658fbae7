// Fine-tune the pretrained stories260K (llama2.c) on a few hundred generated TinyStories-like
// stories: one story per row, right-padded, padding ignored by the loss; held-out loss and
// samples before and after; a training checkpoint and a Hugging Face export at the end.
//
// Run: node --import tsx examples/finetune-stories260k.ts [--model stories260K.bin] [--steps 120]
//        [--stories 400] [--lr 1e-3] [--batch 8] [--seq 160] [--out DIR]
// The model is looked up like the CLI does ($NLA_MODELS, the cache, ../shared/models).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { generate, generateStories, loadModel, loadTokenizerFor, saveHf } from '../src/index.js';
import { DataLoader, TokenDataset } from '../src/nn/data.js';
import { Trainer } from '../src/nn/train.js';

const { values: a } = parseArgs({
  options: {
    model: { type: 'string', default: 'stories260K.bin' },
    out: { type: 'string', default: path.join(os.tmpdir(), 'nla-finetune-260k') },
    steps: { type: 'string', default: '120' },
    stories: { type: 'string', default: '400' },
    lr: { type: 'string', default: '1e-3' },
    batch: { type: 'string', default: '8' },
    seq: { type: 'string', default: '160' },
  },
});

const { model, source } = await loadModel(a.model);
const tok = loadTokenizerFor(a.model);
console.log(`model: ${source} (${model.cfg.nLayers} layers, d ${model.cfg.dim}, vocab ${model.cfg.vocabSize})`);

// Stories as documents: BOS + story, as llama2.c trained on TinyStories.
const stories = generateStories(Number(a.stories), 7).map((s) => s.text);
const [train, val] = TokenDataset.fromText(stories, tok, { bos: true, eos: false }).split(0.1);
const lens = train.docs.map((d) => d.length);
console.log(`data: ${train.docs.length} training / ${val.docs.length} held-out stories, ${Math.min(...lens)}..${Math.max(...lens)} tokens each`);
console.log(`e.g. "${stories[0].slice(0, 160)}..."`);

const seq = Number(a.seq), batch = Number(a.batch), steps = Number(a.steps);
const data = new DataLoader(train, { batchSize: batch, seqLen: seq, seed: 1, mode: 'documents' });
const valData = new DataLoader(val, { batchSize: batch, seqLen: seq, seed: 2, mode: 'documents' });

const prompt = tok.encode('Once upon a time', { bos: true });
async function show(label: string): Promise<void> {
  const g = await generate(model, [prompt, prompt], { maxNewTokens: 80, temperature: 0.8, topP: 0.9, seed: 11 });
  for (const row of g.tokens) console.log(`${label}> ${tok.decode([...prompt, ...row]).replace(/\s+/g, ' ').trim()}`);
}

const trainer = new Trainer(model, data, {
  steps, lr: Number(a.lr), warmupSteps: Math.round(steps / 10), minLr: Number(a.lr) / 10, weightDecay: 0.0, maxGradNorm: 1,
  checkpointPath: path.join(a.out, 'finetuned.ck'), checkpointEvery: 60, logEvery: 20,
  onLog: (m) => console.log(`step ${String(m.step).padStart(4)}  loss ${m.loss.toFixed(3)}  lr ${m.lr.toExponential(2)}  ${m.tokensPerSec.toFixed(0)} tok/s`),
});
const before = await trainer.evaluate(valData, 4);
console.log(`held-out loss before: ${before.toFixed(3)}`);
await show('before');
fs.mkdirSync(a.out, { recursive: true });
const res = await trainer.run();
const after = await trainer.evaluate(valData, 4);
console.log(`held-out loss after ${res.steps} steps (${res.seconds.toFixed(1)} s): ${after.toFixed(3)} (was ${before.toFixed(3)})`);
await show('after ');
await saveHf(model, path.join(a.out, 'hf'));
console.log(`checkpoint ${path.join(a.out, 'finetuned.ck')}, Hugging Face export ${path.join(a.out, 'hf')}`);
trainer.dispose();
model.w.dispose();
process.exit(0);

// Train a small Llama from scratch, character-level, on a text file or (by default) on a
// generated corpus of TinyStories-like stories; write a resumable training checkpoint and a
// Hugging Face directory (config.json + model.safetensors); then sample from the result.
//
// Run: node --import tsx examples/train-tiny-llama.ts [--text FILE] [--steps 300] [--out DIR]
//        [--dim 64] [--layers 3] [--heads 4] [--seq 64] [--batch 16] [--lr 3e-3] [--resume]
// Documents in --text are separated by blank lines. Then sample with:
//   node --import tsx examples/sample.ts DIR/model.ck --prompt "Once upon"
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { generate, generateStories, saveHf } from '../src/index.js';
import { CharTokenizer, DataLoader, TokenDataset } from '../src/nn/data.js';
import { initLlama, llamaConfig } from '../src/nn/init.js';
import { Trainer } from '../src/nn/train.js';

const { values: a } = parseArgs({
  options: {
    text: { type: 'string' },
    out: { type: 'string', default: path.join(os.tmpdir(), 'nla-tiny-llama') },
    steps: { type: 'string', default: '300' },
    dim: { type: 'string', default: '64' },
    layers: { type: 'string', default: '3' },
    heads: { type: 'string', default: '4' },
    seq: { type: 'string', default: '64' },
    batch: { type: 'string', default: '16' },
    lr: { type: 'string', default: '3e-3' },
    seed: { type: 'string', default: '1' },
    resume: { type: 'boolean', default: false },
  },
});
const num = (k: keyof typeof a) => {
  const v = Number(a[k]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${k} must be a positive number, got ${a[k]}`);
  return v;
};

// 1. Corpus and tokenizer.
const text = a.text ? fs.readFileSync(a.text, 'utf8') : generateStories(1500, 1).map((s) => s.text).join('\n\n');
const tok = CharTokenizer.fromText(text.replace(/\n\s*\n/g, '\n'));
const [train, val] = TokenDataset.fromText(text, tok).split(0.05);
console.log(`corpus: ${a.text ?? 'generated stories'}, ${train.docs.length} + ${val.docs.length} documents, ${train.tokens} + ${val.tokens} tokens, ${tok.vocabSize} symbols`);

// 2. Model and data.
const seq = num('seq'), batch = num('batch'), steps = num('steps'), seed = num('seed');
const cfg = llamaConfig({ dim: num('dim'), nLayers: num('layers'), nHeads: num('heads'), vocabSize: tok.vocabSize, maxSeqLen: Math.max(seq, 256), bosId: tok.bosId, eosId: tok.eosId });
const model = await initLlama(cfg, seed);
const nParams = model.w.params().reduce((s, p) => s + p.size, 0);
console.log(`model: Llama ${cfg.nLayers} layers, d ${cfg.dim}, ${cfg.nHeads} heads, FFN ${cfg.hiddenDim}: ${(nParams / 1e3).toFixed(1)}K parameters`);
const data = new DataLoader(train, { batchSize: batch, seqLen: seq, seed });
const valData = new DataLoader(val, { batchSize: batch, seqLen: seq, seed: seed + 1 });

// 3. Train: AdamW, warm-up + cosine, clipping at 1, a checkpoint every 100 steps.
fs.mkdirSync(a.out, { recursive: true });
const ck = path.join(a.out, 'model.ck');
const trainer = new Trainer(model, data, {
  steps, lr: num('lr'), warmupSteps: Math.round(steps / 10), weightDecay: 0.1, maxGradNorm: 1,
  checkpointPath: ck, checkpointEvery: 100, checkpointExtra: { tokenizer: { type: 'chars', chars: tok.chars.join('') } },
  logEvery: 25,
  onLog: (m) => console.log(`step ${String(m.step).padStart(4)}  loss ${m.loss.toFixed(3)}  lr ${m.lr.toExponential(2)}  |g| ${m.gradNorm?.toFixed(2)}  ${m.tokensPerSec.toFixed(0)} tok/s`),
  eval: { data: valData, every: 100, batches: 2 },
  onEval: (m) => console.log(`step ${String(m.step).padStart(4)}  validation loss ${m.loss.toFixed(3)}`),
});
if (a.resume && fs.existsSync(ck)) {
  await trainer.resume(ck);
  console.log(`resumed from ${ck} at step ${trainer.step}`);
}
const res = await trainer.run();
console.log(`trained ${res.steps} steps in ${res.seconds.toFixed(1)} s; checkpoint ${ck}`);

// 4. Export as a Hugging Face directory (the character table goes beside it).
const hf = path.join(a.out, 'hf');
await saveHf(model, hf);
fs.writeFileSync(path.join(hf, 'chars.json'), JSON.stringify(tok.chars));
console.log(`Hugging Face export: ${hf} (config.json, model.safetensors, chars.json)`);

// 5. Sample.
const prompt = a.text ? text.slice(0, 8) : 'Once upon a time';
const ids = tok.encode(prompt, { bos: true });
const g = await generate(model, [ids, ids, ids], { maxNewTokens: Math.min(150, cfg.maxSeqLen - ids.length), temperature: 0.8, seed: 3, stopTokens: [tok.eosId] });
for (const row of g.tokens) console.log(`> ${prompt}${tok.decode(row)}`);
trainer.dispose();
model.w.dispose();
process.exit(0);

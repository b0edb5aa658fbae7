// Sample text from a model: a training checkpoint (.ck from examples/train-tiny-llama.ts or
// finetune-stories260k.ts), a llama2.c .bin, or a Hugging Face directory, with temperature and
// nucleus (top-p) sampling, several continuations in one batch through the KV cache.
//
// Run: node --import tsx examples/sample.ts [MODEL] [--prompt "Once upon a time"] [--temperature 0.8]
//        [--top-p 0.9] [--top-k 0] [--tokens 120] [--n 3] [--seed 1] [--tokenizer FILE]
// MODEL defaults to stories260K.bin (looked up in $NLA_MODELS, the cache, ../shared/models).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { generate, loadModel, loadTokenizer, loadTokenizerFor, type AnyModel, type Tokenizer } from '../src/index.js';
import { CharTokenizer } from '../src/nn/data.js';
import { modelFromCheckpoint } from '../src/nn/train.js';

const { values: a, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    prompt: { type: 'string', default: 'Once upon a time' },
    temperature: { type: 'string', default: '0.8' },
    'top-p': { type: 'string', default: '0.9' },
    'top-k': { type: 'string', default: '0' },
    tokens: { type: 'string', default: '120' },
    n: { type: 'string', default: '3' },
    seed: { type: 'string', default: '1' },
    tokenizer: { type: 'string' },
  },
});
const file = positionals[0] ?? 'stories260K.bin';

let model: AnyModel, tok: Tokenizer;
if (file.endsWith('.ck')) {
  const ck = await modelFromCheckpoint(file);
  model = ck.model;
  const t = ck.extra.tokenizer as { type?: string; chars?: string } | undefined;
  if (a.tokenizer) tok = loadTokenizer(a.tokenizer);
  else if (t?.type === 'chars' && typeof t.chars === 'string') tok = new CharTokenizer([...t.chars]);
  else tok = loadTokenizerFor('stories260K.bin'); // fine-tuned stories260K checkpoints use tok512
  console.log(`checkpoint ${file} (step ${ck.step})`);
} else {
  const m = await loadModel(file);
  model = m.model;
  const chars = fs.existsSync(file) && fs.statSync(file).isDirectory() ? path.join(file, 'chars.json') : '';
  if (a.tokenizer) tok = loadTokenizer(a.tokenizer);
  else if (chars && fs.existsSync(chars)) tok = new CharTokenizer(JSON.parse(fs.readFileSync(chars, 'utf8')) as string[]);
  else tok = loadTokenizerFor(file);
  console.log(`model ${m.source}`);
}

const prompt = tok.encode(a.prompt, { bos: tok.bosId >= 0 });
const n = Number(a.n);
const maxNewTokens = Math.min(Number(a.tokens), model.cfg.maxSeqLen - prompt.length);
const t0 = performance.now();
const g = await generate(model, Array.from({ length: n }, () => prompt), {
  maxNewTokens,
  temperature: Number(a.temperature),
  topP: Number(a['top-p']),
  topK: Number(a['top-k']) || undefined,
  seed: Number(a.seed),
  stopTokens: tok.eosId >= 0 ? [tok.eosId] : [],
});
const secs = (performance.now() - t0) / 1000;
g.tokens.forEach((row, i) => {
  const text = tok.decode([...prompt, ...row]);
  const nll = -g.logprobs[i].reduce((s, x) => s + x, 0) / Math.max(1, row.length);
  console.log(`\n[${i + 1}] (${row.length} tokens, mean -log p ${nll.toFixed(2)})\n${text.trim()}`);
});
const total = g.tokens.reduce((s, r) => s + r.length, 0);
console.log(`\n${total} tokens in ${secs.toFixed(2)} s (${(total / secs).toFixed(0)} tokens/s, batch ${n}, temperature ${a.temperature}, top-p ${a['top-p']})`);
model.w.dispose();
process.exit(0);

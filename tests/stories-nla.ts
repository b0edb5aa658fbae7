// An untrained NLA on stories260K (AV = a copy of M, AR = blocks 0..3 with the identity head):
// what the save/load tests round-trip. Not a test file.
import * as path from 'node:path';
import type { Llama } from '../src/nn/llama.js';
import { Llama as LlamaModel } from '../src/nn/llama.js';
import { loadModel, loadTokenizerFor } from '../src/nn/load.js';
import { Reconstructor } from '../src/nla/ar.js';
import { Verbalizer } from '../src/nla/av.js';
import { NLA, type NlaMeta } from '../src/nla/nla.js';
import { DEFAULT_PROMPTS } from '../src/nla/prompts.js';
import { modelFile } from './helpers.js';

export async function untrainedStoriesNla(): Promise<{ nla: NLA; av: Verbalizer; ar: Reconstructor }> {
  const loaded = await loadModel(modelFile('stories260K.bin'));
  const M = loaded.model as Llama;
  const tok = loadTokenizerFor(modelFile('stories260K.bin'));
  const av = new Verbalizer(new LlamaModel(M.cfg, await M.w.clone()), tok, DEFAULT_PROMPTS, 10);
  const ar = await Reconstructor.fromModel(M, 3, tok, DEFAULT_PROMPTS);
  const meta: NlaMeta = {
    format: 'nla/1', model: { name: loaded.name, path: path.resolve(loaded.source), sha256: loaded.sha256, config: M.cfg }, tokenizer: 'tokenizer.bin', layer: 3, alpha: 10,
    variance: 0.77, mean: new Array(M.cfg.dim).fill(0), prompts: DEFAULT_PROMPTS, placeholderId: av.prompt.placeholderId, maxExplanationTokens: 24, created: new Date().toISOString(),
  };
  return { nla: new NLA(meta, av, ar, tok, M), av, ar };
}

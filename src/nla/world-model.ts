// world-M (issue 11): a small Llama trained from scratch on the known-answer world (world.ts),
// its recall-token accuracy against a control that has not seen the fact, and saving it as an
// ordinary model (llama2.c .bin beside tok512.bin, and a Hugging Face directory) that loadModel
// and therefore every other command reads as M.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../io/atomic-write.js';
import type { LlamaConfig } from '../io/config.js';
import { parseJson } from '../io/json.js';
import { writeLlama2c } from '../io/llama2c.js';
import type { Tokenizer } from '../io/tokenizer.js';
import { DataLoader, TokenDataset } from '../nn/data.js';
import { initLlama, llamaConfig } from '../nn/init.js';
import type { Llama } from '../nn/llama.js';
import { saveHf } from '../nn/load.js';
import { Trainer, type TrainLog } from '../nn/train.js';
import * as T from '../tensor/index.js';
import { rng as seeded } from '../util/rng.js';
import { FIELD_VALUES, type Field } from './corpus.js';
import { tokenizeWithOffsets } from './extract.js';
import { checkWorldOptions, controlStory, generateWorldStories, otherValue, RECALLED_FIELDS, worldStory, type WorldOptions, type WorldStory } from './world.js';

export interface WorldTrainOptions {
  /** Training stories (story i = worldStory(seed, i)). */
  stories: number;
  seed: number;
  dim: number;
  layers: number;
  heads: number;
  steps: number;
  batchSize: number;
  lr: number;
  world?: WorldOptions;
}

/**
 * Defaults measured on the 2-core lavapipe machine, shared with other jobs (README, "A known-answer
 * world"): 3 blocks of width 128. The world recalls every fact three times with one distractor
 * before the first recall: with one round of recall, recall tokens are ~4% of the loss and a 4x128
 * model still recalled only half the facts after 400 steps (pooled 0.64); with three rounds a
 * 2x64 model recalled 0.70 after 300 steps and 0.95 after 600.
 */
export const WORLD_DEFAULTS: WorldTrainOptions = { stories: 20000, seed: 0, dim: 128, layers: 3, heads: 4, steps: 400, batchSize: 8, lr: 8e-3, world: { rounds: 3, distractors: [1, 1], gap: [0, 0] } };

/** Held-out stories use this seed offset from the training seed (never the same stories). */
export const HELD_OUT_SEED_OFFSET = 1_000_003;

/** The world's documents as a token dataset; returns the longest story in tokens too. */
export function worldDataset(tok: Tokenizer, stories: WorldStory[]): { data: TokenDataset; maxLen: number } {
  const data = TokenDataset.fromText(stories.map((s) => s.text), tok);
  return { data, maxLen: Math.max(...data.docs.map((d) => d.length)) };
}

/** A fresh world-M config: tok512-sized vocabulary, context long enough for every story. */
export function worldConfig(o: Pick<WorldTrainOptions, 'dim' | 'layers' | 'heads'>, vocabSize: number, maxSeqLen: number): LlamaConfig {
  // nKvHeads = nHeads and no biases: llama2.c's format holds it exactly.
  return llamaConfig({ dim: o.dim, nLayers: o.layers, nHeads: o.heads, vocabSize, maxSeqLen, bosId: 1, eosId: 2 });
}

/** Train world-M from scratch. */
export async function trainWorldModel(tok: Tokenizer, o: WorldTrainOptions, onLog?: (m: TrainLog) => void): Promise<{ model: Llama; seconds: number; losses: { step: number; loss: number }[] }> {
  const { data, maxLen } = worldDataset(tok, generateWorldStories(o.stories, o.seed, o.world));
  // Context: the longest story, rounded up to 32 (a longer held-out story is truncated).
  const cfg = worldConfig(o, tok.vocabSize, 32 * Math.ceil((maxLen + 16) / 32));
  const model = await initLlama(cfg, o.seed);
  const loader = new DataLoader(data, { batchSize: o.batchSize, seqLen: maxLen - 1, seed: o.seed, mode: 'documents' });
  const tr = new Trainer(model, loader, { steps: o.steps, lr: o.lr, warmupSteps: Math.min(50, Math.floor(o.steps / 10)), logEvery: 10, onLog });
  try {
    const r = await tr.run();
    model.w.setTrainable(false);
    return { model, seconds: r.seconds, losses: r.losses };
  } finally {
    tr.dispose();
  }
}

/** Argmax next-token predictions of a model over whole documents (teacher forcing): preds[i][t] predicts ids[i][t+1]. */
export async function greedyPredictions(model: Llama, docs: number[][], batchSize = 16): Promise<Int32Array[]> {
  const V = model.cfg.vocabSize;
  const out: Int32Array[] = [];
  for (let i = 0; i < docs.length; i += batchSize) {
    const group = docs.slice(i, i + batchSize).map((d) => d.slice(0, model.cfg.maxSeqLen));
    const Tn = Math.max(...group.map((d) => d.length));
    const ids = new Int32Array(group.length * Tn);
    group.forEach((d, b) => ids.set(d, b * Tn));
    const logits = T.noGrad(() => T.tidy(() => model.forward(T.Tensor.from(ids, [group.length, Tn], 'i32')).logits!));
    const l = (await logits.data()) as Float32Array;
    logits.dispose();
    group.forEach((d, b) => {
      const p = new Int32Array(d.length);
      for (let t = 0; t < d.length; t++) {
        const row = (b * Tn + t) * V;
        let best = 0;
        for (let v = 1; v < V; v++) if (l[row + v]! > l[row + best]!) best = v;
        p[t] = best;
      }
      out.push(p);
    });
  }
  return out;
}

/** Token indices of a document that cover characters [start, end) of its text. */
export function tokensOf(offsets: number[], textLength: number, start: number, end: number): number[] {
  const out: number[] = [];
  for (let i = 1; i < offsets.length; i++) {
    const s = offsets[i]!, e = offsets[i + 1] ?? textLength;
    if (s < end && e > start) out.push(i);
  }
  return out;
}

/** Whether the model predicted every token of a mention (teacher forcing, greedy). */
function predictedAll(ids: number[], preds: Int32Array, tokens: number[]): boolean {
  return tokens.length > 0 && tokens.every((i) => i - 1 < preds.length && preds[i - 1] === ids[i]);
}

export interface RecallReport {
  stories: number;
  /** Per recalled field: share of recall mentions whose every token the model predicted (greedy). */
  recall: Record<string, { acc: number; n: number }>;
  /**
   * The first recall of each field, in the story (`seen`) and in its control, where the earlier
   * mentions carried another value so the model has not seen the fact (`control`: share where it
   * still predicted the true value; chance = 1/values). `follows`: share of controls where it
   * predicted the other value instead (it reads the fact from the context).
   */
  first: Record<string, { seen: number; control: number; follows: number; chance: number; n: number }>;
  /** Recall accuracy pooled over fields (all recall mentions). */
  pooled: number;
  /** First-recall accuracy pooled over fields: seen and control. */
  seen: number;
  control: number;
}

/** Recall-token accuracy of a model on held-out stories (story i of `seed`), with controls. */
export async function recallReport(model: Llama, tok: Tokenizer, seed: number, n: number, world: WorldOptions = {}, onProgress?: (done: number, total: number) => void): Promise<RecallReport> {
  const rand = seeded(seed + 19);
  const docs: number[][] = [];
  interface Job { doc: number; tokens: number[]; field: Field; kind: 'all' | 'seen' | 'control'; other?: { pos: number; id: number } }
  const jobs: Job[] = [];
  const add = (s: WorldStory) => {
    const { ids, offsets } = tokenizeWithOffsets(tok, s.text);
    docs.push(ids);
    return { doc: docs.length - 1, at: (m: { start: number; end: number }) => tokensOf(offsets, s.text.length, m.start, m.end) };
  };
  for (let i = 0; i < n; i++) {
    const story = worldStory(seed, i, world);
    const base = add(story);
    for (const m of story.mentions) if (m.recall) jobs.push({ doc: base.doc, tokens: base.at(m), field: m.field, kind: 'all' });
    for (const f of RECALLED_FIELDS) {
      const other = otherValue(f, story.latents[f], rand);
      const { control, recall } = controlStory(seed, i, f, other, world);
      jobs.push({ doc: base.doc, tokens: base.at(story.mentions[recall]!), field: f, kind: 'seen' });
      const c = add(control);
      // Where the recall's first token is, and what it would be if the model wrote the other value.
      const m = control.mentions[recall]!;
      const swapped = control.text.slice(0, m.start) + other + control.text.slice(m.end);
      const sw = tokenizeWithOffsets(tok, swapped);
      const pos = tokensOf(sw.offsets, swapped.length, m.start, m.start + other.length)[0]!;
      jobs.push({ doc: c.doc, tokens: c.at(m), field: f, kind: 'control', other: { pos, id: sw.ids[pos]! } });
    }
  }
  const preds: Int32Array[] = [];
  const bs = 16;
  for (let i = 0; i < docs.length; i += bs) {
    preds.push(...(await greedyPredictions(model, docs.slice(i, i + bs), bs)));
    onProgress?.(Math.min(i + bs, docs.length), docs.length);
  }
  const all: Record<string, { hit: number; n: number }> = {};
  const first: Record<string, { seen: number; control: number; follows: number; n: number }> = {};
  for (const j of jobs) {
    const hit = predictedAll(docs[j.doc]!, preds[j.doc]!, j.tokens);
    if (j.kind === 'all') {
      const a = (all[j.field] ??= { hit: 0, n: 0 });
      a.n++;
      if (hit) a.hit++;
      continue;
    }
    const r = (first[j.field] ??= { seen: 0, control: 0, follows: 0, n: 0 });
    if (j.kind === 'seen') {
      r.n++;
      if (hit) r.seen++;
    } else {
      if (hit) r.control++;
      const o = j.other!;
      if (preds[j.doc]![o.pos - 1] === o.id && o.id !== docs[j.doc]![o.pos]) r.follows++;
    }
  }
  const recall = Object.fromEntries(Object.entries(all).map(([f, a]) => [f, { acc: a.hit / a.n, n: a.n }]));
  const firstOut = Object.fromEntries(Object.entries(first).map(([f, r]) => [f, { seen: r.seen / r.n, control: r.control / r.n, follows: r.follows / r.n, chance: 1 / FIELD_VALUES[f as Field].length, n: r.n }]));
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const firsts = Object.values(first);
  return {
    stories: n,
    recall,
    first: firstOut,
    pooled: sum(Object.values(all).map((a) => a.hit)) / sum(Object.values(all).map((a) => a.n)),
    seen: sum(firsts.map((r) => r.seen)) / sum(firsts.map((r) => r.n)),
    control: sum(firsts.map((r) => r.control)) / sum(firsts.map((r) => r.n)),
  };
}

/**
 * The world a saved world-M was trained on (DIR/world.json "train.world", beside the .bin or
 * above the hf directory), so probes and extraction cut the same kind of story; {} if none.
 */
export function worldOptionsOf(modelPath: string): WorldOptions {
  const dir = fs.existsSync(modelPath) && fs.statSync(modelPath).isDirectory() ? modelPath : path.dirname(modelPath);
  for (const f of [path.join(dir, WORLD_FILES.report), path.join(dir, '..', WORLD_FILES.report)]) {
    if (fs.existsSync(f)) return readWorldReport(f).world;
  }
  return {};
}

/** What nla reads back from world.json: the world it was trained on and its recall scores. */
export interface WorldReport {
  world: WorldOptions;
  recall: { pooled?: number; seen?: number; control?: number };
}

/** world.json nla wrote is a few KB (settings, losses, scores); a file far larger is not one. */
const MAX_REPORT_BYTES = 16 << 20;

/** Read and check world.json; errors name the file and the field. */
export function readWorldReport(file: string): WorldReport {
  const size = fs.statSync(file).size;
  if (size > MAX_REPORT_BYTES) throw new Error(`${file}: ${size.toLocaleString('en-US')} bytes, more than the ${MAX_REPORT_BYTES.toLocaleString('en-US')} a world.json can be`);
  const j = parseJson(fs.readFileSync(file, 'utf8'), file);
  if (j === null || typeof j !== 'object' || Array.isArray(j)) throw new Error(`${file}: expected a JSON object`);
  const train = (j as { train?: unknown }).train;
  if (train !== undefined && (train === null || typeof train !== 'object' || Array.isArray(train))) throw new Error(`${file}: field "train": expected an object`);
  const world = checkWorldOptions((train as { world?: unknown } | undefined)?.world, file, 'train.world');
  const r = (j as { recall?: unknown }).recall;
  if (r !== undefined && (r === null || typeof r !== 'object' || Array.isArray(r))) throw new Error(`${file}: field "recall": expected an object`);
  const recall: WorldReport['recall'] = {};
  for (const k of ['pooled', 'seen', 'control'] as const) {
    const v = (r as Record<string, unknown> | undefined)?.[k];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new Error(`${file}: field "recall.${k}": expected an accuracy in [0, 1], found ${JSON.stringify(v)?.slice(0, 40)}`);
    recall[k] = v;
  }
  return { world, recall };
}

/** The files world-M is saved as, inside its directory. */
export const WORLD_FILES = { bin: 'world-M.bin', tokenizer: 'tok512.bin', hf: 'hf', report: 'world.json' } as const;

/**
 * Save world-M as an ordinary model: DIR/world-M.bin (llama2.c v0) with the tokenizer beside it
 * (so `--model DIR/world-M.bin` finds it), DIR/hf/ (config.json + model.safetensors, and the
 * tokenizer: pass `--tokenizer DIR/hf/tok512.bin`), and DIR/world.json (how it was trained, what
 * it scored).
 */
export async function saveWorldModel(model: Llama, tokenizerFile: string, dir: string, report: Record<string, unknown>): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  writeLlama2c(path.join(dir, WORLD_FILES.bin), model.cfg as LlamaConfig, await model.w.toHost());
  fs.copyFileSync(tokenizerFile, path.join(dir, WORLD_FILES.tokenizer));
  await saveHf(model, path.join(dir, WORLD_FILES.hf));
  fs.copyFileSync(tokenizerFile, path.join(dir, WORLD_FILES.hf, WORLD_FILES.tokenizer));
  // Whole or absent: a run killed mid-write must not leave a world.json that reads as cut.
  writeFileAtomic(path.join(dir, WORLD_FILES.report), [new TextEncoder().encode(JSON.stringify(report, null, 2) + '\n')]);
}

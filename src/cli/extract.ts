// `nla extract`: run M over documents and store layer-K activations with their metadata
// (summary, split, ground truth) as an activation store directory.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import type { Tokenizer } from '../io/tokenizer.js';
import { readSummariesJsonl, readTextCorpus } from '../nla/datagen.js';
import { knownAnswerItems, SPLITS } from '../nla/dataset.js';
import { extractToStore, type ExtractItem } from '../nla/extract.js';
import { rng, shuffled } from '../util/rng.js';
import { CHAIN_HELP } from './nla-dir.js';
import { checkLayer, loadStudied, Opts, progressBar, withConfig } from './options.js';

export function registerExtract(program: Command): void {
  const cmd = program
    .command('extract')
    .description('extract layer-K activations of a corpus into an activation store directory (step 1 of the chain)')
    .option('--model <path>', 'the studied model M: llama2.c .bin or HF directory (required)')
    .option('--tokenizer <path>', 'tokenizer file (default: beside the model)')
    .option('--layer <k>', 'layer K = the output of block K (required)')
    .option('--out <dir>', 'the activation store directory to write (required)')
    .option('--corpus <file>', 'plain text (documents separated by blank lines) or JSONL {"text"}: activations at random cut positions, no summaries (RL / eval data)')
    .option('--summaries <file>', 'JSONL {"text","summary"} (from `nla datagen summarize`): the activation at the last token of each text, with its summary (SFT data)')
    .option('--stories <n>', 'built-in known-answer corpus (the default source): number of stories', '1200')
    .option('--cuts <n>', 'cut positions per story / document', '4')
    .option('--min-tokens <n>', 'cut only at token index >= this', '30')
    .option('--shares <list>', 'shares of documents for the splits av,ar,rl,eval', '0.35,0.35,0.15,0.15')
    .option('--seed <n>', 'seed of the corpus, cuts and splits', '0')
    .option('--dtype <type>', 'storage type of the rows: f32 or f16', 'f32')
    .option('--force', 'replace an existing store in --out')
    .addHelpText(
      'after',
      `
Reads M and a corpus: by default the built-in known-answer stories (each cut carries a summary
and the facts read so far, so eval can score explanations against the truth); or --corpus, or
--summaries. Writes --out/manifest.json (model, layer, count, norm quantiles, mean, Var) and
shards of raw rows plus msgpack metadata. Documents are split between av (AV SFT), ar (AR SFT),
rl and eval so that no document is seen by two stages; a JSONL id "DOC:POS" (as datagen writes)
keeps the cuts of one document together.

Example:
  nla extract --model stories260K.bin --layer 3 --out runs/x/activations --stories 400
${CHAIN_HELP}`,
    );
  withConfig(cmd).action(async (_: unknown, c: Command) => {
    const o = Opts.of(c);
    const out = o.need('out', '<dir>');
    const corpus = o.str('corpus'), summaries = o.str('summaries');
    if (corpus && summaries) throw new Error('give one of --corpus and --summaries (or neither for the built-in stories)');
    for (const [flag, f] of [['--corpus', corpus], ['--summaries', summaries]] as const) if (f && !fs.existsSync(f)) throw new Error(`${flag} ${f}: file not found`);
    const shares = o.need('shares').split(',').map(Number);
    if (shares.length !== 4 || shares.some((x) => !(x >= 0)) || Math.abs(shares.reduce((a, b) => a + b, 0) - 1) > 1e-6) throw new Error(`--shares ${o.str('shares')}: expected four non-negative numbers summing to 1 (av,ar,rl,eval)`);
    const dtype = o.oneOf('dtype', ['f32', 'f16'] as const);
    prepareOut(out, o.bool('force'));

    const { loaded, M, tok } = await loadStudied(o.need('model'), o.str('tokenizer'));
    const layer = o.int('layer');
    checkLayer(layer, M.cfg.nLayers, loaded.name);
    const seed = o.int('seed'), cuts = o.int('cuts', 1), minTokens = o.int('minTokens', 0);
    let items: ExtractItem[];
    let source: string;
    if (summaries) {
      items = summaryItems(summaries, tok, M.cfg.maxSeqLen, shares, seed);
      source = summaries;
    } else if (corpus) {
      items = corpusItems(readTextCorpus(corpus), tok, M.cfg.maxSeqLen, { cuts, minTokens, shares, seed });
      source = corpus;
    } else {
      items = knownAnswerItems(tok, { stories: o.int('stories', 1), cutsPerStory: cuts, minTokens, seed, shares: shares as [number, number, number, number] });
      source = 'the built-in known-answer stories';
    }
    if (!items.length) throw new Error(`no activations to extract from ${source} (documents shorter than --min-tokens ${minTokens}?)`);
    const rows = items.reduce((a, it) => a + it.positions.length, 0);
    console.error(`nla: ${rows} activations from ${items.length} documents of ${source}, layer ${layer} of ${loaded.name}`);
    const bar = progressBar('extract', items.length);
    const m = await extractToStore(M, layer, items, out, { modelName: loaded.name, sha256: loaded.sha256, dtype }, (done) => bar.update(done));
    bar.done();
    const counts = SPLITS.map((s) => `${s} ${items.reduce((a, it) => a + it.meta.filter((x) => x.split === s).length, 0)}`).join(', ');
    console.log(`wrote ${out}: ${m.count} activations (${counts}), d = ${m.d}, |h| q25/q50/q75/q95 = ${['q25', 'q50', 'q75', 'q95'].map((q) => m.norms[q].toFixed(2)).join('/')}, Var of normalised h = ${m.variance.toFixed(3)}`);
    M.w.dispose();
  });
}

function prepareOut(out: string, force: boolean): void {
  if (!fs.existsSync(path.join(out, 'manifest.json'))) return;
  if (!force) throw new Error(`${out} already holds an activation store; pass --force to replace it or choose another --out`);
  for (const f of fs.readdirSync(out)) if (f === 'manifest.json' || /^shard-\d+\.(f16|f32|meta\.msgpack)$/.test(f)) fs.rmSync(path.join(out, f));
}

/** Split of each document: a seeded permutation cut at the cumulative shares. */
function splitOf(docs: number, shares: number[], seed: number): string[] {
  const perm = shuffled(rng(seed + 7), [...Array(docs).keys()]);
  const bounds = shares.map((_, i) => Math.round(docs * shares.slice(0, i + 1).reduce((a, b) => a + b, 0)));
  const out = new Array<string>(docs);
  perm.forEach((doc, rank) => (out[doc] = SPLITS[bounds.findIndex((b) => rank < b)] ?? 'eval'));
  return out;
}

function corpusItems(docs: string[], tok: Tokenizer, maxLen: number, o: { cuts: number; minTokens: number; shares: number[]; seed: number }): ExtractItem[] {
  const split = splitOf(docs.length, o.shares, o.seed);
  const rand = rng(o.seed + 1);
  const items: ExtractItem[] = [];
  docs.forEach((text, doc) => {
    const ids = tok.encode(text, { bos: true }).slice(0, maxLen);
    const candidates = ids.length - o.minTokens;
    if (candidates <= 0) return;
    const chosen = new Set<number>();
    while (chosen.size < Math.min(o.cuts, candidates)) chosen.add(o.minTokens + Math.floor(rand() * candidates));
    const positions = [...chosen].sort((a, b) => a - b);
    items.push({ ids, positions, meta: positions.map(() => ({ doc, split: split[doc] })) });
  });
  return items;
}

function summaryItems(file: string, tok: Tokenizer, maxLen: number, shares: number[], seed: number): ExtractItem[] {
  const rows = readSummariesJsonl(file);
  if (!rows.length) throw new Error(`${file}: no lines`);
  // Cuts of one document ("DOC:POS" ids) share its split; other lines are documents of their own.
  const keys = rows.map((r, i) => (typeof r.id === 'string' && /^[^:]+:\d+$/.test(r.id) ? r.id.split(':')[0] : `#${i}`));
  const docIds = new Map<string, number>();
  for (const k of keys) if (!docIds.has(k)) docIds.set(k, docIds.size);
  const split = splitOf(docIds.size, shares, seed);
  const items: ExtractItem[] = [];
  let skipped = 0;
  rows.forEach((r, i) => {
    const ids = tok.encode(r.text, { bos: true });
    if (ids.length > maxLen || ids.length < 2) return void skipped++;
    const doc = docIds.get(keys[i])!;
    items.push({ ids, positions: [ids.length - 1], meta: [{ doc, summary: r.summary, split: split[doc] }] });
  });
  if (skipped) console.error(`nla: skipped ${skipped} lines of ${file} (empty, or longer than the model's context of ${maxLen} tokens)`);
  return items;
}

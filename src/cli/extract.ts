// `nla extract`: run M over documents and store layer-K activations with their metadata
// (summary, split, ground truth) as an activation store directory.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import type { Tokenizer } from '../io/tokenizer.js';
import { readSummariesJsonl, readTextCorpus } from '../nla/datagen.js';
import { knownAnswerItems, SPLITS } from '../nla/dataset.js';
import { extractToStore, type ExtractItem } from '../nla/extract.js';
import { CUT_RULES, readJsonlDocs, readTextDocs, sampleModelText, splitByDoc, textCutItems, type CutRule, type TextDoc } from '../nla/model-text.js';
import { ROW_SOURCES, rowSource, ActivationStore, type SourceMix } from '../nla/store.js';
import { datasetSidecarPath, writeBaseDataset, type DatasetExtraction } from '../nla/reference-dataset.js';
import { ownReferenceTemplates, ownReferenceTokens } from '../nla/reference-export-own.js';
import { writeReferenceStages, type StageRow } from '../nla/reference-stages.js';
import { avPrompt, DEFAULT_PROMPTS } from '../nla/prompts.js';
import { Llama2cTokenizer } from '../io/tokenizer-llama2c.js';
import type { Llama } from '../nn/llama.js';
import { randomCuts } from '../nla/corpus.js';
import { rng } from '../util/rng.js';
import { CHAIN_HELP } from './nla-dir.js';
import { SUMMARY_FLAGS, parseSummaryFlags } from './summary-flags.js';
import type { SummaryFormat } from '../nla/corpus.js';
import { checkLayer, loadStudied, Opts, progressBar, WEIGHTS_DTYPE_HELP, weightsDtype, withConfig } from './options.js';

export function registerExtract(program: Command): void {
  const cmd = program
    .command('extract')
    .description('extract layer-K activations of a corpus into an activation store directory (step 1 of the chain)')
    .option('--model <path>', 'the studied model M: llama2.c .bin or HF directory (required)')
    .option('--weights-dtype <d>', WEIGHTS_DTYPE_HELP, 'auto')
    .option('--tokenizer <path>', 'tokenizer file (default: beside the model)')
    .option('--layer <k>', 'layer K = the output of block K (required)')
    .option('--out <dir>', 'the activation store directory to write (required)')
    .option('--corpus <file>', 'plain text (documents separated by blank lines) or JSONL {"text"}: activations at random cut positions, no summaries (RL / eval data)')
    .option('--summaries <file>', 'JSONL {"text","summary"} (from `nla datagen summarize`): the activation at the last token of each text, with its summary (SFT data)')
    .option('--stories <n>', 'built-in known-answer corpus (the default source): number of stories (default 1200; 0 when --sample, --text or --jsonl is given)')
    .option('--sample <n>', 'also sample N documents from M itself (BOS, temperature 1, until EOS or --sample-tokens) and cut them at random positions; seeds recorded')
    .option('--sample-seed <s>', 'base sampling seed: document i of --sample is sampled with seed S + i', '0')
    .option('--sample-tokens <n>', 'length cap of a sampled document in tokens after BOS (default min(256, context - 1))')
    .option('--sample-temperature <t>', 'temperature of --sample (1 = the model\'s own distribution)', '1')
    .option('--text <file>', 'also cut documents of a UTF-8 text file, documents separated by blank lines (a document may span lines)')
    .option('--jsonl <file>', 'also cut documents of a JSONL file, one object per line with the text in --jsonl-field')
    .option('--jsonl-field <name>', 'field of --jsonl holding the document', 'text')
    .option('--cuts <n>', 'cut positions per story / document', '4')
    .option('--cut-rule <rule>', 'where the training cuts of --sample, --text and --jsonl documents fall: random (uniform over tokens >= --text-min-tokens) or balanced (each cut drawn in proportion to 1/(1+n), n the rows of its split so far quoting the word it would quote: the rows cover more words); eval documents are cut at random either way', 'random')
    .option(...SUMMARY_FLAGS[0])
    .option(...SUMMARY_FLAGS[1])
    .option(...SUMMARY_FLAGS[2])
    .option('--min-tokens <n>', 'cut the known-answer stories and --corpus documents only at token index >= this', '30')
    .option('--text-min-tokens <n>', 'cut --sample, --text and --jsonl documents only at token index >= this (1: from the first token after BOS, so explanations of a text\'s first words are trained too)', '1')
    .option('--shares <list>', 'shares of documents for the splits av,ar,rl,eval', '0.35,0.35,0.15,0.15')
    .option('--seed <n>', 'seed of the corpus, cuts and splits', '0')
    .option('--dtype <type>', 'storage type of the rows: f32 or f16', 'f32')
    .option('--format <name>', 'nla (the store only) or reference (also, in --out, base.parquet and, when rows have summaries and the tokenizer is llama2.c\'s, splits/*_raw, splits/*_explained, av_sft, ar_sft, rl and *_shuf parquet files, each with its nla_meta.yaml sidecar, in the reference implementation\'s dataset layout; needs --dtype f32)', 'nla')
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

Mixing sources: --sample N (text M writes itself), --text FILE and --jsonl FILE add documents
beside the known-answer stories (--stories N; 0 unless given when one of them is). The mix is
stated in document counts per source (e.g. --stories 600 --sample 600 is half and half); each
source's documents are split av/ar/rl/eval by the --shares and cut --cuts times at random tokens
(index >= --text-min-tokens, the stories >= --min-tokens; --cut-rule balanced spreads the training documents' cuts over more words). Rows of these sources carry a summary of the text before the cut (the
last words read, the word coming next, names/places/objects seen), their source, and for
samples of M the sampling seed, which \`nla eval --model-text\` keeps disjoint. The manifest's
"sources" records documents asked / used, rows and proportions per source.

Examples:
  nla extract --model stories260K.bin --layer 3 --out runs/x/activations --stories 400
  nla extract --model stories260K.bin --layer 3 --out runs/x/mixed --stories 300 --sample 300 --jsonl my.jsonl
${CHAIN_HELP}`,
    );
  withConfig(cmd).action(async (_: unknown, c: Command) => {
    const o = Opts.of(c);
    const out = o.need('out', '<dir>');
    const corpus = o.str('corpus'), summaries = o.str('summaries');
    if (corpus && summaries) throw new Error('give one of --corpus and --summaries (or neither for the built-in stories)');
    const textFile = o.str('text'), jsonlFile = o.str('jsonl');
    const sample = o.optNum('sample', { int: true, min: 0 }) ?? 0;
    const mixing = sample > 0 || !!textFile || !!jsonlFile;
    if (mixing && (corpus || summaries)) throw new Error(`--sample, --text and --jsonl mix with the known-answer stories; they do not combine with ${corpus ? '--corpus' : '--summaries'} (use --text or --jsonl for your corpus)`);
    // Read the files before loading the model: a bad line fails fast, naming file:line.
    const textDocs = textFile ? readTextDocs(textFile) : [];
    const jsonlDocs = jsonlFile ? readJsonlDocs(jsonlFile, o.need('jsonlField')) : [];
    for (const [flag, f] of [['--corpus', corpus], ['--summaries', summaries]] as const) if (f && !fs.existsSync(f)) throw new Error(`${flag} ${f}: file not found`);
    const shares = o.need('shares').split(',').map(Number);
    if (shares.length !== 4 || shares.some((x) => !(x >= 0)) || Math.abs(shares.reduce((a, b) => a + b, 0) - 1) > 1e-6) throw new Error(`--shares ${o.str('shares')}: expected four non-negative numbers summing to 1 (av,ar,rl,eval)`);
    const dtype = o.oneOf('dtype', ['f32', 'f16'] as const);
    const format = o.oneOf('format', ['nla', 'reference'] as const);
    // The reference stores raw fp32 vectors, never fp16 (stage0_extract.py).
    if (format === 'reference' && dtype !== 'f32') throw new Error('--format reference writes raw fp32 vectors; drop --dtype f16');
    prepareOut(out, o.bool('force'));

    const { loaded, M, tok } = await loadStudied(o.need('model'), o.str('tokenizer'), { dtype: weightsDtype(o) });
    const layer = o.int('layer');
    checkLayer(layer, M.cfg.nLayers, loaded.name);
    const seed = o.int('seed'), cuts = o.int('cuts', 1), minTokens = o.int('minTokens', 0), textMinTokens = o.int('textMinTokens', 1);
    const cutRule = o.oneOf('cutRule', CUT_RULES);
    if (cutRule !== 'random' && !mixing) throw new Error(`--cut-rule ${cutRule} places the cuts of --sample, --text and --jsonl documents; give one of them (the known-answer stories and --corpus are cut at random)`);
    const summary = parseSummaryFlags({ quote: o.str('quote'), quoteWords: o.str('quoteWords'), factsWindow: o.str('factsWindow') }, 'nla extract');
    let items: ExtractItem[];
    let source: string;
    let sources: SourceMix | undefined;
    if (mixing) {
      const stories = o.optNum('stories', { int: true, min: 0 }) ?? 0;
      const mixed = await mixedItems(M, tok, {
        stories, sample, textDocs, jsonlDocs, cuts, cutRule, minTokens, textMinTokens, seed, shares, summary,
        sampleSeed: o.int('sampleSeed', 0), sampleTokens: o.optNum('sampleTokens', { int: true, min: 1 }), temperature: o.num('sampleTemperature', { min: 0 }),
        files: { ...(textFile ? { text: textFile } : {}), ...(jsonlFile ? { jsonl: jsonlFile } : {}) },
      });
      items = mixed.items;
      sources = mixed.sources;
      source = `the mix ${ROW_SOURCES.filter((s) => sources!.asked[s]).map((s) => `${s} ${sources!.asked[s]} (${(100 * sources!.proportions[s]!).toFixed(0)}%)`).join(', ')}`;
    } else if (summaries) {
      items = summaryItems(summaries, tok, M.cfg.maxSeqLen, shares, seed);
      source = summaries;
    } else if (corpus) {
      items = corpusItems(readTextCorpus(corpus), tok, M.cfg.maxSeqLen, { cuts, minTokens, shares, seed, source: corpus.endsWith('.jsonl') ? 'jsonl' : 'text' });
      source = corpus;
    } else {
      items = knownAnswerItems(tok, { stories: o.optNum('stories', { int: true, min: 1 }) ?? 1200, cutsPerStory: cuts, minTokens, seed, shares: shares as [number, number, number, number], lastWordCount: summary.quoteWords, quote: summary.quote });
      source = 'the built-in known-answer stories';
    }
    if (!items.length) throw new Error(`no activations to extract from ${source} (documents shorter than --min-tokens ${minTokens}?)`);
    const rows = items.reduce((a, it) => a + it.positions.length, 0);
    console.error(`nla: ${rows} activations from ${items.length} documents of ${source}, layer ${layer} of ${loaded.name}`);
    const bar = progressBar('extract', items.length);
    const m = await extractToStore(M, layer, items, out, { modelName: loaded.name, sha256: loaded.sha256, dtype, sources, ...(corpus || summaries ? {} : { summary }) }, (done) => bar.update(done));
    bar.done();
    if (format === 'reference') {
      const file = path.join(out, 'base.parquet');
      const { rows: base, extraction } = writeReferenceBase(file, out, items, tok, { baseModel: loaded.name, layer, corpus: source, cuts });
      console.log(`wrote ${file} (${base.length} rows) and ${datasetSidecarPath(file)}`);
      writeStagesIfPossible(out, base, extraction, tok);
    }
    const counts = SPLITS.map((s) => `${s} ${items.reduce((a, it) => a + it.meta.filter((x) => x.split === s).length, 0)}`).join(', ');
    console.log(`wrote ${out}: ${m.count} activations (${counts}), d = ${m.d}, |h| q25/q50/q75/q95 = ${['q25', 'q50', 'q75', 'q95'].map((q) => m.norms[q].toFixed(2)).join('/')}, Var of normalised h = ${m.variance.toFixed(3)}`);
    if (sources) {
      console.log(`sources (documents asked / used, rows, share of documents asked):`);
      for (const s of ROW_SOURCES) if (sources.asked[s] !== undefined) console.log(`  ${s.padEnd(13)} ${String(sources.asked[s]).padStart(5)} / ${String(sources.docs[s] ?? 0).padStart(5)}  ${String(sources.rows[s] ?? 0).padStart(6)} rows  ${(100 * sources.proportions[s]!).toFixed(1)}%`);
      if (sources.model) console.log(`  samples of M: seeds ${sources.model.seedBase}..${sources.model.seedBase + sources.model.count - 1}, temperature ${sources.model.temperature}, up to ${sources.model.maxTokens} tokens`);
    }
    M.w.dispose();
  });
}

/** Known-answer stories, samples of M, text and JSONL documents: items with doc ids in that order, and the manifest's mix. */
async function mixedItems(
  M: Llama,
  tok: Tokenizer,
  o: { stories: number; sample: number; textDocs: string[]; jsonlDocs: string[]; cuts: number; cutRule: CutRule; minTokens: number; textMinTokens: number; seed: number; shares: number[]; summary: SummaryFormat; sampleSeed: number; sampleTokens?: number; temperature: number; files: SourceMix['files'] },
): Promise<{ items: ExtractItem[]; sources: SourceMix }> {
  const asked: SourceMix['asked'] = {};
  const all: ExtractItem[] = [];
  let docBase = 0;
  if (o.stories > 0) {
    asked['known-answer'] = o.stories;
    const ka = knownAnswerItems(tok, { stories: o.stories, cutsPerStory: o.cuts, minTokens: o.minTokens, seed: o.seed, shares: o.shares as [number, number, number, number], lastWordCount: o.summary.quoteWords, quote: o.summary.quote });
    for (const it of ka) it.meta = it.meta.map((m) => ({ ...m, source: 'known-answer' as const }));
    all.push(...ka);
    docBase = o.stories;
  }
  const add = (docs: TextDoc[], salt: number) => {
    all.push(...textCutItems(tok, docs, { cuts: o.cuts, minTokens: o.textMinTokens, rand: rng(o.seed + salt), docBase, splits: splitByDoc(docs.length, o.shares, o.seed + salt + 1), lastWordCount: o.summary.quoteWords, quote: o.summary.quote, factsWindow: o.summary.factsWindow, cutRule: o.cutRule }));
    docBase += docs.length;
  };
  let model: SourceMix['model'];
  if (o.sample > 0) {
    asked.model = o.sample;
    const maxTokens = o.sampleTokens ?? Math.min(256, M.cfg.maxSeqLen - 1);
    const bar = progressBar('sample', o.sample);
    const docs = await sampleModelText(M, tok, { docs: o.sample, seed: o.sampleSeed, maxTokens, temperature: o.temperature, onProgress: (done) => bar.update(done) });
    bar.done();
    model = { seedBase: o.sampleSeed, count: o.sample, temperature: o.temperature, maxTokens };
    add(docs.map((d) => ({ ids: d.ids, source: 'model', seed: d.seed })), 11);
  }
  const encode = (t: string) => tok.encode(t, { bos: true }).slice(0, M.cfg.maxSeqLen);
  if (o.textDocs.length) {
    asked.text = o.textDocs.length;
    add(o.textDocs.map((t) => ({ ids: encode(t), source: 'text' })), 21);
  }
  if (o.jsonlDocs.length) {
    asked.jsonl = o.jsonlDocs.length;
    add(o.jsonlDocs.map((t) => ({ ids: encode(t), source: 'jsonl' })), 31);
  }
  const total = Object.values(asked).reduce((a, b) => a + b, 0);
  const proportions: SourceMix['proportions'] = {}, docs: SourceMix['docs'] = {}, rows: SourceMix['rows'] = {};
  for (const s of ROW_SOURCES) if (asked[s] !== undefined) (proportions[s] = asked[s]! / total), (docs[s] = 0), (rows[s] = 0);
  for (const it of all) {
    const s = rowSource(it.meta[0]);
    docs[s] = (docs[s] ?? 0) + 1;
    rows[s] = (rows[s] ?? 0) + it.positions.length;
  }
  return { items: all, sources: { asked, proportions, docs, rows, ...(model ? { model } : {}), ...(o.files && Object.keys(o.files).length ? { files: o.files } : {}), cuts: o.cuts, ...(o.cutRule !== 'random' ? { cutRule: o.cutRule } : {}), minTokens: o.minTokens, ...(o.textMinTokens !== o.minTokens ? { textMinTokens: o.textMinTokens } : {}) } };
}

/**
 * The store just written, as the reference's base dataset: one row per activation, in store
 * order (extractToStore writes items in order), with doc_id "{source}:{split}:{doc}",
 * n_raw_tokens = position + 1 and the text of those tokens (specials skipped).
 */
function writeReferenceBase(file: string, storeDir: string, items: ExtractItem[], tok: Tokenizer, o: { baseModel: string; layer: number; corpus: string; cuts: number }): { rows: StageRow[]; extraction: DatasetExtraction } {
  const store = ActivationStore.open(storeDir);
  const { h } = store.readAll();
  const d = store.manifest.d;
  const rows: StageRow[] = [];
  let docs = 0;
  for (const it of items) {
    docs++;
    it.positions.forEach((p, k) => {
      const m = it.meta[k];
      const r = rows.length;
      rows.push({ nRawTokens: p + 1, text: tok.decode(it.ids.slice(0, p + 1)), vector: h.slice(r * d, (r + 1) * d), layer: o.layer, docId: `${rowSource(m)}:${m.split ?? 'all'}:${m.doc}`, explanation: m.summary });
    });
  }
  const extraction: DatasetExtraction = { baseModel: o.baseModel, dModel: d, layerIndex: o.layer, corpus: o.corpus, corpusSlice: { start: 0, length: docs }, positionsPerDoc: o.cuts };
  writeBaseDataset(file, rows, extraction);
  return { rows, extraction };
}

/**
 * The stages after base (reference-stages.ts), with nla's default prompts as the sidecars'
 * templates and tokens: the contract an nla NLA exported with `nla export --format reference`
 * carries, so the two go together. Needs summaries (the warm-start explanations) and a
 * llama2.c tokenizer (the one nla can export as tokenizer.json); otherwise says why not.
 */
function writeStagesIfPossible(out: string, rows: StageRow[], e: DatasetExtraction, tok: Tokenizer): void {
  if (!(tok instanceof Llama2cTokenizer)) return void console.log('stages after base not written: their sidecars carry the injection token ids of an exported NLA, which nla writes only for llama2.c tokenizers');
  if (!rows.some((r) => r.explanation)) return void console.log('stages after base not written: no row has a summary (use the known-answer stories or --summaries)');
  const prompts = DEFAULT_PROMPTS;
  const written = writeReferenceStages(out, rows, e, { tokens: ownReferenceTokens(avPrompt(tok, prompts), prompts), templates: ownReferenceTemplates(prompts) });
  console.log(`wrote the reference's later stages (documents split by its random.Random(42) rule, 0.25/0.25/0.50): ${written.map((w) => `${w.file} (${w.rows})`).join(', ')}`);
}

function prepareOut(out: string, force: boolean): void {
  if (!fs.existsSync(path.join(out, 'manifest.json'))) return;
  if (!force) throw new Error(`${out} already holds an activation store; pass --force to replace it or choose another --out`);
  for (const f of fs.readdirSync(out)) if (f === 'manifest.json' || /^shard-\d+\.(f16|f32|meta\.msgpack)$/.test(f)) fs.rmSync(path.join(out, f));
}

function corpusItems(docs: string[], tok: Tokenizer, maxLen: number, o: { cuts: number; minTokens: number; shares: number[]; seed: number; source: 'text' | 'jsonl' }): ExtractItem[] {
  const split = splitByDoc(docs.length, o.shares, o.seed + 7);
  const rand = rng(o.seed + 1);
  const items: ExtractItem[] = [];
  docs.forEach((text, doc) => {
    const ids = tok.encode(text, { bos: true }).slice(0, maxLen);
    const positions = randomCuts(ids.length, o.minTokens, o.cuts, rand);
    if (!positions.length) return;
    items.push({ ids, positions, meta: positions.map(() => ({ doc, split: split[doc], source: o.source })) });
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
  const split = splitByDoc(docIds.size, shares, seed + 7);
  const items: ExtractItem[] = [];
  let skipped = 0;
  rows.forEach((r, i) => {
    const ids = tok.encode(r.text, { bos: true });
    if (ids.length > maxLen || ids.length < 2) return void skipped++;
    const doc = docIds.get(keys[i])!;
    items.push({ ids, positions: [ids.length - 1], meta: [{ doc, summary: r.summary, split: split[doc], source: 'jsonl' }] });
  });
  if (skipped) console.error(`nla: skipped ${skipped} lines of ${file} (empty, or longer than the model's context of ${maxLen} tokens)`);
  return items;
}

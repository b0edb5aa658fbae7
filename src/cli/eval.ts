// `nla eval`: how well an NLA's explanations reconstruct held-out activations, beside the
// baselines that keep FVE honest.
import * as fs from 'node:fs';
import type { Command } from 'commander';
import { fveBigram, fveFloor, fveToken, type TokenRows } from '../nla/baselines.js';
import { FIELD_VALUES, fieldsChance, SCORED_FIELDS, type CutTruth } from '../nla/corpus.js';
import { evaluate, type EvalResult } from '../nla/evaluate.js';
import { evaluateModelText, summaryOptionsOf } from '../nla/model-text.js';
import { loadNLA, type NlaMeta } from '../nla/nla.js';
import { quoteAccuracy } from '../nla/quotes.js';
import type { Llama } from '../nn/llama.js';
import { loadModel, resolveModelPath } from '../nn/load.js';
import { rowsOf } from '../nla/sft.js';
import { ActivationStore, type RowMeta } from '../nla/store.js';
import { CHAIN_HELP, nlaSource, PAIR_OPTIONS, parseSource, storeRows, trainingStats } from './nla-dir.js';
import { Opts, progressBar, withConfig } from './options.js';
import { writeFileAtomic } from '../io/atomic-write.js';
import { formatInterval, pairedMeanChange, type Change, type Interval } from '../nla/doc-bootstrap.js';
import { modelTextIntervals, textScores, type TextIntervals } from '../nla/model-text-intervals.js';
import { quoteConfidenceAuc, quoteLogProb } from '../nla/quote-confidence.js';

const MEANING: Record<string, string> = {
  fve_greedy: 'FVE of greedy explanations (temperature 0)',
  fve_sampled: 'mean FVE of temperature-1 samples (what RL optimises)',
  fve_best_of: 'FVE of the best of k samples, picked by the AR',
  fve_shuffled_other_story: 'control: each explanation scored against a row of another story',
  fve_shuffled: 'each explanation scored against the next row (often the same story)',
  parse_rate: 'share of greedy outputs that closed the explanation and stopped',
  facts: 'share of known story facts (name, place, object, emotion) stated correctly',
  facts_chance: 'the same for uniform random guesses',
  fields: 'facts and the current word pooled (known-answer stores)',
  fields_chance: 'the same for uniform random guesses',
  fve_token: 'baseline: mean normalised h of the current token (fitted on the store\'s other splits)',
  fve_bigram: 'baseline: mean normalised h of the (previous, current) token pair',
  fve_floor: 'baseline: the best constant direction',
  fve_model_text: 'FVE of greedy explanations on held-out samples of M (--model-text; seeds no store row came from)',
  fve_model_text_token: 'token baseline (fitted on the store\'s av/ar/rl rows) on the same model-text rows',
  fve_model_text_bigram: 'bigram baseline on the model-text rows',
  fve_model_text_floor: 'floor baseline on the model-text rows',
  fve_gap: 'fve_greedy (the store\'s rows above) minus fve_model_text',
  model_text_parse_rate: 'share of greedy outputs on model text that closed and stopped',
  quote_exact: 'model text: share of explanations whose quote is exactly the text before the cut',
  quote_loose: 'the same, allowing the cut last word to differ',
  invented_name_rate: 'model text: share of explanations naming a character the text does not contain',
  quote_confidence_auc: 'model text: the AV\'s own probability of each quote tells the exact ones from the rest (AUC, 0.5 = blind)',
  fve_model_text_best_of: 'model text: FVE of the AR\'s best of --best-of k samples (a decoder that checks its answer against h through the AR)',
  quote_exact_best_of: 'model text: quote_exact of those best-of-k explanations',
  invented_name_rate_best_of: 'model text: invented_name_rate of those best-of-k explanations',
  model_text_probe_token: 'model text: a linear probe of h (fitted on the training rows) reads the current token',
  model_text_probe_prev_token: 'model text: the same for the previous token',
  model_text_probe_both: 'model text: both right (the reference for quoting the last words)',
};

export function registerEval(program: Command): void {
  const cmd = program
    .command('eval')
    .description('score an NLA on held-out activations: FVE of greedy / sampled / best-of-k explanations, the shuffled control and baselines (step 5 of the chain)')
    .option('--nla <dir>', 'NLA directory: nla\'s own (nla.json) or a reference pair (av/ and ar/ with nla_meta.yaml) (required, or --av/--ar)')
    .option(...PAIR_OPTIONS[0])
    .option(...PAIR_OPTIONS[1])
    .option('--store <dir>', 'activation store of the same model and layer (required)')
    .option('--split <name>', 'split to evaluate on: dev (tune on it), test (report it), eval (both), or all', 'dev')
    .option('--source <s>', 'which of the store\'s rows to score: known-answer, model, text, jsonl, all, or auto (the known-answer stories when the split has some, as the demo reports, else all); each source\'s held-out documents halve into dev and test apart', 'auto')
    .option('--rows <n>', 'evaluate at most N rows (0 = all)', '200')
    .option('--best-of <k>', 'also sample k explanations per row and keep the AR\'s best, on the store\'s rows and (with --model-text) on the model-text rows; reported beside greedy, since it checks against h through the AR (0 = skip)', '0')
    .option('--no-sampled', 'skip the temperature-1 evaluation')
    .option('--samples <k>', 'temperature-1 samples per row averaged into fve_sampled (one is noisy: ~0.07 between seeds on 200 rows)', '4')
    .option('--temperature <t>', 'temperature of the sampled and best-of passes; an RL\'d AV with a learned logit scale s (nla.json training.rl.logitScale) samples as its warm start did at t = s', '1')
    .option('--max-tokens <n>', 'explanation length cap (default: nla.json)')
    .option('--batch-size <n>', 'activations per generation batch (default: as many as keep one decode step\'s logits under 8 MiB, 32 to 1,024 rows over the samples per row)')
    .option('--seed <n>', 'sampling seed', '0')
    .option('--model-text <n>', 'also sample N fresh documents from M and score greedy explanations at their cuts (held-out model text; 0 = skip)', '0')
    .option('--model-text-seed <s>', 'base seed of --model-text (document i: S + i); must be disjoint from every seed in the store (default: above them all)')
    .option('--model-text-cuts <n>', 'cut positions per --model-text document (default: the store\'s --cuts, else 4)')
    .option('--model-text-tokens <n>', 'length cap of a --model-text document (default: the store\'s sampling cap, else min(256, context - 1); `nla demo` scores whole documents, to the context: 511 for stories260K)')
    .option('--model-text-min-tokens <n>', 'the first token index a --model-text cut may fall on (default: the store\'s, as its samples of M were cut; 30 for stores that record none)')
    .option('--model <path>', 'where M is, for --model-text (default: the path in nla.json; its sha256 must match)')
    .option('--against <dir>', 'another NLA of the same model and layer (nla\'s own directory), scored greedily on the same rows (the store\'s and the --model-text ones): its figures, and this NLA\'s minus its with 95% paired intervals over the documents')
    .option('--metrics <file>', 'append one {"stage":"eval",...} line to this JSONL file')
    .option('--json', 'print one JSON object')
    .option('--explanations <file>', 'also write every scored row as a JSON line: the store\'s rows (greedy explanation, FVE, quote_p: the AV\'s own probability of its opening quotation) and the --model-text rows (their text read, explanation, FVE, quote exact / loose, invented names, quote_p); rows to read by a rule of your own, not the ten in the JSON')
    .addHelpText(
      'after',
      `
FVE = 1 - MSE / Var on L2-normalised activations (Var from nla.json, the training rows'). Compare
it with the token / bigram baselines, not with 0: at stories260K layer 3 the current token alone
gives about 0.74. Baselines are fitted on the store's training rows (outside eval, and
outside --split). Choose settings on --split dev; score --split test only to report.

Held-out model text (--model-text N): samples N documents from M (BOS, temperature 1, until EOS)
with seeds S..S+N-1, which must be disjoint from every sampling seed recorded in the store (an
error otherwise; the default S is above them all), cuts them as \`nla extract --sample\` does,
and scores greedy explanations there. Beside it: the token / bigram / floor baselines fitted on
the store's training rows (av, ar, rl) and measured on those rows, the gap to fve_greedy on the
store's rows, and quote accuracy (does the explanation quote the text before the cut?).
Comparing two NLAs (--against DIR): both explain the same rows greedily; the changes (this NLA
minus DIR's: fve_greedy, fve_model_text, quote_exact) come with 95% intervals from a bootstrap
over the documents, each resample scoring both NLAs on the same rows. They measure what other
held-out documents would show, not what another training seed would. Both FVEs use this NLA's Var.
Reads --nla and --store; writes the table (or --json) to stdout, progress to stderr.

Example:
  nla eval --nla runs/x/nla --store runs/x/activations --rows 200 --best-of 4 --json
  nla eval --nla runs/x/nla --store runs/x/activations --split test --model-text 50
  nla eval --nla runs/x/nla --against runs/x/nla-sft --store runs/x/activations --model-text 100 --no-sampled
${CHAIN_HELP}`,
    );
  withConfig(cmd).action(async (_: unknown, c: Command) => {
    const o = Opts.of(c);
    const { source, label: dir } = nlaSource(o);
    const nla = await loadNLA(source, { model: o.str('model') });
    const meta = nla.meta, d = nla.ar.d;
    const store = ActivationStore.open(o.need('store', '<dir>'), { layer: meta.layer, d });
    // (A reference pair records no hash of M, only its Hub id: nothing to compare.)
    if (store.manifest.model.sha256 && meta.model.sha256 && store.manifest.model.sha256 !== meta.model.sha256) throw new Error(`${store.dir}: activations are from model "${store.manifest.model.name}", the NLA is for "${meta.model.name}"`);
    const split = o.need('split');
    const rows = storeRows(store, split, parseSource(o.str('source') ?? 'auto'));
    // A reference pair carries no FVE denominator: take Var over the store's training rows, as
    // the reference computes its baselines from training rows.
    if (meta.reference && !Number.isFinite(meta.variance)) meta.variance = trainingStats(rows.all, d).variance;
    const limit = o.int('rows', 0);
    const n = limit ? Math.min(limit, rows.meta.length) : rows.meta.length;
    const idx = [...Array(n).keys()];
    const h = rowsOf(rows.h, d, idx), evMeta = rows.meta.slice(0, n);
    const maxTokens = o.optNum('maxTokens', { int: true, min: 1 }) ?? meta.maxExplanationTokens;
    const bs = o.optNum('batchSize', { int: true, min: 1 }), seed = o.int('seed'), bestOf = o.int('bestOf', 0), samples = o.int('samples', 1);
    const temperature = o.num('temperature', { min: 0 });
    const passes: [string, { temperature: number; samples?: number; bestOf?: boolean }][] = [['greedy', { temperature: 0 }]];
    if (o.raw('sampled') !== false) passes.push(['sampled', { temperature, samples }]);
    if (bestOf > 0) passes.push(['best-of', { temperature, samples: bestOf, bestOf: true }]);
    const res: Record<string, EvalResult> = {};
    for (const [name, p] of passes) {
      const bar = progressBar(`eval ${name}`, n);
      res[name] = await evaluate(nla.av, nla.ar, h, evMeta, meta.variance, { ...p, maxTokens, seed, batchSize: bs, onProgress: (done) => bar.update(done) });
      bar.done();
    }
    // --against: another NLA of the same model and layer, greedy on the same rows.
    const againstDir = o.str('against');
    const other = againstDir ? await loadNLA(againstDir, { model: o.str('model') }) : undefined;
    if (other && (other.meta.layer !== meta.layer || (other.meta.model.sha256 && meta.model.sha256 && other.meta.model.sha256 !== meta.model.sha256))) {
      throw new Error(`--against ${againstDir}: an NLA of ${other.meta.model.name} at layer ${other.meta.layer}; this one reads ${meta.model.name} at layer ${meta.layer}`);
    }
    const greedyOf = async (x: typeof nla, hh: Float32Array, mm: RowMeta[], what: string) => {
      const bar = progressBar(what, mm.length);
      const r = await evaluate(x.av, x.ar, hh, mm, meta.variance, { temperature: 0, maxTokens, seed, batchSize: bs, onProgress: (done) => bar.update(done) });
      bar.done();
      return r;
    };
    const otherStore = other && (await greedyOf(other, h, evMeta, 'eval --against'));
    const rowFve = (r: EvalResult) => r.examples.map((e) => 1 - e.mse / meta.variance);
    const changes: Record<string, Change> = {};
    if (otherStore) changes.fve_greedy = pairedMeanChange(evMeta.map((m) => m.doc), rowFve(otherStore), rowFve(res.greedy), { seed: seed + 13 });
    // Baselines: fitted on the rows outside eval (dev and test are its halves) and outside --split.
    const trainIdx = rows.all.meta.map((m, i) => (split !== 'all' && m.split !== 'eval' && m.split !== split ? i : -1)).filter((i) => i >= 0);
    const tr = (ix: number[], hh: Float32Array, mm: RowMeta[]): TokenRows => ({ h: rowsOf(hh, d, ix), ids: Int32Array.from(ix.map((i) => mm[i].token)), prevIds: Int32Array.from(ix.map((i) => mm[i].prevToken)) });
    const test: TokenRows = { h, ids: Int32Array.from(evMeta.map((m) => m.token)), prevIds: Int32Array.from(evMeta.map((m) => m.prevToken)) };
    const result: Record<string, number | string | undefined> = {
      nla: dir,
      layer: meta.layer,
      source: rows.source,
      rows: n,
      fve_greedy: res.greedy.fve,
      ...(otherStore ? { against: againstDir, fve_greedy_against: otherStore.fve } : {}),
      fve_sampled: res.sampled?.fve,
      fve_best_of: res['best-of']?.fve,
      fve_shuffled_other_story: res.greedy.fveOtherStory,
      fve_shuffled: res.greedy.fveShuffled,
      parse_rate: res.greedy.parseRate,
      facts: res.greedy.facts,
      fields: res.greedy.fields,
      temperature,
    };
    // Per field: greedy accuracy, uniform chance and rows scored (the current word: among this split's words).
    let perField: Record<string, { stated: number; chance: number; n: number }> | undefined;
    if (evMeta.every((m) => m.truth)) {
      const truths = evMeta.map((m) => m.truth as CutTruth);
      result.facts_chance = fieldsChance(truths, SCORED_FIELDS, false).rate;
      result.fields_chance = fieldsChance(truths).rate;
      perField = {};
      for (const [f, c] of Object.entries(res.greedy.fieldCounts ?? {})) {
        const chance = f === 'currentWord' ? fieldsChance(truths, [], true).rate : 1 / FIELD_VALUES[f as keyof typeof FIELD_VALUES].length;
        perField[f] = { stated: c.correct / c.total, chance, n: c.total };
      }
    }
    if (trainIdx.length) {
      const train = tr(trainIdx, rows.all.h, rows.all.meta);
      result.fve_token = fveToken(train, test, d).fve;
      result.fve_bigram = fveBigram(train, test, d).fve;
      result.fve_floor = fveFloor(train, test, d).fve;
    }
    const modelTextDocs = o.int('modelText', 0);
    let modelTextExamples: { explanation: string | null; context: string; mse: number }[] | undefined;
    let modelTextCi: TextIntervals | undefined;
    const fve = (mse: number) => 1 - mse / meta.variance;
    // The AV's own probability of an explanation's opening quotation (null without one): how far to trust the quote.
    const quoteP = (e: { tokens: number[]; logprobs: number[] }) => {
      const l = quoteLogProb(nla.av, e.tokens, e.logprobs);
      return l === undefined ? null : Math.exp(l);
    };
    const rowLines = res.greedy.examples.map((e, i) => ({ kind: 'store', row: i, doc: evMeta[i]!.doc, pos: evMeta[i]!.pos, explanation: e.explanation ?? null, fve: fve(e.mse), quote_p: quoteP(e) }) as Record<string, unknown>);
    if (modelTextDocs > 0) {
      const M = await loadModelOf(nla.meta, o.str('model'));
      const src = store.manifest.sources;
      const bar = progressBar('model text', modelTextDocs);
      const mt = await evaluateModelText({ av: nla.av, ar: nla.ar, tok: nla.tok, layer: meta.layer, variance: meta.variance }, M, { h: rows.all.h, meta: rows.all.meta, dir: store.dir, sources: store.manifest.sources }, {
        docs: modelTextDocs,
        seed: o.optNum('modelTextSeed', { int: true, min: 0 }),
        cuts: o.optNum('modelTextCuts', { int: true, min: 1 }) ?? src?.cuts ?? 4,
        minTokens: o.optNum('modelTextMinTokens', { int: true, min: 1 }) ?? src?.textMinTokens ?? src?.minTokens ?? 30,
        docTokens: o.optNum('modelTextTokens', { int: true, min: 1 }) ?? src?.model?.maxTokens,
        maxTokens,
        batchSize: bs,
        evalSeed: seed,
        tokenProbes: true,
        ...(bestOf > 0 ? { bestOf: { samples: bestOf, temperature } } : {}),
        summary: summaryOptionsOf(store.manifest.summary),
        onProgress: (stage, done, total) => bar.update(stage === 'sample' ? done : modelTextDocs, stage === 'explain' ? `explained ${done}/${total}` : stage === 'best-of' ? `best of ${bestOf}: ${done}/${total}` : undefined),
      });
      bar.done();
      M.w.dispose();
      const q = quoteAccuracy(mt.greedy.examples.map((e) => e.explanation), mt.contexts);
      const qb = mt.bestOf && quoteAccuracy(mt.bestOf.examples.map((e) => e.explanation), mt.contexts);
      Object.assign(result, {
        fve_model_text: mt.greedy.fve,
        fve_model_text_token: mt.token,
        fve_model_text_bigram: mt.bigram,
        fve_model_text_floor: mt.floor,
        fve_gap: res.greedy.fve - mt.greedy.fve,
        model_text_parse_rate: mt.greedy.parseRate,
        model_text_rows: mt.rows,
        model_text_docs: mt.docs,
        model_text_seeds: `${mt.seeds.base}..${mt.seeds.base + mt.seeds.count - 1}`,
        quote_exact: q.quoteExact,
        quote_loose: q.quoteLoose,
        quote_confidence_auc: quoteConfidenceAuc(nla.av, mt.greedy.examples, q.rows.map((r) => r.exact)),
        invented_name_rate: q.inventedNameRate,
        fve_model_text_best_of: mt.bestOf?.fve,
        quote_exact_best_of: qb ? qb.quoteExact : undefined,
        invented_name_rate_best_of: qb ? qb.inventedNameRate : undefined,
        model_text_probe_token: mt.tokenProbes?.token,
        model_text_probe_prev_token: mt.tokenProbes?.prevToken,
        model_text_probe_both: mt.tokenProbes?.both,
      });
      modelTextCi = modelTextIntervals({
        ...textScores(mt, q, meta.variance),
        stories: { docs: evMeta.map((m) => m.doc), mse: res.greedy.examples.map((e) => e.mse) },
      }, { seed: seed + 11 });
      if (other) {
        const otherMt = await greedyOf(other, mt.h, mt.meta, 'model text --against');
        const q2 = quoteAccuracy(otherMt.examples.map((e) => e.explanation), mt.contexts);
        const mtDocs = mt.meta.map((m) => m.doc);
        Object.assign(result, { fve_model_text_against: otherMt.fve, quote_exact_against: q2.quoteExact });
        changes.fve_model_text = pairedMeanChange(mtDocs, rowFve(otherMt), rowFve(mt.greedy), { seed: seed + 14 });
        changes.quote_exact = pairedMeanChange(mtDocs, q2.rows.map((r) => +r.exact), q.rows.map((r) => +r.exact), { seed: seed + 15 });
      }
      mt.greedy.examples.forEach((e, i) => rowLines.push({ kind: 'model_text', row: i, seed: mt.meta[i]!.seed, pos: mt.meta[i]!.pos, context: mt.contexts[i], explanation: e.explanation ?? null, fve: fve(e.mse), quote_exact: q.rows[i]!.exact, quote_loose: q.rows[i]!.ignoringCutWord, invented: q.rows[i]!.inventedNames, quote_p: quoteP(e) }));
      modelTextExamples = mt.greedy.examples.slice(0, 10).map((e, i) => ({ explanation: e.explanation ?? null, context: mt.contexts[i], mse: e.mse }));
    }
    const rowsFile = o.str('explanations');
    if (rowsFile) writeFileAtomic(rowsFile, [new TextEncoder().encode(rowLines.map((l) => JSON.stringify(l) + '\n').join(''))]);
    const mf = o.str('metrics');
    if (mf) fs.appendFileSync(mf, JSON.stringify({ stage: 'eval', ...result }) + '\n');
    if (o.bool('json')) {
      console.log(JSON.stringify({ ...result, facts_fields: perField, examples: res.greedy.examples.slice(0, 10).map((e) => ({ explanation: e.explanation ?? null, mse: e.mse })), ...(modelTextCi ? { model_text_ci: modelTextCi } : {}), ...(other ? { changes } : {}), ...(modelTextExamples ? { model_text_examples: modelTextExamples } : {}) }));
    } else {
      console.log(`${dir}: layer ${meta.layer}, ${n} rows of split ${split} (source ${rows.source}), Var ${meta.variance.toFixed(3)}\n`);
      console.log('metric'.padEnd(24) + '  value  meaning');
      for (const [k, what] of Object.entries(MEANING)) {
        const v = result[k];
        if (typeof v === 'number') console.log(`${k.padEnd(24)}${v.toFixed(3).padStart(7)}  ${what}`);
      }
      if (modelTextCi) {
        const n = (k: string) => Number(result[k]);
        const line = (what: string, x: number, iv: Interval | undefined, signed = false) => console.log(`  ${what.padEnd(28)}${iv ? formatInterval(x, iv, signed) : '-'}`);
        console.log(`\nmodel text, 95% intervals over its ${result.model_text_docs} documents (a bootstrap; paired against the token lookup; the gap resamples each kind of text apart)`);
        line('fve_model_text', n('fve_model_text'), modelTextCi.fve);
        line('minus the token lookup', n('fve_model_text') - n('fve_model_text_token'), modelTextCi.fve_minus_token, true);
        line('fve_gap', n('fve_gap'), modelTextCi.gap, true);
        line('quote_exact', n('quote_exact'), modelTextCi.quote_exact);
        line('invented_name_rate', n('invented_name_rate'), modelTextCi.invented_name_rate);
      }
      if (other) {
        console.log(`\nthis NLA minus ${againstDir} (greedy, the same rows; 95% paired intervals over the documents):`);
        for (const [k, ch] of Object.entries(changes)) console.log(`  ${k.padEnd(28)}${formatInterval(ch.diff, ch.ci, true)}  (${Number(result[k === 'quote_exact' ? 'quote_exact_against' : `${k}_against`]).toFixed(3)} -> ${Number(result[k]).toFixed(3)})`);
      }
      if (perField) {
        console.log('\nper field (greedy): stated / chance (rows)');
        for (const [f, v] of Object.entries(perField)) console.log(`  ${f.padEnd(12)}${v.stated.toFixed(3).padStart(7)} / ${v.chance.toFixed(3)} (${v.n})`);
      }
      console.log('\nexamples (greedy):');
      res.greedy.examples.slice(0, 5).forEach((e, i) => console.log(`  ${evMeta[i].truth ? `[${evMeta[i].truth!.currentWord}] ` : ''}${e.explanation ?? '(unparseable)'}  (mse ${e.mse.toFixed(3)})`));
      if (modelTextExamples) {
        console.log(`\nmodel text (${result.model_text_rows} rows of ${result.model_text_docs} samples, seeds ${result.model_text_seeds}), greedy: ...end of context -> explanation`);
        modelTextExamples.slice(0, 5).forEach((e) => console.log(`  ...${JSON.stringify(e.context.slice(-40))} -> ${e.explanation ?? '(unparseable)'}  (mse ${e.mse.toFixed(3)})`));
      }
    }
    nla.dispose();
    other?.dispose();
  });
}

/** The NLA's studied model M (for --model-text): from --model or nla.json's path, checked by sha256. */
async function loadModelOf(meta: NlaMeta, override?: string): Promise<Llama> {
  if (!override && !meta.model.path) throw new Error(`this NLA records no local path for its model (${meta.model.name}); pass --model <dir>`);
  const loaded = await loadModel(resolveModelPath(override ?? meta.model.path));
  if (meta.model.sha256 && loaded.sha256 !== meta.model.sha256) throw new Error(`${loaded.source}: not the model the NLA was trained on (sha256 ${loaded.sha256.slice(0, 12)}…, nla.json says ${meta.model.sha256.slice(0, 12)}…); pass --model`);
  return loaded.model as Llama;
}

// `nla demo`: the whole NLA pipeline on stories260K with the built-in known-answer corpus.
import type { Command } from 'commander';
import { SUMMARY_FLAGS, parseSummaryFlags } from './summary-flags.js';
import { DEMO_DEFAULTS, OPENING_BELOW, runDemo, type DemoResult } from '../nla/demo.js';
import { findModelFile } from '../io/model-files.js';
import { demoWorld, WORLD_MODEL_CACHE } from './demo-world.js';
import { WORLD_DEMO_DEFAULTS } from '../nla/demo-world.js';
import { FIELDS, parseFields } from '../nla/corpus.js';
import { COMPACT_PROMPTS, DEFAULT_PROMPTS } from '../nla/prompts.js';
import { CUT_RULES } from '../nla/model-text.js';
import { formatInterval, type Interval } from '../nla/doc-bootstrap.js';

const EXPLAIN: [keyof DemoResult, string][] = [
  ['fve_sft', 'FVE of greedy explanations after the warm start (test rows)'],
  ['fve_rl', 'FVE of greedy explanations after RL'],
  ['fve_sampled_sft', 'mean FVE of temperature-1 samples after the warm start (what GRPO optimises)'],
  ['fve_sampled_rl_same_t', 'the same after RL at the same temperature (learned scale divided out): the like-for-like figure'],
  ['fve_sampled_rl', 'the same after RL with the learned scale (temperature-1 samples of the saved AV)'],
  ['gain_sampled_same_t', 'fve_sampled_rl_same_t - fve_sampled_sft: what RL changed at equal temperature'],
  ['gain_sampled', 'fve_sampled_rl - fve_sampled_sft: that plus the learned temperature'],
  ['fve_shuffled_other_story', 'control: each explanation scored against a row of another story'],
  ['fve_shuffled', 'each explanation against the next row, often a cut of the same story (old control)'],
  ['fve_token', 'baseline: mean normalised h of the current token (lookup table)'],
  ['fve_bigram', 'baseline: mean normalised h of the (previous, current) token pair'],
  ['fve_floor', 'baseline: the best constant direction'],
  ['fve_ar_true_summary', 'the AR reading the true summaries of the same rows: its ceiling, apart from the AV'],
  ['facts_sft', 'share of known story facts (name, place, object, emotion) stated correctly, after warm start'],
  ['facts_rl', 'the same after RL'],
  ['facts_chance', 'the same for uniform random guesses'],
  ['facts_probe', 'a linear probe per fact on the activation itself (trained on the training rows)'],
  ['fields_sft', 'facts and the current word pooled, after warm start (the current word dominates it)'],
  ['fields_rl', 'the same after RL'],
  ['fields_chance', 'the same for uniform random guesses'],
  ['fields_probe', 'mean of the probes of the facts and the current word'],
  ['rl_logit_scale', 'inverse temperature RL learned on the AV logits (folded into its final norm)'],
  ['model_text_rows', 'held-out samples of M: rows scored below (fresh seeds, disjoint from the training samples\' seeds)'],
  ['fve_model_text_sft', 'FVE of greedy explanations on those rows after the warm start'],
  ['fve_model_text', 'the same after RL: compare with fve_model_text_token, and with fve_rl (the generator\'s rows)'],
  ['fve_model_text_token', 'baseline on the model-text rows: current-token lookup (fitted on the training rows)'],
  ['fve_model_text_bigram', 'baseline on the model-text rows: (previous, current) token pair'],
  ['fve_model_text_floor', 'baseline on the model-text rows: the best constant direction'],
  ['fve_model_text_ar_true_summary', 'the AR reading the model-text rows\' true summaries (its ceiling there)'],
  ['fve_model_text_gap', 'fve_rl - fve_model_text: how much worse M\'s own text is explained (target < 0.1)'],
  ['quote_exact', 'share of model-text explanations whose quote is exactly the text before the cut (after RL)'],
  ['quote_loose', 'the same, the cut last word allowed to be completed or shortened'],
  ['invented_name_rate', 'share naming a character (the generator\'s names) not in the text (target < 0.05)'],
  ['quote_fragment_rate', 'share of those quotes that are the end of a word ("...ck", --quote token), exact or not'],
  ['quote_confidence_auc', 'the AV\'s own probability of each quote tells the exact ones from the rest (AUC, 0.5 = blind): how far a quote can be trusted'],
  ['quote_exact_sft', 'quote_exact after the warm start'],
  ['quote_loose_sft', 'quote_loose after the warm start'],
  ['invented_name_rate_sft', 'invented_name_rate after the warm start'],
  ['quote_fragment_rate_sft', 'quote_fragment_rate after the warm start'],
  ['model_text_probe_token', 'reference for the quotes: a linear probe of h reads the current token (model-text rows)'],
  ['model_text_probe_prev_token', 'the same for the previous token'],
  ['model_text_probe_both', 'both tokens right: what a linear reader gets of the last two tokens'],
  ['minutes', 'wall-clock minutes'],
];

// Flags of one demo that the other has no use for: given to the wrong one, they are refused by
// name instead of silently ignored. Keys are commander's option names.
const STORIES_ONLY: [key: string, flag: string][] = [
  ['modelSamples', '--model-samples'], ['modelCuts', '--model-cuts'], ['modelDocTokens', '--model-doc-tokens'], ['modelTextTokens', '--model-text-tokens'], ['modelTextDocs', '--model-text-docs'], ['modelOpeningCuts', '--model-opening-cuts'], ['modelCutRule', '--model-cut-rule'], ['modelMinTokens', '--model-min-tokens'], ['lengthPool', '--length-pool'], ['alphaScale', '--alpha-scale'],
  ['warmStartRows', '--warm-start-rows'], ['quote', '--quote'], ['factsWindow', '--facts-window'], ['arRefitSteps', '--ar-refit-steps'], ['arRefitRows', '--ar-refit-rows'],
];
const WORLD_ONLY: [key: string, flag: string][] = [
  ['worldModel', '--world-model'], ['worldSummary', '--world-summary'], ['heldPrecision', '--held-precision'], ['factWeight', '--fact-weight'],
];

/** The error for the first flag given that the chosen demo (stories, or --world) does not use, or undefined. */
export function misplacedFlag(given: (key: string) => boolean, world: boolean): string | undefined {
  const hit = (world ? STORIES_ONLY : WORLD_ONLY).find(([k]) => given(k));
  if (!hit) return undefined;
  return world ? `nla demo --world: ${hit[1]} applies to the stories demo only` : `nla demo: ${hit[1]} applies to the world demo only (add --world)`;
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('run the end-to-end NLA on stories260K (layer 3): extract, SFT of AV and AR, joint RL, eval, examples; --world: the same on world-M with claims per fact (issue 11)')
    .option('--model <path>', 'llama2.c checkpoint or HF directory (default: stories260K.bin from $NLA_MODELS, the cache or ../shared/models)')
    .option('--tokenizer <path>', 'tokenizer file (default: beside the model)')
    .option('--out <dir>', 'where the NLA, activations and metrics.jsonl go', 'runs/demo')
    .option('--layer <k>', 'layer K (output of block K)', String(DEMO_DEFAULTS.layer))
    .option('--seed <n>', 'seed', String(DEMO_DEFAULTS.seed))
    .option('--quick', 'a tiny configuration (about 30 s) that checks the pipeline; its numbers mean nothing')
    .option('--rl-steps <n>', 'RL steps', String(DEMO_DEFAULTS.rl.steps))
    .option('--model-samples <n>', 'documents sampled from the model and mixed into training beside the stories (0: stories only)', String(DEMO_DEFAULTS.modelSamples.docs))
    .option('--model-cuts <n>', 'cut points per sampled document (rows per document; the sampling costs the same)', String(DEMO_DEFAULTS.modelSamples.cuts))
    .option('--model-doc-tokens <n>', 'length cap in tokens after BOS of each training document sampled from the model (sampling stops earlier at EOS/BOS)', String(DEMO_DEFAULTS.modelSamples.docTokens))
    .option('--model-text-tokens <n>', 'length cap of each held-out sample of the model scored as M\'s text (default: its context minus BOS, 511 for stories260K: whole documents)', String(DEMO_DEFAULTS.modelTextEval.docTokens))
    .option('--model-text-docs <n>', 'held-out samples of the model scored as M\'s text (2 cuts each; seeds from 1,000,000, or 2,000,000 with --dev; 0: not scored)', String(DEMO_DEFAULTS.modelTextEval.docs))
    .option('--model-opening-cuts <n>', `of each training sample's --model-cuts, how many are drawn from its opening (tokens before ${OPENING_BELOW}) rather than uniformly over it, so every text's first tokens keep their share of the rows in long documents (random cut rule only; held-out documents are cut uniformly)`, String(DEMO_DEFAULTS.modelSamples.openingCuts ?? 0))
    .option('--model-min-tokens <n>', 'the first token index a cut of a sampled document may fall on, in training and in the held-out evaluation (the stories are cut from 30)', String(DEMO_DEFAULTS.modelSamples.minTokens))
    .option('--model-cut-rule <rule>', 'where the training cuts of the sampled documents fall: random (uniform over tokens) or balanced (each cut drawn in proportion to 1/(1+n), n the rows of its split so far quoting the word it would quote, so the rows teach more of the words M writes); held-out documents are cut at random either way', DEMO_DEFAULTS.modelSamples.cutRule ?? 'random')
    .option('--stories <n>', 'known-answer stories generated', String(DEMO_DEFAULTS.stories))
    .option('--ar-steps <n>', 'AR warm-start steps', String(DEMO_DEFAULTS.arSft.steps))
    .option('--av-steps <n>', 'AV warm-start steps', String(DEMO_DEFAULTS.avSft.steps))
    .option('--ar-refit-steps <n>', 'after both warm starts, refit the AR this many steps on the AV\'s greedy explanations of the AR\'s documents beside their true summaries, so it learns what the AV\'s words are worth (0: off)', String(DEMO_DEFAULTS.arRefit.steps))
    .option('--ar-refit-rows <n>', 'rows the AV explains for --ar-refit-steps (an even spread over the AR\'s documents; 0: all)', String(DEMO_DEFAULTS.arRefit.rows))
    .option('--length-pool <n>', 'warm starts: batches dealt from pools of N batches sorted by length, so a batch pads less (0: plain shuffled batches, the default: pools of 8 were 17-20% faster and worse on dev; not with --world)', String(DEMO_DEFAULTS.avSft.lengthPool))
    .option('--av-lr <x>', 'AV warm-start peak learning rate', String(DEMO_DEFAULTS.avSft.lr))
    .option('--quote-weight <w>', `AV warm start: weight of the opening quotation's tokens (the words read, which the AV reads off h) in its loss, a weighted mean (1 = plain mean; --world default ${WORLD_DEMO_DEFAULTS.avSft.quoteWeight ?? 1})`, String(DEMO_DEFAULTS.avSft.quoteWeight ?? 1))
    .option('--alpha-scale <x>', 'the AV\'s injection norm alpha as a multiple of the 75th percentile of |h| over the store (1 = the paper\'s rule of thumb; recorded in nla.json as alpha)', '1')
    .option('--warm-start-rows <how>', 'split: the AV and AR warm starts read different documents (the paper\'s); shared: both read the av and ar documents together (twice the rows each, the same steps)', 'split')
    .option(...SUMMARY_FLAGS[0])
    .option(...SUMMARY_FLAGS[1])
    .option(...SUMMARY_FLAGS[2])
    .option('--prompts <style>', 'the AV\'s and AR\'s prompts: compact (22 and 9 tokens under tok512) or tagged (nla\'s DEFAULT_PROMPTS, 44 and 20) (default: compact; --world: tagged)')
    .option('--max-tokens <n>', 'explanation length cap of the evaluation and the RL rollouts', String(DEMO_DEFAULTS.maxTokens))
    .option('--claim-cost <x>', `RL: subtracted from the reward of a rollout stating a fact (of --claim-fields) its row's true summary does not (0: off; default ${DEMO_DEFAULTS.rl.claimCost}, --world ${WORLD_DEMO_DEFAULTS.rl.claimCost})`)
    .option('--claim-fields <list>', `RL: the fields the claim cost charges: all, or a comma-separated list of ${FIELDS.join(', ')} (default ${DEMO_DEFAULTS.rl.claimFields!.join(',')}, --world ${WORLD_DEMO_DEFAULTS.rl.claimFields!.join(',')})`)
    .option('--world', 'run the chain on world-M (issue 11): train or reuse world-M, cue cuts, warm starts, RL, FVE, claims per fact and ablations (of the summary flags only --quote-words applies: default 3 word units there)')
    .option('--world-model <dir>', `with --world: world-M's directory, reused when it holds world-M.bin, else trained and saved there (default ${WORLD_MODEL_CACHE}; --quick: OUT/world-M-quick)`)
    .option('--world-summary <kind>', 'with --world: what a cue cut\'s warm-start summary states: cued (the fact recalled next) or held (that fact and every other fact read that a linear probe on h reads at --held-precision, judged out of fold) (default: held)')
    .option('--held-precision <p>', 'with --world-summary held: the precision (0-1) at which the probe must read a fact for a summary to state it (default: 0.9)')
    .option('--fact-weight <w>', 'with --world: weight of the summary tokens that state a fact\'s value in the AV warm start\'s loss (1 = plain mean; default the world demo\'s)')
    .option('--dev', 'score the dev half of the held-out stories and dev samples of M (for choosing settings; the default scores test)')
    .addHelpText('after', '\nPrints a table of every number with a line on how to read it; its last line is JSON.\nFVE = 1 - MSE/Var on L2-normalised activations; compare it with the token/bigram baselines, not with 0.')
    .action(async (o: { world?: boolean; worldModel?: string; model?: string; tokenizer?: string; out: string; layer: string; seed: string; quick?: boolean; rlSteps: string; modelSamples: string; modelCuts: string; modelDocTokens: string; modelTextTokens: string; modelTextDocs: string; modelOpeningCuts: string; modelCutRule: string; modelMinTokens: string; stories: string; arSteps: string; avSteps: string; arRefitSteps: string; arRefitRows: string; lengthPool: string; avLr: string; alphaScale: string; warmStartRows: string; quoteWeight: string; quote: string; quoteWords: string; factsWindow?: string; maxTokens: string; prompts?: string; claimCost?: string; claimFields?: string; dev?: boolean; factWeight?: string; worldSummary?: string; heldPrecision?: string }, cmd: Command) => {
      const whole = (flag: string, v: string, min: number) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < min) throw new Error(`nla demo: ${flag} needs a whole number >= ${min}, got ${v}`);
        return n;
      };
      const positive = (flag: string, v: string) => {
        const x = Number(v);
        if (!Number.isFinite(x) || x <= 0) throw new Error(`nla demo: ${flag} needs a number > 0, got ${v}`);
        return x;
      };
      const nonNegative = (flag: string, v: string) => {
        const x = Number(v);
        if (!Number.isFinite(x) || x < 0) throw new Error(`nla demo: ${flag} needs a number >= 0, got ${v}`);
        return x;
      };
      const share = (flag: string, v: string) => {
        const x = Number(v);
        if (!(x > 0 && x < 1)) throw new Error(`nla demo: ${flag} needs a number between 0 and 1, got ${v}`);
        return x;
      };
      const oneOf = <T extends string>(flag: string, v: string, allowed: readonly T[]): T => {
        if (!(allowed as readonly string[]).includes(v)) throw new Error(`nla demo: ${flag} must be ${allowed.join(' or ')}, got "${v}"`);
        return v as T;
      };
      const promptsOf = (v: string | undefined) => {
        if (v === undefined) return undefined;
        if (v !== 'compact' && v !== 'tagged') throw new Error(`nla demo: --prompts must be compact or tagged, got "${v}"`);
        return v === 'compact' ? COMPACT_PROMPTS : DEFAULT_PROMPTS;
      };
      // Only flags given on the command line: the stories260K defaults are not world-M's.
      const given = (k: string) => cmd.getOptionValueSource(k) === 'cli';
      const misplaced = misplacedFlag(given, !!o.world);
      if (misplaced) throw new Error(misplaced);
      if (o.world) {
        if (o.model) throw new Error('nla demo --world: world-M is the model; pass --world-model DIR, not --model');
        const opt = (k: string, flag: string, v: string, min: number) => (given(k) ? whole(flag, v, min) : undefined);
        return demoWorld({
          out: given('out') ? o.out : 'runs/demo-world', worldModel: o.worldModel, tokenizer: o.tokenizer, quick: o.quick, dev: o.dev,
          layer: opt('layer', '--layer', o.layer, 0), seed: opt('seed', '--seed', o.seed, 0),
          rlSteps: opt('rlSteps', '--rl-steps', o.rlSteps, 0), arSteps: opt('arSteps', '--ar-steps', o.arSteps, 1), avSteps: opt('avSteps', '--av-steps', o.avSteps, 1), stories: opt('stories', '--stories', o.stories, 1),
          factWeight: o.factWeight === undefined ? undefined : positive('--fact-weight', o.factWeight),
          quoteWeight: given('quoteWeight') ? positive('--quote-weight', o.quoteWeight) : undefined,
          avLr: given('avLr') ? positive('--av-lr', o.avLr) : undefined,
          maxTokens: opt('maxTokens', '--max-tokens', o.maxTokens, 1),
          summary: o.worldSummary === undefined ? undefined : oneOf('--world-summary', o.worldSummary, ['cued', 'held'] as const),
          heldPrecision: o.heldPrecision === undefined ? undefined : share('--held-precision', o.heldPrecision),
          quoteWords: opt('quoteWords', '--quote-words', o.quoteWords, 1),
          claimCost: o.claimCost === undefined ? undefined : nonNegative('--claim-cost', o.claimCost),
          claimFields: o.claimFields === undefined ? undefined : parseFields(o.claimFields, '--claim-fields'),
          prompts: promptsOf(o.prompts),
        });
      }
      const D = DEMO_DEFAULTS;
      const base = {
        ...D,
        stories: whole('--stories', o.stories, 1),
        arSft: { ...D.arSft, steps: whole('--ar-steps', o.arSteps, 1), lengthPool: whole('--length-pool', o.lengthPool, 0) },
        avSft: { ...D.avSft, steps: whole('--av-steps', o.avSteps, 1), lr: positive('--av-lr', o.avLr), quoteWeight: positive('--quote-weight', o.quoteWeight), lengthPool: whole('--length-pool', o.lengthPool, 0) },
        arRefit: { ...D.arRefit, steps: whole('--ar-refit-steps', o.arRefitSteps, 0), rows: whole('--ar-refit-rows', o.arRefitRows, 0) },
        maxTokens: whole('--max-tokens', o.maxTokens, 1),
        alphaScale: positive('--alpha-scale', o.alphaScale),
        warmStartRows: oneOf('--warm-start-rows', o.warmStartRows, ['split', 'shared'] as const),
        rl: { ...D.rl, steps: whole('--rl-steps', o.rlSteps, 0), maxTokens: whole('--max-tokens', o.maxTokens, 1), claimCost: o.claimCost === undefined ? D.rl.claimCost : nonNegative('--claim-cost', o.claimCost), claimFields: o.claimFields === undefined ? D.rl.claimFields : parseFields(o.claimFields, '--claim-fields') },
        modelSamples: { ...D.modelSamples, docs: whole('--model-samples', o.modelSamples, 0), cuts: whole('--model-cuts', o.modelCuts, 1), cutRule: oneOf('--model-cut-rule', o.modelCutRule, CUT_RULES), minTokens: whole('--model-min-tokens', o.modelMinTokens, 1), docTokens: whole('--model-doc-tokens', o.modelDocTokens, 1), openingCuts: whole('--model-opening-cuts', o.modelOpeningCuts, 0) },
        modelTextEval: { ...D.modelTextEval, docs: whole('--model-text-docs', o.modelTextDocs, 0), docTokens: whole('--model-text-tokens', o.modelTextTokens, 1) },
        summary: parseSummaryFlags(o, 'nla demo'),
        evalPart: o.dev ? ('dev' as const) : D.evalPart,
        prompts: promptsOf(o.prompts) ?? D.prompts,
      };
      if (base.modelSamples.openingCuts && base.modelSamples.cutRule === 'balanced') throw new Error('nla demo: --model-opening-cuts places random cuts; it does not combine with --model-cut-rule balanced');
      const quick = (k: string, v: number) => (given(k) ? v : 80);
      const cfg = o.quick
        ? { ...base, stories: 120, cutsPerStory: 3, modelSamples: { ...base.modelSamples, docs: 16, seedBase: 0, docTokens: quick('modelDocTokens', base.modelSamples.docTokens), cuts: 3 }, modelTextEval: { ...base.modelTextEval, docs: given('modelTextDocs') ? base.modelTextEval.docs : 6, cuts: 2, docTokens: quick('modelTextTokens', base.modelTextEval.docTokens) }, arSft: { ...base.arSft, steps: 30 }, avSft: { ...base.avSft, steps: 60 }, arRefit: { ...base.arRefit, rows: Math.min(base.arRefit.rows, 60), steps: Math.min(base.arRefit.steps, 10) }, rl: { ...base.rl, steps: 4 }, evalRows: 24 }
        : base;
      const r = await runDemo({ ...cfg, model: o.model ?? findModelFile('stories260K.bin'), tokenizer: o.tokenizer, out: o.out, layer: Number(o.layer), seed: Number(o.seed), report: (s) => console.log(s) });
      console.log(`\n${r.eval_rows} rows of the ${r.eval_split} stories (${r.eval_split === 'test' ? 'no setting was chosen on them' : 'for choosing settings; report test'}); model_text_* on ${r.model_text_rows} rows of held-out samples of M (seeds ${r.model_text_seeds.base}..${r.model_text_seeds.base + r.model_text_seeds.count - 1}, each until EOS or ${r.model_text_doc_tokens} tokens; ${r.train_model_seeds.count ? `training samples ${r.train_model_seeds.base}..${r.train_model_seeds.base + r.train_model_seeds.count - 1}` : 'no samples of M in training'})\n` + 'metric'.padEnd(32) + 'value    meaning');
      for (const [k, what] of EXPLAIN) console.log(`${k.padEnd(32)}${Number(r[k]).toFixed(3).padStart(7)}  ${what}`);
      console.log('\nper field (greedy, share stated correctly)\n' + 'field'.padEnd(14) + ['sft', 'rl', 'chance', 'probe'].map((h) => h.padStart(8)).join('') + '    rows');
      for (const [f, v] of [...Object.entries(r.facts_fields), ['current word', r.current_word] as const]) {
        console.log(f.padEnd(14) + [v.sft, v.rl, v.chance, v.probe].map((x) => x.toFixed(3).padStart(8)).join('') + String(v.n).padStart(8));
      }
      const ci = r.model_text_ci;
      if (ci) {
        const row = (what: string, x: number, iv: Interval | undefined, target: string, signed = false) => console.log(`  ${what.padEnd(30)}${iv ? formatInterval(x, iv, signed) : '-'}  ${target}`);
        console.log(`\nM's text against issue 10's targets, 95% intervals over its held-out documents (a bootstrap; paired where both sides score the same rows):`);
        row('FVE minus the token lookup', r.fve_model_text - r.fve_model_text_token, ci.fve_minus_token, 'target > 0', true);
        row('gap, stories minus M\'s text', r.fve_model_text_gap, ci.gap, 'target < 0.1');
        row('quotes exact', r.quote_exact, ci.quote_exact, 'target >= 0.9');
        row('names not in the text', r.invented_name_rate, ci.invented_name_rate, 'target < 0.05');
        row('RL minus the warm start', r.fve_model_text - r.fve_model_text_sft, ci.rl_minus_sft, 'target: not below 0', true);
      }
      console.log(`\nminutes by stage: ${Object.entries(r.stage_minutes).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}`);
      console.log(`\nRead: FVE above fve_token means the explanations carry more than the current token; a fact's rl above its chance means the explanations state it, and near its probe that they state what h holds. Saved: ${o.out}/nla, ${o.out}/metrics.jsonl, ${o.out}/rl-curves.svg`);
      console.log(JSON.stringify(r));
    });
}

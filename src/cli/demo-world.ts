// `nla demo --world`: the NLA chain on world-M and its faithfulness, as a table with a line per
// figure on how to read it, then one JSON line {"demo":"world",...} (issue 11).
import * as path from 'node:path';
import { findModelFile } from '../io/model-files.js';
import { runWorldDemo, SUMMARY_WORDS, WORLD_DEMO_DEFAULTS, type WorldDemoOptions, type WorldDemoResult } from '../nla/demo-world.js';
import { printAblations } from './faithfulness.js';
import { formatInterval } from '../nla/doc-bootstrap.js';
import type { Field } from '../nla/corpus.js';
import type { PromptSpec } from '../nla/prompts.js';

export interface WorldDemoFlags {
  out: string;
  worldModel?: string;
  tokenizer?: string;
  layer?: number;
  seed?: number;
  quick?: boolean;
  rlSteps?: number;
  claimCost?: number;
  claimFields?: Field[];
  arSteps?: number;
  avSteps?: number;
  stories?: number;
  dev?: boolean;
  factWeight?: number;
  quoteWeight?: number;
  avLr?: number;
  /** The explanation cap of the evaluation and of RL's rollouts. */
  maxTokens?: number;
  summary?: 'cued' | 'held';
  heldPrecision?: number;
  quoteWords?: number;
  prompts?: PromptSpec;
}

/** Where world-M is cached when --world-model is not given. */
export const WORLD_MODEL_CACHE = 'runs/world-M';

const EXPLAIN: [keyof WorldDemoResult, string][] = [
  ['world_recall', 'world-M: held-out recall-token accuracy (it predicts recalled facts from earlier mentions)'],
  ['world_first_seen', 'world-M: first recalls right when the fact was seen'],
  ['world_first_control', 'the same when the earlier mentions carried another value (chance ~0.2: it reads the context)'],
  ['fve_sft', 'FVE of greedy explanations after the warm start'],
  ['fve_rl', 'FVE of greedy explanations after RL (target: above fve_bigram)'],
  ['fve_token', 'baseline: mean normalised h of the current token'],
  ['fve_bigram', 'baseline: mean normalised h of the (previous, current) token pair'],
  ['fve_floor', 'baseline: the best constant direction'],
  ['fve_ar_true_summary', 'the AR reading the rows\' true summaries: its ceiling, apart from the AV'],
  ['fve_shuffled_other_story', 'control: each explanation against a row of another story'],
  ['no_false_claim_sft', 'share of explanations with no false claim on any fact, after the warm start'],
  ['no_false_claim_rl', 'the same after RL (does RL raise confabulation?)'],
  ['fact_weight', 'AV warm start: weight of the summary tokens that state a fact (1 = plain mean over tokens)'],
  ['claim_cost', 'RL: reward lost by a rollout stating a fact (of claim_fields) its row\'s summary does not (0 = off)'],
  ['claim_fields', 'RL: the fields the claim cost charges'],
  ['minutes', 'wall-clock minutes (world-M training included when it was trained)'],
];

export async function demoWorld(f: WorldDemoFlags): Promise<void> {
  const D = WORLD_DEMO_DEFAULTS;
  // --quick: a tiny world-M and NLA that check the chain end to end; its numbers mean nothing.
  const quick: Partial<WorldDemoOptions> = f.quick
    ? {
        train: { ...D.train, stories: 200, dim: 32, layers: 2, heads: 2, steps: 20, batchSize: 4 },
        recallStories: 4,
        stories: 60,
        cutsPerStory: 2,
        arSft: { ...D.arSft, steps: 20 },
        avSft: { ...D.avSft, steps: 60 },
        rl: { ...D.rl, steps: 2, activationsPerStep: 2, groupSize: 2, maxTokens: 24 },
        evalRows: 8,
        maxTokens: 24,
      }
    : {};
  const cfg = { ...D, ...quick };
  const worldModel = f.worldModel ?? (f.quick ? path.join(f.out, 'world-M-quick') : WORLD_MODEL_CACHE);
  const r = await runWorldDemo({
    ...cfg,
    worldModel,
    tokenizer: f.tokenizer ?? findModelFile('tok512.bin'),
    out: f.out,
    layer: f.layer,
    seed: f.seed ?? cfg.seed,
    stories: f.stories ?? cfg.stories,
    arSft: { ...cfg.arSft, steps: f.arSteps ?? cfg.arSft.steps },
    avSft: { ...cfg.avSft, steps: f.avSteps ?? cfg.avSft.steps, lr: f.avLr ?? cfg.avSft.lr, factWeight: f.factWeight ?? cfg.avSft.factWeight, quoteWeight: f.quoteWeight ?? cfg.avSft.quoteWeight },
    summary: f.summary ?? cfg.summary,
    heldPrecision: f.heldPrecision ?? cfg.heldPrecision,
    quoteWords: f.quoteWords ?? cfg.quoteWords,
    prompts: f.prompts ?? cfg.prompts,
    maxTokens: f.maxTokens ?? cfg.maxTokens,
    rl: { ...cfg.rl, steps: f.rlSteps ?? cfg.rl.steps, maxTokens: f.maxTokens ?? cfg.rl.maxTokens, claimCost: f.claimCost ?? cfg.rl.claimCost, claimFields: f.claimFields ?? cfg.rl.claimFields },
    evalPart: f.dev ? 'dev' : cfg.evalPart,
    report: (s) => console.log(s),
  });
  const v = (y: number) => (Number.isFinite(y) ? y.toFixed(3) : '  -  ').padStart(7);
  console.log(`\nworld-M ${r.world_model} (${r.world_trained ? 'trained now' : 'reused'}), layer ${r.layer}, ${r.at} cuts, summaries state ${SUMMARY_WORDS[r.summary]}; ${r.eval_rows} rows of the ${r.eval_split} stories`);
  console.log('metric'.padEnd(28) + '  value  meaning');
  const cell = (x: unknown) => (Array.isArray(x) ? x.join(',').padStart(7) : v(x as number));
  for (const [k, what] of EXPLAIN) console.log(`${k.padEnd(28)}${cell(r[k])}  ${what}`);
  console.log('\nper fact (greedy explanations; a claim = a value named outside quotations)');
  console.log('field     ' + ['P sft', 'P rl', 'R sft', 'R rl', 'conf sft', 'conf rl', 'chance', 'chanceR', 'probe', 'probe@P.9', 'probe cue', 'Rcue sft', 'Rcue rl'].map((h) => h.padStart(10)).join('') + '  cue rows');
  for (const [k, x] of Object.entries(r.fields)) {
    console.log(k.padEnd(10) + [x.precision_sft, x.precision_rl, x.recall_sft, x.recall_rl, x.confab_sft, x.confab_rl, x.chance, x.chance_recall, x.probe, x.probe_recall_p90, x.probe_cued, x.recall_cued_sft, x.recall_cued_rl].map((y) => v(y).padStart(10)).join('') + String(x.rows_cued).padStart(10));
  }
  console.log(`\n95% intervals (bootstrap over the ${r.eval_docs} scored stories: a story's rows move together); the change is RL minus SFT on the same resample:`);
  for (const [k, x] of Object.entries(r.fields)) console.log(`  ${k.padEnd(8)} P rl ${formatInterval(x.precision_rl, x.precision_rl_ci)}  conf rl - sft ${formatInterval(x.confab_change.diff, x.confab_change.ci, true)}  R rl - sft ${formatInterval(x.recall_change.diff, x.recall_change.ci, true)}`);
  console.log(`  no false claim rl - sft ${formatInterval(r.no_false_claim_change.diff, r.no_false_claim_change.ci, true)}`);
  console.log(`only the claims the AV wrote with confidence >= 0.9 (its probability of the value's tokens): ${Object.entries(r.fields).map(([k, x]) => `${k} P sft ${v(x.precision_sft_confident).trim()} rl ${v(x.precision_rl_confident).trim()} R rl ${v(x.recall_rl_confident).trim()}`).join('; ')}`);
  console.log(`Read: P = stated and true / stated (target >= 0.9 on name, place, object; chance = a random value);
R = stated and true / rows where the fact was read (target: within 0.1 of the probe ceiling; "probe" is
the held-out accuracy of a linear probe on h itself, guesses included; "probe@P.9" the recall of that
probe held to precision 0.9, as the explainer is: the like-for-like ceiling, its precision in the
JSON); conf = 1 - P (target: rl no higher than sft). At cue cuts h holds the
fact recalled next: "probe cue" is the probe on the rows where that field is cued (what world-M holds
there, target >= 0.9), "Rcue" the explanations' recall on those rows.`);
  console.log('\nFVE lost by naming another value (class means of h at the rows stating the field; near 0 = the MSE and RL\'s reward cannot tell the pair apart):');
  for (const [f, c] of Object.entries(r.confusion_cost)) console.log(`  ${f.padEnd(8)} closest pair ${c.pair.join('/')} ${v(c.min).trim()}, mean over pairs ${v(c.mean).trim()}`);
  for (const [stage, ab] of [['after the warm start', r.ablations_sft], ['after RL', r.ablations_rl]] as const) {
    console.log(`\ncontent ablations ${stage}:`);
    printAblations(ab, (s) => console.log(s));
  }
  console.log(`Read: if the AR reads the facts, a swap keeps FVE but the probe on the reconstruction reads the swapped
value (target >= 0.7); an explanation in a private code loses little to a swap and much to a shuffle;
a sentence whose removal costs FVE carries the reconstruction.
Saved: ${f.out}/nla-sft, ${f.out}/nla, ${f.out}/activations, ${f.out}/metrics.jsonl; world-M in ${worldModel}`);
  console.log(JSON.stringify(r));
}

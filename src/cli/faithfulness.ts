// `nla faithfulness`: per fact, what an NLA's explanations claim against what is true and what
// the activation provably holds (a linear probe's ceiling), on held-out rows of a known-answer
// or world store (issue 11).
import type { Command } from 'commander';
import { falseClaimPairs, markClaims } from '../nla/claims.js';
import type { Field } from '../nla/corpus.js';
import { faithfulnessReport, storeProbes, type FaithfulnessReport } from '../nla/faithfulness.js';
import { loadNLA, type NLA } from '../nla/nla.js';
import { claimChanges } from '../nla/claim-intervals.js';
import { formatInterval } from '../nla/doc-bootstrap.js';
import { CONFIDENT } from '../nla/claim-confidence.js';
import type { AblationReport } from '../nla/ablations.js';
import { rowsOf } from '../nla/sft.js';
import { ActivationStore, type RowMeta } from '../nla/store.js';
import { writeFileAtomic } from '../io/atomic-write.js';
import { CHAIN_HELP, requireComplete, storeRows } from './nla-dir.js';
import { Opts, progressBar, withConfig } from './options.js';

export function registerFaithfulness(program: Command): void {
  const cmd = program
    .command('faithfulness')
    .description('does the NLA say what the activation holds, and only that? claims per fact: precision, recall, confabulation vs chance and a probe ceiling')
    .option('--nla <dir>', 'NLA directory (required)')
    .option('--store <dir>', 'its activation store, with truths (built-in stories or `nla world extract`) (required)')
    .option('--split <name>', 'rows to score: dev, test, eval or all', 'test')
    .option('--rows <n>', 'score at most N rows (0 = all)', '200')
    .option('--batch-size <n>', 'rows per generation batch (default: as many as keep one decode step\'s logits under 8 MiB, 32 to 1,024)')
    .option('--json', 'print only the JSON line')
    .option('--against <dir>', 'also score this NLA (e.g. the warm start, nla-sft/) on the same rows and print the change from it to --nla per field, with 95% intervals from a bootstrap over stories')
    .option('--explanations <file>', 'also write each scored row as a JSON line: row, doc, pos, its summary, the truth, the greedy explanation and its claims marked true or false, each with the AV\'s confidence in it (to compare two NLAs row by row)')
    .addHelpText(
      'after',
      `
A claim is a value of a fact field (name, place, object, colour, emotion, event) named in the
greedy explanation outside its quotations (quoted words repeat the text; they are not claims).
Per field, over the scored rows:
  precision      stated and true / stated          (a claim about a fact not read yet is false;
  confabulation  stated and false / stated          naming two values is one false claim)
  recall         stated and true / rows where the fact has been read
  chance         an explainer naming a random value of every field on every row
  probe          held-out accuracy of a linear probe on the activations themselves (trained on
                 the store's av/ar/rl rows, tested on these rows): the ceiling recall can reach
                 if the explanation reads only h
  probe@P0.9     recall of that probe when it states a value only above a confidence chosen
                 (on training rows) to be right 9 times in 10: the ceiling for an explainer held
                 to the precision target (plain accuracy also counts the probe's lucky guesses)
  confident      the same over only the claims the AV wrote with confidence >= 0.9 (the
                 probability it gave the value's own tokens): what its sure claims are worth
and, over whole explanations, the share with no false claim (each figure with a 95% interval
from a bootstrap over the scored stories); the false claims per field by
true > said value (e.g. object ball>cat 7: which values the explainer mixes up). Then the content ablations: FVE
with each explanation's sentences shuffled and with its quotations dropped, and per field, with
the stated value swapped for another value of the field: FVE, and the share where a probe
(trained on real activations) reads the swapped value from the AR's reconstruction. Run it on the NLA after the warm
start and after RL (the demo saves nla-sft/ and nla/) to see whether RL raises confabulation.

Examples:
  nla faithfulness --nla runs/w/nla --store runs/w/activations --split test
  nla faithfulness --nla runs/w/nla --against runs/w/nla-sft --store runs/w/activations --split test
      (did RL raise confabulation? the paired change per field, with its 95% interval)
${CHAIN_HELP}`,
    );
  withConfig(cmd).action(async (_: unknown, c: Command) => {
    const o = Opts.of(c);
    const dir = o.need('nla', '<dir>');
    requireComplete(dir);
    const nla = await loadNLA(dir);
    const d = nla.ar.d;
    const store = ActivationStore.open(o.need('store', '<dir>'), { layer: nla.meta.layer, d });
    if (store.manifest.model.sha256 && store.manifest.model.sha256 !== nla.meta.model.sha256) throw new Error(`${store.dir}: activations are from model "${store.manifest.model.name}", the NLA is for "${nla.meta.model.name}"`);
    const split = o.need('split');
    const rows = storeRows(store, split);
    const limit = o.int('rows', 0);
    const n = limit ? Math.min(limit, rows.meta.length) : rows.meta.length;
    const h = rowsOf(rows.h, d, [...Array(n).keys()]), meta = rows.meta.slice(0, n);
    const probes = await storeProbes(rows.all, h, meta, d, nla.meta.variance);
    const score = async (which: NLA, label: string) => {
      const bar = progressBar(label, n);
      const out = await faithfulnessReport(which, rows.all, h, meta, { batchSize: o.optNum('batchSize', { int: true, min: 1 }), onProgress: (x) => bar.update(x), probes });
      bar.done();
      return out;
    };
    const r = await score(nla, 'explain');
    const againstDir = o.str('against');
    let changes: ReturnType<typeof claimChanges> | undefined;
    if (againstDir) {
      requireComplete(againstDir);
      const base = await loadNLA(againstDir);
      if (base.meta.layer !== nla.meta.layer || base.meta.model.sha256 !== nla.meta.model.sha256) throw new Error(`--against ${againstDir}: an NLA of ${base.meta.model.name} layer ${base.meta.layer}, but --nla ${dir} is of ${nla.meta.model.name} layer ${nla.meta.layer}`);
      const b = await score(base, `explain (${againstDir})`);
      base.dispose();
      changes = claimChanges(b.claims_per_row, r.claims_per_row, { known: meta.map((m) => (m.truth?.known ?? {}) as Partial<Record<Field, string>>), docs: meta.map((m) => m.doc) });
    }
    const { ablations: ab, claims_per_row: perRow, explanations_per_row: explained, confidences_per_row: sure, ...out } = r;
    const rowsFile = o.str('explanations');
    if (rowsFile) writeExplanationRows(rowsFile, explained, sure, meta);
    // Which values are mixed up (e.g. object cake said as cat): the rows' false claims by truth > said.
    const false_claims = falseClaimPairs(perRow, meta.map((m) => (m.truth?.known ?? {}) as Partial<Record<Field, string>>));
    if (!o.bool('json')) {
      console.log(`${dir}: layer ${nla.meta.layer}, ${n} rows of split ${split}`);
      printFaithfulness(r, (s) => console.log(s));
      for (const [f, pairs] of Object.entries(false_claims)) console.log(`  false ${f} claims (true>said): ${Object.entries(pairs).sort((a, b) => b[1] - a[1]).map(([k, c]) => `${k} ${c}`).join(', ')}`);
      if (changes) {
        console.log(`  change from ${againstDir} to ${dir} on the same rows (paired, 95% interval over stories; an interval above 0 = a change chance does not explain):`);
        printChanges(changes, (s) => console.log(s));
      }
    }
    console.log(JSON.stringify({ faithfulness: dir, split, layer: nla.meta.layer, ...out, false_claims, ablations: ab, ...(changes ? { against: againstDir, changes } : {}) }));
    nla.dispose();
  });
}

/** A figure to 3 places; NaN (nothing to count) as a dash. */
const v = (y: number) => (Number.isFinite(y) ? y.toFixed(3) : '  -  ');

/** The faithfulness table: claims per field beside chance and the probe ceiling, then the content ablations. */
export function printFaithfulness(r: FaithfulnessReport, print: (s: string) => void): void {
  print(`  FVE ${v(r.fve)} (${r.rows} rows)`);
  print('  field      precision  recall  confab  | chance P  chance R  probe  probe@P0.9 (its P) | known stated');
  for (const [f, x] of Object.entries(r.fields)) {
    const p90 = `${v(x.probe_recall_p90 ?? NaN)} (${v(x.probe_precision_p90 ?? NaN)})`;
    print(`  ${f.padEnd(9)}  ${v(x.precision).padStart(9)}  ${v(x.recall).padStart(6)}  ${v(x.confab).padStart(6)}  | ${v(x.chance_precision).padStart(8)}  ${v(x.chance_recall).padStart(8)}  ${v(x.probe).padStart(5)}  ${p90.padStart(18)} | ${String(x.known).padStart(5)} ${String(x.stated).padStart(6)}`);
  }
  print(`  explanations with no false claim: ${formatInterval(r.no_false_claim, r.no_false_claim_ci)}; with any claim: ${v(r.any_claim)}`);
  print(`  only the claims the AV wrote with confidence >= ${CONFIDENT} (its probability of the value's tokens; a fixed threshold):`);
  for (const [f, x] of Object.entries(r.fields)) print(`    ${f.padEnd(8)} stated ${String(x.stated_confident).padStart(4)} of ${String(x.stated).padStart(4)}  precision ${v(x.precision_confident)}  recall ${v(x.recall_confident)}`);
  print(`  95% intervals (bootstrap over the ${r.docs} scored stories; the rows of a story move together):`);
  for (const [f, x] of Object.entries(r.fields)) print(`    ${f.padEnd(8)} precision ${formatInterval(x.precision, x.precision_ci)}  recall ${formatInterval(x.recall, x.recall_ci)}  confab ${formatInterval(x.confab, x.confab_ci)}`);
  const costs = Object.entries(r.confusion_cost);
  if (costs.length) {
    print('  FVE lost by naming another value (class means of the activations; near 0 = invisible to the MSE and the RL reward):');
    for (const [f, c] of costs) print(`    ${f.padEnd(8)} closest pair ${c.pair.join('/')} ${v(c.min)}, mean over pairs ${v(c.mean)}`);
  }
  printAblations(r.ablations, print);
}

/** The content ablations: shuffled sentences, dropped quotations, swapped values, removed sentences. */
export function printAblations(ab: AblationReport, print: (s: string) => void): void {
  print(`  content (${ab.rows} parseable explanations): FVE ${v(ab.fve)}; sentences shuffled ${v(ab.fve_shuffled_sentences)}; quotations dropped ${v(ab.fve_no_quotes)}`);
  for (const [f, x] of Object.entries(ab.swap)) print(`  swap ${f.padEnd(8)} FVE ${v(x.fve)}, probe on the reconstruction reads the swapped value ${v(x.follows)} (probe from ${x.probe_rows} rows; every-read-row probe ${v(x.follows_known)}; ${x.rows} rows)`);
  for (const [k, x] of Object.entries(ab.removed)) print(`  one ${k} sentence removed: FVE falls ${v(x.fve_drop)} on average (${x.sentences} removals)`);
}

/** Paired changes of one NLA's claims against another's on the same rows (`--against`). */
export function printChanges(c: ReturnType<typeof claimChanges>, print: (s: string) => void): void {
  for (const [f, x] of Object.entries(c.fields)) print(`    ${f.padEnd(8)} confab ${formatInterval(x.confab.diff, x.confab.ci, true)}  recall ${formatInterval(x.recall.diff, x.recall.ci, true)}`);
  print(`    no false claim ${formatInterval(c.no_false_claim.diff, c.no_false_claim.ci, true)}`);
}

/** One JSON line per scored row: what it says, and each claim marked against the truth. */
function writeExplanationRows(file: string, explanations: readonly (string | undefined)[], confidences: readonly Partial<Record<Field, number>>[], meta: readonly RowMeta[]): void {
  const lines = explanations.map((e, i) => {
    const m = meta[i]!;
    const known = (m.truth?.known ?? {}) as Partial<Record<Field, string>>;
    const claims = e === undefined ? [] : markClaims(e, known).map((c) => ({ field: c.field, said: c.said, truth: c.truth ?? null, ok: c.ok, confidence: confidences[i]![c.field] ?? null }));
    return JSON.stringify({ row: i, doc: m.doc, pos: m.pos, summary: m.summary ?? null, truth: known, explanation: e ?? null, claims }) + '\n';
  });
  writeFileAtomic(file, [new TextEncoder().encode(lines.join(''))]);
}

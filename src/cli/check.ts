// `nla check`: does the AV read the injected vector? The reference's diagnosis, on any NLA.
import type { Command } from 'commander';
import { injectionCheck, nlaCheckParts } from '../nla/check.js';
import { loadNLA } from '../nla/nla.js';
import { rowsOf } from '../nla/sft.js';
import { ActivationStore } from '../nla/store.js';
import { nlaSource, PAIR_OPTIONS, storeRows } from './nla-dir.js';
import { Opts, withConfig } from './options.js';

export function registerCheck(program: Command): void {
  const cmd = program
    .command('check')
    .description('injection check: explain real activations, the marker token\'s own embedding and random vectors of the same norms; an AV that ignores the injection writes the same for all three')
    .option('--nla <dir>', 'NLA directory: nla\'s own or a reference pair (av/ + ar/) (required, or --av/--ar)')
    .option(...PAIR_OPTIONS[0])
    .option(...PAIR_OPTIONS[1])
    .option('--text <text>', 'real activations: every token of this text, read from M (needs M: nla.json\'s path or --model)')
    .option('--model <path>', 'the studied model M (for --text; a reference pair names only its Hub id)')
    .option('--store <dir>', 'real activations: rows of this activation store instead of --text')
    .option('--split <name>', 'split of --store', 'dev')
    .option('--rows <n>', 'at most N real activations', '16')
    .option('--max-tokens <n>', 'explanation length cap (default: the NLA\'s)')
    .option('--seed <n>', 'seed of the random vectors', '0')
    .option('--json', 'print the whole result as JSON')
    .addHelpText(
      'after',
      `
Reads the NLA and --text (with M) or --store; writes to stdout. Reports how many distinct greedy
explanations the real activations get, the share written exactly as for the marker's embedding
and as for a random vector of the same norm, and the AR's MSE against the real activations of
each kind of explanation. "reads the injection: yes" needs more than one distinct output and at
most half the rows written as for the marker or for noise.

Example:
  nla check --nla downloads/qwen7b-nla --model Qwen2.5-7B-Instruct --text "The cat sat on the mat because"`,
    );
  withConfig(cmd).action(async (_: unknown, c: Command) => {
    const o = Opts.of(c);
    const { source, label } = nlaSource(o);
    if (o.has('text') === o.has('store')) throw new Error('give one of --text and --store (the real activations)');
    const nla = await loadNLA(source, { model: o.str('model') });
    const maxTokens = o.optNum('maxTokens', { int: true, min: 1 }) ?? nla.meta.maxExplanationTokens;
    const limit = o.int('rows', 2);
    const d = nla.ar.d;
    let h: Float32Array;
    if (o.has('text')) {
      const a = await nla.activations(o.need('text'));
      const n = Math.min(limit, a.ids.length);
      // The last n tokens (the first ones carry little of the text).
      h = a.h.slice((a.ids.length - n) * d);
    } else {
      const rows = storeRows(ActivationStore.open(o.need('store'), { layer: nla.meta.layer, d }), o.need('split'));
      h = rowsOf(rows.h, d, [...Array(Math.min(limit, rows.meta.length)).keys()]);
    }
    const r = await injectionCheck(nlaCheckParts(nla, maxTokens), h, o.int('seed'));
    if (o.bool('json')) console.log(JSON.stringify({ nla: label, ...r }));
    else {
      console.log(`${label}: ${r.rows} real activations`);
      console.log(`  distinct explanations of real activations: ${r.distinctReal} of ${r.rows}`);
      console.log(`  written as for the marker's embedding: ${(100 * r.sameAsMarker).toFixed(0)}%   as for a random vector: ${(100 * r.sameAsRandom).toFixed(0)}%`);
      console.log(`  AR MSE against the real activations: own ${r.mseReal.toFixed(3)}, marker's ${r.mseMarker.toFixed(3)}, random vectors' ${r.mseRandom.toFixed(3)}`);
      console.log(`  marker: ${JSON.stringify(r.marker)}`);
      console.log(`reads the injection: ${r.readsInjection ? 'yes' : 'no'}`);
    }
    nla.dispose();
  });
}

// `nla sft-av`: warm-start the activation verbalizer (h -> summary) on a store's summaries and
// write it into an NLA directory (av.safetensors + nla.json).
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { readSafetensors } from '../io/safetensors.js';
import { Llama } from '../nn/llama.js';
import { Weights } from '../nn/weights.js';
import { Reconstructor } from '../nla/ar.js';
import { Verbalizer } from '../nla/av.js';
import { evaluate } from '../nla/evaluate.js';
import { trainAvSft } from '../nla/sft.js';
import { AR_FILE, AV_FILE, AV_REF_FILE, CHAIN_HELP, readMeta, saveWeights } from './nla-dir.js';
import { CHECKPOINT_HELP } from './options.js';
import { prepareSft, sftFlags, sftLogger, writeStage } from './sft-common.js';

export function registerSftAv(program: Command): void {
  const cmd = program
    .command('sft-av')
    .description('supervised warm start of the AV (activation -> explanation text) on the store\'s summaries (step 3 of the chain)')
    .option('--alpha <x>', 'norm of the injected vector (default: the store\'s 75th percentile of |h|, or the value already in nla.json)')
    .option('--max-tokens <n>', 'explanation length cap used by rl, eval and explain (recorded in nla.json)', '64')
    .option('--fact-weight <w>', 'weight of the summary tokens that state a known fact\'s value (outside quotations; stores with truths) in the loss, a weighted mean over target tokens (1 = plain mean)', '1')
    .option('--quote-weight <w>', 'weight of the tokens of the summary\'s opening quotation (the words read, which the AV reads off h) in the same weighted mean (1 = plain mean)', '1');
  sftFlags(cmd, { split: 'av', steps: 800, batchSize: 32, lr: 2e-3, evalRows: 64 }).addHelpText(
    'after',
    `
The AV is a full copy of M; h is normalised, scaled to --alpha and written over the input
embedding of the placeholder in "Explain the thought. <concept>X</concept> <explanation>";
loss = NLL of the summary tokens (and "</explanation>", EOS) only; --fact-weight W weighs the
tokens naming a known fact's value W times (a weighted mean; issue 11), --quote-weight Q the
tokens of the opening quotation (the words read) Q times.
Reads --store (rows of --split with summaries) and --model. Writes --out/av.safetensors,
--out/nla.json (created if missing), the tokenizer, metrics lines {"stage":"sft-av",step,loss,lr};
if --out already has an AR (from \`nla sft-ar\`), scores greedy explanations of held-out rows with
it {"stage":"sft-av-eval",fve,fveShuffled,fveOtherStory,parse,fields,facts}.
Checkpoints (every 100 steps by default):
${CHECKPOINT_HELP}

Example:
  nla sft-av --store runs/x/activations --model stories260K.bin --out runs/x/nla --steps 800
${CHAIN_HELP}`,
  );
  cmd.action(async (_: unknown, c: Command) => {
    const s = await prepareSft(c, 'sft-av');
    const { M, tok } = s.studied;
    const alpha = s.o.optNum('alpha', { min: 0 }) ?? readMeta(s.out)?.alpha ?? s.store.manifest.norms.q75;
    const maxTokens = s.o.int('maxTokens', 1);
    const av = new Verbalizer(new Llama(M.cfg, await M.w.clone()), tok, s.prompts, alpha);
    console.error(`nla: alpha ${alpha.toFixed(3)}`);
    const log = sftLogger(s, 'sft-av');
    const factWeight = s.o.num('factWeight', { min: 0 });
    const quoteWeight = s.o.num('quoteWeight', { min: 0 });
    if (factWeight !== 1) console.error(`nla: fact-token weight ${factWeight}`);
    if (quoteWeight !== 1) console.error(`nla: quote-token weight ${quoteWeight}`);
    await trainAvSft(av, s.train, { ...s.schedule, factWeight, quoteWeight, onLog: log.onLog, onCheckpoint: log.onCheckpoint, onSkip: log.onSkip });
    log.done();
    await saveWeights(path.join(s.out, AV_FILE), av.model.w);
    // A new warm start: an older RL reference (av-ref.safetensors) no longer applies.
    fs.rmSync(path.join(s.out, AV_REF_FILE), { force: true });
    const result: Record<string, unknown> = {};
    const arFile = path.join(s.out, AR_FILE);
    if (s.evalSet.meta.length && fs.existsSync(arFile)) {
      const ar = Reconstructor.fromWeights(M.cfg, Weights.fromHost(readSafetensors(arFile)), s.layer, tok, s.prompts);
      const r = await evaluate(av, ar, s.evalSet.h, s.evalSet.meta, s.stats.variance, { temperature: 0, maxTokens });
      ar.model.w.dispose();
      Object.assign(result, { evalFve: r.fve, evalParse: r.parseRate, evalFields: r.fields, evalFacts: r.facts });
      s.metrics.write('sft-av-eval', { rows: s.evalSet.meta.length, fve: r.fve, fveShuffled: r.fveShuffled, fveOtherStory: r.fveOtherStory, parse: r.parseRate, fields: r.fields, facts: r.facts });
      console.log(`greedy explanations of ${s.evalSet.meta.length} dev rows, scored by the AR in ${s.out}: FVE ${r.fve.toFixed(3)} (against another story ${r.fveOtherStory.toFixed(3)}), parsed ${(r.parseRate * 100).toFixed(0)}%${r.facts !== undefined ? `, story facts stated ${r.facts.toFixed(3)}` : ''}`);
      r.examples.slice(0, 3).forEach((e) => console.log(`  ${e.explanation ?? '(unparseable)'}  (mse ${e.mse.toFixed(3)})`));
    } else if (!fs.existsSync(arFile)) console.log(`(no AR in ${s.out} yet: run \`nla sft-ar --out ${s.out}\` to complete the NLA)`);
    writeStage(s, 'sft-av', { alpha, maxExplanationTokens: maxTokens }, result);
    console.log(`wrote ${path.join(s.out, AV_FILE)} and ${path.join(s.out, 'nla.json')}`);
    av.model.w.dispose();
    M.w.dispose();
  });
}

// `nla sft-ar`: warm-start the activation reconstructor (summary -> h) on a store's summaries
// and write it into an NLA directory (ar.safetensors + nla.json).
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { Reconstructor } from '../nla/ar.js';
import { normalizedMseHost } from '../nla/loss.js';
import { trainArSft } from '../nla/sft.js';
import { AR_FILE, AV_FILE, CHAIN_HELP, saveWeights } from './nla-dir.js';
import { CHECKPOINT_HELP } from './options.js';
import { prepareSft, sftFlags, sftLogger, writeStage } from './sft-common.js';

export function registerSftAr(program: Command): void {
  const cmd = program
    .command('sft-ar')
    .description('supervised warm start of the AR (explanation text -> activation) on the store\'s summaries (step 2 of the chain)');
  sftFlags(cmd, { split: 'ar', steps: 600, batchSize: 32, lr: 1e-3, evalRows: 200 }).addHelpText(
    'after',
    `
The AR is M's blocks 0..K with an identity-initialised d x d head, read at the last token of
"Summary of the following text: {summary}", the summary's last quoted word; loss = MSE of L2-normalised
vectors (FVE = 1 - loss / Var, logged as "fve").
Reads --store (rows of --split with summaries) and --model. Writes --out/ar.safetensors,
--out/nla.json (created if missing: model, layer, alpha, Var, mean, prompts; the AV comes from
\`nla sft-av\`), the tokenizer, metrics lines {"stage":"sft-ar",step,loss,lr,fve} and then the
held-out FVE of the AR on true summaries (split dev) {"stage":"sft-ar-eval"}.
Checkpoints (every 100 steps by default):
${CHECKPOINT_HELP}

Example:
  nla sft-ar --store runs/x/activations --model stories260K.bin --out runs/x/nla --steps 600
  nla sft-ar --config sft-ar.json --resume        # continue an interrupted run
${CHAIN_HELP}`,
  );
  cmd.action(async (_: unknown, c: Command) => {
    const s = await prepareSft(c, 'sft-ar');
    const { M, tok } = s.studied;
    const ar = await Reconstructor.fromModel(M, s.layer, tok, s.prompts);
    const log = sftLogger(s, 'sft-ar', (loss) => ({ fve: 1 - loss / s.stats.variance }));
    await trainArSft(ar, s.train, { ...s.schedule, onLog: log.onLog, onCheckpoint: log.onCheckpoint, onSkip: log.onSkip });
    log.done();
    await saveWeights(path.join(s.out, AR_FILE), ar.model.w);
    const result: Record<string, number> = {};
    if (s.evalSet.meta.length) {
      const texts = s.evalSet.meta.map((m) => m.summary);
      if (texts.every((t): t is string => typeof t === 'string')) {
        const pred = await ar.predictHost(texts);
        let mse = 0;
        for (let i = 0; i < texts.length; i++) mse += normalizedMseHost(pred, s.evalSet.h, ar.d, i, i) / texts.length;
        result.evalFve = 1 - mse / s.stats.variance;
        s.metrics.write('sft-ar-eval', { rows: texts.length, mse, fve: result.evalFve });
        console.log(`AR on ${texts.length} held-out true summaries: FVE ${result.evalFve.toFixed(3)} (MSE ${mse.toFixed(4)}, Var ${s.stats.variance.toFixed(3)})`);
      }
    }
    writeStage(s, 'sft-ar', {}, result);
    console.log(`wrote ${path.join(s.out, AR_FILE)} and ${path.join(s.out, 'nla.json')}${fs.existsSync(path.join(s.out, AV_FILE)) ? ' (the directory already has an AV: a complete NLA)' : `; next: nla sft-av --out ${s.out}`}`);
    ar.model.w.dispose();
    M.w.dispose();
  });
}

// Subcommands beyond `info`, registered in one place. The NLA chain, in order:
// extract -> sft-ar -> sft-av -> rl -> eval -> explain (see nla-dir.ts for the directories).
import type { Command } from 'commander';
import { registerActivations } from './activations.js';
import { registerCheck } from './check.js';
import { registerDatagen } from './datagen.js';
import { registerDemo } from './demo.js';
import { registerEval } from './eval.js';
import { registerExplain } from './explain.js';
import { registerExport } from './export.js';
import { registerExtract } from './extract.js';
import { registerFaithfulness } from './faithfulness.js';
import { registerGenerate } from './generate.js';
import { registerReport } from './report.js';
import { registerRl } from './rl.js';
import { registerServe } from './serve.js';
import { registerWorld } from './world.js';
import { registerSftAr } from './sft-ar.js';
import { registerSftAv } from './sft-av.js';

export function registerAll(program: Command): void {
  registerDemo(program);
  registerGenerate(program);
  registerActivations(program);
  registerDatagen(program);
  registerExtract(program);
  registerSftAr(program);
  registerSftAv(program);
  registerRl(program);
  registerEval(program);
  registerExplain(program);
  registerExport(program);
  registerCheck(program);
  registerReport(program);
  registerServe(program);
  registerWorld(program);
  registerFaithfulness(program);
}

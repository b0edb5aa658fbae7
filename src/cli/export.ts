// `nla export --format reference`: write an NLA as the reference implementation lays it out
// (av/ + ar/ with nla_meta.yaml), so a run continues on its distributed trainer.
import type { Command } from 'commander';
import { loadNLA } from '../nla/nla.js';
import { writeReferencePair } from '../nla/reference-export.js';
import { nlaSource, PAIR_OPTIONS } from './nla-dir.js';
import { Opts, withConfig } from './options.js';

export function registerExport(program: Command): void {
  const cmd = program
    .command('export')
    .description('write an NLA in another layout: --format reference writes av/ and ar/ as the reference implementation (kitft/natural_language_autoencoders) lays them out')
    .option('--format <name>', 'output layout: reference (required)')
    .option('--nla <dir>', 'the NLA: nla\'s own directory (nla.json) or a reference pair directory (av/ + ar/) (required, or --av/--ar)')
    .option(...PAIR_OPTIONS[0])
    .option(...PAIR_OPTIONS[1])
    .option('--out <dir>', 'output directory; av/ and ar/ are written inside it (required)')
    .option('--dtype <t>', 'dtype of the model weights: f32, bf16 or f16 (value_head.safetensors is always bf16)', 'f32')
    .addHelpText(
      'after',
      `
Writes <out>/av (config.json, model.safetensors, tokenizer files, nla_meta.yaml) and <out>/ar
(config.json with K+1 layers, model.safetensors = embedding + blocks 0..K without the final norm,
value_head.safetensors (bf16), tokenizer files, nla_meta.yaml with parent_checkpoints extended).
An NLA nla trained (nla.json, llama2.c tokenizer) gets a tokenizer.json that encodes as the
llama2.c tokenizer does, a chat template that renders nla's own AV prompt, and HF-layout q/k
weights. Its AV prompt opens <explanation> itself: the reference's parser reads the output
alone, so its inference and RL read such outputs as missing the tag until its SFT has taught
the AV to write it (see the README, "Handing a run to the reference trainer").

Examples:
  nla export --format reference --nla runs/x/nla --out runs/x/reference
  nla export --format reference --nla downloads/qwen7b-nla --out runs/q/export --dtype bf16`,
    );
  withConfig(cmd).action(async (_: unknown, c: Command) => {
    const o = Opts.of(c);
    const format = o.oneOf('format', ['reference'] as const);
    const dtype = o.oneOf('dtype', ['f32', 'bf16', 'f16'] as const);
    const { source } = nlaSource(o);
    const out = o.need('out', '<dir>');
    const nla = await loadNLA(source);
    const w = await writeReferencePair(nla, out, { dtype, createdBy: `nla export --format ${format}`, source: typeof source === 'string' ? source : undefined });
    console.log(`wrote ${w.av} and ${w.ar}`);
    nla.dispose();
  });
}

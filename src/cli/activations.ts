// `nla activations`: the layer-K residual stream of a text, one row per token.
import type { Command } from 'commander';
import { extractActivations } from '../nla/extract.js';
import { checkLayer, loadStudied, Opts, WEIGHTS_DTYPE_HELP, weightsDtype, withConfig } from './options.js';

export function registerActivations(program: Command): void {
  const cmd = program
    .command('activations')
    .description('print the activations h of a text at layer K (the output of block K), one row per token')
    .option('--model <path>', 'llama2.c checkpoint (.bin) or Hugging Face directory (required)')
    .option('--weights-dtype <d>', WEIGHTS_DTYPE_HELP, 'auto')
    .option('--tokenizer <path>', 'tokenizer file (default: beside the model)')
    .option('--layer <k>', 'layer K = the output of block K (Hugging Face hidden_states[K+1]); 0..blocks-1 (required)')
    .option('--text <text>', 'the text (BOS is prepended; its row comes first) (required)')
    .option('--json', 'print {"layer":K,"tokens":[...],"ids":[...],"activations":[[...],...]}')
    .addHelpText(
      'after',
      `
Reads the model; writes to stdout. Without --json, prints per token its norm and first values.
Activations are raw (not normalised); NLAs normalise them to norm sqrt(d) at train time.

Example:
  nla activations --model stories260K.bin --layer 3 --text "Once upon a time" --json`,
    );
  withConfig(cmd).action(async (_: unknown, c: Command) => {
    const o = Opts.of(c);
    const { loaded, M, tok } = await loadStudied(o.need('model'), o.str('tokenizer'), { dtype: weightsDtype(o) });
    const layer = o.int('layer');
    checkLayer(layer, M.cfg.nLayers, loaded.name);
    const text = o.need('text');
    const ids = tok.encode(text, { bos: true });
    if (ids.length > M.cfg.maxSeqLen) throw new Error(`--text is ${ids.length} tokens, more than the model's context of ${M.cfg.maxSeqLen}`);
    const h = await extractActivations(M, layer, [{ ids, positions: ids.map((_, i) => i), meta: [] }]);
    const d = M.cfg.dim;
    const tokens = ids.map((id, i) => (i === 0 ? tok.pieces([id])[0] : tok.decodeToken(ids[i - 1], id)));
    const rows = ids.map((_, i) => Array.from(h.subarray(i * d, (i + 1) * d)));
    if (o.bool('json')) {
      console.log(JSON.stringify({ layer, tokens, ids, activations: rows }));
    } else {
      console.log(`layer ${layer} of ${loaded.name} (d = ${d}), ${ids.length} tokens`);
      rows.forEach((r, i) => {
        const norm = Math.sqrt(r.reduce((a, v) => a + v * v, 0));
        console.log(`${String(i).padStart(4)} ${JSON.stringify(tokens[i]).padEnd(14)} |h| ${norm.toFixed(3).padStart(8)}  [${r.slice(0, 6).map((v) => v.toFixed(3)).join(', ')}${d > 6 ? ', …' : ''}]`);
      });
    }
    M.w.dispose();
  });
}

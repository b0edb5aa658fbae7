// `nla generate`: sample text from a model, with llama2.c's semantics (steps count from BOS and
// include the prompt's tokens; BOS ends the text; temperature 0 is greedy).
import type { Command } from 'commander';
import { StreamDecoder } from '../io/tokenizer.js';
import { generate } from '../nn/generate.js';
import { loadStudied, Opts, WEIGHTS_DTYPE_HELP, weightsDtype, withConfig } from './options.js';

export function registerGenerate(program: Command): void {
  const cmd = program
    .command('generate')
    .description('generate text from a model (llama2.c run semantics) and print it')
    .option('--model <path>', 'llama2.c checkpoint (.bin) or Hugging Face directory (required)')
    .option('--weights-dtype <d>', WEIGHTS_DTYPE_HELP, 'auto')
    .option('--tokenizer <path>', 'tokenizer file (default: beside the model, or tokenizer.json in an HF directory)')
    .option('--prompt <text>', 'text to continue', '')
    .option('--steps <n>', 'total positions from BOS, prompt tokens included, as llama2.c -n', '256')
    .option('--temperature <t>', '0 = greedy (argmax); 1 = the model\'s distribution', '1')
    .option('--top-p <p>', 'nucleus sampling: keep the smallest set of tokens with mass above p (1 = off)', '0.9')
    .option('--top-k <k>', 'keep only the k most likely tokens (0 = off)', '0')
    .option('--seed <n>', 'sampling seed (same seed, same text)', '0')
    .addHelpText(
      'after',
      `
Reads the model and tokenizer; writes the text to stdout (timing to stderr). Like llama2.c,
--steps counts positions from BOS including the prompt's tokens (so -n 200 with a 5-token
prompt generates 196), generation stops early at BOS, and the defaults are temperature 1, top-p 0.9.

Example:
  nla generate --model stories260K.bin --prompt "Once upon a time" --steps 200 --temperature 0`,
    );
  withConfig(cmd).action(async (_: unknown, c: Command) => {
    const o = Opts.of(c);
    const { M, tok } = await loadStudied(o.need('model'), o.str('tokenizer'), { dtype: weightsDtype(o) });
    const prompt = tok.encode(o.str('prompt') ?? '', { bos: true });
    let steps = o.int('steps', 1);
    const cap = M.cfg.maxSeqLen - 1;
    if (steps > cap) {
      console.error(`nla: --steps ${steps} exceeds the model's context; using ${cap}`);
      steps = cap;
    }
    const maxNew = steps - (prompt.length - 1);
    if (maxNew < 1) throw new Error(`--steps ${steps} leaves no room after the prompt's ${prompt.length - 1} tokens (+ BOS); raise --steps`);
    const t0 = performance.now();
    const g = await generate(M, [prompt], {
      maxNewTokens: maxNew,
      temperature: o.num('temperature', { min: 0 }),
      topP: o.num('topP', { min: 0, max: 1 }),
      topK: o.int('topK', 0),
      seed: o.int('seed'),
      stopTokens: tok.bosId >= 0 ? [tok.bosId] : [],
    });
    const out = g.tokens[0].filter((t, i, a) => !(i === a.length - 1 && g.stopped[0]));
    const ids = [...prompt, ...out];
    const dec = new StreamDecoder(tok, ids[0]);
    let text = '';
    for (let i = 1; i < ids.length; i++) text += dec.push(ids[i]);
    text += dec.end();
    console.log(text);
    const secs = (performance.now() - t0) / 1000;
    console.error(`nla: ${out.length} tokens in ${secs.toFixed(2)}s (${(out.length / secs).toFixed(1)} tok/s)`);
    M.w.dispose();
  });
}

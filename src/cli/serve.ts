// `nla serve`: the viewer as a local web app on Node's http server (src/viewer/server.ts).
import type { Command } from 'commander';
import { ViewerServer } from '../viewer/server.js';
import { nlaSource, PAIR_OPTIONS } from './nla-dir.js';
import { Opts, withConfig } from './options.js';

export function registerServe(program: Command): void {
  const cmd = program
    .command('serve')
    .description('a local web page to explain text token by token with an NLA: type or paste text, click a token for its explanations and baselines, see the training curves')
    .option('--nla <dir>', 'NLA directory: nla\'s own (nla.json) or a reference pair (av/ and ar/ with nla_meta.yaml) (required, or --av/--ar)')
    .option(...PAIR_OPTIONS[0])
    .option(...PAIR_OPTIONS[1])
    .option('--max-tokens <n>', 'explanation length cap (default: the NLA\'s)')
    .option('--port <n>', 'port to listen on (0 = any free port)', '8080')
    .option('--host <addr>', 'address to listen on; the default keeps it to this machine', '127.0.0.1')
    .option('--store <dir>', 'activation store to fit the token baselines on (default: from nla.json\'s training records, or <nla>/../activations)')
    .option('--metrics <file>', 'training metrics to chart (default: <nla>/metrics.jsonl, or <nla>/../metrics.jsonl)')
    .option('--model <path>', 'the studied model, if it moved since training (its sha256 must match nla.json); for a reference pair, the base model\'s HF directory')
    .addHelpText(
      'after',
      `
Prints the page's URL and serves until interrupted (Ctrl-C). Requests queue on the one GPU
device: each waits for the one before and the page shows how many are ahead, then progress.
A bad input (empty text, a text longer than the model's context, an NLA directory that does not
load) is answered with a message on the page and a 4xx status; the server keeps serving.
The page's "NLA directory" field switches to another NLA on this machine (nla's own or a
reference pair's directory); its "vectors file" field explains vectors from a file on this
machine instead of text (the formats of \`nla explain --vectors\`). A reference pair carries no
Var: FVE is then computed over the activations shown (the page says so). For known-answer text,
its "known facts" field (name=Lily place=park ...) marks each fact an explanation states true or
false at the clicked token.

How to read the page: see \`nla report --help\` (the same page, written to a file).

Example:
  nla demo --quick --out runs/demo
  nla serve --nla runs/demo/nla --port 8080      then open http://127.0.0.1:8080/`,
    );
  withConfig(cmd).action(async (_: unknown, c: Command) => {
    const o = Opts.of(c);
    // A broken --nla is shown on the page (the server keeps serving), so only --av/--ar is resolved here.
    const { source, label, pair } = o.has('av') || o.has('ar') ? nlaSource(o) : { source: o.need('nla', '<dir> (or --av <dir> --ar <dir>)'), label: o.need('nla'), pair: undefined };
    const server = new ViewerServer({
      nla: label,
      pair: typeof source === 'string' ? undefined : pair,
      maxTokens: o.optNum('maxTokens', { int: true, min: 1 }),
      port: o.int('port', 0, 65535),
      host: o.need('host'),
      store: o.str('store'),
      metrics: o.str('metrics'),
      model: o.str('model'),
      log: (l) => console.error(`nla serve: ${l}`),
    });
    const url = await server.start();
    console.log(`nla serve: ${url}`);
    const stop = () => void server.close().then(() => process.exit(0));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    // Keep running: the server's socket holds the event loop open.
    await new Promise(() => undefined);
  });
}

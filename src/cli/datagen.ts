// `nla datagen summarize`: warm-start data. Ask an OpenAI-compatible chat endpoint to summarise
// texts (or contexts cut from a corpus) into JSONL {id, text, summary}; resumable.
import * as fs from 'node:fs';
import type { Command } from 'commander';
import { DEFAULT_SUMMARY_PROMPT, readTextCorpus, summarizeCorpus, type TextItem } from '../nla/datagen.js';
import { tokenizeWithOffsets } from '../nla/extract.js';
import { randomCuts } from '../nla/corpus.js';
import { rng } from '../util/rng.js';
import { loadTokenizerFor } from '../nn/load.js';
import { Opts, progressBar, withConfig, wrap } from './options.js';

export function registerDatagen(program: Command): void {
  const group = program.command('datagen').description('build warm-start data (summaries of texts by an LLM)');
  const cmd = group
    .command('summarize')
    .description('summarise texts with an OpenAI-compatible chat endpoint into JSONL {id,text,summary} (resumable: a rerun skips ids already written)')
    .option('--input <file>', 'JSONL lines {"id"?, "text"}: each text summarised as is')
    .option('--corpus <file>', 'plain text (documents separated by blank lines) or JSONL {"text"}: cut into contexts first')
    .option('--cuts <n>', 'with --corpus: contexts per document, cut at random token positions', '4')
    .option('--min-tokens <n>', 'with --corpus: cut only at token index >= this', '30')
    .option('--model <path>', 'with --corpus: the studied model, whose tokenizer places the cuts')
    .option('--tokenizer <path>', 'with --corpus: tokenizer file (instead of --model)')
    .option('--seed <n>', 'with --corpus: seed of the cut positions', '0')
    .option('--out <file>', 'output JSONL (appended to; ids already in it are skipped) (required)')
    .option('--endpoint <url>', 'base URL; "/chat/completions" is appended (required), e.g. https://api.openai.com/v1')
    .option('--api-model <name>', 'the summarising model\'s name at the endpoint (required)')
    .option('--api-key-env <var>', 'name of the environment variable holding the API key (none: no Authorization header)')
    .option('--prompt <text>', 'system prompt (default: the 2-3 most important features for predicting the next token)')
    .option('--prompt-file <file>', 'read the system prompt from a file')
    .option('--temperature <t>', 'sampling temperature of the summariser', '0')
    .option('--concurrency <n>', 'requests in flight', '4')
    .option('--retries <n>', 'extra attempts on 429 / 5xx / network errors', '4')
    .option('--timeout-ms <n>', 'per-request timeout', '120000')
    .addHelpText(
      'after',
      `
Writes one line per finished item at once, so it can be stopped and restarted at any time.
With --corpus, each context is a document cut after a random token (index >= --min-tokens) and
gets the id "DOC:POS"; \`nla extract --summaries OUT\` then reads the activation at each context's
last token and keeps the cuts of one document in one split.
The API key is never a flag: name the variable that holds it with --api-key-env.

Default prompt:
${wrap(DEFAULT_SUMMARY_PROMPT)}

Example:
  export OPENAI_API_KEY=...
  nla datagen summarize --corpus stories.txt --model stories260K.bin --out runs/x/summaries.jsonl \\
    --endpoint https://api.openai.com/v1 --api-model gpt-4o-mini --api-key-env OPENAI_API_KEY
  nla extract --model stories260K.bin --layer 3 --summaries runs/x/summaries.jsonl --out runs/x/activations`,
    );
  withConfig(cmd).action(async (_: unknown, c: Command) => {
    const o = Opts.of(c);
    const input = o.str('input'), corpus = o.str('corpus');
    if (!!input === !!corpus) throw new Error('give exactly one of --input FILE.jsonl and --corpus FILE');
    for (const [flag, f] of [['--input', input], ['--corpus', corpus], ['--prompt-file', o.str('promptFile')]] as const) if (f && !fs.existsSync(f)) throw new Error(`${flag} ${f}: file not found`);
    const out = o.need('out', '<file>');
    const endpoint = o.need('endpoint', '<url>');
    const apiModel = o.need('apiModel', '<name>');
    const apiKeyEnv = o.str('apiKeyEnv');
    if (apiKeyEnv && !process.env[apiKeyEnv]) throw new Error(`--api-key-env ${apiKeyEnv}: that environment variable is not set`);
    if (o.has('prompt') && o.has('promptFile')) throw new Error('give one of --prompt and --prompt-file');
    const prompt = o.has('promptFile') ? fs.readFileSync(o.need('promptFile'), 'utf8').trim() : o.str('prompt');
    let items: TextItem[] | undefined;
    if (corpus) {
      if (!o.has('model') && !o.has('tokenizer')) throw new Error('--corpus needs --model or --tokenizer (its tokenizer places the cuts)');
      const tok = loadTokenizerFor(o.str('model') ?? o.need('tokenizer'), o.str('tokenizer'));
      const rand = rng(o.int('seed'));
      const cuts = o.int('cuts', 1), minTokens = o.int('minTokens', 0);
      items = [];
      readTextCorpus(corpus).forEach((text, doc) => {
        const { ids, offsets } = tokenizeWithOffsets(tok, text);
        for (const i of randomCuts(ids.length, minTokens, cuts, rand)) items!.push({ id: `${doc}:${i}`, text: text.slice(0, offsets[i + 1] ?? text.length) });
      });
      if (!items.length) throw new Error(`${corpus}: no document is longer than --min-tokens ${minTokens} tokens`);
    }
    let bar: ReturnType<typeof progressBar> | undefined;
    const r = await summarizeCorpus({
      items,
      inputJsonl: input,
      outPath: out,
      endpoint,
      model: apiModel,
      apiKeyEnv,
      prompt,
      temperature: o.num('temperature', { min: 0 }),
      concurrency: o.int('concurrency', 1),
      retries: o.int('retries', 0),
      timeoutMs: o.int('timeoutMs', 1),
      onProgress: (done, total) => (bar ??= progressBar('summarize', total)).update(done),
    });
    bar?.done();
    console.log(`${out}: ${r.written} written, ${r.skipped} already there, ${r.total} items`);
  });
}

// `nla report`: the viewer's page written as one self-contained HTML file (explanations,
// baselines, training charts and uPlot inlined) that opens from disk with no server or network.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { writeFileAtomic } from '../io/atomic-write.js';
import { renderPage } from '../viewer/page.js';
import { ViewerSession } from '../viewer/session.js';
import { checkFacts } from '../nla/fact-marks.js';
import { checkSettings, type ViewInput } from '../viewer/view-data.js';
import { nlaSource, PAIR_OPTIONS } from './nla-dir.js';
import { Opts, progressBar, withConfig } from './options.js';

/** A --data file larger than this is refused: far beyond any text a model's context holds. */
export const DATA_MAX_BYTES = 64 * 2 ** 20;

/**
 * The texts of --data: a .jsonl file holds one {"text": ...} a line, optionally with the text's
 * latent facts {"facts": {"name": "Lily", ...}} (known-answer text: the page then marks each
 * fact an explanation states true or false; `nla world sample --jsonl` writes such lines); any
 * other file is one text. `where` names each text's origin for later errors ("file:line").
 * Every error names the file (and the line, for .jsonl): a missing or non-regular file, one
 * beyond DATA_MAX_BYTES, bytes that are not UTF-8, a line that is not a JSON object with a
 * non-blank string "text", or facts that are not known-answer facts.
 */
export function readDataFile(file: string): { texts: ViewInput[]; where: string[] } {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    throw new Error(`--data ${file}: file not found`);
  }
  if (!st.isFile()) throw new Error(`--data ${file}: not a regular file`);
  if (st.size > DATA_MAX_BYTES) throw new Error(`--data ${file}: ${st.size} bytes, more than the ${DATA_MAX_BYTES} a --data file may have`);
  const bytes = fs.readFileSync(file);
  // Fatal decoding: a byte that is not UTF-8 is an error, never a silent U+FFFD. A BOM is dropped.
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const decode = (b: Uint8Array, where: string) => {
    try {
      return utf8.decode(b);
    } catch {
      throw new Error(`${where}: not valid UTF-8 text`);
    }
  };
  if (!file.endsWith('.jsonl')) {
    const text = decode(bytes, file).replace(/\n+$/, '');
    if (!text.trim()) throw new Error(`${file}: no text (the file is empty or blank)`);
    return { texts: [{ text }], where: [file] };
  }
  const texts: ViewInput[] = [], where: string[] = [];
  let start = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  for (let i = 0; start <= bytes.length; i++) {
    let end = bytes.indexOf(0x0a, start);
    if (end < 0) end = bytes.length;
    const at = `${file}:${i + 1}`;
    const line = decode(bytes.subarray(start, end), at);
    start = end + 1;
    if (!line.trim()) continue;
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch (e) {
      throw new Error(`${at}: not valid JSON (${(e as Error).message.slice(0, 200)})`);
    }
    if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new Error(`${at}: expected a JSON object like {"text": "..."}`);
    const row = o as { text?: unknown; facts?: unknown };
    const t = row.text;
    if (typeof t !== 'string') throw new Error(`${at}: field "text" missing or not a string`);
    if (!t.trim()) throw new Error(`${at}: field "text" is blank`);
    texts.push(row.facts === undefined ? { text: t } : { text: t, facts: checkFacts(row.facts, `${at}: field "facts"`) });
    where.push(at);
  }
  if (!texts.length) throw new Error(`${file}: no lines with a "text" field`);
  return { texts, where };
}

/** The texts of --data (readDataFile without their origins). */
export function readDataTexts(file: string): ViewInput[] {
  return readDataFile(file).texts;
}

export function registerReport(program: Command): void {
  const cmd = program
    .command('report')
    .description('write the viewer as one self-contained HTML file: a text\'s tokens coloured by their best explanation\'s FVE, each token\'s explanations and baselines on click, and the training curves and eval table')
    .option('--nla <dir>', 'NLA directory: nla\'s own (nla.json) or a reference pair (av/ and ar/ with nla_meta.yaml) (required, or --av/--ar)')
    .option(...PAIR_OPTIONS[0])
    .option(...PAIR_OPTIONS[1])
    .option('--text <text>', 'the text to explain (BOS is prepended and is position 0)')
    .option('--data <file>', 'texts to explain instead of --text: a .jsonl file with one {"text": ...} a line (with "facts": {"name": "Lily", ...} for known-answer text, whose stated facts the page marks true or false), or any other file as one text')
    .option('--vectors <file>', 'explain vectors from a file instead of text: .npy ((d,) or (n, d)), .safetensors (--tensor), .jsonl (arrays, or objects with --field) or .parquet (activation_vector), as `nla explain --vectors`')
    .option('--tensor <name>', 'the tensor of a .safetensors --vectors file (default: its only one)')
    .option('--field <name>', 'the field of a .jsonl --vectors file holding the array, when lines are objects', 'vector')
    .option('--max-tokens <n>', 'explanation length cap (default: the NLA\'s)')
    .option('--out <file>', 'the HTML file to write', 'report.html')
    .option('--samples <k>', 'explanations per token, sorted best-first by the AR (1 to 16)', '4')
    .option('--temperature <t>', 'sampling temperature (default: 0 for one sample, 1 for several)')
    .option('--seed <n>', 'sampling seed', '0')
    .option('--store <dir>', 'activation store to fit the token baselines on (default: from nla.json\'s training records, or <nla>/../activations)')
    .option('--metrics <file>', 'training metrics to chart (default: <nla>/metrics.jsonl, or <nla>/../metrics.jsonl)')
    .option('--model <path>', 'the studied model, if it moved since training (its sha256 must match nla.json); for a reference pair, the base model\'s HF directory')
    .addHelpText(
      'after',
      `
The file inlines everything it shows (the explanations, the charting library uPlot, the page's
script), so it opens offline from disk and can be attached to an issue or a paper.

How to read it: each token is coloured by the FVE of its best explanation (green 1 = the AR
rebuilt the activation exactly from the text, red <= 0 = no better than the mean activation).
Click a token for its explanations (best first, each with FVE and MSE) and the baselines at
that token: the current token alone, the previous + current token, and the mean activation.
An explanation below the current-token baseline says less than the token itself. Below the
text: the training curves (loss, FVE, reward, KL, length, logit scale) and the eval table
from metrics.jsonl, when the NLA was trained by nla.

Known-answer text (--data lines with "facts", e.g. from \`nla world sample --jsonl\`): each
fact an explanation states outside its quotations is marked ✓ when the text has stated that
value by the clicked token, ✗ when it names another value or a fact not read yet.
Reference pairs (--nla PAIR or --av/--ar, with --model) carry no Var: FVE is computed over the
activations (or --vectors) shown, and the page says so.

Example:
  nla demo --quick --out runs/demo
  nla report --nla runs/demo/nla --text "Once upon a time, there was a little girl named Lily." --out report.html
  nla world sample --jsonl --n 3 > world.jsonl && nla report --nla runs/demo/nla --data world.jsonl --out facts.html
For an interactive page (type text, change the sampling): nla serve --nla runs/demo/nla`,
    );
  withConfig(cmd).action(async (_: unknown, c: Command) => {
    const o = Opts.of(c);
    const { source, label: dir, pair } = nlaSource(o);
    if ([o.has('text'), o.has('data'), o.has('vectors')].filter(Boolean).length !== 1) throw new Error('`nla report` needs exactly one of --text TEXT, --data FILE or --vectors FILE; see `nla report --help`');
    const vectors = o.str('vectors');
    const dataFile = vectors !== undefined || o.has('text') ? undefined : readDataFile(o.need('data'));
    const texts = dataFile?.texts ?? (o.has('text') ? [{ text: o.need('text') }] : []);
    const out = o.need('out');
    const settings = checkSettings({ samples: o.str('samples'), temperature: o.str('temperature'), seed: o.str('seed') }, '--');
    const maxTokens = o.optNum('maxTokens', { int: true, min: 1 });
    const session = new ViewerSession(dir, { store: o.str('store'), metrics: o.str('metrics'), model: o.str('model'), pair: typeof source === 'string' ? undefined : pair, maxTokens });
    // A --data text too long for the context is named by its file and line.
    session.check(dir, texts.map((t) => t.text), dataFile?.where);
    let bar: ReturnType<typeof progressBar> | undefined, doc = 0;
    const progress = (done: number, total: number) => {
      if (done === 0) bar = progressBar(vectors !== undefined ? 'vectors' : texts.length > 1 ? `text ${++doc}/${texts.length}` : 'explain', total);
      bar?.update(done);
      if (done === total) bar?.done();
    };
    const vecs = vectors !== undefined ? await ViewerSession.readVectors(vectors, { tensor: o.str('tensor'), field: o.str('field') }) : undefined;
    const data = vectors !== undefined && vecs ? await session.viewVectors(dir, vectors, vecs, settings, progress) : await session.view(dir, texts, settings, progress);
    fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
    writeFileAtomic(out, [new TextEncoder().encode(renderPage({ mode: 'report', nla: data.nla, data }))]);
    const what = data.vectors ? `${data.vectors.rows.length} vector(s) of ${data.vectors.file}` : `${data.docs.length} text(s), ${data.docs.reduce((s, d) => s + d.tokens.length, 0)} tokens`;
    console.log(`${out}: ${what}, ${settings.samples} explanation(s) each${data.metrics ? `, training charts from ${data.metrics.file}` : ''}${data.nla.varianceNote ? `; ${data.nla.varianceNote}` : ''}; open it in a browser`);
    session.dispose();
  });
}

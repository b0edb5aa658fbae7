// Where the AV's quotes of M's text go wrong: quote accuracy by how many tokens the word read
// spans. Reads the rows `nla eval --model-text N --explanations FILE` writes; each context is
// re-encoded with the NLA's tokenizer (the decoded text of M's own tokens encodes back to them
// but for rare merges) and the word read is its last word unit (corpus.ts wordUnits), as the
// summaries quote it. Prints one JSON line per span length, then every 10th wrong row.
//   node --import tsx scripts/quote-errors.ts --explanations FILE --tokenizer tok512.bin
import * as fs from 'node:fs';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { wordUnits } from '../src/nla/corpus.js';
import { parseQuoteParts } from '../src/nla/quote-format.js';
import { decodePieces } from '../src/nla/text-summary.js';

const arg = (k: string) => {
  const i = process.argv.indexOf(`--${k}`);
  if (i < 0) throw new Error(`quote-errors: --${k} is required`);
  return process.argv[i + 1]!;
};
const file = arg('explanations');
const tok = loadTokenizer(arg('tokenizer'));
const rows = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; context: string; explanation: string | null; quote_exact: boolean });
const mt = rows.filter((r) => r.kind === 'model_text');
if (!mt.length) throw new Error(`quote-errors: ${file} has no model_text rows (run nla eval with --model-text N)`);

const groups = new Map<string, { rows: number; exact: number }>();
const wrong: string[] = [];
for (const r of mt) {
  const pieces = decodePieces(tok, tok.encode(r.context, { bos: false, eos: false } as never) as number[]);
  const text = pieces.join('');
  const unit = wordUnits(text).at(-1);
  let spanned = 0;
  for (let end = text.length, k = pieces.length - 1; k >= 0 && unit && end > unit.start; k--) {
    end -= pieces[k]!.length;
    spanned++;
  }
  const key = spanned >= 3 ? '3+' : String(spanned);
  const g = groups.get(key) ?? { rows: 0, exact: 0 };
  g.rows++;
  g.exact += +r.quote_exact;
  groups.set(key, g);
  if (!r.quote_exact) wrong.push(JSON.stringify({ tokens: spanned, read: unit ? text.slice(unit.start) : '', quoted: r.explanation === null ? null : parseQuoteParts(r.explanation)?.quote ?? null }));
}
for (const [k, g] of [...groups].sort()) console.log(JSON.stringify({ word_tokens: k, rows: g.rows, share: +(g.rows / mt.length).toFixed(3), quote_exact: +(g.exact / g.rows).toFixed(3) }));
console.log(JSON.stringify({ word_tokens: 'all', rows: mt.length, quote_exact: +(mt.filter((r) => r.quote_exact).length / mt.length).toFixed(3) }));
wrong.filter((_, i) => i % 10 === 0).forEach((w) => console.log(w));

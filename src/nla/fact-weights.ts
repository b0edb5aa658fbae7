// Fact-token weights for the AV warm start (issue 11). On world-M some values of a field share
// tok512's first piece (pink ` p in k` / purple ` p u r p le`; cake / cat before the object values
// were changed so that each starts with its own piece): the activation separates them only in a
// direction worth ~0.001 of FVE, so the AR's MSE and RL's reward cannot tell them apart and the
// warm start's cross-entropy is the one signal that names the value. These weights let that
// signal count more on the tokens that state a fact: each target token whose characters overlap a
// known fact value named outside the summary's quotations (as claims.ts reads claims; quoted
// words repeat the text and are not facts) gets weight W, every other token 1.
// The same mechanism weighs the opening quotation (quoteSpan): the words read, which the AV must
// read off h itself (on M's own text a 2-layer MLP on h reads the word read in 0.91 of held-out
// rows, the warm-started AV quotes it in 0.79; docs/experiments.md, "Reading the word off h").
import type { Tokenizer } from '../io/tokenizer.js';
import { FIELDS, type Field, forms } from './corpus.js';
import { QUOTE_MARK } from './quote-format.js';

/** The explanation with every quotation ("...", and the closing `Text: ...` words) blanked to spaces: same length, so offsets hold. */
export function blankQuotes(explanation: string): string {
  const at = explanation.indexOf(QUOTE_MARK);
  const head = at < 0 ? explanation : explanation.slice(0, at) + ' '.repeat(explanation.length - at);
  return head.replace(/"[^"]*("|$)/g, (m) => ' '.repeat(m.length));
}

/** Characters [start, end) of an explanation to weigh; `weight` overrides the caller's W. */
export interface WeightSpan {
  start: number;
  end: number;
  weight?: number;
}

export interface FactSpan extends WeightSpan {
  field: Field;
  value: string;
}

/**
 * The words of the opening quotation, `"very happy bec".` (a fragment's `...` included): what the
 * AV writes first, reading it off h. Undefined when the explanation does not open with one.
 */
export function quoteSpan(explanation: string): WeightSpan | undefined {
  const m = /^"(.*?)"\.(?= |$)/s.exec(explanation);
  return m && m[1] ? { start: 1, end: 1 + m[1].length } : undefined;
}

/**
 * Where the explanation names each known fact's value (any of its forms, whole words, names with
 * their capital as corpus.ts `mentions` matches them), outside quotations. Values of a field that
 * are not the known one are not weighted: a training summary states true facts only.
 */
export function factSpans(explanation: string, known: Partial<Record<Field, string>>, fields: readonly Field[] = FIELDS): FactSpan[] {
  const text = blankQuotes(explanation);
  const out: FactSpan[] = [];
  for (const field of fields) {
    const value = known[field];
    if (value === undefined) continue;
    for (const w of forms(field, value)) {
      const esc = w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      const re = new RegExp(`(?<![a-zA-Z])${esc}(?![a-zA-Z])`, field === 'name' ? 'g' : 'gi');
      for (const m of text.matchAll(re)) out.push({ field, value, start: m.index!, end: m.index! + w.length });
    }
  }
  return out.sort((a, b) => a.start - b.start);
}

/**
 * Per target id, W (or the span's own weight) when the token's bytes overlap a span, else 1 (the
 * largest weight when it overlaps several). `prevId` is the token before
 * the target (the prompt's last), `text` what the target ids decode to (the explanation, then
 * whatever closes it); the ids must decode to exactly that text, else the offsets would be wrong.
 */
export function factTokenWeights(tok: Tokenizer, prevId: number, ids: readonly number[], text: string, spans: readonly WeightSpan[], w: number): number[] {
  const enc = new TextEncoder();
  const starts: number[] = [];
  const chunks: Uint8Array[] = [];
  let off = 0, prev = prevId;
  for (const id of ids) {
    const b = tok.tokenBytes(prev, id);
    starts.push(off);
    chunks.push(b);
    off += b.length;
    prev = id;
  }
  const all = new Uint8Array(off);
  chunks.forEach((c, i) => all.set(c, starts[i]));
  const decoded = new TextDecoder().decode(all);
  if (!decoded.startsWith(text) && !text.startsWith(decoded)) throw new Error(`fact weights: the target ids decode to ${JSON.stringify(decoded.slice(0, 60))}, not the summary ${JSON.stringify(text.slice(0, 60))}`);
  const byteAt = (c: number) => enc.encode(text.slice(0, c)).length;
  const bspans = spans.map((s) => [byteAt(s.start), byteAt(s.end), s.weight ?? w] as const);
  return ids.map((_, i) => {
    const a = starts[i], b = a + chunks[i].length;
    let out = 1;
    for (const [s, e, x] of bspans) if (a < e && s < b) out = out === 1 ? x : Math.max(out, x);
    return out;
  });
}

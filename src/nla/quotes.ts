// Quote accuracy: does an explanation quote the words just read, and does it name characters
// the text does not contain? Meant for held-out text (stories sampled from M, TinyStories), where
// the only truth is the text itself. An explanation is what prompts.ts parseExplanation returns
// (the AV's output up to its closing tag, trimmed), or undefined when it never closed.
//
// Definitions (all on whitespace-normalised strings: whitespace runs as one space, trimmed):
//  - quote: quote-format.ts parseQuote (the words after `Text: ...`, to the end). An explanation
//    with none has quoted undefined and is neither exact nor loose.
//  - exact: the context ends with the quote, and the quote starts at a word boundary of the
//    context (the character before it is not a letter, or the quote itself does not start with
//    a letter), so "ig red" is not a quote of "the big red". An empty quote is exact only for an
//    empty context.
//  - fragment: the quote is written as the end of a word (quote-format.ts, `Text: ...ck`): exact
//    when the context ends with it, wherever the word it ends starts ("ck" of "its pock"). A
//    fragment's loose is its exact. quoteAccuracy reports the share of fragments beside the
//    rates, since a fragment is easier to get right than a whole word.
//  - ignoringCutWord (loose): exact, or the quote is right except for the context's last word,
//    which may be cut off at the cut ("bec" of "because"). Let cw be the letters at the end of
//    the context (its possibly cut last word, '' when the context does not end in a letter) and
//    qw the letters at the end of the quote. Then loose holds when cw is non-empty and either
//      (a) qw is non-empty and prefix-compatible with cw (one starts with the other, case
//          sensitive), and the quote without qw is empty or exactly (as above) a quote of the
//          context without cw: "very happy because", "very happy be" or "because" for the
//          context "... very happy bec"; or
//      (b) the quote is exactly a quote of the context without cw: it stops before the cut
//          word ("very happy"; the empty quote when the context is one word).
//    A different last word ("very happy sad") is not loose.
//  - inventedNames: the generator's names (corpus.ts FIELD_VALUES.name), written capitalised
//    as whole words anywhere in the explanation, that the context does not contain as a
//    capitalised whole word, in order of first appearance in the explanation. The next-word
//    clause (`Then "Lily"`) is left out: it predicts the word after the cut, which the context
//    cannot contain yet (opts.countNextWord counts it too).
import { FIELD_VALUES, forms, mentions, type Field } from './corpus.js';
import { parseQuoteParts } from './quote-format.js';

/** Whitespace runs as one space, trimmed. */
export function normSpace(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

// `quote` ends `context` and starts at a word boundary of it (both already normalised).
function endsWithQuote(context: string, quote: string): boolean {
  if (!quote) return !context;
  if (!context.endsWith(quote)) return false;
  const before = context[context.length - quote.length - 1];
  return before === undefined || !/[A-Za-z]/.test(before) || !/^[A-Za-z]/.test(quote);
}

function splitLastWord(s: string): [rest: string, word: string] {
  const m = /[A-Za-z]+$/.exec(s);
  return m ? [s.slice(0, m.index).trimEnd(), m[0]] : [s, ''];
}

export interface QuoteRow {
  /** The quote as written (undefined: no explanation or no quote in it). */
  quoted: string | undefined;
  /** The quote is written as a fragment (the end of a word). */
  fragment: boolean;
  exact: boolean;
  ignoringCutWord: boolean;
  inventedNames: string[];
  /** The explanation itself was undefined (its AV output never closed). */
  unparseable: boolean;
}

export interface QuoteAccuracy {
  rows: QuoteRow[];
  /** Rows scored (every row; unparseable ones count as not exact and inventing nothing). */
  n: number;
  /** Share of rows whose quote is exact. */
  quoteExact: number;
  /** Share of rows whose quote is exact or right except for the cut last word. */
  quoteLoose: number;
  /** Share of rows naming at least one character the context does not contain. */
  inventedNameRate: number;
  /** Share of rows whose quote is a fragment (the end of a word), exact or not. */
  fragmentRate: number;
  /** Rows whose explanation was undefined. */
  unparseable: number;
  /** Parseable rows with no quote. */
  noQuote: number;
}

export interface QuoteOptions {
  /** Character names checked for invention (default: the generator's, corpus.ts FIELD_VALUES.name). */
  names?: readonly string[];
  /** Count a name in the next-word clause (`Then "Lily"`) as invented too (default false). */
  countNextWord?: boolean;
}

// The next-word clause of a summary: a prediction of what follows the cut, not a claim about the
// text read (a name there is one the text is about to write).
const NEXT_CLAUSE = /\bThen "[^"]*"/g;

/** Score one explanation against its context (the decoded text read up to the cut). */
export function quoteRow(explanation: string | undefined, context: string, opts: QuoteOptions = {}): QuoteRow {
  const names = opts.names ?? FIELD_VALUES.name;
  if (explanation === undefined) return { quoted: undefined, fragment: false, exact: false, ignoringCutWord: false, inventedNames: [], unparseable: true };
  const parts = parseQuoteParts(explanation);
  const quoted = parts?.quote;
  const fragment = parts?.fragment ?? false;
  const ctx = normSpace(context);
  let exact = false;
  let loose = false;
  if (quoted !== undefined) {
    const q = normSpace(quoted);
    exact = fragment ? ctx.endsWith(q) : endsWithQuote(ctx, q);
    const [ctxRest, cw] = splitLastWord(ctx);
    if (!exact && cw && !fragment) {
      const [qRest, qw] = splitLastWord(q);
      const compatible = qw !== '' && (qw.startsWith(cw) || cw.startsWith(qw));
      loose = (compatible && (qRest === '' || endsWithQuote(ctxRest, qRest))) || endsWithQuote(ctxRest, q);
    }
    loose ||= exact;
  }
  const stated = opts.countNextWord ? explanation : explanation.replace(NEXT_CLAUSE, '');
  const inventedNames = names
    .filter((name) => mentions(stated, name, true) && !mentions(context, name, true))
    .map((name) => ({ name, at: stated.search(new RegExp(`(^|[^a-zA-Z])${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}($|[^a-zA-Z])`)) }))
    .sort((a, b) => a.at - b.at)
    .map((x) => x.name);
  return { quoted, fragment, exact, ignoringCutWord: loose, inventedNames, unparseable: false };
}

/**
 * The facts an explanation states (outside its next-word clause) that a reference (the row's true
 * summary, also outside its next-word clause) does not, as `field=value`, over `fields` (default:
 * the characters' names). RL's claim cost counts these on training rows, where the summary is the
 * truth, as inventedNames counts names the text lacks on held-out rows. A summary states the
 * names the text shows near the cut (model text: the last --facts-window word units; stories:
 * the story's characters; world-M: the facts its activation holds), so this is the stricter of
 * the two. Names match with their capital (corpus.ts mentions), other fields in any of their
 * forms (corpus.ts forms: "parks", "lost").
 */
export function unsupportedClaims(explanation: string, reference: string, fields: readonly Field[] = ['name']): string[] {
  const said = explanation.replace(NEXT_CLAUSE, '');
  const ref = reference.replace(NEXT_CLAUSE, '');
  const out: string[] = [];
  for (const f of fields) {
    const states = (text: string, v: string) => forms(f, v).some((w) => mentions(text, w, f === 'name'));
    for (const v of FIELD_VALUES[f]) if (states(said, v) && !states(ref, v)) out.push(`${f}=${v}`);
  }
  return out;
}

/**
 * Whether an explanation's quotations of the words read (the opening `"..."` and the closing
 * `Text: ...` words, whitespace-normalised) differ from a reference's (the row's true summary).
 * RL's quote cost counts these on training rows: a rollout that misreads the words read tends
 * to write a template's facts around the misreading (issue 11).
 */
export function misquotes(explanation: string, reference: string): boolean {
  const opening = (t: string) => /^\s*"(.*?)"\./.exec(t)?.[1];
  const closing = (t: string) => parseQuoteParts(t)?.quote;
  const same = (a: string | undefined, b: string | undefined) => (a === undefined ? b === undefined : b !== undefined && normSpace(a) === normSpace(b));
  return !same(opening(explanation), opening(reference)) || !same(closing(explanation), closing(reference));
}

/** Quote accuracy of explanations against their contexts (same length). */
export function quoteAccuracy(explanations: (string | undefined)[], contexts: string[], opts: QuoteOptions = {}): QuoteAccuracy {
  if (explanations.length !== contexts.length) {
    throw new Error(`quoteAccuracy: ${explanations.length} explanations but ${contexts.length} contexts`);
  }
  const rows = explanations.map((e, i) => quoteRow(e, contexts[i]!, opts));
  const n = rows.length;
  const share = (k: number) => (n ? k / n : 0);
  return {
    rows,
    n,
    quoteExact: share(rows.filter((r) => r.exact).length),
    quoteLoose: share(rows.filter((r) => r.ignoringCutWord).length),
    inventedNameRate: share(rows.filter((r) => r.inventedNames.length > 0).length),
    fragmentRate: share(rows.filter((r) => r.fragment).length),
    unparseable: rows.filter((r) => r.unparseable).length,
    noQuote: rows.filter((r) => !r.unparseable && r.quoted === undefined).length,
  };
}

// How a summary or an explanation writes the words just read: first, in quotes, and again last,
// after a fixed mark,
//   "the big red". Lily, park. Then "ball". Text: ... the big red
// First because the AV reads them off h best before it writes anything else (written after the
// facts and the next word, its current word fell from 0.71 to 0.55 on dev); last because the AR
// reads the explanation's last token, and ending on the words the activation was read at lets
// M's own blocks (the AR's start) compute nearly that activation again (corpus.ts describeCut).
// The last copy is the quote: what the AR reads and what quote accuracy scores. Whitespace runs
// in the words are one space.
//
// A quote may be a fragment: the end of a word whose start it leaves out, written with no space
// after the mark's dots,
//   "...ck". Lily, park. Then "pocket". Text: ...ck
// (quote-unit 'token': the last token read, when it starts inside a word). A layer-3 activation
// of stories260K holds its current token (linear probe 0.90-0.96) far better than the one before
// it (0.52-0.56), and the AV quoted a one-token word exactly in 93% of M's text but a word of
// several tokens in 37% (dev): the fragment quotes what a linear probe reads of h. Not the
// default: on dev its quotes were right more often (0.805 vs 0.615) but the AR, told only the
// fragment, rebuilt h far worse (0.433 vs 0.764 on true summaries), so FVE fell (README).

/** Opens the words read; everything after it, to the end of the explanation, is the quote. */
export const QUOTE_MARK = 'Text: ...';

/** The closing quote part of a summary; a fragment (the end of a word) follows the mark with no space. */
export function renderQuote(words: string, fragment = false): string {
  const w = words.replace(/\s+/g, ' ').trim();
  return w ? `${QUOTE_MARK}${fragment ? '' : ' '}${w}` : QUOTE_MARK;
}

/** A summary from its parts: the words read quoted, the facts (may be ''), the next word (may be ''), the words again. */
export function renderSummary(words: string, facts: string, nextWord: string, fragment = false): string {
  const w = words.replace(/\s+/g, ' ').trim();
  const f = fragment && w !== '';
  return [`"${f ? '...' : ''}${w}".`, facts ? `${facts}.` : '', nextWord ? `Then "${nextWord}".` : '', renderQuote(w, f)].filter(Boolean).join(' ');
}

/** What the quote unit 'token' quotes: the last token's text, marked a fragment when it starts inside a word. */
export interface TokenQuote { words: string; fragment: boolean }

/**
 * The quote of the token text[tokenStart, endChar): whitespace runs as one space, trimmed; a
 * fragment when the token starts between two letters ("ck" of "pock"). A token of whitespace
 * alone quotes nothing (words ''), and the caller falls back to the last word unit.
 */
export function tokenQuote(text: string, tokenStart: number, endChar: number): TokenQuote {
  if (!(tokenStart >= 0 && tokenStart <= endChar && endChar <= text.length)) throw new RangeError(`tokenQuote: token [${tokenStart}, ${endChar}) outside the text's ${text.length} characters`);
  const words = text.slice(tokenStart, endChar).replace(/\s+/g, ' ').trim();
  const letter = (c: string | undefined) => c !== undefined && /[A-Za-z]/.test(c);
  return { words, fragment: words !== '' && letter(text[tokenStart - 1]) && letter(text[tokenStart]) };
}

/**
 * The quoted words of an explanation: everything after its first QUOTE_MARK, trimmed ('' when
 * nothing follows the mark); undefined when there is no mark (the AV wrote no quote).
 */
export function parseQuote(explanation: string): string | undefined {
  return parseQuoteParts(explanation)?.quote;
}

/** The quote (as parseQuote) and whether it is written as a fragment (no space after the mark); undefined when there is no mark. */
export function parseQuoteParts(explanation: string): { quote: string; fragment: boolean } | undefined {
  const at = explanation.indexOf(QUOTE_MARK);
  if (at < 0) return undefined;
  const after = explanation.slice(at + QUOTE_MARK.length);
  const quote = after.trim();
  return { quote, fragment: quote !== '' && !/^\s/.test(after) };
}

/**
 * The explanation between its opening quote and its closing one: what precedes the mark (all of
 * it when there is none), without a leading `"...". ` (the words read, quoted first).
 */
export function middleOf(explanation: string): string {
  const at = explanation.indexOf(QUOTE_MARK);
  const head = at < 0 ? explanation : explanation.slice(0, at);
  const open = /^\s*"(.*?)"\.(\s|$)/.exec(head);
  return open ? head.slice(open[0].length) : head;
}

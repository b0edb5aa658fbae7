// How a summary or an explanation writes the words just read: last, after a fixed mark,
//   ... Then "ball". Text: ... the big red
// so that the AR, which reads the explanation's last token, ends on the words the activation
// was read at (corpus.ts describeCut says why). Whitespace runs in the words are one space.

/** Opens the words read; everything after it, to the end of the explanation, is the quote. */
export const QUOTE_MARK = 'Text: ...';

/** The quote part of a summary. */
export function renderQuote(words: string): string {
  const w = words.replace(/\s+/g, ' ').trim();
  return w ? `${QUOTE_MARK} ${w}` : QUOTE_MARK;
}

/**
 * The quoted words of an explanation: everything after its first QUOTE_MARK, trimmed ('' when
 * nothing follows the mark); undefined when there is no mark (the AV wrote no quote).
 */
export function parseQuote(explanation: string): string | undefined {
  const at = explanation.indexOf(QUOTE_MARK);
  return at < 0 ? undefined : explanation.slice(at + QUOTE_MARK.length).trim();
}

/** The explanation without its quote (what precedes the mark; all of it when there is none). */
export function beforeQuote(explanation: string): string {
  const at = explanation.indexOf(QUOTE_MARK);
  return at < 0 ? explanation : explanation.slice(0, at);
}

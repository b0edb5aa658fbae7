// How a summary or an explanation writes the words just read: first, in quotes, and again last,
// after a fixed mark,
//   "the big red". Lily, park. Then "ball". Text: ... the big red
// First because the AV reads them off h best before it writes anything else (written after the
// facts and the next word, its current word fell from 0.71 to 0.55 on dev); last because the AR
// reads the explanation's last token, and ending on the words the activation was read at lets
// M's own blocks (the AR's start) compute nearly that activation again (corpus.ts describeCut).
// The last copy is the quote: what the AR reads and what quote accuracy scores. Whitespace runs
// in the words are one space.

/** Opens the words read; everything after it, to the end of the explanation, is the quote. */
export const QUOTE_MARK = 'Text: ...';

/** The closing quote part of a summary. */
export function renderQuote(words: string): string {
  const w = words.replace(/\s+/g, ' ').trim();
  return w ? `${QUOTE_MARK} ${w}` : QUOTE_MARK;
}

/** A summary from its parts: the words read quoted, the facts (may be ''), the next word (may be ''), the words again. */
export function renderSummary(words: string, facts: string, nextWord: string): string {
  const w = words.replace(/\s+/g, ' ').trim();
  return [`"${w}".`, facts ? `${facts}.` : '', nextWord ? `Then "${nextWord}".` : '', renderQuote(w)].filter(Boolean).join(' ');
}

/**
 * The quoted words of an explanation: everything after its first QUOTE_MARK, trimmed ('' when
 * nothing follows the mark); undefined when there is no mark (the AV wrote no quote).
 */
export function parseQuote(explanation: string): string | undefined {
  const at = explanation.indexOf(QUOTE_MARK);
  return at < 0 ? undefined : explanation.slice(at + QUOTE_MARK.length).trim();
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

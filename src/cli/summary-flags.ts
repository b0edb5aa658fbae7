// The flags that say how warm-start summaries are written (nla demo, nla extract): one parser,
// one set of defaults (corpus.ts DEFAULT_SUMMARY).
import { DEFAULT_SUMMARY, type SummaryFormat } from '../nla/corpus.js';

export const SUMMARY_FLAGS: [flags: string, help: string, def: string][] = [
  ['--quote <unit>', 'what summaries quote of the text just read: words (--quote-words word units) or token (the last token read; written "...ck" when it starts inside a word)', DEFAULT_SUMMARY.quote],
  ['--quote-words <n>', 'word units a summary quotes (--quote words; with token, only when the last token is whitespace)', String(DEFAULT_SUMMARY.quoteWords)],
  ['--facts-window <n>', 'summaries of text without latents state the names, places and objects of only the last n word units (0: none; all: the whole text read)', DEFAULT_SUMMARY.factsWindow === undefined ? 'all' : String(DEFAULT_SUMMARY.factsWindow)],
];

/** The summary format from the flags' values (strings as commander gives them); errors name the command and the flag. */
export function parseSummaryFlags(o: { quote?: string; quoteWords?: string; factsWindow?: string }, command: string): SummaryFormat {
  const quote = o.quote ?? DEFAULT_SUMMARY.quote;
  if (quote !== 'words' && quote !== 'token') throw new Error(`${command}: --quote is words or token, got ${quote}`);
  const whole = (flag: string, v: string, min: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`${command}: ${flag} needs a whole number >= ${min}, got ${v}`);
    return n;
  };
  const quoteWords = o.quoteWords === undefined ? DEFAULT_SUMMARY.quoteWords : whole('--quote-words', o.quoteWords, 1);
  const fw = o.factsWindow;
  const factsWindow = fw === undefined ? DEFAULT_SUMMARY.factsWindow : fw === 'all' ? undefined : whole('--facts-window', fw, 0);
  return { quote, quoteWords, ...(factsWindow === undefined ? {} : { factsWindow }) };
}

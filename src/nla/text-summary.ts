// Warm-start summaries for text that has no latents (stories sampled from M, TinyStories text):
// what a reader can see at a cut, read off the text itself.
//
// A cut at token i of a document reads tokens 0..i. The document is decoded token by token with
// tok.decodeToken(prev, id), exactly as extract.ts's tokenizeWithOffsets measures offsets, so the
// context is the decoded text of tokens 0..i and it ends where token i ends, inside a word when
// the cut is ("very happy bec" of "because").
//
// Summary format (corpus.ts describeCut's, the words read last: see why there):
//
//   "<last words>". <facts>. Then "<next word>". Text: ... <last words>
//   e.g.  "very happy bec". Lily and Tom, park, ball, kite. Then "because". Text: ... very happy bec
//
//  - <last words>: the last `lastWordCount` word units (corpus.ts wordUnits: a word, or one
//    punctuation mark) of the context, cut exactly where the context ends, whitespace runs
//    written as one space. It is always a suffix of the whitespace-normalised context; written
//    first in quotes and again at the end of the summary (quote-format.ts).
//    With quote 'token', the last token read instead: a whole word unit when it starts one
//    (" happy"), else a fragment written `"...ck".` and `Text: ...ck` (quote-format.ts).
//  - <facts>: omitted (with its full stop) when empty. The generator's vocabulary (corpus.ts
//    FIELD_VALUES) read off the context's complete words, each group in order of first
//    occurrence: names (written capitalised as whole words) joined as "Lily", "Lily and Tom",
//    "Lily, Tom and Mia"; then places, then objects (whole words, any case, plural forms
//    allowed; written in their vocabulary form), every item after the names separated by ", ".
//    A reader tells the groups apart by the vocabulary (no word is in two groups).
//    With factsWindow, only the last that many word units count.
//    The last word of the context counts only when the cut is not inside it ("Tim" of "Timmy"
//    is not the name Tim).
//    Latent facts (opts.known, only where a story has them) follow: colour, feeling, event
//    ("red, happy, she found it"), in the words of describeCut.
//  - Then "<next word>": the whole current word when the cut is inside a word, else the next
//    word unit of the decoded rest of the document; omitted when the document ends at the cut.
// Words are ASCII letters as in wordUnits (so "café" is the word "caf" and the mark "é"), which
// is all the generator and stories260K's TinyStories text use.
import type { Tokenizer } from '../io/tokenizer.js';
import { FIELD_VALUES, type Latents, type QuoteUnit, type Unit, eventPhrase, forms, mentions, wordUnits } from './corpus.js';
import { middleOf, parseQuote, renderSummary, tokenQuote } from './quote-format.js';

export interface TextCutSummary {
  /** As corpus.ts describeCut: '"<last words>". <facts>. Then "<next>". Text: ... <last words>'. */
  summary: string;
  /** The quoted words, exactly the decoded text ending at the cut (whitespace runs as one space). */
  lastWords: string;
  /** lastWords is the end of a word, not a whole one (quote 'token'); written "...ck". */
  fragment: boolean;
  /** '' when the document ends at the cut or the rest is unknown. */
  nextWord: string;
  /** The last word read (partial when the cut is inside it); '' when no word has been read. */
  currentWord: string;
  /** Read off the text so far (vocabulary forms, in order of first occurrence). */
  facts: { names: string[]; places: string[]; objects: string[] };
  /** The decoded context (tokens 0..tokenIndex), exactly as read. */
  context?: string;
}

export interface TextCutOptions {
  /** Word units quoted (default 3, as describeCut); with quote 'token', only when the last token is whitespace. */
  lastWordCount?: number;
  /** 'words' (default) or 'token': the last token, a fragment when it starts inside a word (corpus.ts QuoteUnit). */
  quote?: QuoteUnit;
  /**
   * Facts are read off only the last `factsWindow` word units before the cut (default: the whole
   * context). A small model's activation at one position holds little of a story's start (see
   * ../shared/docs/NLA-METHOD.md: at layer 3 of stories260K a probe reads the name 25% of the
   * time), and a summary that states what h cannot hold trains the AV to guess.
   */
  factsWindow?: number;
  /**
   * decodeDoc(tok, ids), when the caller describes many cuts of one document (else decoded per
   * call): a cut then costs what its own words cost, not the document's length.
   */
  doc?: DecodedDoc;
  /**
   * Latent facts, where the text has them (a generator story: corpus.ts Story latents known at
   * the cut, as describeCut's `known`). Those the text cannot show are added after the text's
   * facts: the colour, the feeling, the event ("she found it", with the name's pronoun when
   * `latentName` gives it). Name, place and object come from the text itself.
   */
  known?: Partial<Latents>;
  /** The story's character, for the event's pronoun (default: known.name). */
  latentName?: string;
}

/** Per-token decoded pieces of a document (BOS first; a document without BOS decodes as if after BOS). */
export function decodePieces(tok: Tokenizer, ids: number[]): string[] {
  return ids.map((id, i) => (i === 0 ? (id === tok.bosId ? '' : tok.decodeToken(tok.bosId, id)) : tok.decodeToken(ids[i - 1]!, id)));
}

/** A document decoded once: its pieces, its text, where each token ends in it, and its word units. */
export interface DecodedDoc {
  pieces: string[];
  text: string;
  /** ends[i]: the text's length up to and including token i. */
  ends: number[];
  units: Unit[];
}

export function decodeDoc(tok: Tokenizer, ids: number[]): DecodedDoc {
  const pieces = decodePieces(tok, ids);
  const text = pieces.join('');
  let at = 0;
  return { pieces, text, ends: pieces.map((p) => (at += p.length)), units: wordUnits(text) };
}

/** Vocabulary values of `values` stated as whole words in `text`, in order of first occurrence. */
function factsIn(text: string, values: readonly string[], kind: 'name' | 'place' | 'object'): string[] {
  const found: { v: string; at: number }[] = [];
  for (const v of values) {
    let at = Infinity;
    for (const w of kind === 'name' ? [v] : forms(kind, v)) {
      if (!mentions(text, w, kind === 'name')) continue;
      const esc = w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      const m = new RegExp(`(^|[^a-zA-Z])(${esc})($|[^a-zA-Z])`, kind === 'name' ? '' : 'i').exec(text);
      if (m) at = Math.min(at, m.index + m[1]!.length);
    }
    if (at < Infinity) found.push({ v, at });
  }
  return found.sort((a, b) => a.at - b.at).map((f) => f.v);
}

/** Facts read off a text: the generator's names, places and objects it states. */
export function textFacts(text: string): TextCutSummary['facts'] {
  return {
    names: factsIn(text, FIELD_VALUES.name, 'name'),
    places: factsIn(text, FIELD_VALUES.place, 'place'),
    objects: factsIn(text, FIELD_VALUES.object, 'object'),
  };
}

/** The facts part of a summary ('' when there are none): "Lily and Tom, park, ball". */
export function renderFacts(facts: TextCutSummary['facts']): string {
  const { names, places, objects } = facts;
  const who = names.length <= 1 ? names.join('') : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
  return [who, ...places, ...objects].filter(Boolean).join(', ');
}

/** ids: the whole document's token ids (BOS first); tokenIndex: the cut (context = ids[0..tokenIndex]). */
export function describeTextCut(tok: Tokenizer, ids: number[], tokenIndex: number, opts: TextCutOptions = {}): TextCutSummary {
  const { lastWordCount = 3 } = opts;
  if (!Number.isInteger(tokenIndex) || tokenIndex < 0 || tokenIndex >= ids.length) {
    throw new RangeError(`describeTextCut: tokenIndex ${tokenIndex} outside the document's ${ids.length} tokens`);
  }
  const doc = opts.doc ?? decodeDoc(tok, ids);
  if (doc.pieces.length !== ids.length) throw new Error(`describeTextCut: ${doc.pieces.length} pieces for ${ids.length} ids`);
  const { text, units } = doc;
  const endChar = doc.ends[tokenIndex]!;
  const context = text.slice(0, endChar);

  // The units read are units[0..nRead): those that start before the cut (units are in order).
  let nRead = 0;
  for (let hi = units.length; nRead < hi; ) {
    const mid = (nRead + hi) >> 1;
    if (units[mid]!.start < endChar) nRead = mid + 1;
    else hi = mid;
  }
  const tail = units.slice(Math.max(0, nRead - Math.max(1, lastWordCount)), nRead);
  let lastWords = tail.length ? text.slice(tail[0]!.start, endChar).replace(/\s+/g, ' ').trim() : '';
  let fragment = false;
  if (opts.quote === 'token') {
    const t = tokenQuote(text, endChar - doc.pieces[tokenIndex]!.length, endChar);
    if (t.words) ({ words: lastWords, fragment } = t);
  }

  let lastAlpha: Unit | undefined;
  for (let k = nRead - 1; k >= 0 && !lastAlpha; k--) if (units[k]!.alpha) lastAlpha = units[k];
  const currentWord = lastAlpha ? text.slice(lastAlpha.start, Math.min(lastAlpha.end, endChar)) : '';
  const last = nRead ? units[nRead - 1] : undefined;
  const inside = last && last.end > endChar ? last : undefined;
  const next = inside ?? units[nRead];
  const nextWord = next ? text.slice(next.start, next.end) : '';

  // Facts from complete words only: the letters of a word the cut is inside are left out
  // ("Tim" of "Timmy"; "Lily" of "Lily's" is complete).
  const fw = opts.factsWindow;
  const window = fw === undefined ? context : fw <= 0 ? '' : context.slice(nRead - fw >= 0 ? units[nRead - fw]!.start : 0);
  const facts = textFacts(/[A-Za-z]/.test(text[endChar] ?? '') ? window.replace(/[A-Za-z]+$/, '') : window);
  const latent: string[] = [];
  const known = opts.known ?? {};
  if (known.colour) latent.push(known.colour);
  if (known.emotion) latent.push(known.emotion);
  if (known.event) latent.push(eventPhrase(known.event, opts.latentName ?? known.name ?? ''));
  const factText = [renderFacts(facts), ...latent].filter(Boolean).join(', ');
  return { summary: renderSummary(lastWords, factText, nextWord, fragment), lastWords, fragment, nextWord, currentWord, facts, context };
}

export interface ParsedTextSummary {
  /** The quoted words (quotes.ts parseQuote); undefined when there is no quote. */
  lastWords: string | undefined;
  /** Vocabulary facts stated between the opening quote and the next-word clause. */
  facts: TextCutSummary['facts'];
  /** The next-word clause's word; '' when there is none. */
  nextWord: string;
}

/**
 * Read a summary (or an AV's explanation in its format) back: the quote, the generator's names
 * (capitalised whole words), places and objects (whole words, plurals allowed) stated between
 * the opening quote and `Then "..."`, in order of first occurrence, and the next word.
 */
export function parseTextSummary(summary: string): ParsedTextSummary {
  const lastWords = parseQuote(summary);
  const rest = middleOf(summary);
  const then = /\bThen "(.*?)"\.?(\s|$)/.exec(rest);
  const facts = textFacts(then ? rest.slice(0, then.index) : rest);
  return { lastWords, facts, nextWord: then ? then[1]! : '' };
}

// A known-answer corpus: TinyStories-style stories generated from explicit latent variables,
// so that an explanation of an activation can be scored against what the story has actually
// said so far. Only simple words that TinyStories (and so stories260K's 512-piece tokenizer)
// knows are used, and no story mentions a value of a field other than its own, so "the
// explanation names the true value and no other" is a clean test.

import { type Rng, pick, randInt, rng as seeded } from '../util/rng.js';
import { renderSummary, tokenQuote } from './quote-format.js';

// Each object value and each name starts with its own tok512 piece (after the space piece):
// values sharing one (cake / cat, box / ball, Mia / Max) differ in world-M's activations by
// ~0.001-0.03 of FVE, invisible to the NLA's reconstruction loss (README, issue 11), so fish,
// ring and Jack replaced cake, box and Max. Colours keep such a pair (pink / purple), which shows
// the effect on every run.
export const FIELD_VALUES = {
  name: ['Lily', 'Tom', 'Ben', 'Mia', 'Jack', 'Sue', 'Tim', 'Anna'],
  place: ['park', 'garden', 'forest', 'beach', 'house', 'school'],
  object: ['ball', 'kite', 'dog', 'cat', 'ring', 'toy', 'hat', 'fish'],
  colour: ['red', 'blue', 'green', 'yellow', 'pink', 'purple'],
  emotion: ['happy', 'sad', 'scared', 'excited'],
  event: ['found', 'lost', 'shared', 'broke'],
} as const satisfies Record<string, readonly string[]>;

export type Field = keyof typeof FIELD_VALUES;
export const FIELDS = Object.keys(FIELD_VALUES) as Field[];
/** A list of fields from a flag's value: `all`, or names separated by commas ("name,place"). */
export function parseFields(value: string, flag: string): Field[] {
  if (value.trim() === 'all') return [...FIELDS];
  const out = value.split(',').map((x) => x.trim()).filter((x) => x !== '');
  const bad = out.filter((x) => !(FIELDS as string[]).includes(x));
  if (!out.length || bad.length) throw new Error(`${flag}: expected all or a comma-separated list of ${FIELDS.join(', ')}; got "${value}"`);
  return [...new Set(out)] as Field[];
}
export type Latents = Record<Field, string>;
export interface Span { field: Field; start: number; end: number }
export interface Story { text: string; latents: Latents; spans: Span[] }

const GIRLS = new Set(['Lily', 'Mia', 'Sue', 'Anna']);

// A story is one sentence per slot, in this order, so the latents appear where a reader
// expects them: name early, then place, the coloured object, the feeling, then the event.
// Placeholders: latent fields ({name} ...), and pronouns {Pron} {pron} {pos} {obj} {kid}.
const SLOTS: readonly (readonly string[])[] = [
  [
    'Once upon a time, there was a little {kid} named {name}.',
    '{name} was a little {kid} who liked to run and jump.',
    'There once was a kind little {kid} called {name}.',
  ],
  [
    '{Pron} liked to play at the {place} every day.',
    'One sunny day, {name} went to the {place} with {pos} mom.',
    '{Pron} loved to go to the {place} with {pos} mom and dad.',
  ],
  [
    'At the {place}, {pron} saw a {colour} {object} under a big tree.',
    '{Pron} had a {colour} {object} that {pron} loved very much.',
    'On the way, {pron} saw a little {colour} {object} on the grass.',
  ],
  [
    'The {object} was very pretty.',
    '{name} wanted to keep the {object} close all day.',
    '{Pron} looked at the {object} for a long time.',
  ],
  [
    '{name} felt very {emotion}.',
    '{Pron} was so {emotion} that {pron} could not sit still.',
    'It made {obj} feel very {emotion}.',
  ],
  [
    '{Pron} ran to tell {pos} mom all about it.',
    'The sun was warm and the birds sang in the trees.',
    'Mom smiled and gave {obj} a big hug.',
  ],
];

// The event sentences end the plot; each uses its own verb and none of the others'.
const EVENT_SENTENCES: Record<string, readonly string[]> = {
  found: [
    'Then the {object} was gone, so {name} looked all around. At last, {pron} found it under a big rock.',
    'The next day, {name} could not see the {object}. {Pron} looked and looked, and then {pron} found it by the door.',
  ],
  lost: [
    'Then {name} ran very fast and lost the {object}. {Pron} looked all around, but it was gone.',
    'But on the way home, {name} lost the {object}. {Pron} looked and looked, but it was not there.',
  ],
  shared: [
    'Then a little friend came to play. {name} shared the {object} with the friend.',
    'Soon a new friend sat down next to {obj}. {name} shared the {object} and they played together.',
  ],
  broke: [
    'Then {name} dropped the {object} on a big rock and it broke.',
    'But the {object} fell down from the table, and it broke into little bits.',
  ],
};

const ENDINGS: readonly string[] = [
  '{name} learned to be careful and kind.',
  'After that, {name} went home to eat a big dinner.',
  'It was a day {name} would always remember.',
];

function pronouns(name: string): Record<string, string> {
  const girl = GIRLS.has(name);
  return girl
    ? { Pron: 'She', pron: 'she', pos: 'her', obj: 'her', kid: 'girl' }
    : { Pron: 'He', pron: 'he', pos: 'his', obj: 'him', kid: 'boy' };
}

/** Draw latents uniformly and independently (so per-field chance is 1/choices). */
export function sampleLatents(rng: Rng): Latents {
  const out = {} as Latents;
  for (const f of FIELDS) out[f] = pick(rng, FIELD_VALUES[f]);
  return out;
}

/** Render one story for the given latents; `rng` only chooses the sentence variants. */
export function renderStory(latents: Latents, rng: Rng): Story {
  const sentences = SLOTS.map((options) => pick(rng, options));
  sentences.push(pick(rng, EVENT_SENTENCES[latents.event]!), pick(rng, ENDINGS));
  const pro = pronouns(latents.name);
  let text = '';
  const spans: Span[] = [];
  for (const sentence of sentences) {
    if (text) text += ' ';
    let last = 0;
    for (const m of sentence.matchAll(/\{(\w+)\}/g)) {
      text += sentence.slice(last, m.index);
      const key = m[1]!;
      const value = key in latents ? latents[key as Field] : pro[key];
      if (value === undefined) throw new Error(`corpus template: unknown placeholder {${key}}`);
      if (key in latents && !spans.some((s) => s.field === key)) {
        spans.push({ field: key as Field, start: text.length, end: text.length + value.length });
      }
      text += value;
      last = m.index + m[0].length;
    }
    text += sentence.slice(last);
  }
  // The event verb is written literally in every event sentence, not through a placeholder.
  const ev = new RegExp(`\\b${latents.event}\\b`).exec(text);
  if (!ev) throw new Error(`corpus template: event "${latents.event}" not written`);
  spans.push({ field: 'event', start: ev.index, end: ev.index + ev[0].length });
  spans.sort((a, b) => a.start - b.start);
  return { text, latents, spans };
}

/** n stories, the same for the same seed on every run. */
export function generateStories(n: number, seed: number): Story[] {
  const rng = seeded(seed);
  const out: Story[] = [];
  for (let i = 0; i < n; i++) out.push(renderStory(sampleLatents(rng), rng));
  return out;
}

// ---------------------------------------------------------------- cut points and summaries

/** What is true at a cut: the fields already read, and the (possibly partial) last word. */
export interface CutTruth { known: Partial<Latents>; currentWord: string }
export interface Cut extends CutTruth {
  /** Characters read: text.slice(0, endChar) is the context. */
  endChar: number;
  /** The last few words read (a partial word is kept as read). */
  lastWords: string;
  /**
   * The word that comes next: the whole current word if the cut is inside one (its bare rest,
   * e.g. "red" of "sca|red", could read as another field's value), else the next word.
   */
  nextWord: string;
  /** Target explanation: words just read first, then known facts, then what comes next. */
  summary: string;
}

/** A word (letters, with one inner apostrophe part: "Lily's") or one non-space non-letter character. */
export interface Unit { start: number; end: number; alpha: boolean }
export function wordUnits(text: string): Unit[] {
  const out: Unit[] = [];
  for (const m of text.matchAll(/[A-Za-z]+(?:'[A-Za-z]+)?|[^\sA-Za-z]/g)) {
    out.push({ start: m.index, end: m.index + m[0].length, alpha: /[A-Za-z]/.test(m[0]) });
  }
  return out;
}

/** The event as a summary states it: "she found it" (the name's pronoun), "it broke". */
export function eventPhrase(event: string, name: string): string {
  const pron = pronouns(name).pron!;
  return event === 'broke' ? 'it broke' : `${pron} ${event} it`;
}

/**
 * How a summary is written (quote-format.ts renderSummary): the words just read, the known
 * facts, the next word, and the words read again, last:
 *   "the big red". Lily in the park with a red ball, happy, she found it. Then "ball". Text: ... the big red
 * The words read go last because the AR reads the explanation's last token: ending on the
 * words the activation was read at, M's own blocks (the AR's start) compute nearly that
 * activation again (held-out samples of M: FVE 0.81 with the AR untrained, against -0.62 with
 * the words only first). They go first too because the AV reads them off h best before it
 * writes anything else.
 */
export interface DescribeOptions {
  /** Word units quoted (default 3); with quote 'token', only when the last token is whitespace. */
  lastWordCount?: number;
  /** 'words' (default): the last lastWordCount word units; 'token': the last token read (quote-format.ts tokenQuote). */
  quote?: QuoteUnit;
  /** Where the last token read starts (a character offset; needed by quote 'token'). */
  tokenStart?: number;
}

/** What a summary quotes of the text just read: whole word units, or the last token (a fragment when it starts inside a word). */
export type QuoteUnit = 'words' | 'token';

/**
 * How warm-start summaries are written, for every source: the quote unit, the word units quoted
 * (quote 'words', or a whitespace token under 'token'), and the window of word units whose names,
 * places and objects a summary of text without latents states (undefined: the whole text read).
 * Recorded in a store's manifest (sources.summary) so held-out rows are summarised the same way.
 */
export interface SummaryFormat { quote: QuoteUnit; quoteWords: number; factsWindow?: number }

/**
 * The summaries `nla demo` and `nla extract` write. One quoted word unit (a word, or one
 * punctuation mark), and model-text facts from the last 8 only. Chosen on dev (docs/experiments.md, "One word
 * read, on dev"): against two units, the warm start's exact quotes of M's text 0.155 -> 0.615,
 * its greedy FVE there 0.242 -> 0.367 (token lookup 0.358): a layer-3 activation holds the
 * current token (probe 0.90), the one before it much less (0.56), and a misquoted earlier word
 * cost the AR more than it gained.
 */
export const DEFAULT_SUMMARY: SummaryFormat = { quote: 'words', quoteWords: 1, factsWindow: 8 };

/** Describe the state of a story after reading `endChar` characters. */
export function describeCut(story: Story, endChar: number, opts: DescribeOptions = {}): Cut {
  const { lastWordCount = 3 } = opts;
  const { text, latents } = story;
  const known: Partial<Latents> = {};
  for (const s of story.spans) if (s.end <= endChar) known[s.field] = latents[s.field];

  const units = wordUnits(text);
  const read = units.filter((u) => u.start < endChar);
  const tail = read.slice(-lastWordCount);
  let lastWords = tail.length ? text.slice(tail[0]!.start, endChar).replace(/\s+/g, ' ').trim() : '';
  let fragment = false;
  if (opts.quote === 'token') {
    if (opts.tokenStart === undefined) throw new Error('describeCut: quote "token" needs the last token\'s start (tokenStart)');
    const t = tokenQuote(text, opts.tokenStart, endChar);
    if (t.words) ({ words: lastWords, fragment } = t);
  }
  const lastAlpha = [...read].reverse().find((u) => u.alpha);
  const currentWord = lastAlpha ? text.slice(lastAlpha.start, Math.min(lastAlpha.end, endChar)) : '';
  const inside = read.at(-1);
  const next = inside && inside.end > endChar ? inside : units.find((u) => u.start >= endChar);
  const nextWord = next ? text.slice(next.start, next.end) : '';

  const scene: string[] = [];
  if (known.name) scene.push(known.name);
  if (known.place) scene.push(`${known.place === 'beach' ? 'at' : 'in'} the ${known.place}`);
  if (known.object) scene.push(`with a ${known.colour ? known.colour + ' ' : ''}${known.object}`);
  else if (known.colour) scene.push(`with something ${known.colour}`);
  const event = known.event ? eventPhrase(known.event, latents.name) : '';

  const facts = [scene.join(' '), known.emotion ?? '', event].filter(Boolean).join(', ');
  return { endChar, known, currentWord, lastWords, nextWord, summary: renderSummary(lastWords, facts, nextWord, fragment) };
}

/** Token ids and the character offset where each token starts (same length). */
export type Tokenize = (s: string) => { ids: number[]; offsets: number[] };
export interface TokenCut extends Cut { tokenIndex: number; ids: number[] }

/**
 * `count` distinct token indices in [minTokens, length), ascending (fewer when the document has
 * fewer candidates, none when it is too short). Every corpus reader cuts with this one rule, so
 * a seed gives the same cuts whichever path extracts the document.
 */
export function randomCuts(length: number, minTokens: number, count: number, rand: Rng): number[] {
  const candidates = length - minTokens;
  const chosen = new Set<number>();
  while (chosen.size < Math.min(count, candidates)) chosen.add(minTokens + randInt(rand, candidates));
  return [...chosen].sort((a, b) => a - b);
}

/**
 * `count` distinct cut positions (token index ≥ minTokens) of one story. The context of a cut
 * at token i is tokens 0..i; it ends where token i+1 starts (or at the end of the text).
 */
export function cutPoints(
  story: Story,
  tokenize: Tokenize,
  minTokens: number,
  rng: Rng,
  count = 1,
  opts: DescribeOptions = {},
): TokenCut[] {
  const { ids, offsets } = tokenize(story.text);
  if (ids.length !== offsets.length) throw new Error('cutPoints: ids and offsets differ in length');
  return randomCuts(ids.length, minTokens, count, rng).map((i) => {
    const endChar = offsets[i + 1] ?? story.text.length;
    return { ...describeCut(story, endChar, { ...opts, tokenStart: offsets[i] }), tokenIndex: i, ids: ids.slice(0, i + 1) };
  });
}

// ---------------------------------------------------------------- scoring explanations

/** Fields scored by default: the story facts an explanation should state. */
export const SCORED_FIELDS: readonly Field[] = ['name', 'place', 'object', 'emotion'];

const VERB_FORMS: Record<string, string[]> = {
  found: ['found', 'find', 'finds', 'finding'],
  lost: ['lost', 'lose', 'loses', 'losing'],
  shared: ['shared', 'share', 'shares', 'sharing'],
  broke: ['broke', 'break', 'breaks', 'breaking', 'broken'],
};

// Surface forms that count as stating a value (plurals for nouns, tenses for the event verb).
export function forms(field: Field, value: string): string[] {
  if (field === 'event') return VERB_FORMS[value] ?? [value];
  if (field === 'place' || field === 'object') return [value, value + 's', value + 'es'];
  return [value];
}

// Whole-word match. Names are matched with their capital, so that "tim" (a partial "time")
// or "max" is not read as a name.
export function mentions(text: string, word: string, caseSensitive = false): boolean {
  const esc = word.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(^|[^a-zA-Z])${esc}($|[^a-zA-Z])`, caseSensitive ? '' : 'i').test(text);
}

export interface FieldScore { correct: number; total: number; perField: Record<string, boolean> }

/**
 * Share of the known fields an explanation states correctly: the true value is mentioned and
 * no other value of that field is. Fields not yet read are not counted. The current word
 * (key 'currentWord') counts when non-empty and mentioned as a whole word.
 */
export function scoreFields(
  explanation: string,
  truth: CutTruth,
  fields: readonly Field[] = SCORED_FIELDS,
  includeCurrentWord = true,
): FieldScore {
  const perField: Record<string, boolean> = {};
  for (const f of fields) {
    const value = truth.known[f];
    if (value === undefined) continue;
    const said = (v: string) => forms(f, v).some((w) => mentions(explanation, w, f === 'name'));
    perField[f] = said(value) && FIELD_VALUES[f].every((v) => v === value || !said(v));
  }
  if (includeCurrentWord && truth.currentWord) perField.currentWord = mentions(explanation, truth.currentWord);
  const values = Object.values(perField);
  return { correct: values.filter(Boolean).length, total: values.length, perField };
}

/**
 * Expected score of guessing one value uniformly at random per field (1/choices each), pooled
 * over the same items and fields as scoreFields. The current word has no fixed set of choices:
 * by default it is a uniform guess among the distinct current words of these items.
 */
export function fieldsChance(
  truths: readonly CutTruth[],
  fields: readonly Field[] = SCORED_FIELDS,
  includeCurrentWord = true,
  currentWordChoices?: number,
): { expectedCorrect: number; total: number; rate: number } {
  const words = currentWordChoices ?? new Set(truths.map((t) => t.currentWord.toLowerCase()).filter(Boolean)).size;
  let expectedCorrect = 0;
  let total = 0;
  for (const t of truths) {
    for (const f of fields) {
      if (t.known[f] === undefined) continue;
      expectedCorrect += 1 / FIELD_VALUES[f].length;
      total += 1;
    }
    if (includeCurrentWord && t.currentWord) {
      expectedCorrect += 1 / Math.max(1, words);
      total += 1;
    }
  }
  return { expectedCorrect, total, rate: total ? expectedCorrect / total : 0 };
}

// Known-answer text in the viewer (issue 15): a text given with its latent facts (a story of the
// known-answer generators, corpus.ts or world.ts, with its latents), and at every token the
// facts read so far, so each claim an explanation makes there can be marked true or false
// (claims.ts markClaims). A fact counts as read once its value's first mention has been read
// whole, as describeCut does with a story's spans; a declared fact the text never mentions is
// never read, so a claim about it is false at every token, as in scoreClaims.
import { FIELD_VALUES, FIELDS, type Field, forms, type Latents, type Span } from './corpus.js';
import { markClaims, type ClaimMark } from './claims.js';

export type Facts = Partial<Latents>;

/**
 * Check declared facts: an object of field -> value, each a field of corpus.ts FIELD_VALUES and
 * one of its values. `where` names the input in errors (e.g. "texts.jsonl:3: facts").
 */
export function checkFacts(v: unknown, where = 'facts'): Facts {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${where}: expected an object of field -> value, e.g. {"name": "Lily", "place": "park"}`);
  const out: Facts = {};
  for (const [k, value] of Object.entries(v)) {
    if (!(FIELDS as string[]).includes(k)) throw new Error(`${where}: field ${shortly(k)} is not a known-answer field (${FIELDS.join(', ')})`);
    const f = k as Field;
    if (typeof value !== 'string' || !(FIELD_VALUES[f] as readonly string[]).includes(value)) throw new Error(`${where}.${f}: ${shortly(value)} is not one of ${FIELD_VALUES[f].join(', ')}`);
    out[f] = value;
  }
  if (!Object.keys(out).length) throw new Error(`${where}: no facts given`);
  return out;
}

/** A value in an error message: a string (cut at 40 characters) or a number as written, else its kind (never a deep or huge value stringified). */
function shortly(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  return Array.isArray(v) ? 'an array' : `a value of type ${typeof v}`;
}

/** Facts written as "name=Lily place=park" (the serve page's field); empty text = none. */
export function parseFactsText(s: string, where = 'facts'): Facts | undefined {
  const parts = s.split(/[\s,;]+/).filter(Boolean);
  if (!parts.length) return undefined;
  const obj: Record<string, string> = {};
  for (const p of parts) {
    const m = /^(\w+)[=:](\w+)$/.exec(p);
    if (!m) throw new Error(`${where}: "${p}" is not field=value (e.g. name=Lily place=park)`);
    obj[m[1]] = m[2];
  }
  return checkFacts(obj, where);
}

// Whole-word matches, as corpus.ts `mentions` (names with their capital).
function firstMatch(text: string, word: string, caseSensitive: boolean): { start: number; end: number } | undefined {
  const esc = word.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const m = new RegExp(`(^|[^a-zA-Z])(${esc})($|[^a-zA-Z])`, caseSensitive ? '' : 'i').exec(text);
  if (!m) return undefined;
  const start = m.index + m[1].length;
  return { start, end: start + m[2].length };
}

/** Where each declared fact is first mentioned in the text (any of its surface forms); unmentioned facts have none. */
export function factSpans(text: string, facts: Facts): Span[] {
  const spans: Span[] = [];
  for (const f of FIELDS) {
    const v = facts[f];
    if (v === undefined) continue;
    const hits = forms(f, v).map((w) => firstMatch(text, w, f === 'name')).filter((h) => h !== undefined);
    if (!hits.length) continue;
    const first = hits.reduce((a, b) => (b.start < a.start || (b.start === a.start && b.end > a.end) ? b : a));
    spans.push({ field: f, ...first });
  }
  return spans.sort((a, b) => a.start - b.start);
}

/** The facts read after `endChar` characters: those whose first mention ends by then. */
export function knownAt(spans: readonly Span[], facts: Facts, endChar: number): Facts {
  const known: Facts = {};
  for (const s of spans) if (s.end <= endChar) known[s.field] = facts[s.field];
  return known;
}

/** The fields a doc's facts let the page judge: the declared ones. */
export const factFields = (facts: Facts): Field[] => FIELDS.filter((f) => facts[f] !== undefined);

/**
 * Per token (offsets[p] = the character where token p starts, BOS at 0): the facts read once
 * token p has been read (the context ends where token p+1 starts), as cutPoints cuts.
 */
export function knownPerToken(text: string, offsets: readonly number[], facts: Facts): Facts[] {
  const spans = factSpans(text, facts);
  return offsets.map((_, p) => knownAt(spans, facts, offsets[p + 1] ?? text.length));
}

/** Marks of one explanation at one token: each claim on a declared field, true or false. */
export function markExplanation(explanation: string, known: Facts, facts: Facts): ClaimMark[] {
  return markClaims(explanation, known, factFields(facts));
}

/**
 * Marks of a scored explanation as NLA.explain returns it: an unparseable output (MSE 2, its
 * raw text shown after "(unparseable) ") states nothing, as scoreClaims counts it.
 */
export function markScored(e: { text: string; mse: number }, known: Facts, facts: Facts): ClaimMark[] {
  return e.mse === 2 && e.text.startsWith('(unparseable) ') ? [] : markExplanation(e.text, known, facts);
}

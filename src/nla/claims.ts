// Claims: what an explanation asserts about each latent fact, and how those assertions score
// against the truth (issue 11). An explanation in the known-answer summary style
// ('"the red". Lily in the park with a red ball, happy, she found it. Then "ball". Text: ... the
// red') makes, per field, a claim "field = value" when it names a value of that field outside its
// quotations, or none. Quotations (the words just read, the next word, and the words read again
// after quote-format.ts's mark) repeat text; they are not claims about what the activation
// holds, so a quoting-only explainer claims nothing and scores recall 0.
//
// Per field over rows:
//   precision     = stated and true / stated
//   confabulation = stated and false / stated            (= 1 - precision)
//   recall        = stated and true / rows where the fact has been read
// A claim about a fact not read yet at the cut is false: the context does not hold it. Naming two
// values of one field is one false claim. Whole explanations: the share with no false claim.
import { FIELD_VALUES, FIELDS, type CutTruth, type Field, forms, mentions } from './corpus.js';
import { QUOTE_MARK } from './quote-format.js';

/** The explanation with every quotation ("...", and the closing `Text: ...` words) removed; an unclosed quote runs to the end. */
export function withoutQuotes(explanation: string): string {
  const at = explanation.indexOf(QUOTE_MARK);
  return (at < 0 ? explanation : explanation.slice(0, at)).replace(/"[^"]*("|$)/g, ' ');
}

/** Per field: the values the explanation names outside quotations (empty: no claim). */
export function extractClaims(explanation: string, fields: readonly Field[] = FIELDS): Record<string, string[]> {
  const text = withoutQuotes(explanation);
  const out: Record<string, string[]> = {};
  for (const f of fields) out[f] = FIELD_VALUES[f].filter((v) => forms(f, v).some((w) => mentions(text, w, f === 'name')));
  return out;
}

/**
 * Where each claim's value stands in the explanation: the same values extractClaims finds (one
 * span per value, its first mention outside quotations), with character offsets into the
 * explanation, so a claim can be tied to the tokens that wrote it (claim-confidence.ts).
 */
export function claimSpans(explanation: string, fields: readonly Field[] = FIELDS): { field: Field; value: string; start: number; end: number }[] {
  // Characters inside a quotation, as withoutQuotes removes them: "..." pairs (an unclosed one runs to the end), and everything from QUOTE_MARK on.
  const quoted = new Uint8Array(explanation.length);
  let open = false;
  const mark = explanation.indexOf(QUOTE_MARK);
  for (let i = 0; i < explanation.length; i++) {
    if (mark >= 0 && i >= mark) quoted[i] = 1;
    else if (explanation[i] === '"') { quoted[i] = 1; open = !open; }
    else if (open) quoted[i] = 1;
  }
  const out: { field: Field; value: string; start: number; end: number }[] = [];
  for (const f of fields) {
    for (const v of FIELD_VALUES[f]) {
      let best: { start: number; end: number } | undefined;
      for (const w of forms(f, v)) {
        const esc = w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        for (const m of explanation.matchAll(new RegExp(`(^|[^a-zA-Z])(${esc})(?=$|[^a-zA-Z])`, f === 'name' ? 'g' : 'gi'))) {
          const start = m.index! + m[1]!.length, end = start + w.length;
          if (quoted.subarray(start, end).some((q) => q === 1)) continue;
          if (!best || start < best.start) best = { start, end };
          break;
        }
      }
      if (best) out.push({ field: f, value: v, ...best });
    }
  }
  return out;
}

/** One field's claim in one explanation, judged against the facts read at its cut. */
export interface ClaimMark {
  field: Field;
  /** The values the explanation names for this field (outside quotations). */
  said: string[];
  /** The field's value in the text read so far; undefined = not read yet. */
  truth?: string;
  /** True when it names exactly one value and that value is the truth. */
  ok: boolean;
}

/**
 * The claims an explanation makes on `fields`, each marked true or false against `known` (the
 * facts read so far). Fields it names no value of are left out. scoreClaims counts these marks.
 */
export function markClaims(explanation: string, known: Partial<Record<Field, string>>, fields: readonly Field[] = FIELDS): ClaimMark[] {
  const claims = extractClaims(explanation, fields);
  const out: ClaimMark[] = [];
  for (const f of fields) {
    const said = claims[f]!;
    if (!said.length) continue;
    const truth = known[f];
    out.push({ field: f, said, truth, ok: said.length === 1 && said[0] === truth });
  }
  return out;
}

export interface FieldClaims {
  /** Rows scored. */
  rows: number;
  /** Rows where the fact has been read (the truth is known). */
  known: number;
  stated: number;
  statedTrue: number;
  precision: number;
  recall: number;
  confab: number;
}

export interface ClaimReport {
  fields: Record<string, FieldClaims>;
  /** Share of explanations with no false claim on any scored field. */
  noFalseClaim: number;
  /** Share of explanations that state at least one field. */
  anyClaim: number;
  rows: number;
}

/**
 * Score explanations (undefined = unparseable: no claims) against the truth at each row's cut.
 * Ratios with an empty denominator are NaN (no claims made: precision is undefined, not 0).
 */
export function scoreClaims(explanations: readonly (string | undefined)[], truths: readonly CutTruth[], fields: readonly Field[] = FIELDS): ClaimReport {
  if (explanations.length !== truths.length) throw new Error(`scoreClaims: ${explanations.length} explanations for ${truths.length} truths`);
  const acc: Record<string, { known: number; stated: number; statedTrue: number }> = {};
  for (const f of fields) acc[f] = { known: 0, stated: 0, statedTrue: 0 };
  let clean = 0, any = 0;
  explanations.forEach((e, i) => {
    const known = truths[i]!.known;
    for (const f of fields) if (known[f] !== undefined) acc[f]!.known++;
    const marks = markClaims(e ?? '', known, fields);
    const stated = marks.length > 0, falseClaim = marks.some((m) => !m.ok);
    for (const m of marks) {
      acc[m.field]!.stated++;
      if (m.ok) acc[m.field]!.statedTrue++;
    }
    if (!falseClaim) clean++;
    if (stated) any++;
  });
  const n = explanations.length;
  const fieldsOut: Record<string, FieldClaims> = {};
  for (const f of fields) {
    const a = acc[f]!;
    fieldsOut[f] = { rows: n, known: a.known, stated: a.stated, statedTrue: a.statedTrue, precision: a.statedTrue / a.stated, recall: a.statedTrue / a.known, confab: (a.stated - a.statedTrue) / a.stated };
  }
  return { fields: fieldsOut, noFalseClaim: n ? clean / n : NaN, anyClaim: n ? any / n : NaN, rows: n };
}

/**
 * What an explainer that names one uniformly random value of every field on every row scores:
 * recall 1/values; precision (and 1 - confabulation) 1/values times the share of rows where the
 * fact has been read (a claim about an unread fact is false).
 */
export function chanceClaims(truths: readonly CutTruth[], fields: readonly Field[] = FIELDS): Record<string, { precision: number; recall: number; confab: number }> {
  const out: Record<string, { precision: number; recall: number; confab: number }> = {};
  for (const f of fields) {
    const p = 1 / FIELD_VALUES[f].length;
    const knownShare = truths.filter((t) => t.known[f] !== undefined).length / Math.max(1, truths.length);
    out[f] = { precision: p * knownShare, recall: p, confab: 1 - p * knownShare };
  }
  return out;
}

/**
 * The false claims per field, counted by what was true and what was said ("cake>cat": 3; a claim
 * about a fact not read yet is "?>cat"; two values named, "cake>cat+cake"): which values an
 * explainer mixes up. `claims` per row as extractClaims gives them.
 */
export function falseClaimPairs(claims: readonly Record<string, string[]>[], known: readonly Partial<Record<Field, string>>[], fields: readonly Field[] = FIELDS): Record<string, Record<string, number>> {
  if (claims.length !== known.length) throw new Error(`falseClaimPairs: ${claims.length} rows of claims for ${known.length} truths`);
  const out: Record<string, Record<string, number>> = {};
  claims.forEach((c, i) => {
    for (const f of fields) {
      const said = c[f] ?? [];
      const truth = known[i]![f];
      if (!said.length || (said.length === 1 && said[0] === truth)) continue;
      const key = `${truth ?? '?'}>${said.join('+')}`;
      const row = (out[f] ??= {});
      row[key] = (row[key] ?? 0) + 1;
    }
  });
  return out;
}

// How sure are the claim figures? At 50-70 claims per field on a demo's 200 rows, one claim moves
// precision by ~0.02, so "confabulation after RL no higher than after SFT" can turn on one row.
// The intervals come from a bootstrap over documents (doc-bootstrap.ts): the rows of one story
// share its facts, so they are not independent draws.
import { FIELDS, type Field } from './corpus.js';
import { docBootstrap, type BootstrapOptions, type Change, type Interval } from './doc-bootstrap.js';

/** Per row: the values each field's claim names (extractClaims), and the facts read so far. */
export interface ClaimRows {
  claims: readonly Record<string, readonly string[]>[];
  known: readonly Partial<Record<Field, string>>[];
  docs: readonly number[];
}

interface Counts { known: number; stated: number; right: number }

function counts(c: ClaimRows['claims'], known: ClaimRows['known'], rows: readonly number[], f: Field): Counts {
  const out = { known: 0, stated: 0, right: 0 };
  for (const i of rows) {
    const truth = known[i]![f], said = c[i]![f] ?? [];
    if (truth !== undefined) out.known++;
    if (!said.length) continue;
    out.stated++;
    if (said.length === 1 && said[0] === truth) out.right++;
  }
  return out;
}

/** The share of rows whose explanation makes no false claim on any field (as scoreClaims counts). */
function noFalseClaim(c: ClaimRows['claims'], known: ClaimRows['known'], rows: readonly number[], fields: readonly Field[]): number {
  let clean = 0;
  for (const i of rows) if (fields.every((f) => { const s = c[i]![f] ?? []; return !s.length || (s.length === 1 && s[0] === known[i]![f]); })) clean++;
  return rows.length ? clean / rows.length : NaN;
}

export interface FieldIntervals {
  precision: Interval;
  recall: Interval;
  confab: Interval;
}

/** Intervals for one NLA's claim figures: per field precision, recall, confabulation; and the share with no false claim. */
export function claimIntervals(r: ClaimRows, o: BootstrapOptions & { fields?: readonly Field[] } = {}): { fields: Record<string, FieldIntervals>; no_false_claim: Interval } {
  const fields = o.fields ?? FIELDS;
  checkRows(r, 'claimIntervals');
  const iv = docBootstrap(r.docs, (rows) => [
    ...fields.flatMap((f) => { const k = counts(r.claims, r.known, rows, f); return [k.right / k.stated, k.right / k.known, (k.stated - k.right) / k.stated]; }),
    noFalseClaim(r.claims, r.known, rows, fields),
  ], o);
  return {
    fields: Object.fromEntries(fields.map((f, j) => [f, { precision: iv[3 * j]!, recall: iv[3 * j + 1]!, confab: iv[3 * j + 2]! }])),
    no_false_claim: iv[3 * fields.length]!,
  };
}

/**
 * Paired changes from `before` to `after` (the same rows, the same truths): per field the
 * confabulation and the recall, and the share with no false claim. An interval whose high end is
 * above 0 cannot rule out a rise; one that contains 0 cannot tell the two apart.
 */
export function claimChanges(before: ClaimRows['claims'], after: ClaimRows['claims'], r: Omit<ClaimRows, 'claims'>, o: BootstrapOptions & { fields?: readonly Field[] } = {}): { fields: Record<string, { confab: Change; recall: Change }>; no_false_claim: Change } {
  const fields = o.fields ?? FIELDS;
  if (before.length !== after.length) throw new Error(`claimChanges: ${before.length} rows before, ${after.length} after`);
  checkRows({ ...r, claims: after }, 'claimChanges');
  const figures = (rows: readonly number[]) => [
    ...fields.flatMap((f) => {
      const a = counts(before, r.known, rows, f), b = counts(after, r.known, rows, f);
      return [(b.stated - b.right) / b.stated - (a.stated - a.right) / a.stated, b.right / b.known - a.right / a.known];
    }),
    noFalseClaim(after, r.known, rows, fields) - noFalseClaim(before, r.known, rows, fields),
  ];
  const point = figures([...r.docs.keys()]), iv = docBootstrap(r.docs, figures, o);
  const change = (j: number): Change => ({ diff: point[j]!, ci: iv[j]! });
  return {
    fields: Object.fromEntries(fields.map((f, j) => [f, { confab: change(2 * j), recall: change(2 * j + 1) }])),
    no_false_claim: change(2 * fields.length),
  };
}

function checkRows(r: ClaimRows, who: string): void {
  if (r.claims.length !== r.known.length || r.claims.length !== r.docs.length) throw new Error(`${who}: ${r.claims.length} rows of claims, ${r.known.length} truths, ${r.docs.length} documents`);
}

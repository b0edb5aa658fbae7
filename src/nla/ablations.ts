// Does the reconstruction use the content? (issue 11) Edit each explanation and see what the AR
// makes of it: its sentences shuffled, its quotations dropped, and each stated fact's value
// swapped for another value of the same field. An AR that reads the facts follows a swap: a
// probe trained on real activations reads the swapped value from the reconstruction. An
// explanation that carries h in a private code loses much to a shuffle and little to a swap.
import { FIELD_VALUES, forms, type CutTruth, type Field } from './corpus.js';
import { extractClaims } from './claims.js';
import { QUOTE_MARK } from './quote-format.js';
import { normalizedMseHost } from './loss.js';
import { predictProbe, type Probe } from './probe.js';
import { type Rng, pick, shuffled } from '../util/rng.js';

/** Sentences (ending in . ! or ?, a closing quote kept with its sentence) in a random order. */
export function shuffleSentences(text: string, rand: Rng): string {
  const parts = text.match(/[^.!?]+[.!?]+"?/g) ?? [text];
  const rest = text.slice(parts.join('').length);
  return shuffled(rand, [...parts.map((p) => p.trim()), ...(rest.trim() ? [rest.trim()] : [])]).join(' ');
}

/** The explanation without its quotations, the closing `Text: ...` words included (whitespace tidied). */
export function dropQuotes(text: string): string {
  const at = text.indexOf(QUOTE_MARK);
  return (at < 0 ? text : text.slice(0, at)).replace(/"[^"]*("|$)\.?/g, ' ').replace(/\s+/g, ' ').trim();
}

/**
 * Every whole-word form of `from` (a value of `field`) replaced by the same form of `to` where the
 * explanation states it: outside quotations, and in the next-word clause (`Then "ball"`), which
 * predicts the value (at a cue cut it is the recalled fact itself; left alone, the edited
 * explanation would state both values). Quotations of the text read are kept as written.
 */
export function swapValue(text: string, field: Field, from: string, to: string): string {
  const fromForms = forms(field, from), toForms = forms(field, to);
  // The closing words read (quote-format.ts) are a quotation too: kept as written.
  const at = text.indexOf(QUOTE_MARK);
  if (at >= 0) return swapValue(text.slice(0, at), field, from, to) + text.slice(at);
  return text.split(/("[^"]*(?:"|$))/).map((seg, i, all) => {
    if (seg.startsWith('"') && !(i > 0 && /\bThen\s*$/.test(all[i - 1]!))) return seg;
    fromForms.forEach((w, k) => {
      const esc = w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      seg = seg.replace(new RegExp(`(^|[^a-zA-Z])${esc}(?=$|[^a-zA-Z])`, field === 'name' ? 'g' : 'gi'), (_, pre: string) => pre + (toForms[k] ?? to));
    });
    return seg;
  }).join('');
}

/** What a sentence of an explanation is, by its form in the summary layout (quote-format.ts). */
export type SentenceKind = 'quote' | 'facts' | 'next' | 'text';

/**
 * The explanation's sentences in order, each with its kind: a quotation (`"..."`), the next
 * word (`Then "..."`), the closing words read (`Text: ... words`, one unit) or stated facts.
 */
export function sentences(text: string): { text: string; kind: SentenceKind }[] {
  const at = text.indexOf(QUOTE_MARK);
  const head = at < 0 ? text : text.slice(0, at), tail = at < 0 ? '' : text.slice(at).trim();
  const parts = head.match(/[^.!?]+[.!?]+"?/g) ?? [];
  const rest = head.slice(parts.join('').length).trim();
  const all = [...parts.map((p) => p.trim()), ...(rest ? [rest] : [])].filter(Boolean);
  const kindOf = (x: string): SentenceKind => (x.startsWith('"') ? 'quote' : /^Then\b/.test(x) ? 'next' : 'facts');
  return [...all.map((x) => ({ text: x, kind: kindOf(x) })), ...(tail ? [{ text: tail, kind: 'text' as const }] : [])];
}

export interface AblationReport {
  /** Parseable explanations (the only ones edited); every FVE here is over them (NaN when none). */
  rows: number;
  fve: number;
  fve_shuffled_sentences: number;
  fve_no_quotes: number;
  /**
   * Per field, over explanations that state exactly one value of it: FVE after the swap, and the
   * share where a probe on the reconstruction reads the swapped value: `follows` with the probe
   * trained where the reference summaries state the field (`probe_rows` 'stated'; 'known' when too
   * few such rows), `follows_known` with one trained on every row where the fact has been read.
   */
  swap: Record<string, { rows: number; fve: number; follows: number; follows_known: number; probe_rows: 'stated' | 'known' }>;
  /**
   * Each sentence removed in turn, by kind: how many were removed and the mean drop in FVE
   * (rise in normalised MSE over Var) it caused: which sentences carry the reconstruction.
   */
  removed: Partial<Record<SentenceKind, { sentences: number; fve_drop: number }>>;
}

/**
 * Per field, probes trained on real activations (classes in FIELD_VALUES order): `stated` on rows
 * whose reference summary states the field (the kind of row a stated value imitates: at a cue
 * cut h holds the fact, far from its mention it may not), `known` on every row where it was read.
 */
export interface SwapProbes { stated?: Probe; known: Probe }

/** `reconstruct` maps explanations to predicted activations (the AR). */
export async function ablations(
  reconstruct: (texts: string[]) => Promise<Float32Array>,
  h: Float32Array,
  explanations: readonly (string | undefined)[],
  d: number,
  variance: number,
  probes: Partial<Record<Field, SwapProbes>>,
  rand: Rng,
): Promise<AblationReport> {
  const rows = explanations.map((e, i) => ({ e, i })).filter((x): x is { e: string; i: number } => x.e !== undefined);
  const fveOf = async (texts: string[], idx: number[]) => {
    if (!idx.length) return { fve: NaN, pred: new Float32Array(0) };
    const pred = await reconstruct(texts);
    let s = 0;
    idx.forEach((row, k) => (s += normalizedMseHost(pred, h, d, k, row)));
    return { fve: 1 - s / idx.length / variance, pred };
  };
  const idx = rows.map((r) => r.i);
  const base = await fveOf(rows.map((r) => r.e), idx);
  const shuf = await fveOf(rows.map((r) => shuffleSentences(r.e, rand)), idx);
  const noq = await fveOf(rows.map((r) => dropQuotes(r.e) || '.'), idx);
  const swap: AblationReport['swap'] = {};
  for (const f of Object.keys(probes) as Field[]) {
    const jobs = rows.map((r) => ({ ...r, said: extractClaims(r.e, [f])[f]! })).filter((r) => r.said.length === 1);
    if (!jobs.length) continue;
    const to = jobs.map((r) => pick(rand, FIELD_VALUES[f].filter((v) => v !== r.said[0])));
    const out = await fveOf(jobs.map((r, k) => swapValue(r.e, f, r.said[0]!, to[k]!)), jobs.map((r) => r.i));
    const followed = (p: Probe) => {
      const read = predictProbe(p, out.pred);
      return jobs.filter((_, k) => FIELD_VALUES[f][read[k]!] === to[k]).length / jobs.length;
    };
    const { stated, known } = probes[f]!;
    const follows_known = followed(known);
    swap[f] = { rows: jobs.length, fve: out.fve, follows: stated ? followed(stated) : follows_known, follows_known, probe_rows: stated ? 'stated' : 'known' };
  }
  // Sentence removal: each sentence of each explanation left out once, scored against its row's unedited MSE.
  const cuts = rows.flatMap((r, k) => {
    const ss = sentences(r.e);
    return ss.length < 2 ? [] : ss.map((x, j) => ({ row: r.i, k, kind: x.kind, text: ss.filter((_, q) => q !== j).map((y) => y.text).join(' ') }));
  });
  const removed: AblationReport['removed'] = {};
  if (cuts.length) {
    const pred = await reconstruct(cuts.map((c) => c.text));
    const rise: Partial<Record<SentenceKind, number[]>> = {};
    cuts.forEach((c, q) => (rise[c.kind] ??= []).push((normalizedMseHost(pred, h, d, q, c.row) - normalizedMseHost(base.pred, h, d, c.k, c.row)) / variance));
    for (const [kind, xs] of Object.entries(rise)) removed[kind as SentenceKind] = { sentences: xs.length, fve_drop: xs.reduce((a, b) => a + b, 0) / xs.length };
  }
  return { rows: rows.length, fve: base.fve, fve_shuffled_sentences: shuf.fve, fve_no_quotes: noq.fve, swap, removed };
}

/** Field value labels (FIELD_VALUES order) of rows where the fact is known; -1 elsewhere. */
export function fieldLabels(truths: readonly CutTruth[], f: Field): Int32Array {
  return Int32Array.from(truths.map((t) => (t.known[f] === undefined ? -1 : (FIELD_VALUES[f] as readonly string[]).indexOf(t.known[f]!))));
}

// How sure is the AV of each claim it writes? A claim's confidence is the probability the AV
// gave the value's own tokens while writing it (the product over the tokens that overlap the
// value's characters, at temperature 1): p("Tom" | the prompt, h, the explanation so far). On
// world-M's test rows a stated name the AV is right about has p >= 0.98 in 9 of 10 cases, while
// its false names sit at 0.44-0.78 (docs/world-experiments.md, "How sure are these figures"), so the AV often knows when it guesses.
// It is a conditional: a misread quotation that makes the value near-certain ("at the" ->
// "beach") gives a confident false claim, which no threshold on it catches.
import { claimSpans } from './claims.js';
import { FIELDS, type Field } from './corpus.js';

/** The threshold the confident figures use: the precision target, fixed, not tuned. */
export const CONFIDENT = 0.9;

/**
 * Per field the explanation states a value of: the AV's probability of that value's tokens (the
 * lowest over the values when it names several). `text` is the decoded output the explanation
 * was parsed from, `starts` each token's first character in it, `logprobs` each token's log p.
 */
export function claimConfidences(explanation: string, text: string, starts: readonly number[], logprobs: readonly number[], fields: readonly Field[] = FIELDS): Partial<Record<Field, number>> {
  if (starts.length > logprobs.length) throw new Error(`claimConfidences: ${starts.length} tokens, ${logprobs.length} log-probs`);
  const at = text.indexOf(explanation);
  if (at < 0) throw new Error('claimConfidences: the explanation is not in the output text');
  const out: Partial<Record<Field, number>> = {};
  for (const s of claimSpans(explanation, fields)) {
    const a = at + s.start, b = at + s.end;
    let lp = 0;
    starts.forEach((st, k) => {
      const en = k + 1 < starts.length ? starts[k + 1]! : text.length;
      if (en > a && st < b) lp += logprobs[k]!;
    });
    out[s.field] = Math.min(out[s.field] ?? 1, Math.exp(lp));
  }
  return out;
}

/** Claims counted by confidence: all of them, and only those at or above `threshold`. */
export interface ConfidentCounts { stated: number; right: number; known: number }

/**
 * One field's claims with confidence >= threshold (a reader who takes only the AV's sure claims):
 * stated, right (exactly the true value), and rows where the fact has been read.
 */
export function confidentCounts(claims: readonly Record<string, readonly string[]>[], confidences: readonly Partial<Record<Field, number>>[], known: readonly Partial<Record<Field, string>>[], f: Field, threshold = CONFIDENT): ConfidentCounts {
  const out = { stated: 0, right: 0, known: 0 };
  claims.forEach((c, i) => {
    if (known[i]![f] !== undefined) out.known++;
    const said = c[f] ?? [];
    if (!said.length || !((confidences[i]![f] ?? 0) >= threshold)) return;
    out.stated++;
    if (said.length === 1 && said[0] === known[i]![f]) out.right++;
  });
  return out;
}

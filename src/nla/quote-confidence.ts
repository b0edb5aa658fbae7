// How sure is the AV of the words it quotes? The probability it gave, while writing, to its own
// opening quotation (`"bec".`): the product of its tokens' probabilities under the AV's own
// distribution at temperature 1, read off the generation (nothing of h through the AR, nothing of
// the truth). On held-out text of stories260K it tells the AV's right quotes from its wrong ones
// at an AUC of 0.98 (docs/experiments.md, "But the AV knows when it misreads"), so an explanation
// can say how far to trust its quote.

/** The ids a Verbalizer decodes with the character offset where each starts (Verbalizer.decodeWithStarts). */
export interface Decoder {
  decodeWithStarts(ids: number[]): { text: string; starts: number[] };
}

/**
 * log p of the explanation's opening quotation, through the token that holds its closing mark;
 * undefined when the text does not open with a quotation. `logprobs[i]` is the log-probability of
 * `tokens[i]` as generated.
 */
export function quoteLogProb(av: Decoder, tokens: readonly number[], logprobs: readonly number[]): number | undefined {
  if (logprobs.length < tokens.length) return undefined; // not a generation that recorded them
  const { text, starts } = av.decodeWithStarts([...tokens]);
  const q = /^"(.*?)"\./s.exec(text);
  if (!q) return undefined;
  const close = q[1]!.length + 1; // the offset of the closing mark
  let s = 0;
  for (let i = 0; i < starts.length && starts[i]! <= close; i++) s += logprobs[i]!;
  return s;
}

/**
 * The area under the ROC curve of `score` for telling rows where `right` holds from the others:
 * the chance that a right row scores above a wrong one (ties count half). NaN without both kinds.
 */
export function confidenceAuc(score: readonly number[], right: readonly boolean[]): number {
  if (score.length !== right.length) throw new Error(`confidenceAuc: ${score.length} scores for ${right.length} rows`);
  // Rank-sum (Mann-Whitney) with average ranks for ties: O(n log n).
  const order = [...score.keys()].sort((a, b) => score[a]! - score[b]!);
  const rank = new Float64Array(score.length);
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && score[order[j + 1]!] === score[order[i]!]) j++;
    for (let k = i; k <= j; k++) rank[order[k]!] = (i + j) / 2 + 1;
    i = j + 1;
  }
  let nPos = 0, sumPos = 0;
  right.forEach((r, i) => { if (r) { nPos++; sumPos += rank[i]!; } });
  const nNeg = score.length - nPos;
  if (!nPos || !nNeg) return NaN;
  return (sumPos - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

/**
 * How well the AV's confidence in its quotations tells the exact ones from the others, over
 * generated explanations: confidenceAuc of quoteLogProb (an explanation without a quotation
 * ranks as least sure).
 */
export function quoteConfidenceAuc(av: Decoder, rows: readonly { tokens: number[]; logprobs: number[] }[], exact: readonly boolean[]): number {
  return confidenceAuc(rows.map((r) => quoteLogProb(av, r.tokens, r.logprobs) ?? -Infinity), exact);
}

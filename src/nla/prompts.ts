// The AV's and AR's fixed prompts, stored in the NLA's metadata and read from there at use.
import type { Tokenizer } from '../io/tokenizer.js';

export interface PromptSpec {
  /** AV prompt; `{concept}` marks where the placeholder token goes. Ends where the explanation starts. */
  av: string;
  /** Text of the placeholder: must encode to exactly one rare token. */
  placeholder: string;
  /** Closes the explanation; the AV's output is parsed up to it. */
  explanationEnd: string;
  /** AR prompt; `{explanation}` is replaced by the explanation text. Read at its last token. */
  ar: string;
}

// stories260K's 512-piece vocabulary has no rare whole-word token, so the placeholder is the
// DEL byte (0x7f): a byte-fallback token that never occurs in the stories it was trained on.
export const DEFAULT_PROMPTS: PromptSpec = {
  av: 'Explain the thought.\n<concept>{concept}</concept>\n<explanation>\n',
  placeholder: '\u007f',
  explanationEnd: '</explanation>',
  // The AR reads the explanation's last token, the last word read (quote-format.ts): nothing
  // may follow the explanation.
  ar: 'Summary of the following text: {explanation}',
};

// The same contract in half the tokens. tok512 spells most of DEFAULT_PROMPTS letter by letter
// (the AV prompt is 44 tokens, the AR's 20), and every AV and AR pass pays for them: the stories
// demo's summaries average 45 tokens, so the prompts were half of what the warm starts computed.
// Kept: the <explanation> tags (what an export to the reference layout needs) and the
// placeholder at neither end of the prompt (the reference's loader requires it). 22 and 9 tokens.
export const COMPACT_PROMPTS: PromptSpec = {
  av: 'Thought: {concept}\n<explanation>\n',
  placeholder: '\u007f',
  explanationEnd: '</explanation>',
  ar: 'Summary: {explanation}',
};

export interface AvPrompt {
  ids: number[];
  /** Index of the placeholder token in ids. */
  position: number;
  placeholderId: number;
}

/** Tokenize the AV prompt (with BOS) and find its one placeholder; throws if it is missing or repeated. */
export function avPrompt(tok: Tokenizer, p: PromptSpec): AvPrompt {
  if (!p.av.includes('{concept}')) throw new Error(`AV prompt has no {concept} slot: ${JSON.stringify(p.av)}`);
  const ph = tok.encode(p.placeholder);
  // A SentencePiece tokenizer may prepend a dummy-prefix space piece; the placeholder is the last token.
  const placeholderId = ph[ph.length - 1];
  if (ph.length !== 1 && !(ph.length === 2 && tok.pieces([ph[0]])[0].trim() === '' )) {
    throw new Error(`placeholder ${JSON.stringify(p.placeholder)} encodes to ${ph.length} tokens (${tok.pieces(ph).join(' ')}); it must be one token`);
  }
  const ids = tok.encode(p.av.replace('{concept}', p.placeholder), { bos: true });
  const hits = ids.flatMap((t, i) => (t === placeholderId ? [i] : []));
  if (hits.length !== 1) {
    throw new Error(`AV prompt must contain the placeholder token exactly once; found it ${hits.length} times in ${JSON.stringify(p.av)}`);
  }
  return { ids, position: hits[0], placeholderId };
}

/**
 * Tokens of `target` as a continuation of `promptIds` (what the AV is trained to write):
 * encode prompt+target and strip the prompt's tokens, checking that they are a prefix.
 */
export function continuationIds(tok: Tokenizer, promptText: string, promptIds: number[], target: string): number[] {
  const full = tok.encode(promptText + target, { bos: true });
  for (let i = 0; i < promptIds.length; i++) {
    if (full[i] !== promptIds[i]) throw new Error(`the AV prompt's last token merges with the explanation's first (at token ${i}); end the prompt with a newline`);
  }
  return full.slice(promptIds.length);
}

/** The AR's input ids for an explanation (with BOS). */
export function arIds(tok: Tokenizer, p: PromptSpec, explanation: string): number[] {
  return tok.encode(p.ar.replace('{explanation}', explanation), { bos: true });
}

/** The explanation in an AV output, or undefined when it never closes (unparseable). */
export function parseExplanation(text: string, p: PromptSpec): string | undefined {
  const end = text.indexOf(p.explanationEnd);
  if (end < 0) return undefined;
  return text.slice(0, end).trim();
}

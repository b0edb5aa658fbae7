// The text-splitting half of a Hugging Face tokenizer.json: normalizers, pre-tokenizers, the
// GPT-2 byte<->unicode map, and translation of the Rust (Oniguruma) regexes in the file to JS.
// Only the components used by BPE language models (GPT-2, Llama 2/3, Mistral, Qwen2) are
// implemented; anything else fails with an error naming the file and the JSON field.
import { FormatError } from './errors.js';

// ---------------------------------------------------------------------------------------------
// GPT-2 bytes_to_unicode: printable bytes map to themselves, the rest to U+0100.. so every byte
// sequence becomes a printable string the BPE vocab can key on.
export const BYTE_TO_CHAR: string[] = (() => {
  const keep: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) keep.push(b);
  for (let b = 0xa1; b <= 0xac; b++) keep.push(b);
  for (let b = 0xae; b <= 0xff; b++) keep.push(b);
  const out: string[] = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCodePoint(keep.includes(b) ? b : 256 + n++);
  return out;
})();
export const CHAR_TO_BYTE = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));

const utf8 = new TextEncoder();
export function toByteLevel(s: string): string {
  let out = '';
  for (const b of utf8.encode(s)) out += BYTE_TO_CHAR[b];
  return out;
}

// ---------------------------------------------------------------------------------------------
// Regex translation. Oniguruma (used by HF tokenizers) and Rust regex (tiktoken) define \s as
// Unicode White_Space, which includes U+0085 and excludes U+FEFF; JS's \s is the reverse on
// both. Oniguruma also has inline case-insensitive groups "(?i:...)" that Node 20 lacks.
const WS = '\\t\\n\\v\\f\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';

export function convertRegex(pattern: string, file: string, field: string): RegExp {
  let out = '';
  let inClass = false;
  const groups: boolean[] = []; // per open paren: is it a (?i: group
  const ci = (): boolean => groups.includes(true);
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\') {
      const e = pattern[i + 1] ?? '';
      i++;
      if ((e === 'p' || e === 'P') && pattern[i + 1] === '{') {
        const end = pattern.indexOf('}', i);
        out += pattern.slice(i - 1, end + 1);
        i = end;
      } else if (e === 's') out += inClass ? WS : `[${WS}]`;
      else if (e === 'S' && !inClass) out += `[^${WS}]`;
      else if (e === 'd') out += inClass ? '\\p{Nd}' : '[\\p{Nd}]'; // Unicode digits, as in Oniguruma
      else out += '\\' + e;
    } else if (inClass) {
      if (c === ']') inClass = false;
      // Case-fold single letters; letters in a range (a-z) are left alone (never seen in practice).
      const inRange = pattern[i - 1] === '-' || pattern[i + 1] === '-';
      out += ci() && !inRange && /[a-z]/i.test(c) ? c.toLowerCase() + c.toUpperCase() : c;
    } else if (c === '[') {
      inClass = true;
      out += c;
      if (pattern[i + 1] === '^') out += pattern[++i];
    } else if (c === '(') {
      if (pattern.startsWith('(?i:', i)) {
        groups.push(true);
        out += '(?:';
        i += 3;
      } else {
        groups.push(false);
        out += c;
      }
    } else if (c === ')') {
      groups.pop();
      out += c;
    } else {
      out += ci() && /[a-z]/i.test(c) ? `[${c.toLowerCase()}${c.toUpperCase()}]` : c;
    }
  }
  try {
    return new RegExp(out, 'gu');
  } catch (e) {
    throw new FormatError(file, field, `${field}: regex ${JSON.stringify(pattern)} is not supported in JavaScript (${(e as Error).message})`);
  }
}

// ---------------------------------------------------------------------------------------------
// Splitting with HF's SplitDelimiterBehavior.
type Behavior = 'Removed' | 'Isolated' | 'MergedWithPrevious' | 'MergedWithNext' | 'Contiguous';
const BEHAVIORS = ['Removed', 'Isolated', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous'];

function split(s: string, re: RegExp, behavior: Behavior, invert = false): string[] {
  const segs: { text: string; match: boolean }[] = [];
  let pos = 0;
  for (const m of s.matchAll(re)) {
    if (m[0].length === 0) continue;
    if (m.index! > pos) segs.push({ text: s.slice(pos, m.index), match: false });
    segs.push({ text: m[0], match: true });
    pos = m.index! + m[0].length;
  }
  if (pos < s.length) segs.push({ text: s.slice(pos), match: false });
  if (invert) for (const g of segs) g.match = !g.match;
  const out: string[] = [];
  let prevMatch = false;
  switch (behavior) {
    case 'Removed':
      return segs.filter((g) => !g.match).map((g) => g.text);
    case 'Isolated':
      return segs.map((g) => g.text);
    case 'Contiguous':
      for (const g of segs) {
        if (g.match && prevMatch) out[out.length - 1] += g.text;
        else out.push(g.text);
        prevMatch = g.match;
      }
      return out;
    case 'MergedWithPrevious': // a delimiter joins the piece before it, unless that was a delimiter
      for (const g of segs) {
        if (g.match && !prevMatch && out.length > 0) out[out.length - 1] += g.text;
        else out.push(g.text);
        prevMatch = g.match;
      }
      return out;
    case 'MergedWithNext': // mirror image, scanning from the right as HF does
      for (let i = segs.length - 1; i >= 0; i--) {
        const g = segs[i]!;
        if (g.match && !prevMatch && out.length > 0) out[out.length - 1] = g.text + out[out.length - 1];
        else out.push(g.text);
        prevMatch = g.match;
      }
      return out.reverse();
  }
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'); // no '-': an invalid escape in 'u' mode
}

/** {"String": "x"} or {"Regex": "..."} as used by Split and Replace. */
function patternOf(p: unknown, file: string, field: string): RegExp {
  const o = p as Record<string, unknown> | null;
  if (o && typeof o.String === 'string') return new RegExp(escapeRegex(o.String), 'gu');
  if (o && typeof o.Regex === 'string') return convertRegex(o.Regex, file, field);
  throw new FormatError(file, field, `${field} must be {"String": ...} or {"Regex": ...}, got ${JSON.stringify(p)}`);
}

/** `v` as a list, or a FormatError naming the file and the field that should have been one. */
export function listOf(v: unknown, file: string, field: string, missingOk = false): unknown[] {
  if (missingOk && (v === undefined || v === null)) return [];
  if (!Array.isArray(v)) throw new FormatError(file, field, `${field} is ${JSON.stringify(v) ?? 'missing'}, expected a list`);
  return v;
}

// ---------------------------------------------------------------------------------------------
export type Normalizer = (s: string) => string;

export function buildNormalizer(json: unknown, file: string, field = 'normalizer'): Normalizer {
  if (json === null || json === undefined) return (s) => s;
  const j = json as Record<string, unknown>;
  switch (j.type) {
    case 'Sequence': {
      const list = listOf(j.normalizers, file, `${field}.normalizers`).map((n, i) => buildNormalizer(n, file, `${field}.normalizers[${i}]`));
      return (s) => list.reduce((acc, f) => f(acc), s);
    }
    case 'NFC': case 'NFD': case 'NFKC': case 'NFKD': {
      const form = j.type;
      return (s) => s.normalize(form);
    }
    case 'Lowercase':
      return (s) => s.toLowerCase();
    case 'Prepend': // HF prepends only to non-empty text
      return (s) => (s.length > 0 ? String(j.prepend) + s : s);
    case 'Replace': {
      const re = patternOf(j.pattern, file, `${field}.pattern`);
      const content = String(j.content);
      return (s) => s.replace(re, () => content);
    }
    case 'Strip':
      return (s) => {
        let r = s;
        if (j.strip_left) r = r.replace(/^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/u, '');
        if (j.strip_right) r = r.replace(/[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/u, '');
        return r;
      };
    default:
      throw new FormatError(file, `${field}.type`, `${field}.type=${JSON.stringify(j.type)} is not supported (supported: Sequence, NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Strip)`);
  }
}

// ---------------------------------------------------------------------------------------------
/**
 * A pre-tokenizer maps the pieces of one segment to finer pieces. `atStart` says whether
 * pieces[0] begins at offset 0 of the original text (Metaspace prepend_scheme "first").
 */
export type PreTokenizer = (pieces: string[], atStart: boolean) => string[];

export interface PreTokenizerInfo {
  run: PreTokenizer;
  /** a ByteLevel step maps text to GPT-2 byte characters */
  byteLevel: boolean;
}

// GPT-2's split pattern, used by the ByteLevel pre-tokenizer when use_regex is true.
const GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

export function buildPreTokenizer(json: unknown, file: string, field = 'pre_tokenizer'): PreTokenizerInfo {
  if (json === null || json === undefined) return { run: (p) => p, byteLevel: false };
  const j = json as Record<string, unknown>;
  const each = (f: (s: string, first: boolean) => string[]): PreTokenizer => (pieces, atStart) =>
    pieces.flatMap((s, i) => f(s, atStart && i === 0));
  switch (j.type) {
    case 'Sequence': {
      const steps = listOf(j.pretokenizers, file, `${field}.pretokenizers`).map((p, i) => buildPreTokenizer(p, file, `${field}.pretokenizers[${i}]`));
      return { run: (p, atStart) => steps.reduce((acc, s) => s.run(acc, atStart), p), byteLevel: steps.some((s) => s.byteLevel) };
    }
    case 'ByteLevel': {
      const re = j.use_regex === false ? undefined : convertRegex(GPT2_PATTERN, file, field);
      const prefix = j.add_prefix_space === true;
      return {
        byteLevel: true,
        run: each((s) => {
          const t = prefix && !s.startsWith(' ') ? ' ' + s : s;
          return (re ? split(t, re, 'Isolated') : [t]).map(toByteLevel);
        }),
      };
    }
    case 'Split': {
      const re = patternOf(j.pattern, file, `${field}.pattern`);
      const behavior = j.behavior as Behavior;
      if (!BEHAVIORS.includes(behavior)) throw new FormatError(file, `${field}.behavior`, `${field}.behavior=${JSON.stringify(j.behavior)} is unknown`);
      return { byteLevel: false, run: each((s) => split(s, re, behavior, j.invert === true)) };
    }
    case 'Metaspace': {
      const repl = typeof j.replacement === 'string' ? j.replacement : '▁';
      const scheme = metaspaceScheme(j);
      const re = new RegExp(escapeRegex(repl), 'gu');
      return {
        byteLevel: false,
        run: each((s, first) => {
          let t = s.replaceAll(' ', repl);
          if ((scheme === 'always' || (scheme === 'first' && first)) && !t.startsWith(repl)) t = repl + t;
          return j.split === false ? [t] : split(t, re, 'MergedWithNext');
        }),
      };
    }
    case 'Digits': {
      const re = /\p{N}/gu;
      return { byteLevel: false, run: each((s) => split(s, re, j.individual_digits ? 'Isolated' : 'Contiguous')) };
    }
    default:
      throw new FormatError(file, `${field}.type`, `${field}.type=${JSON.stringify(j.type)} is not supported (supported: Sequence, ByteLevel, Split, Metaspace, Digits)`);
  }
}

/** Metaspace's prepend rule: new files say prepend_scheme, old ones add_prefix_space. */
export function metaspaceScheme(j: Record<string, unknown>): 'always' | 'first' | 'never' {
  if (j.prepend_scheme === 'always' || j.prepend_scheme === 'first' || j.prepend_scheme === 'never') return j.prepend_scheme;
  return j.add_prefix_space === false ? 'never' : 'always';
}

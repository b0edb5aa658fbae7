// JSON.parse for files nla reads: errors name the file, and nesting is bounded before parsing.
// JSON.parse itself copes with deep nesting, but every recursive walk after it (validation,
// JSON.stringify of a bad value into an error message, structuredClone) overflows the stack
// on a few thousand levels; no format nla reads nests more than a handful.
import { FormatError } from './errors.js';

export const MAX_JSON_DEPTH = 256;

/** Parse `text` read from `file`; a FormatError naming the file and `field` if it is not JSON or nests too deep. */
export function parseJson(text: string, file: string, field = 'json'): unknown {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // skip a string, honouring escapes
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > MAX_JSON_DEPTH) throw new FormatError(file, field, `${field}: JSON nests deeper than ${MAX_JSON_DEPTH} levels (at character ${i}); not a file nla wrote or reads`);
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new FormatError(file, field, `${field}: not valid JSON (${(e as Error).message})`);
  }
}

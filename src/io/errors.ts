// One error type for malformed files, so callers can catch format problems separately from
// I/O failures and so every message starts with the file and names the offending field.

export class FormatError extends Error {
  override name = 'FormatError';
  /**
   * @param file  path (or display name) of the file being read
   * @param field the header field / tensor / JSON key at fault
   * @param detail human-readable explanation; should mention `field` in context
   */
  constructor(
    readonly file: string,
    readonly field: string,
    detail: string,
  ) {
    super(`${file}: ${detail}`);
  }
}

// Fuzzed `nla report --data` files (src/cli/report.ts readDataFile): JSONL of {"text", "facts"?}
// lines, or any other file as one text. A mutated file must read as exactly what its lines say
// (checked against an oracle written here from the format's rules) or fail with an Error naming
// the file and the first bad line; never a crash, a hang, a silent U+FFFD, or an allocation far
// beyond the file's size.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { DATA_MAX_BYTES, readDataFile } from '../src/cli/report.js';
import { AR_FILE, AV_FILE, META } from '../src/cli/nla-dir.js';
import { findModelFile } from '../src/io/model-files.js';
import { FIELD_VALUES, FIELDS } from '../src/nla/corpus.js';
import { ViewerSession } from '../src/viewer/session.js';
import { fcRuns } from '../src/testing/runs.js';
import { adversarialJson, check, cleanReadOf, editJson, jsonEditsArb, mutate, mutationArb, rejectsNaming, Tally, toJsonText } from './fuzz.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-fuzz-report-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
let serial = 0;
const fresh = (ext = '.jsonl') => path.join(tmp, `case-${serial++}${ext}`);

// As `nla world sample --jsonl` writes them, plus a plain line and a non-ASCII one.
const ROWS: unknown[] = [
  { text: 'Once upon a time, there was a little girl named Lily. She went to the park.', facts: { name: 'Lily', place: 'park' } },
  { text: 'Tom had a red ball. He was happy.', facts: { name: 'Tom', object: 'ball', colour: 'red', emotion: 'happy' } },
  { text: 'The cat sat on the mat.' },
  { text: 'Mia said: «¡hola!» — and ran 🏃 home.', facts: { name: 'Mia', place: 'house' } },
];
const jsonl = (rows: unknown[]) => rows.map((r) => toJsonText(r)).join('\n') + '\n';
const BASE = new TextEncoder().encode(jsonl(ROWS));

/**
 * What a .jsonl file must read as, from the format's rules: the texts (and facts) of its
 * non-blank lines, or the "file:line:" (or "file:") the error must name.
 */
function oracle(file: string, bytes: Uint8Array): { texts: unknown[] } | { names: string } {
  const texts: unknown[] = [];
  const lines: Uint8Array[] = [];
  for (let s = 0; ; ) {
    const e = bytes.indexOf(0x0a, s);
    lines.push(bytes.subarray(s, e < 0 ? bytes.length : e));
    if (e < 0) break;
    s = e + 1;
  }
  for (const [i, b] of lines.entries()) {
    const at = `${file}:${i + 1}:`;
    let line: string;
    try {
      line = new TextDecoder('utf-8', { fatal: true }).decode(b);
    } catch {
      return { names: at };
    }
    if (!line.trim()) continue;
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch {
      return { names: at };
    }
    const rec = o as Record<string, unknown>;
    if (typeof o !== 'object' || o === null || Array.isArray(o) || typeof rec.text !== 'string' || !rec.text.trim()) return { names: at };
    if (!('facts' in rec) || rec.facts === undefined) { texts.push({ text: rec.text }); continue; }
    const f = rec.facts as Record<string, unknown>;
    const good = typeof f === 'object' && f !== null && !Array.isArray(f) && Object.keys(f).length > 0 &&
      Object.entries(f).every(([k, v]) => (FIELDS as string[]).includes(k) && (FIELD_VALUES as Record<string, readonly string[]>)[k].includes(v as string));
    if (!good) return { names: at };
    texts.push({ text: rec.text, facts: { ...f } });
  }
  return texts.length ? { texts } : { names: `${file}:` };
}

/** Read `bytes` as a .jsonl --data file cleanly and hold the result to the oracle. */
async function readChecked(bytes: Uint8Array, t: Tally): Promise<void> {
  const file = fresh();
  const want = oracle(file, bytes);
  const got = await cleanReadOf(file, bytes, (f) => readDataFile(f));
  t.add(got);
  if (got.ok) {
    assert.ok('texts' in want, `read ${JSON.stringify(got.value).slice(0, 300)}; the oracle wants an error naming ${'names' in want ? want.names : ''}`);
    const v = got.value as ReturnType<typeof readDataFile>;
    assert.deepEqual(v.texts, want.texts);
    assert.equal(v.where.length, v.texts.length);
  } else {
    assert.ok('names' in want, `error ${got.error.message.slice(0, 300)}; the oracle reads ${JSON.stringify(want).slice(0, 300)}`);
    assert.ok(got.error.message.includes(want.names), `error ${JSON.stringify(got.error.message.slice(0, 300))} should name ${want.names}`);
  }
}

// Pieces of lines that lie: bad UTF-8 (lone continuation, overlong, surrogate, truncated
// sequence), a BOM, CR, NUL, blank lines, and rows whose "text" or "facts" lie.
const enc = (s: string) => [...new TextEncoder().encode(s)];
const piece = fc.oneof(
  fc.constantFrom([0x80], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf4, 0x90, 0x80, 0x80], [0xff], [0xef, 0xbb, 0xbf], [0x0d], [0x00], [0x0a], [0x0a, 0x0a], enc(' \t')),
  fc.record({ text: fc.oneof(fc.string({ maxLength: 40 }), adversarialJson), facts: fc.option(fc.oneof(adversarialJson, fc.dictionary(fc.constantFrom(...FIELDS, 'hair', '__proto__', ''), fc.oneof(fc.constantFrom(...Object.values(FIELD_VALUES).flat()), adversarialJson))), { nil: undefined }) }).map((r) => enc(toJsonText(r))),
  fc.constantFrom(...ROWS).map((r) => enc(toJsonText(r))),
);

describe('fuzz: nla report --data files', () => {
  test('byte mutations (truncations, bit flips, overwrites, insertions) of a JSONL file: the oracle\'s texts, or an error naming the first bad line', async () => {
    const t = new Tally();
    await check(fc.asyncProperty(mutationArb(BASE.length), async (muts) => readChecked(mutate(BASE, muts), t)), { seed: 1460, numRuns: fcRuns(400) });
    console.log(`# byte mutations: ${t.ok} clean reads, ${t.errors} errors`);
    assert.ok(t.ok > 0 && t.errors > 0, 'the fuzz reached both outcomes');
  });

  test('lying values (text and facts of every type, huge numbers, 20,000-deep nesting, rows that are not objects): the oracle\'s texts, or an error naming the line', async () => {
    const t = new Tally();
    await check(
      fc.asyncProperty(jsonEditsArb, async (edits) => {
        const doc = editJson(ROWS, edits);
        await readChecked(new TextEncoder().encode(Array.isArray(doc) ? jsonl(doc) : toJsonText(doc)), t);
      }),
      { seed: 1461, numRuns: fcRuns(400) },
    );
    console.log(`# JSON edits: ${t.ok} clean reads, ${t.errors} errors`);
    assert.ok(t.ok > 0 && t.errors > 0, 'the fuzz reached both outcomes');
  });

  test('lines assembled from hostile pieces (bad UTF-8, BOM, CR, NUL, blank lines, lying rows)', async () => {
    const t = new Tally();
    await check(fc.asyncProperty(fc.array(piece, { minLength: 1, maxLength: 12 }), async (ps) => readChecked(Uint8Array.from(ps.flat()), t)), { seed: 1462, numRuns: fcRuns(300) });
    console.log(`# assembled lines: ${t.ok} clean reads, ${t.errors} errors`);
    assert.ok(t.ok > 0 && t.errors > 0, 'the fuzz reached both outcomes');
  });

  test('named cases: missing, a directory, beyond the size cap, empty, blank, bad UTF-8 in a plain text, a BOM, CRLF, deep nesting, the line number past blank lines', async () => {
    await rejectsNaming(() => readDataFile(path.join(tmp, 'nope.jsonl')), 'nope.jsonl', 'file not found');
    const dir = fresh('.jsonl');
    fs.mkdirSync(dir);
    await rejectsNaming(() => readDataFile(dir), dir, 'not a regular file');
    // A sparse file one byte past the cap: refused from its size, before any read.
    const big = fresh();
    fs.writeFileSync(big, '');
    fs.truncateSync(big, DATA_MAX_BYTES + 1);
    await rejectsNaming(() => readDataFile(big), big, `${DATA_MAX_BYTES + 1} bytes`);
    for (const [ext, body, msg] of [['.jsonl', '', 'no lines'], ['.jsonl', '\n \n\t\n', 'no lines'], ['.txt', '', 'no text'], ['.txt', ' \n\n', 'no text']] as const) {
      const f = fresh(ext);
      fs.writeFileSync(f, body);
      await rejectsNaming(() => readDataFile(f), f, msg);
    }
    const latin1 = fresh('.txt');
    fs.writeFileSync(latin1, Uint8Array.from([0x43, 0x61, 0x66, 0xe9, 0x0a])); // "Café" in Latin-1
    await rejectsNaming(() => readDataFile(latin1), latin1, 'not valid UTF-8');
    const bomTxt = fresh('.txt');
    fs.writeFileSync(bomTxt, '\ufeffOne line.\nTwo lines.\n\n');
    assert.deepEqual(readDataFile(bomTxt).texts, [{ text: 'One line.\nTwo lines.' }]);
    const crlf = fresh();
    fs.writeFileSync(crlf, '\ufeff{"text": "A."}\r\n\r\n{"text": "B.", "facts": {"name": "Ben"}}\r\n');
    assert.deepEqual(readDataFile(crlf), { texts: [{ text: 'A.' }, { text: 'B.', facts: { name: 'Ben' } }], where: [`${crlf}:1`, `${crlf}:3`] });
    const deep = fresh();
    fs.writeFileSync(deep, `{"text": "ok."}\n\n\n{"text": ${'['.repeat(100_000)}${']'.repeat(100_000)}}\n`);
    await rejectsNaming(() => readDataFile(deep), `${deep}:4:`, 'field "text"');
    const blankText = fresh();
    fs.writeFileSync(blankText, '{"text": "ok."}\n{"text": " \\n "}\n');
    await rejectsNaming(() => readDataFile(blankText), `${blankText}:2:`, 'blank');
    const badLine = fresh();
    fs.writeFileSync(badLine, Uint8Array.from([...enc('{"text": "ok."}\n{"text": "caf'), 0xe9, ...enc('"}\n')]));
    await rejectsNaming(() => readDataFile(badLine), `${badLine}:2:`, 'not valid UTF-8');
  });

  test('a --data text too long for the context is named by its file and line (the report checks texts before loading)', async () => {
    // An NLA directory as far as the check reads it: nla.json's context and the tokenizer.
    const dir = fresh('-nla');
    fs.mkdirSync(dir);
    fs.copyFileSync(findModelFile('tok512.bin'), path.join(dir, 'tok512.bin'));
    fs.writeFileSync(path.join(dir, META), JSON.stringify({ model: { config: { maxSeqLen: 12 } }, tokenizer: 'tok512.bin' }));
    for (const f of [AR_FILE, AV_FILE]) fs.writeFileSync(path.join(dir, f), '');
    const file = fresh();
    fs.writeFileSync(file, '{"text": "A cat."}\n\n{"text": "Once upon a time there was a little girl named Lily who went to the park."}\n');
    const { texts, where } = readDataFile(file);
    await rejectsNaming(() => new ViewerSession(dir).check(dir, texts.map((t) => t.text), where), `${file}:3:`, 'longer than the model\'s context of 12');
    assert.equal(new ViewerSession(dir).check(dir, [texts[0].text], [where[0]]), true);
  });
});


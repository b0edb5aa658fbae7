// Shared machinery for the reader fuzz tests (tests/fuzz-*.test.ts): mutate a valid file's bytes
// (truncate, flip bits, overwrite a span with adversarial bytes, insert bytes) and check that the
// reader either returns or throws an Error whose message names the file. Anything else, a
// TypeError from deep inside, a non-Error throw, a RangeError from a huge allocation, is a
// failure; so is an output far larger than the file (a lying length turned into an allocation).
// A hang shows as the test's own timeout.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import fc from 'fast-check';

export type Mutation =
  | { kind: 'truncate'; at: number }
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'overwrite'; at: number; bytes: number[] }
  | { kind: 'insert'; at: number; bytes: number[] };

// Bytes that make lengths and counts lie: all-ones (u32/u64 max, -1), sign bits, zero.
const loud = fc.constantFrom(0x00, 0xff, 0x7f, 0x80, 0x01, 0x20, 0x22, 0x5b, 0x7b, 0x30, 0x39);
const someBytes = fc.array(fc.oneof(loud, fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 9 });

/** Mutations of a `size`-byte file: at fractions of its length, so every region gets hit. */
export function mutationArb(size: number): fc.Arbitrary<Mutation[]> {
  const at = fc.integer({ min: 0, max: Math.max(0, size - 1) });
  const one: fc.Arbitrary<Mutation> = fc.oneof(
    at.map((a): Mutation => ({ kind: 'truncate', at: a })),
    fc.record({ at, bit: fc.integer({ min: 0, max: 7 }) }).map((m): Mutation => ({ kind: 'flip', ...m })),
    fc.record({ at, bytes: someBytes }).map((m): Mutation => ({ kind: 'overwrite', ...m })),
    fc.record({ at, bytes: someBytes }).map((m): Mutation => ({ kind: 'insert', ...m })),
  );
  return fc.array(one, { minLength: 1, maxLength: 3 });
}

export function mutate(bytes: Uint8Array, muts: Mutation[]): Uint8Array {
  let b = Uint8Array.from(bytes);
  for (const m of muts) {
    const at = Math.min(m.at, b.length);
    if (m.kind === 'truncate') b = b.slice(0, at);
    else if (m.kind === 'flip') { if (at < b.length) b[at] ^= 1 << m.bit; }
    else if (m.kind === 'overwrite') for (let i = 0; i < m.bytes.length && at + i < b.length; i++) b[at + i] = m.bytes[i];
    else b = Uint8Array.from([...b.subarray(0, at), ...m.bytes, ...b.subarray(at)]);
  }
  return b;
}

/** Total bytes of the typed arrays and strings reachable from `v` (cycles and depth bounded). */
export function payloadBytes(v: unknown, seen = new Set<unknown>(), depth = 0): number {
  if (typeof v === 'string') return v.length;
  if (v === null || typeof v !== 'object' || seen.has(v) || depth > 12) return 0;
  seen.add(v);
  if (ArrayBuffer.isView(v)) return v.byteLength;
  const items = v instanceof Map ? [...v.values()] : Array.isArray(v) ? v : Object.values(v as object);
  let n = Array.isArray(v) ? v.length : 0;
  for (const x of items) n += payloadBytes(x, seen, depth + 1);
  return n;
}

export type Outcome = { ok: true; value: unknown } | { ok: false; error: Error };

/**
 * Run `read` and demand a clean outcome: a value no bigger than `maxRatio` x the input bytes
 * (+ 64 KiB), or an Error naming `file` (its path as given). Returns what happened.
 */
export async function cleanRead(file: string, inputBytes: number, read: () => unknown, maxRatio = 16): Promise<Outcome> {
  let value: unknown;
  try {
    value = await read();
  } catch (e) {
    if (!(e instanceof Error)) assert.fail(`reading ${file} threw a non-Error: ${String(e)}`);
    if (!e.message.includes(file)) assert.fail(`reading ${file} threw an error that does not name the file: ${e.name}: ${e.message}\n${e.stack}`);
    return { ok: false, error: e };
  }
  const got = payloadBytes(value);
  assert.ok(got <= maxRatio * inputBytes + 65536, `reading ${file} (${inputBytes} bytes) returned ${got} bytes of data`);
  return { ok: true, value };
}

/** Write `bytes` to `file` and read it with `read` cleanly. */
export async function cleanReadOf(file: string, bytes: Uint8Array, read: (file: string) => unknown, maxRatio = 16): Promise<Outcome> {
  fs.writeFileSync(file, bytes);
  return cleanRead(file, bytes.length, () => read(file), maxRatio);
}

/** Throws unless `fn` throws an Error whose message contains every part. */
export async function rejectsNaming(fn: () => unknown, ...parts: string[]): Promise<Error> {
  let err: unknown;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof Error, `expected an Error naming ${parts.join(', ')}; got ${err === undefined ? 'no error' : String(err)}`);
  for (const p of parts) assert.ok(err.message.includes(p), `message ${JSON.stringify(err.message)} should include ${JSON.stringify(p)}`);
  return err;
}

/** Fuzz cases that were clean reads vs. errors, to report (and to see the fuzz reached both). */
export class Tally {
  ok = 0;
  errors = 0;
  add(o: Outcome): void {
    if (o.ok) this.ok++;
    else this.errors++;
  }
}

// Values that lie inside a valid JSON document: wrong types, huge and negative sizes, deep nesting.
// Deep nesting travels as a marker string that toJsonText expands (a real 20,000-deep value
// would overflow fast-check's own printing of counterexamples).
const DEEP = '\u0000deep:';
const deep = (n: number): unknown => `${DEEP}${n}`;
export const adversarialJson: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(null, true, -1, 0, 1.5, 2 ** 31, 2 ** 32 + 1, 2 ** 53, 1e308, -1e308, '', 'x', '../../etc/passwd', [], {}, [-1], [0, -1], [2 ** 53, 2 ** 53]),
  fc.integer({ min: 3, max: 20_000 }).map(deep),
  fc.jsonValue({ maxDepth: 3 }),
);

/** Every path (keys / indices) in a JSON value, parents before children. */
export function jsonPaths(v: unknown, prefix: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(prefix);
  if (out.length > 5000) return out;
  if (Array.isArray(v)) v.forEach((x, i) => jsonPaths(x, [...prefix, i], out));
  else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) jsonPaths(x, [...prefix, k], out);
  return out;
}

export type JsonEdit = { pick: number; op: 'set' | 'delete'; value: unknown };
export const jsonEditsArb: fc.Arbitrary<JsonEdit[]> = fc.array(
  fc.record({ pick: fc.nat(), op: fc.constantFrom<'set' | 'delete'>('set', 'set', 'delete'), value: adversarialJson }),
  { minLength: 1, maxLength: 3 },
);

/** A copy of `doc` with each edit applied at the path `pick` chooses (modulo the path count). */
export function editJson(doc: unknown, edits: JsonEdit[]): unknown {
  let root = structuredClone(doc);
  for (const e of edits) {
    const paths = jsonPaths(root);
    const p = paths[e.pick % paths.length];
    if (p.length === 0) { root = e.op === 'set' ? e.value : {}; continue; }
    let parent = root as Record<string | number, unknown>;
    for (const k of p.slice(0, -1)) parent = parent[k] as Record<string | number, unknown>;
    const last = p[p.length - 1];
    if (e.op === 'delete') Array.isArray(parent) ? parent.splice(last as number, 1) : delete parent[last];
    else parent[last] = e.value;
  }
  return root;
}

/** JSON text of `v`, deep-nesting markers expanded into that many nested arrays. */
export function toJsonText(v: unknown): string {
  return JSON.stringify(v).replace(/"\\u0000deep:(\d+)"/g, (_, n: string) => '['.repeat(Number(n)) + '0' + ']'.repeat(Number(n)));
}

/** fc.assert, with the failing case's own error message in the thrown error (node:test shows only the message). */
export async function check<T>(prop: fc.IAsyncProperty<T>, params: fc.Parameters<T>): Promise<void> {
  try {
    await fc.assert(prop, params);
  } catch (e) {
    const cause = (e as { cause?: unknown }).cause;
    if (cause instanceof Error) (e as Error).message += `\nCause: ${cause.message}`;
    throw e;
  }
}

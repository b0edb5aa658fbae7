// Fuzzed endpoint responses of `nla datagen` (src/nla/datagen.ts): a raw TCP server answers each
// request with a mutated chat completion (JSON edits: missing choices, wrong types, deep nesting;
// byte mutations; a Content-Length that lies in either direction; bodies far past the limit, sent
// whole or endlessly). Each case must end with the item written with exactly the answer's content,
// or an Error naming the endpoint URL; never a hang (each request has a 3 s timeout here), a
// crash, or a body buffered past RESPONSE_LIMITS.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { RESPONSE_LIMITS, summarizeCorpus } from '../src/nla/datagen.js';
import { fcRuns } from '../src/testing/runs.js';
import { check, editJson, jsonEditsArb, mutate, mutationArb, rejectsNaming, Tally, toJsonText } from './fuzz.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nla-fuzz-datagen-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
const enc = new TextEncoder();
let serial = 0;

/** What the server sends next: a status, a body, and the Content-Length it claims (undefined: close-delimited). */
interface Reply { status: number; body: Uint8Array; length?: number; endless?: boolean }
let next: Reply = { status: 200, body: new Uint8Array() };
let server: net.Server, url: string;
let sentMax = 0;

before(async () => {
  server = net.createServer((sock) => {
    let seen = '';
    sock.on('error', () => {});
    sock.on('data', (d) => {
      seen += d.toString('latin1');
      const head = seen.indexOf('\r\n\r\n');
      if (head < 0) return;
      const len = Number(/content-length: (\d+)/i.exec(seen.slice(0, head))?.[1] ?? 0);
      if (seen.length - head - 4 < len) return; // the whole request first
      seen = '';
      const r = next;
      const lines = [`HTTP/1.1 ${r.status} X`, 'Content-Type: application/json', 'Connection: close'];
      if (r.length !== undefined) lines.push(`Content-Length: ${r.length}`);
      sock.write(lines.join('\r\n') + '\r\n\r\n');
      if (r.endless) {
        // 64 KiB chunks until the client hangs up: it must stop reading at the limit.
        const chunk = Buffer.alloc(65536, 0x20);
        let sent = 0;
        const pump = () => {
          while (!sock.destroyed && sent < 1 << 30) {
            sent += chunk.length;
            sentMax = Math.max(sentMax, sent);
            if (!sock.write(chunk)) return void sock.once('drain', pump);
          }
          sock.end();
        };
        pump();
      } else sock.end(r.body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/v1`;
});
after(() => server.close());

/** One item through summarizeCorpus against the scripted reply: the summary written, or the error. */
async function ask(reply: Reply): Promise<{ ok: true; summary: string } | { ok: false; error: Error }> {
  next = reply;
  const outPath = path.join(tmp, `out-${serial++}.jsonl`);
  try {
    await summarizeCorpus({ items: [{ id: 'x', text: 'story' }], outPath, endpoint: url, model: 'm', retries: 0, timeoutMs: 3000 });
  } catch (e) {
    assert.ok(e instanceof Error, `a non-Error was thrown: ${String(e)}`);
    assert.ok(e.message.includes(`${url}/chat/completions`), `the error names the endpoint: ${e.message}`);
    assert.ok(!fs.existsSync(outPath) || fs.readFileSync(outPath, 'utf8') === '', 'nothing written for a failed item');
    return { ok: false, error: e };
  }
  const lines = fs.readFileSync(outPath, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { id: string; summary: string });
  assert.equal(lines.length, 1);
  return { ok: true, summary: lines[0].summary };
}

const GOOD = { id: 'c1', object: 'chat.completion', model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: ' The fox ran home. ' }, finish_reason: 'stop' }], usage: { prompt_tokens: 9, completion_tokens: 5 } };

/** The content a well-formed answer carries (what must be written), or undefined. */
function contentOf(text: string): string | undefined {
  try {
    const c = (JSON.parse(text) as typeof GOOD)?.choices?.[0]?.message?.content;
    return typeof c === 'string' && c.trim() && c.length <= RESPONSE_LIMITS.summaryChars ? c.trim() : undefined;
  } catch {
    return undefined;
  }
}

describe('fuzz: datagen endpoint responses', () => {
  test('JSON edits (missing choices, wrong types, deep nesting, huge numbers): the exact content written, or an error naming the endpoint', async () => {
    const t = new Tally();
    await check(
      fc.asyncProperty(jsonEditsArb, fc.constantFrom(200, 200, 200, 400, 500), async (edits, status) => {
        const text = toJsonText(editJson(GOOD, edits)), body = enc.encode(text);
        const o = await ask({ status, body, length: body.length });
        t.add(o.ok ? { ok: true, value: o.summary } : o);
        if (o.ok) assert.equal(o.summary, contentOf(text), 'the summary is the answer\'s content');
        // A well-formed answer may be refused only for nesting past the depth bound (src/io/json.ts).
        else if (status === 200 && contentOf(text) !== undefined) assert.match(o.error.message, /JSON nests deeper than 256 levels/);
      }),
      { seed: 1440, numRuns: fcRuns(300) },
    );
    assert.ok(t.ok > 0 && t.errors > 0, `fuzz reached both outcomes (ok ${t.ok}, errors ${t.errors})`);
  });

  test('byte mutations and lying Content-Length: the exact content written, or an error naming the endpoint', async () => {
    const t = new Tally();
    const good = enc.encode(JSON.stringify(GOOD));
    const lie = fc.oneof(fc.constant(undefined), fc.constant('true'), fc.integer({ min: 0, max: good.length + 64 }), fc.constantFrom(2 ** 31, 2 ** 53));
    await check(
      fc.asyncProperty(mutationArb(good.length), lie, async (muts, claimed) => {
        const body = mutate(good, muts);
        const length = claimed === 'true' ? body.length : claimed;
        const o = await ask({ status: 200, body, length });
        t.add(o.ok ? { ok: true, value: o.summary } : o);
        // What the client may legitimately see: the body cut at the claimed length, or all of it.
        const seen = new TextDecoder().decode(length !== undefined && length < body.length ? body.subarray(0, length) : body);
        if (o.ok) assert.equal(o.summary, contentOf(seen));
      }),
      { seed: 1441, numRuns: fcRuns(300) },
    );
    assert.ok(t.ok > 0 && t.errors > 0, `fuzz reached both outcomes (ok ${t.ok}, errors ${t.errors})`);
  });
});

test('named: a body past the limit, declared or streamed without end, is cut off at the limit; a huge content and a body that never ends are named', async () => {
  const max = RESPONSE_LIMITS.responseBytes;
  // Declared too big: refused from the header, before reading.
  let o = await ask({ status: 200, body: new Uint8Array(16), length: 2 ** 40 });
  assert.ok(!o.ok && /response body of 1,099,511,627,776 bytes, more than/.test(o.error.message), !o.ok ? o.error.message : 'read');
  // Streamed endlessly (no length): the client stops reading near the limit.
  sentMax = 0;
  const rss0 = process.memoryUsage().rss;
  o = await ask({ status: 200, body: new Uint8Array(), endless: true });
  assert.ok(!o.ok && /response body of at least [\d,]+ bytes, more than/.test(o.error.message), !o.ok ? o.error.message : 'read');
  assert.ok(process.memoryUsage().rss - rss0 < 256 * 2 ** 20, 'RSS grew by less than 256 MiB');
  await new Promise((r) => setTimeout(r, 200));
  assert.ok(sentMax < 64 * max, `the server got to send ${sentMax} bytes before the client hung up`);
  // A content of 10 MB inside a body under the limit would not fit; one just past the summary limit is named.
  const long = JSON.stringify({ choices: [{ message: { content: 'w'.repeat(RESPONSE_LIMITS.summaryChars + 1) } }] });
  o = await ask({ status: 200, body: enc.encode(long), length: long.length });
  assert.ok(!o.ok && /choices\[0\]\.message\.content is 16,385 characters/.test(o.error.message), !o.ok ? o.error.message : 'read');
  // Claims more than it sends, then closes: a cut connection, named.
  o = await ask({ status: 200, body: enc.encode(JSON.stringify(GOOD)), length: 5000 });
  assert.ok(!o.ok && /reading the response failed/.test(o.error.message), !o.ok ? o.error.message : 'read');
  // JSON nested 100,000 deep: refused by the depth bound, not a stack overflow.
  const deep = '['.repeat(100_000) + ']'.repeat(100_000);
  o = await ask({ status: 200, body: enc.encode(deep), length: deep.length });
  assert.ok(!o.ok && /response is not JSON/.test(o.error.message), !o.ok ? o.error.message : 'read');
  // And the well-formed answer is read exactly.
  const good = enc.encode(JSON.stringify(GOOD));
  assert.deepEqual(await ask({ status: 200, body: good, length: good.length }), { ok: true, summary: 'The fox ran home.' });
  // A server that is not there: named too.
  const closed = net.createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const port = (closed.address() as net.AddressInfo).port;
  await new Promise((r) => closed.close(r));
  await rejectsNaming(() => summarizeCorpus({ items: [{ id: 1, text: 't' }], outPath: path.join(tmp, 'none.jsonl'), endpoint: `http://127.0.0.1:${port}/v1`, model: 'm', retries: 0, timeoutMs: 3000 }), `http://127.0.0.1:${port}/v1/chat/completions`, 'request failed');
});

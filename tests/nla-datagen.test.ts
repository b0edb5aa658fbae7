import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSummariesJsonl, readTextCorpus, summarizeCorpus } from '../src/nla/datagen.js';

// A mock OpenAI-compatible endpoint. The text decides the behaviour: "fail500" and "fail429"
// fail their first request, "malformed" answers without choices while `malformed` is on,
// "bad" gets a 400. Every answer is delayed so that concurrent requests overlap.
interface Mock { server: Server; url: string; requests: string[]; maxInFlight: number; malformed: boolean; auth: string[] }

async function startMock(): Promise<Mock> {
  const seen = new Map<string, number>();
  let inFlight = 0;
  const mock = { requests: [], maxInFlight: 0, malformed: true, auth: [] } as unknown as Mock;
  mock.server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      inFlight++;
      mock.maxInFlight = Math.max(mock.maxInFlight, inFlight);
      const { messages, model } = JSON.parse(body) as { model: string; messages: { role: string; content: string }[] };
      const text = messages.find((m) => m.role === 'user')!.content;
      mock.requests.push(text);
      mock.auth.push(req.headers.authorization ?? '');
      const n = (seen.get(text) ?? 0) + 1;
      seen.set(text, n);
      setTimeout(() => {
        inFlight--;
        const send = (status: number, json: unknown) => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(json));
        };
        if (req.url !== '/v1/chat/completions' || model !== 'mock-model') send(404, { error: 'wrong url or model' });
        else if (text.startsWith('fail500') && n === 1) send(500, { error: 'boom' });
        else if (text.startsWith('fail429') && n === 1) send(429, { error: 'slow down' });
        else if (text === 'malformed' && mock.malformed) send(200, { choices: [] });
        else if (text === 'bad') send(400, { error: 'bad request' });
        else send(200, { choices: [{ message: { role: 'assistant', content: ` S(${text}) ` } }] });
      }, 15);
    });
  });
  await new Promise<void>((r) => mock.server.listen(0, '127.0.0.1', r));
  mock.url = `http://127.0.0.1:${(mock.server.address() as AddressInfo).port}/v1`;
  return mock;
}

const lines = (path: string) =>
  readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { id: string; text: string; summary: string });

test('summarizeCorpus retries, caps concurrency, names a malformed item, and resumes', async () => {
  const mock = await startMock();
  const dir = mkdtempSync(join(tmpdir(), 'nla-datagen-'));
  try {
    const outPath = join(dir, 'out.jsonl');
    const texts = ['a', 'fail500-1', 'b', 'fail429', 'c', 'malformed', 'd', 'fail500-2', 'e', 'f', 'g', 'h'];
    const items = texts.map((text, k) => ({ id: `item-${k}`, text }));
    process.env.NLA_TEST_KEY = 'sekret';
    const opts = { items, outPath, endpoint: mock.url + '/', model: 'mock-model', apiKeyEnv: 'NLA_TEST_KEY', concurrency: 3, retries: 2, baseDelayMs: 5 };

    await assert.rejects(summarizeCorpus(opts), (e: Error) => {
      assert.match(e.message, /item "item-5"/);
      assert.match(e.message, /after 3 attempt/);
      assert.match(e.message, /choices\[0\]\.message\.content/);
      return true;
    });
    assert.ok(mock.maxInFlight <= 3, `in flight ${mock.maxInFlight}`);
    assert.ok(mock.maxInFlight >= 2, 'requests should overlap');
    assert.equal(mock.requests.filter((t) => t === 'malformed').length, 3); // 1 + 2 retries
    assert.equal(mock.requests.filter((t) => t === 'fail429').length, 2);
    assert.ok(mock.requests.length <= texts.length + 2 + 3);
    assert.ok(mock.auth.every((a) => a === 'Bearer sekret'));
    const first = lines(outPath);
    assert.ok(first.length >= 4 && !first.some((l) => l.id === 'item-5'));
    for (const l of first) assert.equal(l.summary, `S(${l.text})`);

    // a crash mid-write leaves a cut line: it is dropped and redone
    appendFileSync(outPath, '{"id":"item-11","text":"h","summ');
    mock.malformed = false;
    const before = mock.requests.length;
    const res = await summarizeCorpus(opts);
    const second = mock.requests.slice(before);
    assert.deepEqual(res, { total: 12, skipped: first.length, written: 12 - first.length });
    // only the missing items were asked for (fail500-2 may fail once more if it was never tried)
    const doneTexts = new Set(first.map((l) => l.text));
    assert.ok(second.every((t) => !doneTexts.has(t)));
    assert.equal(new Set(second).size, 12 - first.length);
    const all = lines(outPath);
    assert.deepEqual(all.map((l) => l.id).sort(), items.map((i) => i.id).sort());

    // a third run has nothing to do
    const n = mock.requests.length;
    assert.deepEqual(await summarizeCorpus(opts), { total: 12, skipped: 12, written: 0 });
    assert.equal(mock.requests.length, n);
  } finally {
    delete process.env.NLA_TEST_KEY;
    await new Promise((r) => mock.server.close(r));
    rmSync(dir, { recursive: true, force: true });
  }
});

test('summarizeCorpus does not retry a 400 and needs its API key variable', async () => {
  const mock = await startMock();
  const dir = mkdtempSync(join(tmpdir(), 'nla-datagen-'));
  try {
    const outPath = join(dir, 'out.jsonl');
    const opts = { texts: ['bad'], outPath, endpoint: mock.url, model: 'mock-model', retries: 3, baseDelayMs: 5 };
    await assert.rejects(summarizeCorpus(opts), /item 0 failed after 1 attempt\(s\): http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions: HTTP 400/);
    assert.equal(mock.requests.length, 1);
    await assert.rejects(summarizeCorpus({ ...opts, apiKeyEnv: 'NLA_TEST_MISSING_KEY' }), /NLA_TEST_MISSING_KEY/);
    assert.equal(mock.requests.length, 1);
    // input from JSONL: ids from the file, else the line's index
    const input = join(dir, 'in.jsonl');
    writeFileSync(input, '{"id":"x","text":"one"}\n\n{"text":"two"}\n');
    await assert.rejects(summarizeCorpus({ ...opts, inputJsonl: input }), /exactly one of items, texts or inputJsonl/);
    await summarizeCorpus({ ...opts, texts: undefined, inputJsonl: input });
    assert.deepEqual(readSummariesJsonl(outPath), [
      { id: 'x', text: 'one', summary: 'S(one)' },
      { id: 1, text: 'two', summary: 'S(two)' },
    ]);
  } finally {
    await new Promise((r) => mock.server.close(r));
    rmSync(dir, { recursive: true, force: true });
  }
});

test('readSummariesJsonl and readTextCorpus name the file and line of bad input', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nla-datagen-'));
  try {
    const p = join(dir, 's.jsonl');
    writeFileSync(p, '{"text":"a","summary":"b"}\n{"text":"a"}\n');
    assert.throws(() => readSummariesJsonl(p), (e: Error) => e.message === `${p}:2: field "summary" missing or not a string`);
    writeFileSync(p, '{"text":"a","summary":"b"}\n\n[1]\n');
    assert.throws(() => readSummariesJsonl(p), new RegExp(`s\\.jsonl:3: expected a JSON object`));
    writeFileSync(p, '{"text": \n');
    assert.throws(() => readSummariesJsonl(p), /s\.jsonl:1: invalid JSON/);

    const t = join(dir, 'c.txt');
    writeFileSync(t, 'First story.\nStill first.\n\n  \nSecond story.\r\n\r\nThird.\n');
    assert.deepEqual(readTextCorpus(t), ['First story.\nStill first.', 'Second story.', 'Third.']);
    writeFileSync(t, '\n \n');
    assert.throws(() => readTextCorpus(t), /c\.txt: empty corpus/);
    writeFileSync(t, Buffer.from([0x61, 0xff, 0xfe, 0x62]));
    assert.throws(() => readTextCorpus(t), /c\.txt:\d+: not valid UTF-8/);
    const j = join(dir, 'c.jsonl');
    writeFileSync(j, '{"text":"one"}\n{"text":"two"}\n');
    assert.deepEqual(readTextCorpus(j), ['one', 'two']);
    writeFileSync(j, '{"text":"one"}\n{"txt":"two"}\n');
    assert.throws(() => readTextCorpus(j), /c\.jsonl:2: field "text"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
